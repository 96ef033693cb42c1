"""Renderers: a :class:`~bayescpec.outputs.layout.Layout` as Markdown, LaTeX (booktabs; planned in
:mod:`bayescpec.outputs.latex`), HTML (great_tables) or CSV with its provenance as leading ``#`` lines.
They know nothing about which table they render.
"""

from __future__ import annotations

import html
import re

import pandas as pd

from .latex import latex_escape, render_latex, unbroken_columns
from .layout import Layout, round_frame

__all__ = ["latex_escape", "render_markdown", "render_latex", "render_html", "render_html_fragment", "render_csv",
           "BANNER_STYLE"]

#: the style of the failed-fit banner in HTML (the table pages and index.html)
BANNER_STYLE = ("border:2px solid #b00020;background:#fdecea;color:#7a0015;padding:10px 14px;margin:10px auto;"
                "max-width:60em;font-family:sans-serif;font-weight:bold")


def _md_cell(text: str, *, code: bool = False) -> str:
    text = str(text).replace("\n", " ").replace("|", "\\|")
    if code:
        return f"`{text}`" if text else ""
    return text


def _md_header(layout: Layout, column: str) -> str:
    """A column's Markdown header. Markdown tables have one header row, so a spanner (TeX and HTML draw it
    above its columns) is written into each of its columns' headers -- "P(hypothesis): without" -- unless
    the header already begins with the spanner's first word ("Posterior sd" under "Posterior θ")."""
    header = layout.headers[column]
    span = next((s for s, members in layout.spanners if column in members), None)
    if span is None or header.lower().startswith(span.split()[0].lower()):
        return header
    return f"{span}: {header}"


def render_markdown(layout: Layout) -> str:
    cols = list(layout.cells.columns)
    lines = [f"> **WARNING: {_md_cell(layout.banner)}**", ""] if layout.banner else []
    lines += [f"**Table: {layout.title}**", ""]
    head = [_md_cell(_md_header(layout, c)) for c in cols]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---:" if layout.align[c] == "r" else ":---" for c in cols) + "|")
    for row in layout.cells.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v, code=c in layout.code) for c, v in zip(cols, row)) + " |")
    lines.append("")
    notes = [_md_cell(n) for n in layout.notes]
    notes[0] = "*Notes.* " + notes[0]
    lines += [n + "  " for n in notes[:-1]] + notes[-1:]  # two trailing spaces: a line break
    return "\n".join(lines) + "\n"


#: a number with what belongs to it, in running text: "P = 0.33", "[-0.81, 2.31]", "0.03–0.84", "± 0.011"
_GLUED = re.compile(r"P(?:\([^()]*\))? = [<>]?\d|\[[-+−]?\d+(?:\.\d+)?, [-+−]?\d|[-+−]?\d+(?:\.\d+)? ± \d")


def glue_numbers(text: str) -> str:
    """``text`` with the spaces inside a probability statement, an interval or a value ± its error made
    non-breaking, so that a wrapped cell never splits them."""
    return _GLUED.sub(lambda m: m.group().replace(" ", "\u00a0"), str(text))


#: where a long token of a text column may break in HTML: a private-use character in the cell, made a
#: ``<wbr>`` in the rendered page (great_tables escapes markup in cells)
_WBR = "\ue000"
_BREAK_AFTER = re.compile(r"([_/\[(,|])(?=\S)")


def _soft_breaks(text: str) -> str:
    return _BREAK_AFTER.sub(lambda m: m.group(1) + _WBR, text)


def _gt(layout: Layout):
    from great_tables import GT

    cells = layout.cells.copy()
    keep = unbroken_columns(layout)
    for c in layout.code:
        cells[c] = cells[c].astype(str)
    for c in cells.columns:
        if c not in layout.code:
            cells[c] = [glue_numbers(v) if isinstance(v, str) else v for v in cells[c]]
        if c not in keep and layout.align[c] == "l":
            cells[c] = [_soft_breaks(v) if isinstance(v, str) else v for v in cells[c]]
    gt = GT(cells).tab_header(title=layout.title)
    for span, members in layout.spanners:
        gt = gt.tab_spanner(label=span, columns=members, id=f"span-{span}")
    gt = gt.cols_label(**{c: layout.headers[c] for c in cells.columns})
    left = [c for c in cells.columns if layout.align[c] == "l"]
    right = [c for c in cells.columns if layout.align[c] == "r"]
    if left:
        gt = gt.cols_align(align="left", columns=left)
    if right:
        gt = gt.cols_align(align="right", columns=right)
    for note in layout.notes:
        gt = gt.tab_source_note(note)
    # numbers, dates, ids and intervals never wrap inside themselves ("2024-06-/30", "[-0.81,/2.31]"); a long
    # token of a text column may break after _ / [ ( , | (soft breaks), and anywhere only if it still overflows
    from great_tables import loc, style

    if keep:
        gt = gt.tab_style(style=style.css("white-space: nowrap"), locations=loc.body(columns=keep))
    loose = [c for c in left if c not in keep]
    if loose:
        gt = gt.tab_style(style=style.css("overflow-wrap: break-word"), locations=loc.body(columns=loose))
    return gt.tab_options(table_font_size="13px", source_notes_font_size="11px")


def banner_html(text: str) -> str:
    """The failed-fit banner as an HTML block ('' for no banner)."""
    if not text:
        return ""
    return f'<div class="bayescpec-banner" role="alert" style="{BANNER_STYLE}">WARNING: {html.escape(text)}</div>'


def render_html_fragment(layout: Layout) -> str:
    """The table (made by great_tables, its style scoped to the table) and its banner, to embed in a page."""
    return banner_html(layout.banner) + _gt(layout).as_raw_html(make_page=False).replace(_WBR, "<wbr>")


def render_html(layout: Layout) -> str:
    """A complete HTML page with the table made by great_tables (header, spanners, source notes), a
    ``<title>`` and, for a failed fit, a warning banner above the table."""
    page = _gt(layout).as_raw_html(make_page=True).replace(_WBR, "<wbr>")
    page = page.replace("<head>", f"<head>\n<title>{html.escape(layout.title)}</title>", 1)
    if layout.banner:
        page = page.replace("<body>", "<body>\n" + banner_html(layout.banner), 1)
    return page


def render_csv(table: pd.DataFrame, layout: Layout, *, digits: int) -> str:
    """The numeric table rounded to ``digits``, headed by its title, notes and provenance as ``#`` lines."""
    rounded = round_frame(table, digits)
    lines = [f"# {layout.title}"] + [f"# {note}" for note in layout.notes]
    lines += [f"# {key}: {value}" for key, value in table.attrs.get("provenance", {}).items()
              if key != "per_prior_set"]
    return "\n".join(lines) + "\n" + rounded.to_csv(index=False, lineterminator="\n")
