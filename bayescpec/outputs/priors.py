"""What a prior set says, in numbers and in a picture (``bayescpec priors show``).

* :func:`prior_table` -- one row per prior of the set, in file order: its key, family and parameters,
  the statement it was solved from (if it was given as one), and its 5%, 50% and 95% quantiles.
* :func:`plot_priors` -- the density of every prior, one panel per section of the prior set
  (channels, constraints, loadings, diagnosticity tiers, ...), a stated interval marked under its curve.

Both are pure functions of a loaded prior set; every prior is found by walking the set
(:func:`~bayescpec.inputs.statements.prior_entries`), so a section added to the prior set appears
without being named here. Quantiles and densities are PreliZ's (the library that solves statements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..inputs.statements import PriorEntry, preliz, prior_entries, statement_text
from .captions import stamp

__all__ = ["QUANTILES", "prior_table", "plot_priors", "prior_caption"]

#: the quantiles ``priors show`` reports
QUANTILES = (0.05, 0.5, 0.95)


def _distribution(pz, entry: PriorEntry):
    prior = entry.prior
    return prior.family.to_preliz(pz, prior.parameters)


def prior_table(priors) -> pd.DataFrame:
    """One row per prior of ``priors`` (a :class:`~bayescpec.inputs.spec.PriorSet`), in file order:
    ``key``, ``section``, ``family``, ``on`` (what the prior is on), ``distribution`` (family and
    parameters as the prior set writes them), ``statement`` ("90% in [0.2, 0.6]", or "" for a prior
    given by its parameters), ``between_lower``/``between_upper``/``mass`` (the statement's numbers), and
    the quantiles ``q05``, ``q50``, ``q95``."""
    pz = preliz()
    rows = []
    for entry in prior_entries(priors):
        prior = entry.prior
        stated = getattr(prior, "between", None)
        quantiles = np.asarray(_distribution(pz, entry).ppf(np.array(QUANTILES)), dtype=float)
        rows.append({
            "key": entry.key,
            "section": entry.section,
            "family": prior.family.name,
            "on": prior.family.quantity,
            "distribution": prior.family.label(prior.parameters),
            "statement": statement_text(stated, prior.mass) if stated is not None else "",
            "between_lower": stated[0] if stated is not None else np.nan,
            "between_upper": stated[1] if stated is not None else np.nan,
            "mass": prior.mass if stated is not None else np.nan,
            **{f"q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, quantiles)},
        })
    table = pd.DataFrame(rows)
    table.attrs["prior_set"] = priors.name
    return table


def prior_caption(provenance: Mapping[str, str]) -> str:
    """The provenance line of the priors figure: ``{"prior set": ..., "file": ..., ...}`` as text."""
    return "Source: " + "; ".join(f"{key} {value}" for key, value in provenance.items() if value)


def _grid(entries: list[PriorEntry], distributions: list) -> np.ndarray:
    """x values that show every density of a panel: (0, 1) for probabilities, else from the lowest
    0.5% quantile to the highest 99.5% quantile."""
    low = min(e.prior.family.support[0] for e in entries)
    high = max(e.prior.family.support[1] for e in entries)
    if math.isfinite(low) and math.isfinite(high):
        return np.linspace(low, high, 801)[1:-1]
    lows = [float(d.ppf(0.005)) for d in distributions]
    highs = [float(d.ppf(0.995)) for d in distributions]
    lower = max(low, min(lows))
    pad = 0.05 * (max(highs) - lower)
    return np.linspace(lower if math.isfinite(low) else lower - pad, max(highs) + pad, 600)


def _scale(entry: PriorEntry) -> str:
    return "probability" if entry.prior.family.support == (0.0, 1.0) else "logit scale"


def _panels(priors) -> dict[str, list[PriorEntry]]:
    """The panels of the figure: one per section with several priors; the sections that hold a single
    prior (``loadings``, ``units``) share one panel per scale."""
    sections: dict[str, list[PriorEntry]] = {}
    for entry in prior_entries(priors):
        sections.setdefault(entry.section, []).append(entry)
    single: dict[str, list[PriorEntry]] = {}
    for entries in [e for e in sections.values() if len(e) == 1]:
        single.setdefault(_scale(entries[0]), []).extend(entries)
    panels: dict[str, list[PriorEntry]] = {}
    for section, entries in sections.items():
        if len(entries) > 1:
            panels[section] = entries
        elif entries[0] in single.get(_scale(entries[0]), []):
            shared = single.pop(_scale(entries[0]))
            panels[", ".join(e.section for e in shared)] = shared
    return panels


def plot_priors(priors, *, caption: str = ""):
    """The density of every prior of ``priors``: one panel per section with several priors (a table of
    priors such as ``channels``), the single priors (``loadings``, ``units``) sharing a panel per scale.
    A prior given as a statement has its interval marked by a bar on the x axis (and the statement in
    the legend). The y axis ends at the highest density away from the panel's edges, so a Beta whose
    density is infinite at 0 or 1 does not flatten the others. Returns a matplotlib ``Figure``."""
    from .figures import _pyplot

    plt = _pyplot()
    pz = preliz()
    panels = _panels(priors)
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.4 * ncols, 2.5 * nrows + 0.9), layout="constrained",
                             squeeze=False)
    colors = plt.get_cmap("tab10").colors
    styles = ("-", "--", ":", "-.")
    for ax, (title, entries) in zip(axes.ravel(), panels.items()):
        distributions = [_distribution(pz, e) for e in entries]
        x = _grid(entries, distributions)
        inner = (x >= x[0] + 0.02 * (x[-1] - x[0])) & (x <= x[-1] - 0.02 * (x[-1] - x[0]))
        top = 0.0
        for i, (entry, distribution) in enumerate(zip(entries, distributions)):
            y = np.asarray(distribution.pdf(x), dtype=float)
            color, style = colors[i % len(colors)], styles[(i // len(colors)) % len(styles)]
            stated = getattr(entry.prior, "between", None)
            label = entry.name + (f" ({statement_text(stated, entry.prior.mass)})" if stated is not None else "")
            ax.plot(x, y, color=color, linestyle=style, linewidth=1.4, label=label)
            top = max(top, float(np.nanmax(np.where(inner & np.isfinite(y), y, np.nan))))
            if stated is not None:
                ax.plot(stated, [0, 0], color=color, linewidth=5, solid_capstyle="butt", alpha=0.7, clip_on=False,
                        zorder=5)
        families = list(dict.fromkeys(e.prior.family.name for e in entries))
        scale = _scale(entries[0])
        ax.set_title(f"{title} ({', '.join(families)}; {scale})", fontsize=8)
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(0, 1.08 * top if top > 0 else 1)
        ax.set_xlabel(f"value ({scale})", fontsize=7)
        ax.set_ylabel("density", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), handlelength=1.6)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    stated = any(getattr(e.prior, "between", None) is not None for entries in panels.values() for e in entries)
    fig.suptitle(f"Prior set {priors.name}: the density of each prior"
                 + (" (a bar on the x axis marks an interval stated with its mass)" if stated else ""), fontsize=9)
    return stamp(fig, caption) if caption else fig
