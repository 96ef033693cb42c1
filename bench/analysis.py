"""Timings of the evidence analytics (issue 12) on the shipped result.

    bash .ci/env python bench/analysis.py            # fit the shipped study as `bayescpec run` does, then time
    bash .ci/env python bench/analysis.py --smoke    # a tiny fit: checks the script works (the test does this)

Two kinds of measurement, wall-clock on the same machine:

* **in process**, on a loaded result and study (what a notebook pays): ``bc.explain`` (every package
  and row left out), ``bc.value_of_information`` over the whole catalogue (every indicator x target x
  tier/test type x kind), ``bc.robustness`` (power-scaling, tipping points) and ``bc.whatif`` (the
  framework's six named scenarios); each the best of ``--repeat`` runs;
* **a command in a fresh process** (what a terminal user pays: start-up, imports, loading the result,
  the hash check, the analysis, writing its tables in four formats and its figures as PNG and PDF):
  ``bayescpec explain|next|robustness|whatif RESULT``, and ``bayescpec report RESULT --analytics``.

Writes ``bench/out/analysis.json`` and ``bench/out/analysis.txt`` (gitignored) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _fit(folder: Path, *, draws: int, tune: int, chains: int) -> Path:
    import bayescpec as bc

    study = bc.load_study(framework=ROOT / "priors" / "framework.toml", evidence=ROOT / "evidence" / "cpec.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bc.fit(study, draws=draws, tune=tune, chains=chains, seed=20260527)
    return bc.save_result(result, folder / "result.nc")


def _best(function, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return min(times), value


def _command(args: list[str]) -> float:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bayescpec.cli", *args, "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"bayescpec {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny fit (checks the script)")
    parser.add_argument("--result", type=Path, help="time on this saved result instead of fitting one")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args(argv)
    import bayescpec as bc

    work = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    settings = dict(draws=60, tune=60, chains=2) if args.smoke else dict(draws=1000, tune=1000, chains=4)
    path = args.result or _fit(work / "result", **settings)
    folder = path if path.is_dir() else path.parent
    result = bc.load_result(folder)
    study = bc.study_of(result)
    repeat = 1 if args.smoke else args.repeat
    rows = []
    draws = result["posterior"].sizes["chain"] * result["posterior"].sizes["draw"]
    n_designs = len(bc.designs(study))
    for name, function, what in (
        ("explain", lambda: bc.explain(result, study, refit=False), "every package and row left out (PSIS)"),
        ("next", lambda: bc.value_of_information(result, study), f"whole catalogue: {n_designs} designs"),
        ("robustness", lambda: bc.robustness(result, study), "psense, power-scaled words, tipping points"),
        ("whatif", lambda: bc.whatif(result, study), f"{len(study.framework.scenarios)} named scenarios"),
    ):
        seconds, _ = _best(function, repeat)
        api = {"explain": "bc.explain", "next": "bc.value_of_information", "robustness": "bc.robustness",
               "whatif": "bc.whatif"}[name]
        rows.append({"measurement": api, "kind": "in process", "seconds": round(seconds, 2), "note": what})
    commands = [[c, str(folder), "--out", str(work / "analysis")] for c in ("explain", "next", "robustness", "whatif")]
    commands += [["report", str(folder), "--analytics", "--out", str(work / "report")],
                 ["report", str(folder), "--out", str(work / "report-plain")]]
    notes = ["tables in 4 formats + figures (PNG, PDF)"] * 4 + ["the whole report with the four analyses",
                                                                "the report without analytics, for comparison"]
    if args.smoke:  # one command in a fresh process is enough to check the script
        commands, notes = [commands[3]], [notes[3]]
    for command, note in zip(commands, notes):
        seconds = _command(command)
        name = f"bayescpec {command[0]} RESULT" + (" --analytics" if "--analytics" in command else "")
        rows.append({"measurement": name, "kind": "fresh process", "seconds": round(seconds, 2), "note": note})
    load = os.getloadavg()
    header = (f"bayescpec {bc.__version__} analytics on {draws} posterior draws ({result.attrs.get('evidence_rows')} "
              f"evidence rows), {os.cpu_count()} cores, load {load[0]:.1f}, {platform.python_version()}"
              + (" [SMOKE]" if args.smoke else ""))
    lines = [header, "", f"{'measurement':40s} {'kind':14s} {'seconds':>8s}  note"]
    lines += [f"{r['measurement']:40s} {r['kind']:14s} {r['seconds']:8.2f}  {r['note']}" for r in rows]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "analysis.txt").write_text(text + "\n")
    report = {"header": header, "rows": rows}
    (args.out / "analysis.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
