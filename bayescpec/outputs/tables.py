"""Publication tables that :mod:`bayescpec.outputs.summary` does not have, and the set of report tables.

Every table is a pure function of the result (the ``xarray.DataTree`` made by :func:`bayescpec.fit`),
a numeric DataFrame whose ``attrs`` carry the title, the interval and the provenance; turning it into
text is :mod:`bayescpec.outputs.layout` and :mod:`bayescpec.outputs.render`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .assumptions import constraint_effect_notes
from .chain import dimension_table, stage_table, unit_table
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

__all__ = ["TABLES", "link_reductions", "constraint_effect_table", "constraint_correlation_table", "evidence_table",
           "gap_table", "report_tables"]

#: the tables of a report, by file stem
TABLES = ("channels", "propositions", "stages", "dimensions", "constraints", "constraint-correlations",
          "constraint-effects", "units", "evidence", "gaps")


def link_reductions(result: xr.DataTree, *, group: str = "posterior") -> xr.DataArray:
    """Per draw and link ``channel|constraint``: the channel's conversion probability with that
    constraint's severity at "typical" (0) minus with its estimated severity (the ``link_reduction``
    quantity of the fit). Positive means the constraint lowers the channel's conversion probability."""
    ds = result[group].to_dataset()
    if "link_reduction" not in ds or not ds.sizes.get("link", 0):
        return xr.DataArray(np.zeros((0,)), dims=["link"], coords={"link": []})
    return ds["link_reduction"].rename("reduction")


def constraint_effect_table(result: xr.DataTree, *, ci_kind: str = CI_KIND, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """One row per (constraint, linked channel): the posterior loading, and the estimated reduction
    of the channel's conversion probability theta by the constraint (theta without the constraint
    minus theta with it): prior mean, posterior mean, sd, interval and P(reduction > 0)."""
    check_options(ci_kind, ci_prob)
    fw = framework_info(result)
    label = interval_label(ci_kind, ci_prob)
    columns = ["constraint", "channel", "stage", "loading_mean", "p_loading_positive", "prior_reduction_mean",
               "reduction_mean", "reduction_sd", f"{label} lower", f"{label} upper", "p_reduces", "p_material"]
    if not fw["links"]:
        table = pd.DataFrame(columns=columns)
    else:
        post = link_reductions(result, group="posterior")
        prior = link_reductions(result, group="prior")
        interval = credible_interval(post, ci_kind, ci_prob)
        loading = result["posterior"]["loading"]
        delta = float(fw.get("materiality", 0.05))
        stages = fw.get("link_stages", {})
        order = {k: i for i, k in enumerate(fw["constraints"])}
        links = sorted(fw["links"], key=lambda ck: (order[ck[1]], list(fw["channels"]).index(ck[0])))
        names = [f"{c}|{k}" for c, k in links]
        table = pd.DataFrame({
            "constraint": [k for _, k in links],
            "channel": [c for c, _ in links],
            "stage": [stages.get(n, "") for n in names],
            "loading_mean": loading.mean(("chain", "draw")).sel(link=names).values,
            "p_loading_positive": (loading > 0).mean(("chain", "draw")).sel(link=names).values,
            "prior_reduction_mean": prior.mean(("chain", "draw")).sel(link=names).values,
            "reduction_mean": post.mean(("chain", "draw")).sel(link=names).values,
            "reduction_sd": post.std(("chain", "draw")).sel(link=names).values,
            f"{label} lower": interval.sel(ci_bound="lower", link=names).values,
            f"{label} upper": interval.sel(ci_bound="upper", link=names).values,
            "p_reduces": (post > 0).mean(("chain", "draw")).sel(link=names).values,
            "p_material": (post > delta).mean(("chain", "draw")).sel(link=names).values,
        })
    table.attrs = {"interval": label, "delta": float(fw.get("materiality", 0.05)),
                   "constraint_labels": dict(fw["constraints"]),
                   "title": "Constraint effects: reduction of each linked channel's conversion probability "
                            "θ (θ with the constraint's severity at typical − θ; probability scale)",
                   "provenance": provenance(result), "assumption_notes": constraint_effect_notes(result)}
    return table


def evidence_table(result: xr.DataTree) -> pd.DataFrame:
    """The evidence ledger: every row the fit used, with tier, target, source key, its weight and its
    pointwise log-likelihood contribution (posterior mean and sd of the weighted log-likelihood;
    NaN when the result kept no pointwise log-likelihood). Ordered by tier rank, then target."""
    fw = framework_info(result)
    ledger = result["evidence"].to_dataset()
    frame = pd.DataFrame({"evidence": ledger["evidence"].values.astype(str)})
    for name in ("observed", "tier", "target", "stage", "unit", "indicator", "kind", "value", "k", "n", "test",
                 "reliability", "weight", "package", "source", "note"):
        if name in ledger:
            values = ledger[name].values
            frame[name] = values.astype(float) if values.dtype.kind == "f" else values.astype(str)
    if "log_likelihood" in result.children and "rows" in result["log_likelihood"].data_vars:
        group = result["log_likelihood"].to_dataset()
        rows = group["rows"] * group["weight"] if "weight" in group else group["rows"]  # what the fit used
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


def constraint_correlation_table(result: xr.DataTree) -> pd.DataFrame:
    """The correlation of the constraints' severities, prior and posterior, for every pair: what the
    feedback loops (shared factors) make of the evidence on one constraint for the others."""
    fw = framework_info(result)
    names = list(fw["constraints"])
    records = []
    if len(names) > 1:
        corr = {}
        for group in ("prior", "posterior"):
            sev = result[group]["severity"].transpose("chain", "draw", "constraint").values.reshape(-1, len(names))
            corr[group] = np.corrcoef(sev, rowvar=False)
        loops = fw.get("loops", {})
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                b = names[j]
                shared = [loop for loop, info in loops.items() if a in info["constraints"] and b in info["constraints"]]
                records.append({"constraint_a": a, "constraint_b": b, "loop": ", ".join(shared),
                                "prior_correlation": corr["prior"][i, j], "posterior_correlation": corr["posterior"][i, j]})
    table = pd.DataFrame(records, columns=["constraint_a", "constraint_b", "loop", "prior_correlation",
                                           "posterior_correlation"])
    if len(table):  # pairs in a loop first, then by the size of the posterior correlation
        order = np.lexsort((-table["posterior_correlation"].abs().to_numpy(), (table["loop"] == "").to_numpy()))
        table = table.iloc[order].reset_index(drop=True)
    table.attrs = {"title": "Correlation of constraint severities (feedback loops of Fig. 4): prior and posterior",
                   "provenance": provenance(result)}
    return table


def gap_table(result: xr.DataTree) -> pd.DataFrame:
    """The recorded data gaps: indicators for which no public data exist, per channel and stage. They are
    tracked and reported (what a monitoring system should publish next) but are not evidence."""
    columns = ["gap", "target", "stage", "indicator", "tier", "observed", "source", "note"]
    if "gaps" not in result.children or not result["gaps"].to_dataset().sizes.get("gap", 0):
        table = pd.DataFrame(columns=columns)
    else:
        ds = result["gaps"].to_dataset()
        table = pd.DataFrame({"gap": ds["gap"].values.astype(str),
                              **{c: ds[c].values.astype(str) for c in columns[1:]}})
        fw = framework_info(result)
        position = {t: i for i, t in enumerate(list(fw["channels"]) + list(fw["constraints"]))}
        order = np.lexsort((table["gap"].to_numpy(), table["target"].map(position).fillna(len(position)).to_numpy()))
        table = table.iloc[order].reset_index(drop=True)
    table.attrs = {"title": "Data gaps: monitoring indicators without public data (tracked, not counted as evidence)",
                   "provenance": provenance(result)}
    return table


def report_tables(
    result: xr.DataTree,
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> dict[str, pd.DataFrame]:
    """Every table of a report, keyed by file stem (see :data:`TABLES`), as numeric DataFrames."""
    check_options(ci_kind, ci_prob, threshold)
    options = dict(ci_kind=ci_kind, ci_prob=ci_prob)
    return {
        "channels": channel_table(result, threshold=threshold, **options),
        "propositions": proposition_table(result, threshold=threshold),
        "stages": stage_table(result, threshold=threshold, **options),
        "dimensions": dimension_table(result, threshold=threshold, **options),
        "constraints": constraint_table(result, **options),
        "constraint-correlations": constraint_correlation_table(result),
        "constraint-effects": constraint_effect_table(result, **options),
        "units": unit_table(result, threshold=threshold, **options),
        "evidence": evidence_table(result),
        "gaps": gap_table(result),
    }

