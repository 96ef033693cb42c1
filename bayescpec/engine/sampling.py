"""Fitting: sample the posterior of a study with a compiled model, simulate its prior, and assemble one
DataTree.

The returned ``xarray.DataTree`` has the groups ``posterior`` (sampled parameters and every derived
quantity), ``prior`` (forward-simulated), ``sample_stats``, ``log_likelihood`` (``rows``: each
evidence row's unweighted log-likelihood, ``weight``: its tempering weight), ``evidence`` (the ledger
of rows used) and ``gaps``, and root attrs recording the package version, prior set, input files and
their SHA-256, as-of date, seed, sampler settings, the framework and the convergence gate.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import warnings

import pymc as pm
import xarray as xr

from .. import __version__
from ..errors import BayescpecError, ConvergenceError
from ..inputs.study import Study
from .aggregate import evidence_data
from .assemble import (
    LIKELIHOOD_VARIABLES,
    add_quantities,
    evidence_ledger,
    framework_attrs,
    gap_ledger,
    log_likelihood_group,
    posterior_draws,
    prior_group,
)
from .compiled import BACKENDS, CompiledModel, choose_backend, compiled_model
from .diagnostics import CONVERGENCE_RULES, REPORTED, check_convergence
from .limits import check_sampling_options
from .model import model_origin
from .structure import structure_of

__all__ = ["fit", "evidence_ledger", "ConvergenceWarning", "check_convergence", "CONVERGENCE_RULES",
           "DEFAULT_SEED", "posterior_draws", "ModelMismatchError", "SAMPLERS", "LIKELIHOOD_VARIABLES", "REPORTED"]

DEFAULT_SEED = 20260527
#: keep per-row log-likelihood in the result up to this many rows (draws x rows doubles)
POINTWISE_ROW_LIMIT = 20_000
#: target acceptance of the one automatic re-run after divergent transitions
RETRY_TARGET_ACCEPT = 0.97
#: the sampler choices: a backend, or ``auto`` (see engine.compiled.choose_backend)
SAMPLERS = ("auto", *BACKENDS)


class ConvergenceWarning(UserWarning):
    """The sampler's output failed a convergence check; the result says which."""


class ModelMismatchError(BayescpecError, ValueError):
    """A model passed to :func:`fit` was built for another framework, structure or prior set."""


def _engine(study: Study, model, sampler: str) -> CompiledModel:
    """The compiled model to sample ``study`` with: the one given (checked), or the process's own."""
    key = structure_of(study).key()
    if model is None:
        return compiled_model(study, choose_backend(sampler))
    if isinstance(model, CompiledModel):
        if model.key != key:
            raise ModelMismatchError("model: this compiled model was built for another framework structure "
                                     "(channels, stages, constraints, links, units, tiers or test types); "
                                     "compile one for this study with bayescpec.compile_model(study)")
        return model
    if isinstance(model, pm.Model):
        origin = model_origin(model)
        if origin is None:
            raise ModelMismatchError("model: not a model built by bayescpec.build_model; pass the model that "
                                     "build_model(study) returns, or none")
        problems = []
        if origin["key"] != key or origin["framework"] != study.hashes.get("framework"):
            problems.append("it was built for another framework (or another set of units)")
        if origin["prior_set"] != study.prior_set or origin["priors"] != study.hashes.get("priors"):
            problems.append(f"it was built for prior set {origin['prior_set']!r}, this study uses "
                            f"{study.prior_set!r}")
        if problems:
            raise ModelMismatchError("model: " + "; ".join(problems) + "; build the model from this study: "
                                     "bayescpec.build_model(study)")
        return CompiledModel(key, "pymc", model, 0.0)
    raise ModelMismatchError(f"model: expected a model from bayescpec.build_model or compile_model; found "
                             f"{type(model).__name__}")


def _sample(engine: CompiledModel, study: Study, *, accept: float, **kwargs) -> xr.DataTree:
    tree = engine.sample(study, target_accept=accept, **kwargs)
    keep = {name: tree[name].to_dataset() for name in ("posterior", "sample_stats") if name in tree.children}
    return xr.DataTree.from_dict(keep)


def fit(
    study: Study,
    *,
    model: pm.Model | CompiledModel | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = DEFAULT_SEED,
    sampler: str = "auto",
    target_accept: float = 0.9,
    pointwise: bool | None = None,
    progressbar: bool = False,
    strict: bool = False,
    retry_divergent: bool = True,
    cores: int | None = None,
) -> xr.DataTree:
    """Sample the posterior of ``study`` (and simulate its prior) and return an ArviZ ``DataTree``.

    ``sampler`` is ``pymc`` (PyMC's NUTS), ``nutpie`` (nutpie's NUTS; its compilation is paid once per
    process) or ``auto`` (nutpie when a nutpie model is already compiled in this process, else PyMC's).
    The compiled model of the study's structure is reused by every later fit in the process (new
    evidence and prior sets are data). ``model`` may be a model from :func:`bayescpec.build_model`
    for this study (its framework and prior set, else :class:`ModelMismatchError`) or a compiled model
    from :func:`bayescpec.compile_model`. ``pointwise`` keeps the per-row log-likelihood (default: up
    to 20 000 rows). The convergence gate (``engine.diagnostics``) is recorded in the attrs; a failure
    emits a :class:`ConvergenceWarning`, or raises with ``strict=True``. After divergent transitions
    (and ``retry_divergent``) the posterior is sampled once more at ``target_accept=0.97``, same seed;
    ``divergence_retry`` in the attrs and every table footnote say so.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; found {sampler!r}")
    check_sampling_options(draws=draws, tune=tune, chains=chains, seed=seed)
    data = evidence_data(study)
    structure = structure_of(study)
    engine = _engine(study, model, sampler)
    started = time.perf_counter()
    compiled_here = engine.fits == 0  # this fit pays the compilation
    options = dict(draws=draws, tune=tune, chains=chains, seed=seed, progressbar=progressbar, cores=cores)
    result = _sample(engine, study, accept=target_accept, **options)
    retried_from = None
    diverging = result["sample_stats"].to_dataset().get("diverging")
    if retry_divergent and diverging is not None and int(diverging.sum()) and target_accept < RETRY_TARGET_ACCEPT:
        # divergences mean the step size was too large for some region of the posterior (here: a
        # diagnosticity near 0 or 1 under strong evidence); a smaller step usually removes them
        retried_from = (target_accept, int(diverging.sum()))
        target_accept = RETRY_TARGET_ACCEPT
        result = _sample(engine, study, accept=target_accept, **options)
    result["posterior"] = add_quantities(result["posterior"].to_dataset(), structure, study.framework)
    result["prior"] = prior_group(structure, study, draws * chains, seed + 1)
    sampling_seconds = time.perf_counter() - started
    if pointwise is None:
        pointwise = data.n_rows <= POINTWISE_ROW_LIMIT
    if pointwise and data.n_rows:
        result["log_likelihood"] = log_likelihood_group(result, data)
    result["evidence"] = evidence_ledger(study, data)
    result["gaps"] = gap_ledger(study)
    checks = check_convergence(result)
    result.attrs.update({
        "bayescpec_version": __version__,
        "prior_set": study.prior_set,
        "input_files": json.dumps(study.files),
        "input_sha256": json.dumps(study.hashes),
        "as_of": study.as_of.isoformat(),
        "evidence_rows": data.n_rows,
        "data_gaps": int((study.evidence["kind"] == "gap").sum()) if len(study.evidence) else 0,
        "excluded_after_as_of": study.excluded_after_as_of,
        "seed": seed,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "sampler": engine.backend,
        "target_accept": target_accept,
        "divergence_retry": (f"{retried_from[1]} divergences at target_accept {retried_from[0]}; "
                             f"re-sampled at {target_accept}") if retried_from else "",
        "sampling_seconds": round(sampling_seconds, 3),
        "compile_seconds": round(engine.compile_seconds, 3) if compiled_here else 0.0,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "framework": json.dumps(framework_attrs(study)),
        # priors the prior set gave as statements ("90% in [0.2, 0.6]"), each with its solved parameters
        "prior_statements": json.dumps(study.priors.statements()),
        "package_tempering": "each row weighs 1/(rows in its package)",
        **checks,
    })
    if not checks["converged"]:
        message = f"convergence check failed: {checks['convergence_failures']}"
        if strict:
            raise ConvergenceError(message)
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    return result
