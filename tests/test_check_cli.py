"""`bayescpec check RESULT` (issue 20): exit code 0 whenever the checks ran (flags or not), the tables in four
formats and the figure, `--json`; bad input exits 2 with one message and nothing written; `report --check`
adds the section to index.html; `run` prints a line when a check flags its fit and says so in `--json`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

import bayescpec as bc
from analysis_fixtures import mini_study
from conftest import fit_passing_the_gate
from bayescpec.cli import app
from test_check import BINOMIAL, OVERDISPERSED

#: a small fit that passes the convergence gate (the dispersion p-value is read from it): the first of these
#: seeds whose fit passes (conftest.fit_passing_the_gate)
SMALL = dict(draws=1000, tune=1000, chains=2)
SEEDS = (3, 4, 5)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fit of a one-channel log with overdispersed counts, saved: (result folder, study)."""
    root = tmp_path_factory.mktemp("check-cli")
    study = mini_study(root / "inputs", OVERDISPERSED)
    result = fit_passing_the_gate(study, seeds=SEEDS, **SMALL)
    bc.save_result(result, root / "res" / "result.nc")
    return root / "res", study


def test_check_writes_every_table_and_the_figure_and_exits_0_although_it_flags(saved, tmp_path):
    folder, _ = saved
    out = tmp_path / "check"
    outcome = invoke("check", folder, "--out", out, "-q")
    assert outcome.exit_code == 0, outcome.output
    text = " ".join(outcome.output.split())
    assert "Overdispersion of counts" in text and "Verdict:" in text and re.search(r"\d+ flags? —", text)
    for stem in ("check", "check-rows", "check-groups", "check-dispersion"):
        for suffix in (".csv", ".md", ".tex", ".html"):
            assert (out / f"{stem}{suffix}").is_file(), stem + suffix
    assert (out / "check.png").is_file() and (out / "check.pdf").is_file()
    assert "# Prior set: mini" in (out / "check-rows.csv").read_text()
    if shutil.which("pdflatex"):  # every table compiles on its own, k̂ and p̂ as \hat{k}, \hat{p}
        for tex in sorted(out.glob("*.tex")):
            run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=out,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, (tex.name, run.stdout[-1500:])
            assert "?" not in tex.read_text(), tex.name
        assert r"$\hat{k}$" in (out / "check-rows.tex").read_text()


def test_json_is_one_document_with_the_verdict_and_every_table(saved, tmp_path):
    folder, _ = saved
    outcome = invoke("check", folder, "--out", tmp_path / "c", "--json", "--no-figures", "-f", "csv")
    assert outcome.exit_code == 0, outcome.output
    data = json.loads(outcome.stdout)
    assert data["passed"] is False and any(f.startswith("Overdispersion of counts") for f in data["flags"])
    assert [r["evidence"] for r in data["rows"]] == [f"c{i}" for i in range(1, 9)] + ["s1"]
    assert data["dispersion"][0]["posterior_flag"] is True
    assert data["khat_threshold"] == pytest.approx(min(1 - 1 / np.log10(2000), 0.7))  # S = 1000 draws x 2 chains
    assert sorted(p.rsplit("/", 1)[-1] for p in data["files"]) == sorted(
        f"{s}.csv" for s in ("check", "check-rows", "check-groups", "check-dispersion"))


def test_a_result_without_its_log_likelihood_is_checked_without_psis_loo(saved, tmp_path):
    folder, _ = saved
    bare = bc.load_result(folder).copy()
    del bare["log_likelihood"]
    bc.save_result(bare, tmp_path / "bare" / "result.nc")
    outcome = invoke("check", tmp_path / "bare", "--out", tmp_path / "c", "--json", "--no-figures", "-f", "md")
    assert outcome.exit_code == 0, outcome.output
    data = json.loads(outcome.stdout)
    assert data["khat_threshold"] is None and "pareto_k" not in data["rows"][0]
    assert [line["check"] for line in data["summary"]][-1] == "Overdispersion of counts"


@pytest.mark.parametrize("args, message", [
    (("--flag-level", "0.7"), "--flag-level: must be in (0, 0.5); found 0.7"),
    (("--seed", "-1"), "--seed: must be in 0–4 294 967 295; found -1"),
    (("--format", "docx"), "docx"),
    (("--digits", "-1"), "--digits"),
])
def test_bad_options_exit_2_with_one_message_and_write_nothing(saved, tmp_path, args, message):
    folder, _ = saved
    out = tmp_path / "out"
    outcome = invoke("check", folder, "--out", out, *args)
    assert outcome.exit_code == 2, outcome.output
    assert message in " ".join(outcome.output.split()), outcome.output
    assert "Traceback" not in outcome.output and outcome.output.count("error:") == 1
    assert not out.exists()


def test_a_missing_result_or_changed_inputs_exit_2(saved, tmp_path):
    folder, _ = saved
    outcome = invoke("check", tmp_path / "nowhere", "--out", tmp_path / "o1")
    assert outcome.exit_code == 2 and "no saved result there" in " ".join(outcome.output.split())
    assert not (tmp_path / "o1").exists()
    result = bc.load_result(folder)
    path = json.loads(result.attrs["input_files"])["evidence"]
    original = open(path, encoding="utf-8").read()
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write("s2,2026-01-06,a,clue,mechanism,signal,0,,,,,,1,,test,another clue\n")
        outcome = invoke("check", folder, "--out", tmp_path / "o2")
        assert outcome.exit_code == 2, outcome.output
        assert "changed: evidence" in " ".join(outcome.output.split()) and "Traceback" not in outcome.output
        assert not (tmp_path / "o2").exists()
    finally:
        open(path, "w", encoding="utf-8").write(original)


def test_report_check_adds_the_tables_figure_and_page_section(saved, tmp_path):
    folder, _ = saved
    out = tmp_path / "report"
    outcome = invoke("report", folder, "--check", "--out", out, "-f", "md", "-q")
    assert outcome.exit_code == 0, outcome.output
    page = (out / "index.html").read_text()
    assert 'id="analysis-check"' in page and 'src="check.png"' in page and "Overdispersion of counts" in page
    assert (out / "check-dispersion.md").is_file() and (out / "channels.md").is_file()
    from browser import find_chromium, inspect_page

    if find_chromium():  # a reader's browser shows the check's figure and section without errors
        seen = inspect_page((out / "index.html").resolve().as_uri(), chromium=find_chromium())
        assert seen["errors"] == [] and "check.png" in [image["src"] for image in seen["images"]]
        assert all(image["complete"] and image["naturalWidth"] > 0 for image in seen["images"])
        assert "Model criticism" in seen["text"]
    plain = tmp_path / "plain"
    assert invoke("report", folder, "--out", plain, "-f", "md", "-q", "--no-figures").exit_code == 0
    assert not (plain / "check.md").exists()


@pytest.mark.parametrize("rows, flagged", [(OVERDISPERSED, True), (BINOMIAL, False)], ids=["overdispersed", "binomial"])
def test_run_prints_a_line_when_a_check_flags_its_fit(tmp_path, rows, flagged):
    mini_study(tmp_path / "inputs", rows)
    paths = _inputs(tmp_path / "inputs")
    common = ["run", "--framework", paths["framework"], "--priors", paths["priors"], "--evidence", paths["evidence"],
              "--sources", paths["sources"], "--draws", 500, "--chains", 2]  # the default warm-up: longer if the gate fails
    outcome = invoke(*common, "--out", tmp_path / "out", "-q")
    assert outcome.exit_code == 0, outcome.output
    text = " ".join(outcome.output.split())
    assert ("Model check:" in text) == flagged, text
    if flagged:
        assert "Overdispersion of counts" in text and f"bayescpec check {tmp_path / 'out'}" in text
    data = json.loads(invoke(*common, "--out", tmp_path / "out2", "-q", "--json").stdout)
    assert data["check"]["passed"] is (not flagged)


def _inputs(folder):
    return {"framework": folder / "framework.toml", "priors": folder / "mini.toml", "evidence": folder / "evidence.csv",
            "sources": folder / "sources.csv"}
