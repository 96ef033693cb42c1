"""Checking a proposition's query without samples: it must parse, name only known quantities, labels and
levels, reduce to one true/false value per draw, and be able to come out both true and false, at test
points that cover each quantity's range (:func:`check_query`)."""

from __future__ import annotations

import ast
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from .query import QUANTITY_DIMS, QueryError, Setting, _evaluate_plain, _parse, _shown, setting_key, split_given

__all__ = ["check_query", "PROBE_DRAWS"]


#: values each quantity takes at the test points of :func:`check_query`, by the range of the quantity:
#: both ends and ordinary values (the query's own numbers, and values just beside them, are added)
_PROBE_VALUES = {
    "probability": (1e-9, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1 - 1e-9),
    "difference": (-1 + 1e-9, -0.5, -0.1, -0.01, 0.0, 0.01, 0.03, 0.1, 0.3, 0.6, 1 - 1e-9),
    "logit": (-1e6, -10.0, -2.0, -0.5, 0.0, 0.5, 2.0, 10.0, 1e6),
}
_RANGE = {"theta": "probability", "base_theta": "probability", "reach": "probability", "nqpf": "probability",
          "nqpf_dimension": "probability", "constraint_effect": "difference", "interruption": "difference",
          "severity": "logit", "route_probability": "probability", "route_reach": "probability",
          "route_share": "probability"}
_LIMITS = {"probability": (0.0, 1.0), "difference": (-1.0, 1.0), "logit": (-5.0, 5.0)}
PROBE_DRAWS = 1024


class _Probes(Mapping):
    """The test points of every quantity, each made into a DataArray only when the query reads it (a
    query reads one or two of the eleven quantities; the values are drawn for all of them, in one order,
    so the points do not depend on which are read)."""

    def __init__(self, values: dict[str, np.ndarray], dims: dict[str, list[str]]):
        self._values, self._dims, self._arrays = values, dims, {}

    def __getitem__(self, name: str) -> xr.DataArray:
        if name not in self._arrays:
            qdims = QUANTITY_DIMS[name]
            self._arrays[name] = xr.DataArray(self._values[name], dims=("chain", "draw", *qdims),
                                              coords={d: self._dims[d] for d in qdims})
        return self._arrays[name]

    def __contains__(self, name) -> bool:
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _probe_quantities(tree: ast.AST, constants: dict, dims: dict[str, list[str]], seed: int = 20260527
                      ) -> Mapping[str, xr.DataArray]:
    """Test points for :func:`check_query`: every quantity at ``PROBE_DRAWS`` draws, the first ones
    with every label at one probe value (the same for every quantity, then drawn for each), the rest a
    fixed random mix of probe values (and uniform
    values), so a query that can be true and false is seen to be both."""
    numbers = list(constants.values()) + [
        float(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)
        and isinstance(n.value, (int, float)) and not isinstance(n.value, bool) and abs(n.value) < 1e300]
    beside = [v + d for v in numbers for d in (-1e-6 * max(1.0, abs(v)), 0.0, 1e-6 * max(1.0, abs(v)))]
    rng = np.random.default_rng(seed)
    out = {}
    for name, qdims in QUANTITY_DIMS.items():
        kind = _RANGE[name]
        low, high = _LIMITS[kind]
        pool = np.array(sorted(set(_PROBE_VALUES[kind]) | set(beside)))
        if kind != "logit":
            pool = pool[(pool > low) & (pool < high)]
        width = int(np.prod([len(dims[d]) for d in qdims])) if qdims else 1
        corners = np.repeat(pool[:, None], width, axis=1)
        # every label at one probe value, the value drawn for each quantity on its own: the extremes of
        # sums and ratios over labels (sum(route_reach) small while sum(reach) is large)
        levels = np.repeat(pool[rng.integers(0, len(pool), size=PROBE_DRAWS // 4)][:, None], width, axis=1)
        mixed = pool[rng.integers(0, len(pool), size=(PROBE_DRAWS // 4, width))]
        uniform = rng.uniform(low, high, size=(PROBE_DRAWS - len(corners) - len(levels) - len(mixed), width))
        values = np.concatenate([corners, levels, mixed, uniform]).reshape(
            (1, PROBE_DRAWS, *(len(dims[d]) for d in qdims)))
        out[name] = values
    return _Probes(out, dims)


def check_query(query: str, *, channels: list[str], constraints: list[str], stages: list[str] | None = None,
                dimensions: list[str] | None = None, delta: float = 0.05, levels: Sequence[str] = ()) -> None:
    """Validate a query against the framework's names without any samples (raises QueryError): it must
    parse, name only known quantities, labels and levels, reduce to one true/false value per draw, and
    be able to come out both true and false (a query true whatever the values, such as
    ``count(theta > tau) >= 0``, says nothing; so does one that is never true). Each part of a
    conditional (B given A) is checked so."""
    dims = {"channel": list(dict.fromkeys(channels)), "constraint": list(dict.fromkeys(constraints)),
            "stage": list(dict.fromkeys(stages or ["conversion"])), "dimension": list(dict.fromkeys(dimensions or []))}
    constants = {"tau": 0.5, "delta": delta}
    for part in split_given(query):
        if part is None:
            continue
        tree = _parse(part)
        base = _probe_quantities(tree, constants, dims)

        def counterfactual(setting: Setting, tree=tree) -> Mapping[str, xr.DataArray]:
            # each setting its own independent test points: a counterfactual can differ from the estimate
            return _probe_quantities(tree, constants, dims, seed=zlib.crc32(setting_key(setting).encode()))

        with np.errstate(all="ignore"):
            result = _evaluate_plain(part, base, dims, constants, counterfactual, levels, ("chain", "draw"))
        holds = result.values
        if holds.all() or not holds.any():
            word = "true" if holds.all() else "false"
            shown = _shown(part) if part != query else _shown(query)
            raise QueryError(f"query {shown} is {word} whatever the values of the quantities (it was {word} at "
                             f"every one of {holds.size} test points); allowed: a statement that can be true or "
                             "false, such as theta[sez] > tau")
