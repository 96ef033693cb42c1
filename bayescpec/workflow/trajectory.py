"""How the posterior evolved as evidence arrived: one fit per evidence date.

:func:`evidence_trajectory` replays the analysis as of every distinct ``observed`` date in the log
(or as of given dates), exactly as ``bayescpec run --as-of DATE`` would, and tabulates each
channel's P(converting), posterior mean and interval; :func:`bayescpec.outputs.figures.plot_trajectory`
draws it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable

import pandas as pd

from ..inputs.study import Study

__all__ = ["as_of_study", "evidence_dates", "evidence_trajectory"]


def evidence_dates(study: Study) -> list[dt.date]:
    """The distinct ``observed`` dates of the study's evidence (on or before its as-of date)."""
    return sorted(set(study.evidence["observed"]))


def as_of_study(study: Study, date: dt.date | str) -> Study:
    """``study`` with only the rows observed on or before ``date`` (as ``load_study(as_of=date)``)."""
    if isinstance(date, str):
        date = dt.date.fromisoformat(date)
    every = study.evidence_all if study.evidence_all is not None else study.evidence
    used = every[every["observed"] <= date].reset_index(drop=True)
    return dataclasses.replace(study, evidence=used, as_of=date, excluded_after_as_of=len(every) - len(used))


def _trajectory_point(task: tuple) -> tuple[pd.DataFrame, dict]:
    """One date of a trajectory (a module-level function of a picklable task, to run in any worker)."""
    from ..engine.aggregate import observation_rows
    from ..engine.sampling import fit
    from ..outputs.summary import channel_table, interval_label

    study, date, threshold, ci_kind, ci_prob, fit_kwargs = task
    label = interval_label(ci_kind, ci_prob)
    sub = as_of_study(study, date)
    result = fit(sub, **fit_kwargs)  # one compiled model serves every date in this process
    table = channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    frame = pd.DataFrame({
        "date": date,
        "rows": len(observation_rows(sub.evidence)),
        "channel": table["channel"],
        "label": table["label"],
        "prior_p_converting": table["prior_p_converting"],
        "p_converting": table["p_converting"],
        "posterior_mean": table["posterior_mean"],
        "lower": table[f"{label} lower"],
        "upper": table[f"{label} upper"],
        "likelihood": table["likelihood"],
        "converged": bool(result.attrs["converged"]),
    })
    return frame, {key: result.attrs.get(key) for key in ("draws", "chains", "tune", "seed", "sampler",
                                                           "bayescpec_version")}


def evidence_trajectory(
    study: Study,
    *,
    dates: Iterable[dt.date | str] | None = None,
    threshold: float = 0.5,
    ci_kind: str = "eti",
    ci_prob: float = 0.90,
    progress: Callable[[dt.date, pd.DataFrame], None] | None = None,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    **fit_kwargs,
) -> pd.DataFrame:
    """Fit the study as of each date (default: every distinct evidence date) and tabulate, per date
    and channel: rows used, prior and posterior P(theta > threshold), posterior mean, interval and
    IPCC term. ``fit_kwargs`` go to :func:`bayescpec.fit` (the model is compiled once per process and
    reused). The fits run where :func:`bayescpec.workflow.executor.run_tasks` says (``executor``,
    ``workers``, ``scheduler``); ``progress(date, frame)`` is called as each date finishes."""
    from ..engine.compiled import choose_backend, warm_cache
    from ..outputs.summary import interval_label
    from .executor import run_tasks

    wanted = sorted({dt.date.fromisoformat(d) if isinstance(d, str) else d for d in dates}) if dates is not None \
        else evidence_dates(study)
    label = interval_label(ci_kind, ci_prob)
    fit_kwargs["sampler"] = choose_backend(fit_kwargs.get("sampler", "auto"), fits=len(wanted))
    warm_cache(study, fit_kwargs["sampler"])  # dates with the same units share the compiled model
    tasks = [(study, date, threshold, ci_kind, ci_prob, fit_kwargs) for date in wanted]
    on_result = None if progress is None else (lambda i, point: progress(wanted[i], point[0]))
    points = run_tasks(_trajectory_point, tasks, executor=executor, workers=workers, scheduler=scheduler,
                       on_result=on_result)
    frames = [frame for frame, _ in points]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["date", "rows", "channel", "label", "prior_p_converting", "p_converting", "posterior_mean",
                 "lower", "upper", "likelihood", "converged"])
    out.attrs = {"title": f"P(converting) = P(theta > {threshold:g}) as evidence arrived",
                 "interval": label, "threshold": threshold, "prior_set": study.prior_set,
                 "evidence_sha256": study.hashes.get("evidence", "")[:12],
                 "as_of": str(wanted[-1]) if wanted else str(study.as_of),
                 "converged": bool(out["converged"].all()) if len(out) else True}
    if points:
        out.attrs.update(points[-1][1])
    return out
