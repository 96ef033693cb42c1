"""bayescpec: Bayesian evidence updating about development-corridor conversion.

Data flow: files -> :func:`load_study` (validated, frozen) -> :func:`build_model` ->
:func:`fit` (samples; returns an ``xarray.DataTree``) -> tables (:func:`channel_table` ...),
reports (:func:`export_tables`), figures (:func:`plot_forest` ...), and the rerun workflow
(:func:`update_evidence`, :func:`diff`, :func:`evidence_trajectory`).

Names are imported on first use, so that ``import bayescpec`` and ``bayescpec --help`` do not pay
for PyMC until a model is built or fitted.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "BayescpecError": "errors", "InputError": "errors", "SpecError": "errors", "EvidenceError": "errors",
    "ResultMismatchError": "errors", "ConvergenceError": "errors",
    # files -> study -> model -> fit
    "load_study": "study", "Study": "study",
    "build_model": "model",
    "fit": "sampling", "ConvergenceWarning": "sampling", "evidence_ledger": "sampling",
    # tables
    "channel_table": "summary", "proposition_table": "summary", "constraint_table": "summary",
    "conversion_probability": "summary", "ipcc_likelihood": "summary",
    # results
    "save_result": "results", "load_result": "results", "check_inputs": "results",
    "write_table": "results", "read_table": "results",
    # publication outputs (issue 3)
    "export_tables": "report", "report_tables": "report", "render_table": "report",
    "evidence_table": "report", "constraint_effect_table": "report",
    "plot_forest": "figures", "plot_prior_posterior": "figures", "plot_evidence_ladder": "figures",
    "plot_constraint_effects": "figures", "save_figures": "figures",
    "compare_priors": "compare", "fit_prior_sets": "compare", "prior_comparison_table": "compare",
    "prior_comparison_propositions": "compare", "available_prior_sets": "compare",
    # rerunning as evidence arrives (issue 4)
    "append_evidence": "update", "update_evidence": "update", "update_result": "update",
    "AppendReport": "update", "UpdateOutcome": "update",
    "psis_update": "fastpath", "PsisUpdate": "fastpath",
    "save_vintage": "vintages", "load_vintage": "vintages", "list_vintages": "vintages",
    "history": "vintages", "diff": "vintages", "ResultDiff": "vintages",
    "as_of_study": "trajectory", "evidence_trajectory": "trajectory", "plot_trajectory": "trajectory",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bayescpec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
