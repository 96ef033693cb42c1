"""CLI commands of the analysis stage: ``explain``, ``next``, ``robustness``, ``whatif`` -- each a pure
function of a saved result and the input files it was fitted on (found from the result, or given),
printed as a table and written as tables (CSV, Markdown, LaTeX, HTML) and figures (PNG, PDF) into
``--out``. Registered on the app by :mod:`bayescpec.cli`.

Before anything is computed or written: the result must be readable, have its per-row log-likelihood
(``explain``, ``next``, ``robustness``), and its input files must still be the ones it was fitted on
(SHA-256); every name (indicator, target, constraint, scenario) must exist ("did you mean") and every
severity be a number. Otherwise: one message, exit code 2, nothing written, no traceback.
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
from .display import num, print_fitting, prob
from .help import default
from .options import (
    CiKindOpt,
    CiProbOpt,
    DigitsOpt,
    FormatOpt,
    JsonOpt,
    QuietOpt,
    SchedulerOpt,
    ThresholdOpt,
    WorkersOpt,
    _at_least,
    check_interval_options,
    fail,
    out_console,
    print_json,
)
from .progress import Reporter

#: the file stem of whatif with --set/--shift/--remove (the named scenarios keep "whatif")
CUSTOM_WHATIF = "whatif-custom"

ResultArg = Annotated[Path, typer.Argument(help="A saved result: the folder `bayescpec run` wrote, or its result.nc.")]
OutOpt = Annotated[Optional[Path], typer.Option(help="Output folder for the tables and figures." + default("RESULT/analysis"))]
FiguresOpt = Annotated[bool, typer.Option("--figures/--no-figures", help="Also draw the figures (PNG and PDF).")]
InFramework = Annotated[Optional[Path], typer.Option(help="Framework TOML." + default("the result's own input file"))]
InPriors = Annotated[Optional[str], typer.Option(metavar="NAME|PATH", help="Prior set." + default("the result's own input file"))]
InEvidence = Annotated[Optional[Path], typer.Option(help="Evidence log (CSV)." + default("the result's own input file"))]
InSources = Annotated[Optional[Path], typer.Option(help="Sources CSV." + default("the result's own input file"))]


def _load(result: Path, command: str, *, pointwise: bool, framework=None, priors=None, evidence=None, sources=None):
    """The saved result and its study (hash-checked); raises BayescpecError with a clear message."""
    from ..analysis.base import require_pointwise, study_of
    from ..workflow.store import load_result

    from ..errors import ResultMismatchError
    from ..workflow.working import stale_note

    fitted = load_result(result)
    if pointwise:
        require_pointwise(fitted, command)
    try:
        return fitted, study_of(fitted, framework=framework, priors=priors, evidence=evidence, sources=sources)
    except ResultMismatchError as exc:  # say what to use instead: a newer vintage, or the command that makes one
        note = stale_note(fitted, result, command=command)
        if note:
            exc.add_note(note)
        raise


def _write(outputs, result: Path, out: Optional[Path], ui: Reporter, *, format, figures, digits, threshold,
           ci_kind="eti", ci_prob=0.9) -> list[Path]:
    from ..analysis.report import write_outputs
    from ..outputs.export import check_formats

    folder = _folder(result, out)
    formats = check_formats(format or ["all"])
    total = sum(len(o.tables) for o in outputs) * len(formats) + (sum(len(o.figures) for o in outputs) * 2
                                                                  if figures else 0)
    with warnings.catch_warnings(), ui.bar(f"Writing {folder}/", total) as advance:
        warnings.simplefilter("ignore", UserWarning)
        return write_outputs(outputs, out=folder, formats=formats, figures=figures, digits=digits, threshold=threshold,
                             ci_kind=ci_kind, ci_prob=ci_prob, on_file=lambda path: advance(path.name))


def _done(paths: list[Path], started: float) -> None:
    if paths:
        out_console.print(f"Wrote {len(paths)} files to {paths[0].parent} in {time.perf_counter() - started:.1f} s.",
                          highlight=False)


def _table(title: str, columns: list[str], rows: list[list[str]], left=(), caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right", overflow="fold")
    for row in rows:
        table.add_row(*[escape(str(v)) for v in row])
    return table


def _folder(result: Path, out: Optional[Path]) -> Path:
    """Where the files go: ``--out``, else RESULT/analysis."""
    return out or (result if result.is_dir() else result.parent) / "analysis"


def _checks(result, out, threshold, ci_kind="eti", ci_prob=0.9, format=None, digits=2):
    from .._fs import check_output_folder
    from ..outputs.export import check_digits, check_formats

    check_interval_options(threshold, ci_kind, ci_prob)
    check_formats(format or ["all"])
    check_digits(digits)
    check_output_folder(_folder(result, out), "--out")


def explain_command(
    result: ResultArg,
    out: OutOpt = None,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="Refit without a package or row whose PSIS k-hat "
                                                                     "is too high (else mark it unreliable).")] = True,
    rows: Annotated[bool, typer.Option("--rows/--packages", help="Print the ledger of evidence rows, or of packages.")] = False,
    top: Annotated[int, typer.Option(help="Lines printed for channels and for constraints (the files have all; at least 1).",
                                     callback=_at_least("--top", 1))] = 10,
    threshold: ThresholdOpt = 0.5, format: FormatOpt = None, digits: DigitsOpt = 2, figures: FiguresOpt = True,
    framework: InFramework = None, priors: InPriors = None, evidence: InEvidence = None, sources: InSources = None,
    workers: WorkersOpt = None, scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False, json: JsonOpt = False,
) -> None:
    """Which evidence moved each quantity: leave-one-package/row-out shifts and weight of evidence."""
    started = time.perf_counter()
    ui = Reporter(quiet or json)
    try:
        _checks(result, out, threshold, format=format, digits=digits)
        fitted, study = _load(result, "explain", pointwise=True, framework=framework, priors=priors,
                              evidence=evidence, sources=sources)
        from ..analysis.influence import explain
        from ..analysis.report import explain_outputs

        with ui.step("Leaving each evidence package and row out (PSIS; refits where k-hat is too high)"):
            found = explain(fitted, study, threshold=threshold, refit=refit,
                            on_refit=lambda unit, k: ui.info(f"  refitting without {unit} (k-hat {k:.2f})"),
                            workers=workers, scheduler=scheduler)
        paths = _write([explain_outputs(found)], result, out, ui, format=format, figures=figures, digits=digits,
                       threshold=threshold)
    except BayescpecError as exc:
        fail(exc)
    table = found.rows if rows else found.packages
    if json:
        print_json({"threshold": threshold, "refitted": found.refitted, "files": [str(p) for p in paths],
                    "packages": found.packages.to_dict("records"), "rows": found.rows.to_dict("records")})
        return
    columns = ["package" if not rows else "row", "quantity", "mean", "shift", "P", "ΔP", "WoE post dB",
               "WoE prior dB", "direction", "method"]
    for variable, what in (("theta", f"channels, P = P(θ > {threshold:g})"), ("severity", "constraints, P = P(severity > 0)")):
        part = table[table["variable"] == variable]
        shown = [[r["unit"], r["quantity"], num(r["mean_with"]), num(r["shift_mean"], signed=True), prob(r["p_with"]),
                  num(r["shift_p"], signed=True), f"{r['woe_posterior_db']:+.1f}", f"{r['woe_prior_db']:+.1f}",
                  r["direction"], r["method"]] for _, r in part.head(top).iterrows()]
        if not shown:
            continue
        title = (f"What moved the {what}: leave-one-{'row' if rows else 'package'}-out, the {len(shown)} largest "
                 f"of {len(part)}")
        print_fitting(_table(title, columns, shown, ("package", "row", "quantity", "direction", "method")),
                      _table(title, [columns[i] for i in (0, 1, 5, 6, 8)],
                             [[r[i] for i in (0, 1, 5, 6, 8)] for r in shown], ("package", "row", "quantity", "direction")))
    out_console.print("Refitted (k-hat too high): " + (", ".join(found.refitted) if found.refitted else "none") + ".",
                      highlight=False)
    _done(paths, started)


def next_columns(threshold: float) -> list[str]:
    """The columns of the table `next` prints (README.md shows the same table)."""
    return ["channel", "#", "indicator (target stage)", "tier / test", "kind", "sd(θ) now → expected",
            "sd reduction ± MCSE", f"E|ΔP(θ > {threshold:g})|", "P(word changes)"]


def next_row(r, rank: str | None = None) -> list[str]:
    """One design of the value-of-information table as `next` prints it (``rank``: its label, ``2=`` in a tie)."""
    from ..analysis.layouts import fmt_mcse

    stage = r.get("stage") or ""
    near = " ≈" if r.get("word_change_near_boundary") else ""
    return [r["channel"], rank or str(r["rank"]),
            r["indicator"] + (f" ({stage})" if stage and stage != "conversion" else ""),
            r["tier"] + (f" / {r['test'].replace('_', ' ')}" if r["test"] else ""),
            r["kind"] + (f" of {int(r['n'])}" if r["kind"] == "count" else ""),
            f"{num(r['sd_now'])} → {num(r['expected_sd'])}",
            f"{r['sd_reduction']:.3f} ± {fmt_mcse(r['mcse_sd_reduction'])}", num(r["expected_abs_dp"]),
            prob(r["p_word_change"]) + near]


def next_command(
    result: ResultArg,
    out: OutOpt = None,
    indicator: Annotated[Optional[list[str]], typer.Option("--indicator", help="Only this catalogue indicator; repeat for several." + default("every indicator"))] = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Only designs about this channel or constraint; repeat for several." + default("every target"))] = None,
    count_n: Annotated[int, typer.Option("--count-n", help="Units of a count observation (k of n).")] = 10,
    outcomes: Annotated[int, typer.Option(help="Quadrature nodes over a measure's predictive (deterministic; at least 10).")] = 200,
    reliability: Annotated[float, typer.Option(help="Reliability of the new observation, in (0, 1].")] = 1.0,
    top: Annotated[int, typer.Option(help="Designs per channel printed and shown in the md/tex/html tables (the CSV has all; "
                                          "at least 1).", callback=_at_least("--top", 1))] = 3,
    threshold: ThresholdOpt = 0.5, format: FormatOpt = None, digits: DigitsOpt = 2, figures: FiguresOpt = True,
    framework: InFramework = None, priors: InPriors = None, evidence: InEvidence = None, sources: InSources = None,
    quiet: QuietOpt = False, json: JsonOpt = False,
) -> None:
    """What to observe next: the value of information of every catalogue indicator, ranked per channel."""
    started = time.perf_counter()
    ui = Reporter(quiet or json)
    try:
        _checks(result, out, threshold, format=format, digits=digits)
        fitted, study = _load(result, "next", pointwise=True, framework=framework, priors=priors, evidence=evidence,
                              sources=sources)
        from ..analysis.report import next_outputs
        from ..analysis.value import designs, value_of_information

        count = len(designs(study, indicators=indicator, targets=target, count_n=count_n))
        with ui.step(f"Preposterior analysis of {count} designs"):
            table = value_of_information(fitted, study, threshold=threshold, indicators=indicator, targets=target,
                                         count_n=count_n, outcomes=outcomes, reliability=reliability)
        paths = _write([next_outputs(table, top=top)], result, out, ui, format=format, figures=figures,
                       digits=digits, threshold=threshold)
    except BayescpecError as exc:
        fail(exc)
    if json:
        print_json({"threshold": threshold, "files": [str(p) for p in paths], "rows": table.to_dict("records")})
        return
    from ..analysis.layouts import TIE_MARK, rank_labels

    best = table[table["position"] <= top] if len(table) else table
    shown = [next_row(r, label) for label, (_, r) in zip(rank_labels(best), best.iterrows())]
    columns = next_columns(threshold)
    title = f"What to observe next: top {top} per channel by expected reduction of sd(θ) (τ = {threshold:g})"
    caption = (f"{TIE_MARK}: tied (within 2 MCSE of the difference from the design above); ≈: P(word changes) "
               "near a boundary of the IPCC scale")
    print_fitting(_table(title, columns, shown, tuple(columns[i] for i in (0, 2, 3, 4)), caption=caption),
                  _table(title, [columns[i] for i in (0, 1, 2, 6, 8)], [[r[i] for i in (0, 1, 2, 6, 8)] for r in shown],
                         tuple(columns[i] for i in (0, 2)), caption=caption))
    _done(paths, started)


def robustness_command(
    result: ResultArg,
    out: OutOpt = None,
    with_: Annotated[Optional[list[Path]], typer.Option("--with", help="A result of the same evidence under another prior set; repeat for several." + default("none"))] = None,
    max_clues: Annotated[int, typer.Option("--max-clues", help="Most contrary clues tried per tier (at least 1).",
                                           callback=_at_least("--max-clues", 1))] = 20,
    threshold: ThresholdOpt = 0.5, format: FormatOpt = None, digits: DigitsOpt = 2, figures: FiguresOpt = True,
    framework: InFramework = None, priors: InPriors = None, evidence: InEvidence = None, sources: InSources = None,
    quiet: QuietOpt = False, json: JsonOpt = False,
) -> None:
    """How fragile each channel's conclusion is: power-scaling, tipping points, prior sets; one verdict each."""
    started = time.perf_counter()
    ui = Reporter(quiet or json)
    try:
        _checks(result, out, threshold, format=format, digits=digits)
        fitted, study = _load(result, "robustness", pointwise=True, framework=framework, priors=priors,
                              evidence=evidence, sources=sources)
        from ..analysis.fragility import robustness
        from ..analysis.report import robustness_outputs
        from ..workflow.store import load_result

        others = {}
        for path in with_ or ():
            other = load_result(path)
            others[str(other.attrs.get("prior_set", path))] = other
        with ui.step("Power-scaling, tipping points and prior sets"):
            found = robustness(fitted, study, threshold=threshold, others=others, max_clues=max_clues)
        paths = _write([robustness_outputs(found)], result, out, ui, format=format, figures=figures, digits=digits,
                       threshold=threshold)
    except BayescpecError as exc:
        fail(exc)
    if json:
        print_json({"threshold": threshold, "files": [str(p) for p in paths],
                    "reviewer": found.reviewer.to_dict("records"), "tipping": found.tipping.to_dict("records"),
                    "power_scaling": found.power_scaling.to_dict("records"),
                    "prior_sets": found.prior_sets.to_dict("records"),
                    "propositions_without_loops": found.loops.to_dict("records")})
        return
    shown = [[r["channel"], prob(r["p_converting"]), r["likelihood"], num(r["prior_sensitivity"]),
              num(r["likelihood_sensitivity"]), r["clues_down"], r["clues_up"], r["verdict"], r["why"]]
             for _, r in found.reviewer.iterrows()]
    columns = ["channel", f"P(θ > {threshold:g})", "IPCC word", "prior sens.", "lik. sens.", "negative clues",
               "positive clues", "verdict", "why"]
    print_fitting(_table("Robustness of each channel's conclusion", columns, shown,
                         ("channel", "IPCC word", "negative clues", "positive clues", "verdict", "why")),
                  _table("Robustness of each channel's conclusion", [columns[i] for i in (0, 1, 2, 7)],
                         [[r[i] for i in (0, 1, 2, 7)] for r in shown], ("channel", "IPCC word", "verdict")))
    if len(found.loops):
        rows = [[r["proposition"], f"{prob(r['p_with_loops'])} ± {r['mcse_with']:.3f}",
                 f"{prob(r['p_without_loops'])} ± {r['mcse_without']:.3f}", num(r["change"]),
                 f"{r['likelihood_with']} → {r['likelihood_without']}" if r["word_changes"] else r["likelihood_with"],
                 f"{r['method']} (k-hat {r['khat']:.2f})"] for _, r in found.loops.iterrows()]
        title = "Propositions with and without the feedback loops (their loadings are not learned from the evidence)"
        print_fitting(_table(title, ["proposition", "with loops", "without", "change", "IPCC word", "method"], rows,
                             ("proposition", "IPCC word", "method")),
                      _table(title, ["proposition", "with loops", "without"], [r[:3] for r in rows], ("proposition",)))
    _done(paths, started)


def whatif_command(
    result: ResultArg,
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="CONSTRAINT=VALUE", help="Set a constraint's severity (0 = typical); repeat for several." + default("none"))] = None,
    shift: Annotated[Optional[list[str]], typer.Option(metavar="CONSTRAINT=DELTA", help="Shift a constraint's severity (negative: less binding); repeat for several." + default("none"))] = None,
    remove: Annotated[Optional[list[str]], typer.Option(metavar="CONSTRAINT", help="Remove a constraint (it no longer pulls on any stage); repeat for several." + default("none"))] = None,
    scenario: Annotated[Optional[list[str]], typer.Option(help="A named scenario of the framework; repeat for several." + default("every named scenario, unless --set, --shift or --remove is given"))] = None,
    out: OutOpt = None,
    threshold: ThresholdOpt = 0.5, ci_prob: CiProbOpt = 0.90, ci_kind: CiKindOpt = "eti",
    format: FormatOpt = None, digits: DigitsOpt = 2, figures: FiguresOpt = True,
    framework: InFramework = None, priors: InPriors = None, evidence: InEvidence = None, sources: InSources = None,
    quiet: QuietOpt = False, json: JsonOpt = False,
) -> None:
    """Policy scenarios from the posterior draws, no refit: each channel's θ with constraints set, shifted or removed."""
    started = time.perf_counter()
    ui = Reporter(quiet or json)
    try:
        _checks(result, out, threshold, ci_kind, ci_prob, format=format, digits=digits)
        fitted, study = _load(result, "whatif", pointwise=False, framework=framework, priors=priors,
                              evidence=evidence, sources=sources)
        from ..analysis.layouts import scenario_words
        from ..analysis.report import whatif_outputs
        from ..analysis.scenarios import whatif

        table = whatif(fitted, study, set=set_, shift=shift, remove=remove, scenarios=scenario, threshold=threshold,
                       ci_kind=ci_kind, ci_prob=ci_prob)
        outputs = whatif_outputs(table)
        custom = bool(set_ or shift or remove)
        if custom:  # your settings beside, not over, the framework's named scenarios (whatif.*)
            outputs.tables = {CUSTOM_WHATIF: t for t in outputs.tables.values()}
            outputs.figures = {CUSTOM_WHATIF: f for f in outputs.figures.values()}
        paths = _write([outputs], result, out, ui, format=format, figures=figures,
                       digits=digits, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    except BayescpecError as exc:
        fail(exc)
    if json:
        print_json({"threshold": threshold, "interval": table.attrs["interval"], "files": [str(p) for p in paths],
                    "scenarios": table.attrs["scenarios"], "rows": table.to_dict("records")})
        return
    label = table.attrs["interval"]
    for sid, rows in table.groupby("scenario", sort=False):
        shown = [[r["channel"], num(r["baseline_mean"]), num(r["scenario_mean"]),
                  f"[{num(r[f'{label} lower'])}, {num(r[f'{label} upper'])}]",
                  f"{num(r['change_mean'], signed=True)} ± {r['mcse_change']:.3f}", prob(r["p_baseline"]),
                  f"{prob(r['p_scenario'])} ± {r['mcse_p']:.3f}",
                  word] for (_, r), word in zip(rows.iterrows(), scenario_words(rows))]
        columns = ["channel", "baseline θ", "scenario θ", label, "change ± MCSE", "P before", "P after ± MCSE",
                   "IPCC word"]
        label_text, settings = rows["scenario_label"].iloc[0], rows["settings"].iloc[0]
        title = f"{sid}: {label_text}" + (f" — {settings}" if settings != label_text else "")
        print_fitting(_table(title, columns, shown, ("channel", "IPCC word")),
                      _table(title, [columns[i] for i in (0, 4, 6, 7)], [[r[i] for i in (0, 4, 6, 7)] for r in shown],
                             ("channel", "IPCC word")))
    _done(paths, started)
    if custom and paths:
        out_console.print(f"Your settings are in {CUSTOM_WHATIF}.*; the framework's named scenarios (`bayescpec whatif "
                          f"{result}`) stay in whatif.* beside them.", highlight=False)
