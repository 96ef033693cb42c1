"""index.html, the study at a glance (issue 14): its content, its extensibility, and a real browser.

The browser tests load the page in headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it)
and check that it loads without console errors or failed loads and that every image is displayed.
Locally they skip when Chromium is absent; under CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from bayescpec.outputs.figures import FIGURES  # noqa: E402
from bayescpec.outputs.layout import fmt_number, fmt_probability, layout  # noqa: E402
from bayescpec.outputs.page import PageSection, headline  # noqa: E402
from bayescpec.outputs.report import write_report  # noqa: E402
from bayescpec.outputs.summary import channel_table  # noqa: E402
from bayescpec.outputs.tables import TABLES, report_tables  # noqa: E402

from browser import find_chromium, inspect_page  # noqa: E402
from report_fixtures import make_result  # noqa: E402

CHROMIUM = find_chromium()
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium not installed (CI installs it in .ci/run; there this test fails instead of skipping)")


@pytest.fixture(scope="module")
def failed_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(make_result(converged=False), out=out, formats=("md",))
    return out


def page_of(folder: Path) -> str:
    return (folder / "index.html").read_text(encoding="utf-8")


def test_the_page_states_every_verdict_in_words_with_its_numbers(tmp_path):
    result = make_result()
    write_report(result, out=tmp_path, formats=("csv",), figures=False)
    page = page_of(tmp_path)
    assert re.search(r"<title>synthetic framework: the study at a glance</title>", page)
    table = channel_table(result)
    for r in table.to_dict("records"):
        sentence = (f"{r['label']} ({r['channel']}): {r['likelihood']} to be converting "
                    f"(P = {fmt_probability(r['p_converting'])}, 90% interval of θ "
                    f"{fmt_number(r['90% ETI lower'])}–{fmt_number(r['90% ETI upper'])}")
        assert sentence in page, sentence
    assert headline(result)["propositions"][0].startswith("P1 — SEZ converts Verdict:")
    for line in headline(result)["propositions"]:
        assert line.split(" Verdict:")[0] in page
    assert 'role="alert"' not in page and "Convergence checks passed" in page
    assert "PRIOR ONLY" not in page


def test_the_page_holds_every_table_figure_and_the_provenance(failed_report):
    page = page_of(failed_report)
    for name in TABLES:
        assert f'id="table-{name}"' in page and f'href="#tables-{name}"' in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources == [f"{stem}.png" for stem in FIGURES]
    for src in sources:
        assert (failed_report / src).is_file()     # resolved from the page's folder
    for text in ("Prior set: synthetic", "evidence abababababab", "seed 4242", "bayescpec 0.0.test",
                 "Input file (evidence): ev.csv"):
        assert text in page, text
    # the failed fit: a banner before the verdicts, and in every table
    assert page.index('role="alert"') < page.index('id="verdicts"')
    assert page.count("CONVERGENCE CHECKS FAILED") >= 1 + len(TABLES)
    # self-contained: no script, no external resource
    assert "<script" not in page.lower() and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page


def test_a_prior_only_page_says_so(tmp_path):
    write_report(make_result(ledger=[], with_loglik=False), out=tmp_path, formats=("md",), figures=False)
    page = page_of(tmp_path)
    assert "PRIOR ONLY: the evidence log has no rows" in page and "0 evidence rows" in page


def test_further_sections_are_passed_in_not_hard_coded(tmp_path):
    result = make_result()
    extra_table = layout("channels", report_tables(result)["channels"], digits=3, ci_kind="eti", ci_prob=0.9,
                         threshold=0.5)
    extra = PageSection("whatif", "What if the SEZ batch arrives", "Two paragraphs.\n\nThe second <b>one</b>.",
                        tables=(extra_table,), figures=(("forest.png", "The forest plot again"),))
    write_report(result, out=tmp_path, formats=("md",), sections=[extra])
    page = page_of(tmp_path)
    assert '<section id="whatif"><h2>What if the SEZ batch arrives</h2>' in page
    assert '<a href="#whatif">What if the SEZ batch arrives</a>' in page
    assert "<p>The second &lt;b&gt;one&lt;/b&gt;.</p>" in page
    whatif = page[page.index('id="whatif"'):page.index('id="provenance"')]
    assert 'src="forest.png"' in whatif and "The forest plot again" in whatif and "gt_table" in whatif
    assert page.index('id="tables-evidence"') < page.index('id="whatif"') < page.index('id="provenance"')


@needs_browser
def test_the_page_loads_in_a_real_browser_without_errors_and_shows_every_image(failed_report):
    seen = inspect_page((failed_report / "index.html").resolve().as_uri(), chromium=CHROMIUM)
    assert seen["errors"] == []
    assert seen["title"] == "synthetic framework: the study at a glance"
    assert [image["src"] for image in seen["images"]] == [f"{stem}.png" for stem in FIGURES]
    for image in seen["images"]:
        assert image["complete"] and image["naturalWidth"] > 0 and image["shownWidth"] > 0, image
    assert "At a glance: channels" in seen["text"] and "CONVERGENCE CHECKS FAILED" in seen["text"]


@needs_browser
def test_the_browser_check_can_fail(tmp_path, failed_report):
    """Not vacuous: a missing image and a console error are reported."""
    (tmp_path / "forest.png").write_bytes((failed_report / "forest.png").read_bytes())
    (tmp_path / "index.html").write_text('<!DOCTYPE html><html><head><title>t</title></head><body>'
                                         '<img src="forest.png"><img src="missing.png">'
                                         '<script>console.error("boom")</script></body></html>')
    seen = inspect_page((tmp_path / "index.html").as_uri(), chromium=CHROMIUM)
    assert any("missing.png" in e for e in seen["errors"]) and any("boom" in e for e in seen["errors"])
    assert [i["naturalWidth"] > 0 for i in seen["images"]] == [True, False]
