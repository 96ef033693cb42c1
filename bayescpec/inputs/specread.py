"""Reading a TOML spec file into a pydantic model, with every problem located: the file, the line of
the key, the dotted key, what was found -- and "did you mean" for an unknown key."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError

from ..errors import Problem, SpecError, did_you_mean
from .files import _TomlProblem, line_of, read_toml
from .statements import StatementError

__all__ = ["ID_PATTERN", "ID_RULE", "Identifier", "pydantic_problems", "read_spec"]

#: what an id may be: it is written in evidence cells (which are stripped of spaces) and in queries
ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
ID_RULE = "ASCII letters, digits and underscores, starting with a letter"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


def _unwrap(annotation: typing.Any) -> typing.Any:
    """Strip Annotated[...] and Optional[...] down to the type inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union or origin is types.UnionType:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class found at ``loc`` inside ``root`` (for "did you mean" on keys)."""
    current: typing.Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def pydantic_problems(
    exc: ValidationError, root: type[BaseModel], path: Path, lines: dict, data: dict
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        located = (err.get("ctx") or {}).get("error")
        if isinstance(located, StatementError):  # a prior's statement: placed at the key it is about
            loc = loc + ((located.key,) if located.key else ())
        line = line_of(lines, loc)
        where = f"line {line}" if line else None
        field = ".".join(str(p) for p in loc) or None
        if err["type"] == "extra_forbidden":
            parent = _model_at(root, loc[:-1])
            allowed = list(parent.model_fields) if parent else []
            hint = did_you_mean(loc[-1], allowed)
            message = f"unknown key {loc[-1]!r}{hint}; allowed keys: {', '.join(allowed)}"
        elif isinstance(located, StatementError):
            message = str(located)
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] == "string_pattern_mismatch" and loc and loc[-1] == "id":
            message = f"an id is {ID_RULE} (ids are written in evidence cells and queries); found {err.get('input')!r}"
        else:
            message = f"{err['msg']}; found {err.get('input')!r}"
        problems.append(Problem(str(path), where, field, message))
    return problems


def read_spec(path: Path, model: type[BaseModel], error: type[SpecError]):
    """``model`` validated from the TOML file ``path``, its key -> line map, and the located problems
    (``None`` for the model when there are any); a TOML syntax error raises ``error`` at once."""
    try:
        data, lines = read_toml(path)
    except _TomlProblem as exc:
        raise error(exc.problems) from None
    try:
        return model.model_validate(data), lines, []
    except ValidationError as exc:
        return None, lines, pydantic_problems(exc, model, path, lines, data)
