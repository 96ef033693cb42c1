"""Golden tables of the shipped data, compared within their Monte Carlo error.

Each file in ``tests/golden/`` holds a report table of a *reference* fit of the shipped data as of
2026-06-30 (8 chains x 5000 draws) and, beside every Monte Carlo number, its Monte Carlo standard
error (column ``<name> mcse``). The test fits the same data with fewer draws (``conftest.GOLDEN_FIT``)
and accepts a number when it lies within 4 x the MCSE of the difference,
``4 * sqrt(mcse_test**2 + mcse_golden**2)``: about one false alarm in 16 000 comparisons, on any
machine, whatever its floating-point paths. The same test checks its own power: every probability
it compares must have a tolerance below 0.03, so a real change of 0.03 fails it. Numbers that do not
depend on the random stream (row counts, package weights, identifiers, labels) are compared exactly.

The MCSEs are computed here from the draws with ArviZ, not by the code that makes the tables.
See tests/golden/README.md for when (and how) the files may change.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayescpec.outputs import tables as tb
from bayescpec.outputs.summary import IPCC_SCALE, framework_info

from conftest import EVIDENCE, FRAMEWORK, GOLDEN_AS_OF

GOLDEN = Path(__file__).resolve().parent / "golden"
#: the reference fit the golden files were made with (regenerate: see tests/golden/README.md)
REFERENCE_FIT = {"draws": 5000, "tune": 1000, "chains": 8, "seed": 20260527}
THRESHOLD, LABEL = 0.5, "90% ETI"
#: how many MCSEs of the difference a number may be off
Z = 4.0
#: the power requirement: a probability must be compared with a tolerance below this
POWER = 0.03
#: columns holding probabilities (the power requirement applies to them)
PROBABILITY_COLUMNS = {"prior_p_converting", "p_converting", "prior_probability", "posterior_probability",
                       "p_binding", "p_reduces", "p_material", "p_loading_positive", "prior_pass", "posterior_pass",
                       "p_reach", "prior_break_first", "break_first", "prior_p_above", "p_above"}
#: numbers that do not depend on the random stream: compared exactly (to the stored rounding)
EXACT_COLUMNS = {"rows_potential", "rows_mechanism", "rows_outcome", "rows_context", "weight", "rows", "gaps"}
GOLDEN_COLUMNS = {  # what each golden keeps (None: every column but the label)
    "channels": ["channel", "prior_mean", "posterior_mean", "posterior_sd", "90% ETI lower", "90% ETI upper",
                 "prior_p_converting", "p_converting", "likelihood", "rows_potential", "rows_mechanism",
                 "rows_outcome"],
    "propositions": ["proposition", "prior_probability", "posterior_probability", "change", "likelihood"],
    "stages": ["channel", "stage", "prior_pass", "posterior_pass", "reach_mean", "90% ETI lower", "90% ETI upper",
               "p_reach", "prior_break_first", "break_first", "rows", "gaps", "weakest"],
    "dimensions": ["dimension", "measures", "prior_mean", "posterior_mean", "posterior_sd", "90% ETI lower",
                   "90% ETI upper", "prior_p_above", "p_above"],
    "constraints": None,
    "constraint-correlations": None,
    "constraint-effects": None,
    "units": None,
    "evidence": ["evidence", "tier", "target", "stage", "source", "weight", "loglik_mean"],
    "gaps": ["gap", "target", "stage", "indicator", "tier", "observed", "source"],
}
STORED_DIGITS = 6


# ---------------------------------------------------------------------------------------------
# Monte Carlo standard errors, from the draws
# ---------------------------------------------------------------------------------------------

def _mcse(draws: xr.DataArray, method: str, prob: float | None = None) -> np.ndarray:
    """MCSE of a statistic of ``draws`` (dims chain, draw, ...) by ArviZ, floored at the Monte Carlo
    resolution 3/N (an indicator that is 0 or 1 in every draw still has an uncertain mean)."""
    kwargs = {"prob": prob} if prob is not None else {}
    value = az.mcse(draws.astype(float), method=method, **kwargs)
    n = draws.sizes["chain"] * draws.sizes["draw"]
    return np.fmax(np.nan_to_num(np.asarray(value, dtype=float), nan=0.0), 3.0 / n)


def _summary_errors(post: xr.DataArray, prior: xr.DataArray | None, *, p_name: str, threshold: float,
                    mean="posterior_mean", sd="posterior_sd", prior_mean="prior_mean",
                    prior_p: str | None = None) -> dict[str, np.ndarray]:
    errors = {
        mean: _mcse(post, "mean"),
        sd: _mcse(post, "sd"),
        f"{LABEL} lower": _mcse(post, "quantile", 0.05),
        f"{LABEL} upper": _mcse(post, "quantile", 0.95),
        p_name: _mcse(post > threshold, "mean"),
    }
    if prior is not None:
        errors[prior_mean] = _mcse(prior, "mean")
        if prior_p:
            errors[prior_p] = _mcse(prior > threshold, "mean")
    return errors


def monte_carlo_errors(result: xr.DataTree, name: str, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The MCSE of every Monte Carlo number of ``table`` (a report table of ``result``), row-aligned."""
    fw = framework_info(result)
    post, prior = result["posterior"].to_dataset(), result["prior"].to_dataset()
    if name == "channels":
        return _summary_errors(post["theta"].sel(channel=list(table["channel"])),
                               prior["theta"].sel(channel=list(table["channel"])),
                               p_name="p_converting", prior_p="prior_p_converting", threshold=THRESHOLD)
    if name == "constraints":
        k = list(table["constraint"])
        return _summary_errors(post["severity"].sel(constraint=k), prior["severity"].sel(constraint=k),
                               p_name="p_binding", threshold=0.0)
    if name == "constraint-effects":
        links = [f"{c}|{k}" for c, k in zip(table["channel"], table["constraint"])]
        reduction = tb.link_reductions(result, group="posterior").sel(link=links)
        errors = _summary_errors(reduction, tb.link_reductions(result, group="prior").sel(link=links),
                                 p_name="p_reduces", threshold=0.0, mean="reduction_mean", sd="reduction_sd",
                                 prior_mean="prior_reduction_mean")
        errors["loading_mean"] = _mcse(post["loading"].sel(link=links), "mean")
        errors["p_loading_positive"] = _mcse(post["loading"].sel(link=links) > 0, "mean")
        delta = float(fw.get("materiality", 0.05))
        errors["p_material"] = _mcse(reduction > delta, "mean")
        return errors
    if name == "propositions":
        from bayescpec.outputs.summary import proposition_holds

        queries = {p["id"]: p["query"] for p in fw["propositions"]}
        queries.update({f"{p['id']}/{part['id']}": part["query"] for p in fw["propositions"] for part in p.get("parts", [])})

        def indicator(group: str, proposition: str) -> xr.DataArray:  # the shipped propositions are unconditional
            holds, condition = proposition_holds(result, queries[proposition], group=group, threshold=THRESHOLD)
            assert bool(condition.all())
            return holds

        post_err = np.array([_mcse(indicator("posterior", p), "mean") for p in table["proposition"]])
        prior_err = np.array([_mcse(indicator("prior", p), "mean") for p in table["proposition"]])
        return {"posterior_probability": post_err, "prior_probability": prior_err,
                "change": np.hypot(post_err, prior_err)}
    if name == "evidence":
        rows = result["log_likelihood"]["rows"].sel(evidence=list(table["evidence"]))
        return {"loglik_mean": _mcse(rows, "mean")}
    if name == "stages":
        from bayescpec.outputs.chain import break_first

        def at(da):  # the table's (channel, stage) rows
            return xr.concat([da.sel(channel=c, stage=st, drop=True) for c, st in zip(table["channel"], table["stage"])],
                             "row", coords="minimal")

        reach = at(post["reach"])
        return {"prior_pass": _mcse(at(prior["stage_probability"]), "mean"),
                "posterior_pass": _mcse(at(post["stage_probability"]), "mean"),
                "reach_mean": _mcse(reach, "mean"), f"{LABEL} lower": _mcse(reach, "quantile", 0.05),
                f"{LABEL} upper": _mcse(reach, "quantile", 0.95), "p_reach": _mcse(reach > THRESHOLD, "mean"),
                "prior_break_first": _mcse(at(break_first(result, group="prior")), "mean"),
                "break_first": _mcse(at(break_first(result)), "mean")}
    if name == "dimensions":
        def stack(group):
            return xr.concat([group["nqpf_dimension"].sel(dimension=d, drop=True) if d != "nqpf" else group["nqpf"]
                              for d in table["dimension"]], "row", coords="minimal")
        errors = _summary_errors(stack(post), stack(prior), p_name="p_above", prior_p="prior_p_above",
                                 threshold=THRESHOLD)
        return errors
    if name == "constraint-correlations":
        # the correlation's standard error, sqrt((1 - r^2)^2 / n_eff), with n_eff the smaller ESS of the pair
        errors = {}
        for column, group in (("prior_correlation", prior), ("posterior_correlation", post)):
            ess = az.ess(group["severity"], method="bulk")
            n_eff = np.array([min(float(ess.sel(constraint=a)), float(ess.sel(constraint=b)))
                              for a, b in zip(table["constraint_a"], table["constraint_b"])])
            errors[column] = np.sqrt((1 - table[column].to_numpy() ** 2) ** 2 / n_eff)
        return errors
    if name in ("units", "gaps"):
        return {}
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Golden frames and the comparison
# ---------------------------------------------------------------------------------------------

def golden_frame(result: xr.DataTree, name: str) -> pd.DataFrame:
    """The table kept in a golden file: its columns, and ``<column> mcse`` beside each Monte Carlo one."""
    table = tb.report_tables(result, threshold=THRESHOLD, ci_kind="eti", ci_prob=0.90)[name]
    keep = GOLDEN_COLUMNS[name] or [c for c in table.columns if c != "label"]
    if name == "constraint-correlations":  # the table orders pairs by a Monte Carlo number; the golden by name
        table = table.sort_values(["constraint_a", "constraint_b"]).reset_index(drop=True)
    frame = table[keep].reset_index(drop=True).copy()
    for column, error in monte_carlo_errors(result, name, table).items():
        if column in frame.columns:
            frame[f"{column} mcse"] = np.asarray(error, dtype=float)
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round(STORED_DIGITS)
    return frame


def _near_a_boundary(p: float, tolerance: float) -> bool:
    return any(abs(p - edge) <= tolerance for edge, _ in IPCC_SCALE if edge > 0)


def compare(table: pd.DataFrame, golden: pd.DataFrame, *, name: str) -> list[str]:
    """Every disagreement between ``table`` (a :func:`golden_frame` of a new fit) and ``golden``."""
    problems = []
    values = [c for c in golden.columns if not c.endswith(" mcse")]
    if list(table.columns) != list(golden.columns):
        return [f"{name}: columns {list(table.columns)} != golden {list(golden.columns)}"]
    if len(table) != len(golden):
        return [f"{name}: {len(table)} rows != golden {len(golden)}"]
    tolerances = {}
    for column in values:
        if f"{column} mcse" in golden.columns:
            tolerances[column] = Z * np.hypot(table[f"{column} mcse"].to_numpy(float),
                                              golden[f"{column} mcse"].to_numpy(float)) + 0.5 * 10.0 ** -STORED_DIGITS
    for column in values:
        new, old = table[column], golden[column]
        if column in tolerances:
            off = np.abs(new.to_numpy(float) - old.to_numpy(float)) > tolerances[column]
            for i in np.flatnonzero(off):
                problems.append(f"{name}.{column} row {i}: {new.iloc[i]:.4f} vs golden {old.iloc[i]:.4f} "
                                f"(tolerance {tolerances[column][i]:.4f} = {Z:g} MCSE of the difference)")
        elif column in EXACT_COLUMNS:
            if not np.allclose(new.to_numpy(float), old.to_numpy(float), rtol=0, atol=10.0 ** -STORED_DIGITS):
                problems.append(f"{name}.{column}: {list(new)} != golden {list(old)} (not a Monte Carlo number)")
        elif column == "likelihood":
            prob = "p_converting" if name == "channels" else "posterior_probability"
            for i, (word, gold_word) in enumerate(zip(new, old)):
                p_new, p_old = table[prob].iloc[i], golden[prob].iloc[i]
                if word != gold_word and not (_near_a_boundary(p_new, tolerances[prob][i])
                                              or _near_a_boundary(p_old, tolerances[prob][i])):
                    problems.append(f"{name}: IPCC term '{word}' (P={p_new:.3f}) != golden '{gold_word}' "
                                    f"(P={p_old:.3f}), neither within Monte Carlo error of a boundary")
        elif column == "weakest":
            # the weakest stage of a channel may differ only where its P(breaks first) ties another's
            for i in np.flatnonzero(new.astype(bool).to_numpy() != old.astype(bool).to_numpy()):
                channel = table["channel"].iloc[i]
                mine = table["channel"] == channel
                top = np.sort(golden.loc[mine, "break_first"].to_numpy())[-2:]
                if abs(top[1] - top[0]) > 2 * tolerances["break_first"][mine].max():
                    problems.append(f"{name}: the weakest stage of {channel} moved although no tie explains it")
        elif pd.api.types.is_numeric_dtype(old) and not pd.api.types.is_bool_dtype(old):
            problems.append(f"{name}.{column}: a number with neither an MCSE nor an exact rule")
        elif list(new.fillna("").astype(str)) != list(old.fillna("").astype(str)):
            problems.append(f"{name}.{column}: {list(new)} != golden {list(old)}")
    for column in PROBABILITY_COLUMNS & set(tolerances):
        worst = float(np.max(tolerances[column]))
        if worst >= POWER:
            problems.append(f"{name}.{column}: tolerance {worst:.4f} >= {POWER}: a real change of {POWER} could pass; "
                            f"fit with more draws (conftest.GOLDEN_FIT)")
    return problems


HINT = ("Golden tables change only when the mathematics changes (model, likelihood, aggregation, tempering, table "
        "definitions) or the shipped evidence up to 2026-06-30 or the baseline prior set does; then regenerate "
        "deliberately (tests/golden/README.md) and say why in the commit.")


@pytest.fixture(scope="module")
def reference_result():
    from bayescpec import fit, load_study

    study = load_study(framework=FRAMEWORK, priors="baseline", evidence=EVIDENCE, as_of=GOLDEN_AS_OF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(study, **REFERENCE_FIT)


@pytest.mark.parametrize("name", tb.TABLES)
def test_golden_tables_of_the_shipped_data(shipped_result, request, name):
    path = GOLDEN / f"{name}.csv"
    if os.environ.get("BAYESCPEC_REGEN_GOLDEN") == "1":
        frame = golden_frame(request.getfixturevalue("reference_result"), name)
        frame.to_csv(path, index=False, lineterminator="\n")
        pytest.skip(f"regenerated {path.name} from the reference fit {REFERENCE_FIT}")
    assert path.exists(), f"{path} missing: regenerate (tests/golden/README.md)"
    golden = pd.read_csv(path, keep_default_na=False, na_values=[""])
    problems = compare(golden_frame(shipped_result, name), golden, name=name)
    assert not problems, "\n".join(problems + [HINT])


def test_the_comparison_fails_on_a_real_change_of_003(shipped_result):
    """The golden test is not vacuous: moving any golden probability by 0.03 is reported."""
    for name in ("channels", "propositions", "stages", "dimensions", "constraints", "constraint-effects"):
        golden = pd.read_csv(GOLDEN / f"{name}.csv", keep_default_na=False, na_values=[""])
        table = golden_frame(shipped_result, name)
        for column in PROBABILITY_COLUMNS & set(golden.columns):
            for shift in (POWER, -POWER):
                moved = golden.copy()
                moved[column] = moved[column] + shift
                problems = compare(table, moved, name=name)
                assert any(p.startswith(f"{name}.{column} row") for p in problems), (name, column, shift)


def test_theta_is_the_chain_completing_and_base_theta_its_constraint_free_value(shipped_result):
    """The identities the tables rely on: theta = reach at the last stage = the product of the stage
    probabilities plus what the enclave route rescues (never less than that product); constraint_effect =
    base_theta - theta."""
    post = shipped_result["posterior"].to_dataset()
    embedded = post["stage_probability"].prod("stage").values
    assert np.all(post["theta"].values >= embedded * (1 - 1e-12))
    rescued = post["route_reach"].values * post["stage_probability"].sel(stage="welfare").values
    np.testing.assert_allclose(embedded + rescued, post["theta"].values, rtol=1e-9)
    np.testing.assert_allclose(post["reach"].isel(stage=-1).values, post["theta"].values, rtol=1e-12)
    np.testing.assert_allclose((post["base_theta"] - post["theta"]).values, post["constraint_effect"].values)
