"""Measurement points run by bench/run.py, each in its own fresh process.

    python bench/_points.py backend  --sampler pymc --draws 1000 --tune 1000 --chains 4
    python bench/_points.py scale    --evidence X.csv --sources sources.csv --draws ... 
    python bench/_points.py update   --evidence X.csv --sources sources.csv --new-rows 5 ...
    python bench/_points.py many     --mode refit|priors-old|priors-new --draws ...

Each prints one line ``BENCH {json}``. Peak memory is ``ru_maxrss`` of this process and of its
(waited-for) children, i.e. the sampler's worker processes, whichever is larger.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
import warnings
from pathlib import Path

T0 = time.perf_counter()
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402

import bayescpec  # noqa: E402
from bayescpec.engine.aggregate import aggregate_evidence  # noqa: E402
from bayescpec.engine.sampling import REPORTED, fit  # noqa: E402
from bayescpec.engine.model import build_model  # noqa: E402

IMPORTED = time.perf_counter()
logging.getLogger("pymc").setLevel(logging.ERROR)


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # ru_maxrss is in KiB on Linux


def min_ess(posterior) -> float:
    import arviz as az

    names = [n for n in REPORTED if n in posterior and posterior[n].size]
    if not names:  # a bare pm.sample posterior: every sampled parameter
        names = [n for n in posterior.data_vars if posterior[n].size and float(posterior[n].std()) > 0]
    ess = az.ess(posterior[names], method="bulk")
    return float(min(float(ess[n].min()) for n in names))


def backend(args) -> dict:
    import pymc as pm

    study = bayescpec.load_study()
    model = build_model(study)
    out = {"sampler": args.sampler}
    if args.sampler == "pymc":
        t = time.perf_counter()
        step = pm.NUTS(model=model, target_accept=0.9)
        out["compile_s"] = time.perf_counter() - t
        t = time.perf_counter()
        tree = pm.sample(draws=args.draws, tune=args.tune, chains=args.chains, cores=min(args.chains, 2),
                         step=step, model=model, nuts_sampler="pymc", random_seed=args.seed,
                         progressbar=False, compute_convergence_checks=False)
        out["sample_s"] = time.perf_counter() - t
        posterior = tree["posterior"].to_dataset()
    elif args.sampler == "native":  # bayescpec's own path: nutpie's NUTS on the cached native log density
        from bayescpec.engine.compiled import compiled_model

        t = time.perf_counter()
        compiled = compiled_model(study, "nutpie")
        out["compile_s"] = time.perf_counter() - t
        out["loaded_from_cache"] = bool(compiled.native.loaded)
        t = time.perf_counter()
        tree = compiled.sample(study, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                               target_accept=0.9, cores=min(args.chains, 2))
        out["sample_s"] = time.perf_counter() - t
        posterior = tree["posterior"].to_dataset()
    elif args.sampler == "nutpie":  # nutpie's own compile_pymc_model (its Numba wrapper compiled every process)
        import nutpie

        t = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model, backend="numba")
        out["compile_s"] = time.perf_counter() - t
        t = time.perf_counter()
        tree = nutpie.sample(compiled, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                             target_accept=0.9, progress_bar=False, cores=min(args.chains, 2))
        out["sample_s"] = time.perf_counter() - t
        posterior = tree.posterior if hasattr(tree, "posterior") else tree["posterior"]
        posterior = posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior
    else:
        raise SystemExit(f"unknown sampler {args.sampler}")
    out["min_ess_bulk"] = min_ess(posterior)
    out["peak_mb"] = peak_mb()
    return out


def scale(args) -> dict:
    t = time.perf_counter()
    study = bayescpec.load_study(evidence=args.evidence, sources=args.sources)
    validated = time.perf_counter()
    data = aggregate_evidence(study.evidence, study.framework, study.priors)
    model = build_model(study, evidence=data)
    built = time.perf_counter()
    result = fit(study, model=model, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed)
    fitted = time.perf_counter()
    stats = result["sample_stats"]
    steps = stats["n_steps"].to_numpy() if "n_steps" in stats else np.array([np.nan])
    return {
        "rows": len(study.evidence),
        "groups": int(sum(len(getattr(data, k)["target"]) for k in ("signal", "count", "measure"))),
        "validate_s": validated - t, "build_s": built - validated,
        # NUTS sampling only (PyMC's own timer: excludes compiling, prior draws, pointwise log-lik)
        "sample_s": float(stats.attrs.get("sampling_time", np.nan)),
        "fit_s": fitted - built, "steps_per_draw": float(np.mean(steps)),
        "min_ess_bulk": float(result.attrs["min_ess_bulk"]), "peak_mb": peak_mb(),
        # divergences of the reported run, and of the first run when fit() re-sampled after divergences
        "divergences": int(result.attrs["divergences"]), "divergence_retry": str(result.attrs["divergence_retry"]),
        "converged": bool(result.attrs["converged"]), "max_rhat": float(result.attrs["max_rhat"]),
        "convergence_failures": str(result.attrs.get("convergence_failures", "")),
    }


def update(args) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pandas as pd

    from simulate import simulate_rows
    from bayescpec.workflow.update import update_result

    base = pd.read_csv(args.evidence, dtype=str, keep_default_na=False)
    new = simulate_rows(args.new_rows, args.seed + 1, id_prefix="upd")
    grown = Path(args.evidence).with_name("synthetic_update_grown.csv")
    pd.concat([base, new], ignore_index=True).to_csv(grown, index=False)
    old_study = bayescpec.load_study(evidence=args.evidence, sources=args.sources)
    new_study = bayescpec.load_study(evidence=grown, sources=args.sources)
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed)
    previous = fit(old_study, **kw)
    t = time.perf_counter()
    fast = update_result(previous, new_study, method="auto", **kw)
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    update_result(previous, new_study, method="refit", **kw)
    refit_s = time.perf_counter() - t
    return {"fast_s": fast_s, "fast_method": fast.attrs.get("update_method"),
            "khat": float(fast.attrs.get("pareto_khat", np.nan)),
            "reason": str(fast.attrs.get("update_reason", "")), "refit_s": refit_s,
            "rows_before": len(old_study.evidence), "rows_added": args.new_rows, "peak_mb": peak_mb()}


def many(args) -> dict:
    """Many fits in this process: the first fit (loading the compiled model from the disk cache, or
    compiling it), a refit after new evidence (the log without its last row, then the whole log) with
    the default settings (the short warm-up, re-run longer only if the gate fails) and at tune 1000,
    and the four shipped prior sets fitted the old way (a PyMC model built and sampled for each set:
    what compare-priors did before issue 10) or the new way (``fit_prior_sets`` with its defaults)."""
    from bayescpec.engine.compiled import clear_compiled_models
    from bayescpec.workflow.compare import SHIPPED_PRIOR_SETS, fit_prior_sets

    kw = dict(draws=args.draws, chains=args.chains, seed=args.seed)
    if args.mode == "refit":
        study = bayescpec.load_study()
        before = study.with_evidence(study.evidence.iloc[:-1])
        t = time.perf_counter()
        fit(before, sampler=args.sampler, tune=args.tune, **kw)
        first_s = time.perf_counter() - t
        out = {"first_s": first_s}
        for label, tune in (("default", None), ("1000", 1000)):
            t = time.perf_counter()
            result = fit(study, sampler=args.sampler, tune=tune, **kw)
            out[f"refit_{label}_s"] = time.perf_counter() - t
            out[f"refit_{label}_sample_s"] = float(result.attrs["sampling_seconds"])
            out[f"refit_{label}_ess_bulk"] = float(result.attrs["min_ess_bulk"])
            out[f"refit_{label}_converged"] = bool(result.attrs["converged"])
            out[f"refit_{label}_tune"] = f"{result.attrs['tune']}" + (" (re-run)" if result.attrs.get("tune_retry") else "")
        return out
    t = time.perf_counter()
    if args.mode == "priors-old":
        for name in SHIPPED_PRIOR_SETS:
            clear_compiled_models()
            fit(bayescpec.load_study(priors=name), sampler="pymc", tune=args.tune, **kw)
    else:
        fit_prior_sets(prior_sets=list(SHIPPED_PRIOR_SETS), sampler="auto" if args.sampler == "nutpie" else args.sampler,
                       **kw)
    return {"priors_s": time.perf_counter() - t}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["backend", "scale", "update", "many"])
    parser.add_argument("--mode", default="refit", choices=["refit", "priors-old", "priors-new"])
    parser.add_argument("--sampler", default="pymc")
    parser.add_argument("--evidence")
    parser.add_argument("--sources")
    parser.add_argument("--new-rows", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20260527)
    args = parser.parse_args()
    out = {"backend": backend, "scale": scale, "update": update, "many": many}[args.what](args)
    out["import_s"] = IMPORTED - T0
    print("BENCH " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
