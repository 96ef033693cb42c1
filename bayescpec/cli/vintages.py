"""CLI commands that read the vintage store: ``history`` and ``diff``.

Both print a wide table when the terminal has room and a compact layout otherwise (every vintage
or change readable at 80 columns, nothing cut to "202…"), or one JSON document with ``--json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.columns import Columns
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from ..errors import BayescpecError
from .display import change as changed, fits, interval, num, print_fitting, prob
from .help import default
from .options import (
    CiKindOpt,
    CiProbOpt,
    JsonOpt,
    ThresholdOpt,
    VintagesOpt,
    check_interval_options,
    check_range,
    fail,
    out_console,
    print_json,
)

VINTAGES = Path("results") / "vintages"


def _made(r) -> str:
    method = str(r["method"])
    if method == "psis":
        return "reweighted"
    if method == "unreadable":
        return "–"
    return f"{method} {r.get('draws')}×{r.get('chains')}"


def _checks(r) -> str:
    if r["method"] == "unreadable":
        return "[bold red]UNREADABLE[/]"
    return "[green]passed[/]" if r["converged"] else "[bold red]FAILED[/]"


def _unreadable_lines(table) -> None:
    for r in table.to_dict("records"):
        if r["method"] == "unreadable":
            out_console.print(f"[red]{escape(r['vintage'])} {escape(r['convergence_failures'])}[/]", highlight=False)


def _check_vintages(vintages: Path) -> None:
    """--vintages must be a folder; one given explicitly must exist (the default may not exist yet:
    then there are no vintages yet)."""
    from ..errors import InputError

    if vintages.exists() and not vintages.is_dir():
        raise InputError(f"--vintages: {vintages} is a file; allowed: the folder of saved vintages "
                         f"(by default {VINTAGES})")
    if not vintages.exists() and vintages != VINTAGES:
        raise InputError(f"--vintages: folder {vintages} not found; allowed: the folder of saved vintages "
                         f"(by default {VINTAGES}, made by `bayescpec run` and `bayescpec update`)")


def history(
    vintages: VintagesOpt = VINTAGES,
    threshold: ThresholdOpt = 0.5,
    json: JsonOpt = False,
) -> None:
    """List the saved vintages: headline P(converting) per channel and whether each passed its checks."""
    from ..workflow.vintages import history as vintage_history

    try:
        check_range("--threshold", threshold, 0, 1)
        _check_vintages(vintages)
        table = vintage_history(vintages, threshold=threshold)
    except BayescpecError as exc:
        fail(exc)
    if json:
        print_json({"vintages": str(vintages), "threshold": threshold, "rows": table.to_dict("records")})
        return
    if table.empty:
        out_console.print(f"No vintages under {vintages} yet (`bayescpec run` or `bayescpec update NEW.csv` make them).")
        return
    channels = [c for c in table.columns if c.startswith("p_")]
    title = f"Vintages under {vintages} — P(θ > {threshold:g}) per channel"
    wide = Table(title=title)
    for col in ["vintage", "evidence", "prior set", "rows", "made", "checks"] + [c[2:] for c in channels]:
        wide.add_column(col, justify="right" if col == "rows" or f"p_{col}" in channels else "left", no_wrap=True)
    for r in table.to_dict("records"):
        wide.add_row(r["vintage"], r["evidence_sha256"], str(r["prior_set"]), str(r["rows"]), _made(r), _checks(r),
                     *[prob(r[c]) for c in channels])
    if fits(wide):
        out_console.print(wide)
        _unreadable_lines(table)
        return
    out_console.print(f"[bold]{escape(title)}[/]")
    for i, r in enumerate(table.to_dict("records"), start=1):
        out_console.print(f"{i}. [bold]{escape(r['vintage'])}[/]  {escape(str(r['prior_set']))} · {r['rows']} rows · "
                          f"{_made(r)} · checks {_checks(r)}", highlight=False)
        if not r["converged"] and r.get("convergence_failures"):
            out_console.print(f"   [red]{escape(r['convergence_failures'])}[/]", highlight=False)
        out_console.print(f"   evidence {r['evidence_sha256']}, as of {r['as_of']}", highlight=False)
        out_console.print(Padding(Columns([f"{c[2:]} {prob(r[c])}" for c in channels], padding=(0, 3)), (0, 0, 0, 3)),
                          highlight=False)


def _diff_layouts(d, threshold: float) -> tuple[Table, Table]:
    label = d.table.attrs["interval"]
    title = f"{d.a} → {d.b}: P(θ > {threshold:g}) per channel / proposition probability, posterior mean, {label}"
    wide = Table(title=title)
    for col in ("", "name", "mean A → B", f"{label} A", f"{label} B", "P A → B", "change", "IPCC term A → B"):
        wide.add_column(col, justify="left" if col in ("", "name", "IPCC term A → B") else "right", no_wrap=True)
    compact = Table(title=f"{d.a} → {d.b}: P(θ > {threshold:g}) per channel / proposition probability; "
                          f"{label} of θ in B")
    for col in ("", "name", "P A → B", "change", f"{label} B", "IPCC term A → B"):
        compact.add_column(col, justify="left" if col in ("", "name", "IPCC term A → B") else "right",
                           overflow="fold", no_wrap=col in ("P A → B", "change", f"{label} B"))
    for r in d.table.to_dict("records"):
        channel = r["kind"] == "channel"
        word = (f"[bold]{r['likelihood_a']} → {r['likelihood_b']}[/]" if r["word_changed"] else
                f"{r['likelihood_a']} ≈ {r['likelihood_b']} (within Monte Carlo noise)" if r.get("word_within_noise")
                else r["likelihood_a"])
        star = "*" if r["word_changed"] else ""
        p = f"{prob(r['p_a'])} → {prob(r['p_b'])}"
        mcses = [float(m) for m in (r["mcse_a"], r["mcse_b"]) if m is not None and math.isfinite(float(m))]
        change = changed(r["p_a"], r["p_b"], mcse=math.hypot(*mcses) if mcses else None)
        wide.add_row(star, r["name"], f"{num(r['mean_a'])} → {num(r['mean_b'])}" if channel else "",
                     interval(r["lower_a"], r["upper_a"]) if channel else "",
                     interval(r["lower_b"], r["upper_b"]) if channel else "", p, change, word)
        compact.add_row(star, r["name"], p, change, interval(r["lower_b"], r["upper_b"]) if channel else "", word)
    return wide, compact


def diff(
    a: Annotated[str, typer.Argument(help="Vintage A: name, unique prefix, evidence-hash prefix, 'previous', 'latest' or a path.")],
    b: Annotated[str, typer.Argument(help="Vintage B (as A).")],
    vintages: VintagesOpt = VINTAGES,
    threshold: ThresholdOpt = 0.5,
    ci_prob: CiProbOpt = 0.90,
    ci_kind: CiKindOpt = "eti",
    csv: Annotated[Optional[Path], typer.Option(help="Also write the change table to this CSV file."
                                                     + default("none: no CSV file"))] = None,
    json: JsonOpt = False,
) -> None:
    """What changed from vintage A to vintage B: P(converting), means, intervals, IPCC terms, rows."""
    from ..workflow.vintages import diff as vintage_diff

    try:
        check_interval_options(threshold, ci_kind, ci_prob)
        if csv is not None:
            from .._fs import check_output_file

            check_output_file(csv, "--csv")
        d = vintage_diff(a, b, root=vintages, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    except BayescpecError as exc:
        fail(exc)
    if csv is not None:
        from .._fs import atomic_write_bytes

        try:  # whole or not at all; a place that went away since the check above is still one message
            atomic_write_bytes(csv, d.table.to_csv(index=False).encode("utf-8"))
        except OSError as exc:
            fail(BayescpecError(f"--csv: cannot write {csv}: {exc.strerror or exc}"))
    if json:
        print_json({"a": d.a, "b": d.b, "interval": d.table.attrs["interval"], "threshold": threshold,
                    "changes": d.table.to_dict("records"), "rows_added": d.added.to_dict("records"),
                    "rows_removed": d.removed.to_dict("records"), "rows_changed": d.changed.to_dict("records"),
                    **({"csv": str(csv)} if csv is not None else {})})
        return
    wide, compact = _diff_layouts(d, threshold)
    print_fitting(wide, compact)
    notes = []
    if d.table["word_changed"].any():  # the legend only when a row is starred
        notes.append("* the IPCC likelihood term changed")
    if d.table["p_change"].notna().any():
        notes.append("change: P(B) − P(A) as printed; ≈ 0: within 2 Monte Carlo standard errors of none")
    if not fits(wide):
        notes.append(f"a wider terminal, --json or --csv also show the means and the {d.table.attrs['interval']} of A")
    for note in notes:
        out_console.print(note, highlight=False)
    for title, frame in (("in B, not in A", d.added), ("in A, not in B", d.removed), ("changed content", d.changed)):
        if frame.empty:
            out_console.print(f"Evidence rows {title}: none")
            continue
        layouts = []
        for cols in (("id", "observed", "target", "tier", "kind", "source"), ("id", "observed", "target", "tier")):
            rows = Table(title=f"Evidence rows {title} ({len(frame)})")
            cols = [c for c in cols if c in frame.columns]
            for col in cols:
                rows.add_column(col, overflow="fold")
            for r in frame.to_dict("records"):
                rows.add_row(*[escape(str(r[c])) for c in cols])
            layouts.append(rows)
        print_fitting(*layouts)
    if csv is not None:
        out_console.print(f"Wrote {csv}")
