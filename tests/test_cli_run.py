"""End to end on the shipped data: the CLI run, saved results, reproducibility, input-hash checks."""

from __future__ import annotations

import re


import pandas as pd
import pytest
from typer.testing import CliRunner

import bayescpec as bc
from bayescpec.engine.aggregate import observation_rows
from bayescpec.cli import app

from conftest import TEST_COLUMNS, replace_in

FAST = ["--draws", "300", "--tune", "300", "--chains", "2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "results"
    # a terminal wide enough for every table's wide layout, whatever marks (≈) the fit's numbers carry:
    # which layout a narrower terminal gets is test_run_tables_fit_the_terminal_they_are_printed_on's matter
    result = CliRunner().invoke(app, ["run", "--out", str(out), "--seed", "7", "--threshold", "0.4",
                                      "--ci-prob", "0.8", "--ci-kind", "hdi", *FAST], env={"COLUMNS": TEST_COLUMNS})
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_prints_every_section(run_dir):
    _, output = run_dir
    text = " ".join(output.split())  # words, wherever a line broke
    assert "80% HDI" in output and "P(θ > 0.4)" in output
    for channel in ("sez", "digital", "green", "agriculture", "gwadar"):
        assert channel in output
    for fragment in ("Propositions", "P4", "Constraint severity", "energy_debt", "Convergence", "potential rows",
                     "P(severity > 0)"):
        assert fragment in text, fragment
    assert "P(binding)" not in output and "-0.00" not in output
    # the Monte Carlo error beside every published probability, and the whole gate in the convergence line
    assert len(re.findall(r"\d\.\d\d ± 0\.\d{3}", output)) >= 5 + 4  # channels and propositions
    assert "±: the Monte Carlo standard error (MCSE)" in text
    assert "min tail ESS" in text and "E-BFMI" in text and "maximum tree depth" in text


@pytest.mark.parametrize("columns", [80, 150, 1000])
def test_run_tables_fit_the_terminal_they_are_printed_on(run_dir, monkeypatch, columns):
    """The layout is a matter of the terminal's width, never of the numbers: with every channel's word
    marked ≈ (its widest), an 80-column terminal gets the compact channel table and no line past 80
    columns; a wide one gets the per-tier row counts; every channel and proposition shows on each."""
    from bayescpec.cli import options
    from bayescpec.cli.run import print_tables

    out, _ = run_dir
    result = bc.load_result(out)
    channels = bc.channel_table(result, threshold=0.4, ci_kind="hdi", ci_prob=0.8)
    channels["likelihood_near_boundary"] = True
    props = bc.proposition_table(result, threshold=0.4)
    monkeypatch.setattr(options.out_console, "width", columns)
    with options.out_console.capture() as captured:
        print_tables(channels, props, bc.constraint_table(result, ci_kind="hdi", ci_prob=0.8))
    shown = captured.get()
    assert max(len(line) for line in shown.splitlines()) <= columns, shown
    # parts show as "└ main_platform" under their proposition
    for name in [*channels["channel"], *[p.split("/")[-1] for p in props["proposition"]], "energy_debt"]:
        assert name in shown, name
    assert shown.count("≈") >= len(channels)
    assert ("potential rows" in shown) == (columns > 150), shown  # the wide layout needs about 152 columns


def test_run_writes_result_and_tables_with_provenance(run_dir):
    out, _ = run_dir
    assert {p.name for p in out.iterdir()} >= {"result.nc", "channels.csv", "propositions.csv", "constraints.csv",
                                               "vintages"}
    assert len(bc.list_vintages(out / "vintages")) == 1  # the run is the first vintage `update` builds on
    header = (out / "channels.csv").read_text().splitlines()[:25]
    assert "# interval: 80% HDI" in header and "# threshold tau: 0.4" in header
    assert any(line.startswith("# sha256_evidence: ") for line in header)
    assert "# seed: 7" in header and any(line.startswith("# bayescpec_version") for line in header)
    table = bc.read_table(out / "channels.csv")
    assert "interval: 80% HDI" in table.attrs["provenance_lines"]
    assert list(table["channel"]) == ["sez", "digital", "green", "agriculture", "gwadar"]
    # the written table says what the saved result says: P(theta > 0.4) recomputed from its draws
    theta = bc.load_result(out)["posterior"]["theta"]
    expected = (theta > 0.4).mean(("chain", "draw")).to_series()
    assert table["p_converting"].to_numpy() == pytest.approx(expected[table["channel"]].to_numpy(), abs=1e-4)


def test_saved_result_round_trips_and_detects_changed_inputs(run_dir, shipped_copy):
    out, _ = run_dir
    study = bc.load_study()
    result = bc.load_result(out, study=study)
    assert result.attrs["seed"] == 7 and result.attrs["prior_set"] == "baseline"
    assert set(result.children) >= {"posterior", "prior", "log_likelihood", "evidence", "sample_stats"}
    assert result["log_likelihood"]["rows"].sizes["evidence"] == len(observation_rows(study.evidence))
    # the same files copied elsewhere have the same hashes: accepted
    bc.check_inputs(result, bc.load_study(framework=shipped_copy["framework"], evidence=shipped_copy["evidence"]))
    replace_in(shipped_copy["evidence"], "Paper", "The paper")
    changed = bc.load_study(framework=shipped_copy["framework"], evidence=shipped_copy["evidence"])
    with pytest.raises(bc.ResultMismatchError, match="evidence"):
        bc.load_result(out, study=changed)
    with pytest.raises(bc.ResultMismatchError, match="prior set"):
        bc.check_inputs(result, bc.load_study(priors="skeptical"))


@pytest.mark.filterwarnings("ignore::bayescpec.engine.sampling.ConvergenceWarning")
def test_same_seed_same_table():
    study = bc.load_study()
    tables = [bc.channel_table(bc.fit(study, draws=200, tune=200, chains=2, seed=3)) for _ in range(2)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    other = bc.channel_table(bc.fit(study, draws=200, tune=200, chains=2, seed=4))
    assert not tables[0]["posterior_mean"].equals(other["posterior_mean"])


def test_as_of_keeps_only_evidence_observed_by_then():
    early = bc.load_study(as_of="2025-01-01")
    full = bc.load_study()
    assert 0 < len(early.evidence) < len(full.evidence)
    assert (pd.to_datetime(early.evidence["observed"]) <= "2025-01-01").all()
    assert early.excluded_after_as_of == len(full.evidence) - len(early.evidence)


def test_convergence_failure_is_said_in_result_and_terminal(tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", "--out", str(out), "--draws", "20", "--tune", "20", "--chains", "2"])
    assert result.exit_code == 0
    assert "FAILED" in result.output and "bulk ESS" in result.output
    saved = bc.load_result(out)
    assert not saved.attrs["converged"] and "bulk ESS" in saved.attrs["convergence_failures"]
    with pytest.warns(bc.ConvergenceWarning):
        bc.fit(bc.load_study(), draws=20, tune=20, chains=2)
    with pytest.raises(bc.ConvergenceError):
        bc.fit(bc.load_study(), draws=20, tune=20, chains=2, strict=True)


def test_bad_options_exit_2_and_write_nothing(tmp_path):
    out = tmp_path / "r"
    for args, fragment in ((["--threshold", "1.5"], "--threshold"), (["--ci-kind", "hpd"], "--ci-kind"),
                           (["--ci-prob", "0"], "--ci-prob"), (["--as-of", "2026-13-01"], "--as-of"),
                           (["--priors", "nonexistent"], "nonexistent")):
        result = CliRunner().invoke(app, ["run", "--out", str(out), *args])
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.output
        assert not out.exists()


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    import bayescpec.outputs.export as results

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(results, "write_table", broken)
    out = tmp_path / "results"
    outcome = CliRunner().invoke(app, ["run", "--out", str(out), "--draws", "50", "--tune", "50", "--chains", "2"])
    assert outcome.exit_code != 0
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_run_json_quiet_and_vintage_reuse(tmp_path):
    """--json prints one document on stdout; --quiet leaves stderr empty; the same fit is reused as a
    vintage, a fit with other settings gets its own (never '(already saved)' for another fit)."""
    import json

    out = tmp_path / "results"
    tiny = ["--draws", "30", "--tune", "30", "--chains", "2", "--out", str(out)]
    first = CliRunner().invoke(app, ["run", *tiny, "--json", "--quiet"])
    assert first.exit_code == 0, first.output
    assert first.stderr.strip() == "" or "warning" in first.stderr.lower()
    data = json.loads(first.stdout)
    assert set(data) >= {"tables", "convergence", "provenance", "prior_only", "files", "vintage"}
    channels = data["tables"]["channels"]
    assert channels["interval"] == "90% ETI" and [r["channel"] for r in channels["rows"]][0] == "sez"
    saved = bc.read_table(out / "channels.csv")
    assert channels["rows"][0]["p_converting"] == pytest.approx(saved["p_converting"].iloc[0], abs=1e-4)
    assert data["convergence"]["converged"] is False and data["prior_only"] is False
    assert data["vintage"]["reused"] is False and (out / "vintages" / data["vintage"]["name"]).is_dir()
    again = json.loads(CliRunner().invoke(app, ["run", *tiny, "--json", "--quiet"]).stdout)
    assert again["vintage"] == {**data["vintage"], "reused": True}
    other = CliRunner().invoke(app, ["run", *tiny[:-2], "--out", str(out), "--seed", "3"])
    assert other.exit_code == 0, other.output
    assert "already saved" not in other.output and "reused" not in other.output
    assert len(bc.list_vintages(out / "vintages")) == 2
    assert "CONVERGENCE CHECKS FAILED" in other.output  # the banner, not only a footnote


def test_run_names_a_weakest_stage_only_where_it_stands_out(monkeypatch):
    """A synthetic stage table (no sampling): the stage with the largest break probability is named
    where it stands out and reported as 'none stands out (most likely ...)' where it does not."""
    from bayescpec.cli import options
    from bayescpec.cli.run import print_weakest_stages

    rows = []
    for channel, stands in (("sez", True), ("green", False)):
        for i, stage in enumerate(("firms", "linkages")):
            rows.append({"channel": channel, "stage": stage, "stage_label": stage.title(), "reach_mean": 0.5,
                         "break_first": 0.3 + 0.1 * i, "weakest": i == 1, "p_weakest": 0.8 if stands else 0.5,
                         "stands_out": stands and i == 1})
    stages = pd.DataFrame(rows)
    stages.attrs["completes"] = {"sez": 0.2, "green": 0.2}
    monkeypatch.setattr(options.out_console, "width", 200)
    with options.out_console.capture() as captured:
        print_weakest_stages(stages)
    shown = {line.split("│")[1].strip(): line for line in captured.get().splitlines() if line.count("│") > 3}
    assert "linkages (Linkages)" in shown["sez"] and "80%" in shown["sez"]
    assert "none stands out (most likely linkages)" in shown["green"]
