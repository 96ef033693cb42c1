"""CLI commands of the report stage: ``report`` (tables, figures and index.html from a saved result) and
``compare-priors`` (the same evidence under every prior set). Registered on the app by :mod:`bayescpec.cli`.

Heavy imports (pandas, matplotlib, great_tables, PyMC) stay inside the commands so that
``bayescpec --help`` stays fast. On any error: one line, exit code 2, nothing written.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BayescpecError
from .display import convergence_banner, print_banners, prob
from .help import default
from .options import (
    sampling_range,
    sampling_limit,
    AsOfOpt,
    ChainsOpt,
    CiKindOpt,
    CiProbOpt,
    DigitsOpt,
    DrawsOpt,
    EvidenceOpt,
    FormatOpt,
    FrameworkOpt,
    QuietOpt,
    SamplerOpt,
    SchedulerOpt,
    SourcesOpt,
    ThresholdOpt,
    TuneOpt,
    WorkersOpt,
    announce_study,
    check_interval_options,
    fail,
    out_console,
)
from .progress import Reporter


def _sizes(paths) -> str:
    def human(n: int) -> str:
        return f"{n / 1024:.1f} kB" if n >= 1024 else f"{n} B"

    return "\n".join(f"  {p.name:<40} {human(p.stat().st_size):>10}" for p in paths)


def report(
    result: Annotated[Path, typer.Argument(help="A saved result: the folder `bayescpec run` wrote, or its result.nc.")],
    format: FormatOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder." + default("RESULT/report"))] = None,
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Also draw the figures (PNG and PDF).")] = True,
    page: Annotated[bool, typer.Option("--page/--no-page", help="Also write index.html: the study at a glance, "
                                                                  "with every figure and table.")] = True,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    digits: DigitsOpt = 2,
    analytics: Annotated[bool, typer.Option("--analytics/--no-analytics", help="Also run explain, next, robustness and whatif (the "
                                                                 "framework's scenarios) and add their tables, figures "
                                                                 "and page sections; needs the result's input files, "
                                                                 "unchanged.")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Also run the model check (bayescpec check) and add its "
                                                             "tables, figure and page section; needs the result's "
                                                             "input files, unchanged.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress; only the list of files and errors.")] = False,
) -> None:
    """Publication tables, figures and index.html from a saved result, without refitting."""
    started = time.perf_counter()
    ui = Reporter(quiet)
    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        from .._fs import check_output_folder
        from ..outputs.export import check_digits, check_formats

        formats = check_formats(format or ["all"])
        check_digits(digits)
        out = out or (result if result.is_dir() else result.parent) / "report"
        check_output_folder(out, "--out")
        from ..workflow.store import load_result

        fitted = load_result(result)
        from ..workflow.working import stale_note

        stale = stale_note(fitted, result, command="report")
        found = []
        if analytics:
            from ..analysis.base import require_pointwise, study_of
            from ..analysis.report import analytics as run_analytics

            require_pointwise(fitted, "report --analytics")
            try:
                study = study_of(fitted)
            except BayescpecError as exc:
                if stale:
                    exc.add_note(stale.replace("bayescpec report ", "bayescpec report --analytics "))
                raise
            
            with ui.step("Evidence analytics: explain, next, robustness, whatif"):
                found = run_analytics(fitted, study, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
        if check:
            from ..analysis.base import study_of
            from ..analysis.criticism import check as model_check
            from ..analysis.criticism_report import check_outputs

            study = study if analytics else study_of(fitted)
            with ui.step("Model check: predictive checks, overdispersion, PSIS-LOO"), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                found.append(check_outputs(model_check(fitted, study)))
    except BayescpecError as exc:
        fail(exc)
    if stale:
        ui.warn(escape(stale))
    from ..outputs.report import report_file_count, write_report

    total = report_file_count(formats=formats, figures=figures, page=page,
                              extra_tables=sum(len(o.tables) for o in found),
                              extra_figures=sum(len(o.figures) for o in found))
    try:
        with warnings.catch_warnings(), ui.bar(f"Writing the report into {out}/", total) as advance:
            warnings.simplefilter("ignore", UserWarning)
            options = dict(out=out, formats=formats, figures=figures, page=page, threshold=threshold, ci_kind=ci_kind,
                           ci_prob=ci_prob, digits=digits, on_file=lambda path: advance(path.name))
            if found:
                from ..analysis.report import write_analytics_report

                paths = write_analytics_report(fitted, found, **options)
            else:
                paths = write_report(fitted, **options)
    except BayescpecError as exc:
        fail(exc)
    banner = convergence_banner(fitted.attrs)
    if banner is not None:
        out_console.print(banner)
        out_console.print("Every table, figure and index.html says so.")
    out_console.print(f"Wrote {len(paths)} files to {out} in {time.perf_counter() - started:.1f} s:\n{_sizes(paths)}",
                      highlight=False)
    if page:
        out_console.print(f"Open {out / 'index.html'} in a browser: the study at a glance.", highlight=False)


def _check_prior_sets(names, **inputs) -> None:
    """Load the study of every prior set before anything is announced or fitted; raise InputError
    listing every problem once (a bad evidence file is not reported once per prior set)."""
    from ..errors import InputError
    from ..inputs.study import load_study

    if not names:
        raise InputError("--priors: no prior sets found beside the framework; give at least one")
    problems, seen = [], {}
    for name in names:
        try:
            study = load_study(priors=name, **inputs)
        except InputError as exc:
            problems += [p for p in exc.problems if p not in problems]
            continue
        if study.prior_set in seen:
            problems.append(InputError(f"--priors: {seen[study.prior_set]!r} and {name!r} are both named "
                                       f"{study.prior_set!r}; give each prior set once").problems[0])
        seen.setdefault(study.prior_set, name)
    if problems:
        raise InputError(problems)


def compare_priors_command(
    priors: Annotated[Optional[list[str]], typer.Option("--priors", metavar="NAME|PATH", help="A prior set (name or path); repeat for several." + default("every prior set beside the framework"))] = None,
    evidence: EvidenceOpt = None,
    framework: FrameworkOpt = None,
    sources: SourcesOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder for the comparison tables."
                                                     + default("results/compare-priors"))] = None,
    format: FormatOpt = None,
    as_of: AsOfOpt = None,
    seed: Annotated[int, typer.Option(help=f"Random seed, the same for every prior set ({sampling_range('seed')}).",
                                      callback=sampling_limit("seed"))] = 20260527,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    digits: DigitsOpt = 2,
    sampler: SamplerOpt = "auto",
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Fit the same evidence under every prior set and tabulate P(converting) side by side."""
    started = time.perf_counter()
    ui = Reporter(quiet)
    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        from .._fs import check_output_folder
        from ..outputs.export import check_digits, check_formats

        formats = check_formats(format or ["all"])
        digits = check_digits(digits)
        announce_study(ui, framework=framework, evidence=evidence, out=out, writes="results/compare-priors/")
        out = out if out is not None else Path("results/compare-priors")
        check_output_folder(out, "--out")
        from ..workflow.compare import available_prior_sets, fit_prior_sets

        names = priors or available_prior_sets(framework)
        _check_prior_sets(names, framework=framework, evidence=evidence, sources=sources, as_of=as_of)
        ui.info(f"bayescpec: fitting {len(names)} prior sets ({', '.join(map(str, names))}), "
                f"{chains} chains x {draws} draws each, seed {seed}", markup=False)
        with ui.bar("Fitting one model per prior set", len(names)) as advance:
            results = fit_prior_sets(
                prior_sets=names, framework=framework, evidence=evidence, sources=sources, as_of=as_of, draws=draws,
                tune=tune, chains=chains, seed=seed, sampler=sampler, workers=workers, scheduler=scheduler,
                on_fit=lambda name, r: advance(
                    f"{name}: max R-hat {r.attrs['max_rhat']:.3f}, min ESS {r.attrs['min_ess_bulk']:.0f}, "
                    f"{r.attrs['divergences']} divergences" + ("" if r.attrs["converged"] else " (checks FAILED)")),
            )
    except BayescpecError as exc:
        fail(exc)
    import shutil

    from .._fs import staged_folder
    from ..outputs.export import publish, write_tables
    from ..workflow.compare import prior_comparison_propositions, prior_comparison_table

    table = prior_comparison_table(results, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    props = prior_comparison_propositions(results, threshold=threshold)
    sets = table.attrs["prior_sets"]
    for name, fitted in results.items():
        if not fitted.attrs["converged"]:
            out_console.print(f"[bold red]Prior set {name}:[/]")
            print_banners(fitted.attrs, prior_only=False)
    console = Table(title=f"P(θ > {threshold:g}) per channel under each prior set ({table.attrs['interval']} in the files)")
    console.add_column("channel")
    for name in sets:
        console.add_column(name, justify="right")
    console.add_column("IPCC term changes")
    for _, row in table.iterrows():
        console.add_row(row["channel"], *[f"{prob(row[f'{n} p_converting'])} ({row[f'{n} likelihood']})"
                                          for n in sets], "[bold]yes[/]" if row["likelihood_changes"] else "no")
    out_console.print(console)
    staging = staged_folder(out)
    try:
        written = write_tables({"prior-comparison": table, "prior-comparison-propositions": props}, staging,
                               formats=formats, digits=digits, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    paths = publish(staging, out, written)
    out_console.print(f"Wrote {len(paths)} files to {out} in {time.perf_counter() - started:.1f} s:\n{_sizes(paths)}",
                      highlight=False)
