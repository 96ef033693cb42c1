"""Assumptions the evidence does not inform, said in the footnote of every table they drive.

A constraint acts on a stage through its link's ``loading``, and the constraints of a feedback loop
move together through their ``loop_loading`` on the loop's shared factor. Context rows observe
severities, not loadings, so the data say little about either: on the shipped evidence every loading's
posterior sd is its prior sd (ratio 0.98-1.03), yet they move the published probabilities (the paper's
P4 is 0.31 with the loop and 0.25 without it). A loading whose posterior sd is more than
``PRIOR_DOMINATED_RATIO`` (0.9) of its prior sd is *prior-dominated*; a table whose numbers depend on
one names it in a footnote:

* the constraint-effects table (every reduction is loading x severity) names the prior-dominated link
  loadings and loop loadings;
* the propositions table names, for the propositions whose queries use a quantity computed from them,
  the link loadings (``interruption``, ``constraint_effect``, ``base_theta``, ``link_reduction``, and every
  counterfactual ``under``/``swing``) and the
  loop loadings (the same and ``severity``: the loop sets how the severities move together) -- those
  whose constraint, channel or loop the query names, or all when it names none.

``bayescpec robustness`` reports the propositions without the feedback loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["PRIOR_DOMINATED_RATIO", "LINK_QUANTITIES", "LOOP_QUANTITIES", "sd_ratios", "prior_dominated",
           "proposition_notes", "constraint_effect_notes"]

#: a loading whose posterior sd exceeds this share of its prior sd is essentially its prior
PRIOR_DOMINATED_RATIO = 0.9
#: the quantities computed from the links' loadings (and the counterfactuals, which move a constraint along
#: its loadings)
LINK_QUANTITIES = ("interruption", "constraint_effect", "base_theta", "link_reduction", "under", "swing")
#: the quantities the loop loadings move (through the joint distribution of the severities)
LOOP_QUANTITIES = LINK_QUANTITIES + ("severity",)
_WHAT = {"loop_loading": "loop loadings (how a feedback loop's constraints move together)",
         "loading": "link loadings (how much a constraint's severity lowers a stage)"}


def sd_ratios(result: xr.DataTree, name: str) -> pd.Series:
    """Posterior sd / prior sd of each element of ``name`` (indexed by its label); empty when absent."""
    if any(name not in result[g].data_vars for g in ("posterior", "prior")) or not result["posterior"][name].size:
        return pd.Series(dtype=float)
    post, prior = (result[g][name].std(("chain", "draw")) for g in ("posterior", "prior"))
    ratio = (post / prior).to_series() if post.ndim else pd.Series([float(post / prior)], index=[name])
    ratio.index = ratio.index.astype(str)
    return ratio


def prior_dominated(result: xr.DataTree, ratio: float = PRIOR_DOMINATED_RATIO) -> dict[str, pd.Series]:
    """The prior-dominated loop loadings and link loadings (posterior/prior sd ratio above ``ratio``)."""
    out = {}
    for name in ("loop_loading", "loading"):
        found = sd_ratios(result, name)
        out[name] = found[found > ratio]
    return out


def _mentioned(names: pd.Series, words: set[str]) -> pd.Series:
    """The loadings (labels ``"a|b"``) one of whose parts is among ``words`` -- all when none is."""
    hit = [label for label in names.index if words & set(label.split("|"))]
    return names.loc[hit] if hit else names


def _listed(kind: str, found: pd.Series) -> str:
    spread = (f"{found.min():.2f}" if np.isclose(found.min(), found.max(), atol=0.005)
              else f"{found.min():.2f}-{found.max():.2f}")
    return f"the {_WHAT[kind]} {', '.join(found.index)} (posterior sd / prior sd {spread})"


def _sentence(subject: str, parts: list[str], tail: str) -> str:
    return (f"{subject} depend on loadings the evidence has not informed (their posterior sd is more than "
            f"{PRIOR_DOMINATED_RATIO:g} of their prior sd): " + "; ".join(parts) + ". These numbers restate the "
            "prior set's loadings as much as the evidence" + tail)


def proposition_notes(result: xr.DataTree, propositions: Iterable[Mapping]) -> list[str]:
    """The footnote of a propositions table: which propositions depend on prior-dominated loadings, and
    which loadings ([] when none does)."""
    dominated = prior_dominated(result)
    affected: list[str] = []
    named = {kind: pd.Series(dtype=float) for kind in dominated}
    for prop in propositions:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(prop.get("query", ""))))
        hit = False
        for kind, quantities in (("loading", LINK_QUANTITIES), ("loop_loading", LOOP_QUANTITIES)):
            if len(dominated[kind]) and words & set(quantities):
                mine = _mentioned(dominated[kind], words)
                named[kind] = pd.concat([named[kind], mine[~mine.index.isin(named[kind].index)]])
                hit = True
        if hit:
            affected.append(str(prop.get("id")))
    if not affected:
        return []
    parts = [_listed(kind, dominated[kind].loc[dominated[kind].index.isin(named[kind].index)])
             for kind in ("loop_loading", "loading") if len(named[kind])]
    return [_sentence(f"Proposition{'s' if len(affected) > 1 else ''} {', '.join(affected)}", parts,
                      "; `bayescpec robustness` reports the propositions without the feedback loop.")]


def constraint_effect_notes(result: xr.DataTree) -> list[str]:
    """The footnote of the constraint-effects table ([] when no loading is prior-dominated)."""
    dominated = prior_dominated(result)
    parts = [_listed(kind, dominated[kind]) for kind in ("loop_loading", "loading") if len(dominated[kind])]
    if not parts:
        return []
    return [_sentence("The reductions", parts, ".")]
