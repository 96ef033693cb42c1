"""`bayescpec init DIR` (issue 14): a study for another corridor that validates and runs (prior only)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import bayescpec as bc
from bayescpec.cli import app
from bayescpec.inputs.scaffold import STUDY_FILES

runner = CliRunner()


def test_init_writes_a_study_that_validates_and_runs_prior_only(tmp_path, monkeypatch):
    study = tmp_path / "corridor"
    made = runner.invoke(app, ["init", str(study), "--name", "Lobito Corridor"])
    assert made.exit_code == 0, made.output
    assert sorted(p.relative_to(study).as_posix() for p in study.rglob("*") if p.is_file()) == sorted(STUDY_FILES)
    assert "Lobito Corridor conversion framework" in (study / "priors" / "framework.toml").read_text()
    assert (study / "evidence" / "evidence.csv").read_text().startswith("id,observed,target,indicator,tier,kind")
    assert len((study / "evidence" / "evidence.csv").read_text().splitlines()) == 1   # the header only
    assert "# Lobito Corridor" in (study / "README.md").read_text()
    monkeypatch.chdir(study)
    checked = runner.invoke(app, ["validate"])
    assert checked.exit_code == 0, checked.output
    for name in ("framework.toml", "baseline.toml", "evidence.csv", "sources.csv"):
        assert name in checked.output
    loaded = bc.load_study()                                   # the folder's files, not the shipped ones
    assert loaded.framework.channel_ids == ["industry"] and len(loaded.evidence) == 0
    run = runner.invoke(app, ["run", "--draws", "100", "--tune", "100", "--chains", "2"])
    assert run.exit_code == 0, run.output
    assert "PRIOR ONLY" in run.output and "industry" in run.output
    result = bc.load_result(study / "results")
    assert result.attrs["evidence_rows"] == 0 and result.attrs["prior_set"] == "baseline"
    assert "PRIOR ONLY" in (study / "results" / "channels.csv").read_text()
    report = runner.invoke(app, ["report", "results", "-f", "md", "--no-figures"])
    assert report.exit_code == 0, report.output
    assert "PRIOR ONLY" in (study / "results" / "report" / "channels.md").read_text()
    assert "PRIOR ONLY" in (study / "results" / "report" / "index.html").read_text()


def test_init_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    refused = runner.invoke(app, ["init", str(tmp_path)])
    assert refused.exit_code == 2 and "not empty" in refused.output and "Traceback" not in refused.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    refused = runner.invoke(app, ["init", str(tmp_path / "notes.txt")])
    assert refused.exit_code == 2 and "is a file" in refused.output


def test_init_into_an_existing_empty_folder(tmp_path):
    made = runner.invoke(app, ["init", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "priors" / "framework.toml").is_file()
    assert tmp_path.name in (tmp_path / "README.md").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("template", sorted(set(STUDY_FILES.values())))
def test_templates_ship_inside_the_package(template):
    from bayescpec.inputs.scaffold import TEMPLATES

    assert (TEMPLATES / template).is_file() and "bayescpec" in str(TEMPLATES)
