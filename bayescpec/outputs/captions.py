"""The provenance of a figure: a caption line along its bottom and the same text in the saved file's metadata.

:func:`provenance_caption` says where a figure's numbers come from (prior set, evidence hash and rows,
as-of date, draws x chains, seed, bayescpec version; a warning for a failed or prior-only fit);
:func:`stamp` writes it into a band below everything the layout engine placed; :func:`save_figure`
saves PNG or PDF with the title and caption as metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["CAPTION_SIZE", "provenance_caption", "stamp", "save_figure"]

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


def stamp(fig, caption: str):
    """Add ``caption`` (wrapped to the figure's width) in a band below everything else.

    The layout engine places the figure first; then the layout is frozen, the figure made taller
    by the band, and every axes, figure text and figure legend moved up by it (so nothing the
    engine placed, e.g. a legend outside the axes, can collide with the caption)."""
    import textwrap

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
