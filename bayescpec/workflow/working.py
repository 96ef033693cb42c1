"""The working result: ``results/result.nc`` and its quick CSV tables, what ``report results/`` and the
analyses read. ``bayescpec run`` writes it, and so does ``bayescpec update`` (after saving its
vintage), so the working result always holds the newest fit of the log.

:func:`stale_note` says, for any saved result, whether the input files it was fitted on changed since,
and what to use instead: the newest vintage fitted on the files as they are now, or the command that
makes one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import xarray as xr

from .._fs import publish_directory, staged_folder
from ..inputs.files import sha256_file
from .store import RESULT_FILE, save_result

__all__ = ["QUICK_TABLES", "quick_tables", "write_working_result", "changed_inputs", "stale_note"]

#: the CSV tables written beside result.nc
QUICK_TABLES = ("channels", "propositions", "constraints", "stages")


def quick_tables(result: xr.DataTree, *, threshold: float = 0.5, ci_kind: str = "eti", ci_prob: float = 0.90) -> dict:
    """The tables written beside result.nc (and printed by ``run``): {name: DataFrame}."""
    from ..outputs.chain import stage_table
    from ..outputs.summary import channel_table, constraint_table, proposition_table

    return {
        "channels": channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob),
        "propositions": proposition_table(result, threshold=threshold),
        "constraints": constraint_table(result, ci_kind=ci_kind, ci_prob=ci_prob),
        "stages": stage_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob),
    }


def write_working_result(result: xr.DataTree, out: str | Path, *, tables: dict | None = None, threshold: float = 0.5,
                         ci_kind: str = "eti", ci_prob: float = 0.90, saved: str | Path | None = None) -> list[Path]:
    """Write ``result`` as ``out/result.nc`` with its quick CSV tables (``tables``, else computed with
    these options), replacing what was there: everything is written into a staging folder first and
    moved in file by file (each by rename), so a failure leaves the previous files whole. Other
    files in ``out`` (vintages/, report/) are left alone. Returns the files written.

    ``saved``: a file holding ``result`` already serialised (its vintage's ``result.nc``, written from
    this very object): its bytes are copied instead of serialising the result a second time."""
    from ..outputs.export import write_table

    out = Path(out)
    tables = tables if tables is not None else quick_tables(result, threshold=threshold, ci_kind=ci_kind,
                                                            ci_prob=ci_prob)
    staging = staged_folder(out)
    try:
        if saved is not None:
            shutil.copyfile(saved, staging / RESULT_FILE)
        else:
            save_result(result, staging / RESULT_FILE)
        for name, table in tables.items():
            write_table(table, staging / f"{name}.csv")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # nothing half-written is left behind
        raise
    publish_directory(staging, out)
    return [out / RESULT_FILE] + [out / f"{name}.csv" for name in tables]


def changed_inputs(result: xr.DataTree) -> dict[str, str]:
    """{role: file} of the model inputs (evidence, framework, priors) whose file changed or went away
    since ``result`` was fitted; the sources file is provenance and not compared."""
    from .vintages import MODEL_INPUTS

    files = json.loads(result.attrs.get("input_files", "{}") or "{}")
    saved = json.loads(result.attrs.get("input_sha256", "{}") or "{}")
    changed = {}
    for role in MODEL_INPUTS:
        path = files.get(role)
        if not path or not saved.get(role) or "(rows in memory)" in path:
            continue
        if not Path(path).is_file() or sha256_file(Path(path)) != saved[role]:
            changed[role] = path
    return changed


def _vintage_roots(path: Path) -> list[Path]:
    """Where newer vintages of the result at ``path`` would be: ``<its folder>/vintages`` and, for a
    vintage itself, the folder of vintages it is in."""
    folder = path if path.is_dir() else path.parent
    roots = [folder / "vintages"]
    if folder.parent.name == "vintages":
        roots.append(folder.parent)
    return [root for root in roots if root.is_dir()]


def _run_command(result: xr.DataTree, folder: Path) -> str:
    prior_set = str(result.attrs.get("prior_set", "baseline"))
    parts = ["bayescpec run"]
    if prior_set != "baseline":
        parts.append(f"--priors {prior_set}")
    if folder.name != "results" or folder.parent.resolve() != Path.cwd().resolve():
        parts.append(f"--out {folder}")
    return " ".join(parts)


def stale_note(result: xr.DataTree, path: str | Path, *, command: str = "report") -> str:
    """'' when the input files ``result`` (saved at ``path``) was fitted on are unchanged; else a
    sentence naming what changed and what to use: the newest vintage fitted on the files as they
    are now (``bayescpec COMMAND <vintage>``), or the ``bayescpec run`` that makes a current result."""
    from .vintages import newest_on_inputs

    changed = changed_inputs(result)
    if not changed:
        return ""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    what = "; ".join(f"{file} ({role})" + ("" if Path(file).is_file() else ", now missing")
                     for role, file in changed.items())
    rows = result.attrs.get("evidence_rows", "?")
    text = (f"{folder}/{RESULT_FILE} was fitted on input files that changed since (its evidence: {rows} rows as of "
            f"{result.attrs.get('as_of', '?')}); changed: {what}.")
    if any(not Path(file).is_file() for file in changed.values()):
        return text + f" Refit with the files you have now: `{_run_command(result, folder)}`."
    files = json.loads(result.attrs.get("input_files", "{}") or "{}")
    now = {role: sha256_file(Path(files[role])) for role in changed}
    saved = json.loads(result.attrs.get("input_sha256", "{}") or "{}")
    hashes = {role: now.get(role, saved.get(role, "")) for role in ("evidence", "framework", "priors")}
    prior_set = str(result.attrs.get("prior_set", "baseline"))
    for root in _vintage_roots(path):
        newer = newest_on_inputs(root, hashes, prior_set)
        if newer is not None and newer.path.resolve() != folder.resolve():
            return text + (f" The vintage {newer.name} was fitted on the files as they are now: "
                           f"`bayescpec {command} {newer.path}`; or refit: `{_run_command(result, folder)}`.")
    return text + f" No saved fit of the files as they are now: refit with `{_run_command(result, folder)}`."
