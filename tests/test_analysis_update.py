"""Analyses of a result updated by PSIS reweighting (issue 20, finding 1): they work on the base draws the
result keeps, with the total log importance ratio (the update's plus their own), never on its resample.

The issue's reproduction: a count of 1 (or 2) of 10 for green, taken in by the fast path; ``explain`` on
the updated result then leaves that row out again. The total ratio of that leave-out is the update's ratio
minus itself, so P(θ_green > τ) without the row must be the base fit's, up to the float32 rounding of the
kept draws; the resample-based analysis reported 0.166 (issue) -- 0.24 here -- against a base of 0.27-0.28.
The slow test compares every analysis of an updated result with the same analysis of a refit.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import bayescpec as bc
from bayescpec.errors import BayescpecError

from conftest import fit_passing_the_gate
from test_fastpath import BASE, study_with

TAU = 0.5


def count_row(k: int) -> str:
    return (f"t-g1,2026-11-15,green,electricity_reliability,mechanism,count,,{k},10,,,,1,,hypothetical,"
            "HYPOTHETICAL")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    study = study_with(tmp_path_factory.mktemp("base"), [])
    return fit_passing_the_gate(study, seeds=(11, 12, 13), **BASE)


def updated(base, folder, k: int):
    study = study_with(folder, [count_row(k)])
    # 2 x 1 000 draws: the reweighting keeps fewer than 400 effective draws, so the rule is relaxed here
    attempt = bc.psis_update(base, study, min_ess=100)
    assert attempt.accepted, attempt.reason
    return attempt.result, study


@pytest.mark.parametrize("k", [1, 2])
def test_explain_on_an_updated_result_leaves_the_new_row_out_to_the_base_fit(base, tmp_path, k):
    result, study = updated(base, tmp_path / f"k{k}", k)
    theta_base = base["posterior"]["theta"].sel(channel="green").values.ravel()
    size = theta_base.size
    found = bc.explain(result, study, refit=False).rows
    row = found[(found["unit"] == "t-g1") & (found["quantity"] == "theta[green]")].iloc[0]
    # the total ratio is the update's minus itself: the base draws, equally weighted
    p_base = (theta_base > TAU).mean()
    assert abs(row["p_without"] - p_base) <= 1.0 / size + 1e-12, (row["p_without"], p_base, row["khat"])
    assert row["method"] == "psis" and row["ess"] == pytest.approx(size)
    assert row["mean_without"] == pytest.approx(theta_base.mean(), abs=1e-6)
    # "with" is the updated posterior: the base draws weighted by the update (the resample, within MC error)
    theta_new = result["posterior"]["theta"].sel(channel="green").values.ravel()
    ess = float(result.attrs["min_ess_bulk"])
    p_new = (theta_new > TAU).mean()
    assert abs(row["p_with"] - p_new) <= 4 * np.sqrt(2 * p_new * (1 - p_new) / ess)
    # a count of 1 or 2 of 10 is evidence against: a real shift, not noise. As a beta-binomial (the row's
    # units share an overdispersion) it moves P(theta > tau) by about 0.09 here; the Monte Carlo error of
    # a shift computed on the same draws is under 0.01
    assert row["shift_p"] < -0.04


def test_an_updated_result_keeps_its_base_draws_small_and_exact(base, tmp_path):
    from bayescpec.analysis.draws import analysis_draws
    from bayescpec.engine.fastpath import BASE_GROUP, base_draws, importance_log_ratios

    result, study = updated(base, tmp_path / "k2", 2)
    kept = result[BASE_GROUP].to_dataset()
    assert {"stage_logit", "loading", "severity_z", "loop_loading", "false_positive_tier"} <= set(kept.data_vars)
    assert "theta" not in kept and "reach" not in kept          # derived quantities are rebuilt, not stored
    assert all(kept[name].dtype == np.float32 for name in kept.data_vars)
    assert json.loads(kept.attrs["rows"]) == [str(i) for i in base["evidence"]["evidence"].values]
    posterior, log_ratio = base_draws(result, study)
    np.testing.assert_allclose(posterior["theta"].values, base["posterior"]["theta"].values, rtol=1e-5, atol=1e-6)
    expected, _ = importance_log_ratios(base, study)
    np.testing.assert_allclose(log_ratio, expected, rtol=1e-4, atol=1e-4)
    stored = sum(kept[name].nbytes for name in kept.data_vars)
    full = sum(base["posterior"][name].nbytes for name in base["posterior"].data_vars)
    assert stored < 0.25 * full
    path = bc.save_result(result, tmp_path / "updated.nc")
    again = bc.load_result(path)
    assert BASE_GROUP in again.children
    np.testing.assert_array_equal(analysis_draws(again, study, "test").log_ratio,
                                  analysis_draws(result, study, "test").log_ratio)


def test_every_analysis_runs_on_the_base_draws_of_an_updated_result(base, tmp_path):
    from bayescpec.analysis.draws import analysis_draws
    from bayescpec.engine.fastpath import BASE_GROUP

    result, study = updated(base, tmp_path / "k2", 2)
    current = analysis_draws(result, study, "test")
    assert current.update is not None and current.size == base["posterior"].sizes["draw"] * base["posterior"].sizes["chain"]
    p_weighted = current.mean(current.flat("theta") > TAU)
    p_resampled = (result["posterior"]["theta"].values.reshape(-1, 5) > TAU).mean(axis=0)
    assert np.all(np.abs(p_weighted - p_resampled) <= 4 * np.sqrt(2 * 0.25 / float(result.attrs["min_ess_bulk"])))
    robust = bc.robustness(result, study, max_clues=2).reviewer.set_index("channel")
    np.testing.assert_allclose(robust["p_converting"], p_weighted)
    table = bc.value_of_information(result, study, indicators=["electricity_reliability"], count_n=3)
    assert np.allclose(table["p_now"], p_weighted[2]) and (table["sd_reduction"] > 0).all()
    scenarios = bc.whatif(result, study, shift={"energy_debt": -1})
    green = scenarios.set_index("quantity").loc["theta[green]"]
    assert green["p_baseline"] == pytest.approx(p_weighted[2])
    # a reweighted result saved without its base draws (older versions) is refused, not silently biased
    old = result.copy()
    del old[BASE_GROUP]
    with pytest.raises(BayescpecError, match="without the draws it was reweighted from"):
        bc.explain(old, study)


def within(a, b, mcse_a, mcse_b, width: float = 4.0) -> np.ndarray:
    return np.abs(np.asarray(a) - np.asarray(b)) <= width * np.hypot(mcse_a, mcse_b) + 1e-9


@pytest.mark.slow
def test_every_analysis_of_an_updated_result_agrees_with_the_same_analysis_of_a_refit(tmp_path):
    """explain, next, robustness and whatif on a result updated by the fast path (the shipped log plus a count
    of 2 of 10 for green) against the same analysis of a refit of the updated log, at 4 MCSE of the
    difference; each comparison also checks that what it compares moved by more than its tolerance."""
    from bayescpec.analysis.draws import analysis_draws
    from bayescpec.analysis.fragility import ALPHAS
    from bayescpec.analysis.logprior import PRIOR_PARAMETERS, log_prior_density
    from bayescpec.engine.sampling import posterior_draws
    from bayescpec.engine.structure import structure_of

    settings = dict(draws=1000, tune=1000, chains=4, sampler="pymc")
    base_study = study_with(tmp_path / "base", [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base_fit = bc.fit(base_study, seed=20260527, **settings)
    study = study_with(tmp_path / "new", [count_row(2)])
    fast = bc.update_result(base_fit, study, method="psis")
    refit = fit_passing_the_gate(study, seeds=(7, 8, 9), **settings)
    size = 4000
    efficiency = {"fast": float(base_fit.attrs["min_ess_bulk"]) / size,
                  "refit": float(refit.attrs["min_ess_bulk"]) / size}
    results = {"fast": fast, "refit": refit}

    # explain: every leave-out both estimate by PSIS, P(hypothesis) and mean without and with
    found = {name: bc.explain(r, study, refit=False).packages.set_index(["unit", "quantity"]) for name, r in
             results.items()}
    both = found["fast"].index[(found["fast"]["method"] == "psis").to_numpy()
                               & (found["refit"].loc[found["fast"].index, "method"] == "psis").to_numpy()]
    assert len(both) > 30 and ("t-g1", "theta[green]") in both
    a, b = found["fast"].loc[both], found["refit"].loc[both]
    ess_a, ess_b = a["ess"] * efficiency["fast"], b["ess"] * efficiency["refit"]
    spread = np.sqrt(np.clip(b["p_without"] * (1 - b["p_without"]), 0.01, None))
    ok = within(a["p_without"], b["p_without"], spread / np.sqrt(ess_a), spread / np.sqrt(ess_b))
    bad = ~ok.to_numpy()
    assert ok.all(), (a.loc[bad, "p_without"].to_dict(), b.loc[bad, "p_without"].to_dict())
    theta = np.asarray([q.startswith("theta") for q in a.index.get_level_values("quantity")])
    # the sd of a probability is at most 0.5: a bound on the MCSE of theta's mean without the package
    ok = within(a["mean_without"][theta], b["mean_without"][theta], 0.5 / np.sqrt(ess_a[theta]),
                0.5 / np.sqrt(ess_b[theta]))
    assert ok.all()
    new = ("t-g1", "theta[green]")
    # not vacuous: the new row's shift exceeds 4 MCSE of a difference of two such estimates (sd of an indicator
    # at the probability with the row, not the bound 0.5: the count moves P from about 0.3 to 0.2)
    p_with = float(b.loc[new, "p_with"])
    noise = np.sqrt(p_with * (1 - p_with) / (a.loc[new, "ess"] * efficiency["fast"]))
    assert abs(a.loc[new, "shift_p"]) > 4 * 2 * noise

    # next: expected sd reduction, E|dP| and P(word changes), with their batch-means MCSE
    chosen = ["electricity_reliability", "renewable_integration", "energy_supply_added"]
    tables = {name: bc.value_of_information(r, study, indicators=chosen).set_index(["design", "channel"])
              for name, r in results.items()}
    a, b = tables["fast"], tables["refit"].loc[tables["fast"].index]
    # P(word changes) jumps where a probability sits within MC error of a word's boundary; those are flagged
    stable = ~(a["word_change_near_boundary"].to_numpy() | b["word_change_near_boundary"].to_numpy())
    assert stable.sum() >= 5
    for column, mcse in (("sd_reduction", "mcse_sd_reduction"), ("expected_abs_dp", "mcse_abs_dp"),
                         ("p_word_change", "mcse_word_change")):
        ok = within(a[column], b[column], a[mcse], b[mcse]) | ((column == "p_word_change") & ~stable)
        assert ok.all(), (column, a.loc[~ok.to_numpy(), column].to_dict(), b.loc[~ok.to_numpy(), column].to_dict())
    assert (a["sd_reduction"] > 4 * np.hypot(a["mcse_sd_reduction"], b["mcse_sd_reduction"])).any()

    # robustness: P(theta > tau) and P with the prior or likelihood power-scaled
    robust = {name: bc.robustness(r, study, max_clues=3).reviewer.set_index("channel") for name, r in results.items()}
    a, b = robust["fast"], robust["refit"]
    assert within(a["p_converting"], b["p_converting"], a["mcse_p"], b["mcse_p"]).all()
    for which in ("prior", "likelihood"):
        for alpha in ALPHAS:
            column = f"p_{which}_{alpha:g}"
            # the power-scaled P's MCSE: today's, inflated by the power-scaling's importance efficiency
            inflate = {}
            for name, r in results.items():
                current = analysis_draws(r, study, "test")
                ll = current.tree["log_likelihood"]
                density = (ll["rows"] * ll["weight"]).sum("evidence").values.ravel()
                if which == "prior":
                    density = log_prior_density(structure_of(study), study.priors,
                                                posterior_draws(current.tree, PRIOR_PARAMETERS))
                rw = current.reweight((alpha - 1.0) * density)
                reference = current.update.ess if current.update is not None else size
                inflate[name] = np.sqrt(reference / rw.ess)
            ok = within(a[column], b[column], a["mcse_p"] * inflate["fast"], b["mcse_p"] * inflate["refit"])
            assert ok.all(), (column, a[column].to_dict(), b[column].to_dict())

    # whatif: theta and P(theta > tau) under the framework's scenarios
    scen = {name: bc.whatif(r, study).set_index(["scenario", "quantity"]) for name, r in results.items()}
    a, b = scen["fast"], scen["refit"].loc[scen["fast"].index]
    for column, mcse in (("scenario_mean", "mcse_mean"), ("change_mean", "mcse_change"), ("p_scenario", "mcse_p")):
        ok = within(a[column], b[column], a[mcse], b[mcse])
        assert ok.all(), (column, a.loc[~ok.to_numpy(), column].to_dict(), b.loc[~ok.to_numpy(), column].to_dict())
    assert (a["change_mean"].abs() > 4 * np.hypot(a["mcse_change"], b["mcse_change"])).any()
