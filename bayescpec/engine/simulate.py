"""Simulating evidence from the model: an evidence log of the same shape as a study's -- the same rows,
targets, stages, units, tiers, kinds, test types, explicit diagnosticities, signal reliabilities and
count sizes -- with new values drawn from the likelihood at given parameters. Used by simulation-based
calibration (each simulated log is fitted and the true parameters ranked in its posterior).

Two tempering choices of the model are switched off in a simulated log, on purpose: the package weight
(1 / rows in the package) and the reliability weight of counts and measures. They make the fit's
likelihood a *power* likelihood -- a deliberate down-weighting of dependent or doubtful evidence that
no data-generating process matches -- so a calibration that kept them would test that choice, not
the model and its sampler. Signals keep their reliability: it is part of their generative model
(a clue is read correctly with probability r, else it is a coin toss).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from ..inputs.study import Study
from .aggregate import aggregate_evidence, observation_rows
from .likelihood import _latent
from .structure import structure_of

__all__ = ["simulate_evidence"]


def simulate_evidence(study: Study, params: dict[str, np.ndarray], rng: np.random.Generator) -> list[pd.DataFrame]:
    """Evidence logs of ``study``'s shape simulated at each draw of ``params`` (arrays with a leading
    draws axis, as :func:`bayescpec.engine.prior.draw_prior` gives): one log per draw."""
    rows = observation_rows(study.evidence).copy()
    structure = structure_of(study)
    rows["package"] = ""
    rows.loc[rows["kind"] != "signal", "reliability"] = 1.0
    r = aggregate_evidence(rows, study.framework, study.priors, units=structure.units).rows
    target, diag = r["target"].to_numpy(int), r["diag"].to_numpy(int)
    explicit = r["explicit"].to_numpy(bool)
    kind = r["kind"].to_numpy(str)
    signal, count, measure = kind == "signal", kind == "count", kind == "measure"
    reliability = r["reliability"].to_numpy(float)[signal]
    n_trials = rows.loc[count, "n"].to_numpy(int)
    if measure.any():
        # to write a simulated z back as a value, invert the standardisation z = sign * (value - baseline) / scale
        indicators = {i.id: i for i in study.framework.indicators}
        names = rows.loc[measure, "indicator"]
        baseline = np.array([indicators[i].baseline for i in names], dtype=float)
        scale = np.array([indicators[i].scale for i in names], dtype=float)
        value = rows.loc[measure, "value"].to_numpy(float)
        sign = np.where(np.isclose(r["z"].to_numpy(float)[measure], (value - baseline) / scale), 1.0, -1.0)
        loading = r["loading"].to_numpy(float)[measure]
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
        if signal.any():
            read = reliability * p[signal] + (1 - reliability) / 2  # read correctly, else a coin toss
            out.loc[signal, "value"] = (rng.random(signal.sum()) < read).astype(float)
        if count.any():
            out.loc[count, "k"] = rng.binomial(n_trials, p[count]).astype(float)
        if measure.any():
            z = rng.normal(loading * latent[target[measure]], 1.0)
            out.loc[measure, "value"] = baseline + sign * scale * z
        out_logs.append(out.reset_index(drop=True))
    return out_logs
