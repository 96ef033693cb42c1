"""CLI commands for rerunning as evidence arrives: update, history, diff, trajectory.

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
from .options import (
    ChainsOpt,
    CiKindOpt,
    CiProbOpt,
    DrawsOpt,
    EvidenceOpt,
    FrameworkOpt,
    SeedOpt,
    ThresholdOpt,
    TuneOpt,
    check_interval_options,
    check_range,
    err_console,
    fail,
    out_console,
)

VINTAGES = Path("results") / "vintages"


def _headline(result, threshold: float) -> Table:
    from ..outputs.summary import channel_table

    channels = channel_table(result, threshold=threshold)
    label = channels.attrs["interval"]
    table = Table(title=f"Conversion per channel — P(converting) = P(θ > {threshold:g}), {label}")
    for col in ("channel", "posterior mean", label, "P(converting)", "IPCC likelihood"):
        table.add_column(col, justify="left" if col in ("channel", "IPCC likelihood") else "right")
    for r in channels.to_dict("records"):
        table.add_row(r["channel"], f"{r['posterior_mean']:.2f}",
                      f"[{r[f'{label} lower']:.2f}, {r[f'{label} upper']:.2f}]", f"{r['p_converting']:.2f}",
                      r["likelihood"])
    return table


def update(
    new: Annotated[Path, typer.Argument(help="CSV of new evidence rows (same columns as the log).")],
    evidence: Annotated[Optional[Path], typer.Option(help="The evidence log to append to [default: evidence/cpec.csv].")] = None,
    framework: FrameworkOpt = None,
    priors: Annotated[str, typer.Option(help="Prior set name or path.")] = "baseline",
    vintages: Annotated[Path, typer.Option(help="Folder of saved vintages.")] = VINTAGES,
    previous: Annotated[Optional[Path], typer.Option(help="Result to reweight from [default: the newest vintage of the log before this update].")] = None,
    method: Annotated[str, typer.Option(help="auto (PSIS fast path if k-hat < 0.7, else refit), psis (fail instead of refitting) or refit.")] = "auto",
    seed: SeedOpt = 20260527,
    draws: Annotated[int, typer.Option(help="Posterior draws per chain (refit).", min=10)] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain (refit).", min=10)] = 1000,
    chains: Annotated[int, typer.Option(help="Chains (refit).", min=1)] = 4,
    threshold: ThresholdOpt = 0.5,
) -> None:
    """Append NEW rows to the evidence log (atomically; all or nothing), refit, save a new vintage."""
    from ..workflow.update import update_evidence

    started = time.perf_counter()
    try:
        check_range("--threshold", threshold, 0, 1)
        if method not in ("auto", "psis", "refit"):
            raise InputError(f"--method: must be 'auto', 'psis' or 'refit'; found {method!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = update_evidence(new, evidence=evidence, framework=framework, priors=priors,
                                      vintages=vintages, previous=previous, method=method,
                                      seed=seed, draws=draws, tune=tune, chains=chains)
    except BayescpecError as exc:
        fail(exc)
    out_console.print(escape(outcome.append.summary()))
    if outcome.result is None:
        out_console.print(outcome.reason)
        return
    attrs = outcome.result.attrs
    how = "PSIS fast path (reweighted the previous posterior)" if outcome.method == "psis" else "full refit"
    out_console.print(f"Method: [bold]{how}[/] — {escape(outcome.reason)}")
    if outcome.previous is not None:
        out_console.print(f"Previous result: {outcome.previous}")
    out_console.print(_headline(outcome.result, threshold))
    if not attrs["converged"]:
        out_console.print(f"[bold red]Convergence checks FAILED:[/] {escape(str(attrs['convergence_failures']))}")
    out_console.print(f"Saved vintage {outcome.vintage} ({outcome.method}, {outcome.seconds:.1f} s to fit; "
                      f"{time.perf_counter() - started:.1f} s in all)")


def history(
    vintages: Annotated[Path, typer.Option(help="Folder of saved vintages.")] = VINTAGES,
    threshold: ThresholdOpt = 0.5,
) -> None:
    """List the saved vintages with their headline P(converting) per channel."""
    from ..workflow.vintages import history as vintage_history

    try:
        check_range("--threshold", threshold, 0, 1)
        table = vintage_history(vintages, threshold=threshold)
    except BayescpecError as exc:
        fail(exc)
    if table.empty:
        out_console.print(f"No vintages under {vintages} yet (`bayescpec update NEW.csv` makes them).")
        return
    channels = [c for c in table.columns if c.startswith("p_")]
    out = Table(title=f"Vintages under {vintages} — P(θ > {threshold:g}) per channel")
    for col in ["vintage", "as of", "evidence", "prior set", "rows", "method"] + [c[2:] for c in channels]:
        out.add_column(col, justify="right" if col in ("rows",) or f"p_{col}" in channels else "left")
    for r in table.to_dict("records"):
        method = r["method"] + (f" (k̂ {r['pareto_khat']:.2f})" if r["method"] == "psis" else "")
        out.add_row(r["vintage"], str(r["as_of"]), r["evidence_sha256"], str(r["prior_set"]), str(r["rows"]),
                    method, *[f"{r[c]:.2f}" for c in channels])
    out_console.print(out)


def diff(
    a: Annotated[str, typer.Argument(help="Vintage A: name, unique prefix, evidence-hash prefix, 'previous', 'latest' or a path.")],
    b: Annotated[str, typer.Argument(help="Vintage B (as A).")],
    vintages: Annotated[Path, typer.Option(help="Folder of saved vintages.")] = VINTAGES,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    csv: Annotated[Optional[Path], typer.Option(help="Also write the change table to this CSV file.")] = None,
) -> None:
    """What changed from vintage A to vintage B: means, intervals, P(converting), IPCC terms, rows."""
    from ..workflow.vintages import diff as vintage_diff

    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        d = vintage_diff(a, b, root=vintages, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    except BayescpecError as exc:
        fail(exc)
    label = d.table.attrs["interval"]
    t = Table(title=f"{d.a} → {d.b}: posterior mean, {label}, P(θ > {threshold:g}) / proposition probability")
    for col in ("", "name", "mean A → B", f"{label} A", f"{label} B", "P A → B", "change", "IPCC term A → B"):
        t.add_column(col, justify="left" if col in ("", "name", "IPCC term A → B") else "right")
    for r in d.table.to_dict("records"):
        is_channel = r["kind"] == "channel"
        word = r["likelihood_a"] if not r["word_changed"] else f"[bold]{r['likelihood_a']} → {r['likelihood_b']}[/]"
        t.add_row("*" if r["word_changed"] else "", r["name"],
                  f"{r['mean_a']:.2f} → {r['mean_b']:.2f}" if is_channel else "",
                  f"[{r['lower_a']:.2f}, {r['upper_a']:.2f}]" if is_channel else "",
                  f"[{r['lower_b']:.2f}, {r['upper_b']:.2f}]" if is_channel else "",
                  f"{r['p_a']:.2f} → {r['p_b']:.2f}", f"{r['p_change']:+.2f}", word)
    out_console.print(t)
    out_console.print("* the IPCC likelihood term changed")
    for title, frame in (("in B, not in A", d.added), ("in A, not in B", d.removed), ("changed content", d.changed)):
        if frame.empty:
            out_console.print(f"Evidence rows {title}: none")
            continue
        rows = Table(title=f"Evidence rows {title} ({len(frame)})")
        cols = [c for c in ("id", "observed", "target", "tier", "kind", "source") if c in frame.columns]
        for col in cols:
            rows.add_column(col)
        for r in frame.to_dict("records"):
            rows.add_row(*[escape(str(r[c])) for c in cols])
        out_console.print(rows)
    if csv is not None:
        d.table.to_csv(csv, index=False)
        out_console.print(f"Wrote {csv}")


def trajectory(
    dates: Annotated[Optional[str], typer.Option(help="Comma-separated YYYY-MM-DD dates [default: every distinct evidence date].")] = None,
    priors: Annotated[str, typer.Option(help="Prior set name or path.")] = "baseline",
    evidence: EvidenceOpt = None,
    framework: FrameworkOpt = None,
    out: Annotated[Path, typer.Option(help="Folder for trajectory.csv and trajectory.png.")] = Path("results") / "trajectory",
    seed: SeedOpt = 20260527,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    threshold: ThresholdOpt = 0.5,
) -> None:
    """Fit the evidence as of each date and plot how each channel's P(converting) evolved."""
    import datetime as dt

    try:
        check_range("--threshold", threshold, 0, 1)
        wanted = None
        if dates:
            wanted = []
            for text in dates.split(","):
                try:
                    wanted.append(dt.date.fromisoformat(text.strip()))
                except ValueError:
                    raise InputError(f"--dates: not a date in YYYY-MM-DD form: found {text.strip()!r}") from None
        from ..inputs.study import load_study

        study = load_study(framework=framework, priors=priors, evidence=evidence)
        if wanted and max(wanted) > study.as_of:
            raise InputError(f"--dates: {max(wanted)} is in the future (today is {study.as_of})")
    except BayescpecError as exc:
        fail(exc)
    import matplotlib

    matplotlib.use("Agg")
    from ..engine.sampling import ConvergenceWarning
    from ..outputs.figures import plot_trajectory
    from ..workflow.trajectory import evidence_dates, evidence_trajectory

    todo = wanted or evidence_dates(study)
    err_console.print(f"bayescpec: {len(todo)} fits ({chains} chains x {draws} draws each), prior set '{study.prior_set}'")

    def progress(date, frame):
        err_console.print(f"  {date}: {frame['rows'].iloc[0]} rows — " +
                          ", ".join(f"{c} {p:.2f}" for c, p in zip(frame["channel"], frame["p_converting"])))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        table = evidence_trajectory(study, dates=wanted, threshold=threshold, progress=progress,
                                    seed=seed, draws=draws, tune=tune, chains=chains)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "trajectory.csv", index=False)
    fig = plot_trajectory(table)
    fig.savefig(out / "trajectory.png", dpi=150)
    failed = table.loc[~table["converged"], "date"].unique()
    if len(failed):
        out_console.print(f"[bold red]Convergence checks failed[/] as of: {', '.join(map(str, failed))}")
    wide = table.pivot(index="date", columns="channel", values="p_converting")[table["channel"].unique()]
    t = Table(title=f"P(θ > {threshold:g}) as evidence arrived")
    t.add_column("as of")
    t.add_column("rows", justify="right")
    for c in wide.columns:
        t.add_column(c, justify="right")
    rows = table.groupby("date")["rows"].first()
    for date, r in wide.iterrows():
        t.add_row(str(date), str(rows[date]), *[f"{v:.2f}" for v in r])
    out_console.print(t)
    out_console.print(f"Wrote {out}/trajectory.csv and trajectory.png")
