"""Figures (issue 3): structure (axes, labels, number of series), not pixels; files; legibility proxies.

Each figure type was also rendered from the shipped data and looked at by eye when it was written
(see the README section on publication outputs); these tests keep the structure that made it legible.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402

from bayescpec.outputs import figures as fg  # noqa: E402
from bayescpec.errors import InputError  # noqa: E402
from bayescpec.outputs.tables import constraint_effect_table  # noqa: E402

from report_fixtures import CHANNELS, CONSTRAINTS, LINKS, LEDGER, make_result  # noqa: E402

MIN_FONT = 6.5  # points: nothing smaller than this is drawn


@pytest.fixture(scope="module")
def result():
    return make_result()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def texts(fig):
    out = [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts,
                                          *ax.get_xticklabels(), *ax.get_yticklabels())]
    out += [t for legend in fig.legends for t in legend.get_texts()]
    out += [t for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    if fig._suptitle is not None:
        out.append(fig._suptitle)
    return [t for t in out if t.get_text() and t.get_visible()]


def assert_legible(fig):
    fig.canvas.draw()
    small = [(t.get_text(), t.get_fontsize()) for t in texts(fig) if t.get_fontsize() < MIN_FONT]
    assert not small, f"text below {MIN_FONT} pt: {small[:5]}"
    width, height = fig.get_size_inches()
    assert 5 <= width <= 14 and 2.5 <= height <= 14


def test_forest_plot_structure(result):
    fig = fg.plot_forest(result, threshold=0.6, ci_kind="hdi", ci_prob=0.8)
    (ax,) = visible_axes(fig)
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 2  # prior intervals behind, posterior intervals in front
    prior, posterior = lines
    assert len(prior.get_segments()) == len(posterior.get_segments()) == len(CHANNELS)
    assert prior.get_zorder() < posterior.get_zorder() and prior.get_linewidth()[0] > posterior.get_linewidth()[0]
    taus = [line for line in ax.get_lines() if np.allclose(line.get_xdata(), 0.6) and len(line.get_xdata()) == 2]
    assert len(taus) == 1  # the threshold
    assert len(ax.get_yticklabels()) == len(CHANNELS)
    assert "(sez)" in ax.get_yticklabels()[0].get_text()  # top row is the first channel
    assert "θ" in ax.get_xlabel() and "probability" in ax.get_xlabel()
    assert "80% HDI" in ax.get_title() and "highest-density" in ax.get_title()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["prior 80% HDI", "posterior 80% HDI", "prior mean", "posterior mean", "threshold τ = 0.6"]
    assert sum("P(θ > τ)" in t.get_text() for t in ax.texts) == len(CHANNELS)
    # the posterior intervals drawn are the posterior's HDI
    post = result["posterior"]["theta"].sel(channel="sez").values.ravel()
    lo, hi = posterior.get_segments()[0][:, 0]
    assert lo >= post.min() - 1e-9 and hi <= post.max() + 1e-9 and np.mean((post >= lo) & (post <= hi)) == pytest.approx(0.8, abs=0.02)
    assert_legible(fig)


def test_prior_posterior_densities(result):
    fig = fg.plot_prior_posterior(result, threshold=0.4)
    axes = visible_axes(fig)
    assert len(axes) == len(CHANNELS)
    for ax, channel in zip(axes, CHANNELS):
        lines = ax.get_lines()
        assert len(lines) == 3  # prior, posterior, tau
        assert [line.get_label() for line in lines] == ["prior", "posterior", "τ = 0.4"]
        x, y = lines[1].get_data()
        assert x.min() >= 0 and x.max() <= 1 and (y >= 0).all()
        assert np.trapezoid(y, x) == pytest.approx(1.0, abs=0.05)  # a density
        assert f"({channel})" in ax.get_title()
        assert "θ" in ax.get_xlabel() and "density" in ax.get_ylabel()
    assert "τ = 0.4" in fig._suptitle.get_text()
    assert_legible(fig)


def test_evidence_ladder_counts_rows_per_channel_and_tier(result):
    fig = fg.plot_evidence_ladder(result)
    top, bottom = visible_axes(fig)
    bars = [c for c in top.containers if isinstance(c, BarContainer)]
    assert [b.get_label() for b in bars] == ["potential", "mechanism", "outcome"]
    channels = [t.get_text() for t in top.get_yticklabels()]
    assert channels == list(CHANNELS)
    for tier, container in zip(["potential", "mechanism", "outcome"], bars):
        widths = [patch.get_width() for patch in container.patches]
        expected = [sum(1 for row in LEDGER if row[1] == c and row[2] == tier) for c in CHANNELS]
        assert widths == expected
    context = [c for c in bottom.containers if isinstance(c, BarContainer)]
    assert len(context) == 1 and [p.get_width() for p in context[0].patches] == [
        sum(1 for row in LEDGER if row[1] == k) for k in CONSTRAINTS]
    assert "count" in top.get_xlabel() and "tier" in top.get_title()
    assert f"{len(LEDGER)} evidence rows" in fig._suptitle.get_text()
    assert_legible(fig)


def test_evidence_ladder_without_constraints_has_one_panel():
    fig = fg.plot_evidence_ladder(make_result(constraints={}, links=[], ledger=[
        ("e1", "sez", "potential", "signal", 1.0, np.nan, np.nan, "s")]))
    assert len(visible_axes(fig)) == 1


def test_constraint_effects_plot_matches_the_table(result):
    fig = fg.plot_constraint_effects(result, ci_kind="eti", ci_prob=0.9)
    left, right = visible_axes(fig)
    assert [t.get_text() for t in left.get_yticklabels()] == list(CONSTRAINTS)
    assert len([c for c in left.collections if isinstance(c, LineCollection)]) == 2  # prior, posterior
    assert "logit" in left.get_xlabel() and "severity" in left.get_xlabel()
    table = constraint_effect_table(result, ci_kind="eti", ci_prob=0.9)
    labels = [t.get_text() for t in right.get_yticklabels()]
    assert labels == [f"{k} → {c}" for k, c in zip(table["constraint"], table["channel"])]
    (means,) = [line for line in right.get_lines() if line.get_marker() == "o"]
    np.testing.assert_allclose(means.get_xdata(), table["reduction_mean"].values)
    (intervals,) = [c for c in right.collections if isinstance(c, LineCollection)]
    np.testing.assert_allclose([s[:, 0] for s in intervals.get_segments()],
                               table[["90% ETI lower", "90% ETI upper"]].values)
    assert "θ with the severity at typical − θ" in right.get_xlabel()
    assert "90% ETI" in right.get_title() and "90% ETI" in left.get_title()
    assert len(LINKS) == len(labels)
    assert_legible(fig)


def test_constraint_effects_without_constraints_says_so():
    fig = fg.plot_constraint_effects(make_result(constraints={}, links=[], ledger=[
        ("e1", "sez", "potential", "signal", 1.0, np.nan, np.nan, "s")]))
    assert "none to show" in fig._suptitle.get_text()


def test_save_figures_writes_png_and_pdf(tmp_path, result):
    paths = fg.save_figures(result, out=tmp_path / "figs", dpi=100)
    assert [p.name for p in paths] == [f"{stem}.{fmt}" for stem in fg.FIGURES for fmt in ("png", "pdf")]
    for path in paths:
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if path.suffix == ".png" else head.startswith(b"%PDF")
        assert path.stat().st_size > 5000
    image = plt.imread(tmp_path / "figs" / "forest.png")
    assert image.shape[1] >= 700 and image[..., :3].std() > 0.05  # not blank


@pytest.mark.parametrize("kwargs, message", [
    ({"formats": ["svg"]}, "allowed: png, pdf"),
    ({"ci_kind": "hpd"}, "ci_kind must be 'eti' or 'hdi'"),
    ({"threshold": 1.2}, "threshold must be in (0, 1)"),
])
def test_save_figures_rejects_bad_options_and_writes_nothing(tmp_path, result, kwargs, message):
    with pytest.raises(InputError) as info:
        fg.save_figures(result, out=tmp_path / "figs", **kwargs)
    assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Provenance on every figure; the trajectory's time axis (issue 14)
# ---------------------------------------------------------------------------------------------

def caption_of(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts if t.get_text().startswith("Source:")).replace("\n", " ")


@pytest.mark.parametrize("draw", [fg.plot_forest, fg.plot_prior_posterior, fg.plot_evidence_ladder,
                                  fg.plot_constraint_effects])
def test_every_figure_carries_its_provenance_clear_of_the_axes(result, draw):
    fig = draw(result)
    caption = caption_of(fig)
    for part in ("prior set synthetic", "evidence abababababab", "as of 2026-01-31", "200 draws × 2 chains",
                 "seed 4242", "bayescpec 0.0.test"):
        assert part in caption, part
    assert "FAILED" not in caption
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    band = max(t.get_window_extent(renderer).y1 for t in fig.texts if t.get_text().startswith("Source:"))
    lowest = min([ax.get_tightbbox(renderer).y0 for ax in visible_axes(fig)]
                 + [legend.get_window_extent(renderer).y0 for legend in fig.legends])
    assert band <= lowest + 1, "the caption overlaps an axes or a legend"
    assert_legible(fig)


def test_a_failed_fit_says_so_on_its_figures(tmp_path):
    bad = make_result(converged=False)
    assert "CONVERGENCE CHECKS FAILED" in caption_of(fg.plot_forest(bad))
    paths = fg.save_figures(bad, out=tmp_path / "f", dpi=60)
    pdf = next(p for p in paths if p.name == "forest.pdf").read_bytes()
    assert b"/Subject" in pdf and b"/Title" in pdf
    assert "CONVERGENCE CHECKS FAILED".encode("utf-16-be") in pdf  # PDF metadata text is UTF-16
    from PIL import Image

    info = Image.open(next(p for p in paths if p.name == "forest.png")).info
    assert "evidence abababababab" in info["Description"] and info["Software"].startswith("bayescpec")


def trajectory_table(dates, channels=("sez", "digital")):
    import datetime as dt

    import pandas as pd

    rows = [{"date": dt.date.fromisoformat(d), "rows": 2 + i, "channel": c, "label": c.upper(),
             "prior_p_converting": 0.4, "p_converting": 0.3 + 0.05 * i, "converged": True}
            for i, d in enumerate(dates) for c in channels]
    table = pd.DataFrame(rows)
    table.attrs = {"threshold": 0.5, "prior_set": "baseline", "evidence_sha256": "52c781c032b4", "as_of": dates[-1],
                   "draws": 1000, "chains": 4, "seed": 1, "bayescpec_version": "9.9", "converged": True}
    return table


def test_trajectory_breaks_the_time_axis_when_one_early_row_would_squeeze_the_rest():
    import matplotlib.dates as mdates

    dates = ["2015-04-20", "2024-08-15", "2025-01-10", "2025-09-26", "2026-05-27"]
    fig = fg.plot_trajectory(trajectory_table(dates))
    early, main = visible_axes(fig)
    lo, hi = (mdates.num2date(x).date().isoformat() for x in main.get_xlim())
    assert "2024-06-01" < lo <= "2024-08-15" and hi >= "2026-05-27"          # the recent dates fill the panel
    assert mdates.num2date(early.get_xlim()[0]).year == 2015 and mdates.num2date(early.get_xlim()[1]).year == 2015
    assert early.get_position().width < main.get_position().width / 3
    assert "θ" in fig._suptitle.get_text() and "theta" not in fig._suptitle.get_text()
    assert early.get_ylabel() == "P(θ > 0.5)"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["SEZ (sez)", "DIGITAL (digital)"] and any("prior" in t for t in legend)
    assert "bayescpec 9.9" in caption_of(fig)
    assert_legible(fig)
    # evenly spread dates need no break
    fig = fg.plot_trajectory(trajectory_table(["2025-01-10", "2025-04-01", "2025-09-26", "2026-05-27"]))
    assert len(visible_axes(fig)) == 1
