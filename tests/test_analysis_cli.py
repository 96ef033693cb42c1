"""The analysis commands (issue 12): `bayescpec explain|next|robustness|whatif RESULT` and `report --analytics`
write tables in the four formats with provenance and figures with provenance captions; every bad input
ends with one message, exit code 2, nothing written, no traceback. Also the whatif table against an
independent computation from the saved draws.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.special import expit
from typer.testing import CliRunner

import bayescpec as bc
from bayescpec.cli import app

from conftest import BASELINE, EVIDENCE, FRAMEWORK, SOURCES

SMALL = dict(draws=300, tune=300, chains=2, seed=3)


def copy_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, src in (("framework", FRAMEWORK), ("priors", BASELINE), ("evidence", EVIDENCE), ("sources", SOURCES)):
        paths[role] = folder / src.name
        shutil.copy(src, paths[role])
    return paths


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fit of a copy of the shipped study, saved: (result folder, input paths, result)."""
    root = tmp_path_factory.mktemp("analysis-cli")
    paths = copy_inputs(root / "inputs")
    study = bc.load_study(**{role: path for role, path in paths.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bc.fit(study, **SMALL)
    bc.save_result(result, root / "res" / "result.nc")
    return root / "res", paths, result


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_each_command_writes_tables_and_figures_with_provenance(saved, tmp_path):
    folder, _, _ = saved
    out = tmp_path / "analysis"
    for args in (("explain", "--no-refit"), ("next", "--no-figures", "--top", "2"), ("robustness", "--no-figures"),
                 ("whatif", "--no-figures"),
                 ("whatif", "--no-figures", "--scenario", "energy_restructuring", "--set", "water_stress=0")):
        outcome = invoke(args[0], folder, "--out", out, "-q", *args[1:])
        assert outcome.exit_code == 0, outcome.output
    assert "whatif-custom.*" in outcome.output and "stay in whatif.*" in " ".join(outcome.output.split())
    for stem in ("explain-packages", "explain-rows", "next", "robustness", "power-scaling", "tipping-points",
                 "whatif", "whatif-custom"):
        for suffix in (".csv", ".md", ".tex", ".html"):
            assert (out / f"{stem}{suffix}").is_file(), f"{stem}{suffix}"
        md = (out / f"{stem}.md").read_text()
        assert "Prior set: baseline" in md and "Input files (SHA-256" in md and "bayescpec" in md
        assert (out / f"{stem}.csv").read_text().startswith("# ")
    for channel in ("sez", "digital", "green", "agriculture", "gwadar"):
        png = out / f"waterfall-{channel}.png"
        assert png.is_file() and (out / f"waterfall-{channel}.pdf").is_file()
        assert "Source: prior set baseline" in Image.open(png).info["Description"]
    whatif = (out / "whatif-custom.md").read_text()  # --set: beside the named scenarios, not over them
    assert "energy_restructuring" in whatif and "custom" in whatif and "source: “" in whatif
    named = (out / "whatif.md").read_text()
    assert "energy_restructuring" in named and "custom" not in named
    if shutil.which("pdflatex"):  # every table compiles on its own (quotes, arrows, Greek letters escaped)
        import subprocess

        for tex in sorted(out.glob("*.tex")):
            run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=out,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, (tex.name, run.stdout[-1500:])
            assert "?" not in tex.read_text().replace("?}", ""), tex.name


def test_json_output_is_one_document(saved, tmp_path):
    folder, _, _ = saved
    outcome = invoke("whatif", folder, "--out", tmp_path / "w", "--json", "--no-figures", "-f", "csv",
                     "--shift", "security=-1")
    data = json.loads(outcome.stdout)
    assert data["scenarios"]["custom"]["settings"] == "security -1"
    assert {r["channel"] for r in data["rows"]} == {"sez", "digital", "green", "agriculture", "gwadar", "nqpf"}
    assert [Path(p).name for p in data["files"]] == ["whatif-custom.csv"]


@pytest.fixture(scope="module")
def no_pointwise(saved, tmp_path_factory):
    _, _, result = saved
    bare = result.copy()
    del bare["log_likelihood"]
    folder = tmp_path_factory.mktemp("bare")
    bc.save_result(bare, folder / "result.nc")
    return folder


BAD = [
    (("explain", "BARE"), "has no log_likelihood group"),
    (("next", "BARE"), "has no log_likelihood group"),
    (("robustness", "BARE"), "has no log_likelihood group"),
    (("next", "RES", "--indicator", "sez_zone_export"), "unknown indicator 'sez_zone_export' (did you mean 'sez_zone_exports'?)"),
    (("next", "RES", "--target", "sezz"), "unknown target 'sezz' (did you mean 'sez'?)"),
    (("whatif", "RES", "--set", "energy_dbt=0"), "unknown constraint 'energy_dbt' (did you mean 'energy_debt'?)"),
    (("whatif", "RES", "--set", "energy_debt=abc"), "the severity must be a number; found 'abc'"),
    (("whatif", "RES", "--shift", "security=inf"), "must be a finite number"),
    (("whatif", "RES", "--shift", "security"), "expected CONSTRAINT=VALUE"),
    (("whatif", "RES", "--remove", "securty"), "unknown constraint 'securty' (did you mean 'security'?)"),
    (("whatif", "RES", "--scenario", "skill"), "unknown scenario 'skill' (did you mean 'skills'?)"),
    (("explain", "RES", "--threshold", "1.5"), "--threshold: must be in (0, 1)"),
    (("robustness", "RES", "--with", "NOWHERE"), "no saved result there"),
    (("whatif", "NOWHERE"), "no saved result there"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_message_and_writes_nothing(saved, no_pointwise, tmp_path, args, message):
    folder, _, _ = saved
    where = {"RES": folder, "BARE": no_pointwise, "NOWHERE": tmp_path / "nowhere"}
    out = tmp_path / "out"
    outcome = invoke(*[where.get(a, a) for a in args], "--out", out)
    assert outcome.exit_code == 2, outcome.output
    assert message in " ".join(outcome.output.split()), outcome.output
    assert "Traceback" not in outcome.output and outcome.output.count("error:") == 1
    assert not out.exists()


def test_a_result_whose_inputs_changed_is_refused(saved, tmp_path):
    _, paths, result = saved
    moved = copy_inputs(tmp_path / "inputs")
    study = bc.load_study(**moved)
    bc.save_result(result.copy(), tmp_path / "res" / "result.nc")
    import json as _json

    tree = bc.load_result(tmp_path / "res")
    tree.attrs["input_files"] = _json.dumps({role: str(p) for role, p in moved.items()})
    tree.attrs["input_sha256"] = _json.dumps(study.hashes)
    bc.save_result(tree, tmp_path / "res" / "result.nc")
    assert invoke("whatif", tmp_path / "res", "--out", tmp_path / "ok", "-q", "--no-figures").exit_code == 0
    with open(moved["evidence"], "a", encoding="utf-8") as log:
        log.write(open(paths["evidence"], encoding="utf-8").read().splitlines()[1].replace("pot-gwadar-003", "x-1")
                  + "\n")
    for command in ("explain", "next", "robustness", "whatif"):
        out = tmp_path / f"out-{command}"
        outcome = invoke(command, tmp_path / "res", "--out", out)
        assert outcome.exit_code == 2, outcome.output
        assert "the result was fitted on different inputs; changed: evidence" in " ".join(outcome.output.split())
        assert not out.exists() and "Traceback" not in outcome.output


def test_report_analytics_adds_tables_figures_and_page_sections(saved, tmp_path):
    folder, _, _ = saved
    out = tmp_path / "report"
    outcome = invoke("report", folder, "--analytics", "--out", out, "-f", "md", "-q")
    assert outcome.exit_code == 0, outcome.output
    page = (out / "index.html").read_text()
    for section in ("analysis-explain", "analysis-next", "analysis-robustness", "analysis-whatif"):
        assert f'id="{section}"' in page
    for stem in ("explain-packages", "next", "robustness", "whatif", "channels"):
        assert (out / f"{stem}.md").is_file()
    for figure in ("waterfall-sez.png", "next.png", "robustness.png", "whatif.png"):
        assert (out / figure).is_file() and f'src="{figure}"' in page
    from browser import find_chromium, inspect_page

    if find_chromium():  # a reader's browser shows every figure, the analyses' included, without errors
        seen = inspect_page((out / "index.html").resolve().as_uri(), chromium=find_chromium())
        assert seen["errors"] == []
        assert "waterfall-sez.png" in [image["src"] for image in seen["images"]]
        assert all(image["complete"] and image["naturalWidth"] > 0 for image in seen["images"])
        assert "What to observe next" in seen["text"] and "How fragile each conclusion is" in seen["text"]
    plain = tmp_path / "plain"
    assert invoke("report", folder, "--out", plain, "-f", "md", "-q", "--no-figures").exit_code == 0
    assert not (plain / "next.md").exists() and "analysis-next" not in (plain / "index.html").read_text()


def test_whatif_table_matches_an_independent_computation_from_the_draws(saved):
    folder, paths, result = saved
    table = bc.whatif(result, bc.study_of(result), scenarios=["energy_restructuring"]).set_index("channel")
    post = result["posterior"]
    fw = json.loads(result.attrs["framework"])
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    eta = post["stage_logit"].values.reshape(chains * draws, -1).copy()
    cells = list(post["chain_stage"].values)
    loading = post["loading"].values.reshape(chains * draws, -1)
    for l, link in enumerate(post["link"].values):
        channel, constraint = link.split("|")
        if constraint == "energy_debt":  # shifted by -1: the pull L s drops by L
            eta[:, cells.index(f"{channel}|{fw['link_stages'][link]}")] += loading[:, l] * 1.0
    route = next(iter(fw.get("routes", {}).values()), None)   # the enclave route: after -> reaches
    eps = post["route_probability"].values.reshape(chains * draws, -1) if route else None
    for c, channel in enumerate(fw["channels"]):
        mine = [i for i, cell in enumerate(cells) if cell.startswith(f"{channel}|")]
        stages = [cells[i].split("|")[1] for i in mine]
        q = expit(eta[:, mine])
        if route and route["after"] in stages and route["reaches"] in stages:
            a, b = stages.index(route["after"]), stages.index(route["reaches"])
            embedded = np.prod(q[:, a + 1:b + 1], axis=1)
            theta = (np.prod(q[:, :a + 1], axis=1) * (embedded + (1 - embedded) * eps[:, c])
                     * np.prod(q[:, b + 1:], axis=1))
        else:
            theta = np.prod(q, axis=1)
        row = table.loc[channel]
        assert row["scenario_mean"] == pytest.approx(theta.mean(), rel=1e-9)
        assert row["p_scenario"] == pytest.approx((theta > 0.5).mean())
        assert row["90% ETI lower"] == pytest.approx(np.quantile(theta, 0.05), abs=2e-3)
        base = post["theta"].sel(channel=channel).values
        assert row["baseline_mean"] == pytest.approx(base.mean(), rel=1e-12)
        import arviz as az

        expected = float(az.mcse(np.asarray(theta.reshape(chains, draws)), method="mean"))
        assert row["mcse_mean"] == pytest.approx(expected, rel=1e-6)
    assert table.loc["agriculture", "change_mean"] == 0.0  # energy debt does not bind agriculture
    assert table.loc["green", "change_mean"] > 0.01
    removed = bc.whatif(result, remove=["water_stress"]).set_index("channel")
    zeroed = bc.whatif(result, set={"water_stress": 0}).set_index("channel")
    np.testing.assert_allclose(removed["scenario_mean"], zeroed["scenario_mean"], rtol=1e-12)
