"""Compile once, fit many: one compiled model per framework structure serves every fit that only changes
the evidence or the prior set's hyper-parameters (both are data of the model, swapped in per fit).

Two NUTS backends, chosen per workload by measurement (bench/README.md):

* ``pymc`` -- PyMC's NUTS on PyTensor's C functions. PyTensor keeps the compiled C on disk, so a fresh
  process pays about 2 s to get the model ready; sampling runs in Python (about 80 us per leapfrog
  step on the shipped model). Best for a single fit in a fresh process (``bayescpec run``).
* ``nutpie`` -- nutpie's Rust NUTS on a Numba-compiled log-density (about 5-10x faster per step).
  Numba compiles the model's functions into a ``cfunc`` that uses dynamic globals, which Numba cannot
  cache on disk, so every process pays the compilation (about 20 s on the shipped model) once; after
  that every fit in the process swaps data in (``with_data``) and samples (about 1 s for 4 x 1000
  draws). Best for many fits in one process: prior-set comparisons, trajectories, calibration,
  the analytics' refits, sweeps.

``compiled_model(study, backend)`` returns the process's compiled model for the study's structure,
compiling it the first time it is asked for.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import xarray as xr

from ..inputs.study import Study
from .aggregate import evidence_data
from .model import build_model, prior_data
from .structure import structure_of

__all__ = ["BACKENDS", "CompiledModel", "compiled_model", "compile_model", "choose_backend", "clear_compiled_models"]

BACKENDS = ("pymc", "nutpie")
#: NUTS tuning steps per backend when the caller gives none: nutpie's adaptation settles faster
DEFAULT_TUNE = {"pymc": 1000, "nutpie": 1000}


@dataclass(eq=False)
class CompiledModel:
    """A model compiled for one framework structure (channels, stages, constraints, links, loops, units,
    tiers, test types, loading form), ready to sample any study of that structure."""

    key: tuple
    backend: str
    model: pm.Model
    compile_seconds: float
    fits: int = 0
    _nutpie: object = field(default=None, repr=False)

    def _arrays(self, study: Study) -> dict[str, np.ndarray]:
        arrays = {**evidence_data(study).data_arrays(), **prior_data(structure_of(study), study.priors)}
        return {name: np.asarray(values, dtype=self.model[name].dtype) for name, values in arrays.items()}

    def sample(self, study: Study, *, draws: int, tune: int, chains: int, seed: int, target_accept: float,
               progressbar: bool = False, cores: int | None = None) -> xr.DataTree:
        """Sample the posterior of ``study`` (which must have this model's structure)."""
        if structure_of(study).key() != self.key:
            raise ValueError("this compiled model was built for another framework structure")
        arrays = self._arrays(study)
        self.fits += 1
        if self.backend == "nutpie":
            import nutpie

            known = {var.name for var in self._nutpie.shared_var_keys}  # data the compiled graph uses
            compiled = self._nutpie.with_data(**{k: v for k, v in arrays.items() if k in known})
            return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                                 progress_bar=progressbar, target_accept=target_accept,
                                 cores=cores or min(chains, 2))
        with self.model:
            pm.set_data(arrays)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progressbar,
                             model=self.model, nuts_sampler="pymc", compute_convergence_checks=False,
                             cores=cores or 1, target_accept=target_accept)


_COMPILED: dict[tuple[str, tuple], CompiledModel] = {}


def compiled_model(study: Study, backend: str = "pymc") -> CompiledModel:
    """The compiled model of ``study``'s structure for ``backend``, compiled once per process."""
    if backend not in BACKENDS:
        raise ValueError(f"sampler must be one of {', '.join(BACKENDS)}; found {backend!r}")
    key = structure_of(study).key()
    found = _COMPILED.get((backend, key))
    if found is None:
        started = time.perf_counter()
        model = build_model(study)
        compiled = None
        if backend == "nutpie":
            import nutpie

            compiled = nutpie.compile_pymc_model(model)
        found = CompiledModel(key, backend, model, time.perf_counter() - started, _nutpie=compiled)
        _COMPILED[(backend, key)] = found
    return found


def compile_model(study: Study, *, sampler: str = "nutpie") -> CompiledModel:
    """The public name: a model compiled for ``study``'s structure that :func:`bayescpec.fit` reuses for
    every study of that structure (``fit(other_study, model=compiled)``), whatever its evidence or
    prior set."""
    return compiled_model(study, sampler)


def clear_compiled_models() -> None:
    """Forget every compiled model of this process (they are rebuilt when next asked for)."""
    _COMPILED.clear()


def choose_backend(sampler: str, *, fits: int = 1) -> str:
    """``auto``: nutpie when the process will run several fits (its compilation is paid once and each
    fit is fast), or when a nutpie model of the structure is already compiled; PyMC's sampler for a
    single fit (no Numba compilation to pay)."""
    if sampler != "auto":
        return sampler
    if fits > 1 or any(backend == "nutpie" for backend, _ in _COMPILED):
        return "nutpie"
    return "pymc"
