"""Report tables and exporters (issue 3): arithmetic, every format, LaTeX compilation, CLI, goldens.

Structure and arithmetic tests use synthetic results built without sampling (tests/report_fixtures.py).
The golden tables fit the shipped data once per module (small draws, fixed seed and as-of date).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescpec.outputs import export as ex, layout as lo, render as rn, tables as tb
from bayescpec.cli import app
from bayescpec.workflow.compare import (
    SHIPPED_PRIOR_SETS,
    available_prior_sets,
    prior_comparison_propositions,
    prior_comparison_table,
)
from bayescpec.errors import InputError
from bayescpec.workflow.store import save_result
from bayescpec.outputs.summary import ipcc_likelihood

from report_fixtures import NASTY_LABEL, make_result

ROOT = Path(__file__).resolve().parent.parent
PDFLATEX = shutil.which("pdflatex")
needs_latex = pytest.mark.skipif(
    PDFLATEX is None and not os.environ.get("CI"),
    reason="pdflatex not installed (CI installs it in .ci/run; there this test fails instead of skipping)",
)


def read_export(path: Path) -> pd.DataFrame:
    """An exported CSV without its leading '#' provenance lines ('#' inside cells stays data)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(line for i, line in enumerate(lines) if not (line.startswith("#") and
                                                                 all(x.startswith("#") for x in lines[:i])))
    return pd.read_csv(io.StringIO(body), keep_default_na=False, na_values=[""])


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def logit(p):
    return np.log(p) - np.log1p(-p)


@pytest.fixture(scope="module")
def result():
    return make_result()


@pytest.fixture(scope="module")
def nasty():
    return make_result(channels={"sez": NASTY_LABEL, "di_g%": "Digital & more"},
                       links=[["sez", "security"], ["di_g%", "energy_debt"]],
                       ledger=[("e_1&", "sez", "potential", "signal", 1.0, np.nan, np.nan, "key_with_#hash"),
                               ("e2", "di_g%", "outcome", "count", np.nan, 2.0, 5.0, "k$y"),
                               ("e3", "security", "context", "signal", 0.0, np.nan, np.nan, "src")])


# ---------------------------------------------------------------------------------------------
# The two new tables: independent arithmetic
# ---------------------------------------------------------------------------------------------

def test_constraint_effect_table_matches_an_independent_computation(result):
    table = tb.constraint_effect_table(result, ci_kind="eti", ci_prob=0.9)
    post = result["posterior"].to_dataset()
    assert len(table) == 3 and list(table.columns[-4:]) == ["90% ETI lower", "90% ETI upper", "p_reduces", "p_material"]
    for _, row in table.iterrows():
        c, k = row["channel"], row["constraint"]
        theta = post["theta"].sel(channel=c).values
        load = post["loading"].sel(link=f"{c}|{k}").values
        sev = post["severity"].sel(constraint=k).values
        # a one-stage chain: theta = sigmoid(eta); with this constraint at typical (0): sigmoid(eta + L s)
        reduction = (sigmoid(logit(theta) + load * sev) - theta).ravel()
        assert row["reduction_mean"] == pytest.approx(reduction.mean(), abs=1e-9)
        assert row["reduction_sd"] == pytest.approx(reduction.std(), abs=1e-9)
        assert row["90% ETI lower"] == pytest.approx(np.quantile(reduction, 0.05), abs=1e-3)
        assert row["90% ETI upper"] == pytest.approx(np.quantile(reduction, 0.95), abs=1e-3)
        assert row["p_reduces"] == pytest.approx((reduction > 0).mean())
        assert row["loading_mean"] == pytest.approx(load.mean())
    # constraints in framework order, channels in framework order within a constraint
    assert list(zip(table["constraint"], table["channel"])) == [
        ("security", "sez"), ("energy_debt", "sez"), ("energy_debt", "green")]


def test_with_a_single_linked_constraint_the_reduction_is_base_theta_minus_theta():
    one = make_result(constraints={"security": "Security"}, links=[["sez", "security"]])
    table = tb.constraint_effect_table(one)
    post = one["posterior"].to_dataset()
    expected = (post["base_theta"] - post["theta"]).sel(channel="sez").mean().item()
    assert table["reduction_mean"].item() == pytest.approx(expected, abs=1e-9)
    # a positive severity and loading lowers theta: the reduction is positive where severity > 0
    assert table["p_reduces"].item() == pytest.approx((post["severity"] > 0).mean().item())


def test_constraint_effect_table_hdi_and_no_constraints():
    table = tb.constraint_effect_table(make_result(), ci_kind="hdi", ci_prob=0.8)
    assert "80% HDI lower" in table.columns and "80% HDI upper" in table.columns
    assert (table["80% HDI lower"] <= table["reduction_mean"]).all()
    empty = tb.constraint_effect_table(make_result(constraints={}, links=[],
                                                   ledger=[("e1", "sez", "potential", "signal", 1.0,
                                                            np.nan, np.nan, "s")]))
    assert len(empty) == 0 and "reduction_mean" in empty.columns


def test_evidence_table_lists_every_row_with_its_log_likelihood(result):
    table = tb.evidence_table(result)
    ledger_ids = list(result["evidence"]["evidence"].values)
    assert sorted(table["evidence"]) == sorted(ledger_ids)
    rows = result["log_likelihood"]["rows"]
    for _, row in table.iterrows():
        assert row["loglik_mean"] == pytest.approx(rows.sel(evidence=row["evidence"]).mean().item())
    # ordered by tier rank (context, potential, mechanism, outcome), then target, then file order
    assert list(table["evidence"]) == ["ctx-sec-1", "ctx-energy-1", "pot-sez-1", "pot-sez-2", "pot-digital-1",
                                       "mech-sez-1", "out-green-1"]
    for column in ("tier", "target", "source", "weight", "note"):
        assert column in table.columns


def test_evidence_table_without_pointwise_log_likelihood_is_nan():
    table = tb.evidence_table(make_result(with_loglik=False))
    assert table["loglik_mean"].isna().all() and len(table) == 7


# ---------------------------------------------------------------------------------------------
# Number formatting
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, digits, expected", [
    (-0.001, 2, "0.00"), (0.126, 2, "0.13"), (-1.5, 1, "-1.5"), (float("nan"), 2, "–"), (3.14159, 3, "3.142")])
def test_fmt_number(value, digits, expected):
    assert lo.fmt_number(value, digits) == expected


@pytest.mark.parametrize("p, expected", [
    (0.0, "0.00"), (0.003, "<0.01"), (0.005, "0.01"), (0.5, "0.50"), (0.994, "0.99"), (0.996, ">0.99"), (1.0, "1.00")])
def test_fmt_probability_never_shows_0_or_1_unless_exact(p, expected):
    assert lo.fmt_probability(p, 2) == expected


def test_signed_change_has_no_negative_zero():
    assert lo.fmt_number(-0.0001, 2, signed=True) == "0.00"
    assert lo.fmt_number(0.2, 2, signed=True) == "+0.20"


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------

PROVENANCE_PATTERNS = [
    r"Prior set: synthetic", r"evidence abababababab", r"as of 2026-01-31", r"seed 4242", r"200 draws × 2 chains",
    r"max R-hat 1\.003", r"min bulk ESS 1234", r"0 divergences", r"bayescpec 0\.0\.test", r"rounded to 2 decimals"]


@pytest.mark.parametrize("name", tb.TABLES)
def test_markdown_tables_have_rows_headers_and_provenance(result, name):
    tables = tb.report_tables(result, ci_kind="hdi", ci_prob=0.8, threshold=0.6)
    text = ex.render_table(tables[name], name=name, format="md", ci_kind="hdi", ci_prob=0.8, threshold=0.6)
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + len(tables[name])  # header, separator, one line per row
    assert len({line.count(" | ") for line in table_lines[2:]}) <= 1
    for pattern in PROVENANCE_PATTERNS:
        assert re.search(pattern, text), pattern
    if name in ("channels", "constraints", "constraint-effects"):
        assert "80% HDI" in table_lines[0]
        assert "80% highest-density credible intervals" in text
    if name == "channels":
        assert "P(θ > 0.6)" in table_lines[0] and "τ = 0.6" in text


def test_markdown_channels_numbers_are_the_rounded_table_numbers(result):
    table = tb.report_tables(result)["channels"]
    text = ex.render_table(table, name="channels", format="md")
    row = next(line for line in text.splitlines() if line.startswith("| sez "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    first = table.iloc[0]
    assert cells[1] == f"{first['prior_mean']:.2f}" and cells[2] == f"{first['posterior_mean']:.2f}"
    assert cells[4] == f"[{first['90% ETI lower']:.2f}, {first['90% ETI upper']:.2f}]"
    assert cells[5] == f"{first['prior_p_converting']:.2f}"  # prior P(θ > τ): the page's "before the evidence"
    mcse = first["p_converting_mcse"]
    assert cells[7] == ("<0.001" if mcse < 0.0005 else f"{mcse:.3f}")  # the MCSE of P(converting)
    assert cells[8].removesuffix(" ≈") == ipcc_likelihood(first["p_converting"])
    assert cells[9:] == ["2", "1", "0"]  # potential, mechanism, outcome rows of sez


def test_markdown_escapes_pipes(nasty):
    text = ex.render_table(tb.report_tables(nasty)["channels"], name="channels", format="md")
    assert r"\| θ" in text and "| θ" not in text.replace(r"\| θ", "")


def test_failed_convergence_is_stated_in_every_footnote():
    bad = make_result(converged=False)
    for name, table in tb.report_tables(bad).items():
        assert "CONVERGENCE CHECKS FAILED" in ex.render_table(table, name=name, format="md")


def test_csv_export_round_trips_with_stated_rounding(tmp_path, result):
    paths = ex.export_tables(result, out=tmp_path / "t", formats=["csv"], digits=3)
    assert [p.name for p in paths] == [f"{n}.csv" for n in tb.TABLES]
    channels = read_export(tmp_path / "t" / "channels.csv")
    expected = tb.report_tables(result)["channels"]
    assert list(channels["channel"]) == list(expected["channel"])
    np.testing.assert_allclose(channels["posterior_mean"], expected["posterior_mean"].round(3), atol=1e-12)
    text = (tmp_path / "t" / "channels.csv").read_text()
    assert "# All numbers rounded to 3 decimals" in text and "# sha256_evidence: abababababab" in text
    evidence = read_export(tmp_path / "t" / "evidence.csv")
    assert len(evidence) == 7 and "note" in evidence.columns


def test_html_is_made_by_great_tables_and_escapes_markup(nasty):
    text = ex.render_table(tb.report_tables(nasty)["channels"], name="channels", format="html")
    assert text.lstrip().lower().startswith("<!doctype html") and "gt_table" in text
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "Evidence rows per tier" in text  # spanner
    assert "Prior set: synthetic" in text and "gt_sourcenote" in text


@pytest.mark.parametrize("ch, expected", [
    ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"),
    ("~", r"$\sim$"), ("^", r"\^{}"), ("\\", r"$\backslash$"), ("<", "$<$"), (">", "$>$"), ("|", "$|$"),
    ("θ", r"$\theta$"), ("τ", r"$\tau$"), ("×", r"$\times$"), ("–", "--"), ("é", "é"), ("Ω", r"$\Omega$")])
def test_latex_escape(ch, expected):
    assert rn.latex_escape(f"a{ch}b") == f"a{expected}b"


def test_latex_uses_booktabs_and_states_provenance(result):
    text = ex.render_table(tb.report_tables(result)["channels"], name="channels", format="latex")
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule", r"\caption{", r"\label{tab:bayescpec-channels}"):
        assert command in text
    assert r"\hline" not in text
    assert r"200 draws $\times$ 2 chains" in text and "max R-hat 1.003" in text


def _compile(folder: Path, tex: str) -> subprocess.CompletedProcess:
    return subprocess.run([PDFLATEX or "pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex], cwd=folder,
                          capture_output=True, text=True, timeout=120)


@needs_latex
def test_latex_exports_compile_alone_and_inside_a_document(tmp_path, nasty):
    paths = ex.export_tables(nasty, out=tmp_path / "tex", formats=["latex"])
    assert len(paths) == len(tb.TABLES)
    for path in paths:
        run = _compile(path.parent, path.name)
        assert run.returncode == 0, f"{path.name} failed to compile:\n{run.stdout[-3000:]}"
        assert path.with_suffix(".pdf").stat().st_size > 1000
    # the same files \input into a paper
    paper = tmp_path / "tex" / "paper.tex"
    paper.write_text("\\documentclass{article}\n\\usepackage{booktabs,array,graphicx,longtable}\n"
                     "\\begin{document}\nText before.\n"
                     + "".join(f"\\input{{{p.name}}}\n" for p in paths) + "Text after.\n\\end{document}\n")
    run = _compile(paper.parent, paper.name)
    assert run.returncode == 0, run.stdout[-3000:]
    log = (tmp_path / "tex" / "paper.log").read_text(errors="replace")
    assert "Missing character" not in log
    assert "Output written" in log and "Text after." in paper.read_text()


@needs_latex
def test_a_long_ledger_becomes_a_longtable_that_compiles(tmp_path):
    ledger = [(f"pot-sez-{i}", "sez", "potential", "signal", 1.0, np.nan, np.nan, f"src_{i}") for i in range(60)]
    big = make_result(ledger=ledger)
    path = next(p for p in ex.export_tables(big, out=tmp_path / "long", formats=["latex"]) if p.name == "evidence.tex")
    assert r"\begin{longtable}" in path.read_text()
    for _ in range(2):  # longtable settles its column widths on the second run
        run = _compile(path.parent, path.name)
        assert run.returncode == 0, run.stdout[-3000:]


# ---------------------------------------------------------------------------------------------
# export_tables: arguments and atomicity
# ---------------------------------------------------------------------------------------------

def test_export_tables_writes_every_table_in_every_format(tmp_path, result):
    paths = ex.export_tables(result, out=tmp_path / "all")
    assert len(paths) == len(tb.TABLES) * len(ex.FORMATS)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(p.name for p in paths)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".all.staging")]


@pytest.mark.parametrize("kwargs, message", [
    ({"formats": ["docx"]}, "unknown format 'docx'; allowed: csv, md, latex, html"),
    ({"formats": []}, "give at least one"),
    ({"digits": -1}, "--digits: must be an integer from 0 to 6; found -1"),
    ({"ci_kind": "hpd"}, "ci_kind must be 'eti' or 'hdi'; found 'hpd'"),
    ({"ci_prob": 1.5}, "ci_prob must be in (0, 1); found 1.5"),
    ({"threshold": 0}, "threshold must be in (0, 1); found 0"),
])
def test_export_tables_rejects_bad_options_and_writes_nothing(tmp_path, result, kwargs, message):
    with pytest.raises(InputError) as info:
        ex.export_tables(result, out=tmp_path / "out", **kwargs)
    assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_render_table_rejects_unknown_table_and_format(result):
    tables = tb.report_tables(result)
    with pytest.raises(InputError, match="unknown format 'pdf'"):
        ex.render_table(tables["channels"], name="channels", format="pdf")
    with pytest.raises(InputError, match="unknown table 'nope'"):
        ex.render_table(tables["channels"], name="nope", format="md")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    save_result(make_result(), folder / "result.nc")
    return folder


def test_cli_report_writes_tables_in_the_chosen_format(saved, tmp_path):
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", str(saved), "--format", "latex", "-f", "md", "--out", str(out), "--no-figures"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.{s}" for n in tb.TABLES for s in ("tex", "md")]
                                                          + ["index.html"])
    assert "channels.tex" in res.output and "kB" in res.output


def test_cli_report_defaults_to_every_format_and_figures_in_result_folder(tmp_path):
    save_result(make_result(), tmp_path / "r" / "result.nc")
    res = runner.invoke(app, ["report", str(tmp_path / "r" / "result.nc"), "--digits", "3"])
    assert res.exit_code == 0, res.output
    names = {p.name for p in (tmp_path / "r" / "report").iterdir()}
    assert {f"{n}{s}" for n in tb.TABLES for s in ex.FORMATS.values()} <= names
    assert {"forest.png", "forest.pdf", "prior-posterior.png", "evidence-ladder.pdf", "constraint-effects.png"} <= names
    assert "rounded to 3 decimals" in (tmp_path / "r" / "report" / "channels.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--format", "docx"], "--format: must be one of 'csv', 'md', 'latex', 'html' or 'all'; found 'docx'"),
    (["--ci-kind", "hpd"], "--ci-kind: must be 'eti' or 'hdi'; found 'hpd'"),
    (["--ci-prob", "2"], "--ci-prob: must be in (0, 1); found 2.0"),
    (["--threshold", "1"], "--threshold: must be in (0, 1); found 1.0"),
    (["--digits", "9"], "--digits: must be an integer from 0 to 6; found 9"),
])
def test_cli_report_bad_options_exit_2_and_write_nothing(saved, tmp_path, args, message):
    out = tmp_path / "never"
    res = runner.invoke(app, ["report", str(saved), "--out", str(out), *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_report_missing_or_foreign_result_exits_2(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no saved result there" in res.output and not (tmp_path / "o").exists()
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    res = runner.invoke(app, ["report", str(junk), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a readable bayescpec result" in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------------------------------------
# Prior comparison (tables from results, no fitting)
# ---------------------------------------------------------------------------------------------

def test_prior_comparison_flags_channels_whose_ipcc_term_changes():
    low = make_result(prior_set="low", posterior_base=(1.0, 30.0), seed=1)
    high = make_result(prior_set="high", posterior_base=(30.0, 1.0), seed=2)
    table = prior_comparison_table({"low": low, "high": high})
    assert table.attrs["prior_sets"] == ["low", "high"]
    assert (table["low p_converting"] < 0.1).all() and (table["high p_converting"] > 0.9).all()
    assert table["likelihood_changes"].all()
    same = prior_comparison_table({"low": low, "low2": make_result(prior_set="low2", posterior_base=(1.0, 30.0), seed=1)})
    assert not same["likelihood_changes"].any()
    text = ex.render_table(table, name="prior-comparison", format="md")
    assert "low: P(θ > 0.5)" in text and "high: 90% ETI" in text and "Term changes" in text
    assert "priors low " in text and "high " in text  # each prior file's hash in the footnote
    props = prior_comparison_propositions({"low": low, "high": high})
    assert list(props["proposition"]) == ["P1", "P2", "P3"] and props["likelihood_changes"][:2].all()
    assert "Posterior P" in ex.render_table(props, name="prior-comparison-propositions", format="md")


def test_prior_comparison_refuses_results_fitted_on_different_evidence():
    a = make_result(prior_set="a")
    b = make_result(prior_set="b", evidence_hash="cd" * 32)
    with pytest.raises(InputError, match="needs the same evidence in every fit"):
        prior_comparison_table({"a": a, "b": b})


def test_available_prior_sets_lists_shipped_then_user_added(tmp_path):
    assert available_prior_sets(ROOT / "priors" / "framework.toml")[:4] == list(SHIPPED_PRIOR_SETS)
    folder = tmp_path / "priors"
    shutil.copytree(ROOT / "priors", folder)
    shutil.copy(folder / "skeptical.toml", folder / "my_expert.toml")
    names = available_prior_sets(folder / "framework.toml")
    assert names == [*SHIPPED_PRIOR_SETS, "my_expert"] and "framework" not in names


def test_cli_compare_priors_reports_bad_prior_set_before_fitting(tmp_path):
    res = runner.invoke(app, ["compare-priors", "--priors", "baseline", "--priors", "nonexistent_set",
                              "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 2 and "nonexistent_set" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "cmp").exists()


@needs_latex
def test_shipped_tables_compile_as_latex(shipped_result, tmp_path):
    paths = ex.export_tables(shipped_result, out=tmp_path / "tex", formats=["latex"])
    for path in paths:
        run = _compile(path.parent, path.name)
        assert run.returncode == 0, f"{path.name}:\n{run.stdout[-3000:]}"


# ---------------------------------------------------------------------------------------------
# The real prior comparison (four fits): slow
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_compare_priors_on_the_shipped_data(tmp_path):
    res = runner.invoke(app, ["compare-priors", "--draws", "150", "--tune", "150", "--chains", "2",
                              "--as-of", "2026-06-30", "--out", str(tmp_path / "cmp"), "-f", "csv", "-f", "latex"])
    assert res.exit_code == 0, res.output
    table = read_export(tmp_path / "cmp" / "prior-comparison.csv")
    for ps in SHIPPED_PRIOR_SETS:
        assert f"{ps} p_converting" in table.columns
    # the skeptical prior must leave every channel less likely to convert than the optimistic one
    assert (table["skeptical p_converting"] < table["optimistic p_converting"]).all()
    assert table["likelihood_changes"].any()
    text = (tmp_path / "cmp" / "prior-comparison.csv").read_text()
    assert "# prior_set: baseline, skeptical, optimistic, flat" in text
    if PDFLATEX:
        run = _compile(tmp_path / "cmp", "prior-comparison.tex")
        assert run.returncode == 0, run.stdout[-3000:]


# ---------------------------------------------------------------------------------------------
# Labels, banners, titles, prior-only results (issue 14)
# ---------------------------------------------------------------------------------------------

def test_constraints_are_shown_by_label_in_papers_and_by_id_in_csv(result):
    tables = tb.report_tables(result)
    for name in ("constraints", "constraint-effects"):
        for fmt in ("md", "html", "latex"):
            text = ex.render_table(tables[name], name=name, format=fmt)
            assert "Security risk" in text and "Energy debt" in text, (name, fmt)
        md_rows = [line for line in ex.render_table(tables[name], name=name, format="md").splitlines()
                   if line.startswith("| ")][1:]
        assert all("energy_debt" not in row and "| security |" not in row for row in md_rows)
        csv = read_export_text(ex.render_table(tables[name], name=name, format="csv"))
        assert set(csv["constraint"]) == {"security", "energy_debt"}


def read_export_text(text: str) -> pd.DataFrame:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return pd.read_csv(io.StringIO(body))


def test_a_failed_fit_has_a_banner_above_every_table_in_every_format():
    bad, good = make_result(converged=False), make_result()
    for name, table in tb.report_tables(bad).items():
        md = ex.render_table(table, name=name, format="md")
        assert md.startswith("> **WARNING: CONVERGENCE CHECKS FAILED (max R-hat 1.200 > 1.01)")
        page = ex.render_table(table, name=name, format="html")
        assert page.index('role="alert"') < page.index("gt_table") and "CONVERGENCE CHECKS FAILED" in page
        tex = ex.render_table(table, name=name, format="latex")
        before_table = tex.split(r"\begin{tabular}")[0].split(r"\begin{longtable}")[0]
        assert r"\fbox{" in before_table and "CONVERGENCE CHECKS FAILED" in before_table
    for name, table in tb.report_tables(good).items():
        for fmt in ("md", "html", "latex"):
            text = ex.render_table(table, name=name, format=fmt)
            assert "WARNING" not in text and 'role="alert"' not in text and r"\fbox{" not in text


@needs_latex
def test_the_failed_fit_banner_compiles(tmp_path):
    bad = make_result(converged=False)
    path = tmp_path / "channels.tex"
    path.write_text(ex.render_table(tb.report_tables(bad)["channels"], name="channels", format="latex"))
    run = subprocess.run([PDFLATEX or "pdflatex", "-interaction=nonstopmode", "-halt-on-error", path.name],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]


def test_html_tables_have_a_title(result):
    for name, table in tb.report_tables(result).items():
        page = ex.render_table(table, name=name, format="html")
        title = re.search(r"<title>(.*?)</title>", page)
        assert title and title.group(1).strip(), name
        assert page.index("<title>") < page.index("</head>")


def test_a_prior_only_result_says_so_in_every_footnote():
    empty = make_result(ledger=[], with_loglik=False)
    assert empty.attrs["evidence_rows"] == 0
    for name, table in tb.report_tables(empty).items():
        for fmt in ("md", "html", "latex", "csv"):
            assert "PRIOR ONLY" in ex.render_table(table, name=name, format=fmt), (name, fmt)
    assert "PRIOR ONLY" not in ex.render_table(tb.report_tables(make_result())["channels"], name="channels",
                                               format="md")


def test_markdown_writes_each_spanner_into_its_columns_headers():
    """Markdown has one header row: a spanner (drawn above its columns in TeX and HTML) is written into
    each of its columns' headers, so 'without | with' under two spanners stay distinguishable."""
    from bayescpec.outputs.layout import Layout
    from bayescpec.outputs.render import render_latex, render_markdown

    cells = pd.DataFrame({"unit": ["a"], "mean_without": ["0.1"], "mean_with": ["0.2"], "p_without": ["0.3"],
                          "p_with": ["0.4"], "posterior_sd": ["0.5"]})
    layout = Layout(name="x", title="T", cells=cells,
                    headers={"unit": "Unit", "mean_without": "without", "mean_with": "with", "p_without": "without",
                             "p_with": "with", "posterior_sd": "Posterior sd"},
                    align=dict.fromkeys(cells.columns, "r"), notes=["n"],
                    spanners=[("Posterior mean", ["mean_without", "mean_with", "posterior_sd"]),
                              ("P(hypothesis)", ["p_without", "p_with"])])
    header = next(line for line in render_markdown(layout).splitlines() if line.startswith("| "))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Unit", "Posterior mean: without", "Posterior mean: with", "P(hypothesis): without", "P(hypothesis): with",
        "Posterior sd"]  # a header that already begins with its spanner's word is left alone
    assert "\\multicolumn{3}{c}{Posterior mean}" in render_latex(layout)  # TeX keeps the spanner row
