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
from .compiled import BACKENDS, CompiledModel, built_model, choose_backend, compiled_model
from .diagnostics import CONVERGENCE_RULES, REPORTED, check_convergence
from .limits import check_sampling_options
from .model import model_origin
from .structure import structure_of

__all__ = ["fit", "evidence_ledger", "ConvergenceWarning", "check_convergence", "CONVERGENCE_RULES",
           "DEFAULT_SEED", "DEFAULT_TUNE", "LONG_TUNE", "posterior_draws", "sample_posterior", "ModelMismatchError", "SAMPLERS",
           "LIKELIHOOD_VARIABLES", "REPORTED"]

DEFAULT_SEED = 20260527
#: keep per-row log-likelihood in the result up to this many rows (draws x rows doubles)
POINTWISE_ROW_LIMIT = 20_000
#: target acceptance of the one automatic re-run after divergent transitions
RETRY_TARGET_ACCEPT = 0.97
#: warm-up steps per chain when none is given, and the warm-up of the re-run when the gate fails after
#: it (bench/tune.py: the short warm-up passes the gate on the shipped study and the tests' studies)
DEFAULT_TUNE = 300
LONG_TUNE = 1000
#: the sampler choices: a backend, or ``auto`` (see engine.compiled.choose_backend)
SAMPLERS = ("auto", *BACKENDS)


class ConvergenceWarning(UserWarning):
    """The sampler's output failed a convergence check; the result says which."""


class ModelMismatchError(BayescpecError, ValueError):
    """A model passed to :func:`fit` was built for another framework, structure or prior set."""


def _engine(study: Study, model, sampler: str) -> tuple[CompiledModel, object]:
    """(the compiled model to sample ``study`` with: the one given (checked), or the process's own; the
    PyMC model to take the data from, None for the study's own)."""
    if model is None:
        return compiled_model(study, choose_backend(sampler)), None
    if isinstance(model, CompiledModel):
        if model.key != built_model(study).key:
            raise ModelMismatchError("model: this compiled model was built for another framework structure "
                                     "(channels, stages, constraints, links, units, tiers or test types); "
                                     "compile one for this study with bayescpec.compile_model(study)")
        return model, None
    import pymc as pm

    if isinstance(model, pm.Model):
        origin = model_origin(model)
        if origin is None:
            raise ModelMismatchError("model: not a model built by bayescpec.build_model; pass the model that "
                                     "build_model(study) returns, or none")
        problems = []
        if origin["key"] != structure_of(study).key() or origin["framework"] != study.hashes.get("framework"):
            problems.append("it was built for another framework (or another set of units)")
        if origin["prior_set"] != study.prior_set or origin["priors"] != study.hashes.get("priors"):
            problems.append(f"it was built for prior set {origin['prior_set']!r}, this study uses "
                            f"{study.prior_set!r}")
        if problems:
            raise ModelMismatchError("model: " + "; ".join(problems) + "; build the model from this study: "
                                     "bayescpec.build_model(study)")
        return compiled_model(study, choose_backend(sampler), model=model), model
    raise ModelMismatchError(f"model: expected a model from bayescpec.build_model or compile_model; found "
                             f"{type(model).__name__}")


def _sample(engine: CompiledModel, study: Study, *, accept: float, **kwargs) -> xr.DataTree:
    tree = engine.sample(study, target_accept=accept, **kwargs)
    keep = {name: tree[name].to_dataset() for name in ("posterior", "sample_stats") if name in tree.children}
    return xr.DataTree.from_dict(keep)


def _draw(engine: CompiledModel, study: Study, structure, *, tune: int, accept: float, retry_divergent: bool,
          options: dict, counterfactuals: bool = True) -> tuple[xr.DataTree, tuple | None, float]:
    """Sample the posterior (once more at RETRY_TARGET_ACCEPT after divergences), add the derived
    quantities (and the counterfactual ones the propositions read): (posterior and sample stats,
    (target_accept, divergences) of a divergence re-run or None, the target_accept of the draws kept)."""
    result = _sample(engine, study, accept=accept, tune=tune, **options)
    options = {name: value for name, value in options.items() if name != "meanwhile"}  # done once
    retried_from = None
    diverging = result["sample_stats"].to_dataset().get("diverging")
    if retry_divergent and diverging is not None and int(diverging.sum()) and accept < RETRY_TARGET_ACCEPT:
        # divergences mean the step size was too large for some region of the posterior (here: a
        # diagnosticity near 0 or 1 under strong evidence); a smaller step usually removes them
        retried_from = (accept, int(diverging.sum()))
        accept = RETRY_TARGET_ACCEPT
        result = _sample(engine, study, accept=accept, tune=tune, **options)
    result["posterior"] = add_quantities(result["posterior"].to_dataset(), structure,
                                         study.framework if counterfactuals else None)
    return result, retried_from, accept


def _retry_note(retried_from: tuple | None, accept: float) -> str:
    """The ``divergence_retry`` attr: what the divergence re-run did, or empty."""
    if not retried_from:
        return ""
    return f"{retried_from[1]} divergences at target_accept {retried_from[0]}; re-sampled at {accept}"


def sample_posterior(
    study: Study,
    *,
    draws: int = 1000,
    tune: int = DEFAULT_TUNE,
    chains: int = 4,
    seed: int = DEFAULT_SEED,
    sampler: str = "auto",
    target_accept: float = 0.9,
    cores: int | None = None,
) -> xr.DataTree:
    """The posterior of ``study`` alone, as :func:`fit` samples it (same draws for the same seed and
    ``tune``, the divergence re-run included): groups ``posterior`` (sampled parameters and derived
    quantities, without the propositions' counterfactual quantities) and ``sample_stats``; attrs the
    convergence gate, ``sampler``, ``seed``, ``tune`` and ``target_accept``. No prior group,
    log-likelihood or ledgers: for the many fits of a calibration, which read the posterior and the gate
    only (a third of a calibration fit's time went to what it does not read)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; found {sampler!r}")
    check_sampling_options(draws=draws, tune=tune, chains=chains, seed=seed)
    engine, _ = _engine(study, None, sampler)
    options = dict(draws=draws, chains=chains, seed=seed, progressbar=False, cores=cores, model=None)
    result, retried_from, accept = _draw(engine, study, structure_of(study), tune=tune, accept=target_accept,
                                         retry_divergent=True, options=options, counterfactuals=False)
    result.attrs.update({"sampler": engine.backend, "seed": seed, "tune": tune, "target_accept": accept,
                         "divergence_retry": _retry_note(retried_from, accept), **check_convergence(result)})
    return result


def fit(
    study: Study,
    *,
    model=None,
    draws: int = 1000,
    tune: int | None = None,
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

    ``sampler`` is ``nutpie`` (nutpie's NUTS on the model's native log density, compiled once per
    framework and kept on disk), ``pymc`` (PyMC's NUTS) or ``auto`` (nutpie). The compiled model of the
    study's graph is reused by every later fit, in this process or another (new evidence and prior sets
    are data). ``model`` may be a model from :func:`bayescpec.build_model` for this study (its framework
    and prior set, else :class:`ModelMismatchError`) or a compiled model from
    :func:`bayescpec.compile_model`. ``pointwise`` keeps the per-row log-likelihood (default: up to
    20 000 rows). ``cores``: chains sampled at once (default: as many as the machine has, up to
    ``chains``; the draws do not depend on it).

    ``tune`` warm-up steps per chain; by default :data:`DEFAULT_TUNE`, and when the convergence gate
    fails after that short warm-up the posterior is sampled again with :data:`LONG_TUNE` (same seed;
    ``tune_retry`` in the attrs says so). A ``tune`` given is used as given. The gate
    (``engine.diagnostics``) is recorded in the attrs; a failure emits a :class:`ConvergenceWarning`,
    or raises with ``strict=True``. After divergent transitions (and ``retry_divergent``) the posterior
    is sampled once more at ``target_accept=0.97``, same seed; ``divergence_retry`` in the attrs and
    every table footnote say so.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; found {sampler!r}")
    check_sampling_options(draws=draws, tune=tune, chains=chains, seed=seed)
    data = evidence_data(study)
    structure = structure_of(study)
    engine, data_model = _engine(study, model, sampler)
    started = time.perf_counter()
    compiled_here = engine.fits == 0  # this fit pays the compilation
    options = dict(draws=draws, chains=chains, seed=seed, progressbar=progressbar, cores=cores, model=data_model)
    used_tune = DEFAULT_TUNE if tune is None else tune
    prior: dict = {}

    def simulate_prior() -> None:  # the forward-simulated prior, made while the sampler's threads run
        prior["group"] = prior_group(structure, study, draws * chains, seed + 1)

    result, retried_from, accept = _draw(engine, study, structure, tune=used_tune, accept=target_accept,
                                         retry_divergent=retry_divergent,
                                         options={**options, "meanwhile": simulate_prior})
    checks = check_convergence(result)  # the gate reads only the posterior and the sampler's statistics
    tune_retry = ""
    if tune is None and used_tune < LONG_TUNE and not checks["converged"]:
        tune_retry = (f"the convergence checks failed after a warm-up of {used_tune} steps "
                      f"({checks['convergence_failures']}); re-sampled with {LONG_TUNE}")
        used_tune = LONG_TUNE
        result, retried_from, accept = _draw(engine, study, structure, tune=used_tune, accept=target_accept,
                                             retry_divergent=retry_divergent, options=options)
        checks = check_convergence(result)
    result["prior"] = prior["group"] if "group" in prior else prior_group(structure, study, draws * chains, seed + 1)
    sampling_seconds = time.perf_counter() - started
    if pointwise is None:
        pointwise = data.n_rows <= POINTWISE_ROW_LIMIT
    if pointwise and data.n_rows:
        result["log_likelihood"] = log_likelihood_group(result, data)
    result["evidence"] = evidence_ledger(study, data)
    result["gaps"] = gap_ledger(study)
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
        "tune": used_tune,
        "tune_retry": tune_retry,
        "chains": chains,
        "sampler": engine.backend,
        "target_accept": accept,
        "divergence_retry": _retry_note(retried_from, accept),
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
