"""The ``bayescpec`` command line: run, validate.

Every input error ends with one message listing each problem (file, line, column, what was found
and what was allowed), exit code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import BayescpecError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Bayesian evidence updating about development-corridor conversion.")
out_console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

EXIT_INPUT = 2


def _fail(exc: BaseException) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low < value < high:
        raise InputError(f"{name}: must be in ({low:g}, {high:g}); found {value!r}")


# Options shared by several commands: one definition each.
PriorsOpt = Annotated[str, typer.Option(help="Prior set: a name in the framework's folder (baseline, skeptical, optimistic, flat) or a path.")]
EvidenceOpt = Annotated[Optional[Path], typer.Option(help="Evidence CSV [default: evidence/cpec.csv].")]
FrameworkOpt = Annotated[Optional[Path], typer.Option(help="Framework TOML [default: priors/framework.toml].")]
SourcesOpt = Annotated[Optional[Path], typer.Option(help="Sources CSV [default: sources.csv beside the evidence].")]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="Use only evidence observed on or before this date (YYYY-MM-DD).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
DrawsOpt = Annotated[int, typer.Option(help="Posterior draws per chain.", min=10)]
TuneOpt = Annotated[int, typer.Option(help="Tuning steps per chain.", min=10)]
ChainsOpt = Annotated[int, typer.Option(help="Chains.", min=1)]
ThresholdOpt = Annotated[float, typer.Option(help="Conversion threshold τ in P(θ > τ).")]
CiProbOpt = Annotated[float, typer.Option("--ci-prob", help="Credible-interval probability.")]
CiKindOpt = Annotated[str, typer.Option("--ci-kind", help="Credible-interval kind: eti or hdi.")]
SamplerOpt = Annotated[str, typer.Option(help="NUTS backend: pymc or nutpie.")]


def check_interval_options(threshold: float, ci_kind: str, ci_prob: float) -> None:
    """Raise InputError naming the option when τ, the interval kind or its probability is out of range."""
    _check_range("--threshold", threshold, 0, 1)
    _check_range("--ci-prob", ci_prob, 0, 1)
    if ci_kind not in ("eti", "hdi"):
        raise InputError(f"--ci-kind: must be 'eti' or 'hdi'; found {ci_kind!r}")


def check_sampler(sampler: str) -> None:
    if sampler not in ("pymc", "nutpie"):
        raise InputError(f"--sampler: must be 'pymc' or 'nutpie'; found {sampler!r}")


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def print_tables(channels, props, cons) -> None:
    """Print the channel, proposition and constraint tables (as made by bayescpec.summary)."""
    label, threshold = channels.attrs["interval"], channels.attrs["threshold"]
    tier_cols = [c for c in channels.columns if c.startswith("rows_")]
    table = Table(title=f"Conversion probability θ per channel — {label}, P(converting) = P(θ > {threshold:g})")
    for col in ["channel", "prior mean", "posterior mean", f"{label}", f"P(θ > {threshold:g})", "IPCC likelihood"] + \
            [c.removeprefix("rows_") + " rows" for c in tier_cols]:
        table.add_column(col, justify="left" if col in ("channel", "IPCC likelihood") else "right")
    for r in channels.to_dict("records"):
        table.add_row(r["channel"], _fmt(r["prior_mean"]), _fmt(r["posterior_mean"]),
                      f"[{_fmt(r[f'{label} lower'])}, {_fmt(r[f'{label} upper'])}]",
                      _fmt(r["p_converting"]), r["likelihood"], *[str(r[c]) for c in tier_cols])
    out_console.print(table)
    table = Table(title=f"Propositions (τ = {threshold:g})")
    for col in ("proposition", "query", "prior P", "posterior P", "change", "IPCC likelihood"):
        table.add_column(col, justify="right" if col.endswith("P") or col == "change" else "left")
    for r in props.to_dict("records"):
        table.add_row(r["proposition"], escape(r["query"]), _fmt(r["prior_probability"]), _fmt(r["posterior_probability"]),
                      f"{r['change']:+.2f}", r["likelihood"])
    out_console.print(table)
    if len(cons):
        table = Table(title=f"Constraint severity (logit scale, 0 = typical) — {label}")
        for col in ("constraint", "binds", "prior mean", "posterior mean", label, "P(binding)", "context rows"):
            table.add_column(col, justify="left" if col in ("constraint", "binds") else "right")
        for r in cons.to_dict("records"):
            table.add_row(r["constraint"], r["binds"], _fmt(r["prior_mean"]), _fmt(r["posterior_mean"]),
                          f"[{_fmt(r[f'{label} lower'])}, {_fmt(r[f'{label} upper'])}]", _fmt(r["p_binding"]),
                          str(r["rows_context"]))
        out_console.print(table)


@app.command()
def run(
    priors: PriorsOpt = "baseline",
    evidence: EvidenceOpt = None,
    framework: FrameworkOpt = None,
    sources: SourcesOpt = None,
    out: Annotated[Path, typer.Option(help="Output folder for the saved result and CSV tables.")] = Path("results"),
    as_of: AsOfOpt = None,
    seed: SeedOpt = 20260527,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    sampler: SamplerOpt = "pymc",
) -> None:
    """Fit the study and print per-channel conversion, propositions and constraints; write OUT/."""
    started = time.perf_counter()
    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        check_sampler(sampler)
        from .study import load_study

        study = load_study(framework=framework, priors=priors, evidence=evidence, sources=sources, as_of=as_of)
    except BayescpecError as exc:
        _fail(exc)
    from .sampling import ConvergenceWarning, fit
    from .results import RESULT_FILE, publish_directory, save_result, write_table
    from .summary import channel_table, constraint_table, proposition_table

    err_console.print(f"bayescpec: {len(study.evidence)} evidence rows as of {study.as_of} "
                      f"({study.excluded_after_as_of} later rows left out), prior set '{study.prior_set}', "
                      f"{chains} chains x {draws} draws, seed {seed}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = fit(study, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler)
    tables = {  # computed once: printed here, written below
        "channels": channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob),
        "propositions": proposition_table(result, threshold=threshold),
        "constraints": constraint_table(result, ci_kind=ci_kind, ci_prob=ci_prob),
    }
    print_tables(tables["channels"], tables["propositions"], tables["constraints"])
    attrs = result.attrs
    status = "[green]passed[/]" if attrs["converged"] else f"[bold red]FAILED: {attrs['convergence_failures']}[/]"
    out_console.print(f"Convergence (R-hat ≤ 1.01, bulk ESS ≥ 400, no divergences): {status} — "
                      f"max R-hat {attrs['max_rhat']:.3f}, min bulk ESS {attrs['min_ess_bulk']:.0f}, "
                      f"{attrs['divergences']} divergences")
    if attrs.get("divergence_retry"):
        out_console.print(f"Note: {attrs['divergence_retry']}.")
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging."))
    try:
        save_result(result, staging / RESULT_FILE)
        for name, table in tables.items():
            write_table(table, staging / f"{name}.csv")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # nothing half-written is left behind
        raise
    publish_directory(staging, out)
    from .vintages import save_vintage, vintage_name

    vintages = out / "vintages"  # the same folder `bayescpec update` and `history` use by default
    existing = vintages / vintage_name(result)
    already = existing.exists()
    vintage = existing if already else save_vintage(result, root=vintages)
    out_console.print(f"Wrote {out}/{RESULT_FILE}, channels.csv, propositions.csv, constraints.csv "
                      f"in {time.perf_counter() - started:.1f} s; vintage {vintage.name}"
                      f"{' (already saved)' if already else ''}")


def _classify(path: Path) -> str:
    if path.suffix == ".toml":
        return "framework" if "[framework]" in path.read_text(encoding="utf-8", errors="replace") else "priors"
    if path.suffix == ".csv":
        head = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
        return "sources" if head.strip().startswith("key") else "evidence"
    return "unknown"


@app.command()
def validate(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files to check [default: the shipped framework, every prior set, every evidence file].")] = None,
    framework: Annotated[Optional[Path], typer.Option(help="Framework to check the other files against.")] = None,
) -> None:
    """Check framework, prior-set, evidence and sources files; report every problem."""
    from .errors import Problem
    from .evidence import read_evidence, read_sources, validate_evidence
    from .spec import load_framework, load_priors
    from .study import shipped_path

    if not paths:
        root_priors, root_evidence = shipped_path("priors"), shipped_path("evidence")
        paths = sorted(root_priors.glob("*.toml")) + sorted(root_evidence.glob("*.csv"))
    kinds = {}
    problems: list[Problem] = []
    for path in paths:
        if not path.exists():
            problems.append(Problem(str(path), None, None, "file not found"))
        else:
            kinds[path] = _classify(path)
    framework_path = framework or next((p for p, k in kinds.items() if k == "framework"),
                                       shipped_path("priors", "framework.toml"))
    try:
        fw = load_framework(framework_path)
    except InputError as exc:
        _fail(InputError(problems + exc.problems))
    checked = []
    sources_cache = {}
    for path, kind in kinds.items():
        try:
            if kind == "priors":
                load_priors(path, fw)
            elif kind == "sources":
                read_sources(path)
            elif kind == "evidence":
                src_path = path.parent / "sources.csv"
                if src_path not in sources_cache:
                    sources_cache[src_path] = read_sources(src_path) if src_path.exists() else None
                validate_evidence(read_evidence(path), fw, sources=sources_cache[src_path], file=str(path))
            elif kind == "unknown":
                problems.append(Problem(str(path), None, None, "not a .toml or .csv file"))
                continue
            checked.append(f"{path} ({kind})")
        except InputError as exc:
            problems += exc.problems
    if problems:
        _fail(InputError(problems))
    out_console.print("[green]ok:[/] " + ", ".join(checked + [f"{framework_path} (framework)"] if framework_path not in kinds else checked))


# Commands of the other stages register themselves on `app` (one module each).
from . import cli_report, cli_update  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except BayescpecError as exc:  # anything raised past the commands' own handling
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT)


if __name__ == "__main__":
    main()
