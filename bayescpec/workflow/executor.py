"""Running many independent fits: in this process, in local worker processes, or on a Dask cluster.

Every many-fit job (calibration, prior grids, trajectories, explain's refits) is a list of *tasks* -- picklable
arguments of one top-level function -- whose results come back in task order. Each task carries its
own seeds, so the results do not depend on where or in which order the tasks ran: the serial run, a
process pool and a Dask cluster give the same numbers (``tests/test_executor.py`` checks it).

Where the tasks run:

* ``executor="serial"`` -- one after another in this process (its compiled models are reused);
* ``executor="processes"`` -- a local pool of ``workers`` processes (default: one per core), started
  with ``spawn`` (forking a process that has started sampler threads is unsafe); each worker loads the
  compiled model from the disk cache (the caller compiles it into the cache first, see
  :func:`bayescpec.engine.compiled.warm_cache`) and serves all its tasks with it, its chains on one core
  (``BAYESCPEC_CORES=1``: the workers already use every core);
* ``executor="dask"`` -- a Dask ``distributed`` cluster: the one at ``scheduler`` (``tcp://host:8786``)
  or, without one, a ``LocalCluster`` of ``workers`` single-threaded worker processes started for
  the job and shut down after it (one core each, as above).

``executor=None`` picks: ``dask`` when a scheduler is given, else ``processes`` when there are more
tasks than :data:`SERIAL_UP_TO` and more than one worker, else ``serial`` (starting a worker process
and loading the model there, 2-3 s, is not earned back by a handful of 1-second fits).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from ..errors import InputError

__all__ = ["EXECUTORS", "SERIAL_UP_TO", "choose_executor", "run_tasks"]

EXECUTORS = ("serial", "processes", "dask")
#: up to this many tasks run in this process by default
SERIAL_UP_TO = 8
#: what a worker process's fits may use: one core each (the workers are already one per core)
WORKER_ENV = {"BAYESCPEC_CORES": "1"}


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def choose_executor(tasks: int, *, executor: str | None = None, workers: int | None = None,
                    scheduler: str | None = None) -> str:
    """The executor a job of ``tasks`` tasks runs on (see the module notes)."""
    if executor is not None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; found {executor!r}")
        if scheduler and executor != "dask":
            raise ValueError(f"a scheduler address ({scheduler}) needs executor 'dask'; found {executor!r}")
        return executor
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1; found {workers}")
    if scheduler:
        return "dask"
    if workers is not None:  # an explicit worker count asks for a local Dask cluster of that size
        return "dask" if workers > 1 else "serial"
    return "processes" if tasks > SERIAL_UP_TO and _cores() > 1 else "serial"


def run_tasks(
    function: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list:
    """``[function(task) for task in tasks]``, run where :func:`choose_executor` says. ``function``
    must be importable (a module-level function) and each task picklable when it runs elsewhere.
    ``on_result(index, result)`` is called in this process as each task finishes (in completion
    order: a progress bar); the returned list is in task order. The first failing task's exception
    is raised after the others are cancelled."""
    kind = choose_executor(len(tasks), executor=executor, workers=workers, scheduler=scheduler)
    if kind == "serial" or not tasks:
        results = []
        for i, task in enumerate(tasks):
            results.append(function(task))
            if on_result is not None:
                on_result(i, results[-1])
        return results
    if kind == "processes":
        return _run_processes(function, tasks, workers or min(_cores(), len(tasks)), on_result)
    return _run_dask(function, tasks, workers, scheduler, on_result)


def _worker_setup() -> None:
    os.environ.update(WORKER_ENV)


def _run_processes(function, tasks, workers: int, on_result) -> list:
    results: list = [None] * len(tasks)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_setup) as pool:
        futures = {pool.submit(function, task): i for i, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                if on_result is not None:
                    on_result(i, results[i])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _run_dask(function, tasks, workers: int | None, scheduler: str | None, on_result) -> list:
    try:
        from distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("the Dask executor needs the 'distributed' package") from exc
    cluster = None
    if scheduler:
        try:  # an address nothing listens at: OSError after distributed's connect timeout (30 s by default)
            client = Client(scheduler)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise InputError(f"--scheduler: cannot reach the Dask scheduler at {scheduler} ({reason[:300]}); "
                             "allowed: the address of a running scheduler, tcp://HOST:PORT (started with "
                             "`dask scheduler`), or leave --scheduler out to fit here") from None
    else:
        # silence_logs: the cluster is ours and short-lived; its nannies log routine shutdown warnings
        # ("worker process still alive after 4 s, killing") that say nothing about the results
        cluster = LocalCluster(n_workers=workers or _cores(), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR, env=dict(WORKER_ENV))
        client = Client(cluster)
    try:
        futures = client.map(function, list(tasks), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: list = [None] * len(tasks)
        try:
            for future in dask_completed(futures):
                i = index[future.key]
                results[i] = future.result()
                if on_result is not None:
                    on_result(i, results[i])
        except BaseException:
            client.cancel(futures)
            raise
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
