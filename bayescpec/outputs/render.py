"""Renderers: a :class:`~bayescpec.outputs.layout.Layout` as Markdown, LaTeX (booktabs), HTML
(great_tables) or CSV with its provenance as leading ``#`` lines. They know nothing about which table
they render.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence

import pandas as pd

from .layout import Layout, round_frame

__all__ = ["latex_escape", "render_markdown", "render_latex", "render_html", "render_html_fragment", "render_csv",
           "BANNER_STYLE"]

#: the style of the failed-fit banner in HTML (the table pages and index.html)
BANNER_STYLE = ("border:2px solid #b00020;background:#fdecea;color:#7a0015;padding:10px 14px;margin:10px auto;"
                "max-width:60em;font-family:sans-serif;font-weight:bold")


_LATEX_SPECIAL = {
    "\\": r"$\backslash$", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"$\sim$", "^": r"\^{}", "<": r"$<$", ">": r"$>$", "|": r"$|$",
    "θ": r"$\theta$", "τ": r"$\tau$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "−": r"$-$",
    "±": r"$\pm$", "→": r"$\rightarrow$", "≈": r"$\approx$", "–": "--", "—": "---", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''",
    "\u00a0": "~",
}


def latex_escape(text: object) -> str:
    """Text safe for pdflatex in the default (OT1) font encoding: the ten special characters, < > |,
    Greek letters and a few math symbols become commands; other characters outside Latin-1 are
    transliterated (accents dropped) or replaced by '?'."""
    out = []
    for ch in str(text):
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ch == "\u0302" and out and len(out[-1]) == 1 and out[-1].isascii() and out[-1].isalpha():
            out.append(f"$\\hat{{{out.pop()}}}$")  # a combining circumflex: k̂ (Pareto k-hat), p̂
        elif ch == "\n" or ch == "\r" or ch == "\t":
            out.append(" ")
        elif ord(ch) < 128:
            out.append(ch)
        elif ord(ch) < 256 and ch.isalpha():
            out.append(ch)  # Latin-1 letters: pdflatex's utf8 input maps them to accent commands
        else:
            name = unicodedata.name(ch, "")
            greek = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", name)
            if greek and greek.group(2).lower() in _GREEK:
                letter = greek.group(2).lower()
                out.append(f"$\\{letter.capitalize() if greek.group(1) == 'CAPITAL' else letter}$")
            else:
                ascii_ = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
                out.append(latex_escape(ascii_) if ascii_ else "?")
    return "".join(out)


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
          "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"}


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


def _latex_colspec(layout: Layout) -> str:
    spec = []
    for c in layout.cells.columns:
        if c in layout.wrap:
            spec.append(f">{{\\raggedright\\arraybackslash}}p{{{layout.wrap[c]}}}")
        else:
            spec.append(layout.align[c])
    return "".join(spec)


def _latex_header(layout: Layout) -> list[str]:
    cols = list(layout.cells.columns)
    lines = []
    if layout.spanners:
        cells, rules, i = [], [], 0
        while i < len(cols):
            span = next(((s, m) for s, m in layout.spanners if m and m[0] == cols[i]), None)
            if span:
                width = len(span[1])
                cells.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(span[0])}}}")
                rules.append(f"\\cmidrule(lr){{{i + 1}-{i + width}}}")
                i += width
            else:
                cells.append("")
                i += 1
        lines.append(" & ".join(cells) + r" \\")
        lines.append(" ".join(rules))
    lines.append(" & ".join(latex_escape(layout.headers[c]) for c in cols) + r" \\")
    return lines


def _latex_row(layout: Layout, row: Sequence[str]) -> str:
    cells = []
    for c, v in zip(layout.cells.columns, row):
        text = latex_escape(v)
        cells.append(f"\\texttt{{{text}}}" if c in layout.code and text else text)
    return " & ".join(cells) + r" \\"


#: longer tables become a longtable that breaks across pages
LONGTABLE_ROWS = 40


def render_latex(layout: Layout) -> str:
    """A booktabs table that compiles on its own (``pdflatex file.tex``) and can also be
    ``\\input`` into a paper whose preamble loads booktabs, array (and longtable for long tables)."""
    cols = list(layout.cells.columns)
    long = len(layout.cells) > LONGTABLE_ROWS
    landscape = len(cols) > 8 or sum(float(w.removesuffix("cm")) for w in layout.wrap.values()) > 8
    label = f"tab:bayescpec-{layout.name}"
    notes = "\n".join(r"\noindent " + latex_escape(n) + r"\par" for n in layout.notes)
    header = _latex_header(layout)
    rows = [_latex_row(layout, row) for row in layout.cells.itertuples(index=False)]
    geometry = "landscape," if landscape else ""
    out = [
        f"% bayescpec table '{layout.name}': compile alone with pdflatex, or \\input{{}} it into a document",
        "% whose preamble has \\usepackage{booktabs,array,graphicx" + (",longtable" if long else "") + "}."
        + (" A longtable: run pdflatex twice to settle the column widths." if long else ""),
        r"\makeatletter",
        r"\ifx\@onlypreamble\@notprerr\def\bcstandalone{0}\else\def\bcstandalone{1}\fi",
        r"\makeatother",
        r"\ifnum\bcstandalone=1",
        r"\documentclass[10pt]{article}",
        f"\\usepackage[{geometry}margin=1.5cm]{{geometry}}",
        r"\usepackage{booktabs,array,graphicx,longtable}",
        r"\pagestyle{empty}",
        r"\begin{document}",
        r"\fi",
    ]
    banner = (r"\noindent\fbox{\parbox{\dimexpr\linewidth-2\fboxsep-2\fboxrule\relax}{\textbf{"
              + latex_escape(layout.banner) + r"}}}\par\smallskip") if layout.banner else ""
    if long:
        span = len(cols)
        out += ([banner] if banner else []) + [
            r"{\footnotesize\setlength{\tabcolsep}{3pt}",
            f"\\begin{{longtable}}{{{_latex_colspec(layout)}}}",
            f"\\caption{{{latex_escape(layout.title)}}}\\label{{{label}}}\\\\",
            r"\toprule", *header, r"\midrule", r"\endfirsthead",
            f"\\multicolumn{{{span}}}{{l}}{{\\footnotesize (continued)}}\\\\",
            r"\toprule", *header, r"\midrule", r"\endhead",
            r"\bottomrule", r"\endfoot",
            *rows,
            r"\end{longtable}}",
            r"\begingroup\footnotesize\noindent",
            notes,
            r"\endgroup",
        ]
    else:
        out += [
            r"\begin{table}[htbp]",
            r"\centering\small\setlength{\tabcolsep}{4pt}",
            f"\\caption{{{latex_escape(layout.title)}}}\\label{{{label}}}",
            *([banner] if banner else []),
            r"\sbox0{%",  # shrink to the text width only if wider
            f"\\begin{{tabular}}{{{_latex_colspec(layout)}}}",
            r"\toprule", *header, r"\midrule", *rows, r"\bottomrule",
            r"\end{tabular}}%",
            r"\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi",
            r"\par\smallskip",
            r"\begin{minipage}{\linewidth}\footnotesize",
            notes,
            r"\end{minipage}",
            r"\end{table}",
        ]
    out += [r"\ifnum\bcstandalone=1\def\bcend{\end{document}}\else\def\bcend{}\fi", r"\bcend", ""]
    return "\n".join(out)


def _gt(layout: Layout):
    from great_tables import GT

    cells = layout.cells.copy()
    for c in layout.code:
        cells[c] = cells[c].astype(str)
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
    return gt.tab_options(table_font_size="13px", source_notes_font_size="11px")


def banner_html(text: str) -> str:
    """The failed-fit banner as an HTML block ('' for no banner)."""
    if not text:
        return ""
    return f'<div class="bayescpec-banner" role="alert" style="{BANNER_STYLE}">WARNING: {html.escape(text)}</div>'


def render_html_fragment(layout: Layout) -> str:
    """The table (made by great_tables, its style scoped to the table) and its banner, to embed in a page."""
    return banner_html(layout.banner) + _gt(layout).as_raw_html(make_page=False)


def render_html(layout: Layout) -> str:
    """A complete HTML page with the table made by great_tables (header, spanners, source notes), a
    ``<title>`` and, for a failed fit, a warning banner above the table."""
    page = _gt(layout).as_raw_html(make_page=True)
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
