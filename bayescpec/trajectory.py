"""How the posterior evolved as evidence arrived: one fit per evidence date.

:func:`evidence_trajectory` replays the analysis as of every distinct ``observed`` date in the log
(or as of given dates), exactly as ``bayescpec run --as-of DATE`` would, and tabulates each
channel's P(converting), posterior mean and interval; :func:`plot_trajectory` draws it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable

import pandas as pd

from .study import Study

__all__ = ["as_of_study", "evidence_dates", "evidence_trajectory", "plot_trajectory"]


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


def evidence_trajectory(
    study: Study,
    *,
    dates: Iterable[dt.date | str] | None = None,
    threshold: float = 0.5,
    ci_kind: str = "eti",
    ci_prob: float = 0.90,
    progress: Callable[[dt.date, pd.DataFrame], None] | None = None,
    **fit_kwargs,
) -> pd.DataFrame:
    """Fit the study as of each date (default: every distinct evidence date) and tabulate, per date
    and channel: rows used, prior and posterior P(theta > threshold), posterior mean, interval and
    IPCC term. ``fit_kwargs`` go to :func:`bayescpec.fit` (the model is built once and reused)."""
    from .sampling import fit
    from .model import build_model
    from .summary import channel_table, interval_label

    wanted = sorted({dt.date.fromisoformat(d) if isinstance(d, str) else d for d in dates}) if dates is not None \
        else evidence_dates(study)
    label = interval_label(ci_kind, ci_prob)
    model = build_model(study)
    frames = []
    for date in wanted:
        sub = as_of_study(study, date)
        result = fit(sub, model=model, **fit_kwargs)
        table = channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
        frame = pd.DataFrame({
            "date": date,
            "rows": len(sub.evidence),
            "channel": table["channel"],
            "prior_p_converting": table["prior_p_converting"],
            "p_converting": table["p_converting"],
            "posterior_mean": table["posterior_mean"],
            "lower": table[f"{label} lower"],
            "upper": table[f"{label} upper"],
            "likelihood": table["likelihood"],
            "converged": bool(result.attrs["converged"]),
        })
        frames.append(frame)
        if progress is not None:
            progress(date, frame)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["date", "rows", "channel", "prior_p_converting", "p_converting", "posterior_mean",
                 "lower", "upper", "likelihood", "converged"])
    out.attrs = {"title": f"P(converting) = P(theta > {threshold:g}) as evidence arrived",
                 "interval": label, "threshold": threshold, "prior_set": study.prior_set,
                 "evidence_sha256": study.hashes.get("evidence", "")[:12]}
    return out


def plot_trajectory(table: pd.DataFrame, *, ax=None, title: str | None = None):
    """Step plot of each channel's P(converting) against the evidence date, with the IPCC
    boundaries (0.33, 0.66, 0.90) as guides and each channel's prior as a dotted line.
    Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5))
    else:
        fig = ax.figure
    for level, word in ((0.33, "unlikely / as likely as not"), (0.66, "likely"), (0.90, "very likely")):
        ax.axhline(level, color="0.85", lw=0.8, zorder=0)
        ax.text(1.0, level, f" {level:g} {word}", transform=ax.get_yaxis_transform(), va="center",
                ha="left", fontsize=7, color="0.45")
    for channel, rows in table.groupby("channel", sort=False):
        rows = rows.sort_values("date")
        line, = ax.step(pd.to_datetime(rows["date"]), rows["p_converting"], where="post", marker="o",
                        ms=3, label=channel)
        ax.axhline(rows["prior_p_converting"].iloc[0], color=line.get_color(), ls=":", lw=0.8)
    ax.set_ylim(0, 1)
    ax.set_xlabel("evidence observed by")
    threshold = table.attrs.get("threshold", 0.5)
    ax.set_ylabel(f"P(θ > {threshold:g})")
    ax.set_title(title or table.attrs.get("title", "P(converting) as evidence arrived"), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    fig.tight_layout()
    return fig
