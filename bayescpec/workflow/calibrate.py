"""Simulation-based calibration (SBC) of a study's model: does the fit recover what generated the data?

Each simulation draws every parameter once from the prior, simulates an evidence log of the study's
shape at those values (:func:`bayescpec.engine.simulate.simulate_evidence`), fits it with the study's
prior set and ranks each true value among ``ranks`` thinned posterior draws. When the model, its
sampler and the prior agree, every parameter's rank is uniform on 0..ranks across simulations and a
central q-interval holds the truth in a share q of them (Talts et al. 2018, arXiv:1804.06788).

Ranked: each channel's conversion probability θ, each constraint's severity, each diagnosticity
(sensitivity and false-positive rate of every tier and test type) and, for each count indicator the
log has count rows of, its two rates and its overdispersion (intra-class correlation); a count
indicator without rows keeps its prior, which says nothing about the fit. The simulations are independent
tasks with their own seeds, run by :func:`bayescpec.workflow.executor.run_tasks` (local processes by
default, a Dask cluster when given one) -- the same numbers wherever they run.

``generating_priors`` draws the truths from another prior set than the one fitted: a deliberately
miscalibrated check that the ranks do show a mismatch (``tests/test_calibrate.py``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import __version__
from ..engine.limits import SAMPLING_LIMITS
from ..errors import InputError
from ..inputs.spec import PriorSet
from ..inputs.study import Study
from .executor import run_tasks

__all__ = ["CalibrationRun", "RANKED", "calibrate", "check_calibration_input", "simulate_and_rank"]

#: the ranked quantities: (posterior variable, the dimension that labels it)
RANKED = (("theta", "channel"), ("severity", "constraint"), ("sensitivity_tier", "tier"),
          ("false_positive_tier", "tier"), ("sensitivity_test", "test"), ("false_positive_test", "test"),
          ("rate_converting", "count_indicator"), ("rate_not_converting", "count_indicator"),
          ("count_icc", "count_indicator"))


@dataclass(frozen=True)
class _Task:
    study: Study
    generating_priors: PriorSet | None
    index: int
    seed: int
    draws: int
    tune: int
    chains: int
    sampler: str
    ranks: int
    plan: pd.DataFrame | None = None  # the study's simulation plan, made once for every simulation


@dataclass(frozen=True)
class CalibrationRun:
    """The outcome of :func:`calibrate`: one row per (simulation, parameter) in ``ranks`` -- the rank
    of the truth among ``rank_draws`` thinned posterior draws, and whether the central 50% and 90%
    equal-tailed intervals (from all draws) held it -- one row per simulation in ``simulations``
    (convergence, divergences, seconds), and the provenance in ``attrs``."""

    ranks: pd.DataFrame
    simulations: pd.DataFrame
    attrs: dict = field(default_factory=dict)

    @property
    def rank_draws(self) -> int:
        return int(self.attrs["rank_draws"])


def _flat(dataset, name: str) -> np.ndarray:
    values = dataset[name].values
    return values.reshape(values.shape[0] * values.shape[1], -1)


def simulate_and_rank(task: _Task) -> dict:
    """One simulation: truth from the prior, an evidence log simulated at it, a fit, the ranks.
    A module-level function of a picklable task, so that it runs in any worker process."""
    from ..engine.prior import draw_prior
    from ..engine.sampling import sample_posterior
    from ..engine.simulate import simulate_evidence
    from ..engine.structure import model_structure, structure_of

    study = task.study
    structure = structure_of(study)
    generating = structure if task.generating_priors is None else \
        model_structure(study.framework, task.generating_priors, structure.units)
    truth = draw_prior(generating, task.generating_priors or study.priors, 1, task.seed)
    rng = np.random.default_rng([task.seed, 1])
    simulated = study.with_evidence(simulate_evidence(study, truth, rng, plan=task.plan)[0])
    started = time.perf_counter()
    # the posterior and its gate only (recorded per simulation below): no prior, ledgers or counterfactuals
    result = sample_posterior(simulated, draws=task.draws, tune=task.tune, chains=task.chains,
                              seed=task.seed + SEED_OFFSET, sampler=task.sampler)
    seconds = time.perf_counter() - started
    posterior = result["posterior"].to_dataset()
    ev = study.evidence
    counted = set(ev.loc[ev["kind"] == "count", "indicator"].astype(str)) if len(ev) else set()
    rows = []
    for name, dim in RANKED:
        if name not in posterior or posterior[name].sizes.get(dim, 0) == 0:
            continue
        draws = _flat(posterior, name)
        thinned = draws[np.linspace(0, len(draws) - 1, task.ranks).round().astype(int)]
        true = truth[name][0]
        below, ties = (thinned < true).sum(axis=0), (thinned == true).sum(axis=0)
        rank = below + rng.integers(0, ties + 1)  # ties broken at random
        lo50, hi50, lo90, hi90 = np.quantile(draws, [0.25, 0.75, 0.05, 0.95], axis=0)
        for j, label in enumerate(posterior[name][dim].values):
            if dim == "count_indicator" and str(label) not in counted:
                continue
            rows.append({"simulation": task.index, "parameter": f"{name}[{label}]", "variable": name,
                         "rank": int(rank[j]), "truth": float(true[j]),
                         "inside_50": bool(lo50[j] <= true[j] <= hi50[j]),
                         "inside_90": bool(lo90[j] <= true[j] <= hi90[j])})
    attrs = result.attrs
    return {"ranks": rows, "simulation": {
        "simulation": task.index, "seed": task.seed, "converged": bool(attrs.get("converged", True)),
        "divergences": int(attrs.get("divergences", 0)), "max_rhat": float(attrs.get("max_rhat", np.nan)),
        "min_ess_bulk": float(attrs.get("min_ess_bulk", np.nan)), "min_ess_tail": float(attrs.get("min_ess_tail", np.nan)),
        "seconds": round(seconds, 3), "sampler": attrs.get("sampler", "")}}


#: simulation i fits with seed + i + SEED_OFFSET (its prior draw and data use seed + i)
SEED_OFFSET = 7


def check_calibration_input(study: Study, simulations: int, seed: int | None = None) -> int:
    """The number of observation rows to simulate; an :class:`InputError` for no simulations or none,
    or (given ``seed``) a seed whose last simulation would pass the largest seed a fit takes."""
    if simulations < 1:
        raise InputError(f"--simulations: at least 1 simulation is needed; found {simulations}")
    if seed is not None:
        highest = SAMPLING_LIMITS["seed"][1] - (simulations - 1) - SEED_OFFSET
        if not 0 <= seed <= highest:
            raise InputError(f"--seed: must be from 0 to {highest} for {simulations} simulations (simulation i "
                             f"fits with seed + i + {SEED_OFFSET}); found {seed}")
    observed = int((study.evidence["kind"] != "gap").sum()) if len(study.evidence) else 0
    if not observed:
        raise InputError(f"{study.files.get('evidence', 'the evidence log')}: no evidence rows to simulate "
                         f"(found {len(study.evidence)} rows, all data gaps or none); calibration simulates "
                         "a log of the same shape, so it needs at least one signal, count or measure row")
    return observed


def calibrate(
    study: Study,
    *,
    simulations: int,
    draws: int = 500,
    tune: int = 300,
    chains: int = 4,
    ranks: int = 99,
    seed: int = 20240601,
    sampler: str = "auto",
    generating_priors: PriorSet | None = None,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_simulation=None,
) -> CalibrationRun:
    """Simulation-based calibration of ``study``'s model: ``simulations`` prior draws, each simulated
    and fitted (``draws`` x ``chains`` after ``tune``: the warm-up a default fit has, given here so that no
    fit is re-sampled), each true value ranked among ``ranks`` thinned
    posterior draws (rank 0..``ranks``). Simulation i uses seed ``seed + i`` wherever it runs.
    ``on_simulation(done, total)`` is called as each simulation finishes (a progress bar)."""
    observed = check_calibration_input(study, simulations, seed)
    if ranks < 9 or ranks > draws * chains:
        raise ValueError(f"ranks must be between 9 and draws x chains ({draws * chains}); found {ranks}")
    from ..engine.compiled import choose_backend, warm_cache

    backend = choose_backend(sampler, fits=simulations)
    warm_cache(study, backend)  # the workers load the compiled model; none compiles it
    from ..engine.simulate import simulation_plan

    plan = simulation_plan(study)
    tasks = [_Task(study, generating_priors, i, seed + i, draws, tune, chains, backend, ranks, plan)
             for i in range(simulations)]
    done = [0]

    def tick(_index, _result):
        done[0] += 1
        if on_simulation is not None:
            on_simulation(done[0], simulations)

    left_out = {name: int(plan[name].sum()) for name in ("package_left_out", "reliability_left_out")}
    started = time.perf_counter()
    outcomes = run_tasks(simulate_and_rank, tasks, executor=executor, workers=workers, scheduler=scheduler,
                         on_result=tick)
    seconds = time.perf_counter() - started
    rank_rows = pd.DataFrame([row for outcome in outcomes for row in outcome["ranks"]])
    per_simulation = pd.DataFrame([outcome["simulation"] for outcome in outcomes])
    attrs = {
        "bayescpec_version": __version__, "prior_set": study.prior_set,
        "generating_prior_set": generating_priors.name if generating_priors is not None else study.prior_set,
        "input_files": {k: str(v) for k, v in study.files.items()}, "input_sha256": dict(study.hashes),
        "evidence_rows": int(observed), "simulations": simulations, "draws": draws, "tune": tune,
        "chains": chains, "rank_draws": ranks, "seed": seed, "sampler": backend,
        "seconds": round(seconds, 1), "not_converged": int((~per_simulation["converged"]).sum()),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "package_rows_left_out": left_out["package_left_out"],
        "count_reliability_left_out": left_out["reliability_left_out"],
        "simulation_note": ("evidence simulated with the study's rows, targets, tiers, kinds, test types, "
                            "explicit diagnosticities, reliabilities and count sizes; a package whose rows "
                            "repeat one fact is simulated as that one fact in every row (its 1/size weights "
                            "are then exact), a measure's reliability r as noise of sd 1/sqrt(r); left out "
                            f"(no data-generating process has their tempered likelihood): "
                            f"{left_out['package_left_out']} row(s) of packages whose rows differ, simulated "
                            f"and fitted as separate rows, and the reliability weight of "
                            f"{left_out['reliability_left_out']} count row(s), simulated and fitted at 1"),
    }
    return CalibrationRun(rank_rows, per_simulation, attrs)
