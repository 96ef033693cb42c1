"""The provenance of a figure: a caption line along its bottom and the same text in the saved file's metadata.

:func:`provenance_caption` says where a figure's numbers come from (prior set, evidence hash and rows,
as-of date, draws x chains, seed, bayescpec version; a warning for a failed or prior-only fit);
:func:`stamp` writes it into a band below everything the layout engine placed (after :func:`fit_titles`
has wrapped every title too wide for its room); :func:`save_figure` saves PNG or PDF with the title and
caption as metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["CAPTION_SIZE", "provenance_caption", "fit_titles", "stamp", "save_figure"]

CAPTION_SIZE = 7  # points


def provenance_caption(attrs) -> str:
    """One line saying where a figure's numbers come from (from a result's attrs, or a trajectory
    table's attrs)."""
    hashes = json.loads(attrs.get("input_sha256", "{}") or "{}") if isinstance(attrs.get("input_sha256"), str) \
        else dict(attrs.get("input_sha256") or {})
    evidence = str(hashes.get("evidence") or attrs.get("evidence_sha256") or "?")[:12]
    rows = attrs.get("evidence_rows")
    parts = [f"prior set {attrs.get('prior_set', '?')}",
             f"evidence {evidence}" + (f" ({rows} rows)" if rows not in (None, "") else ""),
             f"as of {attrs.get('as_of', '?')}",
             f"{attrs.get('draws', '?')} draws × {attrs.get('chains', '?')} chains, seed {attrs.get('seed', '?')}",
             f"bayescpec {attrs.get('bayescpec_version', '?')}"]
    text = "Source: " + "; ".join(parts)
    if rows not in (None, "") and int(rows) == 0:
        text += ". PRIOR ONLY: no evidence rows"
    if not bool(attrs.get("converged", True)):
        text += ". CONVERGENCE CHECKS FAILED: do not publish"
    return text


def _rewrap(text, ratio: float) -> None:
    """Wrap each line of ``text`` to ``ratio`` of its longest line (at least 16 characters)."""
    import textwrap

    lines = text.get_text().split("\n")
    width = max(16, int(max(len(line) for line in lines) * ratio))
    text.set_text("\n".join(wrapped for line in lines
                            for wrapped in (textwrap.wrap(line, width, break_on_hyphens=False) or [""])))


def fit_titles(fig, *, rounds: int = 4) -> None:
    """Wrap every title wider than its room -- the figure's title (suptitle) wider than the figure, an
    axes' title wider than its axes -- so that no title is cut by the canvas or runs over its neighbour's.
    Measured on the drawn figure (the layout engine places the wrapped title again), so it holds for any
    label a framework file writes."""
    for _ in range(rounds):
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        room = [(fig._suptitle, fig.bbox.width)] if fig._suptitle is not None else []
        room += [(t, ax.bbox.width) for ax in fig.axes if ax.get_visible()
                 for t in (ax.title, ax._left_title, ax._right_title)]
        changed = False
        for text, width in room:
            if not text.get_visible() or not text.get_text().strip():
                continue
            box = text.get_window_extent(renderer)
            if box.width > 0.98 * width or box.x0 < 0 or box.x1 > fig.bbox.width:
                _rewrap(text, 0.95 * min(width, fig.bbox.width) / box.width)
                changed = True
        if not changed:
            return


def stamp(fig, caption: str):
    """Add ``caption`` (wrapped to the figure's width) in a band below everything else.

    The layout engine places the figure first; then the layout is frozen, the figure made taller
    by the band, and every axes, figure text and figure legend moved up by it (so nothing the
    engine placed, e.g. a legend outside the axes, can collide with the caption)."""
    import textwrap

    if fig.get_layout_engine() is not None:
        fit_titles(fig)
    width_in, height_in = fig.get_size_inches()
    text = textwrap.fill(caption, max(40, int(width_in * 72 / (0.6 * CAPTION_SIZE))))
    band = (text.count("\n") + 1) * CAPTION_SIZE * 1.4 / 72 + 0.1  # inches
    fig.draw_without_rendering()
    axes = [(ax, ax.get_position()) for ax in fig.axes]
    texts = [t for t in (fig._suptitle, fig._supxlabel, fig._supylabel, *fig.texts) if t is not None]
    legends = [(legend, legend.get_window_extent()) for legend in fig.legends]
    fig.set_layout_engine("none")
    total = height_in + band

    def up(y: float) -> float:  # a figure fraction of the old height -> of the new one
        return (y * height_in + band) / total

    fig.set_size_inches(width_in, total, forward=False)
    for ax, pos in axes:
        ax.set_position([pos.x0, up(pos.y0), pos.width, pos.height * height_in / total])
    for t in texts:
        t.set_y(up(t.get_position()[1]))
    for legend, box in legends:
        legend.set_loc("lower left")
        legend.set_bbox_to_anchor((box.x0 / fig.dpi / width_in, up(box.y0 / fig.dpi / height_in)),
                                  transform=fig.transFigure)
        legend.borderaxespad = 0
    fig.text(0.005, 0.04 / total, text, fontsize=CAPTION_SIZE, color="0.35", ha="left", va="bottom")
    fig._bayescpec_caption = caption
    return fig


def save_figure(fig, path: str | Path, *, title: str = "", dpi: int = 200) -> Path:
    """Save ``fig`` (PNG or PDF, by suffix) with its title and provenance caption as metadata."""
    path = Path(path)
    caption = getattr(fig, "_bayescpec_caption", "")
    creator = "bayescpec " + (caption.rsplit("bayescpec ", 1)[-1].split(".")[0] if "bayescpec " in caption else "")
    if path.suffix == ".pdf":
        metadata = {"Title": title, "Subject": caption, "Creator": creator.strip(), "Keywords": "bayescpec"}
    else:
        metadata = {"Title": title, "Description": caption, "Software": creator.strip()}
    fig.savefig(path, dpi=dpi, metadata=metadata)
    return path
