"""Appending new evidence to the log safely, and the whole update workflow (append, refit, save).

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

``update_evidence`` then fits the updated log (the PSIS fast path when a previous vintage of the
same inputs exists and the Pareto k-hat diagnostic allows it, a full refit otherwise) and saves the
result as a new vintage (see :mod:`bayescpec.vintages`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EvidenceError, InputError, Problem
from .evidence import EVIDENCE_COLUMNS, read_evidence, read_sources, validate_evidence

__all__ = ["AppendReport", "UpdateOutcome", "append_evidence", "update_evidence", "update_result"]


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


def _raw_records(data: bytes, file: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header (stripped names) and every non-blank record as {column: exact text field}."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceError([Problem(file, None, None, f"not UTF-8 text ({exc.reason})")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise EvidenceError([Problem(file, None, None, "file is empty; expected a header line and rows")]) from None
    records = []
    for fields in reader:
        if not fields or (len(fields) == 1 and fields[0].strip() == ""):
            continue  # blank line (pandas skips these too)
        records.append({name: (fields[i] if i < len(fields) else "") for i, name in enumerate(header)})
    return header, records


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
    if not log_path.exists():
        raise EvidenceError([Problem(str(log_path), None, None, "no evidence log here to update")])
    fw = load_framework(framework_path)

    problems: list[Problem] = []
    sources = None
    try:
        sources = read_sources(log_path.parent / "sources.csv")
    except EvidenceError as exc:
        problems += exc.problems
    try:  # exactly what `bayescpec validate NEW.csv` checks
        validate_evidence(read_evidence(new_path), fw, sources=sources, file=str(new_path), today=today)
    except EvidenceError as exc:
        problems += exc.problems
    if problems:
        raise EvidenceError(problems)

    with _LockedLog(log_path) as handle:
        original = handle.read()
        log_header, log_records = _raw_records(original, str(log_path))
        _, new_records = _raw_records(new_path.read_bytes(), str(new_path))
        by_id = {}
        for line, record in enumerate(log_records, start=2):
            by_id.setdefault(record.get("id", "").strip(), (line, record))
        added, skipped, lines = [], [], []
        for line, record in enumerate(new_records, start=2):
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
        _atomic_write(log_path, updated)
    return AppendReport(log_path, tuple(added), tuple(skipped), before, _sha256(updated),
                        len(log_records), len(log_records) + len(added))


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    mode = os.stat(path).st_mode & 0o777
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# refit or reweight, and the whole update


def update_result(previous, study, *, method: str = "auto", khat_threshold: float = 0.7, **fit_kwargs):
    """The posterior of ``study`` from ``previous`` (a result on a subset of its rows, or None).

    ``method="auto"`` tries the PSIS fast path and falls back to a full refit when it is not
    applicable or its Pareto k-hat is not below ``khat_threshold``; ``"psis"`` raises
    :class:`~bayescpec.errors.BayescpecError` instead of falling back; ``"refit"`` always refits.
    The result's attrs say which was used (``update_method``), the k-hat and why.
    """
    from .errors import BayescpecError
    from .fastpath import psis_update
    from .sampling import fit

    if method not in ("auto", "psis", "refit"):
        raise InputError(f"method: must be 'auto', 'psis' or 'refit'; found {method!r}")
    started = time.perf_counter()
    attempt = None
    if method != "refit":
        if previous is None:
            reason = "no previous result of these inputs to reweight"
        else:
            attempt = psis_update(previous, study, khat_threshold=khat_threshold,
                                  seed=fit_kwargs.get("seed"))
            reason = attempt.reason
            if attempt.accepted:
                return attempt.result
        if method == "psis":
            raise BayescpecError(f"fast path refused: {reason}")
    else:
        reason = "refit requested"
    result = fit(study, **fit_kwargs)
    result.attrs.update({
        "update_method": "refit",
        "pareto_khat": float(attempt.khat) if attempt is not None else float("nan"),
        "update_reason": reason,
        "update_seconds": round(time.perf_counter() - started, 3),
    })
    return result


@dataclass
class UpdateOutcome:
    """What :func:`update_evidence` did: the append, the method used, the new vintage."""

    append: AppendReport
    result: object = None           # xarray.DataTree, or None when nothing was appended
    vintage: Path | None = None
    previous: Path | None = None
    method: str | None = None
    khat: float | None = None
    reason: str = ""
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def update_evidence(
    new: str | Path,
    *,
    evidence: str | Path | None = None,
    framework: str | Path | None = None,
    priors: str | Path = "baseline",
    vintages: str | Path | None = None,
    previous: str | Path | None = None,
    method: str = "auto",
    khat_threshold: float = 0.7,
    today: dt.date | None = None,
    **fit_kwargs,
) -> UpdateOutcome:
    """Append ``new`` to the evidence log, refit (or reweight) and save the result as a new vintage.

    ``previous`` is a saved result to start the fast path from; by default the newest vintage in
    ``vintages`` fitted on exactly the log as it was before this update (same framework, prior
    set and sources). Nothing is fitted or saved when every new row was already in the log.
    """
    from .study import load_study
    from .vintages import DEFAULT_ROOT, find_previous, load_vintage, save_vintage

    if method not in ("auto", "psis", "refit"):
        raise InputError(f"--method: must be 'auto', 'psis' or 'refit'; found {method!r}")
    root = Path(vintages) if vintages is not None else Path(DEFAULT_ROOT)
    report = append_evidence(new, evidence=evidence, framework=framework, today=today)
    if not report.changed:
        return UpdateOutcome(report, reason="no new rows: the log, its fits and its vintages are unchanged")
    started = time.perf_counter()
    study = load_study(framework=framework, priors=priors, evidence=report.log, today=today)
    previous_path = Path(previous) if previous is not None else find_previous(root, study, report.sha256_before)
    previous_result = load_vintage(previous_path) if previous_path is not None else None
    result = update_result(previous_result, study, method=method, khat_threshold=khat_threshold, **fit_kwargs)
    result.attrs["previous_result"] = str(previous_path) if previous_path is not None else ""
    seconds = time.perf_counter() - started
    result.attrs["update_seconds"] = round(seconds, 3)
    path = save_vintage(result, root=root)
    return UpdateOutcome(report, result, path, previous_path, result.attrs["update_method"],
                         float(result.attrs.get("pareto_khat", float("nan"))),
                         str(result.attrs.get("update_reason", "")), seconds)
