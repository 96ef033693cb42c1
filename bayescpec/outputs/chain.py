"""Tables of the conversion chain: where each channel's chain most likely breaks (stages), the framework's
dimensions and their overall quantity (for CPEC: new quality productive forces), and units within channels.
Pure functions of a result, like every table.

Per channel c and stage j: q_cj = P(passing stage j | stage j - 1 reached), the reach
pi_cj = prod_{i <= j} q_ci, and P(the chain breaks first at stage j) = E[pi_c,j-1 (1 - q_cj)]: the
share of the channel's initiatives that get as far as stage j - 1 and stop there. Over the stages
these add up, with P(completes) = E[theta_c], to one.

The stage with the largest P(breaks first) is each chain's *weakest* stage, but it is named as such only
when it **stands out** (:func:`weakest_stage`): when, in at least :data:`STANDS_OUT` of the posterior
draws (IPCC "likely"), the chain's break probability at that stage is larger than at every other stage,
and its mean lead over the runner-up exceeds 2 Monte Carlo standard errors. Where the posterior cannot
tell the stages apart (five stages near 1/5 each, as the shipped study's sparse evidence leaves them),
no stage stands out, and the tables, figures and page say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .summary import (
    CI_KIND,
    CI_PROB,
    THRESHOLD,
    check_options,
    credible_interval,
    framework_info,
    interval_label,
    monte_carlo_error,
    provenance,
)

__all__ = ["break_first", "weakest_stage", "stage_table", "dimension_table", "unit_table", "STANDS_OUT"]

#: the share of posterior draws in which the weakest stage must have the largest break probability for
#: it to stand out ("likely" on the IPCC scale)
STANDS_OUT = 0.66

_SAMPLE = ("chain", "draw")


def break_first(result: xr.DataTree, *, group: str = "posterior") -> xr.DataArray:
    """Per draw, channel and stage: the probability that the chain reaches the previous stage and
    stops at this one, reach_{j-1} (1 - q_j) (reach_0 = 1), times (1 - route probability) at the stages the
    enclave route bypasses (the fit's ``break_first``; results made before it existed: the plain formula)."""
    ds = result[group].to_dataset()
    if "break_first" in ds:  # derived with the fit: a failure the enclave route rescues does not end the chain
        return ds["break_first"]
    reach, q = ds["reach"], ds["stage_probability"]
    before = reach.shift(stage=1, fill_value=1.0)
    return (before * (1.0 - q)).rename("break_first")


def weakest_stage(result: xr.DataTree, channel: str, chain: list[str], *, breaks: xr.DataArray | None = None
                  ) -> tuple[str, dict[str, float], bool]:
    """A channel's weakest stage (largest posterior mean P(breaks first)), each stage's share of posterior
    draws in which it has the chain's largest break probability, and whether the weakest stage stands
    out: that share at least :data:`STANDS_OUT` and its mean lead over the runner-up above 2 MCSE. A
    one-stage chain has nothing to stand out from."""
    brk = (breaks if breaks is not None else break_first(result)).sel(channel=channel, stage=chain)
    means = brk.mean(("chain", "draw")).values
    top = int(np.argmax(means))
    per_draw = brk.transpose("chain", "draw", "stage").values
    largest = per_draw.argmax(axis=-1)
    shares = {stage: float(np.mean(largest == j)) for j, stage in enumerate(chain)}
    if len(chain) < 2:
        return chain[top], shares, False
    others = np.delete(per_draw, top, axis=-1).max(axis=-1)
    lead = xr.DataArray(per_draw[..., top] - others, dims=("chain", "draw"))
    mcse = float(monte_carlo_error(lead, result))
    clear = float(lead.mean()) > 2 * mcse if np.isfinite(mcse) else False
    return chain[top], shares, bool(shares[chain[top]] >= STANDS_OUT and clear)


def _rows_per_stage(result: xr.DataTree, group: str) -> pd.Series:
    if group not in result.children or not result[group].to_dataset().sizes.get(
            "evidence" if group == "evidence" else "gap", 0):
        return pd.Series(dtype=int)
    ds = result[group].to_dataset()
    frame = pd.DataFrame({"target": ds["target"].values.astype(str), "stage": ds["stage"].values.astype(str)})
    return frame.groupby(["target", "stage"]).size()


def stage_table(result: xr.DataTree, *, threshold: float = THRESHOLD, ci_kind: str = CI_KIND,
                ci_prob: float = CI_PROB) -> pd.DataFrame:
    """One row per channel and stage of its chain: P(passing the stage | reached it) in prior and
    posterior, the reach (mean, interval), P(the chain breaks first here) in prior and posterior,
    evidence rows and data gaps at the stage, ``weakest`` marking each channel's stage where the
    chain most likely breaks first (posterior), ``p_weakest`` the share of posterior draws in which the
    stage has the chain's largest break probability, and ``stands_out`` whether the weakest stage stands
    out from the others (:func:`weakest_stage`; False on every other row)."""
    check_options(ci_kind, ci_prob, threshold)
    fw = framework_info(result)
    label = interval_label(ci_kind, ci_prob)
    post, prior = result["posterior"].to_dataset(), result["prior"].to_dataset()
    reach_iv = credible_interval(post["reach"], ci_kind, ci_prob)
    brk_draws = break_first(result)
    brk_post = brk_draws.mean(_SAMPLE)
    brk_prior = break_first(result, group="prior").mean(_SAMPLE)
    q_post, q_prior = post["stage_probability"].mean(_SAMPLE), prior["stage_probability"].mean(_SAMPLE)
    reach_mean = post["reach"].mean(_SAMPLE)
    p_reach = (post["reach"] > threshold).mean(_SAMPLE)
    rows, gaps = _rows_per_stage(result, "evidence"), _rows_per_stage(result, "gaps")
    stage_labels = fw.get("stages", {})
    records = []
    for channel, chain in fw["chains"].items():
        weakest, shares, stands_out = weakest_stage(result, channel, chain, breaks=brk_draws)
        for stage in chain:
            at = dict(channel=channel, stage=stage)
            records.append({
                "channel": channel, "stage": stage, "stage_label": stage_labels.get(stage, stage),
                "prior_pass": float(q_prior.sel(at)), "posterior_pass": float(q_post.sel(at)),
                "reach_mean": float(reach_mean.sel(at)),
                f"{label} lower": float(reach_iv.sel(at).sel(ci_bound="lower")),
                f"{label} upper": float(reach_iv.sel(at).sel(ci_bound="upper")),
                "p_reach": float(p_reach.sel(at)),
                "prior_break_first": float(brk_prior.sel(at)), "break_first": float(brk_post.sel(at)),
                "rows": int(rows.get((channel, stage), 0)), "gaps": int(gaps.get((channel, stage), 0)),
                "weakest": stage == weakest, "p_weakest": shares[stage],
                "stands_out": stage == weakest and stands_out,
            })
    table = pd.DataFrame(records)
    table.attrs = {"interval": label, "threshold": threshold,
                   "title": "The conversion chain per channel: P(passing each stage), reach, and where the chain "
                            "most likely breaks first",
                   "completes": {c: float(post["theta"].sel(channel=c).mean()) for c in fw["chains"]},
                   "provenance": provenance(result)}
    return table


def dimension_table(result: xr.DataTree, *, threshold: float = THRESHOLD, ci_kind: str = CI_KIND,
                    ci_prob: float = CI_PROB) -> pd.DataFrame:
    """The framework's dimensions of the overall quantity (for CPEC: new quality productive forces) and the overall
    quantity itself (last row): prior and posterior mean, interval, P(> tau) in prior and posterior."""
    check_options(ci_kind, ci_prob, threshold)
    fw = framework_info(result)
    label = interval_label(ci_kind, ci_prob)
    post, prior = result["posterior"].to_dataset(), result["prior"].to_dataset()
    dims = fw.get("dimensions", {})
    items = [(d, info["label"], ", ".join(info["measures"]), post["nqpf_dimension"].sel(dimension=d),
              prior["nqpf_dimension"].sel(dimension=d)) for d, info in dims.items()]
    items.append(("nqpf", "Overall quantity" if dims else "Overall: mean conversion",
                  "weighted mean of the dimensions" if dims else "mean of theta over the channels",
                  post["nqpf"], prior["nqpf"]))
    records = []
    for name, text, measures, p, q in items:
        interval = credible_interval(p, ci_kind, ci_prob)
        records.append({
            "dimension": name, "label": text, "measures": measures,
            "prior_mean": float(q.mean()), "posterior_mean": float(p.mean()), "posterior_sd": float(p.std()),
            f"{label} lower": float(interval.sel(ci_bound="lower")), f"{label} upper": float(interval.sel(ci_bound="upper")),
            "prior_p_above": float((q > threshold).mean()), "p_above": float((p > threshold).mean()),
        })
    table = pd.DataFrame(records)
    table.attrs = {"interval": label, "threshold": threshold,
                   "title": f"The overall quantity and its dimensions (tau = {threshold:g})",
                   "provenance": provenance(result)}
    return table


def unit_table(result: xr.DataTree, *, threshold: float = THRESHOLD, ci_kind: str = CI_KIND,
               ci_prob: float = CI_PROB) -> pd.DataFrame:
    """One row per unit (e.g. a zone or a province) named in the evidence: its channel, evidence rows,
    prior and posterior mean of its conversion probability, interval, P(theta_unit > tau), and its
    offset from the channel (logit scale; units are partially pooled within their channel)."""
    check_options(ci_kind, ci_prob, threshold)
    label = interval_label(ci_kind, ci_prob)
    columns = ["unit", "channel", "rows", "prior_mean", "posterior_mean", "posterior_sd", f"{label} lower",
               f"{label} upper", "p_converting", "channel_p_converting", "offset_mean"]
    post, prior = result["posterior"].to_dataset(), result["prior"].to_dataset()
    units = [str(u) for u in post["unit"].values] if "unit" in post.coords else []
    if not units:
        table = pd.DataFrame(columns=columns)
    else:
        ledger = result["evidence"].to_dataset()
        owner = pd.Series([f"{t}/{u}" for t, u in zip(ledger["target"].values.astype(str),
                                                       ledger["unit"].values.astype(str)) if u])
        counts = owner.value_counts()
        theta, interval = post["unit_theta"], credible_interval(post["unit_theta"], ci_kind, ci_prob)
        records = []
        for unit in units:
            channel = unit.split("/", 1)[0]
            t = theta.sel(unit=unit)
            records.append({
                "unit": unit.split("/", 1)[1], "channel": channel, "rows": int(counts.get(unit, 0)),
                "prior_mean": float(prior["unit_theta"].sel(unit=unit).mean()), "posterior_mean": float(t.mean()),
                "posterior_sd": float(t.std()), f"{label} lower": float(interval.sel(unit=unit, ci_bound="lower")),
                f"{label} upper": float(interval.sel(unit=unit, ci_bound="upper")),
                "p_converting": float((t > threshold).mean()),
                "channel_p_converting": float((post["theta"].sel(channel=channel) > threshold).mean()),
                "offset_mean": float(post["unit_offset"].sel(unit=unit).mean()),
            })
        table = pd.DataFrame(records, columns=columns)
    table.attrs = {"interval": label, "threshold": threshold,
                   "title": f"Units within channels: conversion probability of each unit (tau = {threshold:g})",
                   "provenance": provenance(result)}
    return table

