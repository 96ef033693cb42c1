"""Every figure's texts are readable (issue 22, point 5): drawn (Agg), no text artist reaches past the
canvas and no two overlap (matplotlib window extents, :mod:`figure_layout`) -- for every figure function
of ``outputs/figures.py`` and ``analysis/figures.py``, on a study shaped like the shipped CPEC framework
(five channels, eight constraints, 23 links, five stages, its labels) and on a two-channel study with long
labels. The inputs are synthetic (:mod:`figure_fixtures`): nothing is sampled.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import bayescpec as bc  # noqa: E402
from bayescpec.analysis import figures as afg  # noqa: E402
from bayescpec.engine.assemble import framework_attrs  # noqa: E402
from bayescpec.outputs import figures as fg  # noqa: E402

from conftest import EVIDENCE, FRAMEWORK  # noqa: E402
from figure_fixtures import (  # noqa: E402
    explanation_of,
    robustness_of,
    study_result,
    two_channel_result,
    value_table_of,
    whatif_table_of,
)
from figure_layout import text_problems  # noqa: E402


@pytest.fixture(scope="module")
def studies():
    shipped = bc.load_study(framework=FRAMEWORK, evidence=EVIDENCE)
    return {"cpec": study_result(framework_attrs(shipped)), "two-channel": two_channel_result()}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def trajectory_of(result):
    import datetime as dt
    import json

    import pandas as pd

    fw = json.loads(result.attrs["framework"])
    dates = ["2015-04-20", "2024-08-15", "2025-01-10", "2025-09-26", "2026-05-27"]
    table = pd.DataFrame([{"date": dt.date.fromisoformat(d), "rows": 2 + i, "channel": c, "label": label,
                           "prior_p_converting": 0.4, "p_converting": 0.3 + 0.05 * i, "converged": True}
                          for i, d in enumerate(dates) for c, label in fw["channels"].items()])
    table.attrs = {**{k: result.attrs[k] for k in ("prior_set", "as_of", "draws", "chains", "seed",
                                                   "bayescpec_version", "input_sha256")}, "threshold": 0.5}
    return table


FIGURES = {
    "forest": lambda r: fg.plot_forest(r),
    "prior-posterior": lambda r: fg.plot_prior_posterior(r),
    "evidence-ladder": lambda r: fg.plot_evidence_ladder(r),
    "constraint-effects": lambda r: fg.plot_constraint_effects(r),
    "stages": lambda r: fg.plot_stages(r),
    "trajectory": lambda r: fg.plot_trajectory(trajectory_of(r)),
    "waterfall": lambda r: afg.plot_waterfall(explanation_of(r), next(iter(explanation_of(r).waterfall))),
    "value-of-information": lambda r: afg.plot_value_of_information(value_table_of(r)),
    "robustness": lambda r: afg.plot_robustness(robustness_of(r)),
    "whatif": lambda r: afg.plot_whatif(whatif_table_of(r)),
}


def test_every_figure_function_is_checked():
    public = {name for name in fg.__all__ + afg.__all__ if name.startswith("plot_")}
    drawn = {"plot_forest", "plot_prior_posterior", "plot_evidence_ladder", "plot_constraint_effects", "plot_stages",
             "plot_trajectory", "plot_waterfall", "plot_value_of_information", "plot_robustness", "plot_whatif"}
    assert public == drawn and len(FIGURES) == len(drawn)


@pytest.mark.parametrize("study", ["cpec", "two-channel"])
@pytest.mark.parametrize("figure", list(FIGURES))
def test_no_text_is_cut_or_printed_over_another(studies, study, figure):
    fig = FIGURES[figure](studies[study])
    assert text_problems(fig) == []


def test_the_text_check_sees_a_clipped_title_and_overlapping_labels():
    """Not vacuous: the failures of issue 22 -- a title wider than its figure, two channel labels on one
    spot -- are reported."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_title("Reduction of each linked channel's conversion probability θ, 90% ETI " * 2)
    ax.annotate("digital", (0.5, 0.5))
    ax.annotate("gwadar", (0.51, 0.5))
    problems = text_problems(fig)
    assert any("reaches past the canvas" in p and "Reduction" in p for p in problems), problems
    assert any("'digital' and 'gwadar' overlap" in p for p in problems), problems


def test_the_waterfall_shows_the_whole_probability_scale(studies):
    """The prior and posterior bars are totals measured from 0: the axis runs 0..1, so that a move of a few
    thousandths is not drawn as long as the prior itself (the moves' sizes are written beside their bars)."""
    explanation = explanation_of(studies["cpec"])
    channel = next(iter(explanation.waterfall))
    fig = afg.plot_waterfall(explanation, channel)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 1.0)
    steps = explanation.waterfall[channel]
    bars = ax.patches
    assert bars[0].get_x() == 0 and bars[0].get_width() == pytest.approx(steps["p"].iloc[0])
    assert bars[-1].get_x() == 0 and bars[-1].get_width() == pytest.approx(steps["p"].iloc[-1])
    labels = {t.get_text() for t in ax.texts}
    assert f"{steps['p'].iloc[1]:+.3f}" in labels and f"{steps['p'].iloc[0]:.3f}" in labels
