"""Fitting: sample the prior and the posterior of a built model and assemble one DataTree.

The returned ``xarray.DataTree`` has the groups ``posterior``, ``prior``, ``sample_stats``,
``log_likelihood`` (variable ``rows``, dims chain, draw, evidence) and ``evidence`` (the ledger
of rows used), and root attrs recording the package version, prior set, input files and their
SHA-256, as-of date, seed, sampler settings, the framework and the convergence checks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from .. import __version__
from ..errors import ConvergenceError
from ..inputs.study import Study
from .aggregate import EvidenceData, evidence_data, observation_rows
from .likelihood import pointwise_log_likelihood
from .model import build_model, set_evidence
from .prior import draw_prior
from .quantities import DERIVED_DIMS, FREE_DIMS, derive
from .structure import Structure, structure_of

__all__ = ["fit", "evidence_ledger", "ConvergenceWarning", "check_convergence", "CONVERGENCE_RULES",
           "DEFAULT_SEED", "posterior_draws"]

DEFAULT_SEED = 20260527
#: the checks every reported quantity must pass
CONVERGENCE_RULES = {"max_rhat": 1.01, "min_ess_bulk": 400, "max_divergences": 0}
REPORTED = ("theta", "base_theta", "reach", "severity", "constraint_effect")
#: keep per-row log-likelihood in the result up to this many rows (draws x rows doubles)
POINTWISE_ROW_LIMIT = 20_000
#: target acceptance of the one automatic re-run after divergent transitions
RETRY_TARGET_ACCEPT = 0.97


class ConvergenceWarning(UserWarning):
    """The sampler's output failed a convergence check; the result says which."""


def posterior_draws(result: xr.DataTree, names, group: str = "posterior") -> dict[str, np.ndarray]:
    """Flatten (chain, draw) of each named variable present in ``group`` into one leading axis."""
    ds = result[group].to_dataset()
    out = {}
    for name in names:
        if name in ds:
            arr = ds[name].transpose("chain", "draw", ...)
            out[name] = arr.to_numpy().reshape((arr.sizes["chain"] * arr.sizes["draw"],) + arr.shape[2:])
    return out


LIKELIHOOD_VARIABLES = ("reach", "unit_reach", "severity", "sensitivity_tier", "false_positive_tier",
                        "sensitivity_test", "false_positive_test")


def check_convergence(result: xr.DataTree) -> dict:
    """R-hat, bulk ESS of every reported quantity and the number of divergences."""
    posterior = result["posterior"].to_dataset()
    # constant quantities (e.g. no constraint binds a channel) have no R-hat; leave them out
    names = [n for n in REPORTED if n in posterior and posterior[n].size and float(posterior[n].std()) > 0]
    rhat = az.rhat(posterior[names])
    ess = az.ess(posterior[names], method="bulk")
    max_rhat = float(max(float(rhat[n].max()) for n in names))
    min_ess = float(min(float(ess[n].min()) for n in names))
    diverging = result["sample_stats"].to_dataset().get("diverging")
    divergences = int(diverging.sum()) if diverging is not None else 0
    failures = []
    if posterior.sizes.get("chain", 1) < 2:
        failures.append("R-hat needs at least 2 chains; this fit has 1")
    elif not max_rhat <= CONVERGENCE_RULES["max_rhat"]:
        failures.append(f"max R-hat {max_rhat:.3f} > {CONVERGENCE_RULES['max_rhat']}")
    if not min_ess >= CONVERGENCE_RULES["min_ess_bulk"]:
        failures.append(f"min bulk ESS {min_ess:.0f} < {CONVERGENCE_RULES['min_ess_bulk']}")
    if divergences > CONVERGENCE_RULES["max_divergences"]:
        failures.append(f"{divergences} divergent transitions")
    return {"max_rhat": max_rhat, "min_ess_bulk": min_ess, "divergences": divergences,
            "converged": not failures, "convergence_failures": "; ".join(failures)}


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


def add_quantities(dataset: xr.Dataset, structure: Structure) -> xr.Dataset:
    """``dataset`` (a posterior with chain and draw dims) plus every derived quantity."""
    chains, draws = dataset.sizes["chain"], dataset.sizes["draw"]
    params = {name: dataset[name].values.reshape((chains * draws,) + dataset[name].shape[2:])
              for name in FREE_DIMS if name in dataset}
    return dataset.assign(_as_dataset(derive(structure, params), structure, chains, draws, DERIVED_DIMS))


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


def prior_group(structure: Structure, study: Study, draws: int, seed: int) -> xr.Dataset:
    """``draws`` forward-simulated prior draws (one chain) of every parameter and quantity."""
    arrays = draw_prior(structure, study.priors, draws, seed)
    dims = {**FREE_DIMS, **DERIVED_DIMS, **{f"{kind}_{name}": (name,) for name in ("tier", "test")
                                             for kind in ("sensitivity", "false_positive", "sensitivity_gap")}}
    return xr.Dataset(_as_dataset(arrays, structure, 1, draws, dims))


def _framework_attrs(study: Study) -> dict:
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
        "propositions": [{"id": p.id, "statement": p.statement, "query": p.query, "reading": p.reading or ""}
                         for p in fw.propositions],
        "indicators": {i.id: {"label": i.label, "target": i.target, "stage": i.stage or "", "tiers": i.tiers}
                       for i in fw.indicators},
        "name": fw.framework.name,
    }


def fit(
    study: Study,
    *,
    model: pm.Model | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = DEFAULT_SEED,
    sampler: str = "pymc",
    target_accept: float = 0.9,
    pointwise: bool | None = None,
    progressbar: bool = False,
    strict: bool = False,
    retry_divergent: bool = True,
) -> xr.DataTree:
    """Sample prior and posterior of ``study`` and return an ArviZ ``DataTree``.

    ``model`` may be a model built earlier by :func:`bayescpec.build_model` (for this study's
    framework and prior set); its evidence data are replaced with ``study``'s, so a refit with new
    evidence does not rebuild the graph. ``pointwise`` keeps the per-row log-likelihood (default:
    when there are at most 20 000 rows). A failed convergence check emits a
    :class:`ConvergenceWarning` and is recorded in the attrs; with ``strict=True`` it raises.
    If the posterior has divergent transitions and ``retry_divergent`` is true, it is sampled once
    more with ``target_accept=0.97`` (same seed); the attrs say so (``divergence_retry``).
    """
    data = evidence_data(study)
    structure = structure_of(study)
    if model is None:
        model = build_model(study, evidence=data)
    else:
        set_evidence(model, data)
    started = time.perf_counter()
    logging.getLogger("pymc").setLevel(logging.ERROR)

    def sample_posterior(accept: float) -> xr.DataTree:
        kwargs = dict(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progressbar,
                      model=model, nuts_sampler=sampler, compute_convergence_checks=False)
        if sampler == "pymc":
            kwargs.update(cores=min(chains, 2), target_accept=accept)
        else:
            kwargs.update(nuts_sampler_kwargs={"target_accept": accept})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return pm.sample(**kwargs)

    result = sample_posterior(target_accept)
    retried_from = None
    diverging = result["sample_stats"].to_dataset().get("diverging")
    if retry_divergent and diverging is not None and int(diverging.sum()) and target_accept < RETRY_TARGET_ACCEPT:
        # divergences mean the step size was too large for some region of the posterior (here: a
        # diagnosticity near 0 or 1 under strong evidence); a smaller step usually removes them
        retried_from = (target_accept, int(diverging.sum()))
        target_accept = RETRY_TARGET_ACCEPT
        result = sample_posterior(target_accept)
    result["posterior"] = add_quantities(result["posterior"].to_dataset(), structure)
    result["prior"] = prior_group(structure, study, draws * chains, seed + 1)
    sampling_seconds = time.perf_counter() - started
    if pointwise is None:
        pointwise = data.n_rows <= POINTWISE_ROW_LIMIT
    if pointwise and data.n_rows:
        draws_flat = posterior_draws(result, LIKELIHOOD_VARIABLES)
        values = pointwise_log_likelihood(data.rows, draws_flat)
        shape = (result["posterior"].sizes["chain"], result["posterior"].sizes["draw"], data.n_rows)
        result["log_likelihood"] = xr.Dataset(
            {"rows": (("chain", "draw", "evidence"), values.reshape(shape))},
            coords={"chain": result["posterior"]["chain"].values, "draw": result["posterior"]["draw"].values,
                    "evidence": data.rows["id"].to_numpy(str)},
        )
    result["evidence"] = evidence_ledger(study, data)
    result["gaps"] = gap_ledger(study)
    for group in ("observed_data", "constant_data"):
        if group in result.children:
            del result[group]
    checks = check_convergence(result)
    result.attrs.update({
        "bayescpec_version": __version__,
        "prior_set": study.prior_set,
        "input_files": json.dumps(study.files),
        "input_sha256": json.dumps(study.hashes),
        "as_of": study.as_of.isoformat(),
        "evidence_rows": data.n_rows,
        "excluded_after_as_of": study.excluded_after_as_of,
        "seed": seed,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "sampler": sampler,
        "target_accept": target_accept,
        "divergence_retry": (f"{retried_from[1]} divergences at target_accept {retried_from[0]}; "
                             f"re-sampled at {target_accept}") if retried_from else "",
        "sampling_seconds": round(sampling_seconds, 3),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "framework": json.dumps(_framework_attrs(study)),
        "package_tempering": "each row weighs 1/(rows in its package)",
        **checks,
    })
    if not checks["converged"]:
        message = f"convergence check failed: {checks['convergence_failures']}"
        if strict:
            raise ConvergenceError(message)
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    return result
