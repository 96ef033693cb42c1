"""Model builder: a validated study (or its aggregated evidence) -> a ``pm.Model``. Never samples.

The conversion chain (see :mod:`bayescpec.engine.structure`): channel c passes stage j with probability
q_cj, reaches it with probability pi_cj = prod_{i <= j} q_ci, and theta_c = pi_cJ. Constraints act on
the stage the framework ties them to:

    logit q_cj = eta_cj,      eta_cj = logit(q0_cj) - sum_k L_cjk s_k

with q0 the constraint-free stage probability (Beta prior from the prior set, split over the stages
so that prod_j q0_cj has exactly the prior set's Beta prior of theta), loadings L (signed Normal, or
half-normal in older prior sets) and severities s_k (0 = typical; correlated through the feedback
loops' shared factors). Evidence rows observe pi at a stage (a unit's pi when they name a unit) or a
severity:

    signal row   P(positive) = r * (f + pi (s_d - f_d)) + (1 - r) / 2
    count row    k ~ BetaBinomial(n, p phi_i, (1 - p) phi_i),  p = f_i + pi (s_i - f_i)
                 (the indicator's own rates and intra-class correlation, engine.counts)
    measure row  z ~ Normal(lambda_tier * logit(pi), 1)    (or lambda * s_k for a constraint)

**Identified parametrisation.** The evidence pins eta, while its split into logit(q0) and the
constraint pull is weakly identified. So the model samples eta directly (``stage_logit``, a Flat
variable) and adds the prior of q0 = sigmoid(eta + sum L s) as a density term: the map
(eta, L, s) -> (logit q0, L, s) is a shear with unit Jacobian, so the posterior is exactly that of
the centred model (``parametrisation="centred"`` samples q0; the tests compare the two log-densities).

The evidence enters through three ``pm.Potential`` terms held in ``pm.Data`` containers -- group
sufficient statistics for signals and measures, one term per distinct count row -- so
:func:`set_evidence` swaps in new evidence without rebuilding the graph. A tier's (or test type's)
sensitivity is ``s = f + (1 - f) g`` with ``f, g ~ Beta``: a positive clue can never count against
conversion, and E[s] is the prior set's sensitivity mean.
"""

from __future__ import annotations

import weakref

import importlib

import numpy as np

from ..inputs.spec import BetaPrior, Diagnosticity
from ..inputs.study import Study
from .aggregate import EvidenceData, evidence_data
from .structure import Structure, structure_of

__all__ = ["build_model", "set_evidence", "set_priors", "prior_data", "model_origin", "model_coords",
           "PARAMETRISATIONS"]

class _Lazy:
    """A module imported when first used: a fit whose compiled model is in the disk cache needs no PyMC or
    PyTensor (about 0.25 s of a fresh process's imports)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


pm = _Lazy("pymc")
pt = _Lazy("pytensor.tensor")

PARAMETRISATIONS = ("identified", "centred")


def model_coords(study: Study) -> dict[str, list[str]]:
    return structure_of(study).coords()


def prior_data(structure: Structure, priors) -> dict[str, np.ndarray]:
    """The prior set's hyper-parameters as the model's data arrays (``prior_*``): a compiled model of a
    framework serves every prior set of the same shape (signed or half-normal loadings)."""
    s, table = structure, priors.diagnosticity
    out = {
        "prior_cell_alpha": s.cell_alpha, "prior_cell_beta": s.cell_beta,
        "prior_severity_mean": s.severity_mean, "prior_severity_sd": s.severity_sd,
        "prior_loading": np.array([s.loading_mean, s.loading_sd]),
        "prior_loop": np.array([s.loop_alpha, s.loop_beta]), "prior_unit_sd": np.array([s.unit_sd]),
        "prior_route": np.array([s.route_alpha, s.route_beta]),
    }
    for name, order, group in (("tier", s.tiers, table.tiers), ("test", s.tests, table.tests)):
        if not order:
            continue
        gaps = [_gap_prior(group[i]) for i in order]
        out[f"prior_fpr_{name}"] = np.array([[group[i].false_positive.alpha for i in order],
                                             [group[i].false_positive.beta for i in order]])
        out[f"prior_gap_{name}"] = np.array([[a for a, _ in gaps], [b for _, b in gaps]])
    if s.counts.indicators:  # the count indicators' rate and overdispersion priors (engine.counts)
        out["prior_count_fpr"], out["prior_count_gap"] = s.counts.fpr_prior, s.counts.gap_prior
        out["prior_count_icc"] = s.counts.icc_prior
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _gap_prior(diag: Diagnosticity) -> tuple[float, float]:
    """Beta(a, b) of g in s = f + (1 - f) g so that E[s] equals the stated sensitivity mean."""
    f, s = diag.false_positive.mean, diag.sensitivity.mean
    gap = BetaPrior(mean=(s - f) / (1 - f), concentration=diag.sensitivity.concentration)
    return gap.alpha, gap.beta


def _diagnosticity(name: str, dim: str, p: dict):
    fpr, gap = p[f"prior_fpr_{name}"], p[f"prior_gap_{name}"]
    f = pm.Beta(f"false_positive_{name}", alpha=fpr[0], beta=fpr[1], dims=dim)
    g = pm.Beta(f"sensitivity_gap_{name}", alpha=gap[0], beta=gap[1], dims=dim)
    s = pm.Deterministic(f"sensitivity_{name}", f + (1 - f) * g, dims=dim)
    return s, f


def _severity(s: Structure, p: dict):
    z = pm.Normal("severity_z", 0.0, 1.0, dims="constraint")
    mean, sd = p["prior_severity_mean"], p["prior_severity_sd"]
    if not s.loop_members:
        return mean + sd * z
    factor = pm.Normal("loop_factor", 0.0, 1.0, dims="loop")
    rho = pm.Beta("loop_loading", alpha=p["prior_loop"][0], beta=p["prior_loop"][1], dims="loop_member") * s.member_scale
    shared = pt.zeros(len(s.constraints))
    shared = pt.inc_subtensor(shared[s.member_constraint], rho * factor[s.member_loop])
    rho2 = pt.inc_subtensor(pt.zeros(len(s.constraints))[s.member_constraint], rho**2)
    return mean + sd * (shared + pt.sqrt(1.0 - rho2) * z)


def _count_evidence(s: Structure, p: dict, d: dict, latent):
    """Each distinct count row's weighted beta-binomial log-probability, summed (engine.counts): the
    indicator's rates f_i, s_i = f_i + (1 - f_i) g_i and intra-class correlation rho_i, phi = 1/rho - 1."""
    if not s.counts.indicators:
        return pt.zeros(())
    fpr, gap, icc = p["prior_count_fpr"], p["prior_count_gap"], p["prior_count_icc"]
    f = pm.Beta("rate_not_converting", alpha=fpr[0], beta=fpr[1], dims="count_indicator")
    g = pm.Beta("rate_gap", alpha=gap[0], beta=gap[1], dims="count_indicator")
    s_rate = pm.Deterministic("rate_converting", f + (1 - f) * g, dims="count_indicator")
    rho = pm.Beta("count_icc", alpha=icc[0], beta=icc[1], dims="count_indicator")
    i = d["count_indicator_index"]
    prob = f[i] + pm.math.sigmoid(latent[d["count_target"]]) * (s_rate[i] - f[i])
    phi = 1.0 / rho[i] - 1.0
    a, b = prob * phi, (1.0 - prob) * phi
    k, n = d["count_k"], d["count_n"]
    log_pmf = (d["count_log_choose"] + pt.gammaln(k + a) + pt.gammaln(n - k + b) - pt.gammaln(n + phi)
               - pt.gammaln(a) - pt.gammaln(b) + pt.gammaln(phi))
    return pt.sum(d["count_weight"] * log_pmf)


def _log_sigmoid(x):
    return -pt.softplus(-x)


def _routed_log_reach(s: Structure, log_q, log_eps, applies: np.ndarray):
    """log reach (X, J) of chains with log pass probabilities ``log_q`` (X, J) and log route probabilities
    ``log_eps`` (X,) where ``applies`` (X,): the increment at the route's end stage b becomes
    log(E + (1 - E) eps) - sum of the bypassed stages' log q, so the cumulative sum keeps the embedded
    reach of the stages between and gives reach_b = reach_a (E + (1 - E) eps) (see engine.quantities)."""
    if not s.has_route or not applies.any():
        return pt.cumsum(log_q, axis=1)
    a, b = s.route_after, s.route_reaches
    rows = np.flatnonzero(applies)
    log_embedded = pt.sum(log_q[rows, a + 1:b + 1], axis=1)
    log_eps_rows = log_eps[rows]
    log_factor = pt.logaddexp(log_embedded, log_eps_rows + pt.log1mexp(pt.minimum(log_embedded, -1e-12)))
    increment = log_factor - pt.sum(log_q[rows, a + 1:b], axis=1)
    return pt.cumsum(pt.set_subtensor(log_q[rows, b], increment), axis=1)


def _logit_from_log(log_p):
    """logit(p) from log(p); p = 1 exactly (a stage before a channel's chain starts) is capped just
    below 1 so that no infinite gradient reaches cells no evidence observes."""
    log_p = pt.minimum(log_p, -1e-12)
    return log_p - pt.log1mexp(log_p)


def build_model(study: Study, *, evidence: EvidenceData | None = None,
                parametrisation: str = "identified") -> pm.Model:
    """Build the PyMC model of ``study``. Sampling happens only in :func:`bayescpec.fit`."""
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(f"parametrisation must be one of {PARAMETRISATIONS}; found {parametrisation!r}")
    s = structure_of(study)
    data = evidence if evidence is not None else evidence_data(study)
    n_cells, n_channels, n_stages = len(s.cells), len(s.channels), len(s.stages)

    with pm.Model(coords=s.coords()) as model:
        p = {name: pm.Data(name, values) for name, values in prior_data(s, study.priors).items()}
        severity = _severity(s, p) if s.constraints else pt.zeros(0)
        effect = pt.zeros(n_cells)
        if s.links:
            if s.loading_signed and s.loading_shared > 0:
                # L = mean + sd (sqrt(shared) c + sqrt(1 - shared) z): each keeps Normal(mean, sd)
                common = pm.Normal("loading_common", 0.0, 1.0)
                loading = pm.Normal("loading", mu=p["prior_loading"][0] + p["prior_loading"][1]
                                    * np.sqrt(s.loading_shared) * common,
                                    sigma=p["prior_loading"][1] * np.sqrt(1.0 - s.loading_shared), dims="link")
            elif s.loading_signed:
                loading = pm.Normal("loading", mu=p["prior_loading"][0], sigma=p["prior_loading"][1], dims="link")
            else:
                loading = pm.HalfNormal("loading", sigma=p["prior_loading"][1], dims="link")
            effect = pt.inc_subtensor(effect[s.link_cell], loading * severity[s.link_constraint])
        a, b = p["prior_cell_alpha"], p["prior_cell_beta"]
        if parametrisation == "identified":
            eta = pm.Flat("stage_logit", dims="chain_stage")
            base = eta + effect
            log_beta_fn = pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)
            pm.Potential("stage_prior", pt.sum(a * _log_sigmoid(base) + b * _log_sigmoid(-base) - log_beta_fn))
        else:
            q0 = pm.Beta("base_stage_probability", alpha=a, beta=b, dims="chain_stage")
            eta = pt.log(q0) - pt.log1p(-q0) - effect

        # log reach on the (channel x stage) grid: stages outside a chain are passed with probability 1
        log_eps = pt.zeros(n_channels)
        if s.has_route:
            route = pm.Beta("route_probability", alpha=p["prior_route"][0], beta=p["prior_route"][1], dims="channel")
            log_eps = pt.log(route)
        flat = s.cell_channel * n_stages + s.cell_stage
        log_q = pt.set_subtensor(pt.zeros(n_channels * n_stages)[flat], _log_sigmoid(eta))
        log_reach = _routed_log_reach(s, log_q.reshape((n_channels, n_stages)), log_eps,
                                      s.route_channel).reshape((-1,))
        parts = [_logit_from_log(log_reach)]
        if s.units:
            unit_sd = pm.HalfNormal("unit_sd", sigma=p["prior_unit_sd"][0], dims="channel")
            unit_z = pm.Normal("unit_z", 0.0, 1.0, dims="unit")
            offset = unit_sd[s.unit_channel] * unit_z
            unit_log_q = pt.zeros((len(s.units), n_stages))
            for u, channel in enumerate(s.unit_channel):
                cells = np.flatnonzero(s.cell_channel == channel)
                unit_log_q = pt.set_subtensor(unit_log_q[u, s.cell_stage[cells]],
                                              _log_sigmoid(eta[cells] + offset[u]))
            unit_applies = s.route_applies[s.unit_channel]
            parts.append(_logit_from_log(_routed_log_reach(s, unit_log_q, log_eps[s.unit_channel],
                                                           unit_applies).reshape((-1,))))
        if s.has_route:  # logit of each channel's reach of the route's end stage through the route
            grid = log_q.reshape((n_channels, n_stages))
            a, b = s.route_after, s.route_reaches
            log_start = pt.cumsum(grid, axis=1)[:, a]
            log_bypass = pt.log1mexp(pt.minimum(pt.sum(grid[:, a + 1:b + 1], axis=1), -1e-12))
            log_route = pt.switch(s.route_channel, log_start + log_bypass + log_eps, -700.0)
            parts_tail = [_logit_from_log(pt.minimum(log_route, -1e-12))]
        else:
            parts_tail = []
        latent = pt.concatenate(parts + [severity] + parts_tail)

        sens_tier, fpr_tier = _diagnosticity("tier", "tier", p)
        if s.tests:
            sens_test, fpr_test = _diagnosticity("test", "test", p)
            sens_all = pt.concatenate([sens_tier, sens_test])
            fpr_all = pt.concatenate([fpr_tier, fpr_test])
        else:
            sens_all, fpr_all = sens_tier, fpr_tier

        d = {name: pm.Data(name, np.asarray(values, dtype=float if name.split("_", 1)[1]
                                               not in ("target", "diag", "indicator_index") else "int64"))
             for name, values in data.data_arrays().items()}

        def probability(prefix: str):
            pi = pm.math.sigmoid(latent[d[f"{prefix}_target"]])
            explicit = pt.gt(d[f"{prefix}_explicit"], 0.5)
            sens = pt.switch(explicit, d[f"{prefix}_sens"], sens_all[d[f"{prefix}_diag"]])
            fpr = pt.switch(explicit, d[f"{prefix}_fpr"], fpr_all[d[f"{prefix}_diag"]])
            return fpr + pi * (sens - fpr)

        r = d["signal_reliability"]
        p_signal = r * probability("signal") + (1 - r) / 2
        pm.Potential("signal_evidence", pt.sum(d["signal_positive"] * pt.log(p_signal)
                                               + d["signal_negative"] * pt.log1p(-p_signal)))
        pm.Potential("count_evidence", _count_evidence(s, p, d, latent))
        mu = d["measure_loading"] * latent[d["measure_target"]]
        pm.Potential("measure_evidence", pt.sum(-0.5 * d["measure_wz2"] + mu * d["measure_wz"]
                                                - 0.5 * mu**2 * d["measure_weight"]
                                                - 0.5 * np.log(2 * np.pi) * d["measure_weight"]))
    _ORIGIN[model] = _origin(study)
    return model


#: what each model built here was built for: its structure, framework file and prior set
_ORIGIN: "weakref.WeakKeyDictionary[pm.Model, dict]" = weakref.WeakKeyDictionary()


def _origin(study: Study) -> dict:
    return {"key": structure_of(study).key(), "framework": study.hashes.get("framework", ""),
            "prior_set": study.prior_set, "priors": study.hashes.get("priors", "")}


def model_origin(model: pm.Model) -> dict | None:
    """What :func:`build_model` built ``model`` for (None for a model built elsewhere)."""
    return _ORIGIN.get(model)


def set_evidence(model: pm.Model, evidence: EvidenceData) -> None:
    """Replace the model's evidence with ``evidence`` in place (same framework, prior set and units)."""
    arrays = {name: np.asarray(values, dtype=model[name].dtype) for name, values in evidence.data_arrays().items()}
    with model:
        pm.set_data(arrays)


def set_priors(model: pm.Model, study: Study) -> None:
    """Replace the model's prior hyper-parameters with ``study``'s prior set in place (same structure)."""
    with model:
        pm.set_data(prior_data(structure_of(study), study.priors))
