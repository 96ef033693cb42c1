"""A whole report from a saved result, in one folder: every table in every format, every figure as PNG
and PDF, and ``index.html`` (:mod:`bayescpec.outputs.page`), written atomically (staged, then moved
in only when every file was written). This is what ``bayescpec report`` does.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from .._fs import staged_folder
from ..errors import InputError
from .export import FORMATS, check_digits, check_formats, publish, write_tables
from .layout import DIGITS, layout
from .page import PAGE_FILE, PageSection, default_sections, report_page
from .summary import CI_KIND, CI_PROB, THRESHOLD, check_options
from .tables import TABLES, report_tables

__all__ = ["write_report", "report_file_count", "FIGURE_CAPTIONS"]

#: what each figure shows, as its caption on the page
FIGURE_CAPTIONS = {
    "forest": "Conversion probability θ per channel: the posterior interval (dark) over the prior interval (grey), "
              "the threshold τ dashed, P(θ > τ) at the right.",
    "prior-posterior": "Prior (dashed) and posterior (solid) density of θ per channel.",
    "evidence-ladder": "Evidence rows per channel and tier (potential, mechanism, outcome), and context rows per "
                       "constraint.",
    "constraint-effects": "Severity of each constraint (left) and how much it lowers each linked channel's "
                          "conversion probability θ (right).",
}


def report_file_count(*, formats: Sequence[str] = tuple(FORMATS), figures: bool = True, page: bool = True,
                      extra_tables: int = 0, extra_figures: int = 0) -> int:
    """How many files :func:`write_report` writes with these options (for a progress bar); ``extra_tables``
    and ``extra_figures`` count what a caller adds (each table in every format, each figure as PNG and PDF)."""
    from .figures import FIGURE_FORMATS, FIGURES

    return (len(TABLES) + extra_tables) * len(check_formats(formats)) \
        + ((len(FIGURES) + extra_figures) * len(FIGURE_FORMATS) if figures else 0) + (1 if page else 0)


def write_report(
    result: xr.DataTree,
    *,
    out: str | Path,
    formats: Sequence[str] = tuple(FORMATS),
    figures: bool = True,
    page: bool = True,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
    digits: int = DIGITS,
    sections: Sequence[PageSection] = (),
    extra_tables: Mapping[str, pd.DataFrame] | None = None,
    extra_figures: Callable[[Path], Sequence[Path]] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write every report table (:data:`~bayescpec.outputs.tables.TABLES`) in each of ``formats``,
    every figure (PNG and PDF, unless ``figures=False``) and the page ``index.html`` (unless
    ``page=False``; ``sections`` are added to it after the standard ones) into ``out``. A caller adds
    ``extra_tables`` (file stem -> table whose layout is registered in ``LAYOUTS``; written in every
    format) and ``extra_figures`` (called with the folder being written, returns the files it wrote
    there; only when ``figures``). Nothing is written unless everything is. Returns the paths;
    ``on_file(path)`` is called after each file."""
    formats = check_formats(formats)
    digits = check_digits(digits)
    try:
        check_options(ci_kind, ci_prob, threshold)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out = Path(out)
    tables = report_tables(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    staging = staged_folder(out)
    try:
        written = write_tables({**tables, **dict(extra_tables or {})}, staging, formats=formats, digits=digits,
                               threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob, on_file=on_file)
        drawn = []
        if figures:
            from .figures import FIGURE_FORMATS, save_figures

            sub = staging / "figures-tmp"
            for path in save_figures(result, out=sub, formats=FIGURE_FORMATS, threshold=threshold,
                                     ci_kind=ci_kind, ci_prob=ci_prob, on_file=on_file):
                path.replace(staging / path.name)
                written.append(staging / path.name)
                if path.suffix == ".png":
                    drawn.append((path.name, FIGURE_CAPTIONS.get(path.stem, path.stem)))
            sub.rmdir()
            if extra_figures is not None:
                for path in extra_figures(staging):
                    written.append(path)
                    if on_file is not None:
                        on_file(out / path.name)
        if page:
            layouts = {name: layout(name, table, digits=digits, ci_kind=ci_kind, ci_prob=ci_prob, threshold=threshold)
                       for name, table in tables.items()}
            parts = default_sections(result, tables=layouts, figures=drawn, threshold=threshold, ci_kind=ci_kind,
                                     ci_prob=ci_prob) + list(sections)
            path = staging / PAGE_FILE
            path.write_text(report_page(result, sections=parts, threshold=threshold), encoding="utf-8")
            written.append(path)
            if on_file is not None:
                on_file(out / PAGE_FILE)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return publish(staging, out, written)
