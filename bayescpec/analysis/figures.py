"""Figures of the analyses, each a matplotlib ``Figure`` with the result's provenance caption
(:mod:`bayescpec.outputs.captions`): the same caption line, and the same metadata when saved.

* :func:`plot_waterfall` -- per channel: prior P(θ > τ), each package's contribution, the remainder,
  the posterior (``explain``).
* :func:`plot_value_of_information` -- per channel, the designs that would most reduce the posterior
  sd of θ (``next``).
* :func:`plot_robustness` -- power-scaling sensitivity of every reported quantity, prior against
  likelihood, with the 0.05 thresholds (``robustness``).
* :func:`plot_whatif` -- θ per channel under each scenario beside the baseline (``whatif``).
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd

from ..outputs.captions import provenance_caption, stamp
from ..outputs.figures import POSTERIOR_COLOR, PRIOR_COLOR, TAU_COLOR, _pyplot

__all__ = ["plot_waterfall", "plot_value_of_information", "plot_robustness", "plot_whatif"]

UP, DOWN, REST = "#2e7d32", "#c62828", "#9e9e9e"


def plot_waterfall(explanation, channel: str, *, measure: str = "p", top: int = 12):
    """Waterfall of a channel's P(θ > τ) (``measure="p"``) or mean θ (``"mean"``): the prior, each
    package's contribution (the ``top`` largest; the others join the remainder), the remainder
    (joint effect), the posterior."""
    if channel not in explanation.waterfall:
        from ..errors import InputError, allowed_list, did_you_mean

        raise InputError(f"channel: unknown channel {channel!r}{did_you_mean(channel, list(explanation.waterfall))}; "
                         f"allowed: {allowed_list(list(explanation.waterfall))}")
    if measure not in ("p", "mean"):
        raise ValueError(f"measure must be 'p' or 'mean'; found {measure!r}")
    plt = _pyplot()
    steps = explanation.waterfall[channel]
    packages = steps[steps["kind"] == "package"]
    kept, rest = packages.iloc[:top], packages.iloc[top:]
    remainder = float(steps.loc[steps["kind"] == "remainder", measure].sum() + rest[measure].sum())
    labels = ["prior"] + [textwrap.shorten(s, 28, placeholder="…") + ("*" if m == "refit" else "")
                          for s, m in zip(kept["step"], kept["method"])]
    labels += [f"joint effect{' and ' + str(len(rest)) + ' more' if len(rest) else ''}", "posterior"]
    start = float(steps[measure].iloc[0])
    end = float(steps[measure].iloc[-1])
    deltas = list(kept[measure]) + [remainder]
    fig, ax = plt.subplots(figsize=(8.0, 1.4 + 0.34 * (len(labels))), layout="constrained")
    y = np.arange(len(labels))[::-1]
    ax.barh(y[0], start, color=PRIOR_COLOR, height=0.6)
    level = start
    for i, delta in enumerate(deltas, start=1):
        colour = REST if i == len(deltas) else (UP if delta >= 0 else DOWN)
        ax.barh(y[i], delta, left=level, color=colour, height=0.6)
        ax.annotate(f"{delta:+.3f}", xy=(max(level, level + delta), y[i]), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=7)
        level += delta
    ax.barh(y[-1], end, color=POSTERIOR_COLOR, height=0.6)
    for yy, value in ((y[0], start), (y[-1], end)):
        ax.annotate(f"{value:.3f}", xy=(value, yy), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    threshold = explanation.threshold
    what = f"P(θ > {threshold:g})" if measure == "p" else "posterior mean θ"
    if measure == "mean":
        ax.axvline(threshold, color=TAU_COLOR, linestyle="--", linewidth=1)
    ax.set_xlabel(f"{what} of {channel} (probability scale, 0–1)")
    label = steps.attrs.get("label", channel)
    ax.set_title(f"What moved {label} ({channel}): prior → each evidence package → posterior"  # fit_titles wraps
                 + "\nbar = posterior with the package − without it (leave-one-out; * refitted); green raises, red "
                   "lowers, grey: joint effect", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    # the whole probability scale: the prior and posterior bars are totals measured from 0, so a cut axis
    # would draw a move of 0.004 as long as the prior itself; the labels carry the small moves' sizes
    ax.set_xlim(0.0, 1.0)
    return stamp(fig, provenance_caption(explanation.attrs))


def plot_value_of_information(table: pd.DataFrame, *, top: int = 5):
    """Per channel, the ``top`` designs by expected reduction of the posterior sd of θ (bars) and the
    probability that the IPCC word changes (annotation)."""
    plt = _pyplot()
    channels = list(dict.fromkeys(table["channel"]))
    ncols = min(2, max(1, len(channels)))
    nrows = math.ceil(len(channels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(11.0, 0.5 + nrows * (0.42 * top + 0.9)), layout="constrained",
                             squeeze=False)
    for ax in axes.ravel()[len(channels):]:
        ax.set_visible(False)
    largest = float(table["sd_reduction"].max()) if len(table) else 1.0
    for ax, channel in zip(axes.ravel(), channels):
        best = table[table["channel"] == channel].nsmallest(top, "position" if "position" in table.columns else "rank")
        y = np.arange(len(best))[::-1]
        names = [textwrap.shorten(f"{r['indicator']} ({r['tier']}{'/' + r['test'] if r['test'] else ''}, "
                                  f"{r['kind']})", 46, placeholder="…") for _, r in best.iterrows()]
        errors = 2 * best["mcse_sd_reduction"].fillna(0.0) if "mcse_sd_reduction" in best.columns else None
        ax.barh(y, best["sd_reduction"], xerr=errors, color=POSTERIOR_COLOR, height=0.6,
                error_kw={"elinewidth": 0.8, "capsize": 2})
        for yy, (_, r) in zip(y, best.iterrows()):
            ax.annotate(f"P(word changes) {r['p_word_change']:.2f}", xy=(r["sd_reduction"], yy), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=6)
        ax.set_yticks(y, names, fontsize=6)
        ax.set_xlim(0, largest * 1.6)
        ax.set_title(f"{channel}: today sd(θ) = {best['sd_now'].iloc[0]:.2f}" if len(best) else channel, fontsize=8)
        ax.set_xlabel("expected reduction of the posterior sd of θ", fontsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("What to observe next: expected reduction of the posterior sd of θ, by channel (bars: ± 2 MCSE)",
                 fontsize=10)
    return stamp(fig, table.attrs.get("caption", ""))


def plot_robustness(robust):
    """Prior against likelihood power-scaling sensitivity of every reported quantity (θ highlighted)."""
    plt = _pyplot()
    table = robust.power_scaling
    fig, ax = plt.subplots(figsize=(7.0, 5.0), layout="constrained")
    theta = table["variable"] == "theta"
    ax.scatter(table.loc[~theta, "prior_sensitivity"], table.loc[~theta, "likelihood_sensitivity"], s=14,
               color=PRIOR_COLOR, label="other quantities")
    # each channel its own colour and marker, named in the legend: labels beside the points would collide
    # where channels are equally sensitive, as they are when the prior dominates
    markers = "osD^vP*Xhp<>"
    for i, (_, r) in enumerate(table[theta].iterrows()):
        ax.scatter([r["prior_sensitivity"]], [r["likelihood_sensitivity"]], s=34, color=f"C{i % 10}",
                   marker=markers[i % len(markers)], edgecolors="black", linewidths=0.4,
                   label=f"θ {r['quantity'].removeprefix('theta[').rstrip(']')}")
    ax.axvline(0.05, color=TAU_COLOR, linestyle="--", linewidth=1)
    ax.axhline(0.05, color=TAU_COLOR, linestyle="--", linewidth=1)
    ax.set_xlabel("prior power-scaling sensitivity (> 0.05: the prior is informative)")
    ax.set_ylabel("likelihood power-scaling sensitivity (< 0.05: weak likelihood)")
    ax.set_title("Power-scaling sensitivity of each reported quantity", fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, frameon=False, loc="outside right upper")
    ax.grid(alpha=0.3)
    return stamp(fig, provenance_caption(robust.attrs))


def plot_whatif(table: pd.DataFrame):
    """Left: mean θ per channel under each scenario, with its interval, beside the baseline mean.
    Right: the change of θ (scenario − baseline, per draw): mean and interval."""
    plt = _pyplot()
    label = next(c for c in table.columns if c.endswith(" lower") and not c.startswith("change")).removesuffix(" lower")
    scenarios = list(dict.fromkeys(table["scenario"]))
    channels = list(dict.fromkeys(table["channel"]))
    fig, (ax, right) = plt.subplots(1, 2, figsize=(11.0, 1.6 + 0.45 * len(channels) * (1 + 0.25 * len(scenarios))),
                                    layout="constrained", sharey=True, width_ratios=(3, 2))
    step = 0.8 / (len(scenarios) + 1)
    colours = plt.get_cmap("tab10")
    for c, channel in enumerate(channels):
        rows = table[table["channel"] == channel]
        y0 = len(channels) - 1 - c
        ax.plot([rows.iloc[0]["baseline_mean"]], [y0 + 0.4], marker="o", color="black",
                label="baseline (mean)" if c == 0 else None)
        right.plot([0.0], [y0 + 0.4], marker="o", color="black")
        for s, scenario in enumerate(scenarios):
            r = rows[rows["scenario"] == scenario].iloc[0]
            yy = y0 + 0.4 - (s + 1) * step
            ax.hlines(yy, r[f"{label} lower"], r[f"{label} upper"], color=colours(s % 10), linewidth=2, alpha=0.6)
            ax.plot([r["scenario_mean"]], [yy], marker="o", markersize=4, color=colours(s % 10),
                    label=scenario if c == 0 else None)
            right.hlines(yy, r[f"change {label} lower"], r[f"change {label} upper"], color=colours(s % 10),
                         linewidth=2, alpha=0.6)
            right.plot([r["change_mean"]], [yy], marker="o", markersize=4, color=colours(s % 10))
    ax.axvline(table.attrs.get("threshold", 0.5), color=TAU_COLOR, linestyle="--", linewidth=1)
    right.axvline(0.0, color="0.4", linewidth=0.8)
    ax.set_yticks([len(channels) - 1 - c + 0.4 - step * len(scenarios) / 2 for c in range(len(channels))], channels,
                  fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"θ under each scenario: mean and {label}")
    right.set_xlabel(f"change of θ (scenario − baseline): mean and {label}")
    fig.suptitle("Policy scenarios: each channel's θ beside the baseline (posterior draws, no refit)", fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=7, frameon=False)
    for axis in (ax, right):
        axis.grid(axis="x", alpha=0.3)
    return stamp(fig, table.attrs.get("caption", ""))
