"""Writing tables to files: every report table in every format, atomically, and the quick CSVs of a run.

:func:`export_tables` writes every report table (:data:`~bayescpec.outputs.tables.TABLES`) as CSV,
Markdown, LaTeX and HTML into a staging folder and moves the files into place only when all of them
were written. :func:`write_table` / :func:`read_table` are the plain CSV-with-provenance pair that
``bayescpec run`` writes next to its result.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .._fs import publish_directory, staged_folder
from ..errors import InputError
from . import layout_chain  # noqa: F401  (registers the chain tables' layouts)
from .layout import DIGITS, layout
from .render import render_csv, render_html, render_latex, render_markdown
from .summary import CI_KIND, CI_PROB, THRESHOLD, check_options
from .tables import report_tables

__all__ = ["FORMATS", "check_formats", "check_digits", "render_table", "write_tables", "export_tables",
           "write_table", "read_table", "publish"]

#: export formats and the file suffix of each
FORMATS = {"csv": ".csv", "md": ".md", "latex": ".tex", "html": ".html"}


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """Validate export formats ("all" means every format); keep their order, drop repeats."""
    formats = tuple(formats)
    if not formats:
        raise InputError(f"--format: give at least one of {', '.join(FORMATS)} (or all)")
    if "all" in formats:
        return tuple(FORMATS)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"--format: unknown format {', '.join(map(repr, bad))}; allowed: {', '.join(FORMATS)}, all")
    return tuple(dict.fromkeys(formats))


def check_digits(digits: int) -> int:
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or not 0 <= digits <= 6:
        raise InputError(f"--digits: must be an integer from 0 to 6; found {digits!r}")
    return int(digits)


def _render(table: pd.DataFrame, name: str, format: str, *, digits: int, threshold: float, ci_kind: str,
            ci_prob: float) -> str:
    laid_out = layout(name, table, digits=digits, ci_kind=ci_kind, ci_prob=ci_prob, threshold=threshold)
    if format == "csv":
        return render_csv(table, laid_out, digits=digits)
    if format == "md":
        return render_markdown(laid_out)
    if format == "latex":
        return render_latex(laid_out)
    return render_html(laid_out)


def render_table(
    table: pd.DataFrame,
    *,
    name: str,
    format: str,
    digits: int = DIGITS,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> str:
    """One table (from :func:`~bayescpec.outputs.tables.report_tables`) as text in ``format``
    (csv, md, latex or html)."""
    if format not in FORMATS:
        raise InputError(f"--format: unknown format {format!r}; allowed: {', '.join(FORMATS)}")
    return _render(table, name, format, digits=digits, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)


def write_tables(
    tables: Mapping[str, pd.DataFrame],
    folder: Path,
    *,
    formats: Sequence[str],
    digits: int,
    threshold: float,
    ci_kind: str,
    ci_prob: float,
    on_file=None,
) -> list[Path]:
    """Write each table in each format into ``folder`` (which must exist); return the paths.
    ``on_file(path)`` is called after each file (progress)."""
    written = []
    for name, table in tables.items():
        laid_out = layout(name, table, digits=digits, ci_kind=ci_kind, ci_prob=ci_prob, threshold=threshold)
        for fmt in formats:
            path = Path(folder) / f"{name}{FORMATS[fmt]}"
            if fmt == "csv":
                text = render_csv(table, laid_out, digits=digits)
            else:
                text = {"md": render_markdown, "latex": render_latex, "html": render_html}[fmt](laid_out)
            path.write_text(text, encoding="utf-8")
            written.append(path)
            if on_file is not None:
                on_file(path)
    return written


def publish(staging: Path, out: Path, written: Sequence[Path]) -> list[Path]:
    """Move the staged files into ``out``; return their final paths."""
    publish_directory(staging, Path(out))
    return [Path(out) / p.name for p in written]


def export_tables(
    result: xr.DataTree,
    *,
    out: str | Path,
    formats: Sequence[str] = tuple(FORMATS),
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
    digits: int = DIGITS,
) -> list[Path]:
    """Write every report table (:data:`~bayescpec.outputs.tables.TABLES`) of ``result`` in each of
    ``formats`` into ``out``; return the paths. Nothing is written unless all of them are (staged,
    then moved)."""
    formats = check_formats(formats)
    digits = check_digits(digits)
    try:
        check_options(ci_kind, ci_prob, threshold)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    tables = report_tables(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    staging = staged_folder(Path(out))
    try:
        written = write_tables(tables, staging, formats=formats, digits=digits, threshold=threshold,
                               ci_kind=ci_kind, ci_prob=ci_prob)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return publish(staging, Path(out), written)


# --------------------------------------------------------------------------------------------
# The quick CSVs of `bayescpec run`
# --------------------------------------------------------------------------------------------

def _provenance_lines(table: pd.DataFrame) -> list[str]:
    lines = [f"# {table.attrs['title']}"] if "title" in table.attrs else []
    if "interval" in table.attrs:
        lines.append(f"# interval: {table.attrs['interval']}")
    if "threshold" in table.attrs:
        lines.append(f"# threshold tau: {table.attrs['threshold']}")
    prov = table.attrs.get("provenance", {})
    if str(prov.get("evidence_rows", "")) == "0":
        from .layout import PRIOR_ONLY_NOTE

        lines.append(f"# {PRIOR_ONLY_NOTE}")
    for key, value in prov.items():
        lines.append(f"# {key}: {value}")
    return lines


def write_table(table: pd.DataFrame, path: str | Path, *, digits: int = 4) -> Path:
    """CSV with the provenance as leading ``#`` lines; read it back with :func:`read_table`."""
    path = Path(path)
    body = table.round(digits).to_csv(index=False)
    text = "\n".join(_provenance_lines(table) + [f"# numbers rounded to {digits} decimals"]) + "\n" + body
    path.write_text(text, encoding="utf-8")
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV written by :func:`write_table`: the leading ``#`` provenance lines are skipped
    (only those: a ``#`` inside a cell is data), and returned in ``attrs["provenance_lines"]``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    table = pd.read_csv(path, skiprows=header)
    table.attrs["provenance_lines"] = [line.lstrip("# ") for line in lines[:header]]
    return table
