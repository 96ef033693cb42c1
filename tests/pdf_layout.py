"""What a reader of a compiled PDF would see go wrong: text past the page's edge or printed over other text.

:func:`layout_problems` reads the word boxes of every page (``pdftotext -bbox``, poppler-utils) and the
LaTeX log, and lists, in words:

* a word that reaches past the page's right or bottom edge, or into the margin (``margin_pt`` from each
  edge, less a small tolerance): a table or a note that ran off the page;
* two words whose boxes overlap (more than 1 pt across and more than half a line's height): a column that
  ran into the next one, or a value printed over text;
* an overfull box wider than 2 pt and a float too large for its page, from the log.

Word boxes come from the font's ascent and descent, so the boxes of adjacent lines may touch; the
thresholds above allow for that and for the small overlap of a math glyph with its neighbour.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html import unescape
from pathlib import Path

PDFTOTEXT = shutil.which("pdftotext")
#: the standalone tables' margin (render_latex: geometry margin=1.5cm), in points
MARGIN_PT = 1.5 / 2.54 * 72


@dataclass(frozen=True)
class Word:
    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


def word_boxes(pdf: Path) -> tuple[list[tuple[float, float]], list[Word]]:
    """The size of each page and every word's box, in points from the page's top left corner."""
    out = subprocess.run([PDFTOTEXT or "pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    pages, words = [], []
    for number, page in enumerate(re.findall(r"<page (.*?)>(.*?)</page>", out, flags=re.S)):
        head, body = page
        size = dict(re.findall(r'(\w+)="([\d.]+)"', head))
        pages.append((float(size["width"]), float(size["height"])))
        for attrs, text in re.findall(r"<word (.*?)>(.*?)</word>", body, flags=re.S):
            box = {k: float(v) for k, v in re.findall(r'(\w+)="([-\d.]+)"', attrs)}
            words.append(Word(number, box["xMin"], box["yMin"], box["xMax"], box["yMax"], unescape(text)))
    return pages, words


def overlapping(words: list[Word]) -> list[tuple[Word, Word]]:
    """Pairs of words on the same page whose boxes overlap by more than 1 pt across and by more than half
    the smaller word's height."""
    found = []
    ordered = sorted(words, key=lambda w: (w.page, w.x0))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b.page != a.page or b.x0 >= a.x1 - 1.0:
                break
            across = min(a.x1, b.x1) - max(a.x0, b.x0)
            down = min(a.y1, b.y1) - max(a.y0, b.y0)
            if across > 1.0 and down > 0.5 * min(a.y1 - a.y0, b.y1 - b.y0):
                found.append((a, b))
    return found


def layout_problems(pdf: Path, *, margin_pt: float = MARGIN_PT, tolerance_pt: float = 3.0) -> list[str]:
    """Everything a reader would see go wrong on the compiled ``pdf`` (see the module docstring); [] if none."""
    pages, words = word_boxes(pdf)
    problems = []
    for w in words:
        width, height = pages[w.page]
        if w.x1 > width - margin_pt + tolerance_pt or w.x0 < margin_pt - tolerance_pt:
            problems.append(f"page {w.page + 1}: {w.text!r} reaches x = {w.x1:.0f} pt (x from {w.x0:.0f}) on a page "
                            f"{width:.0f} pt wide with {margin_pt:.0f} pt margins")
        if w.y1 > height - margin_pt + tolerance_pt:
            problems.append(f"page {w.page + 1}: {w.text!r} reaches y = {w.y1:.0f} pt on a page {height:.0f} pt high "
                            f"with {margin_pt:.0f} pt margins")
    for a, b in overlapping(words):
        problems.append(f"page {a.page + 1}: {a.text!r} and {b.text!r} are printed over each other "
                        f"(x {a.x0:.0f}-{a.x1:.0f} and {b.x0:.0f}-{b.x1:.0f}, y {a.y0:.0f} and {b.y0:.0f})")
    log = pdf.with_suffix(".log")
    if log.is_file():
        text = log.read_text(errors="replace")
        for amount, where in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\) (.*)", text):
            if float(amount) > 2.0:
                problems.append(f"LaTeX: overfull box {amount} pt too wide {where.strip()}")
        problems += [f"LaTeX: {m}" for m in re.findall(r"Float too large for page by [\d.]+pt", text)]
    return problems


def compile_latex(path: Path, *, runs: int = 1) -> subprocess.CompletedProcess:
    """``pdflatex`` on ``path`` in its folder (``runs`` times: a longtable settles on the second)."""
    for _ in range(runs):
        run = subprocess.run([shutil.which("pdflatex") or "pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                              path.name], cwd=path.parent, capture_output=True, text=True, timeout=120)
        if run.returncode:
            break
    return run
