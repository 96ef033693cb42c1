"""The log prior density of posterior draws, in numpy/scipy: what power-scaling the prior needs.

Written from the prior set, not from the PyMC graph (a test checks the two agree up to nothing at
random points). The density is that of the model's sampled parameters, each on the scale the model
declares it (Beta parameters on the probability scale, no change-of-variables terms):

* ``stage_logit`` eta of every chain cell: the constraint-free logit x = eta + sum over the cell's links
  of L s has the density of logit(q0), q0 ~ Beta(a, b): a log sigmoid(x) + b log sigmoid(-x) - log B(a, b);
* ``loading``: Normal(mean, sd) (signed) or half-normal(sd); with shared loadings, ``loading_common`` c
  ~ Normal(0, 1) and each loading Normal(mean + sd sqrt(shared) c, sd sqrt(1 - shared));
* ``route_probability`` of every channel: Beta (the prior set's route prior);
* ``severity_z``, ``loop_factor``, ``unit_z``: standard normal; ``loop_loading``: Beta; ``unit_sd``:
  half-normal;
* every tier's and test type's ``false_positive`` f ~ Beta and ``sensitivity_gap`` g ~ Beta, with g's
  Beta chosen so that E[s] = E[f + (1 - f) g] is the prior set's sensitivity mean;
* every count indicator's ``rate_not_converting`` f ~ Beta(mean = the catalogue's rate, concentration =
  ``[counts] rate_concentration``), ``rate_gap`` g ~ Beta with E[f + (1 - f) g] = the catalogue's
  ``rate_converting``, and ``count_icc`` rho ~ Beta (``[counts] overdispersion``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats
from scipy.special import betaln, log_expit

from ..engine.quantities import severities
from ..engine.structure import Structure
from ..inputs.spec import PriorSet

__all__ = ["log_prior_terms", "log_prior_density", "PRIOR_PARAMETERS"]

#: the sampled parameters whose prior density is summed
PRIOR_PARAMETERS = ("stage_logit", "loading", "loading_common", "route_probability", "severity_z", "loop_factor",
                    "loop_loading", "unit_sd", "unit_z", "false_positive_tier", "sensitivity_gap_tier",
                    "false_positive_test", "sensitivity_gap_test", "rate_not_converting", "rate_gap", "count_icc")


def _gap_beta(sensitivity_mean: float, false_positive_mean: float, concentration: float) -> tuple[float, float]:
    gap = (sensitivity_mean - false_positive_mean) / (1.0 - false_positive_mean)
    return gap * concentration, (1.0 - gap) * concentration


def log_prior_terms(structure: Structure, priors: PriorSet, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each parameter's log prior density per draw (S,), keyed by parameter name."""
    s = structure
    eta = np.asarray(params["stage_logit"], dtype=float)
    n = eta.shape[0]
    out: dict[str, np.ndarray] = {}
    severity = severities(s, params, n)
    pull = np.zeros_like(eta)
    if len(s.links):
        loading = np.asarray(params["loading"], dtype=float)
        np.add.at(pull.T, s.link_cell, (loading * severity[:, s.link_constraint]).T)
        if s.loading_signed and s.loading_shared > 0:
            common = np.asarray(params["loading_common"], dtype=float)
            out["loading_common"] = stats.norm.logpdf(common)
            out["loading"] = stats.norm.logpdf(loading, s.loading_mean + s.loading_sd * np.sqrt(s.loading_shared)
                                               * common[:, None],
                                               s.loading_sd * np.sqrt(1.0 - s.loading_shared)).sum(axis=1)
        elif s.loading_signed:
            out["loading"] = stats.norm.logpdf(loading, s.loading_mean, s.loading_sd).sum(axis=1)
        else:
            out["loading"] = stats.halfnorm.logpdf(loading, scale=s.loading_sd).sum(axis=1)
    x = eta + pull
    out["stage_logit"] = (s.cell_alpha * log_expit(x) + s.cell_beta * log_expit(-x)
                          - betaln(s.cell_alpha, s.cell_beta)).sum(axis=1)
    for name in ("severity_z", "loop_factor", "unit_z"):
        if name in params and np.asarray(params[name]).shape[-1]:
            out[name] = stats.norm.logpdf(params[name]).sum(axis=1)
    if len(s.loop_members):
        out["loop_loading"] = stats.beta.logpdf(params["loop_loading"], s.loop_alpha, s.loop_beta).sum(axis=1)
    if s.has_route:
        out["route_probability"] = stats.beta.logpdf(params["route_probability"], s.route_alpha,
                                                     s.route_beta).sum(axis=1)
    if len(s.units):
        out["unit_sd"] = stats.halfnorm.logpdf(params["unit_sd"], scale=s.unit_sd).sum(axis=1)
    for name, order, table in (("tier", s.tiers, priors.diagnosticity.tiers),
                               ("test", s.tests, priors.diagnosticity.tests)):
        if not order:
            continue
        f_a = np.array([table[i].false_positive.alpha for i in order])
        f_b = np.array([table[i].false_positive.beta for i in order])
        gaps = np.array([_gap_beta(table[i].sensitivity.mean, table[i].false_positive.mean,
                                   table[i].sensitivity.concentration) for i in order])
        out[f"false_positive_{name}"] = stats.beta.logpdf(params[f"false_positive_{name}"], f_a, f_b).sum(axis=1)
        out[f"sensitivity_gap_{name}"] = stats.beta.logpdf(params[f"sensitivity_gap_{name}"],
                                                           gaps[:, 0], gaps[:, 1]).sum(axis=1)
    if s.counts.indicators:  # the catalogue's rates (as the structure carries them) and the prior set
        rate_c, rate_n = np.asarray(s.counts.rate_converting), np.asarray(s.counts.rate_not_converting)
        kappa = priors.counts.rate_concentration
        gap = (rate_c - rate_n) / (1.0 - rate_n)
        icc = priors.counts.overdispersion
        out["rate_not_converting"] = stats.beta.logpdf(params["rate_not_converting"], rate_n * kappa,
                                                       (1.0 - rate_n) * kappa).sum(axis=1)
        out["rate_gap"] = stats.beta.logpdf(params["rate_gap"], gap * kappa, (1.0 - gap) * kappa).sum(axis=1)
        out["count_icc"] = stats.beta.logpdf(params["count_icc"], icc.mean * icc.concentration,
                                             (1.0 - icc.mean) * icc.concentration).sum(axis=1)
    return out


def log_prior_density(structure: Structure, priors: PriorSet, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """The joint log prior density of each draw (S,)."""
    return np.sum(list(log_prior_terms(structure, priors, params).values()), axis=0)
