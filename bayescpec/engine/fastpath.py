"""The fast update path: reweight a previous posterior by the new rows' likelihood (PSIS).

When a handful of rows is added to a log whose posterior was already sampled, the new posterior is
``p(params | old, new) ∝ p(params | old) · p(new | params)``: the previous draws, weighted by the new
rows' likelihood, are an importance sample of it. Pareto smoothing (PSIS, Vehtari et al. 2024)
stabilises the weights, and its shape estimate k-hat says whether the estimate can be trusted:
below 0.7 it can; at or above, the new rows moved the posterior too far from the old one and a full
refit is needed.

The log importance ratio of a draw is the difference between the total weighted log-likelihood
of the new study's rows and that of the previous result's rows. Rows unchanged by the update
cancel, so only the new rows (and old rows whose package tempering changed because a new row joined
their package) are evaluated, with :func:`bayescpec.engine.likelihood.pointwise_log_likelihood`.

The reweighted result has the same shape as :func:`bayescpec.fit`'s: each chain's draws are
resampled (systematic resampling) with the PSIS weights, so every table reads it unchanged. Its
attrs carry every provenance attr of a fit, with the new study's hashes, plus ``update_method =
"psis"``, ``pareto_khat``, ``psis_ess`` (effective sample size of the weights) and the reason.

A resample is enough for tables, not for a further reweighting: it has dropped or duplicated the
draws the new rows disfavour, which are exactly the draws a leave-out or another new observation
needs (PSIS on a resample truncates their weights, and the answer is biased while k-hat can look
fine). So the result also keeps its **base draws**: the group ``psis_base`` holds the previous
posterior's sampled parameters (every variable that is not a derived quantity, as float32; about
1.3 MB for the shipped model's 4 000 draws) and the ids of the previous rows. :func:`base_draws`
rebuilds every quantity from them and recomputes the update's log importance ratio on exactly
those draws, so an analysis reweights the *base* draws by the total ratio (the update's plus its
own), smoothed once (:mod:`bayescpec.analysis.base`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..inputs.study import Study
from .aggregate import evidence_data, observation_rows, row_weights
from .likelihood import pointwise_log_likelihood
from .mcmcstats import ess_mean
from .psis import psis_one
from .sampling import POINTWISE_ROW_LIMIT
from .structure import structure_of
from .assemble import (LIKELIHOOD_VARIABLES, add_quantities, evidence_ledger, gap_ledger, log_likelihood_group,
                       posterior_draws)
from .counterfactual import PREFIX as COUNTERFACTUAL
from .diagnostics import CONVERGENCE_RULES
from .quantities import DERIVED_DIMS

__all__ = ["KHAT_THRESHOLD", "BASE_GROUP", "PsisUpdate", "psis_update", "importance_log_ratios", "khat_threshold_for",
           "psis_description", "base_draws"]

#: the group of a reweighted result that keeps the base draws it was reweighted from
BASE_GROUP = "psis_base"

#: accept the fast path only when the Pareto k-hat is below this (Vehtari et al. 2024); with S draws the
#: threshold is min(1 - 1 / log10 S, 0.7) (see :func:`khat_threshold_for`)
KHAT_THRESHOLD = 0.7


def khat_threshold_for(draws: int) -> float:
    """The largest Pareto k-hat for which PSIS estimates with ``draws`` draws are reliable:
    min(1 - 1/log10 S, 0.7) (Vehtari et al. 2024). The one threshold of the package: the fast update
    path and every analysis's reweighting use it."""
    return float(min(1.0 - 1.0 / np.log10(max(int(draws), 11)), KHAT_THRESHOLD))


#: ledger fields that must agree between the previous result and the new study for shared rows
_SAME_FIELDS = ("observed", "target", "indicator", "tier", "kind", "value", "k", "n", "test",
                "reliability", "package", "source", "note")


@dataclass
class PsisUpdate:
    """The outcome of :func:`psis_update`: ``result`` is set only when ``accepted``."""

    accepted: bool
    khat: float
    reason: str
    result: xr.DataTree | None = None
    ess: float = float("nan")
    seconds: float = 0.0
    new_rows: tuple[str, ...] = ()


def _refuse(reason: str, khat: float = float("nan"), **extra) -> PsisUpdate:
    return PsisUpdate(False, khat, reason, None, **extra)


def _applicable(previous: xr.DataTree, study: Study) -> str:
    """Why the previous result cannot be reweighted into ``study``'s posterior ('' if it can)."""
    attrs = previous.attrs
    if attrs.get("prior_set") != study.prior_set:
        return f"the previous result used prior set {attrs.get('prior_set')!r}, not {study.prior_set!r}"
    saved = json.loads(attrs.get("input_sha256", "{}"))
    for role in ("framework", "priors"):  # not sources: provenance; a row's source key is compared below
        if saved.get(role) != study.hashes.get(role):
            return f"the {role} file changed since the previous result"
    if not bool(attrs.get("converged")):
        return "the previous result failed its convergence checks"
    if attrs.get("update_method") == "psis":
        return ("the previous result is itself a reweighting; reweighting its resampled draws again would "
                "compound their duplication -- start from a sampled fit")
    units = set(json.loads(attrs.get("framework", "{}")).get("units", []))
    new_units = [u for u in structure_of(study).unit_names if u not in units]
    if new_units:
        return f"the new rows name a unit the previous result has no parameters for ({new_units[0]!r})"
    if "evidence" not in previous.children:
        return "the previous result has no evidence ledger"
    old = previous["evidence"].to_dataset()
    old_ids = [str(i) for i in old["evidence"].values]
    new_ids = set(study.evidence["id"].astype(str))
    gone = [i for i in old_ids if i not in new_ids]
    if gone:
        return f"{len(gone)} row(s) of the previous result are not in the new evidence (e.g. {gone[0]!r})"
    current = study.evidence.set_index("id").loc[old_ids]
    for name in _SAME_FIELDS:
        if name not in old:
            continue
        a = np.asarray(old[name].values)
        b = current[name].to_numpy()
        if a.dtype.kind == "f":
            same = np.isclose(a, b.astype(float), equal_nan=True)
        else:
            same = a.astype(str) == b.astype(str)
        if not same.all():
            row = old_ids[int(np.flatnonzero(~same)[0])]
            return f"row {row!r} changed its {name} since the previous result"
    return ""


def importance_log_ratios(previous: xr.DataTree, study: Study) -> tuple[np.ndarray, list[str]]:
    """Log importance ratio of every previous draw (flattened chain-major) and the ids of new rows.

    ratio = sum of the new study's weighted row log-likelihoods minus the previous result's; only
    rows that are new or whose package weight changed are evaluated (the others cancel). A row's
    weighted log-likelihood is its package weight times a part that does not depend on the package
    (the reliability tempering of counts and measures is the same before and after), so an old row
    whose package grew contributes ``(1 - w_old / w_new)`` times its new weighted log-likelihood.
    """
    old_ids = {str(i) for i in previous["evidence"]["evidence"].values}
    ev = observation_rows(study.evidence)  # data gaps are not evidence: they leave the posterior alone
    is_old = ev["id"].astype(str).isin(old_ids).to_numpy()
    rows = evidence_data(study).rows
    w_new = row_weights(ev)
    w_old = np.ones(len(ev))
    w_old[is_old] = row_weights(ev[is_old])
    changed = is_old & ~np.isclose(w_old, w_new)
    added = [str(i) for i in ev["id"][~is_old]]
    draws = posterior_draws(previous, LIKELIHOOD_VARIABLES)
    ratio = np.zeros(next(iter(draws.values())).shape[0])
    evaluate = ~is_old | changed
    if evaluate.any():
        factor = np.where(changed, 1.0 - w_old / w_new, 1.0)[evaluate]
        values = pointwise_log_likelihood(rows[evaluate].reset_index(drop=True), draws)
        ratio += (values * factor).sum(axis=1)
    return ratio, added


def _systematic(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    positions = (rng.random() + np.arange(size)) / size
    cumulative = np.cumsum(weights)
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, positions)


def _resample(ds: xr.Dataset, flat: np.ndarray, chains: int, draws: int) -> xr.Dataset:
    """Take the (chain-major) flattened draws ``flat`` (length chains x draws) of every variable."""
    out = {}
    for name, var in ds.data_vars.items():
        if var.dims[:2] != ("chain", "draw"):
            out[name] = var
            continue
        values = var.values.reshape((chains * draws,) + var.shape[2:])[flat]
        out[name] = (var.dims, values.reshape((chains, draws) + var.shape[2:]), var.attrs)
    return xr.Dataset(out, coords=ds.coords, attrs=ds.attrs)


def _base_group(previous: xr.DataTree) -> xr.Dataset:
    """The ``psis_base`` group: the previous posterior's sampled parameters (float32) and its row ids."""
    post = previous["posterior"].to_dataset()
    kept = [name for name, var in post.data_vars.items()
            if name not in DERIVED_DIMS and not name.startswith(COUNTERFACTUAL) and var.dims[:2] == ("chain", "draw")]
    out = post[kept].astype({name: np.float32 for name in kept if post[name].dtype.kind == "f"})
    ids = [str(i) for i in previous["evidence"]["evidence"].values]
    out.attrs = {"rows": json.dumps(ids),
                 "about": "the draws this result was reweighted from (sampled parameters only; every quantity is "
                          "derived from them) and the rows they were fitted on: what analyses reweight"}
    return out


def base_draws(result: xr.DataTree, study: Study) -> tuple[xr.Dataset, np.ndarray]:
    """The base draws of a reweighted ``result`` (every quantity, derived from the kept parameters, with
    the base fit's chain and draw layout) and the update's log importance ratio at each of them
    (flattened chain-major), computed on exactly these draws for ``study`` (the result's own)."""
    stored = result[BASE_GROUP].to_dataset()
    params = stored.astype({name: np.float64 for name in stored.data_vars if stored[name].dtype.kind == "f"})
    params.attrs = {}
    posterior = add_quantities(params, structure_of(study), study.framework)
    ledger = xr.Dataset(coords={"evidence": np.asarray(json.loads(stored.attrs["rows"]), dtype=str)})
    log_ratio, _ = importance_log_ratios(xr.DataTree.from_dict({"posterior": posterior, "evidence": ledger}), study)
    return posterior, log_ratio


def psis_description(attrs) -> str:
    """What a reweighted result is, in one sentence for footnotes and printed tables."""
    base = attrs.get("psis_base_vintage") or f"the fit of evidence {str(attrs.get('psis_base_sha256', ''))[:12]}"
    return (f"PSIS reweighting of {base} by {len(json.loads(attrs.get('psis_rows_added', '[]')))} new row(s) "
            f"(k̂ = {float(attrs.get('pareto_khat', np.nan)):.2f}, effective draws = "
            f"{float(attrs.get('min_ess_bulk', np.nan)):.0f})")


def psis_update(
    previous: xr.DataTree,
    study: Study,
    *,
    khat_threshold: float | None = None,
    min_ess: float = CONVERGENCE_RULES["min_ess_bulk"],
    seed: int | None = None,
) -> PsisUpdate:
    """Reweight ``previous`` (a fit on a subset of ``study``'s rows) into ``study``'s posterior.

    Accepted only when the previous result is applicable (same framework and prior set;
    every one of its rows still in the study, unchanged; converged), the Pareto k-hat of the
    importance weights is below ``khat_threshold`` (default :func:`khat_threshold_for` the number of
    draws), and enough draws are left: the previous bulk
    ESS times the importance efficiency (ESS of the weights / draws) must reach ``min_ess`` (the
    400 a fit must reach). k-hat alone is not enough here: a row's likelihood is bounded, so its
    weights have a light tail (k-hat < 0) even when a very informative row (say 310 of 1 200)
    leaves a few dozen effective draws. Otherwise ``accepted`` is False and ``reason`` says why.
    """
    started = time.perf_counter()
    why = _applicable(previous, study)
    if why:
        return _refuse(why)
    log_ratio, added = importance_log_ratios(previous, study)
    chains, draws = previous["posterior"].sizes["chain"], previous["posterior"].sizes["draw"]
    if khat_threshold is None:
        khat_threshold = khat_threshold_for(chains * draws)
    if not np.all(np.isfinite(log_ratio)):
        return _refuse("the new rows have zero likelihood at some previous draws", new_rows=tuple(added))
    if np.ptp(log_ratio) == 0:
        log_weights, khat = np.full(log_ratio.size, -np.log(log_ratio.size)), -np.inf
    else:
        # relative efficiency of the MCMC draws for the ratios (as in PSIS-LOO)
        ratios = np.exp(log_ratio - log_ratio.max()).reshape(chains, draws)
        r_eff = float(np.clip(ess_mean(ratios[None])[0] / ratios.size, 0.05, 1.0)) if chains > 1 else 1.0
        log_weights, khat = psis_one(log_ratio, r_eff)
    weights = np.exp(log_weights - np.max(log_weights))
    weights /= weights.sum()
    ess = float(1.0 / np.sum(weights**2))
    common = dict(khat=khat, ess=ess, new_rows=tuple(added))
    if not khat < khat_threshold:
        return _refuse(f"Pareto k-hat {khat:.2f} >= {khat_threshold:.3g}: the new rows move the posterior "
                       f"too far for importance reweighting", **common)

    # one systematic resample of every draw by the weights normalised over all draws (not per chain:
    # a chain whose draws the new rows disfavour must lose them); the chain and draw labels of the
    # resampled draws are only positions -- R-hat on them means nothing, the effective draws below do
    rng = np.random.default_rng(seed if seed is not None else int(previous.attrs.get("seed", 0)) + 7)
    flat = _systematic(weights, weights.size, rng)
    rng.shuffle(flat)

    result = previous.copy(deep=True)
    result["posterior"] = _resample(previous["posterior"].to_dataset(), flat, chains, draws)
    if "sample_stats" in previous.children:
        result["sample_stats"] = _resample(previous["sample_stats"].to_dataset(), flat, chains, draws)
    data = evidence_data(study)
    if "log_likelihood" in result.children:
        del result["log_likelihood"]
    if data.n_rows and data.n_rows <= POINTWISE_ROW_LIMIT:  # the same limit as a fit's
        result["log_likelihood"] = log_likelihood_group(result, data)
    del result["evidence"]
    result["evidence"] = evidence_ledger(study, data)
    if "gaps" in result.children:
        del result["gaps"]
    result["gaps"] = gap_ledger(study)
    result[BASE_GROUP] = _base_group(previous)
    # The resampled draws carry duplicates, so R-hat/ESS recomputed on them say little. The honest
    # figures: the previous sampler's R-hat and divergences, and its bulk ESS scaled by the
    # importance-sampling efficiency ESS_is / S. They must pass the same rules as a fit.
    prev_ess = float(previous.attrs.get("min_ess_bulk", np.nan))
    eff_ess = prev_ess * ess / weights.size
    checks = {"max_rhat": float(previous.attrs.get("max_rhat", np.nan)), "min_ess_bulk": eff_ess,
              "divergences": int(previous.attrs.get("divergences", 0))}
    failures = []
    if not checks["max_rhat"] <= CONVERGENCE_RULES["max_rhat"]:
        failures.append(f"max R-hat {checks['max_rhat']:.3f} > {CONVERGENCE_RULES['max_rhat']}")
    if not eff_ess >= min_ess:
        failures.append(f"effective bulk ESS {eff_ess:.0f} (previous {prev_ess:.0f} x importance "
                        f"efficiency {ess / weights.size:.2f}) < {min_ess:g}")
    if checks["divergences"] > CONVERGENCE_RULES["max_divergences"]:
        failures.append(f"{checks['divergences']} divergent transitions")
    checks.update(converged=not failures, convergence_failures="; ".join(failures))
    if failures and bool(previous.attrs.get("converged")):
        return _refuse(f"too little left after reweighting: {'; '.join(failures)}", **common)
    seconds = time.perf_counter() - started
    for stale in ("sampling_seconds", "compile_seconds", "vintage", "fit_key", "update_summary"):
        result.attrs.pop(stale, None)  # they describe the base fit or its vintage, not this result
    result.attrs.update({
        "input_files": json.dumps(study.files),
        "input_sha256": json.dumps(study.hashes),
        "as_of": study.as_of.isoformat(),
        "evidence_rows": data.n_rows,
        "excluded_after_as_of": study.excluded_after_as_of,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **checks,
        "update_method": "psis",
        "pareto_khat": khat,
        "psis_ess": round(ess, 1),
        "psis_rows_added": json.dumps(added),
        "psis_base_sha256": json.loads(previous.attrs.get("input_sha256", "{}")).get("evidence", ""),
        "psis_base_vintage": str(previous.attrs.get("vintage", "")),
        "psis_base_draws": int(chains * draws),
        "psis_resampling": "systematic, over all draws, PSIS weights normalised over all draws",
        "khat_threshold": float(khat_threshold),
        "update_reason": f"Pareto k-hat {khat:.2f} < {khat_threshold:.3g}: {len(added)} new row(s) "
                         f"reweighted (importance ESS {ess:.0f} of {weights.size})",
        "update_seconds": round(seconds, 3),
    })
    result.attrs["psis_description"] = psis_description(result.attrs)
    return PsisUpdate(True, khat, result.attrs["update_reason"], result, ess, seconds, tuple(added))
