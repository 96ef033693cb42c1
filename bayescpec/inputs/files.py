"""Reading TOML files with locations: every key path is mapped to the line it was written on."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import Problem

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _split_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def key_lines(text: str) -> dict[tuple, int]:
    """Map each key path (as a tuple, array items by index) to its 1-based line number."""
    lines: dict[tuple, int] = {}
    table: tuple = ()
    array_counts: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            path = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                index = array_counts.get(path, -1) + 1
                array_counts[path] = index
                table = path + (index,)
            else:
                # a sub-table of the latest array item, e.g. [[a]] then [a.b]
                resolved: tuple = ()
                for part in path:
                    resolved = resolved + (part,)
                    if resolved in array_counts:
                        resolved = resolved + (array_counts[resolved],)
                table = resolved
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = table + tuple(_split_key(key.group(1)))
            for depth in range(len(table) + 1, len(path) + 1):
                lines.setdefault(path[:depth], number)
    return lines


def line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of the longest prefix of ``loc`` that was written in the file."""
    for depth in range(len(loc), 0, -1):
        if tuple(loc[:depth]) in lines:
            return lines[tuple(loc[:depth])]
    return None


def read_toml(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    """Parse a TOML file. Raises a list of one :class:`Problem` on a syntax error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _TomlProblem(Problem(str(path), None, None, "file not found")) from None
    except UnicodeDecodeError as exc:
        raise _TomlProblem(Problem(str(path), None, None, f"not UTF-8 text ({exc.reason})")) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = None
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if found:
            where = f"line {found.group(1)}, column {found.group(2)}"
            message = message[: found.start()].strip()
        raise _TomlProblem(Problem(str(path), where, None, f"TOML syntax error: {message}")) from None
    return data, key_lines(text)


class _TomlProblem(Exception):
    def __init__(self, problem: Problem):
        super().__init__(problem.render())
        self.problem = problem
