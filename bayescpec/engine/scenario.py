"""Every quantity under changed constraint severities, from the sampled parameters: no refit.

A policy scenario sets, shifts or removes constraint severities. At every draw the constrained stage
logit eta is what the evidence pinned; the constraint-free part is eta + sum over the cell's links of
L s (see :mod:`bayescpec.engine.model`). Changing the severities from s to s' keeps the constraint-free
part and the loadings, so

    eta'_cj = eta_cj + sum over the links l of cell (c, j) of L_l (s_k(l) - s'_k(l))
    q'_cj  = sigmoid(eta'_cj)

and every quantity (reach, theta, link reductions, dimensions, ...) follows by the same numpy code as
for the posterior (:func:`bayescpec.engine.quantities.derive`), fed with eta' and the standardised
severity innovations that give s' (the loops' shared factors are kept). A *removed* constraint no
longer pulls on any stage: its pull L s is zero, which in this model is the same as its severity at
"typical" (0); it is reported as removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .quantities import derive, severity_from
from .structure import Structure

__all__ = ["scenario_severity", "scenario_parameters", "derive_scenario"]


def scenario_severity(structure: Structure, severity: np.ndarray, *, set: Mapping[str, float] | None = None,
                      shift: Mapping[str, float] | None = None, remove: Sequence[str] = ()) -> np.ndarray:
    """The scenario's severities (S, K) from the current ones: ``set`` gives a value, ``shift`` adds to
    the current value (after ``set``), ``remove`` sets the pull to zero (severity 0). Names must be
    constraints of ``structure`` (checked by the caller, who can say "did you mean")."""
    index = {k: i for i, k in enumerate(structure.constraints)}
    out = np.array(severity, dtype=float, copy=True)
    for name, value in (set or {}).items():
        out[:, index[name]] = float(value)
    for name, value in (shift or {}).items():
        out[:, index[name]] += float(value)
    for name in remove:
        out[:, index[name]] = 0.0
    return out


def scenario_parameters(structure: Structure, params: Mapping[str, np.ndarray], new_severity: np.ndarray) -> dict:
    """Sampled parameters that give ``new_severity`` while keeping each draw's constraint-free stage
    probabilities: ``stage_logit`` moved by the change of the links' pulls, ``severity_z`` solved from
    s' = mu + sigma (shared + own z') with the loops' shared part unchanged."""
    s = structure
    out = dict(params)
    if not len(s.constraints):
        return out
    old = severity_from(s, params["severity_z"], params.get("loop_factor"), params.get("loop_loading"))
    eta = np.array(params["stage_logit"], dtype=float, copy=True)
    if len(s.links):
        change = params["loading"] * (old - new_severity)[:, s.link_constraint]   # (S, L)
        np.add.at(eta.T, s.link_cell, change.T)
    out["stage_logit"] = eta
    zero = np.zeros_like(params["severity_z"])
    shared_part = severity_from(s, zero, params.get("loop_factor"), params.get("loop_loading"))  # mu + sigma shared
    unit = severity_from(s, np.ones_like(zero), params.get("loop_factor"), params.get("loop_loading")) - shared_part
    out["severity_z"] = (new_severity - shared_part) / unit                       # unit = sigma * own > 0
    return out


def derive_scenario(structure: Structure, params: Mapping[str, np.ndarray], new_severity: np.ndarray,
                    names=None) -> dict:
    """Every derived quantity (as :func:`~bayescpec.engine.quantities.derive`, or at least ``names``) under
    ``new_severity``."""
    return derive(structure, scenario_parameters(structure, params, new_severity), names)
