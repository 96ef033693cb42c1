"""Every reported quantity, derived in numpy from the sampled parameters -- the same function for the
prior and the posterior, so the two groups of a result are computed alike.

Sampled (free) parameters, leading axis = draws:

* ``stage_logit`` (cells): eta_cj = logit q_cj, the *constrained* logit of passing stage j of channel c
  (the quantity the evidence pins; see :mod:`bayescpec.engine.model`);
* ``loading`` (links), ``severity_z`` (constraints), ``loop_factor`` (loops), ``loop_loading``
  (loop members): the constraints, s_k = mu_k + sigma_k (sum_l rho_lk F_l / sqrt(n_k) + sqrt(1 - sum ...) z_k);
* ``unit_sd`` (channels), ``unit_z`` (units): unit offsets delta_u = sd_c z_u on every stage logit;
* ``rate_not_converting``, ``rate_gap``, ``count_icc`` (count indicators): each count indicator's
  per-unit rates and intra-class correlation (:mod:`bayescpec.engine.counts`; they enter only the
  likelihood of count rows, so nothing here is derived from them).

Derived: ``severity``, ``stage_probability`` q (channel, stage), ``reach`` (channel, stage),
``theta``, ``base_theta`` (every severity at 0 = typical), ``constraint_effect`` = base_theta - theta,
``link_reduction`` (theta with the link's severity at 0 minus theta), ``interruption`` (the largest
reduction of a linked channel by each constraint), ``unit_reach``, ``unit_theta``, ``nqpf_dimension``,
``nqpf``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .counts import COUNT_FREE_DIMS
from .structure import Structure

__all__ = ["severity_from", "severities", "derive", "DERIVED_DIMS", "FREE_DIMS"]

#: dims (after the sample axis) of each sampled parameter
FREE_DIMS: dict[str, tuple[str, ...]] = {
    "stage_logit": ("chain_stage",), "loading": ("link",), "severity_z": ("constraint",),
    "loop_factor": ("loop",), "loop_loading": ("loop_member",), "unit_sd": ("channel",), "unit_z": ("unit",),
    **COUNT_FREE_DIMS,
}
#: dims (after the sample axis) of each derived quantity
DERIVED_DIMS: dict[str, tuple[str, ...]] = {
    "severity": ("constraint",), "stage_probability": ("channel", "stage"), "reach": ("channel", "stage"),
    "theta": ("channel",), "base_theta": ("channel",), "constraint_effect": ("channel",),
    "link_reduction": ("link",), "interruption": ("constraint",), "unit_offset": ("unit",),
    "unit_reach": ("unit", "stage"), "unit_theta": ("unit",), "nqpf_dimension": ("dimension",), "nqpf": (),
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


def _theta(structure: Structure, stage_logit: np.ndarray) -> np.ndarray:
    return np.prod(_grid(structure, expit(stage_logit), 1.0), axis=-1)


def derive(structure: Structure, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every derived quantity from the sampled parameters (arrays with one leading sample axis)."""
    s = structure
    eta = np.asarray(params["stage_logit"], dtype=float)
    n = eta.shape[0]
    out: dict[str, np.ndarray] = {}
    severity = severities(s, params, n)
    out["severity"] = severity
    q = _grid(s, expit(eta), 1.0)
    reach = np.cumprod(q, axis=-1)
    out["stage_probability"], out["reach"] = q, reach
    theta = reach[..., -1]
    out["theta"] = theta
    effect = np.zeros_like(eta)
    if len(s.links):
        pull = params["loading"] * severity[:, s.link_constraint]       # (S, L): logit pull of each link
        np.add.at(effect.T, s.link_cell, pull.T)
        cell_q = expit(eta[:, s.link_cell])
        freed = expit(eta[:, s.link_cell] + pull)
        out["link_reduction"] = theta[:, s.link_channel] * (freed / cell_q - 1.0)
        interruption = np.zeros((n, len(s.constraints)))
        for k in range(len(s.constraints)):
            mine = s.link_constraint == k
            if mine.any():
                interruption[:, k] = out["link_reduction"][:, mine].max(axis=1)
        out["interruption"] = interruption
    else:
        out["link_reduction"] = np.zeros((n, 0))
        out["interruption"] = np.zeros((n, len(s.constraints)))
    out["base_theta"] = _theta(s, eta + effect)
    out["constraint_effect"] = out["base_theta"] - theta
    if len(s.units):
        offset = params["unit_sd"][:, s.unit_channel] * params["unit_z"]  # (S, U)
        unit_q = np.ones((n, len(s.units), len(s.stages)))
        for u, channel in enumerate(s.unit_channel):
            cells = np.flatnonzero(s.cell_channel == channel)
            unit_q[:, u, s.cell_stage[cells]] = expit(eta[:, cells] + offset[:, u, None])
        out["unit_offset"] = offset
        out["unit_reach"] = np.cumprod(unit_q, axis=-1)
        out["unit_theta"] = out["unit_reach"][..., -1]
    else:
        out["unit_offset"] = np.zeros((n, 0))
        out["unit_reach"] = np.zeros((n, 0, len(s.stages)))
        out["unit_theta"] = np.zeros((n, 0))
    if len(s.dimensions):
        out["nqpf_dimension"] = np.einsum("dcj,scj->sd", s.dimension_weights, reach)
        out["nqpf"] = out["nqpf_dimension"] @ s.dimension_share
    else:
        out["nqpf_dimension"] = np.zeros((n, 0))
        out["nqpf"] = theta.mean(axis=-1)
    return out
