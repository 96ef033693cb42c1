"""Prior sensitivity: the same evidence fitted under every prior set, tabulated side by side.

This is the one place in the report stage that fits (``load_study`` + ``fit``); the tables
themselves (:func:`prior_comparison_table`, :func:`prior_comparison_propositions`) are pure
functions of the fitted results, so they can be built from results saved earlier too.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..outputs.summary import (
    CI_KIND,
    CI_PROB,
    THRESHOLD,
    channel_table,
    check_options,
    interval_label,
    proposition_table,
    provenance,
    word_change_is_real,
)

__all__ = [
    "SHIPPED_PRIOR_SETS",
    "available_prior_sets",
    "fit_prior_sets",
    "prior_comparison_table",
    "prior_comparison_propositions",
    "compare_priors",
]

#: the shipped prior sets, in the order the comparison shows them
SHIPPED_PRIOR_SETS = ("baseline", "skeptical", "optimistic", "flat")


def _framework_path(framework: str | Path | None) -> Path:
    from ..inputs.study import shipped_path

    return Path(framework) if framework is not None else shipped_path("priors", "framework.toml")


def available_prior_sets(framework: str | Path | None = None) -> list[str]:
    """Names of the prior sets beside the framework file (every ``*.toml`` there that is not a
    framework): the shipped ones first in their usual order, then any others alphabetically."""
    fw_path = _framework_path(framework)
    names = []
    for path in sorted(fw_path.parent.glob("*.toml")):
        if path.resolve() == fw_path.resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(line.strip() == "[framework]" for line in text.splitlines()):
            continue
        names.append(path.stem)
    shipped = [n for n in SHIPPED_PRIOR_SETS if n in names]
    return shipped + [n for n in names if n not in shipped]


def fit_prior_sets(
    *,
    prior_sets: Sequence[str | Path] | None = None,
    framework: str | Path | None = None,
    evidence: str | Path | None = None,
    sources: str | Path | None = None,
    as_of=None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    sampler: str = "auto",
    on_fit: Callable[[str, xr.DataTree], None] | None = None,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> dict[str, xr.DataTree]:
    """Fit the same evidence under each prior set (default: :func:`available_prior_sets`), with the
    same seed and sampler settings. Every study is loaded and checked before anything is sampled;
    problems in any prior set are reported together. Returns results keyed by prior-set name. The
    fits run where :func:`bayescpec.workflow.executor.run_tasks` says (default: in this process for
    up to 8 prior sets, where one compiled model serves them all)."""
    from ..engine.sampling import DEFAULT_SEED
    from ..inputs.study import load_study

    seed = DEFAULT_SEED if seed is None else seed
    names = list(prior_sets) if prior_sets else available_prior_sets(framework)
    if not names:
        raise InputError(f"--priors: no prior sets found beside {_framework_path(framework)}; give at least one")
    studies, problems = {}, []
    for name in names:
        try:
            study = load_study(framework=framework, priors=name, evidence=evidence, sources=sources, as_of=as_of)
        except InputError as exc:
            problems += exc.problems
            continue
        if study.prior_set in studies:
            raise InputError(f"--priors: two prior sets are both named {study.prior_set!r} ({name!r} and an "
                             "earlier one); give each prior set once")
        studies[study.prior_set] = study
    if problems:
        raise InputError(problems)
    from ..engine.compiled import choose_backend

    from .executor import run_tasks

    backend = choose_backend(sampler, fits=len(studies))  # one compiled model serves every prior set
    options = dict(draws=draws, tune=tune, chains=chains, seed=seed, sampler=backend)
    names = list(studies)
    fitted = run_tasks(_fit_quietly, [(studies[name], options) for name in names], executor=executor,
                       workers=workers, scheduler=scheduler,
                       on_result=None if on_fit is None else (lambda i, result: on_fit(names[i], result)))
    return dict(zip(names, fitted))


def _fit_quietly(task: tuple) -> xr.DataTree:
    """One fit, its convergence warning left to the result's attrs (a module-level function of a
    picklable task, to run in any worker)."""
    from ..engine.sampling import ConvergenceWarning, fit

    study, options = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(study, **options)


def _check_same_evidence(results: Mapping[str, xr.DataTree]) -> None:
    digests = {name: json.loads(r.attrs.get("input_sha256", "{}")).get("evidence") for name, r in results.items()}
    as_of = {name: r.attrs.get("as_of") for name, r in results.items()}
    if len(set(digests.values())) > 1 or len(set(as_of.values())) > 1:
        detail = "; ".join(f"{n}: evidence {str(digests[n])[:12]}, as of {as_of[n]}" for n in results)
        raise InputError(f"results: a prior comparison needs the same evidence in every fit; found {detail}")


def _combined_provenance(results: Mapping[str, xr.DataTree]) -> dict:
    provs = {name: provenance(r) for name, r in results.items()}
    first = next(iter(provs.values()))
    combined = {key: value for key, value in first.items()
                if key not in ("prior_set", "sha256_priors", "prior_statements")}
    stated = [f"{name}: {p['prior_statements']}" for name, p in provs.items() if p.get("prior_statements")]
    if stated:
        combined["prior_statements"] = " | ".join(stated)
    combined.update({
        "prior_set": ", ".join(provs),
        "max_rhat": max(p["max_rhat"] for p in provs.values()),
        "min_ess_bulk": min(p["min_ess_bulk"] for p in provs.values()),
        "divergences": int(sum(int(p["divergences"] or 0) for p in provs.values())),
        "converged": all(p["converged"] for p in provs.values()),
        "convergence_failures": "; ".join(f"{n}: {p.get('convergence_failures')}" for n, p in provs.items()
                                          if not p["converged"]),
        "sha256_priors": ", ".join(f"{n} {p.get('sha256_priors', '?')}" for n, p in provs.items()),
        "per_prior_set": [f"{n} R-hat {p['max_rhat']:.3f}, ESS {p['min_ess_bulk']}, {p['divergences']} divergences"
                          for n, p in provs.items()],
    })
    return combined


def _real_changes(tables: Mapping[str, pd.DataFrame], p: str, mcse: str) -> list[bool]:
    """Per row: whether the IPCC word differs between two prior sets by more than Monte Carlo noise."""
    names = list(tables)
    flags = []
    for i in range(len(next(iter(tables.values())))):
        values = [(tables[n][p].iloc[i], tables[n][mcse].iloc[i] if mcse in tables[n] else np.nan) for n in names]
        flags.append(any(word_change_is_real(pa, ma, pb, mb) for k, (pa, ma) in enumerate(values)
                         for pb, mb in values[k + 1:]))
    return flags


def prior_comparison_table(
    results: Mapping[str, xr.DataTree],
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """One row per channel; for each prior set the posterior mean of theta, P(theta > threshold),
    the interval and the IPCC term; ``likelihood_changes`` flags channels whose term differs between
    prior sets and ``p_range`` is the spread of P(converting) across them."""
    check_options(ci_kind, ci_prob, threshold)
    if not results:
        raise InputError("results: no fitted results to compare")
    _check_same_evidence(results)
    label = interval_label(ci_kind, ci_prob)
    tables = {name: channel_table(r, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob) for name, r in results.items()}
    first = next(iter(tables.values()))
    out = first[["channel", "label"]].copy()
    for name, table in tables.items():
        if list(table["channel"]) != list(first["channel"]):
            raise InputError(f"results: prior set {name!r} has channels {list(table['channel'])}, "
                             f"the others {list(first['channel'])}")
        out[f"{name} posterior_mean"] = table["posterior_mean"].values
        out[f"{name} p_converting"] = table["p_converting"].values
        out[f"{name} {label} lower"] = table[f"{label} lower"].values
        out[f"{name} {label} upper"] = table[f"{label} upper"].values
        out[f"{name} likelihood"] = table["likelihood"].values
    out["likelihood_changes"] = _real_changes(tables, "p_converting", "p_converting_mcse")
    probs = out[[f"{n} p_converting" for n in tables]]
    out["p_range"] = (probs.max(axis=1) - probs.min(axis=1)).values
    out.attrs = {"interval": label, "threshold": threshold, "prior_sets": list(tables),
                 "title": f"Prior sensitivity: P(converting) = P(theta > {threshold:g}) per channel under each prior set",
                 "provenance": _combined_provenance(results)}
    return out


def prior_comparison_propositions(results: Mapping[str, xr.DataTree], *, threshold: float = THRESHOLD) -> pd.DataFrame:
    """One row per proposition; for each prior set the posterior probability and its IPCC term;
    ``likelihood_changes`` flags propositions whose term differs between prior sets."""
    check_options(CI_KIND, CI_PROB, threshold)
    if not results:
        raise InputError("results: no fitted results to compare")
    _check_same_evidence(results)
    tables = {name: proposition_table(r, threshold=threshold) for name, r in results.items()}
    first = next(iter(tables.values()))
    out = first[["proposition", "query"]].copy()
    for name, table in tables.items():
        out[f"{name} prior_probability"] = table["prior_probability"].values
        out[f"{name} posterior_probability"] = table["posterior_probability"].values
        out[f"{name} likelihood"] = table["likelihood"].values
    out["likelihood_changes"] = _real_changes(tables, "posterior_probability", "posterior_probability_mcse")
    out.attrs = {"threshold": threshold, "prior_sets": list(tables),
                 "title": f"Prior sensitivity of the propositions (tau = {threshold:g})",
                 "provenance": _combined_provenance(results)}
    return out


def compare_priors(
    *,
    prior_sets: Sequence[str | Path] | None = None,
    framework: str | Path | None = None,
    evidence: str | Path | None = None,
    sources: str | Path | None = None,
    as_of=None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    sampler: str = "auto",
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Fit the same evidence under every prior set (default: all beside the framework: baseline,
    skeptical, optimistic, flat and any the user added) and return :func:`prior_comparison_table`.
    ``executor``, ``workers`` and ``scheduler`` choose where the fits run (:func:`fit_prior_sets`)."""
    try:
        check_options(ci_kind, ci_prob, threshold)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    results = fit_prior_sets(prior_sets=prior_sets, framework=framework, evidence=evidence, sources=sources,
                             as_of=as_of, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                             executor=executor, workers=workers, scheduler=scheduler)
    return prior_comparison_table(results, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
