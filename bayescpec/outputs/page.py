"""The report page: ``index.html``, the study at a glance for a policy reader, in one self-contained file.

It opens with the verdicts in words with their numbers ("SEZ-led industrial upgrading: unlikely to be
converting (P = 0.25, 90% interval of θ 0.02–0.82)"), a banner when the fit failed its convergence
checks or used no evidence, then the figures, every table and the provenance. Tables are the same
layouts the other formats render (great_tables, style scoped to each table); figures are ``<img>``
elements whose ``src`` is a file name beside the page, so the folder can be moved or zipped as is.
No script, no external style sheet, font or image.

The page is a list of :class:`PageSection`: :func:`default_sections` makes the standard ones and any
caller (an analysis added later) passes more -- a title, a paragraph, table layouts, figure files
-- without this module knowing what they are.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import xarray as xr

from .layout import Layout, banner_text, footnote_lines, fmt_number, fmt_probability
from .render import banner_html, render_html_fragment
from .summary import (
    CI_KIND,
    CI_PROB,
    THRESHOLD,
    channel_table,
    framework_info,
    interval_label,
    proposition_table,
    provenance,
)

__all__ = ["PageSection", "headline", "default_sections", "report_page", "PAGE_FILE"]

PAGE_FILE = "index.html"

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; color: #222;
       max-width: 72em; margin: 0 auto; padding: 1em 1.5em 3em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 2em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.subtitle { color: #555; margin-top: 0; }
nav { font-size: 0.9em; color: #555; } nav a { margin-right: 0.8em; }
ul.verdicts { padding-left: 1.2em; } ul.verdicts li { margin: 0.35em 0; }
.verdict { font-weight: bold; }
.prior-only { border: 2px solid #b26a00; background: #fff4e0; color: #6b3f00; padding: 10px 14px;
              margin: 10px auto; max-width: 60em; font-weight: bold; }
.ok { color: #1b5e20; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
.table { overflow-x: auto; margin: 1em 0; }
.provenance { font-size: 0.9em; color: #333; } .provenance li { margin: 0.2em 0; }
"""


@dataclass(frozen=True)
class PageSection:
    """One section of the page. ``text`` is plain text (escaped; blank lines start paragraphs);
    ``tables`` are layouts (:func:`bayescpec.outputs.layout.layout`); ``figures`` are ``(file name
    beside the page, caption)`` pairs; ``html`` is trusted markup added as is (e.g. a list)."""

    id: str
    title: str
    text: str = ""
    tables: tuple[Layout, ...] = ()
    figures: tuple[tuple[str, str], ...] = ()
    html: str = ""


def _verdict(word: str) -> str:
    return f"{word} to be converting"


def headline(
    result: xr.DataTree,
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> dict[str, list[str]]:
    """The verdicts in words, with their numbers: ``{"channels": [...], "propositions": [...]}``."""
    channels = channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    label = channels.attrs["interval"]
    percent = f"{ci_prob * 100:g}%"
    lines = []
    for r in channels.to_dict("records"):
        lines.append(f"{r['label']} ({r['channel']}): {_verdict(r['likelihood'])} "
                     f"(P = {fmt_probability(r['p_converting'])}, {percent} interval of θ "
                     f"{fmt_number(r[f'{label} lower'])}–{fmt_number(r[f'{label} upper'])}; "
                     f"prior P = {fmt_probability(r['prior_p_converting'])})")
    props = []
    for r in proposition_table(result, threshold=threshold).to_dict("records"):
        props.append(f"{r['proposition']} — {r['statement']} Verdict: {r['likelihood']} "
                     f"(P = {fmt_probability(r['posterior_probability'])}; prior P = "
                     f"{fmt_probability(r['prior_probability'])})")
    return {"channels": lines, "propositions": props}


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _section_html(section: PageSection) -> str:
    parts = [f'<section id="{html.escape(section.id)}"><h2>{html.escape(section.title)}</h2>']
    parts.append(_paragraphs(section.text))
    if section.html:
        parts.append(section.html)
    for file, caption in section.figures:
        parts.append(f'<figure><img src="{html.escape(file)}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    for table in section.tables:
        parts.append(f'<div class="table" id="table-{html.escape(table.name)}">{render_html_fragment(table)}</div>')
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _list(items: Sequence[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<ul{attr}>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def default_sections(
    result: xr.DataTree,
    *,
    tables: Mapping[str, Layout] = (),
    figures: Sequence[tuple[str, str]] = (),
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> list[PageSection]:
    """The standard sections: verdicts, figures (``(file, caption)`` pairs), one per table layout."""
    words = headline(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    rows = int(result.attrs.get("evidence_rows", 0) or 0)
    verdict_text = (f"Is each channel converting infrastructure into productive capacity? P is the posterior "
                    f"probability that its conversion probability θ exceeds τ = {threshold:g}; the words follow the "
                    f"IPCC likelihood scale. The interval is the {interval_label(ci_kind, ci_prob)} of θ. "
                    f"{rows} evidence rows as of {result.attrs.get('as_of')}.")
    sections = [PageSection("verdicts", "At a glance: channels", verdict_text, html=_list(words["channels"], "verdicts"))]
    if words["propositions"]:
        sections.append(PageSection("propositions", "At a glance: propositions",
                                    "Each proposition of the framework, as a query over the model's quantities.",
                                    html=_list(words["propositions"], "verdicts")))
    if figures:
        sections.append(PageSection("figures", "Figures", figures=tuple(figures)))
    for name, layout in dict(tables).items():
        sections.append(PageSection(f"tables-{name}", layout.title, tables=(layout,)))
    return sections


def _provenance_html(result: xr.DataTree) -> str:
    import json

    prov = provenance(result)
    files = json.loads(result.attrs.get("input_files", "{}") or "{}")
    items = footnote_lines(prov)
    items += [f"Input file ({role}): {path}" for role, path in files.items()]
    items.append(f"Created {result.attrs.get('created', '?')}; prior set {prov.get('prior_set')}; "
                 f"sampler {prov.get('sampler')}.")
    return "<div class=\"provenance\">" + _list(items) + "</div>"


def report_page(
    result: xr.DataTree,
    *,
    sections: Sequence[PageSection],
    title: str | None = None,
) -> str:
    """The complete page: title, banners (failed fit, prior only), navigation, ``sections`` in order,
    and the provenance of the result. A pure function of its arguments."""
    fw = framework_info(result)
    name = title or f"{fw.get('name', 'bayescpec study')}: the study at a glance"
    prov = provenance(result)
    banner = banner_html(banner_text({**prov, "convergence_failures": result.attrs.get("convergence_failures")}))
    prior_only = ""
    if int(result.attrs.get("evidence_rows", 1) or 0) == 0:
        prior_only = ('<div class="prior-only" role="note">PRIOR ONLY: the evidence log has no rows, so every '
                      "'posterior' number on this page is what the prior set alone says.</div>")
    checks = ("" if banner else '<p class="ok">Convergence checks passed (R-hat ≤ 1.01, bulk ESS ≥ 400, '
              f"no divergences): max R-hat {float(prov['max_rhat']):.3f}, min bulk ESS {prov['min_ess_bulk']}.</p>")
    all_sections = list(sections) + [PageSection("provenance", "Provenance",
                                                 html=_provenance_html(result))]
    nav = " ".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in all_sections)
    subtitle = (f"Prior set {prov.get('prior_set')}; evidence as of {prov.get('as_of')} "
                f"({prov.get('evidence_rows')} rows); {prov.get('draws')} draws × {prov.get('chains')} chains; "
                f"bayescpec {prov.get('bayescpec_version')}.")
    body = "\n".join(_section_html(s) for s in all_sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(name)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(name)}</h1>\n<p class=\"subtitle\">{html.escape(subtitle)}</p>\n"
            f"{banner}\n{prior_only}\n{checks}\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")
