"""Simulation-based calibration and the executor.

Layers: the rank statistics on synthetic ranks (no sampling); the evidence simulator against its
closed-form probabilities; bad input; the same sweep serially, in local processes and on a local
Dask cluster (identical numbers for the same seeds); and (slow) a small calibration that passes on
the model as it is and fails when the truths come from another prior than the one fitted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from bayescpec.cli import app
from bayescpec.engine.simulate import simulate_evidence
from bayescpec.engine.structure import structure_of
from bayescpec.errors import InputError
from bayescpec.inputs.study import load_study
from bayescpec.outputs.calibration import calibration_table, calibration_verdict, plot_calibration, rank_bins
from bayescpec.workflow.calibrate import calibrate
from bayescpec.workflow.executor import choose_executor, run_tasks
from conftest import write_mini_study

MINI_ROWS = [
    "s1,2025-01-01,a,clue,mechanism,signal,1,,,,,,0.9,,test,",
    "s2,2025-01-02,a,clue,mechanism,signal,0,,,,,,0.8,,test,",
    "s3,2025-01-03,a,clue,mechanism,signal,1,,,,0.8,0.3,1.0,,test,",
    "c1,2025-01-04,a,units,mechanism,count,,3,8,,,,1.0,,test,",
    "m1,2025-01-05,a,level,mechanism,measure,11.0,,,,,,1.0,,test,",
]


def _synthetic_ranks(ranks: np.ndarray, parameter: str = "theta[a]", rank_draws: int = 99) -> pd.DataFrame:
    return pd.DataFrame({"simulation": np.arange(len(ranks)), "parameter": parameter, "variable": "theta",
                         "rank": ranks, "truth": 0.5,
                         "inside_50": (ranks >= 25) & (ranks <= 75), "inside_90": (ranks >= 5) & (ranks <= 95)})


def test_uniform_ranks_pass_and_skewed_ranks_fail():
    rng = np.random.default_rng(3)
    uniform = _synthetic_ranks(rng.integers(0, 100, 400))
    table = calibration_table(uniform, rank_draws=99)
    assert not table["flagged"].any()
    assert abs(table["coverage_50"].iloc[0] - 0.5) < 4 * table["coverage_50_se"].iloc[0]
    # posteriors too narrow: truths pile up in the tails (a U), and too wide: a hump
    narrow = _synthetic_ranks(np.clip((rng.beta(0.5, 0.5, 400) * 100).astype(int), 0, 99))
    wide = _synthetic_ranks((rng.beta(3, 3, 400) * 100).astype(int))
    for bad in (narrow, wide):
        table = calibration_table(bad, rank_draws=99)
        assert table["flagged"].all()
        assert table["p_value_chi_square"].iloc[0] < 1e-4 and table["p_value_ecdf_pit"].iloc[0] < 1e-4
    assert calibration_verdict(calibration_table(wide, rank_draws=99)).startswith("NOT calibrated")
    assert calibration_table(wide, rank_draws=99)["coverage_50"].iloc[0] > 0.6  # too wide: over-covers


def test_the_verdict_will_not_judge_a_handful_of_simulations():
    rng = np.random.default_rng(4)
    few = calibration_table(_synthetic_ranks(rng.integers(0, 100, 10)), rank_draws=99)
    assert calibration_verdict(few).startswith("Too few simulations to judge (10;")
    enough = calibration_table(_synthetic_ranks(rng.integers(0, 100, 400)), rank_draws=99)
    assert calibration_verdict(enough).startswith("No sign of miscalibration")


def test_rank_bins_hold_whole_ranks_and_five_simulations():
    assert rank_bins(200, 99) == 10 and rank_bins(30, 99) == 5 and rank_bins(12, 99) == 2
    assert (99 + 1) % rank_bins(60, 99) == 0


def test_chi_square_matches_a_hand_count():
    ranks = np.repeat(np.arange(10) * 10, 5)  # 50 simulations, 5 in each of the 10 bins
    ranks[:5] = 95  # move one bin's five into the last bin
    table = calibration_table(_synthetic_ranks(ranks), rank_draws=99)
    expected = stats.chisquare([0, 5, 5, 5, 5, 5, 5, 5, 5, 10])
    assert table["chi_square"].iloc[0] == pytest.approx(expected.statistic)
    assert table["p_value_chi_square"].iloc[0] == pytest.approx(expected.pvalue)


def test_calibration_figure_draws_every_variable():
    rng = np.random.default_rng(0)
    ranks = pd.concat([_synthetic_ranks(rng.integers(0, 100, 50), f"theta[{c}]") for c in "ab"]
                      + [_synthetic_ranks(rng.integers(0, 100, 50), "severity[x]").assign(variable="severity")])
    fig = plot_calibration(ranks, rank_draws=99, band_simulations=200)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["theta", "severity"]
    assert len(fig.axes[0].lines) == 3  # two parameters and the zero line


def _fixed_params(study, n, theta=0.3, sens=0.72, fpr=0.25, rate_c=0.66, rate_n=0.18, icc=0.2):
    structure = structure_of(study)
    return {"reach": np.full((n, 1, len(structure.stages)), theta ** (1 / len(structure.stages))),
            "severity": np.zeros((n, 0)),
            "sensitivity_tier": np.full((n, 1), sens), "false_positive_tier": np.full((n, 1), fpr),
            "rate_converting": np.full((n, 1), rate_c), "rate_not_converting": np.full((n, 1), rate_n),
            "count_icc": np.full((n, 1), icc)}


def test_simulated_evidence_follows_the_likelihood(tmp_path):
    """Each simulated row against its closed-form distribution at fixed parameters."""
    paths = write_mini_study(tmp_path, MINI_ROWS)
    study = load_study(**paths)
    theta, sens, fpr = 0.3, 0.72, 0.25
    n = 3000
    params = _fixed_params(study, n, theta, sens, fpr)
    # reach is per stage; the target of a channel row is its last stage's reach, here theta ** (1/J)
    reach = params["reach"][0, 0, -1]
    rng = np.random.default_rng(11)
    sims = simulate_evidence(study, params, rng)
    value = pd.DataFrame([s.set_index("id")["value"] for s in sims])
    k = pd.Series([s.set_index("id").loc["c1", "k"] for s in sims])
    expected = {"s1": 0.9 * (fpr + reach * (sens - fpr)) + 0.05,
                "s2": 0.8 * (fpr + reach * (sens - fpr)) + 0.1,
                "s3": 0.3 + reach * (0.8 - 0.3)}
    for row, p in expected.items():
        assert abs(value[row].mean() - p) < 4 * np.sqrt(p * (1 - p) / len(sims)), row
    # the count: beta-binomial at the indicator's rates (0.66, 0.18) and intra-class correlation 0.2
    p_count = 0.18 + reach * (0.66 - 0.18)
    expected = stats.betabinom(8, p_count * 4, (1 - p_count) * 4)  # phi = 1 / 0.2 - 1 = 4
    observed = np.bincount(k.to_numpy(int), minlength=9)
    assert stats.chisquare(observed, expected.pmf(np.arange(9)) * len(sims)).pvalue > 1e-3
    # the measure: z = (value - baseline) / scale ~ Normal(loading * logit(reach), 1)
    z = (value["m1"] - 10.0) / 2.0
    mean = 0.6 * np.log(reach / (1 - reach))
    assert abs(z.mean() - mean) < 4 / np.sqrt(len(sims))
    assert stats.kstest(z - mean, "norm").pvalue > 1e-3
    assert (sims[0]["package"] == "").all() and len(sims[0]) == len(MINI_ROWS)


PACKAGED_ROWS = [
    # a package whose two rows repeat one fact: simulated as one fact, its 1/2 weights kept
    "p1,2025-01-01,a,clue,mechanism,signal,1,,,,,,0.9,same-fact,test,",
    "p2,2025-01-01,a,clue,mechanism,signal,1,,,,,,0.9,same-fact,test,",
    # a package whose rows differ (tier diagnosticity and explicit rates): left out, rows separate
    "h1,2025-01-02,a,clue,mechanism,signal,1,,,,,,0.9,mixed,test,",
    "h2,2025-01-02,a,clue,mechanism,signal,0,,,,0.8,0.3,0.9,mixed,test,",
    # a measure of reliability 0.25: N(z; mu, 1)^0.25 is the N(z; mu, 2) density up to a constant
    "m1,2025-01-03,a,level,mechanism,measure,11.0,,,,,,0.25,,test,",
    # a count of reliability 0.8: a beta-binomial to the power 0.8 is no distribution of k: left out
    "c1,2025-01-04,a,units,mechanism,count,,3,8,,,,0.8,,test,",
]


def test_simulation_generates_what_the_fit_assumes_including_packages(tmp_path):
    """A package whose rows repeat one fact keeps its package and gets one value in every row; a package
    whose rows differ is simulated and fitted as separate rows (said in the plan); a measure's
    reliability r becomes noise of sd 1/sqrt(r); a count's reliability is set to 1 (said in the plan)."""
    study = load_study(**write_mini_study(tmp_path, PACKAGED_ROWS))
    n = 3000
    sims = simulate_evidence(study, _fixed_params(study, n), np.random.default_rng(5))
    values = pd.DataFrame([s.set_index("id")["value"] for s in sims])
    assert (values["p1"] == values["p2"]).all() and 0.2 < values["p1"].mean() < 0.8  # one fact, both rows
    assert (values["h1"] != values["h2"]).any()                                        # separate rows
    assert all((s.set_index("id").loc[["p1", "p2"], "package"] == "same-fact").all() for s in sims[:5])
    reach = 0.3
    z = (values["m1"] - 10.0) / 2.0
    assert stats.kstest(z, stats.norm(0.6 * np.log(reach / (1 - reach)), 2.0).cdf).pvalue > 1e-3
    from bayescpec.engine.simulate import simulation_plan

    plan = simulation_plan(study).set_index("id")
    assert plan.loc[["p1", "p2"], "package"].tolist() == ["same-fact", "same-fact"]
    assert plan.loc[["h1", "h2"], "package"].tolist() == ["", ""] and plan.loc[["h1", "h2"], "package_left_out"].all()
    assert plan.loc["c1", "reliability"] == 1.0 and plan.loc["c1", "reliability_left_out"]
    assert not plan.loc[["p1", "p2", "m1"], "package_left_out"].any() and plan.loc["m1", "reliability"] == 0.25


def test_bad_calibration_input_is_refused(tmp_path):
    paths = write_mini_study(tmp_path, MINI_ROWS)
    study = load_study(**paths)
    with pytest.raises(InputError, match="at least 1 simulation"):
        calibrate(study, simulations=0)
    gaps = write_mini_study(tmp_path / "gaps", [])
    with pytest.raises(InputError, match="no evidence rows to simulate"):
        calibrate(load_study(**gaps), simulations=3)
    runner = CliRunner()
    out = tmp_path / "out"
    for args in (["--simulations", "0"], ["--simulations", "2", "--evidence", str(gaps["evidence"]),
                                            "--framework", str(gaps["framework"]), "--priors", str(gaps["priors"])]):
        result = runner.invoke(app, ["calibrate", *args, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "Simulating and fitting" not in result.output  # refused before anything is announced
    assert not out.exists()


def test_executor_choice():
    assert choose_executor(3) == "serial"
    assert choose_executor(100, scheduler="tcp://localhost:8786") == "dask"
    assert choose_executor(100, workers=1) == "serial" and choose_executor(2, workers=2) == "dask"
    with pytest.raises(ValueError, match="executor must be one of"):
        choose_executor(3, executor="threads")
    with pytest.raises(ValueError, match="at least 1"):
        choose_executor(3, workers=0)


def test_the_default_executor_uses_the_cores_only_beyond_a_handful_of_tasks(monkeypatch):
    """Where the machine's core count enters (processes for more than SERIAL_UP_TO tasks), on any machine."""
    import bayescpec.workflow.executor as executor

    for cores, many in ((1, "serial"), (2, "processes"), (64, "processes")):
        monkeypatch.setattr(executor, "_cores", lambda: cores)
        assert choose_executor(executor.SERIAL_UP_TO) == "serial"
        assert choose_executor(executor.SERIAL_UP_TO + 1) == many, cores


def _square(x):
    return x * x


def test_process_pool_returns_results_in_task_order():
    seen = []
    assert run_tasks(_square, list(range(6)), executor="processes", workers=2,
                     on_result=lambda i, r: seen.append(i)) == [0, 1, 4, 9, 16, 25]
    assert sorted(seen) == list(range(6))


@pytest.mark.slow
def test_a_sweep_on_a_local_dask_cluster_equals_the_serial_run(tmp_path):
    study = load_study(**write_mini_study(tmp_path, MINI_ROWS))
    options = dict(simulations=3, draws=200, tune=200, chains=2, ranks=49, sampler="pymc", seed=5)
    serial = calibrate(study, executor="serial", **options)
    on_dask = calibrate(study, workers=2, **options)
    assert on_dask.attrs["sampler"] == "pymc"
    pd.testing.assert_frame_equal(serial.ranks, on_dask.ranks)
    pd.testing.assert_frame_equal(serial.simulations.drop(columns="seconds"),
                                  on_dask.simulations.drop(columns="seconds"))


@pytest.mark.slow
def test_calibration_passes_on_the_model_and_fails_on_a_wrong_prior(tmp_path):
    """80 simulations of the one-channel study: ranks uniform (theta, the tier's rates, the count
    indicator's rates and overdispersion) when the truths come from the fitted prior; clearly not when
    they come from a prior concentrated near theta = 0.9."""
    from bayescpec.inputs.spec import load_priors

    # with a package whose rows repeat one fact, a tempered measure and a tempered count (the simulation
    # generates what the fit assumes); the mini study's count priors are the shipped baseline's
    extra = [row.replace("m1,", "m2,").replace("c1,", "c2,") for row in PACKAGED_ROWS]
    paths = write_mini_study(tmp_path, MINI_ROWS + extra, mean=0.5, concentration=2.0)
    study = load_study(**paths)
    # in this process: one nutpie compilation serves all 160 fits (the default, worker processes on a
    # machine with 2+ cores, compiled it in every worker of both runs: about twice the CPU for the same
    # ranks -- the seeds are per simulation, so where the fits run does not change them)
    good = calibrate(study, simulations=80, draws=300, tune=300, chains=2, ranks=49, seed=1, executor="serial")
    table = calibration_table(good.ranks, rank_draws=49)
    assert not table["flagged"].any(), table.to_string()
    assert ((table["coverage_90"] - 0.9).abs() < 4 * table["coverage_90_se"]).all()
    wrong_path = tmp_path / "wrong" / "mini.toml"
    wrong_path.parent.mkdir()
    wrong_path.write_text(paths["priors"].read_text().replace("mean = 0.5", "mean = 0.9")
                          .replace("concentration = 2.0", "concentration = 40"))
    wrong = load_priors(wrong_path, study.framework)
    bad = calibrate(study, simulations=80, draws=300, tune=300, chains=2, ranks=49, seed=1, generating_priors=wrong,
                    executor="serial")
    table = calibration_table(bad.ranks, rank_draws=49)
    assert table.set_index("parameter").loc["theta[a]", "flagged"], table.to_string()


def test_calibrate_command_writes_every_file(tmp_path):
    """`bayescpec calibrate` end to end on the one-channel study (2 tiny simulations): the five files,
    per-fit ESS in simulations.csv, provenance as JSON objects, and a verdict that does not judge 2."""
    import json

    paths = write_mini_study(tmp_path, MINI_ROWS)
    out = tmp_path / "cal"
    result = CliRunner().invoke(app, ["calibrate", "--simulations", "2", "--draws", "50", "--tune", "50",
                                      "--chains", "2", "--sampler", "pymc", "--workers", "1", "--out", str(out),
                                      "--framework", str(paths["framework"]), "--priors", str(paths["priors"]),
                                      "--evidence", str(paths["evidence"]), "--sources", str(paths["sources"])])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"calibration.csv", "ranks.csv", "simulations.csv", "calibration.json",
                                               "calibration.png", "calibration.pdf"}
    simulations = pd.read_csv(out / "simulations.csv")
    assert len(simulations) == 2 and {"min_ess_bulk", "min_ess_tail", "max_rhat", "divergences"} <= set(simulations)
    info = json.loads((out / "calibration.json").read_text())
    assert set(info["input_sha256"]) == {"framework", "priors", "evidence", "sources"}
    assert info["verdict"].startswith("Too few simulations to judge (2;")
    assert len(pd.read_csv(out / "ranks.csv")) == 2 * len(pd.read_csv(out / "calibration.csv"))
