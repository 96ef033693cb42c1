"""Every exported LaTeX table is readable when compiled (issue 22, point 2): nothing past the page's edge,
no column printed over the next, no note running off the page -- checked on the compiled PDF's word boxes
(``pdftotext -bbox``, :mod:`pdf_layout`) and the LaTeX log, not only pdflatex's exit code.

Checked on a synthetic result whose framework has very long texts (propositions in parts, long labels,
an identifier of 90 characters), on its prior comparison, and on the shipped study with every analysis
table (explain, next, robustness, whatif). The tools come with .ci/run (texlive, poppler-utils); locally
the tests skip without them, under CI they fail instead.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest

from bayescpec.outputs import export as ex
from bayescpec.outputs.latex import plan_columns, text_width, unbroken_columns
from bayescpec.outputs.layout import layout
from bayescpec.outputs.tables import TABLES, report_tables
from bayescpec.workflow.compare import prior_comparison_propositions, prior_comparison_table

from pdf_layout import compile_latex, layout_problems
from report_fixtures import LONG_PROPOSITION, long_text_result

needs_tools = pytest.mark.skipif(
    (shutil.which("pdflatex") is None or shutil.which("pdftotext") is None) and not os.environ.get("CI"),
    reason="pdflatex or pdftotext not installed (CI installs them in .ci/run; there this test fails instead)")


def problems_of(paths: list[Path]) -> dict[str, list[str]]:
    """Compile each .tex (twice for a longtable) and list what a reader would see go wrong, per file."""
    found = {}
    for path in paths:
        if path.suffix != ".tex":
            continue
        run = compile_latex(path, runs=2 if r"\begin{longtable}" in path.read_text() else 1)
        assert run.returncode == 0, f"{path.name} failed to compile:\n{run.stdout[-3000:]}"
        problems = layout_problems(path.with_suffix(".pdf"))
        if problems:
            found[path.name] = problems[:8] + ([f"... {len(problems) - 8} more"] if len(problems) > 8 else [])
    return found


def write_latex(tables: dict, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = folder / f"{name}.tex"
        path.write_text(ex.render_table(table, name=name, format="latex"), encoding="utf-8")
        paths.append(path)
    return paths


@needs_tools
def test_every_table_with_very_long_texts_fits_its_page(tmp_path):
    long = long_text_result()
    paths = ex.export_tables(long, out=tmp_path / "long", formats=["latex"])
    assert len(paths) == len(TABLES)
    others = {"a": long, "b": long_text_result(prior_set="other", seed=3)}
    paths += write_latex({"prior-comparison": prior_comparison_table(others),
                          "prior-comparison-propositions": prior_comparison_propositions(others)}, tmp_path / "cmp")
    assert problems_of(paths) == {}
    # the long texts are in the table in full, wrapped: not cut, not moved out of sight
    text = (tmp_path / "long" / "propositions.tex").read_text()
    assert "Part (c)" in text and "underembedded" in text and r"\begin{longtable}" in text


@needs_tools
def test_every_table_of_the_shipped_study_fits_its_page(shipped_result, tmp_path):
    from bayescpec.analysis.report import analytics

    paths = ex.export_tables(shipped_result, out=tmp_path / "std", formats=["latex"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = analytics(shipped_result, refit=False, top=3)
    analysis = {name: table for out in found for name, table in out.tables.items()}
    assert {"explain-packages", "explain-rows", "next", "robustness", "power-scaling", "tipping-points",
            "whatif"} <= set(analysis)
    paths += write_latex(analysis, tmp_path / "analysis")
    assert problems_of(paths) == {}


@needs_tools
def test_the_layout_check_sees_overlap_and_text_past_the_edge(tmp_path):
    """Not vacuous: the failures of issue 22 -- a query column run into the next column, a note too wide
    for the page -- are reported."""
    note = "a\\_note\\_that\\_cannot\\_break " * 12
    (tmp_path / "bad.tex").write_text(
        "\\documentclass{article}\\usepackage[margin=1.5cm]{geometry}\\pagestyle{empty}\\begin{document}\n"
        "\\begin{tabular}{p{1.5cm}r}\\texttt{implies(reach[digital][productivity]} & 0.73 \\\\ \\end{tabular}\n\n"
        f"\\noindent\\mbox{{{note}}}\n\\end{{document}}\n")
    assert compile_latex(tmp_path / "bad.tex").returncode == 0
    problems = layout_problems(tmp_path / "bad.pdf")
    assert any("printed over each other" in p and "0.73" in p for p in problems), problems
    assert any("reaches x =" in p for p in problems) and any("overfull box" in p for p in problems)


def test_long_text_columns_wrap_and_share_the_line_while_numbers_and_ids_stay_whole():
    long = long_text_result()
    tables = report_tables(long)
    props = layout("propositions", tables["propositions"], digits=2, ci_kind="eti", ci_prob=0.9, threshold=0.5)
    plan = plan_columns(props)
    assert {"statement", "query"} <= set(plan.wrap) and plan.long and plan.landscape and plan.fits
    line = 709.6 / 9.0 - 2 * len(props.cells.columns) * 4.0 / 9.0  # landscape line, less the column gaps (em)
    assert sum(plan.wrap.values()) + plan.fixed == pytest.approx(line, abs=0.5)
    assert all(c not in plan.wrap for c in ("prior_probability", "posterior_probability", "change"))
    assert plan.wrap["statement"] > plan.wrap["query"] / 3  # the prose keeps a readable width
    assert text_width(LONG_PROPOSITION["statement"]) > 4 * plan.wrap["statement"]
    ledger = layout("evidence", tables["evidence"], digits=2, ci_kind="eti", ci_prob=0.9, threshold=0.5)
    assert {"evidence", "observed"} <= set(unbroken_columns(ledger)) and "evidence" not in plan_columns(ledger).wrap
    # a short table stays a float with natural columns
    channels = plan_columns(layout("channels", report_tables(long)["channels"], digits=2, ci_kind="eti",
                                   ci_prob=0.9, threshold=0.5))
    assert not channels.long
