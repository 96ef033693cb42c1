"""Simulating evidence from the model: an evidence log of the same shape as a study's -- the same rows,
targets, stages, units, tiers, kinds, test types, explicit diagnosticities, reliabilities, count sizes
and packages -- with new values drawn from what the fit assumes at given parameters. Used by
simulation-based calibration (each simulated log is fitted and the true parameters ranked in its
posterior), so the simulated log must be one whose likelihood *is* the fit's.

What a tempered likelihood corresponds to, and so how each tempering is simulated:

* **A package of rows that repeat one fact** (every row the same target, kind, indicator,
  diagnosticity, reliability and count size): the fit weighs each of its m rows 1/m, and
  prod_i p(y | params)^(1/m) = p(y | params) -- exactly the likelihood of *one* observation recorded m
  times. So one value is simulated per such package and written into each of its rows.
* **A measure's reliability r** (and its package weight): N(z; mu, 1)^w is, up to a factor free of
  the parameters, the N(z; mu, 1/sqrt(w)) density -- a noisier measurement. So a measure is simulated
  with standard deviation 1/sqrt(r) (one fact per package, as above).
* **A signal's reliability** is generative already: read correctly with probability r, else a coin toss.

Left out, because no data-generating process has the fit's likelihood (a calibration that kept them
would test the choice of tempering, not the model and its sampler):

* **packages whose rows differ** (a fact read as a clue about several channels or constraints, a mixed
  verdict with a positive and a negative half): the geometric mean of different rows' likelihoods
  is not the likelihood of any observation. Their rows are simulated and fitted as separate rows
  (no package, weight 1; the ``package`` column is emptied in the simulated log);
* **a count's reliability**: a beta-binomial raised to a power r < 1 is not a distribution of k;
  counts are simulated and fitted at reliability 1.

Counts are simulated as the fit assumes (:mod:`bayescpec.engine.counts`): the row's own rate
r ~ Beta(p phi, (1 - p) phi) with its indicator's rates and intra-class correlation, then
k ~ Binomial(n, r). :func:`simulation_plan` says, per row, what is kept and what is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from ..inputs.study import Study
from .aggregate import aggregate_evidence, observation_rows
from .counts import count_probability
from .likelihood import _latent
from .structure import structure_of

__all__ = ["simulate_evidence", "simulation_plan"]

#: the model columns that make two rows the same observation of one fact
_SAME_FACT = ("kind", "target", "diag", "explicit", "sens", "fpr", "reliability", "count_indicator", "n",
              "loading", "indicator")


def simulation_plan(study: Study) -> pd.DataFrame:
    """The observation rows of ``study`` as they are simulated: ``package`` kept only for packages
    whose rows repeat one fact (``fact``: the index of the row whose simulated value each row
    repeats), emptied for packages whose rows differ (``package_left_out``: True), and a count's
    reliability set to 1 (``reliability_left_out``: True where it was below 1)."""
    rows = observation_rows(study.evidence).copy().reset_index(drop=True)
    model = aggregate_evidence(rows, study.framework, study.priors, units=structure_of(study).units).rows
    model = model.assign(indicator=rows["indicator"].astype(str).to_numpy(),
                         reliability=np.where(model["kind"] == "count", 1.0, model["reliability"]))
    package = rows["package"].astype(str)
    fact = np.arange(len(rows))
    left_out = np.zeros(len(rows), dtype=bool)
    for name, members in package[package != ""].groupby(package[package != ""]).groups.items():
        members = np.asarray(members)
        signature = model.loc[members, list(_SAME_FACT)]
        if len(signature.drop_duplicates()) == 1:
            fact[members] = members[0]
        else:
            left_out[members] = True
    rows.loc[left_out, "package"] = ""
    is_count = (rows["kind"] == "count").to_numpy()
    reliability_left_out = is_count & (rows["reliability"].to_numpy(float) < 1.0)
    rows.loc[is_count, "reliability"] = 1.0
    return rows.assign(fact=fact, package_left_out=left_out, reliability_left_out=reliability_left_out)


def simulate_evidence(study: Study, params: dict[str, np.ndarray], rng: np.random.Generator, *,
                      plan: pd.DataFrame | None = None) -> list[pd.DataFrame]:
    """Evidence logs of ``study``'s shape simulated at each draw of ``params`` (arrays with a leading
    draws axis, as :func:`bayescpec.engine.prior.draw_prior` gives): one log per draw. ``plan``: the
    study's :func:`simulation_plan`, when the caller has it (a calibration makes it once, not per fit)."""
    plan = simulation_plan(study) if plan is None else plan.copy()
    fact = plan.pop("fact").to_numpy()
    rows = plan.drop(columns=["package_left_out", "reliability_left_out"])
    structure = structure_of(study)
    r = aggregate_evidence(rows, study.framework, study.priors, units=structure.units).rows
    target, diag = r["target"].to_numpy(int), r["diag"].to_numpy(int)
    explicit = r["explicit"].to_numpy(bool)
    kind = r["kind"].to_numpy(str)
    signal, count, measure = kind == "signal", kind == "count", kind == "measure"
    reliability = r["reliability"].to_numpy(float)
    n_trials = rows.loc[count, "n"].to_numpy(int)
    count_index = r["count_indicator"].to_numpy(int)[count]
    if measure.any():
        # to write a simulated z back as a value, invert the standardisation z = sign * (value - baseline) / scale
        indicators = {i.id: i for i in study.framework.indicators}
        names = rows.loc[measure, "indicator"]
        baseline = np.array([indicators[i].baseline for i in names], dtype=float)
        scale = np.array([indicators[i].scale for i in names], dtype=float)
        value = rows.loc[measure, "value"].to_numpy(float)
        sign = np.where(np.isclose(r["z"].to_numpy(float)[measure], (value - baseline) / scale), 1.0, -1.0)
        loading = r["loading"].to_numpy(float)[measure]
        noise_sd = 1.0 / np.sqrt(reliability[measure])  # a tempered normal is a noisier normal
    latent_all = _latent(params)
    out_logs = []
    for i in range(latent_all.shape[0]):
        latent = latent_all[i]
        sens = np.concatenate([params["sensitivity_tier"][i]] + ([params["sensitivity_test"][i]]
                                                                 if "sensitivity_test" in params else []))
        fpr = np.concatenate([params["false_positive_tier"][i]] + ([params["false_positive_test"][i]]
                                                                  if "false_positive_test" in params else []))
        s = np.where(explicit, r["sens"].to_numpy(float), sens[diag])
        f = np.where(explicit, r["fpr"].to_numpy(float), fpr[diag])
        p = f + expit(latent[target]) * (s - f)
        out = rows.copy()
        values = out["value"].to_numpy(float).copy()
        ks = out["k"].to_numpy(float).copy()
        if signal.any():
            read = reliability[signal] * p[signal] + (1 - reliability[signal]) / 2  # read correctly, else a coin toss
            values[signal] = (rng.random(signal.sum()) < read).astype(float)
        if count.any():
            p_count = count_probability(expit(latent[target[count]]), params["rate_converting"][i][count_index],
                                        params["rate_not_converting"][i][count_index])
            phi = 1.0 / params["count_icc"][i][count_index] - 1.0
            own_rate = rng.beta(p_count * phi, (1.0 - p_count) * phi)   # the row's own rate, then its units
            ks[count] = rng.binomial(n_trials, own_rate).astype(float)
        if measure.any():
            z = rng.normal(loading * latent[target[measure]], noise_sd)
            values[measure] = baseline + sign * scale * z
        # a package whose rows repeat one fact: every row carries the value simulated for its first row
        out["value"], out["k"] = values[fact], ks[fact]
        out_logs.append(out.reset_index(drop=True))
    return out_logs
