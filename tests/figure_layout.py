"""What a reader of a figure would see go wrong with its texts: a title or label cut by the canvas edge,
two labels printed over each other.

:func:`text_problems` draws the figure (Agg) and measures every visible, non-empty text artist --
figure texts and titles, axes titles, axis labels, tick labels within the axis' view, annotations and bar
labels, legend entries and titles -- with matplotlib's window extents: each must lie inside the canvas,
and no two may overlap by more than a pixel each way.
"""

from __future__ import annotations

from matplotlib.text import Text

#: pixels two boxes may share (anti-aliasing, a glyph's overhang) before they count as overlapping
SLACK = 1.0


def _in_view(axis, loc: float) -> bool:
    lo, hi = sorted(axis.get_view_interval())
    span = hi - lo
    return lo - 1e-9 * max(1.0, abs(span)) <= loc <= hi + 1e-9 * max(1.0, abs(span))


def text_artists(fig) -> list[Text]:
    """Every text a reader sees on ``fig`` (after it was drawn)."""
    found: list[Text] = [t for t in (fig._suptitle, fig._supxlabel, fig._supylabel) if t is not None]
    found += list(fig.texts)
    legends = list(fig.legends)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        found += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts,
                  ax.xaxis.offsetText, ax.yaxis.offsetText]
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if _in_view(axis, tick.get_loc()):
                    found += [label for label in (tick.label1, tick.label2) if label.get_visible()]
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
    for legend in legends:
        if legend.get_visible():
            found += [*legend.get_texts(), legend.get_title()]
    unique = {id(t): t for t in found}  # the suptitle is also one of the figure's texts
    return [t for t in unique.values() if t.get_visible() and t.get_text().strip()]


def text_problems(fig) -> list[str]:
    """Texts of ``fig`` that reach past its canvas or overlap another text; [] if none."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    boxes = [(t, t.get_window_extent(renderer)) for t in text_artists(fig)]
    problems = []
    for t, box in boxes:
        if box.x0 < -SLACK or box.y0 < -SLACK or box.x1 > width + SLACK or box.y1 > height + SLACK:
            problems.append(f"{t.get_text()[:60]!r} reaches past the canvas ({box.x0:.0f}..{box.x1:.0f} x "
                            f"{box.y0:.0f}..{box.y1:.0f} on {width:.0f} x {height:.0f} px)")
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            across = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            down = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if across > SLACK and down > SLACK:
                problems.append(f"{a.get_text()[:40]!r} and {b.get_text()[:40]!r} overlap "
                                f"({across:.0f} x {down:.0f} px)")
    return problems
