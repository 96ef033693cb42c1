"""The ``priors`` command group: ``priors show`` -- what a prior set says, before anything is fitted.

It prints each prior with its 5%, 50% and 95% quantiles (and the statement it was solved from, when
the prior set gave it in the analyst's words), and writes the table (CSV with ``#`` provenance lines)
and a figure of every prior's density (PNG and PDF with the provenance caption) into ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BayescpecError
from .display import fits
from .help import Command, Group
from .options import FrameworkOpt, JsonOpt, QuietOpt, fail, out_console, print_json

__all__ = ["priors_app"]

priors_app = typer.Typer(cls=Group, no_args_is_help=True, add_completion=False,
                         context_settings={"help_option_names": ["-h", "--help"]},
                         help="Look at a prior set: what each prior says, before anything is fitted.")

OUT = Path("results") / "priors"


def _load(prior_set: str, framework: Path | None):
    """The prior set (a name beside the framework, or a path), its path and the framework's path."""
    from dataclasses import replace

    from ..errors import InputError
    from ..inputs.spec import load_framework, load_priors
    from ..inputs.study import input_path_problems, resolve_priors, shipped_path

    framework_path = framework if framework is not None else shipped_path("priors", "framework.toml")
    path = resolve_priors(prior_set, framework_path)
    problems = input_path_problems(framework_path=framework_path, priors=prior_set, priors_path=path,
                                   evidence_path=None, sources_path=None)
    if problems:  # named as this command names it: the PRIORSET argument, not run's --priors
        raise InputError([replace(p, message=p.message.replace("--priors:", "PRIORSET:", 1)) for p in problems])
    return load_priors(path, load_framework(framework_path)), path, framework_path


def _shown(file: Path) -> str:
    """A path relative to the current folder when it lies inside it, else its name: no absolute local
    paths in a figure or table meant to be sent."""
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return file.name


def _provenance(priors, path: Path, framework_path: Path) -> dict[str, str]:
    from .. import __version__
    from ..inputs.files import sha256_file
    from ..inputs.statements import preliz

    stated = priors.statements()
    provenance = {"prior set": priors.name, "file": f"{_shown(path)} (SHA-256 {sha256_file(path)[:12]})",
            "framework": f"{_shown(framework_path)} (SHA-256 {sha256_file(framework_path)[:12]})",
            "statements solved by": f"PreliZ {preliz().__version__} maxent" if stated else "",
            "bayescpec": __version__}
    return {key: value for key, value in provenance.items() if value}


def _write(table, fig, provenance: dict[str, str], out: Path, stem: str) -> list[Path]:
    """The table (CSV) and the figure (PNG, PDF) into ``out``: staged, moved in together."""
    from .._fs import publish_directory, staged_folder
    from ..outputs.captions import save_figure
    from ..outputs.export import write_table

    staging = staged_folder(out)
    try:
        table = table.copy()
        table.attrs = {"provenance": provenance}
        write_table(table, staging / f"{stem}.csv", digits=6)
        for suffix in ("png", "pdf"):
            save_figure(fig, staging / f"{stem}.{suffix}", title=f"Priors of prior set {stem}")
        names = sorted(p.name for p in staging.iterdir())
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish_directory(staging, out)
    return [out / name for name in names]


def _q(value: float) -> str:
    """A quantile to 2 decimals; one that would show as 0.00 or 1.00 without being 0 or 1 gets the digits
    that tell it apart (0.0031, 0.9968)."""
    if value == 0 or (abs(value) >= 0.005 and not 0.995 <= value < 1):
        return f"{value:.2f}"
    if abs(value) < 0.005:
        return f"{value:.2g}"
    digits = 3
    while round(value, digits) >= 1 and digits < 12:
        digits += 1
    return f"{value:.{digits}f}"


@priors_app.command("show", cls=Command)
def show(
    prior_set: Annotated[str, typer.Argument(metavar="PRIORSET", help="Prior set: a name beside the framework (baseline, skeptical, optimistic, flat) or a path.")] = "baseline",
    framework: FrameworkOpt = None,
    out: Annotated[Path, typer.Option(help="Folder for the table (CSV) and the figure (PNG, PDF) of the priors.")] = OUT,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Print each prior's 5%, 50% and 95% quantiles and the statement it came from; write a table and a figure."""
    import matplotlib.pyplot as plt

    from .._fs import check_output_folder
    from ..outputs.priors import plot_priors, prior_caption, prior_table

    try:
        check_output_folder(out)
        priors, path, framework_path = _load(prior_set, framework)
        table = prior_table(priors)
        provenance = _provenance(priors, path, framework_path)
        fig = plot_priors(priors, caption=prior_caption(provenance))
        try:
            written = _write(table, fig, provenance, out, f"priors-{priors.name}")
        finally:
            plt.close(fig)
    except BayescpecError as exc:
        fail(exc)
    if json:
        print_json({"prior_set": priors.name, "file": str(path), "framework": str(framework_path),
                    "provenance": provenance, "priors": table.to_dict("records"),
                    "files": [str(p) for p in written]})
        return
    title = f"Prior set {priors.name} ({_shown(path)}): 5%, 50% and 95% quantiles of each prior"
    wide = Table(title=escape(title))
    for column in ("prior", "distribution", "5%", "50%", "95%", "stated as"):
        wide.add_column(column, justify="right" if "%" in column and column != "stated as" else "left")
    for r in table.to_dict("records"):
        wide.add_row(escape(r["key"]), escape(r["distribution"]), _q(r["q05"]), _q(r["q50"]), _q(r["q95"]),
                     escape(r["statement"]))
    if fits(wide):
        out_console.print(wide)
    else:  # a narrow terminal: each prior on two lines, nothing cut or folded inside a name
        out_console.print(f"[bold]{escape(title)}[/]", highlight=False)
        for r in table.to_dict("records"):
            said = f"; stated as {r['statement']}" if r["statement"] else ""
            out_console.print(f"{escape(r['key'])}: {escape(r['distribution'] + said)}", highlight=False)
            out_console.print(f"    5% {_q(r['q05'])} · 50% {_q(r['q50'])} · 95% {_q(r['q95'])}", highlight=False)
    stated = int((table["statement"] != "").sum())
    out_console.print(f"{len(table)} priors; {stated} stated as an interval with its mass, each solved as the "
                      "maximum-entropy distribution of its family (PreliZ)." if stated else
                      f"{len(table)} priors, each given by its parameters (none stated as an interval).",
                      highlight=False)
    if not quiet:
        out_console.print(f"Wrote {escape(', '.join(p.name for p in written))} to {escape(str(out))}.",
                          highlight=False)
