"""Publication figures: pure functions of a saved result, each returning a matplotlib ``Figure``.

The statistics come from ArviZ 1.x (``az.eti``/``az.hdi`` through :mod:`bayescpec.outputs.summary`, and
``az.kde`` for densities); matplotlib draws them, so that titles, axis labels, units and interval
kinds are stated exactly and the figures' structure can be tested.

* :func:`plot_forest` -- theta per channel: prior interval behind the posterior, threshold tau marked.
* :func:`plot_prior_posterior` -- prior and posterior density of theta, one panel per channel.
* :func:`plot_evidence_ladder` -- evidence rows per channel and tier (and per constraint, context tier).
* :func:`plot_constraint_effects` -- severity of each constraint and its reduction of each linked
  channel's conversion probability.
* :func:`plot_trajectory` -- P(theta > tau) per channel against the evidence date (a broken time
  axis when one early row would squeeze the rest).

Every figure carries its provenance: a caption line at the bottom (prior set, evidence hash, as-of
date, draws x chains, seed, bayescpec version, and a warning for a failed or prior-only fit), and
the same text in the PNG and PDF metadata (:func:`save_figure`).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    import pandas as pd

from .._fs import publish_directory, staged_folder
from ..errors import InputError
from .captions import fit_titles, provenance_caption, save_figure, stamp as _stamp
from .summary import (
    CI_KIND,
    CI_PROB,
    THRESHOLD,
    check_options,
    credible_interval,
    framework_info,
    interval_label,
)
from .tables import link_reductions

__all__ = [
    "FIGURES",
    "FIGURE_FORMATS",
    "plot_forest",
    "plot_prior_posterior",
    "plot_evidence_ladder",
    "plot_constraint_effects",
    "plot_stages",
    "save_figures",
    "save_figure",
    "plot_trajectory",
    "provenance_caption",
]

#: figure file stems, in the order :func:`save_figures` writes them
FIGURES = ("forest", "prior-posterior", "evidence-ladder", "constraint-effects", "stages")
FIGURE_FORMATS = ("png", "pdf")
PRIOR_COLOR = "#b8b8b8"
POSTERIOR_COLOR = "#1f4e79"
TAU_COLOR = "#c0392b"
TIER_COLORS = ("#c6dbef", "#6baed6", "#2171b5", "#08306b", "#041c3d")


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover - an interactive backend already in use
            pass
    import matplotlib.pyplot as plt

    return plt


def _label(fw: dict, channel: str, width: int) -> str:
    """A channel's label wrapped to ``width`` characters, with its id in parentheses."""
    import textwrap

    return textwrap.fill(f"{fw['channels'][channel]} ({channel})", width)


def _options(threshold: float | None, ci_kind: str, ci_prob: float) -> None:
    try:
        check_options(ci_kind, ci_prob, threshold)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _kind_words(ci_kind: str, ci_prob: float) -> str:
    kind = {"eti": "equal-tailed", "hdi": "highest-density"}[ci_kind]
    return f"{ci_prob * 100:g}% {kind} interval ({interval_label(ci_kind, ci_prob)})"


def plot_forest(
    result: xr.DataTree,
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
):
    """Forest plot of theta per channel: the prior interval (wide, grey) behind the posterior interval
    (dark), posterior means as dots, the threshold tau as a vertical line, and P(theta > tau) at the
    right of each row."""
    _options(threshold, ci_kind, ci_prob)
    plt = _pyplot()
    fw = framework_info(result)
    channels = list(fw["channels"])
    post, prior = result["posterior"]["theta"], result["prior"]["theta"]
    post_iv = credible_interval(post, ci_kind, ci_prob).sel(channel=channels)
    prior_iv = credible_interval(prior, ci_kind, ci_prob).sel(channel=channels)
    mean = post.mean(("chain", "draw")).sel(channel=channels).values
    prior_mean = prior.mean(("chain", "draw")).sel(channel=channels).values
    p_conv = (post > threshold).mean(("chain", "draw")).sel(channel=channels).values
    y = np.arange(len(channels))[::-1].astype(float)
    fig, ax = plt.subplots(figsize=(8.0, 1.6 + 0.62 * len(channels)), layout="constrained")
    ax.hlines(y, prior_iv.sel(ci_bound="lower").values, prior_iv.sel(ci_bound="upper").values,
              color=PRIOR_COLOR, linewidth=9, label=f"prior {interval_label(ci_kind, ci_prob)}", zorder=1)
    ax.hlines(y, post_iv.sel(ci_bound="lower").values, post_iv.sel(ci_bound="upper").values,
              color=POSTERIOR_COLOR, linewidth=3, label=f"posterior {interval_label(ci_kind, ci_prob)}", zorder=2)
    ax.plot(prior_mean, y, linestyle="none", marker="|", markersize=12, color="#555555", label="prior mean", zorder=3)
    ax.plot(mean, y, linestyle="none", marker="o", markersize=6, color=POSTERIOR_COLOR, label="posterior mean", zorder=4)
    ax.axvline(threshold, color=TAU_COLOR, linestyle="--", linewidth=1.2, label=f"threshold τ = {threshold:g}")
    ax.set_yticks(y, [_label(fw, c, 28) for c in channels], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.7, len(channels) - 0.3)
    ax.set_xlabel("θ: conversion probability of the channel (probability scale, 0–1)")
    for yy, p in zip(y, p_conv):
        ax.annotate(f"P(θ > τ) = {p:.2f}", xy=(1.0, yy), xycoords=("axes fraction", "data"),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_title(f"Conversion probability θ per channel: posterior vs prior, {_kind_words(ci_kind, ci_prob)}",
                 fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=7, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.get_layout_engine().set(w_pad=0.1)
    return _stamp(fig, provenance_caption(result.attrs))


def _density(result: xr.DataTree, group: str, var: str) -> xr.DataArray:
    import arviz as az

    grid = az.kde(result, group=group, var_names=[var], dim=["chain", "draw"])
    node = grid[group] if isinstance(grid, xr.DataTree) and group in grid.children else grid
    return (node.to_dataset() if isinstance(node, xr.DataTree) else node)[var]


def plot_prior_posterior(result: xr.DataTree, *, threshold: float = THRESHOLD):
    """Prior (grey, dashed) and posterior (solid) density of theta, one panel per channel, with the
    threshold tau marked. Densities are ArviZ kernel density estimates (boundary-corrected)."""
    _options(threshold, CI_KIND, CI_PROB)
    plt = _pyplot()
    fw = framework_info(result)
    channels = list(fw["channels"])
    prior = _density(result, "prior", "theta")
    post = _density(result, "posterior", "theta")
    ncols = min(3, len(channels))
    nrows = math.ceil(len(channels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows + 0.6), layout="constrained",
                             squeeze=False)
    flat = axes.ravel()
    for ax, channel in zip(flat, channels):
        px, py = prior.sel(channel=channel, plot_axis="x").values, prior.sel(channel=channel, plot_axis="y").values
        qx, qy = post.sel(channel=channel, plot_axis="x").values, post.sel(channel=channel, plot_axis="y").values
        ax.plot(px, py, color="#777777", linestyle="--", linewidth=1.4, label="prior")
        ax.plot(qx, qy, color=POSTERIOR_COLOR, linewidth=2.0, label="posterior")
        ax.axvline(threshold, color=TAU_COLOR, linestyle=":", linewidth=1.2, label=f"τ = {threshold:g}")
        ax.set_title(_label(fw, channel, 40), fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("θ (conversion probability)", fontsize=8)
        ax.set_ylabel("density (per unit θ)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in flat[len(channels):]:
        ax.set_visible(False)
    fig.legend(*flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Prior and posterior density of the conversion probability θ per channel "
                 f"(kernel density estimates; dotted line: threshold τ = {threshold:g})", fontsize=10)
    return _stamp(fig, provenance_caption(result.attrs))


def plot_evidence_ladder(result: xr.DataTree):
    """The evidence ladder: number of evidence rows per channel and tier (stacked bars, tiers in rank
    order), and, when the framework has a context tier, the context rows per constraint."""
    plt = _pyplot()
    fw = framework_info(result)
    ledger = result["evidence"].to_dataset()
    targets = ledger["target"].values.astype(str)
    tiers_of = ledger["tier"].values.astype(str)
    channel_tiers = [t for t in fw["tiers"] if fw["tier_targets"][t] == "channel"]
    constraint_tiers = [t for t in fw["tiers"] if fw["tier_targets"][t] == "constraint"]
    channels = list(fw["channels"])
    constraints = list(fw["constraints"])
    panels = [("channel", channels, channel_tiers)]
    if constraints and constraint_tiers:
        panels.append(("constraint", constraints, constraint_tiers))
    heights = [max(len(rows), 1) for _, rows, _ in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.0, 1.6 + 0.42 * sum(heights)), layout="constrained",
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    total = len(targets)
    for ax, (what, rows, tiers) in zip(axes.ravel(), panels):
        y = np.arange(len(rows))[::-1].astype(float)
        left = np.zeros(len(rows))
        for i, tier in enumerate(tiers):
            counts = np.array([int(np.sum((targets == r) & (tiers_of == tier))) for r in rows], dtype=float)
            color = TIER_COLORS[(fw["tiers"].index(tier)) % len(TIER_COLORS)]
            bars = ax.barh(y, counts, left=left, color=color, edgecolor="white", height=0.65, label=tier)
            labels = [f"{int(c)}" if c else "" for c in counts]
            ax.bar_label(bars, labels=labels, label_type="center", fontsize=7,
                         color="white" if fw["tiers"].index(tier) >= 2 else "black")
            left += counts
        if what == "channel" and "gaps" in result.children:
            gap_targets = result["gaps"].to_dataset()["target"].values.astype(str)
            counts = np.array([int(np.sum(gap_targets == r)) for r in rows], dtype=float)
            if counts.any():
                bars = ax.barh(y, counts, left=left, color="white", edgecolor="#888888", hatch="///", height=0.65,
                               label="data gaps (not evidence)")
                ax.bar_label(bars, labels=[f"{int(c)}" if c else "" for c in counts], label_type="center",
                             fontsize=7, color="black")
                left += counts
        ax.set_yticks(y, rows, fontsize=8)
        ax.set_xlabel("evidence rows (count)", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlim(0, max(1.0, float(left.max()) * 1.08))
        if what == "channel":
            ax.set_title(f"Evidence rows per channel and tier ({', '.join(tiers)}: lowest to highest rung)",
                         fontsize=9)
        else:
            ax.set_title(f"Evidence rows per constraint ({', '.join(tiers)} tier)", fontsize=9)
        ax.legend(title="tier", fontsize=7, title_fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  frameon=False)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Evidence ladder: {total} evidence rows used (as of {result.attrs.get('as_of', '?')})", fontsize=10)
    return _stamp(fig, provenance_caption(result.attrs))


def plot_constraint_effects(result: xr.DataTree, *, ci_kind: str = CI_KIND, ci_prob: float = CI_PROB):
    """Left: each constraint's severity (logit scale, 0 = typical), prior interval behind the posterior.
    Right: each constraint's reduction of each linked channel's conversion probability theta
    (theta without the constraint minus theta with it), posterior mean and interval."""
    _options(None, ci_kind, ci_prob)
    plt = _pyplot()

    fw = framework_info(result)
    constraints = list(fw["constraints"])
    label = interval_label(ci_kind, ci_prob)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 1.6 + 0.36 * max(len(fw["links"]), 4)),
                                      layout="constrained", gridspec_kw={"width_ratios": [1, 1.35]})
    if not constraints:
        for ax in (left, right):
            ax.text(0.5, 0.5, "the framework has no constraints", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        fig.suptitle("Constraint effects: none to show", fontsize=10)
        return _stamp(fig, provenance_caption(result.attrs))
    post, prior = result["posterior"]["severity"], result["prior"]["severity"]
    post_iv = credible_interval(post, ci_kind, ci_prob).sel(constraint=constraints)
    prior_iv = credible_interval(prior, ci_kind, ci_prob).sel(constraint=constraints)
    y = np.arange(len(constraints))[::-1].astype(float)
    left.hlines(y, prior_iv.sel(ci_bound="lower").values, prior_iv.sel(ci_bound="upper").values,
                color=PRIOR_COLOR, linewidth=9, label=f"prior {label}")
    left.hlines(y, post_iv.sel(ci_bound="lower").values, post_iv.sel(ci_bound="upper").values,
                color=POSTERIOR_COLOR, linewidth=3, label=f"posterior {label}")
    left.plot(post.mean(("chain", "draw")).sel(constraint=constraints).values, y, "o", color=POSTERIOR_COLOR,
              markersize=5, label="posterior mean")
    left.axvline(0, color="black", linewidth=0.8)
    left.set_yticks(y, constraints, fontsize=8)
    left.set_xlabel("severity (logit scale; 0 = typical, > 0 = more binding)", fontsize=8)
    left.set_title(f"Constraint severity, {label}", fontsize=9)
    left.grid(axis="x", alpha=0.3)

    reductions = link_reductions(result)
    order = {k: i for i, k in enumerate(constraints)}
    chan_order = list(fw["channels"])
    links = sorted(fw["links"], key=lambda ck: (order[ck[1]], chan_order.index(ck[0])))
    names = [f"{c}|{k}" for c, k in links]
    iv = credible_interval(reductions, ci_kind, ci_prob).sel(link=names)
    mean = reductions.mean(("chain", "draw")).sel(link=names).values
    yy = np.arange(len(names))[::-1].astype(float)
    right.hlines(yy, iv.sel(ci_bound="lower").values, iv.sel(ci_bound="upper").values, color=POSTERIOR_COLOR,
                 linewidth=2.5, label=f"posterior {label}")
    right.plot(mean, yy, "o", color=POSTERIOR_COLOR, markersize=5, label="posterior mean")
    right.axvline(0, color="black", linewidth=0.8)
    stages = fw.get("link_stages", {})
    right.set_yticks(yy, [f"{k} → {c}" + (f" ({stages[f'{c}|{k}']})" if len(fw.get("stages", {})) > 1 else "")
                          for c, k in links], fontsize=7)
    for i in range(1, len(links)):  # separate constraints
        if links[i][1] != links[i - 1][1]:
            right.axhline(yy[i] + 0.5, color="#dddddd", linewidth=0.8)
    right.set_xlabel("reduction of θ (probability scale; θ with the severity at typical − θ)", fontsize=8)
    right.set_title(f"Reduction of each linked channel's conversion probability θ, {label}", fontsize=9)
    right.grid(axis="x", alpha=0.3)
    # one legend below both panels (the right panel's marks are the left's posterior marks)
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(f"Constraint effects (posterior; {_kind_words(ci_kind, ci_prob)})", fontsize=10)
    return _stamp(fig, provenance_caption(result.attrs))


def plot_stages(result: xr.DataTree, *, ci_kind: str = CI_KIND, ci_prob: float = CI_PROB):
    """The conversion chain, one panel per channel: the probability that the chain reaches each stage
    (prior interval behind the posterior interval and mean), and bars of P(the chain breaks first at
    the stage), the weakest stage marked when it stands out (:func:`bayescpec.outputs.chain.weakest_stage`;
    otherwise the panel's title says that no stage stands out)."""
    from .chain import break_first, weakest_stage

    _options(None, ci_kind, ci_prob)
    plt = _pyplot()
    fw = framework_info(result)
    label = interval_label(ci_kind, ci_prob)
    chains = fw["chains"]
    fig, axes = plt.subplots(len(chains), 1, figsize=(8.5, 1.2 + 1.55 * len(chains)), layout="constrained",
                             squeeze=False, sharex=False)
    post, prior = result["posterior"]["reach"], result["prior"]["reach"]
    post_iv, prior_iv = credible_interval(post, ci_kind, ci_prob), credible_interval(prior, ci_kind, ci_prob)
    brk_draws = break_first(result)
    brk = brk_draws.mean(("chain", "draw"))
    for ax, (channel, chain) in zip(axes.ravel(), chains.items()):
        x = np.arange(len(chain), dtype=float)
        at = dict(channel=channel, stage=chain)
        ax.vlines(x, prior_iv.sel(at).sel(ci_bound="lower"), prior_iv.sel(at).sel(ci_bound="upper"),
                  color=PRIOR_COLOR, linewidth=9, label=f"prior {label}")
        ax.vlines(x, post_iv.sel(at).sel(ci_bound="lower"), post_iv.sel(at).sel(ci_bound="upper"),
                  color=POSTERIOR_COLOR, linewidth=3, label=f"posterior {label}")
        ax.plot(x, post.sel(at).mean(("chain", "draw")), "o-", color=POSTERIOR_COLOR, markersize=4,
                linewidth=1, label="posterior mean reach")
        breaks = brk.sel(at).values
        twin = ax.twinx()
        twin.bar(x + 0.28, breaks, width=0.22, color=TAU_COLOR, alpha=0.55, label="P(breaks first here)")
        weakest, shares, stands_out = weakest_stage(result, channel, chain, breaks=brk_draws)
        if stands_out:
            at_stage = chain.index(weakest)
            twin.annotate(f"weakest ({shares[weakest]:.0%} of draws)", (x[at_stage] + 0.28, breaks[at_stage]),
                          textcoords="offset points", xytext=(0, 2), ha="center", fontsize=7, color=TAU_COLOR)
        twin.set_ylim(0, max(0.5, float(breaks.max()) * 1.4))
        twin.set_ylabel("P(breaks first)", fontsize=7, color=TAU_COLOR)
        twin.tick_params(labelsize=7, colors=TAU_COLOR)
        ax.set_ylim(0, 1)
        ax.set_xticks(x, chain, fontsize=7)
        ax.set_ylabel("P(reach)", fontsize=8)
        verdict = "" if stands_out or len(chain) < 2 else " — no stage stands out"
        ax.set_title(_label(fw, channel, 80) + verdict, fontsize=8, loc="left")
        ax.grid(axis="y", alpha=0.3)
    handles = axes.ravel()[0].get_legend_handles_labels()
    bar = plt.Rectangle((0, 0), 1, 1, color=TAU_COLOR, alpha=0.55)
    fig.legend(handles[0] + [bar], handles[1] + ["P(breaks first here)"], loc="outside lower center", ncol=4,
               fontsize=7, frameon=False)
    stages = fw.get("stages", {})
    import textwrap

    fig.suptitle("The conversion chain: how far each channel gets, and where it most likely breaks\n"
                 + textwrap.fill("; ".join(f"{k}: {v.lower()}" for k, v in stages.items()), 120), fontsize=9)
    fit_titles(fig)
    return fig


def save_figures(
    result: xr.DataTree,
    *,
    out: str | Path,
    formats: Sequence[str] = FIGURE_FORMATS,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
    dpi: int = 200,
    on_file=None,
) -> list[Path]:
    """Draw every figure (:data:`FIGURES`) and save each in each format into ``out``; return the
    paths. Nothing is written unless all of them are (staged, then moved). ``on_file(path)`` is
    called after each file (progress)."""
    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise InputError(f"figure formats: found {', '.join(map(repr, bad)) or 'none'}; allowed: "
                         f"{', '.join(FIGURE_FORMATS)}")
    _options(threshold, ci_kind, ci_prob)
    plt = _pyplot()
    staging = staged_folder(Path(out))
    written: list[Path] = []
    try:
        for stem, draw in (
            ("forest", lambda: plot_forest(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)),
            ("prior-posterior", lambda: plot_prior_posterior(result, threshold=threshold)),
            ("evidence-ladder", lambda: plot_evidence_ladder(result)),
            ("constraint-effects", lambda: plot_constraint_effects(result, ci_kind=ci_kind, ci_prob=ci_prob)),
            ("stages", lambda: plot_stages(result, ci_kind=ci_kind, ci_prob=ci_prob)),
        ):
            fig = draw()
            try:
                title = fig._suptitle.get_text() if fig._suptitle is not None else fig.axes[0].get_title()
                for fmt in formats:
                    written.append(save_figure(fig, staging / f"{stem}.{fmt}", title=title, dpi=dpi))
                    if on_file is not None:
                        on_file(Path(out) / written[-1].name)
            finally:
                plt.close(fig)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish_directory(staging, Path(out))
    return [Path(out) / p.name for p in written]


def _time_break(dates: list) -> int:
    """Index of the first date after a gap so long that the dates before it (say one 2015 row)
    would squeeze the rest into a sliver of the axis; 0 when there is no such gap."""
    if len(dates) < 3:
        return 0
    gaps = [(dates[i] - dates[i - 1], i) for i in range(1, len(dates))]
    gap, index = max(gaps)
    rest = dates[-1] - dates[index]
    early = dates[index - 1] - dates[0]
    return index if gap > 1.5 * max(rest, early) else 0


def plot_trajectory(table: pd.DataFrame, *, ax=None, title: str | None = None):
    """Step plot of each channel's P(theta > tau) against the evidence date, with the IPCC
    boundaries (0.33, 0.66, 0.90) as guides and each channel's prior P as a dotted line. When one
    early stretch of dates is far from the rest, the time axis is broken in two panels (the early
    dates narrow at the left) so that the recent updates stay readable. Returns the Figure, with a
    provenance caption when ``table.attrs`` carry the fit's settings."""
    import textwrap

    import matplotlib.dates as mdates
    import pandas as pd
    from matplotlib.lines import Line2D

    plt = _pyplot()
    threshold = table.attrs.get("threshold", 0.5)
    dates = sorted(pd.to_datetime(table["date"]).unique())
    split = _time_break(dates) if ax is None else 0
    if ax is not None:
        fig, axes = ax.figure, [ax]
    elif split:
        fig, (early, ax) = plt.subplots(1, 2, sharey=True, figsize=(9.5, 4.8),
                                        gridspec_kw={"width_ratios": [1, 5], "wspace": 0.06})
        axes = [early, ax]
    else:
        fig, ax = plt.subplots(figsize=(9.5, 4.8))
        axes = [ax]
    labels = dict(zip(table["channel"], table["label"])) if "label" in table.columns else {}
    handles = []
    for a in axes:
        for level in (0.33, 0.66, 0.90):
            a.axhline(level, color="0.85", lw=0.8, zorder=0)
        for i, (channel, rows) in enumerate(table.groupby("channel", sort=False)):
            rows = rows.sort_values("date")
            color = f"C{i % 10}"
            name = textwrap.fill(f"{labels.get(channel, channel)} ({channel})" if labels else str(channel), 40)
            line, = a.step(pd.to_datetime(rows["date"]), rows["p_converting"], where="post", marker="o", ms=3,
                           color=color, label=name)
            a.axhline(rows["prior_p_converting"].iloc[0], color=color, ls=":", lw=0.8)
            if a is ax:
                handles.append(line)
        a.set_ylim(0, 1)
        a.xaxis.set_major_formatter(mdates.ConciseDateFormatter(a.xaxis.get_major_locator()))
        a.tick_params(labelsize=8)
    for level, word in ((0.33, "unlikely / as likely as not"), (0.66, "likely"), (0.90, "very likely")):
        ax.text(1.0, level, f" {level:g} {word}", transform=ax.get_yaxis_transform(), va="center",
                ha="left", fontsize=7, color="0.45")
    if split:
        early = axes[0]
        pad = pd.Timedelta(days=60)
        early.set_xlim(dates[0] - pad, dates[split - 1] + pad)
        early.set_xticks(dates[:split])
        early.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
        span = dates[-1] - dates[split]
        ax.set_xlim(dates[split] - span * 0.04 - pd.Timedelta(days=5), dates[-1] + span * 0.04 + pd.Timedelta(days=5))
        early.spines["right"].set_visible(False)
        ax.spines["left"].set_visible(False)
        ax.tick_params(left=False)
        marks = dict(marker=[(-1, -1.5), (1, 1.5)], markersize=10, linestyle="none", color="0.3", mec="0.3",
                     mew=1, clip_on=False)
        early.plot([1, 1], [0, 1], transform=early.transAxes, **marks)
        ax.plot([0, 0], [0, 1], transform=ax.transAxes, **marks)
        early.set_ylabel(f"P(θ > {threshold:g})")
        early.set_title(f"{len(dates[:split])} early date(s)", fontsize=8, color="0.3")
        ax.set_title(f"from {dates[split]:%Y-%m-%d} (time axis broken)", fontsize=8, color="0.3")
    else:
        ax.set_ylabel(f"P(θ > {threshold:g})")
    ax.set_xlabel("evidence observed by (date)", fontsize=9)
    fig.suptitle(title or f"P(θ > {threshold:g}) per channel as evidence arrived", fontsize=10)
    handles.append(Line2D([], [], color="0.4", ls=":", lw=0.8, label="prior P(θ > τ) (same colour)"))
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=min(3, len(handles)), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.subplots_adjust(left=0.08, right=0.83, top=0.88, bottom=0.27)
    if any(key in table.attrs for key in ("draws", "bayescpec_version")):
        _stamp(fig, provenance_caption(table.attrs))
    return fig
