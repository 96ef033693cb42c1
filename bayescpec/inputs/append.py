"""Appending new evidence rows to an evidence log, safely.

``append_evidence`` is the only function that writes to an evidence log. It

1. validates the new rows exactly as ``bayescpec validate`` does (against the framework and the
   log's ``sources.csv``) and rejects the whole batch, listing every problem, if any row is bad;
2. compares each new row with the log as the *raw CSV text fields* (exact content equality):
   a row whose id and content are already in the log is skipped, a row whose id is in the log
   with different content is refused (naming both rows);
3. appends the remaining rows atomically: the log's original bytes plus the new lines are written
   to a temporary file in the log's folder, flushed to disk, and renamed over the log with
   ``os.replace``. An interrupted update leaves either the old log or the new one, never a
   half-written file, and never rewrites an earlier row (its bytes are copied, not re-serialised).

:func:`bayescpec.workflow.update.update_evidence` appends with it, then refits or reweights.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .._fs import atomic_write_bytes
from ..errors import EvidenceError, Problem
from .evidence import EVIDENCE_COLUMNS, read_evidence, read_sources, validate_evidence
from .text import TextProblem, decode_text, parse_csv

__all__ = ["AppendReport", "append_evidence"]


@dataclass(frozen=True)
class AppendReport:
    """What :func:`append_evidence` did to the log."""

    log: Path
    added: tuple[str, ...]
    skipped: tuple[str, ...]
    sha256_before: str
    sha256_after: str
    rows_before: int
    rows_after: int

    @property
    def changed(self) -> bool:
        return bool(self.added)

    def summary(self) -> str:
        text = f"{self.log}: {len(self.added)} row(s) appended"
        if self.skipped:
            text += f", {len(self.skipped)} already in the log skipped ({', '.join(self.skipped)})"
        return text + f"; {self.rows_before} -> {self.rows_after} rows"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _raw_records(data: bytes, file: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (stripped names) and every non-blank record as (the line it starts on, {column: text field})."""
    try:  # split exactly as read_evidence splits, so the rows compared are the rows validated
        records = parse_csv(decode_text(data, file), file, columns=EVIDENCE_COLUMNS)
    except TextProblem as exc:
        raise EvidenceError(exc.problems) from None
    return records.header, [(line, dict(zip(records.header, fields)))
                            for line, fields in zip(records.lines, records.rows)]


def _content(record: dict[str, str]) -> tuple[str, ...]:
    return tuple(record.get(column, "") for column in EVIDENCE_COLUMNS)


def _line_terminator(data: bytes) -> str:
    return "\r\n" if b"\r\n" in data else "\n"


class _LockedLog:
    """An exclusive advisory lock on the log file (re-opened if it was replaced meanwhile)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = None

    def __enter__(self):
        import fcntl

        while True:
            handle = open(self.path, "rb")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino:
                self.handle = handle
                return handle
            handle.close()  # another update replaced the file while we waited: lock the new one

    def __exit__(self, *exc):
        self.handle.close()  # releases the lock


def append_evidence(
    new: str | Path,
    *,
    evidence: str | Path | None = None,
    framework: str | Path | None = None,
    today: dt.date | None = None,
) -> AppendReport:
    """Validate the rows of ``new`` and append those not yet in the log ``evidence``, atomically.

    Raises :class:`~bayescpec.errors.EvidenceError` (exit code 2 in the CLI) listing every
    problem -- invalid rows, ids already in the log with different content, columns the log has
    no room for -- and then leaves the log untouched. Returns an :class:`AppendReport`.
    """
    from .spec import load_framework
    from .study import shipped_path

    new_path = Path(new)
    log_path = Path(evidence) if evidence is not None else shipped_path("evidence", "cpec.csv")
    framework_path = Path(framework) if framework is not None else shipped_path("priors", "framework.toml")
    if not log_path.is_file():
        what = "is a folder, not an evidence log" if log_path.is_dir() else "no evidence log here to update"
        raise EvidenceError([Problem(str(log_path), None, None, what)])
    fw = load_framework(framework_path)

    problems: list[Problem] = []
    sources = None
    try:
        sources = read_sources(log_path.parent / "sources.csv")
    except EvidenceError as exc:
        problems += exc.problems
    for path in (log_path, new_path):  # the log too: rows appended to an invalid log could not be fitted
        try:  # exactly what `bayescpec validate PATH` checks
            validate_evidence(read_evidence(path), fw, sources=sources, file=str(path), today=today)
        except EvidenceError as exc:
            problems += exc.problems
    if problems:
        raise EvidenceError(problems)

    with _LockedLog(log_path) as handle:
        original = handle.read()
        log_header, log_records = _raw_records(original, str(log_path))
        _, new_records = _raw_records(new_path.read_bytes(), str(new_path))
        by_id = {}
        for line, record in log_records:
            by_id.setdefault(record.get("id", "").strip(), (line, record))
        added, skipped, lines = [], [], []
        for line, record in new_records:
            row_id = record.get("id", "").strip()
            if row_id in by_id:
                log_line, existing = by_id[row_id]
                if _content(existing) == _content(record):
                    skipped.append(row_id)
                    continue
                differ = [c for c in EVIDENCE_COLUMNS if existing.get(c, "") != record.get(c, "")]
                problems.append(Problem(
                    str(new_path), f"line {line} (id {row_id!r})", "id",
                    f"id {row_id!r} is already in the log ({log_path}, line {log_line}) with different "
                    f"content (differs in: {', '.join(differ)}); an evidence row is never rewritten -- "
                    f"give the new observation a new id"))
                continue
            missing = [c for c in record if c not in log_header and record[c] != ""]
            if missing:
                problems.append(Problem(
                    str(new_path), f"line {line} (id {row_id!r})", missing[0],
                    f"the log {log_path} has no column(s) {', '.join(missing)}; add them to the log's header first"))
                continue
            added.append(row_id)
            lines.append([record.get(c, "") for c in log_header])
        if problems:
            raise EvidenceError(problems)
        before = _sha256(original)
        if not lines:
            return AppendReport(log_path, (), tuple(skipped), before, before, len(log_records), len(log_records))
        terminator = _line_terminator(original)
        buffer = io.StringIO(newline="")
        csv.writer(buffer, lineterminator=terminator).writerows(lines)
        prefix = b"" if original.endswith((b"\n", b"\r")) or not original else terminator.encode()
        updated = original + prefix + buffer.getvalue().encode("utf-8")
        atomic_write_bytes(log_path, updated)
    return AppendReport(log_path, tuple(added), tuple(skipped), before, _sha256(updated),
                        len(log_records), len(log_records) + len(added))
