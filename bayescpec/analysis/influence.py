"""``explain``: which evidence moved each quantity, by how much, and in which direction.

For every **package** (rows sharing a ``package`` stem from one fact; a row without one is its own
package) and every **evidence row**, the posterior without it is estimated by leaving it out: the
posterior draws weighted by 1 / (its weighted likelihood), Pareto-smoothed (PSIS; k-hat checked
against min(1 - 1/log10 S, 0.7), see :mod:`.base`). Where k-hat is too high the model is refitted
without it (``refit=True``) and the table says which (``method``: ``psis`` or ``refit``; ``psis
(unreliable)`` when a refit was not allowed). Leaving out one row of a package of m rows gives the
package's other rows their full weight back (1/(m-1) instead of 1/m), exactly as a refit of the log
without the row would.

**Affected quantities.** A row about a channel (at any stage, or about one of its units) affects the
channel's θ; a context row about a constraint affects the constraint's severity and the θ of every
channel the constraint binds, directly or through a feedback loop it shares with a constraint that
binds it. For θ the hypothesis is "converting", θ > τ; for a severity, "binding", severity > 0.

**Shift.** The contribution of the evidence to a quantity: posterior mean with it minus without it,
and the same for P(hypothesis). Positive: the evidence raised it ("for"); negative: "against".

**Weight of evidence** (Good 1950; decibans: 10 log10 of a likelihood ratio), for the hypothesis H of
each affected quantity, with L the evidence's weighted likelihood (its rows' package tempering and,
for counts and measures, reliability included):

* *at the prior*: 10 log10 [E_prior(L | H) / E_prior(L | not H)], the Bayes factor of the evidence
  alone for H, averaging over the prior of everything else (latent reach, diagnosticities). Per kind L
  is: a **signal**'s probability of the observed value, r (f + π (s − f)) + (1 − r)/2 or its
  complement; a **count**'s binomial probability of k of n at f + π (s − f); a **measure**'s normal
  density of its standardised value z at λ logit π; each raised to its weight.
* *at the posterior*: 10 log10 of posterior odds of H with the evidence over those without it, the
  Bayes factor of the evidence given all the other evidence (= E(L | H) / E(L | not H) under the
  posterior without it).

Odds from draws are kept finite by holding probabilities within 1/(2S) of 0 and 1.

The **waterfall** per channel runs from the prior P(θ > τ) through each package's contribution to the
posterior; the contributions are each package's effect given all the others, so they need not add
up: the remainder is shown as its own bar (joint effect of the packages and the shared parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from ..engine.aggregate import evidence_data
from ..engine.likelihood import pointwise_log_likelihood
from ..engine.sampling import LIKELIHOOD_VARIABLES, posterior_draws
from ..engine.structure import Structure, structure_of
from ..errors import BayescpecError
from ..inputs.study import Study
from ..outputs.summary import THRESHOLD, check_options, framework_info
from .base import analysis_attrs, flat, khat_threshold_for, logit_odds, require_pointwise, study_of
from .draws import Draws, analysis_draws

__all__ = ["Explanation", "explain", "affected_channels"]

DECIBANS = 10.0 / np.log(10.0)


@dataclass
class Explanation:
    """The influence ledger: ``packages`` and ``rows`` (one line per unit of evidence and affected
    quantity, sorted by the size of the shift of P), ``waterfall`` (per channel: prior, each package's
    contribution, remainder, posterior) and ``refitted`` (units refitted because k-hat was too high)."""

    packages: pd.DataFrame
    rows: pd.DataFrame
    waterfall: dict[str, pd.DataFrame]
    refitted: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    threshold: float = THRESHOLD


def affected_channels(structure: Structure, constraint: str) -> list[str]:
    """Channels a constraint binds directly, or through a feedback loop shared with a constraint that binds them."""
    k = structure.constraints.index(constraint)
    mates = {k}
    for loop in set(structure.member_loop[structure.member_constraint == k].tolist()):
        mates |= set(structure.member_constraint[structure.member_loop == loop].tolist())
    bound = set(structure.link_channel[np.isin(structure.link_constraint, list(mates))].tolist())
    return [c for i, c in enumerate(structure.channels) if i in bound]


def _quantities(structure: Structure, targets: list[str]) -> list[tuple[str, str]]:
    """(variable, name) pairs a unit of evidence about ``targets`` affects, in framework order."""
    found: list[tuple[str, str]] = []
    for target in targets:
        if target in structure.constraints:
            found.append(("severity", target))
            found += [("theta", c) for c in affected_channels(structure, target)]
        elif target in structure.channels:
            found.append(("theta", target))
    order = {q: i for i, q in enumerate([("theta", c) for c in structure.channels]
                                        + [("severity", k) for k in structure.constraints])}
    return sorted(set(found), key=order.__getitem__)


def _units(ledger: pd.DataFrame) -> tuple[dict[str, list[int]], dict[str, tuple[list[int], dict[int, float]]]]:
    """Packages -> row positions; rows -> (positions left out, {position of a package mate: factor}):
    leaving one row of an m-row package out scales its mates' weighted log-likelihood by m/(m-1)."""
    packages: dict[str, list[int]] = {}
    for i, (rid, package) in enumerate(zip(ledger["id"], ledger["package"])):
        packages.setdefault(package or rid, []).append(i)
    rows = {}
    for members in packages.values():
        m = len(members)
        for i in members:
            mates = {j: m / (m - 1.0) for j in members if j != i}
            rows[ledger["id"].iloc[i]] = ([i], mates)
    return packages, rows


def _prior_woe(ll_prior: np.ndarray, hypothesis: np.ndarray) -> float:
    """10 log10 E(L | H) / E(L | not H) over prior draws (``ll_prior``: the unit's log L per draw)."""
    if hypothesis.all() or not hypothesis.any():
        return float("nan")
    return float(DECIBANS * ((logsumexp(ll_prior[hypothesis]) - np.log(hypothesis.sum()))
                             - (logsumexp(ll_prior[~hypothesis]) - np.log((~hypothesis).sum()))))


def _refit_task(task: tuple) -> xr.DataTree:
    """One leave-out refit (an executor task): the study without ``ids``, the result's sampling settings."""
    import warnings

    from ..engine.sampling import fit

    study, ids, settings = task
    kept = study.evidence[~study.evidence["id"].astype(str).isin(ids)].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(study.with_evidence(kept), **settings)


def _refit_settings(result: xr.DataTree) -> dict:
    attrs = result.attrs
    return {"draws": int(attrs.get("draws", 1000)), "tune": int(attrs.get("tune", 1000)),
            "chains": int(attrs.get("chains", 4)), "seed": int(attrs.get("seed", 0)),
            "sampler": "auto"}  # the compiled native path, whichever sampler made the result


def explain(
    result: xr.DataTree,
    study: Study | None = None,
    *,
    threshold: float = THRESHOLD,
    refit: bool = True,
    on_refit: Callable[[str, float], None] | None = None,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Explanation:
    """The influence of every package and evidence row of ``result`` (see the module's doc). ``study``
    defaults to the result's input files (hash-checked); ``refit=False`` never refits and marks
    leave-outs with a too high k-hat as unreliable; ``on_refit(unit, khat)`` is called before the refits
    start, once per leave-out that needs one. The refits run where
    :func:`bayescpec.workflow.executor.run_tasks` says (``executor``, ``workers``, ``scheduler``):
    in this process for up to 8, else in local processes or on a Dask cluster."""
    check_options("eti", 0.9, threshold)
    require_pointwise(result, "explain")
    study = study if study is not None else study_of(result)
    structure = structure_of(study)
    rows = evidence_data(study).rows
    ids = [str(i) for i in result["log_likelihood"]["evidence"].values]
    if list(rows["id"].astype(str)) != ids:
        raise BayescpecError("explain: the result's evidence rows are not the study's (refit the result)")
    current = analysis_draws(result, study, "explain")       # a reweighted result: its base draws
    pointwise = require_pointwise(current.tree, "explain")
    size = current.size
    ll = pointwise.values.reshape(size, len(ids))
    ledger_ds = result["evidence"].to_dataset()
    ledger = pd.DataFrame({"id": ids, **{c: ledger_ds[c].values.astype(str) for c in
                                         ("package", "target", "tier", "stage", "kind", "indicator")}})
    ll_prior = pointwise_log_likelihood(rows, posterior_draws(result, LIKELIHOOD_VARIABLES, group="prior"))
    values = {"theta": current.flat("theta"), "severity": current.flat("severity")}
    prior_values = {"theta": flat(result, "theta", "prior"), "severity": flat(result, "severity", "prior")}
    index = {"theta": {c: i for i, c in enumerate(structure.channels)},
             "severity": {k: i for i, k in enumerate(structure.constraints)}}
    cut = {"theta": threshold, "severity": 0.0}
    packages, row_units = _units(ledger)
    units = [("package", unit, members, {}) for unit, members in packages.items()]
    units += [("row", unit, left, mates) for unit, (left, mates) in row_units.items()]

    def reweighting(left_out: list[int], mates: dict[int, float]):
        log_ratio = -ll[:, left_out].sum(axis=1)
        for j, factor in mates.items():
            log_ratio += (factor - 1.0) * ll[:, j]
        return current.reweight(log_ratio)    # with the update's ratio, if any: smoothed once

    weights = {unit: reweighting(left, mates) for _, unit, left, mates in units}
    keys = {unit: frozenset(ids[i] for i in left) for _, unit, left, _ in units}
    needed: dict[frozenset, str] = {}
    if refit:
        for _, unit, _, _ in units:
            if not weights[unit].reliable:
                needed.setdefault(keys[unit], unit)
    refits: dict[frozenset, xr.DataTree] = {}
    if needed:
        from ..engine.compiled import warm_cache
        from ..workflow.executor import run_tasks

        warm_cache(study)  # worker processes load the compiled model instead of each compiling it
        if on_refit is not None:
            for key, unit in needed.items():
                on_refit(unit, weights[unit].khat)
        settings = _refit_settings(result)
        fitted = run_tasks(_refit_task, [(study, sorted(key), settings) for key in needed], executor=executor,
                           workers=workers, scheduler=scheduler)
        refits = dict(zip(needed, fitted))
    refitted: list[str] = []

    def posterior_without(unit: str):
        rw = weights[unit]
        if rw.reliable or not refit:
            return rw, None, ("psis" if rw.reliable else "psis (unreliable)")
        refitted.append(unit)
        return rw, refits[keys[unit]], "refit"

    def records(level: str, unit: str, left_out: list[int]) -> list[dict]:
        rw, other, method = posterior_without(unit)
        unit_ll_prior = ll_prior[:, left_out].sum(axis=1)
        part = ledger.iloc[left_out]
        out = []
        for variable, name in _quantities(structure, list(dict.fromkeys(part["target"]))):
            x = values[variable][:, index[variable][name]]
            hyp = x > cut[variable]
            if other is None:
                mean_without, p_without = float(rw.weights @ x), float(rw.weights @ hyp)
            else:
                y = flat(other, variable)[:, index[variable][name]]
                mean_without, p_without = float(y.mean()), float((y > cut[variable]).mean())
            mean_with, p_with = float(current.mean(x)), float(current.mean(hyp))
            prior_hyp = prior_values[variable][:, index[variable][name]] > cut[variable]
            shift_p, shift_mean = p_with - p_without, mean_with - mean_without
            sign = np.sign(shift_p) if abs(shift_p) > 1e-12 else np.sign(shift_mean)
            direction = ("for" if sign > 0 else "against" if sign < 0 else "none")
            out.append({
                "level": level, "unit": unit, "package": part["package"].iloc[0], "rows": ", ".join(part["id"]),
                "n_rows": len(part),
                "tiers": ", ".join(dict.fromkeys(part["tier"])), "targets": ", ".join(dict.fromkeys(part["target"])),
                "quantity": f"{variable}[{name}]", "variable": variable, "name": name,
                "hypothesis": f"θ > {threshold:g}" if variable == "theta" else "severity > 0",
                "mean_without": mean_without, "mean_with": mean_with, "shift_mean": shift_mean,
                "p_without": p_without, "p_with": p_with, "shift_p": shift_p,
                "woe_posterior_db": float(DECIBANS * (logit_odds(p_with, size) - logit_odds(p_without, size))),
                "woe_prior_db": _prior_woe(unit_ll_prior, prior_hyp),
                "direction": direction, "method": method, "khat": rw.khat, "ess": rw.ess,
            })
        return out

    package_records = [r for level, unit, left, _ in units if level == "package" for r in records(level, unit, left)]
    row_records = [r for level, unit, left, _ in units if level == "row" for r in records(level, unit, left)]
    attrs = analysis_attrs(result, "", threshold=threshold, khat_threshold=khat_threshold_for(size))
    frames = []
    for recs, title in ((package_records, "Influence of each evidence package"),
                        (row_records, "Influence of each evidence row")):
        frame = pd.DataFrame(recs)
        if len(frame):
            frame = frame.iloc[np.lexsort((-frame["shift_mean"].abs().to_numpy(),
                                           -frame["shift_p"].abs().to_numpy()))].reset_index(drop=True)
        frame.attrs = {**attrs, "title": f"{title}: shift of each affected quantity's posterior mean and "
                                         f"P(hypothesis) (leave-one-out), weight of evidence in decibans"}
        frames.append(frame)
    waterfall = _waterfall(current, frames[0], structure, threshold)
    return Explanation(frames[0], frames[1], waterfall, list(dict.fromkeys(refitted)), dict(result.attrs), threshold)


def _waterfall(current: Draws, packages: pd.DataFrame, structure: Structure, threshold: float) -> dict:
    """Per channel: prior P(θ > τ) and mean θ, each package's contribution, the remainder, the posterior."""
    out = {}
    result = current.tree
    prior, post = current.flat("theta", "prior"), current.flat("theta")
    p_post, mean_post = current.mean(post > threshold), current.mean(post)
    for c, channel in enumerate(structure.channels):
        mine = packages[(packages["variable"] == "theta") & (packages["name"] == channel)] if len(packages) else packages
        mine = mine.iloc[np.argsort(-mine["shift_p"].abs().to_numpy(), kind="stable")] if len(mine) else mine
        start_p, end_p = float((prior[:, c] > threshold).mean()), float(p_post[c])
        start_m, end_m = float(prior[:, c].mean()), float(mean_post[c])
        steps = [{"step": "prior", "kind": "total", "p": start_p, "mean": start_m, "method": ""}]
        steps += [{"step": row["unit"], "kind": "package", "p": row["shift_p"], "mean": row["shift_mean"],
                   "method": row["method"]} for _, row in mine.iterrows()]
        steps.append({"step": "joint effect and shared parameters", "kind": "remainder",
                      "p": end_p - start_p - float(mine["shift_p"].sum() if len(mine) else 0.0),
                      "mean": end_m - start_m - float(mine["shift_mean"].sum() if len(mine) else 0.0), "method": ""})
        steps.append({"step": "posterior", "kind": "total", "p": end_p, "mean": end_m, "method": ""})
        frame = pd.DataFrame(steps)
        frame.attrs = {"channel": channel, "label": framework_info(result)["channels"].get(channel, channel),
                       "threshold": threshold}
        out[channel] = frame
    return out
