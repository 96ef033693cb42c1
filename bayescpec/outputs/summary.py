"""Tables: pure functions of a fitted result (an ``xarray.DataTree`` made by :func:`bayescpec.fit`).

Every table takes the interval kind and probability as explicit keyword arguments with one
documented default, **a 90% equal-tailed interval** (``ci_kind="eti", ci_prob=0.90``): the IPCC's
"very likely" range, the convention policy readers of this toolkit already know. The returned
DataFrame's ``attrs`` carry the header (interval, threshold) and the provenance of the result.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from ..engine.counterfactual import stored_counterfactual
from ..inputs.query import QUANTITY_DIMS, evaluate_proposition
from .assumptions import proposition_notes

__all__ = [
    "CI_KIND",
    "CI_PROB",
    "THRESHOLD",
    "IPCC_SCALE",
    "ipcc_likelihood",
    "conversion_probability",
    "channel_table",
    "proposition_table",
    "constraint_table",
    "provenance",
    "interval_label",
    "check_options",
    "credible_interval",
    "framework_info",
    "monte_carlo_error",
    "near_boundary",
    "word_change_is_real",
    "WITHIN_NOISE",
]

CI_KIND = "eti"
CI_PROB = 0.90
THRESHOLD = 0.5
#: IPCC calibrated likelihood language (Mastrandrea et al. 2010), lower bounds, checked top down
IPCC_SCALE = (
    (0.99, "virtually certain"),
    (0.90, "very likely"),
    (0.66, "likely"),
    (0.33, "about as likely as not"),
    (0.10, "unlikely"),
    (0.01, "very unlikely"),
    (0.0, "exceptionally unlikely"),
)


def ipcc_likelihood(probability: float) -> str:
    """The IPCC likelihood term for a probability: >= .99 virtually certain, >= .90 very likely,
    >= .66 likely, > .33 about as likely as not, > .10 unlikely, > .01 very unlikely, else
    exceptionally unlikely (the lower terms are upper bounds: 'unlikely' is <= .33)."""
    p = float(probability)
    if not 0.0 <= p <= 1.0 or np.isnan(p):
        raise ValueError(f"a probability must be in [0, 1]; found {probability!r}")
    if p >= 0.99:
        return "virtually certain"
    if p >= 0.90:
        return "very likely"
    if p >= 0.66:
        return "likely"
    if p > 0.33:
        return "about as likely as not"
    if p > 0.10:
        return "unlikely"
    if p > 0.01:
        return "very unlikely"
    return "exceptionally unlikely"


def check_options(ci_kind: str, ci_prob: float, threshold: float | None = None) -> None:
    """Raise ValueError unless ci_kind is eti/hdi, ci_prob and threshold are in (0, 1)."""
    if ci_kind not in ("eti", "hdi"):
        raise ValueError(f"ci_kind must be 'eti' or 'hdi'; found {ci_kind!r}")
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1); found {ci_prob!r}")
    if threshold is not None and not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1); found {threshold!r}")


def interval_label(ci_kind: str = CI_KIND, ci_prob: float = CI_PROB) -> str:
    """E.g. ``"90% ETI"``."""
    return f"{ci_prob * 100:g}% {ci_kind.upper()}"


def credible_interval(values: xr.DataArray, ci_kind: str, ci_prob: float) -> xr.DataArray:
    """The ETI or HDI of ``values`` over its sample dims; a ``ci_bound`` dim holds lower/upper. The ETI is
    ArviZ's (NumPy's linear quantiles), computed here without importing ArviZ; the HDI is ArviZ's."""
    dims = [d for d in ("chain", "draw") if d in values.dims]
    if ci_kind == "hdi":
        import arviz_stats as az

        return az.hdi(values, prob=ci_prob, dim=dims)
    bounds = values.quantile([(1 - ci_prob) / 2, (1 + ci_prob) / 2], dim=dims)
    bounds = bounds.rename(quantile="ci_bound").assign_coords(ci_bound=["lower", "upper"])
    return bounds.transpose(..., "ci_bound")


def framework_info(result: xr.DataTree) -> dict:
    """The framework recorded in a result: channels, constraints, links, tiers, propositions."""
    return json.loads(result.attrs["framework"])


def provenance(result: xr.DataTree) -> dict:
    """What travels with every table: inputs, their hashes, prior set, seed, sampler, checks."""
    attrs = result.attrs
    hashes = json.loads(attrs.get("input_sha256", "{}"))
    return {
        "bayescpec_version": attrs.get("bayescpec_version"),
        "prior_set": attrs.get("prior_set"),
        "as_of": attrs.get("as_of"),
        "seed": attrs.get("seed"),
        "draws": attrs.get("draws"),
        "chains": attrs.get("chains"),
        "sampler": attrs.get("sampler"),
        "evidence_rows": attrs.get("evidence_rows"),
        "max_rhat": round(float(attrs.get("max_rhat", np.nan)), 4),
        "min_ess_bulk": round(float(attrs.get("min_ess_bulk", np.nan))),
        "min_ess_tail": _rounded(attrs.get("min_ess_tail")),
        "treedepth_share": _rounded(attrs.get("treedepth_share"), 4),
        "min_bfmi": _rounded(attrs.get("min_bfmi"), 3),
        "divergences": attrs.get("divergences"),
        "divergence_retry": str(attrs.get("divergence_retry", "") or ""),
        "psis": str(attrs.get("psis_description", "") or "") if attrs.get("update_method") == "psis" else "",
        "converged": bool(attrs.get("converged")),
        "convergence_failures": str(attrs.get("convergence_failures", "") or ""),
        **{f"sha256_{role}": digest[:12] for role, digest in hashes.items()},
        **({"prior_statements": stated} if (stated := prior_statements_text(attrs)) else {}),
    }


def prior_statements_text(attrs) -> str:
    """The priors a result's prior set gave as statements, each with what it was solved into
    ("channels.sez: 90% in [0.2, 0.6] → Beta(mean 0.402, concentration 15.2)"); "" when none were."""
    try:
        records = json.loads(attrs.get("prior_statements") or "[]")
    except (TypeError, ValueError):
        return ""
    return "; ".join(f"{r['key']}: {r['statement']} → {r['distribution']}" for r in records)


def _rounded(value, digits: int = 0):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(value) else (round(value) if digits == 0 else round(value, digits))


def monte_carlo_error(values: xr.DataArray, result: xr.DataTree) -> xr.DataArray:
    """The Monte Carlo standard error of the posterior mean of ``values`` (dims chain, draw, ...): from
    the draws' autocorrelation (ArviZ) for a sampled fit; for a PSIS reweighting, whose resampled draws
    repeat, sd / sqrt(effective draws) with the effective draws the reweighting kept."""
    values = values.astype(float)
    if result.attrs.get("update_method") == "psis":
        effective = max(float(result.attrs.get("min_ess_bulk", np.nan)), 1.0)
        return values.std(("chain", "draw")) / np.sqrt(effective)
    if values.sizes.get("chain", 1) * values.sizes.get("draw", 1) < 4:
        return xr.full_like(values.isel(chain=0, draw=0, drop=True), np.nan)
    from ..engine.mcmcstats import mcse_mean  # ArviZ's mcse(method="mean"), every element at once

    values = values.transpose("chain", "draw", ...)
    rest = values.isel(chain=0, draw=0, drop=True)
    flat = np.moveaxis(values.values.reshape(values.shape[0], values.shape[1], -1), -1, 0)
    return rest.copy(data=mcse_mean(flat).reshape(rest.shape))


#: how a change within 2 MCSE of zero (Monte Carlo noise, not a change) is shown
WITHIN_NOISE = "≈ 0"


def near_boundary(probability: float, mcse: float, *, width: float = 2.0) -> bool:
    """True when ``probability`` lies within ``width`` MCSE of a boundary of the IPCC scale: its
    likelihood word could change with more draws."""
    if not np.isfinite(mcse):
        return False
    return any(abs(probability - edge) <= width * mcse for edge, _ in IPCC_SCALE if 0 < edge < 1)


def word_change_is_real(p_a: float, mcse_a: float, p_b: float, mcse_b: float, *, width: float = 2.0) -> bool:
    """Whether a change of IPCC word from ``p_a`` to ``p_b`` is more than Monte Carlo noise: the words
    differ and the probabilities differ by more than ``width`` MCSE of the difference."""
    if ipcc_likelihood(p_a) == ipcc_likelihood(p_b):
        return False
    noise = np.hypot(np.nan_to_num(mcse_a), np.nan_to_num(mcse_b))
    return abs(p_b - p_a) > width * noise


def _quantities(result: xr.DataTree, group: str) -> dict[str, xr.DataArray]:
    ds = result[group].to_dataset()
    return {name: ds[name] for name in QUANTITY_DIMS if name in ds}


def conversion_probability(result: xr.DataTree, *, threshold: float = THRESHOLD, group: str = "posterior") -> xr.DataArray:
    """P(theta_c > threshold) per channel, in the posterior (default) or the prior."""
    check_options(CI_KIND, CI_PROB, threshold)
    theta = result[group]["theta"]
    return (theta > threshold).mean(("chain", "draw"))


def _tier_counts(result: xr.DataTree) -> pd.DataFrame:
    fw = framework_info(result)
    ledger = result["evidence"].to_dataset()
    tiers = [t for t in fw["tiers"] if fw["tier_targets"][t] == "channel"]
    frame = pd.DataFrame({"target": ledger["target"].values, "tier": ledger["tier"].values})
    counts = pd.crosstab(frame["target"], frame["tier"]) if len(frame) else pd.DataFrame()
    counts = counts.reindex(index=list(fw["channels"]), columns=tiers, fill_value=0).fillna(0).astype(int)
    counts.columns = [f"rows_{t}" for t in tiers]
    return counts


def channel_table(
    result: xr.DataTree,
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """One row per channel: prior and posterior mean of theta, posterior sd, the credible interval,
    P(theta > threshold) in prior and posterior, its IPCC likelihood term, and evidence rows per tier."""
    check_options(ci_kind, ci_prob, threshold)
    fw = framework_info(result)
    post, prior = result["posterior"]["theta"], result["prior"]["theta"]
    interval = credible_interval(post, ci_kind, ci_prob)
    p_post = (post > threshold).mean(("chain", "draw"))
    p_prior = (prior > threshold).mean(("chain", "draw"))
    label = interval_label(ci_kind, ci_prob)
    table = pd.DataFrame({
        "channel": list(fw["channels"]),
        "label": list(fw["channels"].values()),
        "prior_mean": prior.mean(("chain", "draw")).values,
        "posterior_mean": post.mean(("chain", "draw")).values,
        "posterior_sd": post.std(("chain", "draw")).values,
        f"{label} lower": interval.sel(ci_bound="lower").values,
        f"{label} upper": interval.sel(ci_bound="upper").values,
        "prior_p_converting": p_prior.values,
        "p_converting": p_post.values,
        "likelihood": [ipcc_likelihood(p) for p in p_post.values],
        "posterior_mean_mcse": monte_carlo_error(post, result).values,
        "p_converting_mcse": monte_carlo_error(post > threshold, result).values,
    })
    table["likelihood_near_boundary"] = [near_boundary(p, m) for p, m in zip(table["p_converting"],
                                                                          table["p_converting_mcse"])]
    table = table.join(_tier_counts(result), on="channel")
    table.attrs = {"interval": label, "threshold": threshold,
                   "title": f"Conversion probability theta per channel; P(converting) = P(theta > {threshold:g})",
                   "provenance": provenance(result)}
    return table


#: a conditional proposition (B given A) with fewer draws than this in A is flagged as too uncertain
MIN_CONDITION_DRAWS = 100


def _proposition_rows(fw: dict) -> list[dict]:
    """Every proposition of the framework, each followed by its parts (``P2/main_platform``)."""
    rows = []
    for prop in fw["propositions"]:
        rows.append({"proposition": prop["id"], "part_of": "", "statement": prop["statement"],
                     "query": prop["query"], "reading": prop.get("reading", "")})
        for part in prop.get("parts", []):
            rows.append({"proposition": f"{prop['id']}/{part['id']}", "part_of": prop["id"],
                         "statement": part["label"], "query": part["query"], "reading": ""})
    return rows


def proposition_holds(result: xr.DataTree, query: str, *, group: str = "posterior", threshold: float = THRESHOLD
                      ) -> tuple[xr.DataArray, xr.DataArray]:
    """Per draw of ``group``: whether ``query`` holds (with its condition, for ``B given A``) and whether its
    condition holds (everywhere, without ``given``); counterfactual values come from the result."""
    fw = framework_info(result)
    ds = result[group].to_dataset()
    return evaluate_proposition(query, _quantities(result, group), tau=threshold,
                                delta=float(fw.get("materiality", 0.05)), counterfactual=stored_counterfactual(ds),
                                levels=list(fw.get("levels", {})), constraints=list(fw["constraints"]))


def _conditional_mcse(holds: xr.DataArray, condition: xr.DataArray, result: xr.DataTree) -> float:
    """MCSE of P(B | A) = mean(A and B) / mean(A), by the delta method: the MCSE of the mean of
    (H - p C) / mean(C)."""
    share = float(condition.mean())
    if share == 0:
        return float("nan")
    p = float(holds.mean()) / share
    return float(monte_carlo_error((holds.astype(float) - p * condition.astype(float)) / share, result))


def proposition_table(result: xr.DataTree, *, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Each proposition's prior and posterior probability, the change between them and its MCSE, with the
    proposition's parts on the rows after it (``P2/main_platform``, ``part_of`` = ``P2``). The change's Monte
    Carlo standard error (``change_mcse``: posterior and prior MCSE combined) and whether the change lies
    within 2 of them (``change_within_noise``: shown as ≈ 0). A conditional proposition (B given A) reports
    P(B | A), with P(A) and the number of posterior draws in A beside it (``condition_probability``,
    ``condition_draws``; empty otherwise); one with fewer than ``MIN_CONDITION_DRAWS`` draws in A is flagged
    ``too_few_draws``."""
    check_options(CI_KIND, CI_PROB, threshold)
    fw = framework_info(result)
    delta = float(fw.get("materiality", 0.05))
    rows = []
    for row in _proposition_rows(fw):
        prior_h, prior_c = proposition_holds(result, row["query"], group="prior", threshold=threshold)
        holds, condition = proposition_holds(result, row["query"], threshold=threshold)
        conditional = not bool(condition.all())
        p_prior = float(prior_h.mean()) / float(prior_c.mean()) if float(prior_c.mean()) else float("nan")
        p_post = float(holds.mean()) / float(condition.mean()) if float(condition.mean()) else float("nan")
        mcse = _conditional_mcse(holds, condition, result)
        draws = int(condition.sum())
        # the prior's draws are independent (forward simulation): its MCSE is the binomial one
        prior_draws = max(int(prior_c.sum()), 1)
        change_mcse = float(np.hypot(np.nan_to_num(mcse), np.sqrt(p_prior * (1 - p_prior) / prior_draws)))
        rows.append({**row, "prior_probability": p_prior, "posterior_probability": p_post,
                     "change": p_post - p_prior, "likelihood": ipcc_likelihood(p_post) if np.isfinite(p_post) else "",
                     "posterior_probability_mcse": mcse, "likelihood_near_boundary": near_boundary(p_post, mcse),
                     "change_mcse": change_mcse, "change_within_noise": abs(p_post - p_prior) <= 2 * change_mcse,
                     "condition_probability": float(condition.mean()) if conditional else np.nan,
                     "prior_condition_probability": float(prior_c.mean()) if conditional else np.nan,
                     "condition_draws": draws if conditional else np.nan,
                     "too_few_draws": bool(conditional and draws < MIN_CONDITION_DRAWS)})
    columns = ["proposition", "part_of", "statement", "query", "reading", "prior_probability",
               "posterior_probability", "change", "likelihood", "posterior_probability_mcse",
               "likelihood_near_boundary", "change_mcse", "change_within_noise", "condition_probability",
               "prior_condition_probability", "condition_draws", "too_few_draws"]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs = {"threshold": threshold, "delta": delta,
                   "title": f"Propositions (tau = {threshold:g}, delta = {delta:g})",
                   "provenance": provenance(result),
                   "assumption_notes": proposition_notes(result, fw["propositions"])}
    return table


def constraint_table(result: xr.DataTree, *, ci_kind: str = CI_KIND, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """Severity of each constraint (0 = typical): prior and posterior mean, interval,
    P(more binding than typical), and the channels it binds."""
    check_options(ci_kind, ci_prob)
    fw = framework_info(result)
    label = interval_label(ci_kind, ci_prob)
    if not fw["constraints"]:
        return pd.DataFrame(columns=["constraint"])
    post, prior = result["posterior"]["severity"], result["prior"]["severity"]
    interval = credible_interval(post, ci_kind, ci_prob)
    ledger = result["evidence"].to_dataset()
    context_rows = pd.Series(ledger["target"].values).value_counts()
    stages = fw.get("link_stages", {})
    multi = len(fw.get("stages", {})) > 1
    binds = {k: [f"{c} ({stages.get(f'{c}|{k}', '')})" if multi else c for c, kk in fw["links"] if kk == k]
             for k in fw["constraints"]}
    loops = {k: [loop for loop, info in fw.get("loops", {}).items() if k in info["constraints"]] for k in fw["constraints"]}
    table = pd.DataFrame({
        "constraint": list(fw["constraints"]),
        "label": list(fw["constraints"].values()),
        "binds": [", ".join(binds[k]) for k in fw["constraints"]],
        "loops": [", ".join(loops[k]) for k in fw["constraints"]],
        "prior_mean": prior.mean(("chain", "draw")).values,
        "posterior_mean": post.mean(("chain", "draw")).values,
        "posterior_sd": post.std(("chain", "draw")).values,
        f"{label} lower": interval.sel(ci_bound="lower").values,
        f"{label} upper": interval.sel(ci_bound="upper").values,
        "p_binding": (post > 0).mean(("chain", "draw")).values,
        "rows_context": [int(context_rows.get(k, 0)) for k in fw["constraints"]],
    })
    table.attrs = {"interval": label, "title": "Constraint severity (logit scale, 0 = typical; P(binding) = P(severity > 0): more binding than typical)",
                   "provenance": provenance(result)}
    return table
