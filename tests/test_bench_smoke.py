"""The benchmark script runs end to end with tiny sizes and prints its table (no timing asserted)."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    spec.loader.exec_module(module)
    return module


def test_simulator_writes_valid_synthetic_evidence(tmp_path):
    import bayescpec

    simulate = _load("simulate")
    evidence, sources = simulate.simulate(200, 3, tmp_path)
    assert evidence.name.startswith("synthetic_")
    study = bayescpec.load_study(evidence=evidence, sources=sources)
    assert len(study.evidence) == 200
    assert study.evidence["note"].str.startswith("SYNTHETIC").all()
    assert set(study.evidence["kind"]) <= {"signal", "count", "measure"}
    again, _ = simulate.simulate(200, 3, tmp_path / "again")
    assert again.read_text() == evidence.read_text()  # seeded


def test_bench_smoke_prints_the_table(tmp_path, capsys):
    run = _load("run")
    run.main(["--smoke", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    result = __import__("json").loads((tmp_path / "results.json").read_text())
    rows = result["rows"]
    assert all(set(row) == set(run.COLUMNS) for row in rows)
    assert {row["section"] for row in rows} == set(run.SECTIONS)
    measurements = [row["measurement"] for row in rows]
    assert any("first run" in m for m in measurements) and any("second run" in m for m in measurements)
    assert any(m.startswith("plain PyMC") for m in measurements)
    assert {"pymc", "nutpie"} <= set(measurements)
    assert any("synthetic rows" in m for m in measurements)
    for header in ("section", "wall s", "compile s", "sample s", "validate s", "build s", "min ESS",
                   "ESS/s", "peak MB", "ratio"):
        assert header in printed
    assert "cores" in printed.splitlines()[0]


def test_analysis_bench_smoke_times_every_analysis(tmp_path, capsys):
    analysis = _load("analysis")
    report = analysis.main(["--smoke", "--out", str(tmp_path)])
    measured = {row["measurement"] for row in report["rows"]}
    assert {"bc.explain", "bc.value_of_information", "bc.robustness", "bc.whatif"} <= measured
    assert any(m.startswith("bayescpec whatif") for m in measured)
    # every analysis was timed: a number, not how large (rounded to 0.01 s, a fast machine may show 0.0)
    assert all(isinstance(row["seconds"], float) and row["seconds"] >= 0 for row in report["rows"])
    assert "cores" in capsys.readouterr().out.splitlines()[0]
    assert (tmp_path / "analysis.json").is_file() and (tmp_path / "analysis.txt").is_file()
