"""bayescpec: Bayesian evidence updating about development-corridor conversion.

Data flow: files -> :func:`load_study` (validated, frozen) -> :func:`build_model` ->
:func:`fit` (samples; returns an ``xarray.DataTree``) -> tables (:func:`channel_table` ...),
reports (:func:`export_tables`), figures (:func:`plot_forest` ...), the rerun workflow
(:func:`update_evidence`, :func:`diff`, :func:`evidence_trajectory`) and the evidence analytics
(:func:`explain`, :func:`value_of_information`, :func:`robustness`, :func:`whatif`) and model
criticism (:func:`check`).

Names are imported on first use, so that ``import bayescpec`` and ``bayescpec --help`` do not pay
for PyMC until a model is built or fitted.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (stage.module)
_EXPORTS: dict[str, str] = {
    # errors
    "BayescpecError": "errors", "InputError": "errors", "SpecError": "errors", "EvidenceError": "errors",
    "ResultMismatchError": "errors", "ConvergenceError": "errors",
    # files -> study -> model -> fit
    "load_study": "inputs.study", "Study": "inputs.study",
    "build_model": "engine.model", "compile_model": "engine.compiled", "CompiledModel": "engine.compiled",
    "fit": "engine.sampling", "ConvergenceWarning": "engine.sampling", "evidence_ledger": "engine.sampling",
    # tables
    "channel_table": "outputs.summary", "proposition_table": "outputs.summary", "constraint_table": "outputs.summary",
    "conversion_probability": "outputs.summary", "ipcc_likelihood": "outputs.summary",
    # results
    "save_result": "workflow.store", "load_result": "workflow.store", "check_inputs": "workflow.store",
    "write_table": "outputs.export", "read_table": "outputs.export",
    # publication outputs
    "export_tables": "outputs.export", "report_tables": "outputs.tables", "render_table": "outputs.export",
    "evidence_table": "outputs.tables", "constraint_effect_table": "outputs.tables",
    "plot_forest": "outputs.figures", "plot_prior_posterior": "outputs.figures",
    "plot_evidence_ladder": "outputs.figures", "plot_constraint_effects": "outputs.figures",
    "save_figures": "outputs.figures", "save_figure": "outputs.figures",
    "write_report": "outputs.report", "report_page": "outputs.page", "PageSection": "outputs.page",
    "compare_priors": "workflow.compare", "fit_prior_sets": "workflow.compare",
    "prior_comparison_table": "workflow.compare", "prior_comparison_propositions": "workflow.compare",
    "available_prior_sets": "workflow.compare",
    # what a prior set says (priors may be stated in the analyst's words: between, mass)
    "load_priors": "inputs.spec", "prior_table": "outputs.priors", "plot_priors": "outputs.priors",
    # rerunning as evidence arrives
    "append_evidence": "inputs.append", "AppendReport": "inputs.append", "plan_append": "inputs.append",
    "HypotheticalRowsError": "inputs.append",
    "update_evidence": "workflow.update", "update_result": "workflow.update", "UpdateOutcome": "workflow.update",
    "psis_update": "engine.fastpath", "PsisUpdate": "engine.fastpath",
    "save_vintage": "workflow.vintages", "load_vintage": "workflow.vintages", "list_vintages": "workflow.vintages",
    "find_vintage": "workflow.vintages",
    "history": "workflow.vintages", "diff": "workflow.vintages", "ResultDiff": "workflow.vintages",
    "as_of_study": "workflow.trajectory", "evidence_trajectory": "workflow.trajectory",
    "plot_trajectory": "outputs.figures",
    # calibration and many fits
    "calibrate": "workflow.calibrate", "CalibrationRun": "workflow.calibrate",
    "calibration_table": "outputs.calibration", "calibration_verdict": "outputs.calibration",
    "plot_calibration": "outputs.calibration", "simulate_evidence": "engine.simulate",
    "run_tasks": "workflow.executor",
    # a study of another corridor
    "init_study": "inputs.scaffold",
    # evidence analytics: why the posterior says what it says, what next, how fragile, what if
    "study_of": "analysis.base",
    "explain": "analysis.influence", "Explanation": "analysis.influence",
    "value_of_information": "analysis.value", "designs": "analysis.value",
    "robustness": "analysis.fragility", "Robustness": "analysis.fragility",
    "log_prior_density": "analysis.logprior",
    "whatif": "analysis.scenarios", "named_scenarios": "analysis.scenarios",
    "plot_waterfall": "analysis.figures", "plot_value_of_information": "analysis.figures",
    "plot_robustness": "analysis.figures", "plot_whatif": "analysis.figures",
    "analytics": "analysis.report", "write_outputs": "analysis.report", "analytics_sections": "analysis.report",
    "write_analytics_report": "analysis.report",
    # model criticism: predictive checks, prior-data conflict, overdispersion, LOO-PIT, Pareto k-hat
    "check": "analysis.criticism", "ModelCheck": "analysis.criticism", "check_outputs": "analysis.criticism_report",
    "plot_check": "analysis.criticism_report", "row_predictive": "engine.replicate",
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
