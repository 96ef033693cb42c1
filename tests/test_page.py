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
import xarray as xr  # noqa: E402

from bayescpec.outputs.figures import FIGURES  # noqa: E402
from bayescpec.outputs.layout import fmt_number, fmt_probability, layout  # noqa: E402
from bayescpec.outputs.page import PageSection, bottom_line, headline  # noqa: E402
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


def text_of(page: str) -> str:
    """The page's text as a reader sees it: markup (the no-wrap spans) removed, entities decoded."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<style.*?</style>", "", page, flags=re.S)))


def test_the_page_states_every_verdict_in_words_with_its_numbers(tmp_path):
    result = make_result()
    write_report(result, out=tmp_path, formats=("csv",), figures=False)
    page = page_of(tmp_path)
    assert re.search(r"<title>synthetic framework: the study at a glance</title>", page)
    text = text_of(page)
    table = channel_table(result)
    for r in table.to_dict("records"):
        sentence = (f"{r['label']} ({r['channel']}): {r['likelihood']} to be converting "
                    f"(P = {fmt_probability(r['p_converting'])}; before the evidence "
                    f"{fmt_probability(r['prior_p_converting'])}; 90% interval of θ "
                    f"{fmt_number(r['90% ETI lower'])}–{fmt_number(r['90% ETI upper'])})")
        assert sentence in text, sentence
    assert headline(result)["propositions"][0].startswith("P1 — SEZ converts Verdict:")
    for line in headline(result)["propositions"]:
        assert line.split(" Verdict:")[0] in text
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


# ------------------------------------------------------------------ issue 22, point 7: the page for a policy reader
def _posterior_like_prior(result):
    """``result`` whose posterior θ draws are its prior draws: the evidence moved nothing."""
    post = result["posterior"].to_dataset()
    prior = result["prior"]["theta"].values.reshape(post.sizes["chain"], post.sizes["draw"], -1)
    result["posterior"] = xr.DataTree(post.assign(theta=(("chain", "draw", "channel"), prior)))
    return result


def test_the_bottom_line_says_what_the_numbers_say(tmp_path):
    low = make_result()  # posterior θ ~ Beta(2, 5): no channel likely
    table = channel_table(low)
    line = bottom_line(low)
    assert line.startswith("Bottom line (7 evidence rows as of 2026-01-31): no channel is yet likely to be converting")
    lowest, highest = table.loc[table["p_converting"].idxmin()], table.loc[table["p_converting"].idxmax()]
    assert (f"from {fmt_probability(lowest['p_converting'])} ({lowest['channel']}) to "
            f"{fmt_probability(highest['p_converting'])} ({highest['channel']})") in line
    change = (table["p_converting"] - table["prior_p_converting"]).abs()
    moved = table.loc[change.idxmax()]  # prior Beta(2, 2) against posterior Beta(2, 5): a real move
    assert (f"the evidence moved {moved['channel']} most, from {fmt_probability(moved['prior_p_converting'])} to "
            f"{fmt_probability(moved['p_converting'])}") in line
    high = make_result(posterior_base=(30.0, 1.0))
    assert "every channel is likely to be converting" in bottom_line(high)
    mixed = make_result()
    theta = mixed["posterior"]["theta"].values
    theta[..., 0] = 0.9  # sez certainly above τ
    assert "1 of 3 channels is likely to be converting (sez)" in bottom_line(mixed)
    still = _posterior_like_prior(make_result())
    assert "the evidence has not moved any channel's P beyond Monte Carlo noise" in bottom_line(still)
    assert bottom_line(make_result(ledger=[], with_loglik=False)).startswith("Bottom line: prior only")
    write_report(low, out=tmp_path, formats=("md",), figures=False)
    page = page_of(tmp_path)
    assert page.index('id="bottom-line"') < page.index('id="verdicts"') and line in text_of(page)


def test_prior_p_and_the_mean_of_theta_are_named_apart_and_explained(tmp_path):
    result = make_result()
    write_report(result, out=tmp_path, formats=("md",), figures=False)
    text = text_of(page_of(tmp_path))
    first = channel_table(result).iloc[0]
    assert "'before the evidence' is the same probability under the prior set alone (the tables' prior P(θ > 0.5))" in text
    assert (f"a different number -- sez's θ averages {fmt_number(first['posterior_mean'])} and exceeds 0.5 with "
            f"probability {fmt_probability(first['p_converting'])}") in text
    assert "Prior P(θ > 0.5)" in text and "Prior mean θ" in text  # both columns, named apart, in the table
    assert "prior P =" not in text  # the old unexplained term


def test_no_path_of_the_machine_appears_on_the_page(tmp_path):
    import json

    result = make_result()
    home = tmp_path / "home" / "analyst" / "corridor"
    result.attrs["input_files"] = json.dumps({"framework": str(home / "priors" / "framework.toml"),
                                             "priors": str(home / "priors" / "baseline.toml"),
                                             "evidence": str(home / "evidence" / "evidence.csv"),
                                             "sources": r"C:\Users\analyst\corridor\evidence\sources.csv"})
    write_report(result, out=tmp_path / "report", formats=("md",), figures=False)
    page = page_of(tmp_path / "report")
    for name in ("framework.toml", "baseline.toml", "evidence.csv", "sources.csv"):
        assert f"): {name}<" in page
    assert str(tmp_path) not in page and "analyst" not in page and "C:" not in page
    assert not re.search(r"(?:^|[\s(>\"'])/(?:[\w.-]+/)+[\w.-]*", text_of(page))  # no absolute POSIX path at all


def test_a_weakest_stage_is_named_only_where_it_stands_out(tmp_path):
    """sez breaks at its second stage in every draw; digital and green pass each of five stages with
    probability ~0.8, so their break probabilities (0.20, 0.16, 0.13, ...) are within the posterior's noise
    of one another -- as the shipped study's are (0.17-0.21)."""
    import numpy as np

    from bayescpec.outputs.chain import STANDS_OUT, stage_table
    from figure_fixtures import with_stages

    stages = {f"s{i}": f"Stage {i}" for i in range(5)}
    result = with_stages(make_result(), stages, pass_means={"sez": [0.97, 0.25, 0.97, 0.97, 0.97]})
    table = stage_table(result)
    post = result["posterior"].to_dataset()
    for channel in ("sez", "digital", "green"):  # independently: per draw, reach of the stage before x (1 - q)
        q = post["stage_probability"].sel(channel=channel).values.reshape(-1, 5)
        before = np.concatenate([np.ones((len(q), 1)), np.cumprod(q, axis=1)[:, :-1]], axis=1)
        largest = np.argmax(before * (1 - q), axis=1)
        rows = table[table["channel"] == channel]
        np.testing.assert_allclose(rows["p_weakest"], [np.mean(largest == j) for j in range(5)])
        np.testing.assert_allclose(rows["break_first"], (before * (1 - q)).mean(axis=0))
    shares = table.groupby("channel", sort=False)["p_weakest"].max()
    assert shares["sez"] > 0.99 and shares["digital"] < STANDS_OUT and shares["green"] < STANDS_OUT
    assert table.loc[table["stands_out"], ["channel", "stage"]].values.tolist() == [["sez", "s1"]]
    assert table["weakest"].sum() == 3  # the largest P(breaks first) is still recorded for every channel

    laid = layout("stages", table, digits=2, ci_kind="eti", ci_prob=0.9, threshold=0.5)
    assert laid.cells.loc[laid.cells["weakest"] != "", ["channel", "stage"]].values.tolist() == [["sez", "s1"]]
    assert any("No stage stands out for digital, green" in note for note in laid.notes)
    write_report(result, out=tmp_path, formats=("md",), figures=False)
    text = text_of(page_of(tmp_path))
    assert "Where the chains break: sez most likely breaks at s1 (P(breaks first) = 0.73" in text
    assert "no stage stands out for digital, green (P(breaks first) between" in text

    from bayescpec.outputs.figures import plot_stages

    fig = plot_stages(result)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert [t.endswith("no stage stands out") for t in titles] == [False, True, True]
    marks = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text().startswith("weakest")]
    assert marks == ["weakest (100% of draws)"]


@needs_browser
def test_the_page_fits_a_1280_px_window_and_never_breaks_a_number_date_or_interval(tmp_path):
    from report_fixtures import long_text_result

    write_report(long_text_result(), out=tmp_path, formats=("md",))
    seen = inspect_page((tmp_path / "index.html").as_uri(), chromium=CHROMIUM, width=1280)
    assert seen["errors"] == []
    laid = seen["layout"]
    assert laid["innerWidth"] == 1280 and laid["scrollWidth"] <= laid["innerWidth"]
    assert [t for t in laid["tables"] if t["overflow"] > 0] == []  # no table needs horizontal scrolling
    assert laid["broken"] == []
    assert len(laid["tables"]) >= 8


@needs_browser
def test_the_layout_check_sees_a_wide_table_and_a_broken_date(tmp_path):
    """Not vacuous: a table wider than its box and a date or an interval cut by a line break are reported."""
    (tmp_path / "index.html").write_text(
        '<!DOCTYPE html><html><head><title>t</title></head><body style="width:300px">'
        '<div class="table" id="table-wide" style="overflow-x:auto"><table><tr>'
        + "<td>cell_without_any_break_opportunity_at_all</td>" * 8 + "</tr></table></div>"
        '<p style="width:60px;word-break:break-all">2024-06-30 [-0.81, 2.31]</p></body></html>')
    laid = inspect_page((tmp_path / "index.html").as_uri(), chromium=CHROMIUM)["layout"]
    assert laid["tables"][0]["overflow"] > 0 and set(laid["broken"]) == {"2024-06-30", "[-0.81, 2.31]"}
