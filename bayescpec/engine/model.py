"""Model builder: a validated study (or its aggregated evidence) -> a ``pm.Model``. Never samples.

    eta_c        = logit(base_theta_c) - sum_k L_ck * s_k            (channel c)
    theta_c      = sigmoid(eta_c)
    latent       = [eta_1..eta_C, s_1..s_K]                          (one logit per target)
    signal row   P(positive) = r * (f + pi (s_d - f_d)) + (1 - r) / 2,  pi = sigmoid(latent[target])
    count row    k ~ Binomial(n, f + pi (s_d - f_d))
    measure row  z ~ Normal(lambda_tier * latent[target], 1)

The evidence enters through three ``pm.Potential`` terms computed from group sufficient statistics
held in ``pm.Data`` containers, so :func:`set_evidence` swaps in new evidence without rebuilding the
graph. The sensitivity of each tier / test type is parametrised as ``s = f + (1 - f) g`` with
``f ~ Beta`` and ``g ~ Beta``: a positive clue can never count against conversion, and the prior
mean of ``s`` is exactly the prior set's sensitivity mean (f and g are independent).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..inputs.spec import BetaPrior, Diagnosticity
from ..inputs.study import Study
from .aggregate import EvidenceData, evidence_data

__all__ = ["build_model", "set_evidence", "model_coords", "LATENT_VARIABLES"]

#: deterministic and free variables every table reads, by name
LATENT_VARIABLES = ("base_theta", "severity", "loading", "constraint_effect", "theta")


def model_coords(study: Study) -> dict[str, list[str]]:
    fw = study.framework
    return {
        "channel": fw.channel_ids,
        "constraint": fw.constraint_ids,
        "link": [f"{ch}|{con}" for ch, con in fw.links()],
        "tier": fw.tier_ids,
        "test": fw.test_ids,
    }


def _gap_prior(diag: Diagnosticity) -> tuple[float, float]:
    """Beta(a, b) of g in s = f + (1 - f) g so that E[s] equals the stated sensitivity mean."""
    f, s = diag.false_positive.mean, diag.sensitivity.mean
    gap = BetaPrior(mean=(s - f) / (1 - f), concentration=diag.sensitivity.concentration)
    return gap.alpha, gap.beta


def _diagnosticity(name: str, dim: str, table: dict[str, Diagnosticity], order: list[str]):
    f = pm.Beta(f"false_positive_{name}",
                alpha=np.array([table[i].false_positive.alpha for i in order]),
                beta=np.array([table[i].false_positive.beta for i in order]), dims=dim)
    gaps = [_gap_prior(table[i]) for i in order]
    g = pm.Beta(f"sensitivity_gap_{name}", alpha=np.array([a for a, _ in gaps]),
                beta=np.array([b for _, b in gaps]), dims=dim)
    s = pm.Deterministic(f"sensitivity_{name}", f + (1 - f) * g, dims=dim)
    return s, f


def build_model(study: Study, *, evidence: EvidenceData | None = None) -> pm.Model:
    """Build the PyMC model of ``study``. Sampling happens only in :func:`bayescpec.fit`."""
    fw, pr = study.framework, study.priors
    data = evidence if evidence is not None else evidence_data(study)
    coords = model_coords(study)
    links = fw.links()
    channel_pos = {c: i for i, c in enumerate(fw.channel_ids)}
    constraint_pos = {c: i for i, c in enumerate(fw.constraint_ids)}

    with pm.Model(coords=coords) as model:
        base_theta = pm.Beta(
            "base_theta",
            alpha=np.array([pr.channels[c].alpha for c in fw.channel_ids]),
            beta=np.array([pr.channels[c].beta for c in fw.channel_ids]),
            dims="channel",
        )
        if fw.constraint_ids:
            severity = pm.Normal(
                "severity",
                mu=np.array([pr.constraints[k].mean for k in fw.constraint_ids]),
                sigma=np.array([pr.constraints[k].sd for k in fw.constraint_ids]),
                dims="constraint",
            )
        else:
            severity = pt.zeros(0)
        if links:
            loading = pm.HalfNormal("loading", sigma=pr.loadings.sd, dims="link")
            link_channel = np.array([channel_pos[c] for c, _ in links])
            link_constraint = np.array([constraint_pos[k] for _, k in links])
            effect = pt.zeros(len(fw.channel_ids))
            effect = pt.inc_subtensor(effect[link_channel], loading * severity[link_constraint])
        else:
            effect = pt.zeros(len(fw.channel_ids))
        effect = pm.Deterministic("constraint_effect", effect, dims="channel")
        eta = pt.log(base_theta) - pt.log1p(-base_theta) - effect
        pm.Deterministic("theta", pm.math.sigmoid(eta), dims="channel")
        latent = pt.concatenate([eta, severity])

        sens_tier, fpr_tier = _diagnosticity("tier", "tier", pr.diagnosticity.tiers, fw.tier_ids)
        if fw.test_ids:
            sens_test, fpr_test = _diagnosticity("test", "test", pr.diagnosticity.tests, fw.test_ids)
            sens_all = pt.concatenate([sens_tier, sens_test])
            fpr_all = pt.concatenate([fpr_tier, fpr_test])
        else:
            sens_all, fpr_all = sens_tier, fpr_tier

        d = {name: pm.Data(name, np.asarray(values, dtype=float if name.split("_", 1)[1]
                                               not in ("target", "diag") else "int64"))
             for name, values in data.data_arrays().items()}

        def probability(prefix: str):
            pi = pm.math.sigmoid(latent[d[f"{prefix}_target"]])
            explicit = pt.gt(d[f"{prefix}_explicit"], 0.5)
            s = pt.switch(explicit, d[f"{prefix}_sens"], sens_all[d[f"{prefix}_diag"]])
            f = pt.switch(explicit, d[f"{prefix}_fpr"], fpr_all[d[f"{prefix}_diag"]])
            return f + pi * (s - f)

        r = d["signal_reliability"]
        p_signal = r * probability("signal") + (1 - r) / 2
        pm.Potential("signal_evidence", pt.sum(d["signal_positive"] * pt.log(p_signal)
                                               + d["signal_negative"] * pt.log1p(-p_signal)))
        p_count = probability("count")
        pm.Potential("count_evidence", pt.sum(d["count_successes"] * pt.log(p_count)
                                              + d["count_failures"] * pt.log1p(-p_count)))
        mu = d["measure_loading"] * latent[d["measure_target"]]
        pm.Potential("measure_evidence", pt.sum(-0.5 * d["measure_wz2"] + mu * d["measure_wz"]
                                                - 0.5 * mu**2 * d["measure_weight"]
                                                - 0.5 * np.log(2 * np.pi) * d["measure_weight"]))
    return model


def set_evidence(model: pm.Model, evidence: EvidenceData) -> None:
    """Replace the model's evidence with ``evidence`` in place (same framework and prior set)."""
    arrays = {name: np.asarray(values, dtype=model[name].dtype) for name, values in evidence.data_arrays().items()}
    with model:
        pm.set_data(arrays)
