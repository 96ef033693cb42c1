"""nutpie's NUTS (Rust) on a model's native functions (:mod:`bayescpec.engine.native`), its draws as an
``xarray.DataTree``.

Only nutpie's compiled extension (``nutpie._lib``) is used: nutpie's Python package imports ArviZ's
plotting stack (matplotlib) and pyarrow when it is imported, about a second of every fresh process
that a fit does not need. The draws come back as Arrow record batches, one per chain, and are read
into NumPy here. Chains run on ``cores`` threads; each chain has its own random stream (the seed and
the chain's number), so the draws do not depend on how many run at once.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from .native import BoundData, NativeDensity

__all__ = ["nutpie_lib", "sample_native", "SamplerError"]

#: sampler statistics kept in ``sample_stats`` (nutpie's names); the others are internals of its adaptation
KEPT_STATS = ("depth", "maxdepth_reached", "diverging", "energy", "energy_error", "max_energy_error", "logp",
              "step_size", "step_size_bar", "n_steps", "mean_tree_accept", "index_in_trajectory")


class SamplerError(RuntimeError):
    """nutpie stopped: a chain could not start or a native function returned an unrecoverable code."""


def nutpie_lib():
    """nutpie's compiled module, loaded without running ``nutpie/__init__.py`` (which imports ArviZ,
    matplotlib and pyarrow); the import system's copy when nutpie is already imported."""
    found = sys.modules.get("nutpie._lib")
    if found is not None:
        return found
    spec = importlib.util.find_spec("nutpie")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folder) / f"_lib{suffix}"
            if path.is_file():
                loader = importlib.machinery.ExtensionFileLoader("nutpie._lib", str(path))
                module = importlib.util.module_from_spec(importlib.util.spec_from_loader("nutpie._lib", loader))
                loader.exec_module(module)
                sys.modules["nutpie._lib"] = module
                return module
    from nutpie import _lib  # pragma: no cover - an installation without the extension beside it

    return _lib


def _column(batch, name: str, shape: tuple) -> np.ndarray:
    from arro3.core import list_flatten

    column = batch.column(name)
    if shape:
        return np.asarray(list_flatten(column)).reshape((len(column), *shape))
    return np.asarray(column)


def sample_native(density: NativeDensity, bound: BoundData, *, coords: dict, draws: int, tune: int,
                  chains: int, seed: int, target_accept: float, cores: int,
                  progressbar: bool = False, meanwhile=None) -> xr.DataTree:
    """Sample ``chains`` x ``draws`` after ``tune`` adaptation steps; a DataTree with ``posterior`` (the
    model's variables, PyMC's names and dims) and ``sample_stats``. ``meanwhile`` (no arguments) is called
    in this thread while the chains run on the sampler's own threads (they need no Python)."""
    lib = nutpie_lib()
    names = [name for name, _, _ in density.variables]
    shapes = [list(shape) for _, shape, _ in density.variables]
    # nutpie's own store wants a named size for every axis; the DataTree below uses the model's dims
    axes = {name: [f"{name}.{i}" for i in range(len(shape))] for name, shape in zip(names, shapes)}
    sizes = {axis: n for name, shape in zip(names, shapes) for axis, n in zip(axes[name], shape)}
    variables = lib.PyVariable.new_variables(names, ["float64"] * len(names), shapes, sizes, axes)
    logp = lib.LogpFunc(density.functions["logp"].address, bound.address, bound)
    expand = lib.ExpandFunc(density.n_dim, density.n_expanded, density.functions["expand"].address,
                            bound.address, bound)
    model = lib.PyMcModel(logp, expand, variables, density.n_dim, sizes, {}, bound.initial_point, None)
    settings = lib.PyNutsSettings.Diag(int(seed))
    settings.update({"num_tune": int(tune), "num_draws": int(draws), "num_chains": int(chains),
                     "target_accept": float(target_accept)})
    progress = lib.ProgressType.indicatif(500) if progressbar else lib.ProgressType.none()
    started = time.perf_counter()
    sampler = lib.PySampler.from_pymc(settings, int(cores), model, progress, None, 100, lib.PyStorage.arrow())
    if meanwhile is not None:
        try:
            meanwhile()
        except BaseException:
            sampler.abort()
            raise
    try:
        sampler.wait(None)
        trace = sampler.take_results()
    except KeyboardInterrupt:
        sampler.abort()
        raise
    except RuntimeError as exc:
        raise SamplerError(f"the sampler stopped: {exc}") from None
    seconds = time.perf_counter() - started
    draw_batches, stat_batches = trace.get_arrow_trace()
    posterior, stats = {}, {}
    for chain, (batch, stat) in enumerate(zip(draw_batches, stat_batches)):
        kept = ~np.asarray(stat.column("tuning"))
        if int(kept.sum()) != draws:
            raise SamplerError(f"chain {chain} returned {int(kept.sum())} draws, not {draws}")
        for (name, shape, _), out in zip(density.variables, names):
            posterior.setdefault(name, []).append(_column(batch, name, tuple(shape))[kept])
        for name in KEPT_STATS:
            if name in stat.column_names:
                stats.setdefault(name, []).append(_column(stat, name, ())[kept])
    coords = {**coords, "chain": np.arange(chains), "draw": np.arange(draws)}
    data_vars = {name: (("chain", "draw", *dims), np.stack(posterior[name]))
                 for name, _, dims in density.variables}
    used = {d for _, _, dims in density.variables for d in dims}
    posterior_set = xr.Dataset(data_vars, coords={k: v for k, v in coords.items()
                                                  if k in used or k in ("chain", "draw")})
    stats_set = xr.Dataset({name: (("chain", "draw"), np.stack(values)) for name, values in stats.items()},
                           coords={"chain": coords["chain"], "draw": coords["draw"]},
                           attrs={"sampling_time": seconds, "tuning_steps": int(tune)})  # PyMC's names
    if "maxdepth_reached" in stats_set:
        stats_set["maxdepth_reached"] = stats_set["maxdepth_reached"].astype(bool)
    return xr.DataTree.from_dict({"posterior": posterior_set, "sample_stats": stats_set})
