"""The bayescpec exception family.

Every error the toolkit raises on purpose derives from :class:`BayescpecError`. Errors about bad
input also derive from :class:`ValueError`. Input errors carry a list of :class:`Problem` items so
that *every* problem in a file is reported at once, each with its location.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BayescpecError",
    "InputError",
    "SpecError",
    "EvidenceError",
    "ResultMismatchError",
    "ConvergenceError",
    "Problem",
    "did_you_mean",
]


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    ``where`` is a human location such as ``"line 12"`` or ``"row 7"``; ``field`` names the key or
    column; ``message`` says what was found and what was allowed.
    """

    file: str
    where: str | None
    field: str | None
    message: str

    def render(self) -> str:
        if not (self.file or self.where or self.field):
            return self.message
        location = self.file
        if self.where:
            location += f", {self.where}"
        if self.field:
            location += f", {self.field}"
        return f"{location}: {self.message}"


def did_you_mean(value: object, allowed: Iterable[str], *, cutoff: float = 0.6) -> str:
    """Return ``" (did you mean 'x'?)"`` when ``value`` is close to one allowed name (difflib's
    similarity ratio at least ``cutoff``), else ``""``."""
    matches = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=cutoff)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def allowed_list(allowed: Iterable[str], limit: int = 12) -> str:
    names = sorted({str(a) for a in allowed})  # each once, even when a file repeats a name
    if not names:
        return "none (there is nothing to choose from)"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class BayescpecError(Exception):
    """Base class of every error bayescpec raises on purpose."""


class InputError(BayescpecError, ValueError):
    """Bad input: carries every :class:`Problem` found, so they can be reported together."""

    def __init__(self, problems: Sequence[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(file="", where=None, field=None, message=problems)]
        self.problems: list[Problem] = list(problems)
        n = len(self.problems)
        if n == 1:
            super().__init__(self.problems[0].render())
        else:
            super().__init__("\n".join([f"{n} problems found:"] + ["  - " + p.render() for p in self.problems]))


class SpecError(InputError):
    """A framework or prior-set file is malformed or inconsistent."""


class EvidenceError(InputError):
    """An evidence or sources file is malformed or inconsistent with the framework."""


class ResultMismatchError(BayescpecError, ValueError):
    """A saved result was loaded against input files that differ from the ones it was fitted on."""


class ConvergenceError(BayescpecError):
    """Raised only when the caller asks for convergence failures to be fatal."""
