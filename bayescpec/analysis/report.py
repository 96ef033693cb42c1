"""The analyses as files: their tables in the four report formats, their figures as PNG and PDF, and the
sections of ``index.html`` -- what ``bayescpec explain|next|robustness|whatif`` write, and what
``bayescpec report --analytics`` adds to the report.

Each analysis becomes :class:`Outputs`: tables by file stem (laid out by :mod:`.layouts`), figures by
file stem (drawn only when written) and the page section's text. :func:`write_outputs` writes them
atomically (staged, then moved into place, nothing written on error); :func:`analytics` runs all four
analyses on a result, and :func:`write_analytics_report` writes the whole report with them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .._fs import staged_folder
from ..inputs.study import Study
from ..outputs.captions import save_figure
from ..outputs.export import FORMATS, check_digits, check_formats, publish, write_tables
from ..outputs.figures import FIGURE_FORMATS, _pyplot
from ..outputs.layout import DIGITS, layout
from ..outputs.page import PageSection
from ..outputs.summary import CI_KIND, CI_PROB, THRESHOLD
from . import layouts  # noqa: F401  (registers the analysis tables' layouts)
from .figures import plot_robustness, plot_value_of_information, plot_waterfall, plot_whatif

__all__ = ["Outputs", "explain_outputs", "next_outputs", "robustness_outputs", "whatif_outputs", "write_outputs",
           "analytics", "analytics_sections", "write_analytics_report"]


@dataclass
class Outputs:
    """One analysis as files: ``tables`` (file stem -> table), ``figures`` (file stem -> (draw, caption)),
    and the page section's ``title`` and ``text``."""

    key: str
    title: str
    text: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, tuple[Callable, str]] = field(default_factory=dict)


def explain_outputs(explanation) -> Outputs:
    channels = list(explanation.waterfall)
    figures = {f"waterfall-{c}": ((lambda c=c: plot_waterfall(explanation, c)),
                                  f"What moved {c}: prior P(θ > τ), each evidence package's contribution "
                                  "(leave-one-out), the joint effect, the posterior.") for c in channels}
    moved = explanation.packages[explanation.packages["variable"] == "theta"].head(1)
    lead = (f" The largest single move of a channel: {moved['unit'].iloc[0]} on θ of {moved['name'].iloc[0]} "
            f"(P(θ > τ) {moved['shift_p'].iloc[0]:+.3f}, {moved['direction'].iloc[0]})." if len(moved) else "")
    refit = (" Refitted because k-hat was too high: " + ", ".join(explanation.refitted) + "."
             if explanation.refitted else " No leave-out needed a refit.")
    return Outputs("explain", "Which evidence moved each quantity",
                   "Each evidence package (and row) left out in turn, by Pareto-smoothed importance sampling of the "
                   "posterior draws (k-hat checked; refitted where too high): how much it moved each affected quantity "
                   "and its weight of evidence in decibans." + lead + refit,
                   {"explain-packages": explanation.packages, "explain-rows": explanation.rows}, figures)


def next_outputs(table: pd.DataFrame, *, top: int = 5) -> Outputs:
    table.attrs["show_top"] = top
    order = "position" if "position" in table.columns else "rank"
    best = table[table[order] == 1] if len(table) else table
    ties = table.groupby("channel")["rank"].apply(lambda r: int((r == 1).sum())) if "tied" in table.columns else {}
    lead = " Best next observation per channel: " + "; ".join(
        f"{r['channel']}: {r['indicator']} ({r['tier']}{'/' + r['test'] if r['test'] else ''}, {r['kind']}; "
        f"sd of θ −{r['sd_reduction']:.3f}"
        + (f", tied with {ties[r['channel']] - 1} other(s) within Monte Carlo error" if ties.get(r["channel"], 1) > 1
           else "") + ")" for _, r in best.iterrows()) + "." if len(best) else ""
    figures = {"next": ((lambda: plot_value_of_information(table, top=top)),
                        "Per channel, the observations that would most reduce the posterior sd of θ, with the "
                        "probability that the IPCC word changes.")}
    return Outputs("next", "What to observe next (value of information)",
                   "For every catalogue indicator, target and way of observing it: the expected reduction of the "
                   "posterior sd of θ, the expected change of P(θ > τ) and the probability that the IPCC word "
                   "changes, by preposterior analysis on the current draws." + lead, {"next": table}, figures)


def robustness_outputs(robust) -> Outputs:
    verdicts = "; ".join(f"{r['channel']}: {r['verdict']}" for _, r in robust.reviewer.iterrows())
    tables = {"robustness": robust.reviewer, "power-scaling": robust.power_scaling, "tipping-points": robust.tipping}
    if len(robust.prior_sets):
        tables["prior-sets"] = robust.prior_sets
    loops = getattr(robust, "loops", pd.DataFrame())
    moved = ""
    if len(loops):
        tables["propositions-without-loops"] = loops
        top = loops.iloc[int(np.argmax(np.abs(loops["change"].to_numpy())))]
        moved = (f" Without the feedback loops (an assumption the evidence does not inform), {top['proposition']} "
                 f"moves most: {top['p_with_loops']:.2f} → {top['p_without_loops']:.2f}.")
    return Outputs("robustness", "How fragile each conclusion is",
                   "Power-scaling sensitivity to the prior and to the likelihood, tipping points (diagnosticities "
                   "overstated, contrary clues) and, when given, other prior sets. Verdicts: " + verdicts + "."
                   + moved,
                   tables, {"robustness": ((lambda: plot_robustness(robust)),
                                           "Prior against likelihood power-scaling sensitivity of every reported "
                                           "quantity; 0.05 marks an informative prior or likelihood.")})


def whatif_outputs(table: pd.DataFrame) -> Outputs:
    moved = table[table["channel"] != "nqpf"].sort_values("change_mean", ascending=False).head(1)
    lead = (f" Largest move: {moved['scenario'].iloc[0]} raises mean θ of {moved['channel'].iloc[0]} by "
            f"{moved['change_mean'].iloc[0]:+.3f} (P(θ > τ) {moved['p_baseline'].iloc[0]:.2f} → "
            f"{moved['p_scenario'].iloc[0]:.2f})." if len(moved) else "")
    return Outputs("whatif", "What if a constraint eased (policy scenarios)",
                   "Constraint severities set, shifted or removed, every posterior draw recomputed through the "
                   "framework's links without refitting: each channel's θ beside the baseline." + lead,
                   {"whatif": table}, {"whatif": ((lambda: plot_whatif(table)),
                                                  "Each channel's θ under each scenario beside the baseline, and "
                                                  "the change.")})


def _draw_figures(outputs: Sequence[Outputs], folder: Path, *, dpi: int = 200,
                  on_file: Callable[[Path], None] | None = None) -> list[Path]:
    plt = _pyplot()
    written = []
    for out in outputs:
        for stem, (draw, _caption) in out.figures.items():
            fig = draw()
            try:
                title = fig._suptitle.get_text() if fig._suptitle is not None else fig.axes[0].get_title()
                for fmt in FIGURE_FORMATS:
                    written.append(save_figure(fig, Path(folder) / f"{stem}.{fmt}", title=title, dpi=dpi))
                    if on_file is not None:
                        on_file(written[-1])
            finally:
                plt.close(fig)
    return written


def write_outputs(
    outputs: Sequence[Outputs],
    *,
    out: str | Path,
    formats: Sequence[str] = tuple(FORMATS),
    figures: bool = True,
    digits: int = DIGITS,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
    on_file: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Every table of ``outputs`` in each format and (unless ``figures=False``) every figure as PNG and
    PDF, into ``out``; nothing is written unless everything is. Returns the paths."""
    formats = check_formats(formats)
    digits = check_digits(digits)
    staging = staged_folder(Path(out))
    try:
        tables = {name: table for o in outputs for name, table in o.tables.items()}
        written = write_tables(tables, staging, formats=formats, digits=digits, threshold=threshold,
                               ci_kind=ci_kind, ci_prob=ci_prob, on_file=on_file)
        if figures:
            written += _draw_figures(outputs, staging, on_file=on_file)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return publish(staging, Path(out), written)


def analytics(
    result: xr.DataTree,
    study: Study | None = None,
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
    refit: bool = True,
    others: Mapping[str, xr.DataTree] | None = None,
    top: int = 5,
    on_step: Callable[[str], None] | None = None,
) -> list[Outputs]:
    """All four analyses of ``result`` (``whatif`` with the framework's named scenarios, when it has any)."""
    from .base import study_of
    from .fragility import robustness
    from .influence import explain
    from .scenarios import whatif
    from .value import value_of_information

    study = study if study is not None else study_of(result)
    step = on_step or (lambda name: None)
    step("explain")
    found = [explain_outputs(explain(result, study, threshold=threshold, refit=refit))]
    step("next")
    found.append(next_outputs(value_of_information(result, study, threshold=threshold), top=top))
    step("robustness")
    found.append(robustness_outputs(robustness(result, study, threshold=threshold, others=others)))
    if study.framework.scenarios:
        step("whatif")
        found.append(whatif_outputs(whatif(result, study, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)))
    return found


def analytics_sections(outputs: Sequence[Outputs], *, digits: int = DIGITS, threshold: float = THRESHOLD,
                       ci_kind: str = CI_KIND, ci_prob: float = CI_PROB, figures: bool = True) -> list[PageSection]:
    """One page section per analysis: its text, its figures (PNG file names beside the page), its tables."""
    sections = []
    for out in outputs:
        tables = tuple(layout(name, table, digits=digits, ci_kind=ci_kind, ci_prob=ci_prob, threshold=threshold)
                       for name, table in out.tables.items() if name != "explain-rows")
        shown = tuple((f"{stem}.png", caption) for stem, (_, caption) in out.figures.items()) if figures else ()
        sections.append(PageSection(f"analysis-{out.key}", out.title, out.text, tables=tables, figures=shown))
    return sections


def write_analytics_report(result: xr.DataTree, outputs: Sequence[Outputs], *, out: str | Path,
                           formats: Sequence[str] = tuple(FORMATS), figures: bool = True, page: bool = True,
                           threshold: float = THRESHOLD, ci_kind: str = CI_KIND, ci_prob: float = CI_PROB,
                           digits: int = DIGITS, on_file: Callable[[Path], None] | None = None) -> list[Path]:
    """The whole report (:func:`bayescpec.write_report`) with the analyses' tables, figures and sections added."""
    from ..outputs.report import write_report

    return write_report(
        result, out=out, formats=formats, figures=figures, page=page, threshold=threshold, ci_kind=ci_kind,
        ci_prob=ci_prob, digits=digits, on_file=on_file,
        sections=analytics_sections(outputs, digits=digits, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob,
                                    figures=figures),
        extra_tables={name: table for o in outputs for name, table in o.tables.items()},
        extra_figures=lambda folder: _draw_figures(outputs, folder))
