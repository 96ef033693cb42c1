"""What every command shares: the consoles, the one way to fail (exit code 2, one message, no traceback),
the option checks and the option definitions (one definition each)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import InputError

__all__ = ["out_console", "err_console", "EXIT_INPUT", "fail", "check_range", "check_interval_options",
           "check_sampler"]

out_console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

EXIT_INPUT = 2


def fail(exc: BaseException) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def check_range(name: str, value: float, low: float, high: float) -> None:
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
    check_range("--threshold", threshold, 0, 1)
    check_range("--ci-prob", ci_prob, 0, 1)
    if ci_kind not in ("eti", "hdi"):
        raise InputError(f"--ci-kind: must be 'eti' or 'hdi'; found {ci_kind!r}")


def check_sampler(sampler: str) -> None:
    if sampler not in ("pymc", "nutpie"):
        raise InputError(f"--sampler: must be 'pymc' or 'nutpie'; found {sampler!r}")
