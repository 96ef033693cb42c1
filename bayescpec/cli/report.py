"""CLI commands of the report stage: ``report`` (tables and figures from a saved result) and
``compare-priors`` (the same evidence under every prior set). Registered on the app by :mod:`bayescpec.cli`.

Heavy imports (pandas, matplotlib, great_tables, PyMC) stay inside the commands so that
``bayescpec --help`` stays fast. On any error: one line, exit code 2, nothing written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .._fs import staged_folder
from ..errors import BayescpecError
from .options import (
    AsOfOpt,
    ChainsOpt,
    CiKindOpt,
    CiProbOpt,
    DrawsOpt,
    EvidenceOpt,
    FrameworkOpt,
    SamplerOpt,
    SourcesOpt,
    ThresholdOpt,
    TuneOpt,
    check_interval_options,
    check_sampler,
    err_console,
    fail,
    out_console,
)

FORMAT_HELP = "Table format: csv, md, latex, html or all; repeat for several [default: all]."


def _sizes(paths) -> str:
    def human(n: int) -> str:
        return f"{n / 1024:.1f} kB" if n >= 1024 else f"{n} B"

    return "\n".join(f"  {p.name:<40} {human(p.stat().st_size):>10}" for p in paths)


def report(
    result: Annotated[Path, typer.Argument(help="A saved result: the folder `bayescpec run` wrote, or its result.nc.")],
    format: Annotated[Optional[list[str]], typer.Option("--format", "-f", help=FORMAT_HELP)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: RESULT/report].")] = None,
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Also draw the figures (PNG and PDF).")] = True,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    digits: Annotated[int, typer.Option(help="Decimals of every number in the tables.")] = 2,
) -> None:
    """Publication tables (and figures) from a saved result, without refitting."""
    started = time.perf_counter()
    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        from ..outputs.export import check_digits, check_formats

        formats = check_formats(format or ["all"])
        digits = check_digits(digits)
        from ..workflow.store import load_result

        fitted = load_result(result)
    except BayescpecError as exc:
        fail(exc)
    import shutil

    from ..outputs.export import publish, write_tables
    from ..outputs.tables import report_tables

    folder = result if result.is_dir() else result.parent
    out = out or folder / "report"
    staging = staged_folder(out)
    try:
        tables = report_tables(fitted, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
        written = write_tables(tables, staging, formats=formats, digits=digits, threshold=threshold,
                               ci_kind=ci_kind, ci_prob=ci_prob)
        if figures:
            from ..outputs.figures import FIGURE_FORMATS, save_figures

            sub = staging / "figures-tmp"
            written += save_figures(fitted, out=sub, formats=FIGURE_FORMATS, threshold=threshold,
                                    ci_kind=ci_kind, ci_prob=ci_prob)
            for path in list(sub.iterdir()):
                path.replace(staging / path.name)
            sub.rmdir()
            written = [staging / p.name for p in written]
    except BayescpecError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        fail(exc)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    paths = publish(staging, out, written)
    if not fitted.attrs.get("converged", True):
        err_console.print(f"[bold red]warning:[/] the result failed its convergence checks "
                          f"({fitted.attrs.get('convergence_failures')}); every footnote says so")
    out_console.print(f"Wrote {len(paths)} files to {out} in {time.perf_counter() - started:.1f} s:\n{_sizes(paths)}",
                      highlight=False)


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
    priors: Annotated[Optional[list[str]], typer.Option("--priors", help="A prior set (name or path); repeat for several [default: every prior set beside the framework].")] = None,
    evidence: EvidenceOpt = None,
    framework: FrameworkOpt = None,
    sources: SourcesOpt = None,
    out: Annotated[Path, typer.Option(help="Output folder for the comparison tables.")] = Path("results/compare-priors"),
    format: Annotated[Optional[list[str]], typer.Option("--format", "-f", help=FORMAT_HELP)] = None,
    as_of: AsOfOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed (the same for every prior set).")] = 20260527,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    digits: Annotated[int, typer.Option(help="Decimals of every number in the tables.")] = 2,
    sampler: SamplerOpt = "pymc",
) -> None:
    """Fit the same evidence under every prior set and tabulate P(converting) side by side."""
    started = time.perf_counter()
    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        check_sampler(sampler)
        from ..outputs.export import check_digits, check_formats

        formats = check_formats(format or ["all"])
        digits = check_digits(digits)
        from ..workflow.compare import available_prior_sets, fit_prior_sets

        names = priors or available_prior_sets(framework)
        _check_prior_sets(names, framework=framework, evidence=evidence, sources=sources, as_of=as_of)
        err_console.print(f"bayescpec: fitting {len(names)} prior sets ({', '.join(map(str, names))}), "
                          f"{chains} chains x {draws} draws each, seed {seed}")
        results = fit_prior_sets(
            prior_sets=names, framework=framework, evidence=evidence, sources=sources, as_of=as_of, draws=draws,
            tune=tune, chains=chains, seed=seed, sampler=sampler,
            on_fit=lambda name, r: err_console.print(
                f"  {name}: max R-hat {r.attrs['max_rhat']:.3f}, min ESS {r.attrs['min_ess_bulk']:.0f}, "
                f"{r.attrs['divergences']} divergences" + ("" if r.attrs["converged"] else " [bold red](checks FAILED)[/]")),
        )
    except BayescpecError as exc:
        fail(exc)
    import shutil

    from rich.table import Table

    from ..outputs.export import publish, write_tables
    from ..outputs.layout import fmt_probability
    from ..workflow.compare import prior_comparison_propositions, prior_comparison_table

    table = prior_comparison_table(results, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    props = prior_comparison_propositions(results, threshold=threshold)
    sets = table.attrs["prior_sets"]
    console = Table(title=f"P(θ > {threshold:g}) per channel under each prior set ({table.attrs['interval']} in the files)")
    console.add_column("channel")
    for name in sets:
        console.add_column(name, justify="right")
    console.add_column("IPCC term changes")
    for _, row in table.iterrows():
        console.add_row(row["channel"], *[f"{fmt_probability(row[f'{n} p_converting'])} ({row[f'{n} likelihood']})"
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
