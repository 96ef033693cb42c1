"""Quantities with constraints held at named levels: what the propositions' ``under`` and ``swing`` read.

At every draw the model recomputes the quantity with the named constraints' severities set to their
levels (the framework's ``[[levels]]``), keeping what the evidence pinned -- the constrained stage logit --
and each loading (:mod:`bayescpec.engine.scenario`): a counterfactual within the model, from the same
draws, with no refit.

A fit stores, in its posterior and prior groups, the quantities every proposition of its framework needs
under every setting it names (``counterfactual_<quantity>``, with a ``setting`` dim labelled like
``energy_debt=unfavourable``), so that tables evaluate the propositions from the result alone, for any
threshold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..inputs.query import QUANTITY_DIMS, QueryError, Setting, counterfactual_settings, setting_key
from .quantities import severities
from .scenario import derive_scenario, scenario_severity
from .structure import Structure

__all__ = ["counterfactual_quantities", "proposition_settings", "counterfactual_variables", "stored_counterfactual",
           "PREFIX"]

#: the prefix of the stored counterfactual variables: ``counterfactual_theta`` etc.
PREFIX = "counterfactual_"
#: the attr of a stored counterfactual variable listing the settings it holds values under (JSON)
STORED_SETTINGS = "stored_settings"


def counterfactual_quantities(structure: Structure, params: Mapping[str, np.ndarray], setting: Setting,
                              names=None) -> dict[str, np.ndarray]:
    """Every derived quantity (or those in ``names``) at every draw with the constraints of ``setting`` held
    at their levels."""
    s = structure
    n = np.asarray(params["stage_logit"]).shape[0]
    current = severities(s, params, n)
    index = {k: i for i, k in enumerate(s.constraints)}
    held = {k: float(s.levels[level][index[k]]) for k, level in setting}
    derived = derive_scenario(s, params, scenario_severity(s, current, set=held), names)
    return {name: value for name, value in derived.items() if names is None or name in names}


def proposition_settings(framework) -> dict[Setting, set[str]]:
    """Every counterfactual setting the framework's propositions (and their parts) evaluate, with the
    quantities each needs."""
    out: dict[Setting, set[str]] = {}
    for proposition in framework.propositions:
        for query in [proposition.headline, *(part.query for part in proposition.parts)]:
            for setting, names in counterfactual_settings(query).items():
                out.setdefault(setting, set()).update(names)
    return out


def counterfactual_variables(structure: Structure, framework, params: Mapping[str, np.ndarray], chains: int,
                             draws: int) -> dict[str, xr.DataArray]:
    """The stored counterfactual variables of a group of ``chains`` x ``draws`` draws (flattened ``params``).

    A quantity holds values only under the settings that read it (NaN under the others, which compress to
    almost nothing); its ``stored_settings`` attr (JSON) lists them, and :func:`stored_counterfactual` offers
    it under those alone."""
    settings = proposition_settings(framework)
    if not settings:
        return {}
    keys = [setting_key(s) for s in settings]
    names = sorted(set().union(*settings.values()))
    coords = structure.coords()
    shapes = {name: tuple(len(coords[d]) for d in QUANTITY_DIMS[name]) for name in names}
    values = {name: np.full((chains * draws, len(keys), *shapes[name]), np.nan) for name in names}
    for i, (setting, needed) in enumerate(settings.items()):
        derived = counterfactual_quantities(structure, params, setting, sorted(needed))
        for name in needed:
            values[name][:, i] = np.asarray(derived[name], dtype=float).reshape(-1, *shapes[name])
    out = {}
    for name in names:
        dims = QUANTITY_DIMS[name]
        stacked = values[name].reshape((chains, draws) + values[name].shape[1:])
        stored = [key for key, setting in zip(keys, settings) if name in settings[setting]]
        out[PREFIX + name] = xr.DataArray(
            stacked, dims=("chain", "draw", "setting", *dims),
            coords={"chain": np.arange(chains), "draw": np.arange(draws), "setting": keys,
                    **{d: coords[d] for d in dims}},
            attrs={STORED_SETTINGS: json.dumps(stored)})
    return out


def _stored_under(variable: xr.DataArray, key: str) -> bool:
    """Whether a stored counterfactual variable holds values under the setting ``key`` (a result made before
    the ``stored_settings`` attr holds every quantity under every setting)."""
    stored = variable.attrs.get(STORED_SETTINGS)
    return stored is None or key in json.loads(stored)


def stored_counterfactual(dataset: xr.Dataset):
    """The ``counterfactual`` callback of :func:`bayescpec.inputs.query.evaluate_proposition` for a result
    group: the quantities stored for each setting (a clear error for a setting the fit did not store)."""
    available = [str(s) for s in dataset["setting"].values] if "setting" in dataset.coords else []

    def lookup(setting: Setting) -> dict[str, xr.DataArray]:
        key = setting_key(setting)
        if key not in available:
            raise QueryError(f"the result holds no values with {key} (it stores the settings its framework's "
                             f"propositions name: {', '.join(available) or 'none'}); refit with the proposition in "
                             "the framework file")
        return {name[len(PREFIX):]: dataset[name].sel(setting=key, drop=True)
                for name in dataset.data_vars if name.startswith(PREFIX) and _stored_under(dataset[name], key)}

    return lookup
