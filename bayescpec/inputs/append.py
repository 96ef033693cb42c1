"""Appending new evidence rows to an evidence log, safely.

``append_evidence`` is the only function that writes to an evidence log (:func:`plan_append` says
what it would append, writing nothing). It

1. validates the new rows exactly as ``bayescpec validate`` does (against the framework and the
   log's ``sources.csv``) and rejects the whole batch, listing every problem, if any row is bad;
2. compares each new row with the log as the *raw CSV text fields* (exact content equality):
   a row whose id and content are already in the log is skipped, a row whose id is in the log
   with different content is refused (naming both rows);
3. refuses, when asked to (``allow_hypothetical=False``, what ``bayescpec update`` does without
   ``--yes``), to put rows marked hypothetical or synthetic (their source key, id, note or their
   source's reference says so) into a log that has none: :class:`HypotheticalRowsError`;
4. appends the remaining rows atomically: the log's original bytes plus the new lines are written
   to a temporary file in the log's folder, flushed to disk, and renamed over the log with
   ``os.replace``. An interrupted update leaves either the old log or the new one, never a
   half-written file, and never rewrites an earlier row (its bytes are copied, not re-serialised).

:func:`bayescpec.workflow.update.update_evidence` fits the log as the rows would leave it (a scratch copy,
from :func:`plan_append`), then appends with it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .._fs import atomic_write_bytes
from ..errors import EvidenceError, Problem
from .text import TextProblem, decode_text, parse_csv
from .evidence import EVIDENCE_COLUMNS, read_evidence, read_sources, validate_evidence

__all__ = ["AppendReport", "AppendPlan", "HypotheticalRowsError", "append_evidence", "plan_append",
           "is_hypothetical", "confirm_hypothetical"]

#: words that mark a row as not real evidence (in its source key, id, note or its source's reference)
HYPOTHETICAL_MARK = re.compile(r"hypothetical|synthetic", re.IGNORECASE)


class HypotheticalRowsError(EvidenceError):
    """Rows marked hypothetical would go into a log of real evidence, and nobody confirmed it."""


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
    dry_run: bool = False
    hypothetical: tuple[str, ...] = ()
    records: tuple[dict, ...] = field(default=(), repr=False)   # raw text fields of the rows added
    needs_confirmation: bool = False  # hypothetical rows into a log that has none (see allow_hypothetical)

    @property
    def changed(self) -> bool:
        return bool(self.added)

    def summary(self) -> str:
        verb = "would be appended (dry run: nothing written)" if self.dry_run else "appended"
        text = f"{self.log}: {len(self.added)} row(s) {verb}"
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


def is_hypothetical(record: dict[str, str], sources: dict[str, str] | None = None) -> bool:
    """True when a raw evidence record says it is not real evidence: "hypothetical" or "synthetic"
    (any case) in its source key, id or note, or in the reference of its source in ``sources``."""
    source = record.get("source", "").strip()
    texts = (source, record.get("id", ""), record.get("note", ""), (sources or {}).get(source, ""))
    return any(HYPOTHETICAL_MARK.search(text or "") for text in texts)


@dataclass(frozen=True)
class AppendPlan:
    """What :func:`append_evidence` would do to the log: checked, nothing written."""

    log: Path
    new: Path
    added: tuple[str, ...]
    skipped: tuple[str, ...]
    records: tuple[dict, ...]          # the raw text fields of each row to append, in order
    original: bytes = field(repr=False)
    updated: bytes = field(repr=False)
    rows_before: int
    hypothetical: tuple[str, ...]      # ids of rows to append that are marked hypothetical/synthetic
    log_has_hypothetical: bool

    @property
    def needs_confirmation(self) -> bool:
        """Hypothetical rows would enter a log that has none."""
        return bool(self.hypothetical) and not self.log_has_hypothetical

    def report(self, *, dry_run: bool) -> AppendReport:
        before = _sha256(self.original)
        return AppendReport(self.log, self.added, self.skipped, before, _sha256(self.updated), self.rows_before,
                            self.rows_before + len(self.added), dry_run, self.hypothetical, self.records,
                            self.needs_confirmation)


def _paths(new, evidence, framework) -> tuple[Path, Path, Path]:
    from .study import default_evidence, shipped_path

    log_path = Path(evidence) if evidence is not None else default_evidence()
    framework_path = Path(framework) if framework is not None else shipped_path("priors", "framework.toml")
    return Path(new), log_path, framework_path


def _check_batch(new_path: Path, log_path: Path, framework_path: Path, today):
    """Validate the new rows as `bayescpec validate` does; return the log's sources {key: reference}."""
    from .spec import load_framework

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
            validate_evidence(read_evidence(path), fw, sources=sources, file=str(path), today=today,
                              sources_file=str(log_path.parent / "sources.csv"))
        except EvidenceError as exc:
            problems += exc.problems
    if problems:
        raise EvidenceError(problems)
    if sources is None or "key" not in sources.columns:
        return {}
    references = sources["reference"] if "reference" in sources.columns else [""] * len(sources)
    return {str(k): str(r) for k, r in zip(sources["key"], references)}


def _plan(new_path: Path, log_path: Path, original: bytes, references: dict[str, str]) -> AppendPlan:
    log_header, log_records = _raw_records(original, str(log_path))
    _, new_records = _raw_records(new_path.read_bytes(), str(new_path))
    by_id = {}
    for line, record in log_records:
        by_id.setdefault(record.get("id", "").strip(), (line, record))
    problems: list[Problem] = []
    added, skipped, lines, records = [], [], [], []
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
        records.append(record)
        lines.append([record.get(c, "") for c in log_header])
    if problems:
        raise EvidenceError(problems)
    updated = original
    if lines:
        terminator = _line_terminator(original)
        buffer = io.StringIO(newline="")
        csv.writer(buffer, lineterminator=terminator).writerows(lines)
        prefix = b"" if original.endswith((b"\n", b"\r")) or not original else terminator.encode()
        updated = original + prefix + buffer.getvalue().encode("utf-8")
    hypothetical = tuple(r.get("id", "").strip() for r in records if is_hypothetical(r, references))
    return AppendPlan(log_path, new_path, tuple(added), tuple(skipped), tuple(records), original, updated,
                      len(log_records), hypothetical, any(is_hypothetical(r, references) for _, r in log_records))


def plan_append(
    new: str | Path,
    *,
    evidence: str | Path | None = None,
    framework: str | Path | None = None,
    today: dt.date | None = None,
) -> AppendPlan:
    """Check the rows of ``new`` exactly as :func:`append_evidence` does and say what it would append
    (rows, the log's bytes after, hypothetical rows), writing nothing. Raises the same errors."""
    new_path, log_path, framework_path = _paths(new, evidence, framework)
    references = _check_batch(new_path, log_path, framework_path, today)
    return _plan(new_path, log_path, log_path.read_bytes(), references)


def confirm_hypothetical(plan: AppendPlan) -> None:
    """Raise :class:`HypotheticalRowsError` when the plan would put hypothetical rows into a real log."""
    if plan.needs_confirmation:
        ids = ", ".join(plan.hypothetical[:5]) + (", ..." if len(plan.hypothetical) > 5 else "")
        raise HypotheticalRowsError([Problem(
            str(plan.new), None, None,
            f"{len(plan.hypothetical)} of the {len(plan.added)} new row(s) are marked hypothetical or synthetic "
            f"({ids}), and the log {plan.log} has no such rows: it looks like a log of real evidence. "
            f"Nothing was written. To append them anyway, confirm with --yes (allow_hypothetical=True); "
            f"to try them out, use a copy of the log")])


def append_evidence(
    new: str | Path,
    *,
    evidence: str | Path | None = None,
    framework: str | Path | None = None,
    today: dt.date | None = None,
    allow_hypothetical: bool = True,
    dry_run: bool = False,
) -> AppendReport:
    """Validate the rows of ``new`` and append those not yet in the log ``evidence``, atomically.

    Raises :class:`~bayescpec.errors.EvidenceError` (exit code 2 in the CLI) listing every
    problem -- invalid rows, ids already in the log with different content, columns the log has
    no room for -- and then leaves the log untouched. With ``allow_hypothetical=False``, rows marked
    hypothetical or synthetic (see :func:`is_hypothetical`) are refused with
    :class:`HypotheticalRowsError` when the log has none. ``dry_run=True`` checks everything and
    writes nothing. Returns an :class:`AppendReport`.
    """
    new_path, log_path, framework_path = _paths(new, evidence, framework)
    references = _check_batch(new_path, log_path, framework_path, today)
    if dry_run:
        plan = _plan(new_path, log_path, log_path.read_bytes(), references)
        if not allow_hypothetical:
            confirm_hypothetical(plan)
        return plan.report(dry_run=True)
    with _LockedLog(log_path) as handle:
        plan = _plan(new_path, log_path, handle.read(), references)
        if not allow_hypothetical:
            confirm_hypothetical(plan)
        if plan.added:
            atomic_write_bytes(log_path, plan.updated)
    return plan.report(dry_run=False)
