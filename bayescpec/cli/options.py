"""What every command shares: the consoles, the one way to fail (exit code 2, one message, no traceback),
the option checks and the option definitions (one definition each), JSON output.

Choices (``--ci-kind``, ``--sampler``, ``--method``, ``--format``) are shown as ``[a|b]`` in --help and
validated against the same tuple; a bad choice or a number below its minimum is a usage error
(exit code 2, the option named, nothing written).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..engine.limits import SAMPLING_LIMITS, limit_problem
from ..errors import InputError
from .help import choice_label, default

__all__ = ["out_console", "err_console", "configure_consoles", "EXIT_INPUT", "fail", "check_range",
           "check_interval_options", "check_sampler", "print_json", "jsonable", "CI_KINDS", "SAMPLERS", "METHODS", "FORMATS",
           "sampling_range", "sampling_limit", "announce_study"]

out_console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

EXIT_INPUT = 2
CI_KINDS = ("eti", "hdi")
SAMPLERS = ("auto", "pymc", "nutpie")
METHODS = ("auto", "psis", "refit")
FORMATS = ("csv", "md", "latex", "html", "all")


def configure_consoles() -> None:
    """Console widths for this invocation: ``COLUMNS`` when set (so ``COLUMNS=80`` shows what an
    80-column terminal shows), the terminal's width on a terminal, else 150 (logs, pipes)."""
    columns = os.environ.get("COLUMNS", "")
    for console, stream in ((out_console, sys.stdout), (err_console, sys.stderr)):
        if columns.isdigit() and int(columns) > 0:
            console.width = int(columns)
        else:
            console.width = None if stream.isatty() else 150


def fail(exc: BaseException) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    for note in getattr(exc, "__notes__", ()):  # notes added to the error on its way up
        err_console.print(escape(note), highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def announce_study(ui, *, framework=None, evidence=None, out: Path | None = None, writes: str = "") -> None:
    """Say which study a command uses whenever it is not the current folder's (the shipped CPEC 2.0
    study when the folder has none). ``writes`` names what the command would write (e.g.
    ``results/``): when the current folder holds no study but a subfolder does -- the user is most
    likely one folder too high -- that is refused (InputError) unless ``out`` was given explicitly."""
    from ..inputs.study import study_source

    source = study_source(framework=framework, evidence=evidence)
    note = source.note()
    if not note:
        return
    if writes and out is None and source.nearby:
        raise InputError(f"{note}. Nothing was fitted or written: this would write {writes} here for the shipped "
                         "study; to do that anyway, give --out")
    ui.warn(escape(note))


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low < value < high:
        raise InputError(f"{name}: must be in ({low:g}, {high:g}); found {value!r}")


def check_interval_options(threshold: float, ci_kind: str, ci_prob: float) -> None:
    """Raise InputError naming the option when τ or the interval probability is out of range."""
    check_range("--threshold", threshold, 0, 1)
    check_range("--ci-prob", ci_prob, 0, 1)
    if ci_kind not in CI_KINDS:
        raise InputError(f"--ci-kind: must be 'eti' or 'hdi'; found {ci_kind!r}")


def check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise InputError(f"--sampler: must be one of {', '.join(SAMPLERS)}; found {sampler!r}")


def _choices_text(choices: tuple[str, ...]) -> str:
    quoted = [repr(c) for c in choices]
    return " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _one_of(name: str, choices: tuple[str, ...]):
    """A callback checking an option against its choices: one error line, exit code 2."""
    def check(value):
        values = value if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in values if v is not None and v not in choices]
        if bad:
            fail(InputError(f"{name}: must be {_choices_text(choices)}; found {bad[0]!r}"))
        return value
    return check


def _at_least(name: str, low: int):
    def check(value):
        if value is not None and value < low:
            fail(InputError(f"{name}: must be at least {low}; found {value}"))
        return value
    return check


def sampling_range(name: str) -> str:
    low, high = SAMPLING_LIMITS[name]
    return f"{low} to {high:_}".replace("_", " ")


def sampling_limit(name: str):
    """A callback refusing a sampler setting outside :data:`~bayescpec.engine.limits.SAMPLING_LIMITS`
    before anything runs (``update`` must not append rows for a fit that cannot start)."""
    def check(value):
        if value is not None and (problem := limit_problem(name, value, option=f"--{name}")):
            fail(InputError(problem))
        return value
    return check


def jsonable(value):
    """``value`` with numpy scalars as Python numbers, NaN as None, dates and paths as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def print_json(data) -> None:
    """One JSON document on standard output (nothing else goes there with --json)."""
    sys.stdout.write(json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# Options shared by several commands: one definition each.
PriorsOpt = Annotated[str, typer.Option(metavar="NAME|PATH", help="Prior set: a name in the framework's folder (baseline, skeptical, optimistic, flat) or a path.")]
EvidenceOpt = Annotated[Optional[Path], typer.Option(help="Evidence log (CSV)." + default("evidence/cpec.csv or evidence/evidence.csv in the current folder, else the shipped CPEC log"))]
FrameworkOpt = Annotated[Optional[Path], typer.Option(help="Framework TOML." + default("priors/framework.toml in the current folder, else the shipped one"))]
SourcesOpt = Annotated[Optional[Path], typer.Option(help="Sources CSV." + default("sources.csv beside the evidence log"))]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", metavar="YYYY-MM-DD", help="Use only evidence observed on or before this date." + default("today"))]
SeedOpt = Annotated[int, typer.Option(help=f"Random seed ({sampling_range('seed')}).", callback=sampling_limit("seed"))]
DrawsOpt = Annotated[int, typer.Option(help=f"Posterior draws per chain ({sampling_range('draws')}).", callback=sampling_limit("draws"))]
TuneOpt = Annotated[Optional[int], typer.Option(help=f"Tuning steps per chain ({sampling_range('tune')})." + default("300, sampled again with 1000 when the convergence checks fail"), callback=sampling_limit("tune"))]
CalibrationTuneOpt = Annotated[int, typer.Option("--tune", help=f"Tuning steps per chain ({sampling_range('tune')}).", callback=sampling_limit("tune"))]
ChainsOpt = Annotated[int, typer.Option(help=f"Chains ({sampling_range('chains')}; R-hat needs 2).", callback=sampling_limit("chains"))]
ThresholdOpt = Annotated[float, typer.Option(help="Conversion threshold τ in P(θ > τ).")]
CiProbOpt = Annotated[float, typer.Option("--ci-prob", help="Credible-interval probability.")]
CiKindOpt = Annotated[str, typer.Option("--ci-kind", metavar=choice_label(CI_KINDS), callback=_one_of("--ci-kind", CI_KINDS),
                                        help="Credible-interval kind: equal-tailed (eti) or highest-density (hdi).")]
SamplerOpt = Annotated[str, typer.Option(metavar=choice_label(SAMPLERS), callback=_one_of("--sampler", SAMPLERS),
                                         help="NUTS backend: nutpie (nutpie's sampler on the model compiled to "
                                              "native code once per framework and kept on disk: about a second "
                                              "a fit), pymc (PyMC's own, slower), or auto (nutpie).")]
MethodOpt = Annotated[str, typer.Option(metavar=choice_label(METHODS), callback=_one_of("--method", METHODS),
                                        help="auto: reweight the previous fit when that is reliable, else refit; "
                                             "psis: reweight or fail; refit: always refit.")]
FormatOpt = Annotated[Optional[list[str]], typer.Option("--format", "-f", metavar="FORMAT",
                                                        callback=_one_of("--format", FORMATS),
                                                        help=f"Table format: {', '.join(FORMATS)}; repeat for "
                                                             "several." + default("all"))]
DigitsOpt = Annotated[int, typer.Option(help="Decimals of every number in the tables.")]
VintagesOpt = Annotated[Path, typer.Option(help="Folder of saved vintages.")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    help="Run the fits on a local Dask cluster of this many worker processes (1: one after another in "
         "this process). Each worker compiles the model first (about 30 s with nutpie), so a few fits are "
         "faster without it." + default("local processes, one per core, when there are more than 8 fits"),
    callback=_at_least("--workers", 1))]
SchedulerOpt = Annotated[Optional[str], typer.Option(
    metavar="tcp://HOST:PORT", help="Run the fits on the Dask cluster whose scheduler is at this address." + default("none"))]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no notes on standard error; results and errors only.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as one JSON document instead of tables.")]
