"""The update workflow: append new evidence, refit or reweight, save a new vintage.

``update_evidence`` appends new rows with :func:`bayescpec.inputs.append.append_evidence`, then fits
the updated log (the PSIS fast path when a previous vintage of the same inputs exists and the Pareto
k-hat diagnostic allows it, a full refit otherwise) and saves the result as a new vintage (see
:mod:`bayescpec.workflow.vintages`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..inputs.append import AppendReport, append_evidence

__all__ = ["UpdateOutcome", "update_evidence", "update_result"]


def update_result(previous, study, *, method: str = "auto", khat_threshold: float = 0.7, **fit_kwargs):
    """The posterior of ``study`` from ``previous`` (a result on a subset of its rows, or None).

    ``method="auto"`` tries the PSIS fast path and falls back to a full refit when it is not
    applicable or its Pareto k-hat is not below ``khat_threshold``; ``"psis"`` raises
    :class:`~bayescpec.errors.BayescpecError` instead of falling back; ``"refit"`` always refits.
    The result's attrs say which was used (``update_method``), the k-hat and why.
    """
    from ..engine.fastpath import psis_update
    from ..engine.sampling import fit
    from ..errors import BayescpecError

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
    from ..inputs.study import load_study
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
