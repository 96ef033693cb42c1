"""A :class:`~bayescpec.outputs.layout.Layout` as a LaTeX (booktabs) table that fits its page whatever its texts.

A table's texts come from the framework file (labels, statements, queries) and grow with it, so the widths
are planned here rather than written into each layout:

* **Widths.** Each column's natural width is estimated from its cells and header (Computer Modern
  character widths, in em of the table's font). When the table fits the line as it is, every column keeps
  its natural width. Otherwise the left-aligned (text) columns that are too wide become ``p``-columns that
  wrap, sharing what the numbers leave of ``\\linewidth``: the widest are narrowed first, and none below its
  longest unbreakable word (:func:`plan_columns`). Numbers never wrap. Text may break after ``_ / [ ] ( ) ,
  |`` and, in code, wherever a query's punctuation allows (``\\allowbreak``); a very long token gets a break
  every few characters; ordinary words hyphenate.
* **Page.** A table too wide for a portrait page (or with more than eight columns, or whose wrapped columns
  would be squeezed) is set on a landscape page when compiled alone. A table too tall for a float (many
  rows, or rows of many lines) is a ``longtable`` that breaks across pages, with its notes after it as
  ordinary paragraphs; a shorter one is a ``table`` float with its notes below it, both at the line's width.

The file compiles on its own (``pdflatex file.tex``) or ``\\input`` into a paper whose preamble loads
booktabs, array and longtable.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from .layout import Layout

__all__ = ["latex_escape", "render_latex", "plan_columns", "unbroken_columns", "ColumnPlan", "LONGTABLE_ROWS",
           "TOKEN_CHARS"]

_LATEX_SPECIAL = {
    "\\": r"$\backslash$", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"$\sim$", "^": r"\^{}", "<": r"$<$", ">": r"$>$", "|": r"$|$",
    "θ": r"$\theta$", "τ": r"$\tau$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "−": r"$-$",
    "±": r"$\pm$", "→": r"$\rightarrow$", "≈": r"$\approx$", "–": "--", "—": "---", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''",
    "◀": r"$\triangleleft$", "\u00a0": "~",
}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
          "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"}


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


# ------------------------------------------------------------------------------------------------
# Text widths (Computer Modern, in em) and break points
# ------------------------------------------------------------------------------------------------
_ROMAN = dict(zip("abcdefghijklmnopqrstuvwxyz",
                  (.50, .556, .444, .556, .444, .306, .50, .556, .278, .306, .528, .278, .833, .556, .50, .556,
                   .528, .392, .394, .389, .556, .528, .722, .528, .528, .444)))
_ROMAN.update(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                  (.75, .708, .722, .764, .681, .653, .785, .75, .361, .514, .778, .625, .917, .75, .778, .681,
                   .778, .736, .556, .722, .75, .75, 1.028, .75, .75, .611)))
_ROMAN.update({d: .5 for d in "0123456789"})
_ROMAN.update({" ": .333, ".": .278, ",": .278, ":": .278, ";": .278, "(": .389, ")": .389, "[": .278, "]": .278,
               "-": .333, "'": .278, "/": .5, "!": .278, "?": .472, "*": .5, "\u00a0": .333, "–": .5, "—": 1.0,
               "<": .778, ">": .778, "=": .778, "+": .778, "≥": .778, "≤": .778, "|": .278, "%": .833, "&": .778})
#: a typewriter (code) character, and an unknown character of roman text
_CODE_EM, _OTHER_EM = 0.525, 0.6
#: characters after which a line may break: \allowbreak is written after them (roman text already breaks
#: after a hyphen; typewriter text does not, so code gets it there too)
_BREAK_AFTER, _CODE_BREAK_AFTER = "_/[]|", "_/[]|(),-"
#: a token longer than this (characters) gets a break every _CHUNK characters
_LONG_TOKEN, _CHUNK = 24, 12
#: a word of letters this long or longer can hyphenate: it needs no more than _HYPHENATED em
_HYPHENATE_FROM, _HYPHENATED = 9, 4.5


def text_width(text: str, *, code: bool = False) -> float:
    """The width of ``text`` in em of its font (Computer Modern Roman, or typewriter for code)."""
    if code:
        return _CODE_EM * len(text)
    return sum(_ROMAN.get(ch, _OTHER_EM) for ch in text)


def _segments(text: str, *, code: bool, hyphens: bool = False, spaces: bool = False) -> list[str]:
    """``text`` cut after each break character (a hyphen too with ``hyphens``, a space too with ``spaces``)
    and, inside a token longer than _LONG_TOKEN characters, every _CHUNK characters."""
    breaks = (_CODE_BREAK_AFTER if code else _BREAK_AFTER) + ("-" if hyphens else "")
    cut_at = breaks + (" " if spaces else "")
    segments, current = [], ""
    for piece in re.split(f"(?<=[{re.escape(breaks + ' ')}])", str(text)):
        if len(piece.rstrip(breaks + " ")) > _LONG_TOKEN:
            chunks = [piece[i:i + _CHUNK] for i in range(0, len(piece), _CHUNK)]
            segments += [current + chunks[0], *chunks[1:-1]]
            current = chunks[-1]
        else:
            current += piece
        if current and current[-1] in cut_at:
            segments.append(current)
            current = ""
    return segments + ([current] if current else [])


def _min_width(text: str, *, code: bool) -> float:
    """The narrowest a column can be and still hold ``text`` without running over: its widest unbreakable piece."""
    widest = 0.0
    for seg in _segments(text, code=code, hyphens=True, spaces=True):
        piece = seg.strip()
        width = text_width(piece, code=code)
        if not code and len(piece) >= _HYPHENATE_FROM and piece.isalpha():
            width = min(width, _HYPHENATED)
        widest = max(widest, width)
    return widest


def cell_text(text: object, *, code: bool = False, breakable: bool = True) -> str:
    """``text`` escaped for LaTeX, with a zero-width space (``\\hspace{0pt}``: a line may break there, and
    the next word can still hyphenate) after each break character and inside very long tokens."""
    text = str(text).replace("\n", " ")
    if not breakable:
        return latex_escape(text)
    return r"\hspace{0pt}".join(latex_escape(seg) for seg in _segments(text, code=code))


#: a cell of at most this many characters without a space is a token (an id, a date, a key): kept whole
TOKEN_CHARS = 24


def unbroken_columns(layout: Layout) -> list[str]:
    """The columns a line must not break inside (in LaTeX and HTML alike): numbers (right-aligned: values,
    intervals) and text columns whose every cell is one token of at most :data:`TOKEN_CHARS` characters
    (ids, dates, source keys, tiers). Wrapped, "2024-06-30" or "[0.03, 0.84]" would be misread."""
    return [c for c in layout.cells.columns if layout.align[c] == "r" or all(
        len(v) <= TOKEN_CHARS and not any(ch.isspace() for ch in v) for v in map(str, layout.cells[c]))]


# ------------------------------------------------------------------------------------------------
# The column plan
# ------------------------------------------------------------------------------------------------
#: pages of a table compiled alone: letter paper, 1.5 cm margins (line width, text height in pt)
_PORTRAIT, _LANDSCAPE = (528.9, 709.6), (709.6, 528.9)
#: the table's font (\small in a 10 pt document) and its column separation (\tabcolsep), in pt
_FONT_PT, _SEP_PT = 9.0, 4.0
#: the column separation of a landscape table that cannot hold its columns' words at _SEP_PT
_TIGHT_SEP_PT = 2.0
#: natural widths are estimates: allow this much more
_MARGIN = 1.08
#: tokens no wider than this (em: an id, a date) are the last to break when a table cannot fit otherwise
_SHORT_TOKEN = 8.0
#: a wrapped column narrower than this (em) is squeezed (about 30 characters): set a landscape page
_SQUEEZED = 15.0
#: longer tables become a longtable that breaks across pages
LONGTABLE_ROWS = 40
#: a float taller than this share of the page's text height becomes a longtable
_FLOAT_SHARE = 0.72


@dataclass(frozen=True)
class ColumnPlan:
    """How a table is set: ``wrap`` maps each wrapped column to its width (em), every other column keeps
    its natural width; ``fixed`` is the natural columns' estimated width (em, spanners included);
    ``fits`` says whether every column holds its longest unbreakable word; ``landscape`` and ``long``
    (a longtable) say how the page is set."""

    wrap: dict[str, float]
    fixed: float
    fits: bool
    landscape: bool
    long: bool
    height: float  # the estimated height (em) of the table and its notes
    sep_pt: float = 4.0  # \tabcolsep: 2 pt when even the landscape page cannot hold every column at 4 pt


def _column_widths(layout: Layout, keep: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Each column's natural and narrowest width (em); a column in ``keep`` is never narrower than its cells."""
    natural, minimum = {}, {}
    for c in layout.cells.columns:
        code = c in layout.code
        cells = [str(v) for v in layout.cells[c]]
        header = str(layout.headers.get(c, ""))
        if layout.align[c] == "r":  # numbers: never wrapped, the header neither
            natural[c] = minimum[c] = max([text_width(v) for v in cells] + [text_width(header)]) * _MARGIN
            continue
        natural[c] = max([text_width(v, code=code) for v in cells] + [text_width(header)]) * _MARGIN
        minimum[c] = max([(text_width(v, code=code) if c in keep else _min_width(v, code=code)) for v in cells]
                         + [_min_width(header, code=False)]) * _MARGIN
    return natural, minimum


def _span_deficit(layout: Layout, widths: dict[str, float], sep_em: float) -> float:
    """How much wider the spanners' texts are than the columns under them (em), added up."""
    deficit = 0.0
    for text, members in layout.spanners:
        under = sum(widths[m] for m in members) + 2 * sep_em * (len(members) - 1)
        deficit += max(0.0, text_width(text) * _MARGIN - under)
    return deficit


def _plan_at(layout: Layout, line_em: float, sep_em: float, keep: Sequence[str]) -> tuple[dict[str, float], float, bool]:
    natural, minimum = _column_widths(layout, keep)
    cols = list(layout.cells.columns)
    available = line_em - 2 * sep_em * len(cols) - _span_deficit(layout, natural, sep_em)
    if sum(natural.values()) <= available:
        return {}, sum(natural.values()) + _span_deficit(layout, natural, sep_em), True
    left = [c for c in cols if layout.align[c] != "r"]
    room = available - sum(natural[c] for c in cols if c not in left)

    def filled(level: float) -> dict[str, float]:
        return {c: min(natural[c], max(level, minimum[c])) for c in left}

    lo, hi = 0.0, max([natural[c] for c in left], default=0.0)
    fits = sum(filled(0.0).values()) <= room
    for _ in range(60):  # the water level at which the text columns just fill the room
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(filled(mid).values()) <= room else (lo, mid)
    widths = filled(lo)
    wrap = {c: w for c, w in widths.items() if w < natural[c] - 1e-9}
    fixed = sum(natural[c] for c in cols if c not in wrap) + _span_deficit(layout, {**natural, **wrap}, sep_em)
    return wrap, fixed, fits


def _height(layout: Layout, wrap: dict[str, float], line_em: float) -> float:
    """The table's height with its caption and notes, in em of its font (a line: 1.22 em)."""
    lines = 0.0
    for row in layout.cells.itertuples(index=False):
        lines += max([1] + [math.ceil(text_width(str(v), code=c in layout.code) * 1.1 / wrap[c])
                            for c, v in zip(layout.cells.columns, row) if c in wrap])
    header = max([1] + [math.ceil(text_width(str(layout.headers.get(c, ""))) * 1.1 / w) for c, w in wrap.items()])
    lines += header + (1.5 if layout.spanners else 0) + 1.5
    lines += math.ceil(text_width(layout.title) / line_em) + 1
    notes = sum(math.ceil(text_width(n) * 0.9 / line_em) for n in layout.notes)  # \footnotesize
    return lines * 1.22 + notes * 1.1 + (3.0 if layout.banner else 0.0)


def plan_columns(layout: Layout) -> ColumnPlan:
    """The widths and page of ``layout`` (see the module docstring): portrait when the table fits it
    without squeezing its text columns, landscape otherwise; a float when it is short enough, a
    longtable otherwise."""
    plans = []
    for page, sep_pt in ((_PORTRAIT, _SEP_PT), (_LANDSCAPE, _SEP_PT), (_LANDSCAPE, _TIGHT_SEP_PT)):
        sep_em = sep_pt / _FONT_PT
        line_em, height_em = page[0] / _FONT_PT, page[1] / _FONT_PT
        keep = unbroken_columns(layout)
        short = [c for c in keep if max([text_width(str(v)) for v in layout.cells[c]], default=0) <= _SHORT_TOKEN]
        for kept in (keep, short, ()):  # long tokens (keys), then short ones (ids, dates) may break rather than run over
            wrap, fixed, fits = _plan_at(layout, line_em, sep_em, kept)
            if fits:
                break
        plans.append((page, wrap, fixed, fits, line_em, height_em, sep_pt))
    portrait, landscape, tight = plans
    squeezed = any(w < _SQUEEZED for w in portrait[1].values())
    many = len(layout.cells.columns) > 8
    chosen = portrait
    if not portrait[3] or squeezed or many:  # landscape; with narrower gaps if its columns cannot hold their words
        chosen = tight if not landscape[3] and tight[3] else landscape
    page, wrap, fixed, fits, line_em, height_em, sep_pt = chosen
    height = _height(layout, wrap, line_em)
    long = len(layout.cells) > LONGTABLE_ROWS or height > _FLOAT_SHARE * height_em
    return ColumnPlan(wrap=wrap, fixed=fixed, fits=fits, landscape=page is _LANDSCAPE, long=long, height=height,
                      sep_pt=sep_pt)


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------
def _colspec(layout: Layout, plan: ColumnPlan) -> str:
    """Natural ``l``/``r`` columns; wrapped ones share what the natural columns leave of ``\\linewidth``
    in the planned proportions (so the table fills the line of whatever document it is put into)."""
    cols = list(layout.cells.columns)
    total = sum(plan.wrap.values())
    spec = []
    for c in cols:
        if c in plan.wrap:
            share = max(1, math.floor(1000 * plan.wrap[c] / total))
            width = f"\\dimexpr(\\linewidth-{plan.fixed:.2f}em-{2 * len(cols)}\\tabcolsep)*{share}/1000\\relax"
            spec.append(f">{{\\raggedright\\arraybackslash\\hspace{{0pt}}}}p{{{width}}}")
        else:
            spec.append(layout.align[c])
    return "".join(spec)


def _header(layout: Layout) -> list[str]:
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
    lines.append(" & ".join(cell_text(layout.headers[c]) for c in cols) + r" \\")
    return lines


def _row(layout: Layout, row: Sequence[str]) -> str:
    cells = []
    for c, v in zip(layout.cells.columns, row):
        code = c in layout.code
        text = cell_text(v, code=code, breakable=layout.align[c] != "r")
        cells.append(f"\\texttt{{{text}}}" if code and text else text)
    return " & ".join(cells) + r" \\"


def render_latex(layout: Layout) -> str:
    """A booktabs table that compiles on its own (``pdflatex file.tex``) and can also be
    ``\\input`` into a paper whose preamble loads booktabs, array and longtable."""
    plan = plan_columns(layout)
    cols = list(layout.cells.columns)
    label = f"tab:bayescpec-{layout.name}"
    notes = "\n".join(r"\noindent " + cell_text(n) + r"\par" for n in layout.notes)
    header = _header(layout)
    rows = [_row(layout, row) for row in layout.cells.itertuples(index=False)]
    colspec = _colspec(layout, plan)
    out = [
        f"% bayescpec table '{layout.name}': compile alone with pdflatex, or \\input{{}} it into a document",
        "% whose preamble has \\usepackage{booktabs,array,longtable}."
        + (" A longtable: run pdflatex twice to settle the column widths." if plan.long else ""),
        r"\makeatletter",
        r"\ifx\@onlypreamble\@notprerr\def\bcstandalone{0}\else\def\bcstandalone{1}\fi",
        r"\makeatother",
        r"\ifnum\bcstandalone=1",
        r"\documentclass[10pt]{article}",
        f"\\usepackage[{'landscape,' if plan.landscape else ''}margin=1.5cm]{{geometry}}",
        r"\usepackage{booktabs,array,longtable}",
        r"\pagestyle{empty}",
        r"\begin{document}",
        r"\fi",
    ]
    banner = (r"\noindent\fbox{\parbox{\dimexpr\linewidth-2\fboxsep-2\fboxrule\relax}{\textbf{"
              + cell_text(layout.banner) + r"}}}\par\smallskip") if layout.banner else ""
    if plan.long:
        out += ([banner] if banner else []) + [
            f"{{\\small\\setlength{{\\tabcolsep}}{{{plan.sep_pt:g}pt}}\\setlength{{\\LTcapwidth}}{{\\linewidth}}",
            f"\\begin{{longtable}}{{{colspec}}}",
            f"\\caption{{{latex_escape(layout.title)}}}\\label{{{label}}}\\\\",
            r"\toprule", *header, r"\midrule", r"\endfirsthead",
            f"\\multicolumn{{{len(cols)}}}{{l}}{{\\footnotesize (continued)}}\\\\",
            r"\toprule", *header, r"\midrule", r"\endhead",
            r"\bottomrule", r"\endfoot",
            *rows,
            r"\end{longtable}}",
            r"\begingroup\footnotesize\raggedright",
            notes,
            r"\endgroup",
        ]
    else:
        out += [
            r"\begin{table}[htbp]",
            f"\\centering\\small\\setlength{{\\tabcolsep}}{{{plan.sep_pt:g}pt}}",
            f"\\caption{{{latex_escape(layout.title)}}}\\label{{{label}}}",
            *([banner] if banner else []),
            f"\\begin{{tabular}}{{{colspec}}}",
            r"\toprule", *header, r"\midrule", *rows, r"\bottomrule",
            r"\end{tabular}",
            r"\par\smallskip",
            r"\begin{minipage}{\linewidth}\footnotesize\raggedright",
            notes,
            r"\end{minipage}",
            r"\end{table}",
        ]
    out += [r"\ifnum\bcstandalone=1\def\bcend{\end{document}}\else\def\bcend{}\fi", r"\bcend", ""]
    return "\n".join(out)
