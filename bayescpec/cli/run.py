"""The ``run`` and ``validate`` commands.

Every input error ends with one message listing each problem (file, line, column, what was found
and what was allowed), exit code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BayescpecError, InputError
from .display import change, divergence_note, interval, num, print_banners, print_fitting, prob
from .help import default
from .options import (
    AsOfOpt,
    ChainsOpt,
    CiKindOpt,
    CiProbOpt,
    DrawsOpt,
    EvidenceOpt,
    FrameworkOpt,
    JsonOpt,
    PriorsOpt,
    QuietOpt,
    SamplerOpt,
    SeedOpt,
    SourcesOpt,
    ThresholdOpt,
    TuneOpt,
    announce_study,
    check_interval_options,
    err_console,
    fail,
    out_console,
    print_json,
)
from .progress import Reporter


def _table(title: str, columns: list[str], rows: list[list[str]], left: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for i, col in enumerate(columns):  # a name (channel, proposition, constraint) is never broken: it is the key
        table.add_column(col, justify="left" if col in left else "right", overflow="fold", no_wrap=i == 0,
                         min_width=max([len(str(r[0])) for r in rows] + [len(col)]) if i == 0 else None)
    for row in rows:
        table.add_row(*row)
    return table


def print_tables(channels, props, cons) -> None:
    """Print the channel, proposition and constraint tables (as made by bayescpec.summary); each in
    full when the terminal has room, else without the columns a narrow terminal cannot hold."""
    label, threshold = channels.attrs["interval"], channels.attrs["threshold"]
    tier_cols = [c for c in channels.columns if c.startswith("rows_")]
    title = f"Conversion probability θ per channel — {label}, P(converting) = P(θ > {threshold:g})"
    rows = [[r["channel"], num(r["prior_mean"]), num(r["posterior_mean"]), interval(r[f"{label} lower"], r[f"{label} upper"]),
             with_mcse(r["p_converting"], r.get("p_converting_mcse")), word(r), *[str(r[c]) for c in tier_cols]]
            for r in channels.to_dict("records")]
    columns = ["channel", "prior mean", "posterior mean", label, f"P(θ > {threshold:g})", "IPCC likelihood"] + \
        [c.removeprefix("rows_") + " rows" for c in tier_cols]
    print_fitting(_table(title, columns, rows, ("channel", "IPCC likelihood")),
                  _table(title, columns[:6], [r[:6] for r in rows], ("channel", "IPCC likelihood")))
    rows = [[_proposition_name(r), prob(r["prior_probability"]),
             with_mcse(r["posterior_probability"], r.get("posterior_probability_mcse")),
             change(r["prior_probability"], r["posterior_probability"], mcse=r.get("change_mcse")), word(r)]
            for r in props.to_dict("records")]
    out_console.print(_table(f"Propositions (τ = {threshold:g}; the queries are in propositions.csv)",
                             ["proposition", "prior P", "posterior P", "change", "IPCC likelihood"], rows,
                             ("proposition", "IPCC likelihood")))
    if props.get("part_of") is not None and props["part_of"].astype(str).ne("").any():
        out_console.print("└ rows are parts of the proposition above them.", highlight=False)
    note = "±: the Monte Carlo standard error (MCSE) of the posterior probability."
    if any(bool(r.get("change_within_noise")) for r in props.to_dict("records")):
        note += " ≈ 0: a change within 2 MCSE of none (Monte Carlo noise)."
    if any(bool(r.get("likelihood_near_boundary")) for t in (channels, props) for r in t.to_dict("records")):
        note += (" ≈: the probability lies within 2 MCSE of a boundary of the IPCC scale, so the word could be "
                 "the neighbouring one.")
    out_console.print(note, highlight=False)
    if len(cons):
        title = f"Constraint severity (logit scale, 0 = typical) — {label}"
        columns = ["constraint", "binds", "prior mean", "posterior mean", label, "P(severity > 0)", "context rows"]
        rows = [[r["constraint"], r["binds"], num(r["prior_mean"]), num(r["posterior_mean"]),
                 interval(r[f"{label} lower"], r[f"{label} upper"]), prob(r["p_binding"]), str(r["rows_context"])]
                for r in cons.to_dict("records")]
        compact = [0, 3, 4, 5]
        print_fitting(_table(title, columns, rows, ("constraint", "binds")),
                      _table(title, [columns[i] for i in compact], [[r[i] for i in compact] for r in rows],
                             ("constraint",)))


def _proposition_name(row: dict) -> str:
    """A proposition's id, or a part's name under its proposition; a conditional one with P(condition)."""
    name = escape(str(row["proposition"]))
    if row.get("part_of"):
        name = "  └ " + name.split("/", 1)[1]
    condition = row.get("condition_probability")
    if condition is not None and math.isfinite(float(condition)):
        name += f" (given: P = {prob(condition)}, {int(row['condition_draws'])} draws)"
    return name


def with_mcse(p, mcse) -> str:
    """A probability with its Monte Carlo standard error: 0.35 ± 0.008."""
    if mcse is None or not math.isfinite(float(mcse)):
        return prob(p)
    return f"{prob(p)} ± {float(mcse):.3f}"


def word(row: dict) -> str:
    """The IPCC word, marked ≈ when its probability is within 2 MCSE of a scale boundary."""
    return f"{row['likelihood']} ≈" if row.get("likelihood_near_boundary") else str(row["likelihood"])


def tables_json(tables: dict) -> dict:
    """The run's tables as JSON-ready records, each with its interval and threshold."""
    out = {}
    for name, table in tables.items():
        entry = {key: table.attrs[key] for key in ("interval", "threshold") if key in table.attrs}
        entry["rows"] = table.to_dict("records")
        out[name] = entry
    return out


def convergence_json(attrs) -> dict:
    return {key: attrs.get(key) for key in ("converged", "convergence_failures", "max_rhat", "min_ess_bulk",
                                            "min_ess_tail", "divergences", "treedepth_share", "min_bfmi",
                                            "divergence_retry")}


def print_weakest_stages(stages) -> None:
    """Per channel: where the chain most likely breaks first (named only when that stage stands out,
    :func:`bayescpec.outputs.chain.weakest_stage`), and P(completes)."""
    if stages["stage"].nunique() < 2:
        return
    table = Table(title="Where each channel's conversion chain most likely breaks (posterior)")
    for col in ("channel", "weakest stage", "share of draws", "P(breaks first there)", "reach of the stage before",
                "P(completes)"):
        table.add_column(col, justify="left" if col in ("channel", "weakest stage") else "right",
                         no_wrap=col == "channel")
    completes = stages.attrs.get("completes", {})
    for channel, rows in stages.groupby("channel", sort=False):
        rows = rows.reset_index(drop=True)
        i = int(rows.index[rows["weakest"]][0])
        before = rows["reach_mean"].iloc[i - 1] if i > 0 else 1.0
        if bool(rows["stands_out"].iloc[i]):
            name = f"{rows['stage'].iloc[i]} ({rows['stage_label'].iloc[i]})"
        else:  # the largest mean break probability, but not in enough draws to name it
            name = f"none stands out (most likely {rows['stage'].iloc[i]})"
        table.add_row(channel, name, f"{rows['p_weakest'].iloc[i]:.0%}", prob(rows["break_first"].iloc[i]),
                      prob(before), prob(completes.get(channel, float("nan"))))
    out_console.print(table)


def prior_only_note(study) -> str:
    """What to say when a study has no evidence rows to fit (else "")."""
    if (study.evidence["kind"] != "gap").any():
        return ""
    if study.excluded_after_as_of:
        return (f"no evidence was observed by {study.as_of} ({study.excluded_after_as_of} later rows left out), "
                "so this is a prior-only result: the posterior is the prior")
    if len(study.evidence):  # data gaps record that no public data exist: nothing to fit
        return (f"the evidence log {study.files['evidence']} has only data gaps ({len(study.evidence)} rows of kind "
                "'gap') and no observations, so the posterior is the prior: this is a prior-only result")
    return (f"the evidence log {study.files['evidence']} has a header and no rows, so the posterior is the prior: "
            "this is a prior-only result")


def run(
    priors: PriorsOpt = "baseline",
    evidence: EvidenceOpt = None,
    framework: FrameworkOpt = None,
    sources: SourcesOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder for the saved result and CSV tables."
                                                     + default("results"))] = None,
    as_of: AsOfOpt = None,
    seed: SeedOpt = 20260527,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    sampler: SamplerOpt = "auto",
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Fit the study and print per-channel conversion, propositions and constraints; write OUT/."""
    started = time.perf_counter()
    ui = Reporter(quiet)
    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        from .._fs import check_output_folder
        from ..inputs.study import load_study

        announce_study(ui, framework=framework, evidence=evidence, out=out, writes="results/")
        out = out if out is not None else Path("results")
        check_output_folder(out, "--out")
        study = load_study(framework=framework, priors=priors, evidence=evidence, sources=sources, as_of=as_of)
    except BayescpecError as exc:
        fail(exc)
    from ..engine.sampling import ConvergenceWarning, fit
    from ..workflow.store import RESULT_FILE
    from ..workflow.vintages import find_planned_fit, load_vintage, save_vintage
    from ..workflow.working import quick_tables, write_working_result

    vintages = out / "vintages"  # the same folder `bayescpec update` and `history` use by default
    gaps = int((study.evidence["kind"] == "gap").sum())
    ui.info(f"bayescpec: {len(study.evidence) - gaps} evidence rows"
            + (f" and {gaps} recorded data gaps" if gaps else "")
            + f" as of {study.as_of} ({study.excluded_after_as_of} later rows left out), prior set "
            f"'{study.prior_set}', {chains} chains x {draws} draws, seed {seed}", markup=False)
    prior_only = prior_only_note(study)
    if prior_only:
        ui.warn(prior_only)
    settings = dict(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler)
    existing = result = None
    try:  # the same fit saved before (same rows, files and settings): reused, not sampled again
        existing = find_planned_fit(study, root=vintages, **settings)
        result = load_vintage(existing) if existing is not None else None
    except BayescpecError:  # a vintage that cannot be read is no reason not to fit
        existing = None
    caught = []
    if result is None:
        with warnings.catch_warnings(record=True) as caught, \
                ui.step(f"Sampling prior and posterior: {chains} chains × {draws} draws ({sampler})"):
            warnings.simplefilter("always", ConvergenceWarning)
            result = fit(study, **settings)
    else:
        ui.info(f"bayescpec: the same fit (same evidence rows, input files and settings) is saved as vintage "
                f"{existing.name}: reused, nothing sampled", markup=False)
        import json as json_text

        # the same draws, as of this run: its files (the vintage may come from a copy elsewhere) and date
        result.attrs.update(as_of=study.as_of.isoformat(), excluded_after_as_of=study.excluded_after_as_of,
                            input_files=json_text.dumps(study.files), input_sha256=json_text.dumps(study.hashes))
    tables = quick_tables(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)  # printed and written
    attrs = result.attrs
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    with ui.step(f"Writing {out}/"):
        if existing is not None:  # the reused draws with this run's attrs: serialised once, here
            write_working_result(result, out, tables=tables)
            vintage = existing
        else:  # serialised once, into the vintage (which also names itself in the attrs); its bytes copied
            made = [folder for folder in (out, vintages) if not folder.exists()]
            vintage = save_vintage(result, root=vintages)
            try:
                write_working_result(result, out, tables=tables, saved=vintage / RESULT_FILE)
            except BaseException:  # nothing of this run is left behind: its vintage, and folders it made
                shutil.rmtree(vintage, ignore_errors=True)
                for folder in reversed(made):
                    with contextlib.suppress(OSError):
                        folder.rmdir()  # only if empty
                raise
    from ..analysis.criticism import quick_check
    from ..analysis.criticism_report import flag_line

    with ui.step("Model check (predictive p-values, prior-data conflict, PSIS-LOO)"):
        checked = quick_check(result, study)
    seconds = time.perf_counter() - started
    if json:
        print_json({"tables": tables_json(tables), "convergence": convergence_json(attrs),
                    "check": None if checked is None else {"passed": checked.passed, "verdict": checked.verdict,
                                                           "flags": checked.flags},
                    "prior_only": int(attrs.get("evidence_rows", 0)) == 0,
                    "provenance": tables["channels"].attrs["provenance"],
                    "study": study.files,
                    "files": {"result": str(out / RESULT_FILE),
                              **{name: str(out / f"{name}.csv") for name in tables}},
                    "vintage": {"name": vintage.name, "path": str(vintage), "reused": existing is not None},
                    "seconds": round(seconds, 1)})
        return
    print_banners(attrs)
    print_tables(tables["channels"], tables["propositions"], tables["constraints"])
    print_weakest_stages(tables["stages"])
    status = "[green]passed[/]" if attrs["converged"] else f"[bold red]FAILED: {attrs['convergence_failures']}[/]"
    from ..engine.diagnostics import gate_sentence
    from ..outputs.layout import gate_figures

    out_console.print(f"Convergence ({gate_sentence()}): {status} — {gate_figures(attrs, zero_treedepth=True)}", highlight=False)
    if divergence_note(attrs):
        out_console.print(divergence_note(attrs), highlight=False)
    if checked is not None and flag_line(checked, out):
        out_console.print(f"[bold yellow]{escape(flag_line(checked, out))}[/]", highlight=False)
    print_banners(attrs, prior_only=False)  # a failure once more, below the tables
    reused = (f" (the same fit -- same evidence rows, input files and settings -- was saved there on "
              f"{str(attrs.get('created', '') or existing.name)[:10]}; reused: nothing was sampled or stored)"
              if existing is not None else "")
    out_console.print(f"Wrote {out}/{RESULT_FILE}, channels.csv, propositions.csv, constraints.csv, stages.csv "
                      f"in {seconds:.1f} s; vintage {vintage.name}{reused}", highlight=False)


def _classify(path: Path) -> str:
    """framework / priors / sources / evidence / unknown, from the suffix and the first bytes (a
    byte-order mark, as Excel's "CSV UTF-8" writes, does not count)."""
    if path.suffix not in (".toml", ".csv") or not path.is_file():
        return "unknown"
    try:
        with path.open("rb") as handle:
            text = handle.read(1 << 16).decode("utf-8-sig", errors="replace")
    except OSError:
        return path.suffix.lstrip(".")  # reading it again reports why it cannot be read
    if path.suffix == ".toml":
        return "framework" if any(line.strip() == "[framework]" for line in text.splitlines()) else "priors"
    if path.name == "sources.csv":  # by its name first: a sources file missing its key column is still one
        return "sources"
    head = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    names = {name.strip().strip('"') for name in re.split(r"[,;\t]", head)}
    return "sources" if ("key" in names or "reference" in names) and "id" not in names else "evidence"


def _expand(paths: list[Path]) -> list[Path]:
    """Each folder given stands for the .toml and .csv files in it."""
    out = []
    for path in paths:
        if path.is_dir():
            inside = sorted(path.glob("*.toml")) + sorted(path.glob("*.csv"))
            out += [p for p in inside if p.is_file()] or [path]
        else:
            out.append(path)
    return out


def validate(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files to check." + default("the framework, every prior set and every evidence file in priors/ and evidence/ here, else the shipped ones"))] = None,
    framework: Annotated[Optional[Path], typer.Option(help="Framework to check the other files against." + default("the framework among PATHS, else priors/framework.toml"))] = None,
) -> None:
    """Check framework, prior-set, evidence and sources files; report every problem."""
    from ..errors import Problem
    from ..inputs.evidence import read_evidence, read_sources, validate_evidence
    from ..inputs.spec import load_framework, load_priors
    from ..inputs.study import shipped_path

    study_folders = not paths  # the study's own files: its log must have its sources.csv
    if not paths:
        try:
            announce_study(Reporter(), framework=framework)
        except BayescpecError as exc:
            fail(exc)
        root_priors, root_evidence = shipped_path("priors"), shipped_path("evidence")
        paths = sorted(root_priors.glob("*.toml")) + sorted(root_evidence.glob("*.csv"))
    kinds = {}
    problems: list[Problem] = []
    for path in _expand(paths):
        if not path.exists():
            problems.append(Problem(str(path), None, None, "file not found"))
        elif path.is_dir():
            problems.append(Problem(str(path), None, None, "is a folder with no .toml or .csv files"))
        else:
            kinds[path] = _classify(path)
    framework_path = framework or next((p for p, k in kinds.items() if k == "framework"),
                                       shipped_path("priors", "framework.toml"))
    try:
        fw = load_framework(framework_path)
    except InputError as exc:
        fail(InputError(problems + exc.problems))
    checked, notes = [], []
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
                    sources_cache[src_path] = None
                    if not src_path.is_file() and study_folders:  # what `run` says: a log needs its sources
                        problems.append(Problem(str(src_path), None, None,
                                                "file not found; an evidence log needs a sources file (key,reference,"
                                                f"year,url) beside it ({path} has none), or give one to `run` with "
                                                "--sources"))
                    elif not src_path.is_file():  # a batch for `update` is checked against the log's sources then
                        notes.append(f"no sources.csv beside {path}: its source keys were not checked (`update` "
                                     "checks them against the log's sources.csv; `run` needs one beside the log)")
                    else:
                        try:
                            sources_cache[src_path] = read_sources(src_path)
                        except InputError as exc:  # reported once, as the sources file's own problems
                            if not any(p.samefile(src_path) for p in kinds if p.exists()):
                                problems += exc.problems
                rows = validate_evidence(read_evidence(path), fw, sources=sources_cache[src_path], file=str(path),
                                         sources_file=str(src_path))
                if rows.empty:
                    kind = "evidence, no rows"
                    notes.append(f"{path} has a header and no evidence rows: `bayescpec run` on it gives a "
                                 "prior-only result (the posterior is the prior)")
                elif (rows["kind"] == "gap").all():
                    kind = "evidence, only data gaps"
                    notes.append(f"{path} has only data gaps ({len(rows)} rows of kind 'gap') and no observations: "
                                 "`bayescpec run` on it gives a prior-only result (the posterior is the prior)")
            elif kind == "unknown":
                problems.append(Problem(str(path), None, None, "not a .toml or .csv file"))
                continue
            checked.append(f"{path} ({kind})")
        except InputError as exc:
            problems += exc.problems
    if problems:
        fail(InputError(problems))
    for note in notes:
        err_console.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    out_console.print("[green]ok:[/] " + ", ".join(checked + [f"{framework_path} (framework)"] if framework_path not in kinds else checked))


def init(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="A new or empty folder for the study.")],
    name: Annotated[Optional[str], typer.Option(help="The corridor's name, written into the framework and README."
                                                     + default("the folder's name"))] = None,
) -> None:
    """Start a study of another corridor: a framework, a prior set, an empty evidence log, sources, README."""
    from ..inputs.scaffold import init_study

    try:
        files = init_study(folder, name=name)
    except BayescpecError as exc:
        fail(exc)
    out_console.print(f"Wrote a new study into {folder}/:", highlight=False)
    for path in files:
        out_console.print(f"  {path.relative_to(folder)}", highlight=False)
    out_console.print(f"Next: cd {folder} (every command uses the study of the folder it runs in); replace the "
                      "examples in priors/framework.toml and priors/baseline.toml; then `bayescpec validate` and "
                      "`bayescpec run` (a prior-only result until evidence/evidence.csv has rows). "
                      f"{folder}/README.md shows how to add a source and evidence rows.", highlight=False)
