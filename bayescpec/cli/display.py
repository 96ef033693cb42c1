"""How results look in a terminal: the report's rounding (``<0.01``, ``>0.99``, never ``-0.00``),
banners for a failed fit and a prior-only result, and tables that fit the terminal's width (a wide
layout when there is room, a compact one on an 80-column terminal)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table

from .options import out_console

__all__ = ["prob", "num", "change", "interval", "print_fitting", "convergence_banner", "prior_only_banner",
           "print_banners", "divergence_note"]


def prob(p) -> str:
    """A probability as the report shows it: 0.003 -> <0.01, 0.998 -> >0.99."""
    from ..outputs.layout import fmt_probability

    return fmt_probability(p)


def num(x, *, signed: bool = False) -> str:
    """A number rounded to 2 decimals, never -0.00."""
    from ..outputs.layout import fmt_number

    return fmt_number(x, signed=signed)


def change(before, after, *, mcse=None) -> str:
    """``after - before`` as the two are printed (each rounded to 2 decimals first: 0.244 -> 0.236 shows
    0.24 -> 0.24 and a change of 0.00, not -0.01); ``≈ 0`` when within 2 ``mcse`` (Monte Carlo noise)."""
    import math

    from ..outputs.summary import WITHIN_NOISE

    if mcse is not None and math.isfinite(float(mcse)) and abs(float(after) - float(before)) <= 2 * float(mcse):
        return WITHIN_NOISE
    return num(round(float(after), 2) - round(float(before), 2), signed=True)


def interval(lower, upper) -> str:
    return f"[{num(lower)}, {num(upper)}]"


def fits(table: Table, console=out_console) -> bool:
    """Does ``table`` show at its natural width (nothing wrapped or cut) on ``console``?"""
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update(width=100_000, max_width=100_000), table)
    return natural.maximum <= console.width


def print_fitting(*layouts: RenderableType, console=out_console) -> None:
    """Print the first of ``layouts`` (widest first) that fits the console; the last one otherwise."""
    for layout in layouts[:-1]:
        if not isinstance(layout, Table) or fits(layout, console):
            console.print(layout)
            return
    console.print(layouts[-1])


def convergence_banner(attrs) -> Panel | None:
    """A red banner when a result failed its convergence checks (None when it passed)."""
    if bool(attrs.get("converged", True)):
        return None
    return Panel(f"[bold]This fit FAILED its convergence checks[/]: {attrs.get('convergence_failures')}.\n"
                 "Do not publish these numbers: refit with more draws (--draws, --tune) or chains.",
                 title="CONVERGENCE CHECKS FAILED", border_style="bold red", expand=False)


def prior_only_banner(attrs) -> Panel | None:
    """A banner when a result used no evidence rows: every posterior number is the prior's."""
    if int(attrs.get("evidence_rows", 1) or 0) > 0:
        return None
    return Panel("The evidence log has no rows (as of "
                 f"{attrs.get('as_of')}): this is a [bold]prior-only result[/]. Every 'posterior' number below "
                 "is what the prior set alone says; add evidence rows to learn from data.",
                 title="PRIOR ONLY", border_style="bold yellow", expand=False)


def print_banners(attrs, *, prior_only: bool = True, convergence: bool = True, console=out_console) -> None:
    """The prior-only and the failed-convergence banners, when they apply."""
    for banner in (prior_only and prior_only_banner(attrs), convergence and convergence_banner(attrs)):
        if banner:
            console.print(banner)


def divergence_note(attrs) -> str:
    """'' or a sentence saying the sampler re-ran after divergent transitions."""
    retry = str(attrs.get("divergence_retry", "") or "")
    if not retry:
        return ""
    return (f"Note: the sampler hit divergent transitions and re-sampled once with smaller steps "
            f"({retry}).")
