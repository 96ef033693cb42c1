"""Reading TOML files with locations: every key path is mapped to the line it was written on."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import Problem
from .text import TextProblem, read_text

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
    open_string = None  # the delimiter of a multi-line string we are inside, if any
    for number, line in enumerate(text.split("\n"), start=1):  # lines as TOML (and tomllib) counts them
        if open_string is not None:
            if line.count(open_string) % 2:
                open_string = None
            continue  # a line inside a multi-line string is no key
        if _KEY.match(line):
            for delimiter in ('"""', "'''"):
                if line.count(delimiter) % 2:
                    open_string = delimiter
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
    """Parse a TOML file (UTF-8, a byte-order mark allowed). Raises :class:`_TomlProblem` when it
    cannot be read (missing, a folder, not UTF-8: every bad byte's line and column) or parsed."""
    path = Path(path)
    try:
        text = read_text(path, suffix=".toml")
    except TextProblem as exc:
        raise _TomlProblem(*exc.problems) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = None
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if found:
            where = f"line {found.group(1)}, column {found.group(2)}"
            message = message[: found.start()].strip()
        elif "end of document" in message:
            where = f"line {text.rstrip().count(chr(10)) + 1}"
        raise _TomlProblem(Problem(str(path), where, None, f"TOML syntax error: {message}")) from None
    except RecursionError:
        raise _TomlProblem(Problem(str(path), None, None, "TOML syntax error: values nested too deeply")) from None
    return data, key_lines(text)


class _TomlProblem(Exception):
    """A TOML file that cannot be read or parsed: ``problems`` (``problem`` is the first)."""

    def __init__(self, *problems: Problem):
        super().__init__("; ".join(p.render() for p in problems))
        self.problems = list(problems)
        self.problem = problems[0]
