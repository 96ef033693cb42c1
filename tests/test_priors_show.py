"""``bayescpec priors show`` (issue 22): each prior's 5/50/95% quantiles, checked against scipy.stats with
the parameters taken from the file's own numbers; the terminal table, JSON and exit codes; the figure
is rendered with every text inside the canvas and its provenance caption."""

from __future__ import annotations

import json
import re
import tomllib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import stats  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from bayescpec.cli import app  # noqa: E402
from bayescpec.inputs.spec import load_framework, load_priors  # noqa: E402
from bayescpec.outputs.priors import plot_priors, prior_table  # noqa: E402

from conftest import FRAMEWORK, replace_in  # noqa: E402

runner = CliRunner()
SEZ = "[channels.sez]\nmean = 0.55"
SEZ_CONCENTRATION = "concentration = 4    # ~4 pseudo-observations: wide, the data should dominate"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def scipy_distribution(spec: dict):
    """The scipy distribution of a prior as the TOML file writes it (not through bayescpec's models)."""
    if "concentration" in spec:
        return stats.beta(spec["mean"] * spec["concentration"], (1 - spec["mean"]) * spec["concentration"])
    if "mean" in spec:
        return stats.norm(spec["mean"], spec["sd"])
    return stats.halfnorm(scale=spec["sd"])


def file_priors(path) -> dict[str, dict]:
    """Every prior written in a prior-set file, by dotted key, read with tomllib alone."""
    found = {}

    def walk(value, key):
        if isinstance(value, dict) and ("sd" in value or "concentration" in value):
            found[".".join(key)] = value
        elif isinstance(value, dict):
            for name, item in value.items():
                walk(item, key + (name,))

    data = tomllib.loads(path.read_text())
    for section in ("channels", "constraints", "loadings", "loop_loadings", "units", "diagnosticity", "routes", "counts"):
        if section in data:
            walk(data[section], (section,))
    return found


@pytest.mark.parametrize("name", ["baseline", "skeptical", "optimistic", "flat"])
def test_the_quantiles_of_every_shipped_prior_are_scipys(name):
    path = FRAMEWORK.parent / f"{name}.toml"
    table = prior_table(load_priors(path, load_framework(FRAMEWORK))).set_index("key")
    written = file_priors(path)
    for key, spec in written.items():
        expected = scipy_distribution(spec).ppf([0.05, 0.5, 0.95])
        assert table.loc[key, ["q05", "q50", "q95"]].tolist() == pytest.approx(expected, rel=1e-6, abs=1e-9), key
    # every prior in the file is in the table, and the table holds nothing else but the units default
    assert set(written) <= set(table.index) and set(table.index) - set(written) <= {"units"}


def test_a_stated_prior_shows_its_statement_and_quantiles_of_its_solution(shipped_copy):
    replace_in(shipped_copy["priors"], SEZ, "[channels.sez]\nbetween = [0.2, 0.6]\nmass = 0.9\n#")
    replace_in(shipped_copy["priors"], SEZ_CONCENTRATION, "")
    priors = load_priors(shipped_copy["priors"], load_framework(FRAMEWORK))
    table = prior_table(priors).set_index("key")
    row = table.loc["channels.sez"]
    assert row["statement"] == "90% in [0.2, 0.6]" and row["distribution"] == "Beta(mean 0.402, concentration 15.2)"
    assert (row["between_lower"], row["between_upper"], row["mass"]) == (0.2, 0.6, 0.9)
    sez = priors.channels["sez"]
    beta = stats.beta(sez.mean * sez.concentration, (1 - sez.mean) * sez.concentration)
    assert [row["q05"], row["q50"], row["q95"]] == pytest.approx(beta.ppf([0.05, 0.5, 0.95]), rel=1e-6)
    assert beta.cdf(0.6) - beta.cdf(0.2) == pytest.approx(0.9, abs=1e-4)
    assert table.loc["channels.digital", "statement"] == ""


def inside_canvas(fig) -> list[str]:
    """The texts of ``fig`` (rendered) that reach outside its canvas, and overlapping legend entries."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    outside = []
    for text in fig.findobj(matplotlib.text.Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        box = text.get_window_extent(renderer)
        if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > width + 0.5 or box.y1 > height + 0.5:
            outside.append(text.get_text())
    return outside


def overlapping_labels(fig) -> list[tuple[str, str]]:
    """Pairs of titles, axis labels and legend entries whose boxes overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes if ax.get_visible()
             for t in (ax.title, ax.xaxis.label, ax.yaxis.label,
                       *(ax.get_legend().get_texts() if ax.get_legend() else []))]
    texts += [t for t in fig.texts] + ([fig._suptitle] if fig._suptitle is not None else [])
    texts = list({id(t): t for t in texts}.values())
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text().strip()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]


def test_the_figure_has_a_panel_per_section_and_every_text_inside_the_canvas(shipped_copy):
    replace_in(shipped_copy["priors"], SEZ, "[channels.sez]\nbetween = [0.2, 0.6]\nmass = 0.9\n#")
    replace_in(shipped_copy["priors"], SEZ_CONCENTRATION, "")
    priors = load_priors(shipped_copy["priors"], load_framework(FRAMEWORK))
    fig = plot_priors(priors, caption="Source: prior set baseline; bayescpec test")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert [t.split(" (")[0] for t in titles] == ["channels", "constraints", "loadings, units",
                                                  "loop_loadings, counts.overdispersion, routes",
                                                  "diagnosticity.tiers", "diagnosticity.tests"]
    channels = fig.axes[0]
    assert [t.get_text() for t in channels.get_legend().get_texts()] == \
        ["sez (90% in [0.2, 0.6])", "digital", "green", "agriculture", "gwadar"]
    assert sum(len(ax.get_legend().get_texts()) for ax in fig.axes if ax.get_visible()) == len(prior_table(priors))
    assert inside_canvas(fig) == []
    assert overlapping_labels(fig) == []
    assert any("Source: prior set baseline" in t.get_text() for t in fig.texts)


def test_priors_show_prints_the_table_writes_the_files_and_says_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "shown"
    result = runner.invoke(app, ["priors", "show", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Prior set baseline" in text and "5%" in text and "95%" in text
    sez = next(line for line in text.splitlines() if "channels.sez" in line)
    expected = stats.beta(0.55 * 4, 0.45 * 4).ppf([0.05, 0.5, 0.95])
    assert [f"{q:.2f}" for q in expected] == re.findall(r"\d\.\d\d", sez)[-3:]
    assert "none stated as an interval" in text
    assert sorted(p.name for p in out.iterdir()) == ["priors-baseline.csv", "priors-baseline.pdf",
                                                     "priors-baseline.png"]
    png = Image.open(out / "priors-baseline.png")
    assert "prior set baseline" in png.info["Description"] and "baseline.toml (SHA-256" in png.info["Description"]
    assert str(tmp_path) not in png.info["Description"]  # no local absolute paths in a figure meant to be sent
    csv = (out / "priors-baseline.csv").read_text()
    assert csv.startswith("# prior set: baseline") and "channels.sez" in csv
    as_json = runner.invoke(app, ["priors", "show", "skeptical", "--json", "--out", str(out)])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["prior_set"] == "skeptical" and len(document["priors"]) == len(prior_table(
        load_priors(FRAMEWORK.parent / "skeptical.toml", load_framework(FRAMEWORK))))
    assert str(out / "priors-skeptical.png") in document["files"]


def test_priors_show_names_the_statement_it_solved(shipped_copy, tmp_path):
    replace_in(shipped_copy["priors"], SEZ, "[channels.sez]\nbetween = [0.2, 0.6]\nmass = 0.9\n#")
    replace_in(shipped_copy["priors"], SEZ_CONCENTRATION, "")
    result = runner.invoke(app, ["priors", "show", str(shipped_copy["priors"]), "--framework",
                                 str(shipped_copy["framework"]), "--out", str(tmp_path / "o")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "channels.sez" in line)
    assert "Beta(mean 0.402, concentration 15.2)" in line and "90% in [0.2, 0.6]" in line
    assert "1 stated as an interval with its mass" in result.output
    assert "PreliZ" in Image.open(tmp_path / "o" / "priors-baseline.png").info["Description"]


def test_priors_show_reads_at_80_columns(tmp_path):
    result = runner.invoke(app, ["priors", "show", "--out", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "diagnosticity.tests.straw_in_the_wind.false_positive" in result.output


@pytest.mark.parametrize("args, fragments", [
    (["basline"], ["PRIORSET: no prior set 'basline'", "did you mean 'baseline'?"]),
    (["missing.toml"], ["PRIORSET:", "missing.toml: file not found"]),
    (["BAD"], ["channels.sez.between", "less than or equal to 10000", ", line "]),
])
def test_priors_show_refuses_bad_input_with_exit_2_and_writes_nothing(shipped_copy, tmp_path, args, fragments):
    replace_in(shipped_copy["priors"], SEZ, "[channels.sez]\nbetween = [0.49, 0.51]\nmass = 0.99\n#")
    replace_in(shipped_copy["priors"], SEZ_CONCENTRATION, "")
    args = [str(shipped_copy["priors"]) if a == "BAD" else a for a in args]
    out = tmp_path / "out"
    result = runner.invoke(app, ["priors", "show", *args, "--out", str(out)], env={"COLUMNS": "250"})
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in result.output and not out.exists()


def test_priors_show_help_shows_its_defaults():
    result = runner.invoke(app, ["priors", "show", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "priors show [OPTIONS] [PRIORSET]" in text
    assert "[default: baseline]" in text and "[default: results/priors]" in text
    assert "priors" in runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
