"""Every reported quantity, derived in numpy from the sampled parameters -- the same function for the
prior and the posterior, so the two groups of a result are computed alike.

Sampled (free) parameters, leading axis = draws:

* ``stage_logit`` (cells): eta_cj = logit q_cj, the *constrained* logit of passing stage j of channel c
  (the quantity the evidence pins; see :mod:`bayescpec.engine.model`);
* ``loading`` (links), ``severity_z`` (constraints), ``loop_factor`` (loops), ``loop_loading``
  (loop members): the constraints, s_k = mu_k + sigma_k (sum_l rho_lk F_l / sqrt(n_k) + sqrt(1 - sum ...) z_k);
* ``unit_sd`` (channels), ``unit_z`` (units): unit offsets delta_u = sd_c z_u on every stage logit;
* ``route_probability`` (channels): the probability of the framework's bypass route (``[[routes]]``);
* ``loading_common``: the loadings' common part, when the prior set shares their variance.
* ``rate_not_converting``, ``rate_gap``, ``count_icc`` (count indicators): each count indicator's
  per-unit rates and intra-class correlation (:mod:`bayescpec.engine.counts`; they enter only the
  likelihood of count rows, so nothing here is derived from them).

Derived: ``severity``, ``stage_probability`` q (channel, stage), ``reach`` (channel, stage),
``theta``, ``base_theta`` (every severity at 0 = typical), ``constraint_effect`` = base_theta - theta,
``link_reduction`` (theta with the link's severity at 0 minus theta), ``interruption`` (the largest
reduction of a linked channel by each constraint), ``break_first`` (the chain reaches the previous
stage and ends at this one), ``route_reach`` (the route's end stage reached through the route),
``route_share`` (its share of that stage's reach), ``unit_reach``, ``unit_theta``, ``nqpf_dimension``, ``nqpf``.

**The route.** With a route from stage a to stage b (a < b - 1), a chain that has passed a reaches b
through the stages between with probability E = prod_{a < j <= b} q_j or, when one of them fails, through
the route with probability epsilon: reach_b = reach_a (E + (1 - E) epsilon); the stages between keep
their embedded reach, and later stages multiply on from reach_b. The chain "breaks first" at a stage
between only when the route does not rescue it (a factor 1 - epsilon). Without a route (epsilon = 0)
this is the plain chain.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy.special import expit

from .counts import COUNT_FREE_DIMS
from .structure import Structure

__all__ = ["severity_from", "severities", "derive", "DERIVED_DIMS", "FREE_DIMS"]

#: dims (after the sample axis) of each sampled parameter
FREE_DIMS: dict[str, tuple[str, ...]] = {
    "stage_logit": ("chain_stage",), "loading": ("link",), "severity_z": ("constraint",),
    "loop_factor": ("loop",), "loop_loading": ("loop_member",), "unit_sd": ("channel",), "unit_z": ("unit",),
    "route_probability": ("channel",), "loading_common": (),
    **COUNT_FREE_DIMS,
}
#: dims (after the sample axis) of each derived quantity
DERIVED_DIMS: dict[str, tuple[str, ...]] = {
    "severity": ("constraint",), "stage_probability": ("channel", "stage"), "reach": ("channel", "stage"),
    "theta": ("channel",), "base_theta": ("channel",), "constraint_effect": ("channel",),
    "link_reduction": ("link",), "interruption": ("constraint",), "unit_offset": ("unit",),
    "unit_reach": ("unit", "stage"), "unit_theta": ("unit",), "nqpf_dimension": ("dimension",), "nqpf": (),
    "break_first": ("channel", "stage"), "route_reach": ("channel",), "route_share": ("channel",),
}


def severity_from(structure: Structure, severity_z, loop_factor=None, loop_loading=None):
    """Severities from their standardised innovations and the loops' shared factors (numpy)."""
    s = structure
    shared = np.zeros_like(severity_z)
    if len(s.loop_members):
        rho = loop_loading * s.member_scale                       # (S, M)
        np.add.at(shared.T, s.member_constraint, (rho * loop_factor[:, s.member_loop]).T)
        rho2 = np.zeros_like(severity_z)
        np.add.at(rho2.T, s.member_constraint, (rho**2).T)
        own = np.sqrt(1.0 - rho2)
    else:
        own = 1.0
    return s.severity_mean + s.severity_sd * (shared + own * severity_z)


def _grid(structure: Structure, cell_values: np.ndarray, fill: float) -> np.ndarray:
    """Scatter per-cell values (S, cells) into the (S, channel, stage) grid, ``fill`` elsewhere."""
    grid = np.full(cell_values.shape[:-1] + structure.in_chain.shape, fill, dtype=float)
    grid[..., structure.cell_channel, structure.cell_stage] = cell_values
    return grid


def severities(structure: Structure, params, n: int) -> np.ndarray:
    """The severities (n, K) of ``n`` draws of the sampled parameters (``severity_z`` and the loops'
    ``loop_factor``/``loop_loading``); an (n, 0) array for a framework without constraints."""
    if not len(structure.constraints):
        return np.zeros((n, 0))
    return severity_from(structure, params["severity_z"], params.get("loop_factor"), params.get("loop_loading"))


def _route_probability(structure: Structure, params, n: int) -> np.ndarray:
    """Each channel's route probability (n, C): 0 for channels the route does not apply to."""
    if not structure.has_route or "route_probability" not in params:
        return np.zeros((n, len(structure.channels)))
    return np.where(structure.route_channel, np.asarray(params["route_probability"], dtype=float), 0.0)


def routed_reach(q: np.ndarray, eps: np.ndarray, applies: np.ndarray, after: int, reaches: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Reach (..., X, J) of chains with pass probabilities q (..., X, J) and route probabilities eps (..., X)
    where ``applies`` (X,) says the route from stage ``after`` to ``reaches`` exists; and the end stage's
    reach through the route (..., X)."""
    reach = np.cumprod(q, axis=-1)
    route_reach = np.zeros(q.shape[:-1])
    if after < 0 or not applies.any():
        return reach, route_reach
    a, b = after, reaches
    embedded = np.prod(q[..., a + 1:b + 1], axis=-1)
    start = reach[..., a]
    at_end = start * (embedded + (1.0 - embedded) * eps)
    routed = reach.copy()
    routed[..., b] = at_end
    routed[..., b + 1:] = at_end[..., None] * np.cumprod(q[..., b + 1:], axis=-1)
    reach = np.where(applies[:, None], routed, reach)
    route_reach = np.where(applies, start * (1.0 - embedded) * eps, 0.0)
    return reach, route_reach


def chain_reach(structure: Structure, q: np.ndarray, route_probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reach of every stage (..., C, J) from the pass probabilities q (..., C, J; 1 outside a chain) and
    the channels' route probabilities (..., C), and the route's end stage reached through the route (..., C)."""
    s = structure
    return routed_reach(q, route_probability, s.route_applies, s.route_after, s.route_reaches)


def _break_first(structure: Structure, q: np.ndarray, reach: np.ndarray, route_probability: np.ndarray) -> np.ndarray:
    """P(the chain reaches stage j - 1 and ends at j): reach_{j-1} (1 - q_j), times (1 - epsilon) at the stages
    the route bypasses (a failure there is rescued by the route with probability epsilon)."""
    s = structure
    before = np.concatenate([np.ones(reach.shape[:-1] + (1,)), reach[..., :-1]], axis=-1)
    out = before * (1.0 - q)
    if s.has_route:
        a, b, rc = s.route_after, s.route_reaches, s.route_channel
        embedded = np.cumprod(q, axis=-1)            # the stages between keep their embedded reach
        emb_before = np.concatenate([np.ones(reach.shape[:-1] + (1,)), embedded[..., :-1]], axis=-1)
        span = slice(a + 1, b + 1)
        block = out[..., rc, :]
        block[..., span] = (emb_before[..., rc, span] * (1.0 - q[..., rc, span])
                            * (1.0 - route_probability[..., rc, None]))
        out[..., rc, :] = block
    return out


def _theta(structure: Structure, stage_logit: np.ndarray, route_probability: np.ndarray) -> np.ndarray:
    reach, _ = chain_reach(structure, _grid(structure, expit(stage_logit), 1.0), route_probability)
    return reach[..., -1]


def derive(structure: Structure, params: dict[str, np.ndarray], names: Collection[str] | None = None
           ) -> dict[str, np.ndarray]:
    """Every derived quantity from the sampled parameters (arrays with one leading sample axis); with
    ``names``, at least those (the chain's reach, theta and the route's quantities always; the rest only
    when named: the propositions' counterfactual settings need three of the sixteen)."""
    s = structure

    def wanted(*keys: str) -> bool:
        return names is None or any(key in names for key in keys)

    eta = np.asarray(params["stage_logit"], dtype=float)
    n = eta.shape[0]
    out: dict[str, np.ndarray] = {}
    severity = severities(s, params, n)
    out["severity"] = severity
    eps = _route_probability(s, params, n)
    q = _grid(s, expit(eta), 1.0)
    reach, route_reach = chain_reach(s, q, eps)
    out["stage_probability"], out["reach"] = q, reach
    theta = reach[..., -1]
    out["theta"] = theta
    if wanted("break_first"):
        out["break_first"] = _break_first(s, q, reach, eps)
    out["route_reach"] = route_reach
    end = reach[..., s.route_reaches] if s.has_route else np.ones_like(route_reach)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["route_share"] = np.where(end > 0, route_reach / np.where(end > 0, end, 1.0), 0.0)
    if wanted("link_reduction", "interruption", "base_theta", "constraint_effect"):
        _constraint_quantities(s, out, eta, severity, eps, params)
    if wanted("unit_offset", "unit_reach", "unit_theta"):
        _unit_quantities(s, out, eta, eps, params)
    if wanted("nqpf_dimension", "nqpf"):
        if len(s.dimensions):
            out["nqpf_dimension"] = np.einsum("dcj,scj->sd", s.dimension_weights, reach)
            out["nqpf"] = out["nqpf_dimension"] @ s.dimension_share
        else:
            out["nqpf_dimension"] = np.zeros((n, 0))
            out["nqpf"] = theta.mean(axis=-1)
    return out


def _constraint_quantities(s: Structure, out: dict, eta: np.ndarray, severity: np.ndarray, eps: np.ndarray,
                           params) -> None:
    """What the constraints do to theta: each link's reduction, each constraint's interruption (its largest
    link), theta with every constraint at zero (``base_theta``) and the difference (``constraint_effect``)."""
    n, theta, q = eta.shape[0], out["theta"], out["stage_probability"]
    effect = np.zeros_like(eta)
    if len(s.links):
        pull = params["loading"] * severity[:, s.link_constraint]       # (S, L): logit pull of each link
        np.add.at(effect.T, s.link_cell, pull.T)
        # theta of each link's channel with that link's pull removed, every link at once: its channel's pass
        # probabilities (S, L, J) with the link's cell freed (the same numbers as freeing one link at a time)
        links, channel = np.arange(len(s.links)), s.link_channel
        freed = q[:, channel, :]
        freed[:, links, s.cell_stage[s.link_cell]] = expit(eta[:, s.link_cell] + pull)
        freed_reach, _ = routed_reach(freed, eps[:, channel], s.route_applies[channel], s.route_after, s.route_reaches)
        out["link_reduction"] = freed_reach[..., -1] - theta[:, channel]
        interruption = np.zeros((n, len(s.constraints)))
        for k in range(len(s.constraints)):
            mine = s.link_constraint == k
            if mine.any():
                interruption[:, k] = out["link_reduction"][:, mine].max(axis=1)
        out["interruption"] = interruption
    else:
        out["link_reduction"] = np.zeros((n, 0))
        out["interruption"] = np.zeros((n, len(s.constraints)))
    out["base_theta"] = _theta(s, eta + effect, eps)
    out["constraint_effect"] = out["base_theta"] - theta


def _unit_quantities(s: Structure, out: dict, eta: np.ndarray, eps: np.ndarray, params) -> None:
    """Each unit's offset, reach and theta (its channel's chain with the unit's own offset)."""
    n = eta.shape[0]
    if len(s.units):
        offset = params["unit_sd"][:, s.unit_channel] * params["unit_z"]  # (S, U)
        unit_q = np.ones((n, len(s.units), len(s.stages)))
        for u, channel in enumerate(s.unit_channel):
            cells = np.flatnonzero(s.cell_channel == channel)
            unit_q[:, u, s.cell_stage[cells]] = expit(eta[:, cells] + offset[:, u, None])
        out["unit_offset"] = offset
        out["unit_reach"] = _unit_reach(s, unit_q, eps)
        out["unit_theta"] = out["unit_reach"][..., -1]
    else:
        out["unit_offset"] = np.zeros((n, 0))
        out["unit_reach"] = np.zeros((n, 0, len(s.stages)))
        out["unit_theta"] = np.zeros((n, 0))


def _unit_reach(structure: Structure, unit_q: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Reach of every (unit, stage): each unit is a chain of its own with its channel's route probability."""
    s = structure
    return routed_reach(unit_q, eps[:, s.unit_channel], s.route_applies[s.unit_channel], s.route_after,
                        s.route_reaches)[0]
