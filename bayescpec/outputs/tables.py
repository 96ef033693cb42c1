"""Publication tables that :mod:`bayescpec.outputs.summary` does not have, and the set of report tables.

Every table is a pure function of the result (the ``xarray.DataTree`` made by :func:`bayescpec.fit`),
a numeric DataFrame whose ``attrs`` carry the title, the interval and the provenance; turning it into
text is :mod:`bayescpec.outputs.layout` and :mod:`bayescpec.outputs.render`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .summary import (
    CI_KIND,
    CI_PROB,
    THRESHOLD,
    channel_table,
    check_options,
    constraint_table,
    credible_interval,
    framework_info,
    interval_label,
    proposition_table,
    provenance,
)

__all__ = ["TABLES", "link_reductions", "constraint_effect_table", "evidence_table", "report_tables"]

#: the tables of a report, by file stem
TABLES = ("channels", "propositions", "constraints", "constraint-effects", "evidence")


def _sigmoid(x: xr.DataArray) -> xr.DataArray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: xr.DataArray) -> xr.DataArray:
    p = p.clip(1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def link_reductions(result: xr.DataTree, *, group: str = "posterior") -> xr.DataArray:
    """Per draw and link ``channel|constraint``: theta of the channel without that constraint minus
    theta with it, ``sigmoid(logit(base_theta_c) - effect_c + loading_ck * severity_k) - theta_c``.
    Positive means the constraint lowers the channel's conversion probability."""
    fw = framework_info(result)
    ds = result[group].to_dataset()
    links = [(c, k) for c, k in fw["links"]]
    if not links:
        return xr.DataArray(np.zeros((0,)), dims=["link"], coords={"link": []})
    names = [f"{c}|{k}" for c, k in links]
    channels = xr.DataArray([c for c, _ in links], dims="link", coords={"link": names})
    constraints = xr.DataArray([k for _, k in links], dims="link", coords={"link": names})
    base = ds["base_theta"].sel(channel=channels).drop_vars("channel")
    effect = ds["constraint_effect"].sel(channel=channels).drop_vars("channel")
    theta = ds["theta"].sel(channel=channels).drop_vars("channel")
    severity = ds["severity"].sel(constraint=constraints).drop_vars("constraint")
    loading = ds["loading"].sel(link=names)
    without = _sigmoid(_logit(base) - effect + loading * severity)
    return (without - theta).rename("reduction")


def constraint_effect_table(result: xr.DataTree, *, ci_kind: str = CI_KIND, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """One row per (constraint, linked channel): the posterior loading, and the estimated reduction
    of the channel's conversion probability theta by the constraint (theta without the constraint
    minus theta with it): prior mean, posterior mean, sd, interval and P(reduction > 0)."""
    check_options(ci_kind, ci_prob)
    fw = framework_info(result)
    label = interval_label(ci_kind, ci_prob)
    columns = ["constraint", "channel", "loading_mean", "prior_reduction_mean", "reduction_mean",
               "reduction_sd", f"{label} lower", f"{label} upper", "p_reduces"]
    if not fw["links"]:
        table = pd.DataFrame(columns=columns)
    else:
        post = link_reductions(result, group="posterior")
        prior = link_reductions(result, group="prior")
        interval = credible_interval(post, ci_kind, ci_prob)
        loading = result["posterior"]["loading"].mean(("chain", "draw"))
        order = {k: i for i, k in enumerate(fw["constraints"])}
        links = sorted(fw["links"], key=lambda ck: (order[ck[1]], list(fw["channels"]).index(ck[0])))
        names = [f"{c}|{k}" for c, k in links]
        table = pd.DataFrame({
            "constraint": [k for _, k in links],
            "channel": [c for c, _ in links],
            "loading_mean": loading.sel(link=names).values,
            "prior_reduction_mean": prior.mean(("chain", "draw")).sel(link=names).values,
            "reduction_mean": post.mean(("chain", "draw")).sel(link=names).values,
            "reduction_sd": post.std(("chain", "draw")).sel(link=names).values,
            f"{label} lower": interval.sel(ci_bound="lower", link=names).values,
            f"{label} upper": interval.sel(ci_bound="upper", link=names).values,
            "p_reduces": (post > 0).mean(("chain", "draw")).sel(link=names).values,
        })
    table.attrs = {"interval": label, "constraint_labels": dict(fw["constraints"]),
                   "title": "Constraint effects: reduction of each linked channel's conversion probability "
                            "θ (θ without the constraint − θ with it; probability scale)",
                   "provenance": provenance(result)}
    return table


def evidence_table(result: xr.DataTree) -> pd.DataFrame:
    """The evidence ledger: every row the fit used, with tier, target, source key, its weight and its
    pointwise log-likelihood contribution (posterior mean and sd of the weighted log-likelihood;
    NaN when the result kept no pointwise log-likelihood). Ordered by tier rank, then target."""
    fw = framework_info(result)
    ledger = result["evidence"].to_dataset()
    frame = pd.DataFrame({"evidence": ledger["evidence"].values.astype(str)})
    for name in ("observed", "tier", "target", "indicator", "kind", "value", "k", "n", "test",
                 "reliability", "weight", "package", "source", "note"):
        if name in ledger:
            values = ledger[name].values
            frame[name] = values.astype(float) if values.dtype.kind == "f" else values.astype(str)
    if "log_likelihood" in result.children and "rows" in result["log_likelihood"].data_vars:
        rows = result["log_likelihood"]["rows"]
        mean = rows.mean(("chain", "draw")).to_series()
        sd = rows.std(("chain", "draw")).to_series()
        frame["loglik_mean"] = frame["evidence"].map(mean).astype(float)
        frame["loglik_sd"] = frame["evidence"].map(sd).astype(float)
    else:
        frame["loglik_mean"] = np.nan
        frame["loglik_sd"] = np.nan
    rank = {t: i for i, t in enumerate(fw["tiers"])}
    targets = list(fw["channels"]) + list(fw["constraints"])
    position = {t: i for i, t in enumerate(targets)}
    frame["_tier"] = frame["tier"].map(rank).fillna(len(rank))
    frame["_target"] = frame["target"].map(position).fillna(len(position))
    frame["_file"] = np.arange(len(frame))
    frame = frame.sort_values(["_tier", "_target", "_file"]).drop(columns=["_tier", "_target", "_file"])
    frame = frame.reset_index(drop=True)
    frame.attrs = {"title": "Evidence ledger: every evidence row used, with its pointwise log-likelihood "
                            "contribution (weighted, posterior mean)",
                   "provenance": provenance(result)}
    return frame


def report_tables(
    result: xr.DataTree,
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> dict[str, pd.DataFrame]:
    """Every table of a report, keyed by file stem (see :data:`TABLES`), as numeric DataFrames."""
    check_options(ci_kind, ci_prob, threshold)
    return {
        "channels": channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob),
        "propositions": proposition_table(result, threshold=threshold),
        "constraints": constraint_table(result, ci_kind=ci_kind, ci_prob=ci_prob),
        "constraint-effects": constraint_effect_table(result, ci_kind=ci_kind, ci_prob=ci_prob),
        "evidence": evidence_table(result),
    }

