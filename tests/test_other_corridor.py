"""Another corridor's report carries no CPEC wording (issue 22, point 4): every text on the page, in the
tables' titles and notes and in the figures comes from the study's framework file or is generic.

A study made with ``bayescpec init`` (the template framework) gets a synthetic result of its shape -- its
channels, constraints, links, tiers, propositions -- with nothing sampled; its whole report (every table in
every format, every figure, index.html) and every analysis figure are searched for words that belong to
the shipped CPEC study.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import bayescpec as bc  # noqa: E402
from bayescpec.engine.assemble import framework_attrs  # noqa: E402
from bayescpec.inputs.scaffold import init_study  # noqa: E402
from bayescpec.outputs.report import write_report  # noqa: E402

from figure_fixtures import study_result  # noqa: E402
from figure_layout import text_artists  # noqa: E402
from test_figure_layout import FIGURES  # noqa: E402

#: words of the shipped study (its corridor, country, channels, paper) that must not reach another corridor's report
CPEC_WORDS = re.compile(r"\b(sez|sezs|cpec|gwadar|pakistan|pakistani|china|chinese|balochistan|"
                        r"new quality productive forces|productive forces|nqpf dimensions|tang|"
                        r"the paper|fig\. ?4|section (?:iii|vi|vii|8))\b", re.IGNORECASE)


def test_an_init_studys_report_and_figures_have_no_cpec_words(tmp_path):
    folder = tmp_path / "corridor"
    init_study(folder)
    study = bc.load_study(framework=folder / "priors" / "framework.toml", priors=folder / "priors" / "baseline.toml",
                          evidence=folder / "evidence" / "evidence.csv", sources=folder / "evidence" / "sources.csv")
    framework = framework_attrs(study)
    assert not CPEC_WORDS.search(str(framework)), "the template itself must be corridor-neutral"
    result = study_result(framework)
    paths = write_report(result, out=tmp_path / "report")
    found = {}
    for path in paths:
        if path.suffix in (".html", ".md", ".tex", ".csv"):
            text = path.read_text(encoding="utf-8")
            hits = sorted({m.group() for m in CPEC_WORDS.finditer(re.sub(r"<style.*?</style>", "", text, flags=re.S))})
            if hits:
                found[path.name] = hits
    assert {p.suffix for p in paths} >= {".html", ".md", ".tex", ".csv", ".png", ".pdf"}
    for name, draw in FIGURES.items():
        fig = draw(result)
        fig.canvas.draw()
        hits = sorted({m.group() for t in text_artists(fig) for m in CPEC_WORDS.finditer(t.get_text())})
        if hits:
            found[f"figure {name}"] = hits
        plt.close(fig)
    assert found == {}
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "Example channel: industrial upgrading in corridor zones" in page  # the framework's own words are used


def test_the_word_check_would_see_the_old_wording():
    """Not vacuous: the texts issue 22 found on an init study's page are caught."""
    for text in ("New quality productive forces: the five dimensions and the overall quantity",
                 "('sez' alone: the whole chain)", "Constraints in a feedback loop (Fig. 4 of the paper)"):
        assert CPEC_WORDS.search(text), text
