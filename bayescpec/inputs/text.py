"""Input files as text, located the way an editor shows them.

Every input file is UTF-8 text (a leading byte-order mark, as Excel's "CSV UTF-8" writes, is
allowed and dropped). What is not -- a folder, a missing or unreadable file, a spreadsheet workbook,
UTF-16 text, bytes that are not UTF-8 -- is refused with the file, the line and column of each bad
byte, and how to fix it. CSV files are split into records with the *line each record starts on*
(blank lines and quoted values spanning several lines count, as in an editor), and with the
structural problems a spreadsheet export typically has: semicolon or tab separators, rows with more
or fewer fields than the header, a quote that is never closed, a column named twice.
"""

from __future__ import annotations

import bisect
import csv
import gc
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import Problem

__all__ = ["TextProblem", "CsvRecords", "read_text", "decode_text", "parse_csv", "read_csv_records"]

#: the line breaks an editor (and the csv module) counts
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as decoded with surrogateescape
MAX_REPORTED = 20
#: the longest value a CSV field may hold, in characters (the csv module's own limit, 131 072, is
#: shorter than a long but legitimate note)
FIELD_LIMIT = 10_000_000
SAVE_AS_UTF8 = ("save the file as UTF-8 (in Excel: Save As > 'CSV UTF-8 (Comma delimited)'; in a text "
                "editor: choose the encoding UTF-8)")
_SEPARATORS = {";": "semicolons (';')", "\t": "tabs", "|": "vertical bars ('|')"}


class TextProblem(Exception):
    """A file that cannot be read as text (or as CSV records); carries every :class:`Problem` found."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.render() for p in problems))
        self.problems = problems


def _folder_message(path: Path, suffix: str) -> str:
    inside = sorted(p.name for p in path.glob(f"*{suffix}") if p.is_file()) if suffix else []
    hint = (f"; did you mean {path / inside[0]}? ({suffix} files in it: {', '.join(inside)})" if inside
            else f"; it holds no {suffix} files" if suffix else "")
    return f"is a folder, not a file{hint}"


def read_text(path: str | Path, *, suffix: str = "") -> str:
    """The text of ``path`` (UTF-8, BOM dropped). ``suffix`` (``.csv``, ``.toml``) is what to suggest
    when ``path`` is a folder. Raises :class:`TextProblem`."""
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise TextProblem([Problem(name, None, None, _folder_message(path, suffix))])
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TextProblem([Problem(name, None, None, "file not found")]) from None
    except PermissionError:
        raise TextProblem([Problem(name, None, None, "cannot be read: permission denied")]) from None
    except OSError as exc:
        raise TextProblem([Problem(name, None, None, f"cannot be read: {exc.strerror or exc}")]) from None
    return decode_text(data, name)


def _line_starts(text: str) -> list[int]:
    return [0] + [match.end() for match in _LINE_BREAK.finditer(text)]


def _line_and_column(starts: list[int], offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of ``offset``, given the offsets where lines start."""
    line = bisect.bisect_right(starts, offset)
    return line, offset - starts[line - 1] + 1


def decode_text(data: bytes, file: str) -> str:
    """``data`` as UTF-8 text without a byte-order mark; raises :class:`TextProblem` naming the line
    and column of every byte that is not UTF-8 (and of NUL characters), and the fix."""
    if data.startswith(b"PK\x03\x04"):
        raise TextProblem([Problem(file, None, None, "is a zip archive (e.g. an Excel .xlsx or .ods workbook), not "
                                   "a text file; in the spreadsheet program use Save As > 'CSV UTF-8 (Comma "
                                   "delimited)'")])
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TextProblem([Problem(file, "line 1", None, "found UTF-16 text (Excel's 'Unicode Text'); allowed: "
                                   f"UTF-8; {SAVE_AS_UTF8}")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        problems, starts = [], _line_starts(text)
        for match in _NOT_UTF8.finditer(text):
            line, column = _line_and_column(starts, match.start())
            if problems and problems[-1].where.startswith(f"line {line},"):
                continue  # one problem per line
            byte = ord(match.group()) - 0xDC00
            guess = bytes([byte]).decode("cp1252", errors="replace")
            problems.append(Problem(file, f"line {line}, column {column}", None,
                                    f"found byte 0x{byte:02x}, which is not UTF-8 (in Windows-1252/Latin-1 it is "
                                    f"{guess!r}: the file was probably saved in that encoding); allowed: UTF-8 "
                                    f"text; {SAVE_AS_UTF8}"))
        raise TextProblem(_capped(problems, file, "lines with bytes that are not UTF-8")) from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        line, column = _line_and_column(_line_starts(text), text.index("\x00"))
        raise TextProblem([Problem(file, f"line {line}, column {column}", None,
                                   "found a NUL character (0x00): this is a binary or UTF-16 file, not UTF-8 text; "
                                   + SAVE_AS_UTF8)])
    return text


def _capped(problems: list[Problem], file: str, what: str) -> list[Problem]:
    if len(problems) <= MAX_REPORTED:
        return problems
    return problems[:MAX_REPORTED] + [Problem(file, None, None, f"... and {len(problems) - MAX_REPORTED} more {what}")]


@dataclass(frozen=True)
class CsvRecords:
    """The records of a CSV file: the header, one list of fields per row (exactly one per header
    column), and the line each row starts on (as an editor numbers lines)."""

    header: list[str]
    header_line: int
    rows: list[list[str]]
    lines: list[int]


def _blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and fields[0].strip() == "")


def _separator(header: list[str], columns: tuple[str, ...]) -> str | None:
    """The separator a one-field header is really split by, if splitting by it gives known columns."""
    if len(header) != 1:
        return None
    for separator in _SEPARATORS:
        names = [name.strip().strip('"') for name in header[0].split(separator)]
        if len(names) > 1 and any(name in columns for name in names):
            return separator
    return None


def _check_separator(record: tuple[int, list[str]], file: str, columns: tuple[str, ...]) -> None:
    """Raise when the header ``record`` (line, fields) is really split by semicolons, tabs or bars."""
    header_line, header = record
    separator = _separator([name.strip() for name in header], columns)
    if separator is not None:
        raise TextProblem([Problem(file, f"line {header_line}", None,
                                   f"the columns are separated by {_SEPARATORS[separator]}, not by commas: found "
                                   f"header {header[0].strip()[:70]!r}; allowed: comma-separated values; save the "
                                   "file as 'CSV UTF-8 (Comma delimited)' (a spreadsheet set to a locale with decimal "
                                   "commas exports semicolons)")])


def parse_csv(text: str, file: str, *, columns: tuple[str, ...], skip_initial_space: bool = True) -> CsvRecords:
    """Split CSV ``text`` into records. ``columns`` are the column names the file may have (to
    recognise a header split by another separator). Raises :class:`TextProblem` listing every
    structural problem: wrong separator, an unclosed quote, rows with the wrong number of fields,
    duplicated or empty column names."""
    if text.strip() == "":
        raise TextProblem([Problem(file, "line 1", None, "file is empty; expected a header line and rows")])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=skip_initial_space)
    records: list[tuple[int, list[str]]] = []
    previous_end = 0
    collecting = gc.isenabled()
    gc.disable()  # a million small strings, none in a cycle: rescanning them would halve the speed
    field_limit = csv.field_size_limit(FIELD_LIMIT)
    try:
        for fields in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not _blank(fields):
                records.append((start, fields))
    except csv.Error as exc:
        if records:  # a header split by another separator explains the rest
            _check_separator(records[0], file, columns)
        start = previous_end + 1
        reason = str(exc)
        if "field larger than field limit" in reason:
            message = (f"found a value of more than {FIELD_LIMIT:,} characters; allowed: at most {FIELD_LIMIT:,} "
                       "characters per value (if no value is that long, a double quote (\") opens a quoted value "
                       "here and is never closed, so the rest of the file was read as one value)")
        elif "unexpected end of data" in reason:
            message = ("found a double quote (\") that opens a quoted value and is never closed; allowed: a quoted "
                       "value ends with a closing quote (a quote inside it is written twice: \"\")")
        elif "expected after" in reason:
            message = ("found text after the closing quote of a quoted value; allowed: a separator right after "
                       "the closing quote (a quote inside a quoted value is written twice: \"\")")
        else:
            message = f"cannot be read as CSV: {reason}"
        raise TextProblem([Problem(file, f"line {start}", None, message)]) from None
    finally:
        csv.field_size_limit(field_limit)
        if collecting:
            gc.enable()
    if not records:
        raise TextProblem([Problem(file, "line 1", None, "file is empty; expected a header line and rows")])
    _check_separator(records[0], file, columns)
    header_line, header = records[0]
    header = [name.strip() for name in header]
    problems = []
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if name == "":
            problems.append(Problem(file, f"line {header_line}, column {number}", None,
                                    "found a column with no name; allowed: one named column per field (a trailing "
                                    "comma on the header line adds an empty column)"))
        elif name in seen:
            problems.append(Problem(file, f"line {header_line}", name,
                                    f"found the column twice (fields {seen[name]} and {number}); allowed: each column once"))
        seen.setdefault(name, number)
    width = len(header)
    rows, lines = [], []
    for line, fields in records[1:]:
        if len(fields) > width and not any(f.strip() for f in fields[width - 1:]):
            # stray commas after an empty last value carry nothing; after a non-empty one they cannot be
            # told from a comma inside an unquoted value that shifted the later values right (the tail
            # of a note would become the unit), so such a line is refused below
            fields = fields[:width]
        if len(fields) != width:
            hint = ""
            if len(fields) < width and any(s in f for f in fields for s in _SEPARATORS):
                hint = "; the fields of this line look separated by another character than commas"
            elif len(fields) > width:
                hint = "; a value that contains a comma must be in double quotes"
                if not any(f.strip() for f in fields[width:]):
                    hint += " (or, if the line ends with a stray comma, remove it)"
            problems.append(Problem(file, f"line {line}", None,
                                    f"found {len(fields)} fields; allowed: {width}, one per column of the header "
                                    f"(line {header_line}){hint}"))
            continue
        rows.append(fields)
        lines.append(line)
    if problems:
        raise TextProblem(_capped(problems, file, "lines with the wrong number of fields"))
    return CsvRecords(header, header_line, rows, lines)


def read_csv_records(path: str | Path, *, columns: tuple[str, ...]) -> CsvRecords:
    """:func:`read_text` then :func:`parse_csv`; raises :class:`TextProblem`."""
    return parse_csv(read_text(path, suffix=".csv"), str(path), columns=columns)
