"""Compile once, fit many -- in this process and the next: one compiled model per model graph serves every
fit that only changes the evidence or the prior set's hyper-parameters (both are data of the model).

Two NUTS backends:

* ``nutpie`` (what ``auto`` chooses) -- nutpie's Rust NUTS on the model's native log density
  (:mod:`bayescpec.engine.native`): PyTensor's Numba code with the data as arguments, kept in an on-disk
  cache keyed by the model's fingerprint. The first fit of a framework on a machine compiles it (about
  30 s); every later one, in this process or a new one, loads it (well under a second) and samples
  (about 1 s for 4 x 2000 iterations of the shipped model, chains in parallel).
* ``pymc`` -- PyMC's own NUTS on PyTensor's C functions (sampling runs in Python, about 10 times slower
  per step): for comparison and as a fallback.

A model is identified by its :func:`~bayescpec.engine.native.fingerprint` (its graph, without data
values): two studies of the same framework structure share it whatever their evidence or prior set, and
a change of structure (channels, stages, links, units, the prior set's loading form, ...) changes it.
``compiled_model(study, backend)`` returns the process's compiled model for the study's graph.
"""

from __future__ import annotations

import os
import time
import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..inputs.study import Study
from .aggregate import evidence_data
from .model import build_model, prior_data
from .native import (BoundData, NativeDensity, cached_density, fingerprint, graph_inputs_key, indexed_fingerprint,
                     native_density, record_fingerprint)
from .structure import GraphCache, structure_of

__all__ = ["BACKENDS", "CompiledModel", "compiled_model", "compile_model", "choose_backend", "clear_compiled_models",
           "available_cores", "warm_cache"]

BACKENDS = ("pymc", "nutpie")


def available_cores() -> int:
    """CPU cores this process may use: ``BAYESCPEC_CORES`` when set (the executor's workers set 1),
    else the cores it is allowed to run on."""
    try:
        return max(1, int(os.environ["BAYESCPEC_CORES"]))
    except (KeyError, ValueError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(eq=False)
class _Built:
    model: object
    key: str
    shared: dict


_BUILT: "weakref.WeakKeyDictionary[Study, _Built]" = weakref.WeakKeyDictionary()
#: the models built, by framework, prior set and units: a model's graph is a function of these alone (the
#: evidence and the prior's hyper-parameters are its data), so a study that shares them with one already
#: built -- a study made by ``with_evidence``, as the calibration's simulated studies and a notebook's new
#: evidence are -- shares that model's graph
_TWINS = GraphCache(16)


def built_model(study: Study) -> _Built:
    """A PyMC model with the graph of ``study``'s model, with its fingerprint and shared variables: built once
    per framework, prior set and units (the frozen objects themselves, not equal copies). Its shared variables
    hold the data of the study it was built for; :meth:`CompiledModel.sample` takes each study's own."""
    found = _BUILT.get(study)
    if found is None:
        found = _TWINS.get(study)
        if found is None:
            model = build_model(study)
            key, shared = fingerprint(model)
            found = _Built(model, key, shared)
            _TWINS.put(study, found)
        _BUILT[study] = found
    return found


def model_key(model) -> tuple[str, dict]:
    """The fingerprint and shared variables of a model built by :func:`bayescpec.build_model`."""
    for built in list(_BUILT.values()):
        if built.model is model:
            return built.key, built.shared
    return fingerprint(model)


@dataclass(eq=False)
class CompiledModel:
    """A model compiled for one model graph (a framework structure), ready to sample any study whose
    model has that graph, whatever its evidence or prior set."""

    key: str
    backend: str
    model: object           # the pm.Model it was compiled from
    compile_seconds: float  # what getting it ready cost this process (compiling, or loading from the cache)
    fits: int = 0
    native: NativeDensity | None = field(default=None, repr=False)

    def _arrays(self, study: Study, model=None) -> dict[str, np.ndarray]:
        """``study``'s evidence and prior hyper-parameters by ``pm.Data`` name, in the model's dtypes (those
        the native functions read, in their layout's dtypes, when no PyMC model is at hand); builds no
        model, so it may run inside a model context."""
        arrays = {**evidence_data(study).data_arrays(), **prior_data(structure_of(study), study.priors)}
        model = model if model is not None else self.model
        if model is None:
            dtypes = {name: dtype for name, dtype, _ in self.native.data}
            return {name: np.asarray(values, dtype=dtypes[name]) for name, values in arrays.items() if name in dtypes}
        return {name: np.asarray(values, dtype=model[name].dtype) for name, values in arrays.items()}

    def sample(self, study: Study, *, draws: int, tune: int, chains: int, seed: int, target_accept: float,
               progressbar: bool = False, cores: int | None = None, model=None, meanwhile=None) -> xr.DataTree:
        """Sample the posterior of ``study`` (whose model must have this one's graph): a DataTree with
        ``posterior`` and ``sample_stats``. ``model``: the study's model when the caller built it; ``meanwhile``:
        work to do while the sampler runs (called once, in this thread; nutpie's chains run on their own).
        nutpie needs no PyMC model: the study's data and coordinates come from the study itself."""
        if model is None:
            key = fingerprint_of(study) if self.backend == "nutpie" else built_model(study).key
        else:
            key = model_key(model)[0]
        if key != self.key:
            raise ValueError("this compiled model was built for another framework structure")
        self.fits += 1
        arrays = self._arrays(study, model)  # the study's own data (a model may have been built for a twin)
        if self.backend == "nutpie":
            from .nuts import sample_native

            coords = structure_of(study).coords()
            values = {}
            for name, dtype, _ in self.native.data:
                if name in arrays:
                    values[name] = arrays[name]
                elif name in coords:  # a dimension's length
                    values[name] = np.asarray(len(coords[name]), dtype=dtype)
                else:
                    shared = model_key(model)[1] if model is not None else built_model(study).shared
                    values[name] = shared[name].get_value()
            return sample_native(self.native, BoundData(self.native, values),
                                 coords={dim: list(labels) for dim, labels in coords.items()}, draws=draws,
                                 tune=tune, chains=chains, seed=seed, target_accept=target_accept,
                                 progressbar=progressbar, cores=cores or min(chains, available_cores()),
                                 meanwhile=meanwhile)
        import pymc as pm

        model = model if model is not None else built_model(study).model
        pm.set_data(arrays, model=model)
        if meanwhile is not None:
            meanwhile()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progressbar,
                             model=model, nuts_sampler="pymc", compute_convergence_checks=False,
                             cores=cores or 1, target_accept=target_accept)


_COMPILED: dict[tuple[str, str], CompiledModel] = {}
_FINGERPRINTS: "weakref.WeakKeyDictionary[Study, str]" = weakref.WeakKeyDictionary()


def fingerprint_of(study: Study) -> str:
    """The fingerprint of ``study``'s model without building it when the disk cache's index has it (see
    :func:`~bayescpec.engine.native.graph_inputs_key`): else the model is built and the index written."""
    found = _FINGERPRINTS.get(study)
    if found is None:
        built = _BUILT.get(study) or _TWINS.get(study)
        if built is not None:
            found = built.key
        else:
            structure = structure_of(study)
            data = {**evidence_data(study).data_arrays(), **prior_data(structure, study.priors)}
            inputs = graph_inputs_key(study.framework, study.priors, structure.units, data)
            found = indexed_fingerprint(inputs)
            if found is None:
                found = built_model(study).key
                record_fingerprint(inputs, found)
        _FINGERPRINTS[study] = found
    return found


def compiled_model(study: Study, backend: str = "nutpie", *, model=None) -> CompiledModel:
    """The compiled model of ``study``'s graph for ``backend``, made once per process (``nutpie``:
    loaded from the disk cache when it is there, with no PyMC model built when the cache's index knows the
    study's fingerprint). ``model``: the study's model when already built."""
    if backend not in BACKENDS:
        raise ValueError(f"sampler must be one of {', '.join(BACKENDS)}; found {backend!r}")
    if model is None:
        key = fingerprint_of(study) if backend == "nutpie" else built_model(study).key
    else:
        key = model_key(model)[0]
    found = _COMPILED.get((backend, key))
    if found is None:
        started = time.perf_counter()
        native = cached_density(key) if backend == "nutpie" else None
        if native is None and backend == "nutpie":
            if model is None:  # not in the disk cache: build the model and compile it
                built = built_model(study)
                model, key = built.model, built.key
                _FINGERPRINTS[study] = key
            native = native_density(model, key)
        if model is None and backend == "pymc":
            model = built_model(study).model
        found = CompiledModel(key, backend, model, time.perf_counter() - started, native=native)
        _COMPILED[(backend, key)] = found
    return found


def compile_model(study: Study, *, sampler: str = "nutpie") -> CompiledModel:
    """The public name: a model compiled for ``study``'s structure that :func:`bayescpec.fit` reuses for
    every study of that structure (``fit(other_study, model=compiled)``), whatever its evidence or
    prior set."""
    return compiled_model(study, sampler)


def clear_compiled_models() -> None:
    """Forget every compiled model of this process (they are loaded or rebuilt when next asked for)."""
    from .native import clear_native

    _COMPILED.clear()
    _TWINS.clear()
    _FINGERPRINTS.clear()
    clear_native()


def choose_backend(sampler: str, *, fits: int = 1) -> str:
    """``auto``: nutpie on the native log density, for one fit or many (its compiled form is on disk
    after the first fit of a framework on the machine); a named backend is taken as given. ``fits`` is
    accepted for callers that know how many fits follow; it no longer changes the choice."""
    return "nutpie" if sampler == "auto" else sampler


def warm_cache(study: Study, sampler: str = "auto") -> None:
    """Before many fits of ``study``'s framework go to worker processes: get its compiled model into this
    process (compiling it into the disk cache if it is not there yet), so that every worker loads it
    instead of each compiling it at once."""
    backend = choose_backend(sampler)
    if backend == "nutpie":
        compiled_model(study, backend)
