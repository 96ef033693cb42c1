"""Issue 22, the analyst's day: results that follow updates, the study a command uses, sources as
provenance, the numbers as printed, the smaller vintage, the notebook extra, the init walkthrough.

The end-to-end tests fit with tiny settings (they are about what is written and said, not about the
numbers); the README walkthroughs are followed as written, command by command.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayescpec as bc
from bayescpec.cli import app

from conftest import BASELINE, EVIDENCE, FRAMEWORK, SOURCES, write_mini_study

#: observations (rows that are not data gaps) in the shipped log, which the updates add to
SHIPPED_ROWS = sum(1 for line in (Path(__file__).resolve().parent.parent / "evidence" / "cpec.csv").read_text(
    encoding="utf-8").splitlines()[1:] if line and ",gap," not in line)

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--draws", "100", "--tune", "100", "--chains", "2"]
HEADER = ("id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,"
          "reliability,package,source,note")
ROW = "new-a,2026-11-15,sez,sez_zone_exports,outcome,signal,1,,,,,,0.9,,hypothetical,HYPOTHETICAL test row"


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def study_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped study as a study folder (priors/, evidence/), the current folder."""
    folder = tmp_path / "cpec"
    for src, sub in ((FRAMEWORK, "priors"), (BASELINE, "priors"), (EVIDENCE, "evidence"), (SOURCES, "evidence")):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, folder / sub / src.name)
    monkeypatch.chdir(folder)
    return folder


# ---------------------------------------------------------------------------------------------
# 1. update leaves the working result current; a stale result names what to use
# ---------------------------------------------------------------------------------------------

def test_the_readme_update_order_end_to_end(study_dir, recwarn):
    """README 'When new evidence arrives': run, update --dry-run, update, history, diff, then report and
    explain read the updated result -- not the fit from before the update."""
    (study_dir / "new_rows.csv").write_text(f"{HEADER}\n{ROW}\n")
    steps = [("run", *TINY), ("update", "new_rows.csv", "--dry-run", "--yes", *TINY),
             ("update", "new_rows.csv", "--yes", *TINY), ("history",), ("diff", "previous", "latest")]
    outputs = {}
    for args in steps:
        outcome = invoke(*args)
        assert outcome.exit_code == 0, (args, outcome.output)
        outputs[" ".join(args[:2])] = outcome.output
    assert "Working result: results/result.nc" in flat(outputs["update new_rows.csv"])
    assert "new-a" in outputs["diff previous"]
    working = bc.load_result(study_dir / "results")
    assert working.attrs["evidence_rows"] == SHIPPED_ROWS + 1 and "new-a" in working["evidence"]["evidence"].values
    assert working.attrs["vintage"] == bc.list_vintages(study_dir / "results" / "vintages")[-1].name
    assert f"# evidence_rows: {SHIPPED_ROWS + 1}\n" in (study_dir / "results" / "channels.csv").read_text()  # the quick CSVs too
    report = invoke("report", "results/", "-f", "md", "--no-figures", "--no-page")
    assert report.exit_code == 0 and "changed since" not in report.output, report.output
    assert f"({SHIPPED_ROWS + 1} rows)" in (study_dir / "results" / "report" / "channels.md").read_text()
    explain = invoke("explain", "results/", "--no-refit", "--no-figures", "-f", "csv", "-q")
    assert explain.exit_code == 0, explain.output


def test_a_result_whose_inputs_changed_names_the_newer_vintage_or_the_command(study_dir, recwarn):
    (study_dir / "new_rows.csv").write_text(f"{HEADER}\n{ROW}\n")
    assert invoke("run", *TINY).exit_code == 0
    # an update whose working result goes elsewhere leaves results/ on the old log: stale, with a newer vintage
    moved = invoke("update", "new_rows.csv", "--yes", "--out", "elsewhere", *TINY)
    assert moved.exit_code == 0, moved.output
    newer = bc.list_vintages(study_dir / "results" / "vintages")[-1]
    report = invoke("report", "results/", "-f", "csv", "--no-figures", "--no-page")
    assert report.exit_code == 0, report.output
    text = flat(report.output)
    assert "changed since" in text and f"bayescpec report {Path('results') / 'vintages' / newer.name}" in text
    explain = invoke("explain", "results/", "--no-refit", "--no-figures")
    assert explain.exit_code == 2 and "Traceback" not in explain.output
    said = flat(explain.output)
    assert "fitted on different inputs" in said and f"bayescpec explain {Path('results') / 'vintages' / newer.name}" in said
    # a log changed by hand: no saved fit of it, so the command that makes one
    with (study_dir / "evidence" / "cpec.csv").open("a") as log:
        log.write(ROW.replace("new-a", "new-b").replace("2026-11-15", "2026-11-16") + ",\n")
    explain = invoke("next", "elsewhere", "--no-figures")
    assert explain.exit_code == 2 and "refit with `bayescpec run --out elsewhere`" in flat(explain.output)


def test_stale_note_is_empty_for_a_current_result_and_ignores_sources(tmp_path):
    from bayescpec.workflow.working import stale_note

    paths = write_mini_study(tmp_path / "mini", ["r1,2025-01-01,a,clue,mechanism,signal,1,,,,,,0.9,,test,x"])
    study = bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bc.fit(study, draws=50, tune=50, chains=2, seed=1)
    assert stale_note(result, tmp_path / "mini") == ""
    paths["sources"].write_text("key,reference,year,url\ntest,Test source (corrected title),2026,\n")
    assert stale_note(result, tmp_path / "mini") == ""      # provenance only
    paths["priors"].write_text(paths["priors"].read_text().replace("concentration = 2.0", "concentration = 3.0"))
    note = stale_note(result, tmp_path / "mini")
    assert "changed since" in note and "mini.toml (priors)" in note and "bayescpec run --priors mini" in note


# ---------------------------------------------------------------------------------------------
# 3. the study a command uses
# ---------------------------------------------------------------------------------------------

def test_from_the_parent_of_a_study_nothing_falls_back_to_cpec_silently(tmp_path, monkeypatch):
    assert invoke("init", tmp_path / "lobito").exit_code == 0
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    run = invoke("run", *TINY)
    assert run.exit_code == 2 and "Traceback" not in run.output
    said = flat(run.output)
    assert "using the CPEC 2.0 study shipped with bayescpec (no priors/framework.toml in" in said
    assert "found a study in ./lobito -- cd there" in said and "give --out" in said
    dry = invoke("update", "rows.csv", "--dry-run")
    assert dry.exit_code == 2 and "no evidence log here" in flat(dry.output)
    assert "found a study in ./lobito" in flat(dry.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == before        # nothing written
    validate = invoke("validate")
    assert validate.exit_code == 0 and "using the CPEC 2.0 study shipped with bayescpec" in flat(validate.output)


def test_a_folder_without_a_study_says_it_uses_the_shipped_one(tmp_path, monkeypatch):
    from bayescpec.inputs.study import study_source

    monkeypatch.chdir(tmp_path)
    source = study_source()
    assert source.shipped == ("framework", "evidence") and not source.nearby
    assert source.note() == f"using the CPEC 2.0 study shipped with bayescpec (no priors/framework.toml in {tmp_path})"
    assert study_source(framework=FRAMEWORK).note().startswith("using the CPEC 2.0 evidence log shipped")
    run = invoke("run", "--as-of", "2015-01-01", "--draws", "30", "--tune", "30", "--chains", "2", "--quiet")
    assert run.exit_code == 0, run.output
    assert "warning: using the CPEC 2.0 study shipped with bayescpec" in flat(run.stderr)
    assert (tmp_path / "results" / "result.nc").is_file()
    init = invoke("init", "lobito")
    assert init.exit_code == 0 and "cd lobito (every command uses the study of the folder it runs in)" in \
        flat(init.output)
    monkeypatch.chdir(tmp_path / "lobito")
    assert study_source().note() == ""


# ---------------------------------------------------------------------------------------------
# 6. sources are provenance
# ---------------------------------------------------------------------------------------------

def test_an_unknown_source_is_told_where_to_go_not_matched_to_another(tmp_path):
    paths = write_mini_study(tmp_path, ["r1,2025-01-01,a,clue,mechanism,signal,1,,,,,,0.9,,nepra_2026,x"])
    paths["sources"].write_text("key,reference,year,url\nwb_exports_2026,World Bank exports,2026,\n")
    with pytest.raises(bc.InputError) as raised:
        bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])
    message = str(raised.value)
    assert "found 'nepra_2026';" in message and "did you mean" not in message
    assert f"add it to {paths['sources']} (columns key, reference, year, url)" in message


def test_editing_sources_keeps_the_fast_path_and_the_fit_key(study_dir, recwarn):
    from bayescpec.workflow.update import update_evidence
    from bayescpec.workflow.vintages import planned_fit_keys

    study = bc.load_study()
    previous = bc.fit(study, draws=150, tune=150, chains=2, seed=11)
    previous.attrs.update(converged=True, convergence_failures="", min_ess_bulk=40_000.0, max_rhat=1.0,
                          divergences=0)  # stand in for a long fit: the fast path's rules then allow reweighting
    bc.save_vintage(previous, root="results/vintages")
    sources = study_dir / "evidence" / "sources.csv"
    sources.write_text(sources.read_text().replace("Tang", "Tang (corrected)", 1))
    edited = bc.load_study()
    assert edited.hashes["sources"] != study.hashes["sources"]
    bc.check_inputs(previous, edited)  # explain & co. accept it: provenance changed, not the model's input
    settings = dict(draws=150, tune=150, chains=2, seed=11, sampler="pymc")
    assert planned_fit_keys(edited, **settings) == planned_fit_keys(study, **settings)
    (study_dir / "new.csv").write_text(f"{HEADER}\n{ROW.replace('outcome,signal,1', 'outcome,signal,0')}\n")
    outcome = update_evidence(study_dir / "new.csv", dry_run=True, draws=150, tune=150, chains=2, seed=11)
    assert outcome.method == "psis", outcome.reason
    assert "no earlier fit" not in outcome.summary and outcome.previous is not None


# ---------------------------------------------------------------------------------------------
# 8. the numbers as printed, a reused fit, a smaller vintage
# ---------------------------------------------------------------------------------------------

def test_changes_are_the_difference_of_the_printed_numbers_and_noise_is_said():
    from bayescpec.cli.display import change

    assert change(0.244, 0.236) == "0.00"          # 0.24 -> 0.24, not -0.01
    assert change(0.2449, 0.2551) == "+0.02"       # 0.24 -> 0.26
    assert change(0.30, 0.31, mcse=0.006) == "≈ 0"  # 0.01 < 2 x 0.006
    assert change(0.30, 0.32, mcse=0.006) == "+0.02"
    assert change(0.30, 0.31, mcse=float("nan")) == "+0.01"


def test_proposition_change_mcse_and_the_tables_say_within_noise():
    from bayescpec.outputs.layout import layout
    from report_fixtures import make_result

    result = make_result(chains=2, draws=300)
    result.attrs["framework"] = json.dumps({**json.loads(result.attrs["framework"]), "propositions": [
        {"id": "Q", "statement": "sez above tau", "query": "theta[sez] > tau"}]})
    table = bc.proposition_table(result, threshold=0.5)
    row = table.iloc[0]
    prior = (result["prior"]["theta"].sel(channel="sez") > 0.5).values.ravel()
    # the prior's draws are independent: its MCSE is binomial (the posterior's is tested with the channel table)
    expected = np.hypot(row["posterior_probability_mcse"], np.sqrt(prior.mean() * (1 - prior.mean()) / prior.size))
    assert row["change_mcse"] == pytest.approx(expected, rel=1e-9)
    assert row["change_within_noise"] == (abs(row["change"]) <= 2 * expected)
    table.loc[0, "change_within_noise"] = True
    laid = layout("propositions", table, digits=2, ci_kind="eti", ci_prob=0.9, threshold=0.5)
    assert laid.cells["change"].iloc[0] == "≈ 0" and any("within 2 Monte Carlo" in n for n in laid.notes)
    table.loc[0, ["change_within_noise", "prior_probability", "posterior_probability"]] = [False, 0.244, 0.236]
    laid = layout("propositions", table, digits=2, ci_kind="eti", ci_prob=0.9, threshold=0.5)
    assert laid.cells["change"].iloc[0] == "0.00" and not any("within 2 Monte Carlo" in n for n in laid.notes)


def test_diff_legend_only_when_a_row_is_starred(tmp_path):
    from report_fixtures import make_result

    a, b = make_result(seed=1), make_result(seed=2)
    for name, result in (("a", a), ("b", b)):
        bc.save_result(result, tmp_path / name / "result.nc")
    same = invoke("diff", tmp_path / "a", tmp_path / "b")
    assert same.exit_code == 0, same.output
    assert "term changed" not in same.output and "as printed" in same.output
    moved = make_result(seed=2, posterior_base=(9.0, 1.0))  # converting: the IPCC words change
    bc.save_result(moved, tmp_path / "c" / "result.nc")
    changed = invoke("diff", tmp_path / "a", tmp_path / "c")
    assert changed.exit_code == 0 and "* the IPCC likelihood term changed" in changed.output


def test_run_reuses_a_saved_identical_fit_without_sampling(tmp_path, monkeypatch):
    from bayescpec.workflow.vintages import fit_key, planned_fit_keys

    paths = write_mini_study(tmp_path / "mini", ["r1,2025-01-01,a,clue,mechanism,signal,1,,,,,,0.9,,test,x"])
    study = bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])
    settings = dict(draws=60, tune=60, chains=2, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = bc.fit(study, sampler="pymc", **settings)
    assert fit_key(fitted) in planned_fit_keys(study, sampler="pymc", **settings)
    args = ["run", "--framework", paths["framework"], "--priors", paths["priors"], "--evidence", paths["evidence"],
            "--out", tmp_path / "out", "--sampler", "pymc", "--draws", "60", "--tune", "60", "--chains", "2",
            "--seed", "5"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled although the same fit is saved")

    import bayescpec.engine.sampling as sampling

    monkeypatch.setattr(sampling, "fit", no_sampling)
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "reused: nothing was sampled or stored" in flat(again.output)
    assert len(bc.list_vintages(tmp_path / "out" / "vintages")) == 1
    # from a copy of the files elsewhere, as of another day with the same rows: the same draws, its own files
    copy = write_mini_study(tmp_path / "copy", ["r1,2025-01-01,a,clue,mechanism,signal,1,,,,,,0.9,,test,x"])
    moved = [str(a) for a in args]
    for role in ("framework", "priors", "evidence"):
        moved[moved.index(str(paths[role]))] = str(copy[role])
    third = invoke(*moved, "--as-of", "2025-06-30")
    assert third.exit_code == 0 and "reused" in third.output, third.output
    working = bc.load_result(tmp_path / "out")
    assert working.attrs["as_of"] == "2025-06-30"
    assert json.loads(working.attrs["input_files"])["evidence"] == str(copy["evidence"])


def test_the_readme_next_table_is_the_one_next_prints():
    from bayescpec.cli.analysis import next_columns, next_row

    readme = (ROOT / "README.md").read_text()
    header = next(line for line in readme.splitlines() if line.startswith("| channel | # | indicator"))
    cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", header)[1:-1]]
    assert cells == next_columns(0.5)
    row = pd.Series({"channel": "sez", "rank": 2, "indicator": "sez_skilled_employment", "stage": "learning",
                     "tier": "outcome", "test": "doubly_decisive", "kind": "count", "n": 10, "sd_now": 0.2612,
                     "expected_sd": 0.2049, "expected_abs_dp": 0.1987, "p_word_change": 0.514,
                     "sd_reduction": 0.0563, "mcse_sd_reduction": 0.0012, "word_change_near_boundary": True})
    assert next_row(row) == ["sez", "2", "sez_skilled_employment (learning)", "outcome / doubly decisive",
                             "count of 10", "0.26 → 0.20", "0.056 ± 0.0012", "0.20", "0.51 ≈"]
    assert next_row(row, "2=")[1] == "2="
    assert "| sez | 2 | sez_skilled_employment (learning) | outcome | count of 10 |" in readme


def test_a_saved_result_has_float32_draws_compressed_where_that_pays_and_the_same_tables(tmp_path):
    import h5py

    from report_fixtures import make_result

    result = make_result(chains=4, draws=2000)  # draws dominate the file, as in a real fit
    sparse = result["posterior"]["theta"].copy()
    sparse[:, :, 1:] = np.nan                                       # values in one column only
    result["posterior"]["sparse_draws"] = sparse
    path = bc.save_result(result, tmp_path / "result.nc")
    with h5py.File(path) as store:
        theta = store["posterior"]["theta"]
        assert theta.dtype == np.float32 and theta.compression is None  # varying draws: gzip would not pay
        assert store["posterior"]["sparse_draws"].compression == "gzip"
        assert store["posterior"]["sparse_draws"].id.get_storage_size() < 0.5 * theta.id.get_storage_size()
        assert store["evidence"]["value"].dtype == np.float64      # the ledger keeps its precision
    loaded = bc.load_result(path)
    a, b = bc.channel_table(result), bc.channel_table(loaded)
    for column in ("posterior_mean", "p_converting", "90% ETI lower", "90% ETI upper"):
        np.testing.assert_allclose(b[column], a[column], atol=1e-6)
    from bayescpec.workflow.store import _netcdf_safe

    _netcdf_safe(result).to_netcdf(tmp_path / "plain.nc", engine="netcdf4")  # float64, uncompressed: as before
    assert path.stat().st_size < 0.6 * (tmp_path / "plain.nc").stat().st_size


def test_no_wheel_or_large_binary_is_tracked():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert not [p for p in listed if p.endswith(".whl")]
    dev = bc_extras()["dev"]
    assert any(d.startswith("ruff") for d in dev)


# ---------------------------------------------------------------------------------------------
# 9. notebooks interactively
# ---------------------------------------------------------------------------------------------

def bc_extras() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_a_notebook_extra_and_the_readme_line_that_opens_the_notebooks():
    notebook = bc_extras()["notebook"]
    assert any(d.startswith("jupyterlab") for d in notebook) and any(d.startswith("ipykernel") for d in notebook)
    readme = (ROOT / "README.md").read_text()
    assert "bash .ci/env --extra notebook jupyter lab notebooks/" in readme
    refused = subprocess.run(["bash", str(ROOT / ".ci" / "env"), "--extra", "no_such_extra", "true"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "no such extra" in refused.stderr


# ---------------------------------------------------------------------------------------------
# 10. the init README's walkthrough, followed as written
# ---------------------------------------------------------------------------------------------

def _blocks(readme: str) -> list[tuple[str, str, str]]:
    """(info string, text of the paragraph before, body) of every fenced block, in order."""
    found = []
    for match in re.finditer(r"```(\w*)\n(.*?)```", readme, flags=re.S):
        before = readme[:match.start()].rstrip().rsplit("\n\n", 1)[-1]
        found.append((match.group(1), before, match.group(2)))
    return found


def test_the_init_readme_walkthrough_works_without_guessing(tmp_path, monkeypatch, recwarn):
    made = invoke("init", tmp_path / "lobito", "--name", "Lobito Corridor")
    assert made.exit_code == 0, made.output
    study = tmp_path / "lobito"
    monkeypatch.chdir(study)
    readme = (study / "README.md").read_text()
    commands = []
    for info, before, body in _blocks(readme):
        if info == "csv":  # a file's content: the paragraph before names the file (the last `path` in it)
            target = study / re.findall(r"`([^`]+\.csv)`", before)[-1]
            if target.exists():
                with target.open("a", encoding="utf-8") as handle:
                    handle.write(body)
            else:
                target.write_text(body, encoding="utf-8")
        elif info == "bash":
            for line in body.splitlines():
                command = line.split("#", 1)[0].split()
                if not command:
                    continue
                assert command[0] == "bayescpec", line
                extra = TINY if command[1] in ("run", "update") else []
                outcome = invoke(*command[1:], *extra)
                assert outcome.exit_code == 0, (line, outcome.output)
                commands.append(command[1])
    assert commands == ["validate", "run", "validate", "update", "update", "report"]
    log = pd.read_csv(study / "evidence" / "evidence.csv", dtype=str, keep_default_na=False)
    assert list(log["id"]) == ["ind-001"] and list(log.columns)[-1] == "unit"
    result = bc.load_result(study / "results")
    assert result.attrs["evidence_rows"] == 1
    channels = (study / "results" / "report" / "channels.md").read_text()
    assert "PRIOR ONLY" not in channels and "(1 rows)" in channels
    assert (study / "results" / "report" / "index.html").is_file()


def test_the_scaffold_answers_each_question_a_user_had_to_guess(tmp_path):
    from bayescpec.inputs.scaffold import TEMPLATES

    readme = (TEMPLATES / "README.md").read_text()
    framework = (TEMPLATES / "framework.toml").read_text()
    prior = (TEMPLATES / "baseline.toml").read_text()
    header = (TEMPLATES / "evidence.csv").read_text().strip()
    assert "my_source" in readme and "evidence/sources.csv" in readme          # the example's source is added
    assert "any_channel" in readme and 'target = "any_channel"' in framework    # what a target may be
    assert "[[stages]]" in readme and "# [[stages]]" in framework.replace("#   [[stages]]", "# [[stages]]")
    assert header.endswith(",unit") and header in readme                          # the unit column
    assert "`direction`** matters only for a `measure`" in readme and "Signals and counts need no direction" in framework
    loadings = prior.split("[loadings]", 1)[1].split("[", 1)[0]
    assert "mean =" in loadings and "sd =" in loadings                          # signed, as README says
