"""The update workflow: append new evidence, refit or reweight, save a new vintage.

``update_evidence`` checks the new rows, fits the log as they would leave it (on a scratch copy: the
PSIS fast path when a previous vintage of the same inputs exists and the Pareto k-hat diagnostic
allows it, a full refit otherwise), and only then appends them with
:func:`bayescpec.inputs.append.append_evidence`, saves the result as a new vintage (see
:mod:`bayescpec.workflow.vintages`) and makes it the working result (``results/result.nc`` and its
quick CSVs, :mod:`bayescpec.workflow.working`): a fit that fails or is interrupted leaves the log
untouched, and after an update ``report results/`` reports the updated evidence.
With ``dry_run=True`` it checks the rows, decides between the fast path and a refit on the same
scratch copy, and writes nothing.

:func:`plain_summary` says in plain words how the new rows were taken in (for a policy reader); the
technical figures (k-hat, importance ESS, the sampler's reason) stay in the result's attrs.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..engine.limits import SAMPLING_LIMITS, check_sampling_options
from .._fs import check_output_folder
from ..inputs.append import AppendReport, append_evidence, confirm_hypothetical, plan_append

__all__ = ["UpdateOutcome", "update_evidence", "update_result", "plain_summary"]


def update_result(previous, study, *, method: str = "auto", khat_threshold: float | None = None, **fit_kwargs):
    """The posterior of ``study`` from ``previous`` (a result on a subset of its rows, or None).

    ``method="auto"`` tries the PSIS fast path and falls back to a full refit when it is not
    applicable or its Pareto k-hat is not below ``khat_threshold`` (default: the documented
    min(1 - 1/log10 S, 0.7) for the previous result's S draws,
    :func:`~bayescpec.engine.fastpath.khat_threshold_for`); ``"psis"`` raises
    :class:`~bayescpec.errors.BayescpecError` instead of falling back; ``"refit"`` always refits.
    The result's attrs say which was used (``update_method``), the k-hat and why
    (``update_reason``, technical; ``update_summary``, in plain words).
    """
    from ..engine.sampling import fit
    from ..errors import BayescpecError

    if method not in ("auto", "psis", "refit"):
        raise InputError(f"method: must be 'auto', 'psis' or 'refit'; found {method!r}")
    started = time.perf_counter()
    attempt, reason = _try_fast_path(previous, study, method, khat_threshold, fit_kwargs.get("seed"))
    if attempt is not None and attempt.accepted:
        attempt.result.attrs["update_summary"] = plain_summary(attempt.result.attrs)
        return attempt.result
    if method == "psis":
        raise BayescpecError(f"fast path refused: {reason}")
    result = fit(study, **fit_kwargs)
    result.attrs.update({
        "update_method": "refit",
        "pareto_khat": float(attempt.khat) if attempt is not None else float("nan"),
        "update_reason": reason,
        "update_seconds": round(time.perf_counter() - started, 3),
    })
    result.attrs["update_summary"] = plain_summary(result.attrs)
    return result


def _try_fast_path(previous, study, method: str, khat_threshold: float | None, seed):
    """(the PSIS attempt or None, the technical reason)."""
    from ..engine.fastpath import psis_update

    if method == "refit":
        return None, "refit requested"
    if previous is None:
        return None, "no previous result of these inputs to reweight"
    attempt = psis_update(previous, study, khat_threshold=khat_threshold, seed=seed)
    return attempt, attempt.reason


def _plain_reason(reason: str) -> str:
    """Why the quick reweighting was not used, in plain words (the technical reason as a fallback)."""
    text = reason.lower()
    if "refit requested" in text:
        return "a full refit was asked for (--method refit), so the model was refitted"
    if "no previous result" in text:
        return ("there was no earlier fit of this evidence log with these inputs to build on, "
                "so the model was fitted from scratch")
    if "k-hat" in text or "too little left" in text or "too far" in text or "zero likelihood" in text \
            or "no importance weight" in text:
        return ("the new rows changed the picture too much for a quick reweighting of the previous fit, "
                "so the model was refitted")
    if "convergence" in text:
        return "the previous fit failed its convergence checks, so it could not be reused; the model was refitted"
    if "changed" in text or "prior set" in text or "not in the new evidence" in text:
        return f"the earlier fit no longer matches the inputs ({reason}), so the model was refitted"
    return f"the quick reweighting could not be used ({reason}), so the model was refitted"


def plain_summary(attrs) -> str:
    """How an updated result took in its new rows, for a policy reader (from its attrs)."""
    method = attrs.get("update_method")
    if method == "psis":
        size = int(attrs.get("chains", 0)) * int(attrs.get("draws", 0))
        ess = float(attrs.get("min_ess_bulk", float("nan")))
        return ("the new rows were folded into the previous fit by reweighting its draws "
                f"(reliable: the reweighted draws are worth about {ess:,.0f} independent draws of the "
                f"{size:,} kept, 400 are needed; no refit was necessary)")
    if method == "refit":
        return _plain_reason(str(attrs.get("update_reason", "")))
    return "a fresh fit of the whole evidence log"


@dataclass
class UpdateOutcome:
    """What :func:`update_evidence` did (or, with ``dry_run``, would do): the append, the method, the
    new vintage. ``summary`` says in plain words how the rows were taken in; ``result`` of a dry run
    is the reweighted preview when the fast path would be used (None when a refit would be needed)."""

    append: AppendReport
    result: object = None           # xarray.DataTree, or None when nothing was appended
    vintage: Path | None = None
    previous: Path | None = None
    method: str | None = None
    khat: float | None = None
    reason: str = ""
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    dry_run: bool = False
    summary: str = ""
    rows: tuple[dict, ...] = ()     # the raw fields of the rows appended (or that would be)
    reused: bool = False            # the same fit was already a vintage: nothing new was saved
    working: Path | None = None     # the folder whose result.nc and quick CSVs now hold ``result``
    working_note: str = ""          # why the working result was left alone (another update changed the log)


def update_evidence(
    new: str | Path,
    *,
    evidence: str | Path | None = None,
    framework: str | Path | None = None,
    priors: str | Path = "baseline",
    vintages: str | Path | None = None,
    out: str | Path | None = None,
    previous: str | Path | None = None,
    method: str = "auto",
    khat_threshold: float | None = None,
    today: dt.date | None = None,
    allow_hypothetical: bool = True,
    dry_run: bool = False,
    threshold: float = 0.5,
    **fit_kwargs,
) -> UpdateOutcome:
    """Append ``new`` to the evidence log, refit (or reweight) and save the result as a new vintage.

    ``previous`` is a saved result to start the fast path from; by default the newest vintage in
    ``vintages`` fitted on exactly the log as it was before this update (same framework and prior
    set). Nothing is fitted or saved when every new row was already in the log. The updated result
    replaces the working result in ``out`` (``result.nc`` and the quick CSVs; default: the folder
    holding ``vintages``, ``results/``), unless another update changed the log meanwhile.
    ``allow_hypothetical=False`` refuses rows marked hypothetical or synthetic when the log has
    none (:class:`~bayescpec.inputs.append.HypotheticalRowsError`; what the CLI does without
    ``--yes``). ``dry_run=True`` checks everything and decides fast path or refit, writing nothing.
    ``threshold`` is τ of the working result's quick CSV tables.
    """
    from ..inputs.study import load_study
    from .vintages import DEFAULT_ROOT, find_previous, load_vintage, save_vintage

    if method not in ("auto", "psis", "refit"):
        raise InputError(f"--method: must be 'auto', 'psis' or 'refit'; found {method!r}")
    check_sampling_options(**{k: v for k, v in fit_kwargs.items() if k in SAMPLING_LIMITS})  # before any append
    root = Path(vintages) if vintages is not None else Path(DEFAULT_ROOT)
    check_output_folder(root, "--vintages")  # found now, not after the fit when the vintage is saved
    working = Path(out) if out is not None else root.parent
    check_output_folder(working, "--out")
    if dry_run:
        return _dry_run(new, evidence=evidence, framework=framework, priors=priors, root=root, working=working,
                        previous=previous,
                        method=method, khat_threshold=khat_threshold, today=today,
                        allow_hypothetical=allow_hypothetical, seed=fit_kwargs.get("seed"))
    plan = plan_append(new, evidence=evidence, framework=framework, today=today)
    if not allow_hypothetical:
        confirm_hypothetical(plan)
    if not plan.added:
        return UpdateOutcome(plan.report(dry_run=False),
                             reason="no new rows: the log, its fits and its vintages are unchanged",
                             summary="no new rows: the log, its fits and its vintages are unchanged")
    started = time.perf_counter()

    def fitted(study, log_sha256_before):
        previous_path = Path(previous) if previous is not None else find_previous(root, study, log_sha256_before,
                                                                                  working=working)
        previous_result = load_vintage(previous_path) if previous_path is not None else None
        return update_result(previous_result, study, method=method, khat_threshold=khat_threshold,
                             **fit_kwargs), previous_path

    # fit the updated log on a scratch copy first: a fit that fails (or Ctrl-C) has written nothing
    study = _scratch_study(plan, framework=framework, priors=priors, today=today)
    result, previous_path = fitted(study, plan.report(dry_run=True).sha256_before)
    report = append_evidence(new, evidence=evidence, framework=framework, today=today,
                             allow_hypothetical=allow_hypothetical)  # under the lock; checks everything again
    if report.sha256_after != study.hashes["evidence"]:
        # another update changed the log while this one fitted: fit the log as it now is (its rows too)
        study = load_study(framework=framework, priors=priors, evidence=report.log, today=today)
        result, previous_path = fitted(study, report.sha256_before)
    result.attrs["previous_result"] = str(previous_path) if previous_path is not None else ""
    seconds = time.perf_counter() - started
    result.attrs["update_seconds"] = round(seconds, 3)
    from .store import RESULT_FILE
    from .vintages import find_vintage

    reused = find_vintage(result, root=root) is not None
    path = save_vintage(result, root=root)
    written, note = _make_working(result, working, report.log, threshold=threshold,
                                  saved=None if reused else path / RESULT_FILE)
    return UpdateOutcome(report, result, path, previous_path, result.attrs["update_method"],
                         float(result.attrs.get("pareto_khat", float("nan"))),
                         str(result.attrs.get("update_reason", "")), seconds,
                         summary=str(result.attrs.get("update_summary", "")), rows=report.records, reused=reused,
                         working=written, working_note=note)


def _make_working(result, working: Path, log: Path, *, threshold: float,
                  saved: Path | None = None) -> tuple[Path | None, str]:
    """Make ``result`` the working result in ``working`` -- unless the log changed since it was fitted
    (another update appended meanwhile: its own result is the newer one). (folder or None, note).
    ``saved``: the vintage file just written from ``result``, copied rather than serialised again."""
    import json

    from ..inputs.files import sha256_file
    from .working import write_working_result

    fitted_on = json.loads(result.attrs.get("input_sha256", "{}")).get("evidence")
    if log.is_file() and sha256_file(log) != fitted_on:
        return None, (f"{working}/result.nc was left as it was: another update changed {log} while this one "
                      "fitted (its result is the newer one)")
    write_working_result(result, working, threshold=threshold, saved=saved)
    return working, ""


def _scratch_study(plan, *, framework, priors, today):
    """The study of the log as ``plan`` would leave it, read from a temporary copy (the log itself is not
    touched); its files name the log, and its evidence hash is that of the updated log's bytes."""
    import dataclasses

    from ..inputs.study import load_study

    scratch = Path(tempfile.mkdtemp(prefix="bayescpec-update-"))
    try:
        copy = scratch / plan.log.name
        copy.write_bytes(plan.updated)
        study = load_study(framework=framework, priors=priors, evidence=copy, sources=plan.log.parent / "sources.csv",
                           today=today)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(study, files={**study.files, "evidence": str(plan.log)})


def _dry_run(new, *, evidence, framework, priors, root: Path, working: Path, previous, method, khat_threshold, today,
             allow_hypothetical: bool, seed) -> UpdateOutcome:
    """Check the rows and decide fast path or refit on a temporary copy of the updated log."""
    from .vintages import find_previous, load_vintage

    plan = plan_append(new, evidence=evidence, framework=framework, today=today)
    if not allow_hypothetical:
        confirm_hypothetical(plan)
    report = plan.report(dry_run=True)
    if not plan.added:
        return UpdateOutcome(report, reason="no new rows: the log, its fits and its vintages are unchanged",
                             summary="no new rows: nothing would change", dry_run=True)
    study = _scratch_study(plan, framework=framework, priors=priors, today=today)
    previous_path = Path(previous) if previous is not None else find_previous(root, study, report.sha256_before,
                                                                              working=working)
    previous_result = load_vintage(previous_path) if previous_path is not None else None
    attempt, reason = _try_fast_path(previous_result, study, method, khat_threshold, seed)
    if attempt is not None and attempt.accepted:
        preview = attempt.result
        preview.attrs["update_summary"] = plain_summary(preview.attrs)
        return UpdateOutcome(report, preview, None, previous_path, "psis", float(attempt.khat), reason,
                             dry_run=True, summary=preview.attrs["update_summary"], rows=plan.records)
    summary = _plain_reason(reason).replace("so the model was refitted", "so the model would be refitted") \
        .replace("so the model was fitted from scratch", "so the model would be fitted from scratch") \
        .replace("the model was refitted", "the model would be refitted")
    return UpdateOutcome(report, None, None, previous_path, "refit",
                         float(attempt.khat) if attempt is not None else float("nan"), reason, dry_run=True,
                         summary=summary, rows=plan.records)
