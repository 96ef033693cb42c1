"""CLI command of model criticism: ``check`` -- prior and posterior predictive checks, prior-data conflict,
overdispersion of counts, Pareto k̂ and LOO-PIT of a saved result against its evidence (no refit); printed
as a verdict and tables, written as tables (CSV, Markdown, LaTeX, HTML) and a figure (PNG, PDF) into
``--out``. Registered on the app by :mod:`bayescpec.cli`.

Exit code 0 whenever the checks ran, whether or not they flag anything; 2 on bad input (an unreadable
result, input files changed since the fit, a bad option), with one message and nothing written.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import BayescpecError, InputError
from .display import print_fitting
from .help import default
from .options import DigitsOpt, FormatOpt, JsonOpt, QuietOpt, check_range, fail, out_console, print_json
from .analysis import InEvidence, InFramework, InPriors, InSources, ResultArg
from .progress import Reporter

__all__ = ["check_command"]

CheckOutOpt = Annotated[Optional[Path], typer.Option(help="Output folder for the tables and figure." + default("RESULT/check"))]
FiguresOpt = Annotated[bool, typer.Option("--figures/--no-figures", help="Also draw the figure (PNG and PDF).")]


def _p(value: float) -> str:
    from ..analysis.criticism_report import fmt_p

    return fmt_p(value)


def _table(title: str, columns: list[str], rows: list[list[str]], left=()):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right", overflow="fold")
    for row in rows:
        table.add_row(*[escape(str(v)) for v in row])
    return table


def _prepare(result: Path, folder: Path, *, format, digits, framework, priors, evidence, sources):
    """Every option checked, the result loaded and its study found (hash-checked); raises BayescpecError."""
    from .._fs import check_output_folder
    from ..analysis.base import study_of
    from ..outputs.export import check_digits, check_formats
    from ..workflow.store import load_result

    formats = check_formats(format or ["all"])
    check_digits(digits)
    check_output_folder(folder, "--out")
    fitted = load_result(result)
    return fitted, study_of(fitted, framework=framework, priors=priors, evidence=evidence, sources=sources), formats


def check_command(
    result: ResultArg,
    out: CheckOutOpt = None,
    flag_level: Annotated[float, typer.Option("--flag-level", help="Flag a predictive p-value below this or above "
                                                                  "1 minus it; in (0, 0.5).")] = 0.01,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the replicates and the LOO-PIT's randomisation."
                                                     + default("the result's seed"))] = None,
    all_rows: Annotated[bool, typer.Option("--all-rows/--flagged-rows", help="Print every evidence row, or only "
                                                                             "the flagged ones (the files have all).")] = False,
    format: FormatOpt = None, digits: DigitsOpt = 2, figures: FiguresOpt = True,
    framework: InFramework = None, priors: InPriors = None, evidence: InEvidence = None, sources: InSources = None,
    quiet: QuietOpt = False, json: JsonOpt = False,
) -> None:
    """Model criticism: predictive checks, prior-data conflict, overdispersion, Pareto k-hat, LOO-PIT."""
    started = time.perf_counter()
    ui = Reporter(quiet or json)
    folder = out or (result if result.is_dir() else result.parent) / "check"
    try:
        check_range("--flag-level", flag_level, 0, 0.5)
        if seed is not None and not 0 <= seed <= 4_294_967_295:
            raise InputError(f"--seed: must be in 0–4 294 967 295; found {seed}")
        fitted, study, formats = _prepare(result, folder, format=format, digits=digits, framework=framework,
                                          priors=priors, evidence=evidence, sources=sources)
        from ..analysis.criticism import check
        from ..analysis.criticism_report import check_outputs
        from ..analysis.report import write_outputs

        with ui.step("Predictive checks, overdispersion, PSIS-LOO"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            found = check(fitted, study, flag_level=flag_level, seed=seed)
        outputs = check_outputs(found)
        total = len(outputs.tables) * len(formats) + (2 * len(outputs.figures) if figures else 0)
        with warnings.catch_warnings(), ui.bar(f"Writing {folder}/", total) as advance:
            warnings.simplefilter("ignore", UserWarning)
            paths = write_outputs([outputs], out=folder, formats=formats, figures=figures, digits=digits,
                                  on_file=lambda path: advance(path.name))
    except BayescpecError as exc:
        fail(exc)
    if json:
        print_json({"verdict": found.verdict, "passed": found.passed, "flags": found.flags,
                    "flag_level": flag_level, "khat_threshold": found.attrs.get("khat_threshold"),
                    "loo_pit_uniformity_p": found.attrs.get("loo_pit_uniformity_p"), "seed": found.attrs.get("seed"),
                    "files": [str(p) for p in paths], "summary": found.summary.to_dict("records"),
                    "rows": found.rows.to_dict("records"), "groups": found.groups.to_dict("records"),
                    "dispersion": found.dispersion.to_dict("records")})
        return
    _print(found, all_rows=all_rows)
    out_console.print(f"Wrote {len(paths)} files to {folder} in {time.perf_counter() - started:.1f} s.",
                      highlight=False)


def _print(found, *, all_rows: bool) -> None:
    summary = [[r["check"], str(r["checked"]), str(r["flagged"]), r["items"]] for _, r in found.summary.iterrows()]
    print_fitting(_table("Model check", ["check", "checked", "flagged", "which"], summary, ("check", "which")),
                  _table("Model check", ["check", "flagged", "which"], [[r[0], r[2], r[3]] for r in summary],
                         ("check", "which")))
    rows = found.rows
    if len(rows) and "p_posterior" in rows.columns:
        flagged = rows["prior_flag"] | rows["posterior_flag"] | rows.get("khat_flag", False)
        shown = rows if all_rows else rows[flagged]
        if len(shown):
            cells = [[r["evidence"], r["tier"], r["kind"], r["observed"], _p(r["p_prior"]), _p(r["p_posterior"]),
                      f"{r['loo_pit']:.2f}" if "loo_pit" in rows.columns else "–",
                      f"{r['pareto_k']:.2f}" if "pareto_k" in rows.columns else "–"] for _, r in shown.iterrows()]
            title = "Evidence rows" + ("" if all_rows else " flagged")
            columns = ["row", "tier", "kind", "observed", "prior p", "posterior p", "LOO-PIT", "k̂"]
            print_fitting(_table(title, columns, cells, ("row", "tier", "kind", "observed")),
                          _table(title, [columns[i] for i in (0, 4, 5, 7)], [[c[i] for i in (0, 4, 5, 7)] for c in cells],
                                 ("row",)))
    if len(found.groups):
        cells = [[r["tier"], r["kind"], str(r["rows"]), r["statistic"], f"{r['observed']:g}",
                  f"{r['posterior_mean']:.2f} [{round(r['posterior_lower'], 2):g}, {round(r['posterior_upper'], 2):g}]",
                  _p(r["p_prior"]), _p(r["p_posterior"])] for _, r in found.groups.iterrows()]
        columns = ["tier", "kind", "rows", "statistic", "observed", "posterior predictive [90%]", "prior p",
                   "posterior p"]
        print_fitting(_table("Per tier and kind", columns, cells, ("tier", "kind", "statistic")),
                      _table("Per tier and kind", [columns[i] for i in (0, 1, 4, 6, 7)],
                             [[c[i] for i in (0, 1, 4, 6, 7)] for c in cells], ("tier", "kind")))
    if len(found.dispersion):
        cells = [[r["indicator"], r["target"] + (f"/{r['unit']}" if r["unit"] else ""), r["counts"],
                  f"{r['dispersion_index']:.2f}", f"{r['posterior_index_median']:.2f}", _p(r["p_posterior"])]
                 for _, r in found.dispersion.iterrows()]
        columns = ["indicator", "target", "counts", "dispersion index", "replicated (median)", "posterior p"]
        print_fitting(_table("Overdispersion of counts", columns, cells, ("indicator", "target", "counts")),
                      _table("Overdispersion of counts", [columns[i] for i in (0, 3, 5)],
                             [[c[i] for i in (0, 3, 5)] for c in cells], ("indicator",)))
    from rich.markup import escape

    out_console.print(("[green]" if found.passed else "[bold yellow]") + "Verdict:[/] " + escape(found.verdict),
                      highlight=False)
