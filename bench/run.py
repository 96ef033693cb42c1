"""bayescpec benchmarks (issue 5): one run, one machine, the same data; prints a table of ratios.

    bash .ci/env python bench/run.py            # full run (~10-15 min on 2 cores)
    bash .ci/env python bench/run.py --smoke    # tiny sizes and draws: checks the script works

Sections (each measured in its own fresh process, wall-clock time):

1. ``bayescpec run`` on the shipped data: first run with an empty compile cache (a fresh
   ``PYTENSOR_FLAGS=base_compiledir=...`` and ``NUMBA_CACHE_DIR``), then a second run on that cache.
2. The plain-PyMC reference ``bench/baseline_pymc.py`` (row-level likelihood, default
   ``pm.sample()``) on the same data: wall time and bulk ESS per second of the slowest-mixing
   reported quantity (theta, base_theta, severity, constraint_effect), and the ratios.
3. NUTS backends on the toolkit's model: compile time, sampling time, ESS per second.
4. Scale: synthetic evidence logs (``bench/simulate.py``, seeded) of 100 ... 100 000 rows:
   validation, model build, NUTS sampling time and peak memory (``ru_maxrss`` of the point's
   process and its sampler workers).
5. Updates: adding 5 rows by the PSIS fast path against a full refit.
6. Many fits in one process (issue 10): a refit of the shipped model after new evidence with the
   compiled model reused, and the four shipped prior sets fitted the old way (a model compiled per
   fit, PyMC's sampler) against the new (one nutpie model for all).
7. Calibration: ``bayescpec calibrate --simulations N`` of the shipped model in a fresh process.

Sections 1 and 2 are also run as ``--pairs`` alternating pairs on the warm cache (toolkit, then
baseline), whose median ratio is the end-to-end figure.

Everything is written to ``bench/out/`` (gitignored): ``results.json`` and ``table.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from simulate import simulate  # noqa: E402

COLUMNS = ("section", "measurement", "wall_s", "compile_s", "sample_s", "validate_s", "build_s",
           "min_ess", "ess_per_s", "peak_mb", "ratio", "note")
SECTIONS = ("1 end-to-end", "2 baseline", "3 backends", "4 scale", "5 update", "6 many fits", "7 calibration")
REPORTED = ("theta", "reach", "severity")  # the quantities bench/baseline_pymc.py reports


def _env(cache: Path | None) -> dict:
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"
    if cache is not None:  # every compile cache: PyTensor's (C and Numba), Numba's, bayescpec's native models
        env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
        env["NUMBA_CACHE_DIR"] = str(cache / "numba")
        env["BAYESCPEC_CACHE_DIR"] = str(cache / "bayescpec")
    return env


def _run(cmd: list[str], cache: Path | None, timeout: float = 1800) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(cache), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _bench_json(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines()[::-1] if line.startswith("BENCH "))
    return json.loads(line[len("BENCH "):])


def _row(section, measurement, **values) -> dict:
    row = {c: None for c in COLUMNS}
    row.update(section=section, measurement=measurement, **values)
    return row


def _ess_rate(ess, seconds):
    return ess / seconds if ess and seconds else None


def _reported_ess(result_dir: Path) -> tuple[float, float]:
    """Min bulk and tail ESS over the quantities the baseline reports, computed the baseline's way."""
    import arviz as az

    from bayescpec.workflow.store import load_result

    posterior = load_result(result_dir)["posterior"].to_dataset()[list(REPORTED)]
    bulk, tail = az.ess(posterior, method="bulk"), az.ess(posterior, method="tail")
    return (float(min(float(bulk[n].min()) for n in REPORTED)), float(min(float(tail[n].min()) for n in REPORTED)))


def run_benchmarks(*, smoke: bool = False, sizes=(100, 1_000, 10_000, 100_000), draws: int = 1000,
                   tune: int = 1000, chains: int = 4, out: Path = HERE / "out",
                   backends=("native", "pymc", "nutpie"), baseline_samplers=("default", "pymc"),
                   fresh_cache: bool = True, update_rows: int = 5, pairs: int = 3,
                   calibration_simulations: int = 200) -> dict:
    """Run every section; return ``{"meta": ..., "rows": [...]}`` (rows have the keys COLUMNS)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench.", dir=out))
    py = sys.executable
    sample_args = ["--draws", str(draws), "--tune", str(tune), "--chains", str(chains)]
    meta = {"cores": os.cpu_count(), "load_before": os.getloadavg(), "python": platform.python_version(),
            "draws": draws, "tune": tune, "chains": chains, "smoke": smoke}
    try:
        import nutpie
        import pymc

        meta.update(pymc=pymc.__version__, nutpie=nutpie.__version__)
    except ImportError:
        pass
    rows: list[dict] = []

    # 1. end-to-end `bayescpec run`, empty compile cache then warm --------------------------
    cache = work / "cache-toolkit" if fresh_cache else None
    e2e = {}
    for label in ("first run (empty compile cache)" if fresh_cache else "first run (existing cache)",
                  "second run (new process, same cache)"):
        res_dir = work / f"run-{len(e2e)}"
        wall, _ = _run([py, "-m", "bayescpec.cli", "run", "--out", str(res_dir), *sample_args], cache)
        from bayescpec.workflow.store import load_result

        attrs = load_result(res_dir).attrs
        ess = float(attrs["min_ess_bulk"])
        e2e[label] = (wall, ess, res_dir)
        rows.append(_row("1 end-to-end", f"bayescpec run, {label}", wall_s=wall, min_ess=ess,
                         ess_per_s=_ess_rate(ess, wall), sample_s=float(attrs["sampling_seconds"]),
                         note=f"converged={bool(int(attrs['converged']))}"))
    (first_wall, _, _), (second_wall, second_ess, second_dir) = e2e.values()
    rows[-1]["ratio"] = first_wall / second_wall
    rows[-1]["note"] += "; ratio = first / second"

    # 2. plain-PyMC baseline ---------------------------------------------------------------
    base_cache = work / "cache-baseline" if fresh_cache else None
    baseline_cmd = [py, str(HERE / "baseline_pymc.py"), "--json", *sample_args]
    toolkit_rate = _ess_rate(second_ess, second_wall)
    for sampler in baseline_samplers:
        extra = [] if sampler == "default" else ["--nuts-sampler", sampler]
        runs = [("first run (empty compile cache)", "second run (same cache)")] if sampler == "default" \
            and fresh_cache else [("run (warm cache)",)]
        for label in runs[0]:
            wall, stdout = _run(baseline_cmd + extra, base_cache)
            info = _bench_json(stdout)
            rate = _ess_rate(info["min_ess_bulk"], wall)
            name = "default pm.sample()" if sampler == "default" else f"pm.sample(nuts_sampler='{sampler}')"
            warm = not label.startswith("first")
            ref_wall = second_wall if warm else first_wall
            rows.append(_row("2 baseline", f"plain PyMC, {name}, {label}", wall_s=wall,
                             sample_s=info["sample_s"], min_ess=info["min_ess_bulk"], ess_per_s=rate,
                             ratio=wall / ref_wall,
                             note=(f"ratio = baseline wall / bayescpec {'second' if warm else 'first'} run; "
                                   f"bayescpec ESS/s / baseline ESS/s = "
                                   f"{(toolkit_rate or 0) / rate if rate else float('nan'):.2f}"
                                   if warm else "ratio = baseline wall / bayescpec first run")))
            theta_toolkit = _theta_means(second_dir)
            if theta_toolkit is not None:
                diff = max(abs(a - b) for a, b in zip(theta_toolkit, info["theta_mean"]))
                rows[-1]["note"] += f"; max |Δ posterior mean θ| vs bayescpec = {diff:.3f}"

    # 1+2 paired: alternating fresh-process runs on the warm caches ---------------------------
    ratios = []
    for pair in range(pairs):
        res_dir = work / f"pair-{pair}"
        wall, _ = _run([py, "-m", "bayescpec.cli", "run", "--out", str(res_dir), *sample_args], cache)
        bulk, tail = _reported_ess(res_dir)
        base_wall, stdout = _run(baseline_cmd + (["--nuts-sampler", "pymc"] if smoke else []), base_cache)
        info = _bench_json(stdout)
        ratios.append(base_wall / wall)
        rows.append(_row("1 end-to-end", f"pair {pair + 1}: bayescpec run (warm)", wall_s=wall, min_ess=bulk,
                         ess_per_s=_ess_rate(bulk, wall),
                         note=f"tail ESS {tail:.0f} ({tail / wall:.0f}/s) over {', '.join(REPORTED)}"))
        rows.append(_row("2 baseline", f"pair {pair + 1}: default pm.sample() (warm)", wall_s=base_wall,
                         min_ess=info["min_ess_bulk"], ess_per_s=_ess_rate(info["min_ess_bulk"], base_wall),
                         ratio=base_wall / wall,
                         note=f"tail ESS {info.get('min_ess_tail', float('nan')):.0f} "
                              f"({info.get('min_ess_tail', float('nan')) / base_wall:.0f}/s); "
                              "ratio = baseline wall / bayescpec wall of this pair"))
    if ratios:
        rows[-1]["note"] += f"; median ratio over {len(ratios)} pairs {sorted(ratios)[len(ratios) // 2]:.2f}"

    # 3. backends on the toolkit's model ---------------------------------------------------
    for sampler in ("native", "pymc", "nutpie", "numpyro", "blackjax"):
        if sampler not in backends:
            rows.append(_row("3 backends", sampler, note="skipped"))
            continue
        if sampler in ("numpyro", "blackjax") and not _has("jax"):
            rows.append(_row("3 backends", sampler, note="n/a (jax not installed; the CLI offers pymc, nutpie)"))
            continue
        wall, stdout = _run([py, str(HERE / "_points.py"), "backend", "--sampler", sampler, *sample_args], cache)
        info = _bench_json(stdout)
        rows.append(_row("3 backends", sampler, wall_s=wall, compile_s=info["compile_s"],
                         sample_s=info["sample_s"], min_ess=info["min_ess_bulk"], peak_mb=info["peak_mb"],
                         ess_per_s=_ess_rate(info["min_ess_bulk"], info["sample_s"]),
                         ratio=_ess_rate(info["min_ess_bulk"], info["compile_s"] + info["sample_s"]),
                         note="ESS/s over sampling; ratio = ESS/s over compile + sampling"))

    # 4. scale --------------------------------------------------------------------------------
    data = work / "data"
    scale_rows = []
    for size in sizes:
        evidence, sources = simulate(size, 1, data)
        wall, stdout = _run([py, str(HERE / "_points.py"), "scale", "--evidence", str(evidence),
                             "--sources", str(sources), *sample_args], cache)
        info = _bench_json(stdout)
        row = _row("4 scale", f"{size:,} synthetic rows ({info['groups']} groups)", wall_s=wall,
                   validate_s=info["validate_s"], build_s=info["build_s"], sample_s=info["sample_s"],
                   min_ess=info["min_ess_bulk"], ess_per_s=_ess_rate(info["min_ess_bulk"], info["sample_s"]),
                   peak_mb=info["peak_mb"],
                   note=f"leapfrog steps/draw {info['steps_per_draw']:.1f}; divergences {info.get('divergences', 'n/a')}"
                        + (f" ({info['divergence_retry']})" if info.get("divergence_retry") else "")
                        + f"; fit() total {info['fit_s']:.1f} s")
        scale_rows.append((size, row))
        rows.append(row)
    ref = dict(scale_rows).get(1_000) or (scale_rows[0][1] if scale_rows else None)
    for _, row in scale_rows:
        row["ratio"] = row["sample_s"] / ref["sample_s"] if ref and ref["sample_s"] else None
    if scale_rows:
        scale_rows[-1][1]["note"] += f"; ratio = sampling time / at {1_000 if 1_000 in dict(scale_rows) else sizes[0]:,} rows"

    # 5. updates ------------------------------------------------------------------------------
    if _has_update():
        evidence, sources = simulate(sizes[1] if len(sizes) > 1 else sizes[0], 2, work / "update")
        wall, stdout = _run([py, str(HERE / "_points.py"), "update", "--evidence", str(evidence), "--sources",
                             str(sources), "--new-rows", str(update_rows), *sample_args], cache)
        info = _bench_json(stdout)
        rows.append(_row("5 update", f"add {update_rows} rows to {info['rows_before']:,}: fast path",
                         wall_s=info["fast_s"], ratio=info["refit_s"] / info["fast_s"],
                         note=f"method={info['fast_method']}, k-hat={info['khat']:.2f}; ratio = refit / fast"
                              + (f"; {info['reason']}" if info["fast_method"] != "psis" else "")))
        rows.append(_row("5 update", f"add {update_rows} rows to {info['rows_before']:,}: full refit",
                         wall_s=info["refit_s"], note="same process, warm compile cache"))
    else:
        rows.append(_row("5 update", "fast path vs refit", note="n/a (update workflow not landed)"))

    # 6. many fits in one process -----------------------------------------------------------
    many_args = [py, str(HERE / "_points.py"), "many", "--sampler", "pymc" if smoke else "nutpie", *sample_args]
    wall, stdout = _run(many_args + ["--mode", "refit"], cache)
    info = _bench_json(stdout)
    rows.append(_row("6 many fits", "first fit in a process (compiled model from the disk cache)",
                     wall_s=info["first_s"]))
    for label in ("default", "1000"):
        rows.append(_row("6 many fits", f"refit after new evidence, {label} tune", wall_s=info[f"refit_{label}_s"],
                         sample_s=info[f"refit_{label}_sample_s"], min_ess=info[f"refit_{label}_ess_bulk"],
                         note=f"compiled model reused; tune {info[f'refit_{label}_tune']}; "
                              f"converged={info[f'refit_{label}_converged']}"))
    old_wall, stdout = _run(many_args + ["--mode", "priors-old"], cache)
    old = _bench_json(stdout)["priors_s"]
    new_wall, stdout = _run(many_args + ["--mode", "priors-new"], cache)
    new = _bench_json(stdout)["priors_s"]
    rows.append(_row("6 many fits", "4 prior sets, old way (a model compiled per fit, PyMC NUTS)", wall_s=old,
                     note=f"process wall {old_wall:.1f} s"))
    rows.append(_row("6 many fits", "4 prior sets, new way (fit_prior_sets: one compiled model)", wall_s=new,
                     ratio=old / new,
                     note=f"process wall {new_wall:.1f} s; ratio = old / new"))

    # 7. calibration ----------------------------------------------------------------------------
    if calibration_simulations:
        cal_dir = work / "calibration"
        cal_args = ["--draws", "50", "--tune", "50", "--chains", "2", "--sampler", "pymc", "--workers", "1"] \
            if smoke else []
        wall, _ = _run([py, "-m", "bayescpec.cli", "calibrate", "--simulations", str(calibration_simulations),
                        "--out", str(cal_dir), "--quiet", *cal_args], cache, timeout=3600)
        verdict = json.loads((cal_dir / "calibration.json").read_text())
        rows.append(_row("7 calibration", f"bayescpec calibrate, {calibration_simulations} simulations",
                         wall_s=wall, note=f"{verdict['sampler']}, {verdict['chains']}x{verdict['draws']} draws; "
                                           f"{verdict['not_converged']} fits failed the gate; {verdict['verdict']}"))

    meta["load_after"] = os.getloadavg()
    result = {"meta": meta, "rows": rows, "targets": _targets(rows)}
    shutil.rmtree(work, ignore_errors=True)  # caches, results and synthetic data of this run
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "table.txt").write_text(format_table(result))
    return result


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_update() -> bool:
    try:
        from bayescpec.workflow.update import update_result  # noqa: F401
    except ImportError:
        return False
    return True


def _theta_means(result_dir: Path):
    try:
        from bayescpec.workflow.store import load_result

        posterior = load_result(result_dir)["posterior"].to_dataset()
        return posterior["theta"].mean(("chain", "draw")).to_numpy().tolist()
    except Exception:  # noqa: BLE001 - informational only
        return None


def _targets(rows: list[dict]) -> list[tuple[str, str]]:
    def find(section, text):
        return next((r for r in rows if r["section"] == section and text in r["measurement"]), None)

    out = []
    toolkit = find("1 end-to-end", "second run")
    base = find("2 baseline", "default pm.sample(), second run") or find("2 baseline", "default pm.sample()")
    if toolkit and base and base["wall_s"]:
        speed = base["wall_s"] / toolkit["wall_s"]
        ess_ok = (toolkit["ess_per_s"] or 0) >= (base["ess_per_s"] or 0)
        out.append(("end-to-end ≥ 2.5× faster than plain PyMC (default pm.sample), ESS/s ≥ (single pair)",
                    f"{'MET' if speed >= 2.5 and ess_ok else 'MISSED'}: {speed:.2f}× faster, ESS/s "
                    f"{toolkit['ess_per_s']:.0f} vs {base['ess_per_s']:.0f}"))
    paired = [r for r in rows if r["section"] == "2 baseline" and r["measurement"].startswith("pair ")]
    if paired:
        toolkit_pairs = [r for r in rows if r["section"] == "1 end-to-end" and r["measurement"].startswith("pair ")]
        median = sorted(r["ratio"] for r in paired)[len(paired) // 2]
        ess_ok = all((t["ess_per_s"] or 0) >= (b["ess_per_s"] or 0) for t, b in zip(toolkit_pairs, paired))
        out.append(("end-to-end ≥ 2.5× faster than plain PyMC, paired warm runs, bulk ESS/s ≥",
                    f"{'MET' if median >= 2.5 and ess_ok else 'MISSED'}: median {median:.2f}× over {len(paired)} pairs"
                    f"{'' if ess_ok else ' (ESS/s below the baseline in a pair)'}"))
    refit = find("6 many fits", "refit after new evidence, default tune")
    if refit:
        out.append(("in-process refit after new evidence, default settings, ≤ 1.5 s (stretch 1 s)",
                    f"{'MET' if refit['wall_s'] <= 1.5 else 'MISSED'}{' (stretch met)' if refit['wall_s'] <= 1 else ''}: "
                    f"{refit['wall_s']:.2f} s; {find('6 many fits', 'refit after new evidence, 1000')['wall_s']:.2f} s "
                    "at tune 1000"))
    priors_new = find("6 many fits", "4 prior sets, new way")
    if priors_new:
        out.append(("compare-priors over the 4 shipped prior sets ≥ 4× faster than one PyMC model per set",
                    f"{'MET' if priors_new['ratio'] >= 4 else 'MISSED'}: {priors_new['ratio']:.2f}×"))
    first_run = find("1 end-to-end", "first run (empty")
    if first_run:
        out.append(("first run on an empty cache ≤ 45 s",
                    f"{'MET' if first_run['wall_s'] <= 45 else 'MISSED'}: {first_run['wall_s']:.1f} s"))
    cal = find("7 calibration", "bayescpec calibrate")
    if cal:
        out.append(("calibration of 200 simulations within 2 minutes",
                    f"{'MET' if cal['wall_s'] <= 120 and '200 ' in cal['measurement'] else 'NOT MET/NOT MEASURED'}: "
                    f"{cal['wall_s']:.0f} s ({cal['measurement']})"))
    scale = [r for r in rows if r["section"] == "4 scale"]
    big = next((r for r in scale if r["measurement"].startswith("100,000 ")), None)
    ref = next((r for r in scale if r["measurement"].startswith("1,000 ")), None)
    if big and ref:
        ratio = big["sample_s"] / ref["sample_s"]
        out.append(("sampling at 100 000 rows within 1.5× of 1 000 rows",
                    f"{'MET' if ratio <= 1.5 else 'MISSED'}: {ratio:.2f}×"))
    if big:
        out.append(("validation of 100 000 rows under 2 s",
                    f"{'MET' if big['validate_s'] < 2 else 'MISSED'}: {big['validate_s']:.2f} s"))
    first, second = find("1 end-to-end", "first run"), toolkit
    if first and second:
        saved = first["wall_s"] - second["wall_s"]
        out.append(("second `bayescpec run` does not pay model compilation again",
                    f"{'MET' if saved > 0 and 'empty' in first['measurement'] else 'NOT MEASURED'}: "
                    f"first {first['wall_s']:.1f} s, second {second['wall_s']:.1f} s (compile cache reused)"))
    return out


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


def format_table(result: dict) -> str:
    meta = result["meta"]
    head = (f"bayescpec benchmarks — {meta['cores']} cores, Python {meta['python']}, PyMC {meta.get('pymc', '?')}, "
            f"nutpie {meta.get('nutpie', '?')}; {meta['chains']} chains × {meta['draws']} draws "
            f"(+{meta['tune']} tune) everywhere; load average before {meta['load_before'][0]:.1f}, "
            f"after {meta['load_after'][0]:.1f}{' [SMOKE: tiny sizes]' if meta['smoke'] else ''}")
    headers = ("section", "measurement", "wall s", "compile s", "sample s", "validate s", "build s",
               "min ESS", "ESS/s", "peak MB", "ratio", "note")
    digits = {"validate_s": 2, "build_s": 2, "ratio": 2, "min_ess": 0, "ess_per_s": 0, "peak_mb": 0}
    body = [[_fmt(r[c], digits.get(c, 1)) for c in COLUMNS] for r in result["rows"]]
    widths = [max(len(h), *(len(b[i]) for b in body)) if c != "note" else len(h)
              for i, (h, c) in enumerate(zip(headers, COLUMNS))]
    line = lambda cells: " | ".join(str(x).ljust(w) if i < 2 or i == len(cells) - 1 else str(x).rjust(w)  # noqa: E731
                                    for i, (x, w) in enumerate(zip(cells, widths)))
    lines = [head, "", line(headers), "-+-".join("-" * w for w in widths)]
    lines += [line(b) for b in body]
    lines += ["", "Targets:"] + [f"  - {what}: {verdict}" for what, verdict in result["targets"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="bayescpec benchmarks (issue 5)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and draws, pymc only, no fresh cache")
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--pairs", type=int, default=3, help="alternating warm pairs of run and baseline")
    parser.add_argument("--calibration", type=int, default=200, help="simulations of the calibration section (0: skip)")
    args = parser.parse_args(argv)
    if args.smoke:
        result = run_benchmarks(smoke=True, sizes=(20,), draws=20, tune=20, chains=2, out=args.out,
                                backends=("pymc",), baseline_samplers=("pymc",), fresh_cache=False, pairs=1,
                                calibration_simulations=2)
    else:
        result = run_benchmarks(sizes=tuple(int(s) for s in args.sizes.split(",")), draws=args.draws,
                                tune=args.tune, chains=args.chains, out=args.out, pairs=args.pairs,
                                calibration_simulations=args.calibration)
    print(format_table(result))


if __name__ == "__main__":
    main()
