"""The ``run`` and ``validate`` commands.

Every input error ends with one message listing each problem (file, line, column, what was found
and what was allowed), exit code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BayescpecError, InputError
from .options import (
    AsOfOpt,
    ChainsOpt,
    CiKindOpt,
    CiProbOpt,
    DrawsOpt,
    EvidenceOpt,
    FrameworkOpt,
    PriorsOpt,
    SamplerOpt,
    SeedOpt,
    SourcesOpt,
    ThresholdOpt,
    TuneOpt,
    check_interval_options,
    check_sampler,
    err_console,
    fail,
    out_console,
)


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


def print_weakest_stages(stages) -> None:
    """Per channel: where the chain most likely breaks first, and P(completes)."""
    if stages["stage"].nunique() < 2:
        return
    table = Table(title="Where each channel's conversion chain most likely breaks (posterior)")
    for col in ("channel", "weakest stage", "P(breaks first there)", "reach of the stage before", "P(completes)"):
        table.add_column(col, justify="left" if col in ("channel", "weakest stage") else "right")
    completes = stages.attrs.get("completes", {})
    for channel, rows in stages.groupby("channel", sort=False):
        rows = rows.reset_index(drop=True)
        i = int(rows.index[rows["weakest"]][0])
        before = rows["reach_mean"].iloc[i - 1] if i > 0 else 1.0
        table.add_row(channel, f"{rows['stage'].iloc[i]} ({rows['stage_label'].iloc[i]})",
                      _fmt(rows["break_first"].iloc[i]), _fmt(before), _fmt(completes.get(channel, float("nan"))))
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
        from ..inputs.study import load_study

        study = load_study(framework=framework, priors=priors, evidence=evidence, sources=sources, as_of=as_of)
    except BayescpecError as exc:
        fail(exc)
    from .._fs import publish_directory
    from ..engine.sampling import ConvergenceWarning, fit
    from ..outputs.export import write_table
    from ..outputs.chain import stage_table
    from ..outputs.summary import channel_table, constraint_table, proposition_table
    from ..workflow.store import RESULT_FILE, save_result

    err_console.print(f"bayescpec: {len(study.evidence)} evidence rows as of {study.as_of} "
                      f"({study.excluded_after_as_of} later rows left out), prior set '{study.prior_set}', "
                      f"{chains} chains x {draws} draws, seed {seed}")
    prior_only = prior_only_note(study)
    if prior_only:
        err_console.print(f"[bold yellow]note:[/] {escape(prior_only)}", highlight=False, soft_wrap=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = fit(study, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler)
    tables = {  # computed once: printed here, written below
        "channels": channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob),
        "propositions": proposition_table(result, threshold=threshold),
        "constraints": constraint_table(result, ci_kind=ci_kind, ci_prob=ci_prob),
        "stages": stage_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob),
    }
    print_tables(tables["channels"], tables["propositions"], tables["constraints"])
    print_weakest_stages(tables["stages"])
    attrs = result.attrs
    status = "[green]passed[/]" if attrs["converged"] else f"[bold red]FAILED: {attrs['convergence_failures']}[/]"
    out_console.print(f"Convergence (R-hat ≤ 1.01, bulk ESS ≥ 400, no divergences): {status} — "
                      f"max R-hat {attrs['max_rhat']:.3f}, min bulk ESS {attrs['min_ess_bulk']:.0f}, "
                      f"{attrs['divergences']} divergences")
    if attrs.get("divergence_retry"):
        out_console.print(f"Note: {attrs['divergence_retry']}.")
    if prior_only:
        out_console.print(f"[bold yellow]Note:[/] {escape(prior_only)}")
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
    from ..workflow.vintages import save_vintage, vintage_name

    vintages = out / "vintages"  # the same folder `bayescpec update` and `history` use by default
    existing = vintages / vintage_name(result)
    already = existing.exists()
    vintage = existing if already else save_vintage(result, root=vintages)
    out_console.print(f"Wrote {out}/{RESULT_FILE}, channels.csv, propositions.csv, constraints.csv, stages.csv "
                      f"in {time.perf_counter() - started:.1f} s; vintage {vintage.name}"
                      f"{' (already saved)' if already else ''}")


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
    head = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    names = {name.strip().strip('"') for name in re.split(r"[,;\t]", head)}
    return "sources" if "key" in names and "id" not in names else "evidence"


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
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files to check [default: the shipped framework, every prior set, every evidence file].")] = None,
    framework: Annotated[Optional[Path], typer.Option(help="Framework to check the other files against.")] = None,
) -> None:
    """Check framework, prior-set, evidence and sources files; report every problem."""
    from ..errors import Problem
    from ..inputs.evidence import read_evidence, read_sources, validate_evidence
    from ..inputs.spec import load_framework, load_priors
    from ..inputs.study import shipped_path

    if not paths:
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
                    if src_path.is_file():
                        try:
                            sources_cache[src_path] = read_sources(src_path)
                        except InputError as exc:  # reported once, as the sources file's own problems
                            if not any(p.samefile(src_path) for p in kinds if p.exists()):
                                problems += exc.problems
                rows = validate_evidence(read_evidence(path), fw, sources=sources_cache[src_path], file=str(path))
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
