"""Assembling a fit's DataTree: the ledgers of evidence and data gaps, the derived quantities of the
posterior, the forward-simulated prior group, the per-row log-likelihood, and the framework as attrs.
Pure functions of the study, the structure and the sampled draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..inputs.study import Study
from .aggregate import EvidenceData, observation_rows
from .counterfactual import counterfactual_variables
from .counts import COUNT_DIMS, COUNT_VARIABLES
from .likelihood import pointwise_log_likelihood
from .prior import draw_prior
from .quantities import DERIVED_DIMS, FREE_DIMS, derive
from .structure import GraphCache, Structure, structure_of

__all__ = ["evidence_ledger", "gap_ledger", "add_quantities", "prior_group", "posterior_draws",
           "log_likelihood_group", "framework_attrs", "LIKELIHOOD_VARIABLES"]

#: the variables the per-row log-likelihood needs (count rows: their indicators' rates and overdispersion)
LIKELIHOOD_VARIABLES = ("reach", "unit_reach", "severity", "route_probability", "route_reach", "sensitivity_tier",
                        "false_positive_tier", "sensitivity_test", "false_positive_test", *COUNT_VARIABLES)


def posterior_draws(result: xr.DataTree, names, group: str = "posterior") -> dict[str, np.ndarray]:
    """Flatten (chain, draw) of each named variable present in ``group`` into one leading axis."""
    ds = result[group].to_dataset()
    out = {}
    for name in names:
        if name in ds:
            arr = ds[name].transpose("chain", "draw", ...)
            out[name] = arr.to_numpy().reshape((arr.sizes["chain"] * arr.sizes["draw"],) + arr.shape[2:])
    return out


def log_likelihood_group(result: xr.DataTree, data: EvidenceData) -> xr.Dataset:
    """Every evidence row's log-likelihood at every posterior draw, *unweighted* (what ArviZ's LOO
    expects: ``rows``), with each row's tempering weight beside it (``weight``: 1/package size, times
    the reliability for counts and measures); the fit used ``weight * rows``."""
    post = result["posterior"]
    values = pointwise_log_likelihood(data.rows, posterior_draws(result, LIKELIHOOD_VARIABLES), weighted=False)
    shape = (post.sizes["chain"], post.sizes["draw"], data.n_rows)
    return xr.Dataset(
        {"rows": (("chain", "draw", "evidence"), values.reshape(shape)),
         "weight": ("evidence", data.rows["weight"].to_numpy(float))},
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                "evidence": data.rows["id"].to_numpy(str)},
    )


def evidence_ledger(study: Study, data: EvidenceData) -> xr.Dataset:
    """The ``evidence`` group of a result: one entry per observation used, with its weight."""
    ev = observation_rows(study.evidence)
    columns = {
        "observed": ev["observed"].astype(str), "target": ev["target"], "stage": ev["stage"],
        "unit": ev["unit"], "indicator": ev["indicator"],
        "tier": ev["tier"], "kind": ev["kind"], "value": ev["value"].astype(float),
        "k": ev["k"].astype(float), "n": ev["n"].astype(float), "test": ev["test"],
        "reliability": ev["reliability"].astype(float), "package": ev["package"], "source": ev["source"],
        "note": ev["note"], "weight": pd.Series(data.rows["weight"].to_numpy(), index=ev.index),
    }
    return xr.Dataset(
        {name: ("evidence", np.asarray(col.to_numpy(), dtype=float if col.dtype.kind == "f" else str))
         for name, col in columns.items()},
        coords={"evidence": np.asarray(ev["id"].to_numpy(), dtype=str)},
    )


def gap_ledger(study: Study) -> xr.Dataset:
    """The ``gaps`` group: the recorded data gaps (no public data for an indicator), tracked and
    reported but not evidence."""
    ev = study.evidence
    gaps = ev[ev["kind"] == "gap"] if len(ev) else ev
    names = ("observed", "target", "stage", "unit", "indicator", "tier", "source", "note")
    return xr.Dataset(
        {name: ("gap", np.asarray(gaps[name].astype(str).to_numpy(), dtype=str)) for name in names},
        coords={"gap": np.asarray(gaps["id"].to_numpy(), dtype=str)},
    )


def add_quantities(dataset: xr.Dataset, structure: Structure, framework=None) -> xr.Dataset:
    """``dataset`` (a posterior with chain and draw dims) plus every derived quantity, and, given the
    framework, the counterfactual quantities its propositions read (:mod:`.counterfactual`)."""
    chains, draws = dataset.sizes["chain"], dataset.sizes["draw"]
    params = {name: dataset[name].values.reshape((chains * draws,) + dataset[name].shape[2:])
              for name in FREE_DIMS if name in dataset}
    out = dataset.assign(_as_dataset(derive(structure, params), structure, chains, draws, DERIVED_DIMS))
    if framework is not None:
        out = out.assign(counterfactual_variables(structure, framework, params, chains, draws))
    return out


def _as_dataset(arrays: dict, structure: Structure, chains: int, draws: int, dims: dict) -> dict:
    coords = structure.coords()
    out = {}
    for name, values in arrays.items():
        names = dims.get(name)
        if names is None:
            continue
        values = np.asarray(values).reshape((chains, draws) + np.asarray(values).shape[1:])
        out[name] = xr.DataArray(values, dims=("chain", "draw", *names),
                                 coords={"chain": np.arange(chains), "draw": np.arange(draws),
                                         **{d: coords[d] for d in names}})
    return out


#: prior groups already simulated: they depend on the framework, prior set and units, the draws and the seed
#: only, so a refit after new evidence (a study made by ``with_evidence``) reuses its base's
_PRIORS = GraphCache(4)


def prior_group(structure: Structure, study: Study, draws: int, seed: int) -> xr.Dataset:
    """``draws`` forward-simulated prior draws (one chain) of every parameter and quantity (made once per
    framework, prior set, units, draws and seed in a process; a shallow copy of that is returned)."""
    if structure is not structure_of(study):  # a structure of its own: not what the cache is keyed by
        return _simulate_prior(structure, study, draws, seed)
    found = _PRIORS.get(study, (draws, seed))
    if found is None:
        found = _simulate_prior(structure, study, draws, seed)
        _PRIORS.put(study, found, (draws, seed))
    return found.copy(deep=False)


def _simulate_prior(structure: Structure, study: Study, draws: int, seed: int) -> xr.Dataset:
    arrays = draw_prior(structure, study.priors, draws, seed)
    dims = {**FREE_DIMS, **DERIVED_DIMS, **COUNT_DIMS,
            **{f"{kind}_{name}": (name,) for name in ("tier", "test")
               for kind in ("sensitivity", "false_positive", "sensitivity_gap")}}
    params = {name: arrays[name] for name in FREE_DIMS if name in arrays}
    return xr.Dataset({**_as_dataset(arrays, structure, 1, draws, dims),
                       **counterfactual_variables(structure, study.framework, params, 1, draws)})


def framework_attrs(study: Study) -> dict:
    fw = study.framework
    structure = structure_of(study)
    return {
        "channels": {c.id: c.label for c in fw.channels},
        "constraints": {c.id: c.label for c in fw.constraints},
        "stages": {s.id: s.label for s in fw.stages} or {fw.stage_ids[0]: "Conversion (a one-stage chain)"},
        "chains": {c: fw.chain(c) for c in fw.channel_ids},
        "links": fw.link_pairs(),
        "link_stages": {f"{c}|{k}": st for c, k, st in fw.link_stages()},
        "link_basis": {f"{link.channel}|{link.constraint}": link.basis or "" for link in fw.links},
        "loops": {loop.id: {"label": loop.label, "constraints": loop.constraints} for loop in fw.loops},
        "dimensions": {d.id: {"label": d.label, "measures": d.measures, "weight": d.weight} for d in fw.dimensions},
        "units": structure.unit_names,
        "materiality": fw.framework.materiality,
        "tiers": fw.tier_ids,
        "tier_targets": {t.id: t.targets for t in fw.tiers},
        "propositions": [{"id": p.id, "statement": p.statement, "query": p.headline, "reading": p.reading or "",
                          "parts": [{"id": part.id, "label": part.label, "query": part.query} for part in p.parts]}
                         for p in fw.propositions],
        "levels": {level.id: {"severity": level.severity, "meaning": level.meaning} for level in fw.levels},
        "routes": {r.id: {"label": r.label, "after": r.after, "reaches": r.reaches} for r in fw.routes},
        "indicators": {i.id: {"label": i.label, "target": i.target, "stage": i.stage or "", "tiers": i.tiers}
                       for i in fw.indicators},
        "name": fw.framework.name,
    }


