"""The prior group by forward simulation: every parameter drawn from the prior set at once (vectorised),
then every quantity derived exactly as for the posterior.

The model samples the constrained stage logit eta (a Flat variable with the prior as a density term,
see :mod:`bayescpec.engine.model`), which has no forward draw; here the prior is simulated the way it
is stated: constraint-free stage probabilities from their Beta priors, severities, loadings, then
eta = logit(q) - sum_k L s_k.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit

from ..inputs.spec import PriorSet
from .counts import draw_count_prior
from .quantities import derive, severities
from .structure import Structure, stage_beta_parameters  # noqa: F401  (documented identity)

__all__ = ["draw_prior"]


def _gap_beta(sensitivity_mean: float, false_positive_mean: float, concentration: float) -> tuple[float, float]:
    gap = (sensitivity_mean - false_positive_mean) / (1 - false_positive_mean)
    return gap * concentration, (1 - gap) * concentration


def draw_prior(structure: Structure, priors: PriorSet, draws: int, seed: int) -> dict[str, np.ndarray]:
    """``draws`` independent prior draws of every sampled parameter and derived quantity."""
    s, rng = structure, np.random.default_rng(seed)
    n = int(draws)
    out: dict[str, np.ndarray] = {}
    q = rng.beta(s.cell_alpha, s.cell_beta, size=(n, len(s.cells)))
    q = np.clip(q, 1e-300, 1 - 1e-16)
    out["severity_z"] = rng.standard_normal((n, len(s.constraints)))
    if len(s.loops):
        out["loop_factor"] = rng.standard_normal((n, len(s.loops)))
        out["loop_loading"] = rng.beta(s.loop_alpha, s.loop_beta, size=(n, len(s.loop_members)))
    severity = severities(s, out, n)
    if s.loading_signed and s.loading_shared > 0:
        out["loading_common"] = rng.standard_normal(n)
        own = rng.standard_normal((n, len(s.links)))
        out["loading"] = s.loading_mean + s.loading_sd * (np.sqrt(s.loading_shared) * out["loading_common"][:, None]
                                                          + np.sqrt(1.0 - s.loading_shared) * own)
    elif s.loading_signed:
        out["loading"] = rng.normal(s.loading_mean, s.loading_sd, size=(n, len(s.links)))
    else:
        out["loading"] = np.abs(rng.normal(0.0, s.loading_sd, size=(n, len(s.links))))
    effect = np.zeros((n, len(s.cells)))
    if len(s.links):
        np.add.at(effect.T, s.link_cell, (out["loading"] * severity[:, s.link_constraint]).T)
    out["stage_logit"] = logit(q) - effect
    if s.has_route:
        out["route_probability"] = rng.beta(s.route_alpha, s.route_beta, size=(n, len(s.channels)))
    if len(s.units):
        out["unit_sd"] = np.abs(rng.normal(0.0, s.unit_sd, size=(n, len(s.channels))))
        out["unit_z"] = rng.standard_normal((n, len(s.units)))
    for name, order, table in (("tier", s.tiers, priors.diagnosticity.tiers),
                               ("test", s.tests, priors.diagnosticity.tests)):
        if not order:
            continue
        f = rng.beta([table[i].false_positive.alpha for i in order], [table[i].false_positive.beta for i in order],
                     size=(n, len(order)))
        gaps = [_gap_beta(table[i].sensitivity.mean, table[i].false_positive.mean, table[i].sensitivity.concentration)
                for i in order]
        g = rng.beta([a for a, _ in gaps], [b for _, b in gaps], size=(n, len(order)))
        out[f"false_positive_{name}"], out[f"sensitivity_gap_{name}"] = f, g
        out[f"sensitivity_{name}"] = f + (1 - f) * g
    out.update(draw_count_prior(s.counts, rng, n))  # last: the draws above keep their random streams
    out.update(derive(s, out))
    return out
