"""``bayescpec calibrate``: simulation-based calibration of a study's model, written to a folder."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BayescpecError
from .help import default
from .options import (
    ChainsOpt,
    DrawsOpt,
    EvidenceOpt,
    FrameworkOpt,
    PriorsOpt,
    QuietOpt,
    SamplerOpt,
    SchedulerOpt,
    SeedOpt,
    SourcesOpt,
    CalibrationTuneOpt,
    WorkersOpt,
    announce_study,
    fail,
    out_console,
)
from .progress import Reporter

__all__ = ["calibrate_command"]


def calibrate_command(
    simulations: Annotated[int, typer.Option(help="Number of simulated evidence logs, each fitted once.")] = 200,
    out: Annotated[Optional[Path], typer.Option(help="Folder for calibration.csv, ranks.csv, simulations.csv, "
                                                     "calibration.json and calibration.png/.pdf."
                                                     + default("results/calibration"))] = None,
    priors: PriorsOpt = "baseline",
    evidence: EvidenceOpt = None,
    framework: FrameworkOpt = None,
    sources: SourcesOpt = None,
    seed: SeedOpt = 20240601,
    draws: DrawsOpt = 500,
    tune: CalibrationTuneOpt = 300,
    chains: ChainsOpt = 4,
    sampler: SamplerOpt = "auto",
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Simulation-based calibration: does the model recover what generated the data?

    Draws the parameters from the prior, simulates an evidence log of the same shape as the real one,
    fits it and ranks the truth in the posterior, SIMULATIONS times. Uniform ranks and nominal interval
    coverage say the model and its sampler recover what generated the data."""
    ui = Reporter(quiet)
    try:
        from ..inputs.study import load_study
        from ..workflow.calibrate import calibrate

        from ..workflow.calibrate import check_calibration_input

        from .._fs import check_output_folder

        announce_study(ui, framework=framework, evidence=evidence, out=out, writes="results/calibration/")
        out = out if out is not None else Path("results") / "calibration"
        check_output_folder(out, "--out")
        study = load_study(framework=framework, priors=priors, evidence=evidence, sources=sources)
        check_calibration_input(study, simulations, seed)  # before anything is announced or fitted
        ui.info(f"bayescpec: {simulations} simulations of the '{study.prior_set}' model "
                f"({chains} chains x {draws} draws each)", markup=False)
        with warnings.catch_warnings(), ui.bar("Simulating and fitting", simulations) as advance:
            warnings.simplefilter("ignore", UserWarning)
            run = calibrate(study, simulations=simulations, draws=draws, tune=tune, chains=chains, seed=seed,
                            sampler=sampler, workers=workers, scheduler=scheduler,
                            on_simulation=lambda done, total: advance(f"{done} of {total} simulations fitted"))
    except (BayescpecError, ValueError) as exc:
        fail(exc)
    import matplotlib

    matplotlib.use("Agg")
    from .._fs import publish_directory, staged_folder
    from ..outputs.calibration import calibration_table, calibration_verdict, plot_calibration
    from ..outputs.figures import save_figure

    table = calibration_table(run.ranks, rank_draws=run.rank_draws)
    verdict = calibration_verdict(table)
    staging = staged_folder(out)
    try:
        table.to_csv(staging / "calibration.csv", index=False)
        run.ranks.to_csv(staging / "ranks.csv", index=False)
        run.simulations.to_csv(staging / "simulations.csv", index=False)
        not_converged = run.attrs["not_converged"]
        if not_converged:
            verdict += f"; {not_converged} of {simulations} fits failed the convergence gate"
        (staging / "calibration.json").write_text(json.dumps({**run.attrs, "verdict": verdict}, indent=2) + "\n",
                                                  encoding="utf-8")
        fig = plot_calibration(run.ranks, rank_draws=run.rank_draws)
        for suffix in ("png", "pdf"):
            save_figure(fig, staging / f"calibration.{suffix}", title=fig._suptitle.get_text(), dpi=150)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish_directory(staging, out)
    shown = Table(title=f"Rank uniformity and interval coverage over {simulations} simulations")
    for name, justify in (("parameter", "left"), ("χ² p", "right"), ("ECDF-PIT p", "right"),
                          ("50% cover", "right"), ("90% cover", "right"), ("uniform?", "left")):
        shown.add_column(name, justify=justify)
    for _, row in table.iterrows():
        shown.add_row(escape(row["parameter"]), f"{row['p_value_chi_square']:.3f}", f"{row['p_value_ecdf_pit']:.3f}",
                      f"{row['coverage_50']:.0%}", f"{row['coverage_90']:.0%}",
                      "[bold red]non-uniform[/]" if row["flagged"] else "yes")
    out_console.print(shown)
    out_console.print(verdict, highlight=False)
    out_console.print(f"{simulations} simulations in {run.attrs['seconds']:.0f} s. Wrote {out}/calibration.csv, "
                      "ranks.csv, simulations.csv, calibration.json, calibration.png and calibration.pdf",
                      highlight=False)
