"""CLI commands for rerunning as evidence arrives: ``update`` and ``trajectory``.

Heavy imports (PyMC, ArviZ) happen inside the commands so that ``bayescpec --help`` stays fast.
Every input problem ends with one message, exit code 2, no traceback, nothing written.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BayescpecError, InputError
from .display import divergence_note, interval, num, print_banners, print_fitting, prob
from .help import default
from .options import (
    ChainsOpt,
    DrawsOpt,
    EvidenceOpt,
    FrameworkOpt,
    MethodOpt,
    PriorsOpt,
    QuietOpt,
    SamplerOpt,
    SchedulerOpt,
    SeedOpt,
    ThresholdOpt,
    TuneOpt,
    VintagesOpt,
    WorkersOpt,
    announce_study,
    check_range,
    fail,
    out_console,
)
from .progress import Reporter

VINTAGES = Path("results") / "vintages"


def _headline(result, threshold: float, before=None) -> Table:
    """P(converting) per channel (and, given the result before, the change)."""
    from ..outputs.summary import channel_table

    channels = channel_table(result, threshold=threshold)
    label = channels.attrs["interval"]
    old = channel_table(before, threshold=threshold).set_index("channel") if before is not None else None
    table = Table(title=f"Conversion per channel — P(converting) = P(θ > {threshold:g}), {label}")
    columns = ["channel", "posterior mean", label] + (["P before", "P after"] if old is not None else
                                                      ["P(converting)"]) + ["IPCC likelihood"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("channel", "IPCC likelihood") else "right", overflow="fold")
    for r in channels.to_dict("records"):
        ps = [prob(old.loc[r["channel"], "p_converting"]), prob(r["p_converting"])] \
            if old is not None and r["channel"] in old.index else [prob(r["p_converting"])]
        if old is not None and len(ps) == 1:
            ps = ["–"] + ps
        table.add_row(r["channel"], num(r["posterior_mean"]), interval(r[f"{label} lower"], r[f"{label} upper"]),
                      *ps, r["likelihood"])
    return table


def _rows_table(records, title: str) -> list[Table]:
    """The evidence rows of an update, wide and compact."""
    layouts = []
    for cols in (("id", "observed", "target", "tier", "kind", "source"), ("id", "observed", "target", "tier")):
        table = Table(title=title)
        for col in cols:
            table.add_column(col, overflow="fold")
        for r in records:
            table.add_row(*[escape(str(r.get(c, ""))) for c in cols])
        layouts.append(table)
    return layouts


def _check_log(ui: Reporter, *, evidence, framework) -> None:
    """Refuse to append to the shipped CPEC log by default: without --evidence, `update` appends to the
    current folder's log, and a folder without one (a parent of the study, a fresh folder) is said
    to be one (InputError); a framework taken from the shipped study is said (a warning)."""
    from ..inputs.study import EVIDENCE_NAMES, study_source

    source = study_source(framework=framework, evidence=evidence)
    if "evidence" in source.shipped:
        found = source.note().partition("; found")[2]
        raise InputError(f"no evidence log here: `update` appends to evidence/{EVIDENCE_NAMES[1]} (or evidence/"
                         f"{EVIDENCE_NAMES[0]}) of the current folder, and {source.folder} has none"
                         + (f"; found{found}" if found else "")
                         + "; or give the log to append to with --evidence (nothing was checked or written)")
    if source.note():
        ui.warn(escape(source.note()))


def update(
    new: Annotated[Path, typer.Argument(help="CSV of new evidence rows (same columns as the log).")],
    evidence: Annotated[Optional[Path], typer.Option(help="The evidence log to append to." + default("evidence/evidence.csv or evidence/cpec.csv in the current folder; a folder without one is refused"))] = None,
    framework: FrameworkOpt = None,
    priors: PriorsOpt = "baseline",
    vintages: VintagesOpt = VINTAGES,
    out: Annotated[Optional[Path], typer.Option(help="Folder of the working result: its result.nc and quick CSV tables "
                                                     "are replaced by the updated result (what `bayescpec report` "
                                                     "reads)." + default("the folder holding --vintages: results"))] = None,
    previous: Annotated[Optional[Path], typer.Option(help="Result to reweight from." + default("the newest vintage of the log before this update"))] = None,
    method: MethodOpt = "auto",
    seed: SeedOpt = 20260527,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    threshold: ThresholdOpt = 0.5,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the rows and say what would be appended and whether the "
                                                             "model would be reweighted or refitted; write nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm appending rows marked hypothetical or synthetic to a "
                                                          "log that has none.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Append NEW rows to the evidence log (atomically; all or nothing), refit or reweight, save a vintage."""
    from ..workflow.update import update_evidence

    started = time.perf_counter()
    ui = Reporter(quiet)
    try:
        check_range("--threshold", threshold, 0, 1)
        _check_log(ui, evidence=evidence, framework=framework)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step = "Checking the new rows and deciding how to fold them in" if dry_run else \
                "Fitting the log with the new rows (reweighting or refitting), then appending them"
            with ui.step(step):
                outcome = update_evidence(new, evidence=evidence, framework=framework, priors=priors,
                                          vintages=vintages, out=out, previous=previous, method=method,
                                          dry_run=dry_run, allow_hypothetical=yes or dry_run, threshold=threshold,
                                          seed=seed, draws=draws, tune=tune, chains=chains)
    except BayescpecError as exc:
        from ..inputs.append import HypotheticalRowsError

        if isinstance(exc, HypotheticalRowsError):
            ui.warn("these rows are marked hypothetical (or synthetic) and the log holds real evidence only.")
        fail(exc)
    report = outcome.append
    if dry_run:
        out_console.print("[bold]DRY RUN[/]: nothing was written (log, results and vintages are untouched).")
    out_console.print(escape(report.summary()), highlight=False)
    if outcome.rows:
        print_fitting(*_rows_table(outcome.rows, "Rows appended" if not dry_run else "Rows that would be appended"))
    if report.hypothetical:
        mark = ", ".join(report.hypothetical)
        if dry_run and report.needs_confirmation:
            ui.warn(f"{len(report.hypothetical)} row(s) are marked hypothetical or synthetic ({mark}) and the log has "
                    "none: `update` would refuse them without --yes.")
        elif not dry_run:
            ui.warn(f"{len(report.hypothetical)} hypothetical/synthetic row(s) appended ({mark}).")
    if not report.added:
        out_console.print(outcome.reason)
        return
    if dry_run:
        out_console.print(f"Decision: {escape(outcome.summary)}.", highlight=False)
        if outcome.previous is not None:
            out_console.print(f"Previous result: {outcome.previous}", highlight=False)
        if outcome.result is not None:
            from ..workflow.vintages import load_vintage

            out_console.print(_headline(outcome.result, threshold, before=load_vintage(outcome.previous)))
        if report.needs_confirmation and not yes:  # the dry run's exit code is the real run's: a script can rely on it
            from ..inputs.append import HypotheticalRowsError

            fail(HypotheticalRowsError("the same update without --dry-run would refuse these rows (exit code 2): "
                                       "they are marked hypothetical or synthetic and the log has none; add --yes "
                                       "to append them anyway"))
        return
    attrs = outcome.result.attrs
    how = "reweighted the previous fit" if outcome.method == "psis" else "refitted the model"
    out_console.print(f"How: [bold]{how}[/] — {escape(outcome.summary)}.", highlight=False)
    if outcome.previous is not None:
        out_console.print(f"Previous result: {outcome.previous}", highlight=False)
    before = None
    if outcome.previous is not None:
        from ..workflow.vintages import load_vintage

        before = load_vintage(outcome.previous)
    print_banners(attrs)
    out_console.print(_headline(outcome.result, threshold, before=before))
    if divergence_note(attrs):
        out_console.print(divergence_note(attrs), highlight=False)
    print_banners(attrs, prior_only=False)
    saved = "Reused vintage" if outcome.reused else "Saved vintage"
    out_console.print(f"{saved} {outcome.vintage} ({outcome.method}, {outcome.seconds:.1f} s to fit; "
                      f"{time.perf_counter() - started:.1f} s in all)", highlight=False)
    if outcome.working is not None:
        out_console.print(f"Working result: {outcome.working}/result.nc and its CSV tables now hold this result "
                          f"(`bayescpec report {outcome.working}` reports it)", highlight=False)
    elif outcome.working_note:
        ui.warn(escape(outcome.working_note))


def trajectory(
    dates: Annotated[Optional[str], typer.Option(metavar="DATE,DATE,...", help="Comma-separated YYYY-MM-DD dates." + default("every distinct evidence date"))] = None,
    priors: PriorsOpt = "baseline",
    evidence: EvidenceOpt = None,
    framework: FrameworkOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for trajectory.csv, .png and .pdf."
                                                     + default("results/trajectory"))] = None,
    seed: SeedOpt = 20260527,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    threshold: ThresholdOpt = 0.5,
    sampler: SamplerOpt = "auto",
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Fit the evidence as of each date and plot how each channel's P(converting) evolved."""
    ui = Reporter(quiet)
    try:
        check_range("--threshold", threshold, 0, 1)
        from .._fs import check_output_folder

        announce_study(ui, framework=framework, evidence=evidence, out=out, writes="results/trajectory/")
        out = out if out is not None else Path("results") / "trajectory"
        check_output_folder(out, "--out")
        from ..inputs.study import load_study, parse_date

        wanted = [parse_date(text, "--dates") for text in dates.split(",")] if dates else None

        study = load_study(framework=framework, priors=priors, evidence=evidence)
        if wanted and max(wanted) > study.as_of:
            raise InputError(f"--dates: {max(wanted)} is in the future (today is {study.as_of})")
    except BayescpecError as exc:
        fail(exc)
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    from .._fs import publish_directory, staged_folder
    from ..engine.sampling import ConvergenceWarning
    from ..outputs.figures import plot_trajectory, save_figure
    from ..workflow.trajectory import evidence_dates, evidence_trajectory

    todo = wanted or evidence_dates(study)
    ui.info(f"bayescpec: {len(todo)} fits ({chains} chains x {draws} draws each), prior set '{study.prior_set}'",
            markup=False)
    try:  # --scheduler: an address nothing answers at is one message, not a traceback
        with warnings.catch_warnings(), ui.bar("Fitting the evidence as of each date", len(todo)) as advance:
            warnings.simplefilter("ignore", ConvergenceWarning)
            table = evidence_trajectory(
                study, dates=wanted, threshold=threshold, seed=seed, draws=draws, tune=tune, chains=chains,
                sampler=sampler, workers=workers, scheduler=scheduler, progress=lambda date, frame: advance(f"{date}: {frame['rows'].iloc[0]} rows — " + ", ".join(
                    f"{c} {prob(p)}" for c, p in zip(frame["channel"], frame["p_converting"]))))
    except BayescpecError as exc:
        fail(exc)
    staging = staged_folder(out)
    try:
        table.to_csv(staging / "trajectory.csv", index=False)
        fig = plot_trajectory(table)
        for suffix in ("png", "pdf"):
            save_figure(fig, staging / f"trajectory.{suffix}", title=fig._suptitle.get_text(), dpi=150)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish_directory(staging, out)
    failed = table.loc[~table["converged"], "date"].unique()
    if len(failed):
        out_console.print(f"[bold red]Convergence checks FAILED[/] as of: {', '.join(map(str, failed))} "
                          "(do not publish those points; refit with more draws)")
    wide = table.pivot(index="date", columns="channel", values="p_converting")[table["channel"].unique()]
    t = Table(title=f"P(θ > {threshold:g}) as evidence arrived")
    t.add_column("as of")
    t.add_column("rows", justify="right")
    for c in wide.columns:
        t.add_column(c, justify="right", overflow="fold")
    rows = table.groupby("date")["rows"].first()
    for date, r in wide.iterrows():
        t.add_row(str(date), str(rows[date]), *[prob(v) for v in r])
    out_console.print(t)
    out_console.print(f"Wrote {out}/trajectory.csv, trajectory.png and trajectory.pdf", highlight=False)
