"""The report page: ``index.html``, the study at a glance for a policy reader, in one self-contained file.

It opens with a one-line bottom line worked out from the numbers (:func:`bottom_line`: how many channels
are likely converting, how far the evidence moved them from the prior, within Monte Carlo noise or not),
then the verdicts in words with their numbers ("SEZ-led industrial upgrading: unlikely to be converting
(P = 0.25; before the evidence 0.38; 90% interval of θ 0.02–0.82)"), where each chain breaks (a stage is
named only when it stands out), a banner when the fit failed its convergence checks or used no evidence,
then the figures, every table and the provenance. Every text comes from the framework file or is generic;
input files are named by file name only (the page is meant to be sent); numbers, dates, ids and
intervals never wrap inside themselves. Tables are the same
layouts the other formats render (great_tables, style scoped to each table); figures are ``<img>``
elements whose ``src`` is a file name beside the page, so the folder can be moved or zipped as is.
No script, no external style sheet, font or image.

The page is a list of :class:`PageSection`: :func:`default_sections` makes the standard ones and any
caller (an analysis added later) passes more -- a title, a paragraph, table layouts, figure files
-- without this module knowing what they are.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

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

__all__ = ["PageSection", "headline", "bottom_line", "stage_sentence", "default_sections", "report_page",
           "PAGE_FILE"]

PAGE_FILE = "index.html"

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; color: #222;
       max-width: 80em; margin: 0 auto; padding: 1em 1.5em 3em; line-height: 1.45; }
.bottom-line { font-size: 1.1em; border-left: 4px solid #1f4e79; background: #f2f6fa; padding: 8px 12px; }
.nowrap { white-space: nowrap; }
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


#: the IPCC words of a probability of at least 0.66 (likely or more)
_LIKELY = ("likely", "very likely", "virtually certain")


def bottom_line(result: xr.DataTree, *, threshold: float = THRESHOLD) -> str:
    """What the evidence says overall, in one sentence worked out from the numbers: how many channels are
    likely (P(θ > τ) ≥ 0.66) converting, the range of P, and how far the evidence moved P from the prior
    -- "within Monte Carlo noise" when the largest change is within 2 standard errors (the posterior's
    MCSE and the prior draws' binomial error)."""
    table = channel_table(result, threshold=threshold)
    rows = int(result.attrs.get("evidence_rows", 0) or 0)
    where = f"{rows} evidence row{'s' if rows != 1 else ''} as of {result.attrs.get('as_of')}"
    likely = [r for r in table.to_dict("records") if r["likelihood"] in _LIKELY]
    lowest = table.loc[table["p_converting"].idxmin()]
    highest = table.loc[table["p_converting"].idxmax()]
    spread = (f"P(converting) = {fmt_probability(lowest['p_converting'])}" if len(table) == 1 else
              f"P(converting) ranges from {fmt_probability(lowest['p_converting'])} ({lowest['channel']}) to "
              f"{fmt_probability(highest['p_converting'])} ({highest['channel']})")
    if not likely:
        verdict = (f"no channel is yet likely to be converting — {spread}" if len(table) > 1 else
                   f"the channel is not yet likely to be converting — {spread}")
    elif len(likely) == len(table):
        verdict = f"{'every channel is' if len(table) > 1 else 'the channel is'} likely to be converting — {spread}"
    else:
        names = ", ".join(r["channel"] for r in likely)
        verdict = (f"{len(likely)} of {len(table)} channels {'is' if len(likely) == 1 else 'are'} likely to be "
                   f"converting ({names}) — {spread}")
    if rows == 0:
        return f"Bottom line: prior only (no evidence rows yet) — {verdict}; this is what the prior set alone says."
    change = table["p_converting"] - table["prior_p_converting"]
    prior_draws = result["prior"]["theta"].sizes.get("draw", 1) * result["prior"]["theta"].sizes.get("chain", 1)
    moved = table.loc[change.abs().idxmax()]
    delta = float(moved["p_converting"] - moved["prior_p_converting"])
    noise = math.hypot(float(moved.get("p_converting_mcse", 0.0) or 0.0),
                       math.sqrt(moved["prior_p_converting"] * (1 - moved["prior_p_converting"]) / prior_draws))
    if abs(delta) <= 2 * noise:
        moves = "the evidence has not moved any channel's P beyond Monte Carlo noise from the prior"
    else:
        moves = (f"the evidence moved {moved['channel']} most, from {fmt_probability(moved['prior_p_converting'])} "
                 f"to {fmt_probability(moved['p_converting'])}")
    text = f"Bottom line ({where}): {verdict}; {moves}."
    if not result.attrs.get("converged", True):
        text += " The fit failed its convergence checks: do not quote these numbers."
    return text


def stage_sentence(result: xr.DataTree) -> str:
    """Where the chains break, in words: the stage named only where it stands out
    (:func:`bayescpec.outputs.chain.weakest_stage`); '' when every chain has one stage."""
    from .chain import stage_table
    from .layout_chain import weakest_words

    table = stage_table(result)
    named, none = weakest_words(table)
    if not named and not none:
        return ""
    at = table.set_index(["channel", "stage"])["break_first"]
    parts = [f"{channel} most likely breaks at {stage} (P(breaks first) = {fmt_probability(float(at[channel, stage]))})"
             for channel, stage in named.items()]
    if none:
        shown = table[table["channel"].isin(none)]["break_first"]
        parts.append(f"no stage stands out for {', '.join(none)} (P(breaks first) between "
                     f"{fmt_probability(shown.min())} and {fmt_probability(shown.max())} at every stage: the "
                     "evidence cannot yet tell where " + ("it breaks)" if len(none) == 1 else "these chains break)"))
    return "Where the chains break: " + "; ".join(parts) + "."


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
                     f"(P = {fmt_probability(r['p_converting'])}; before the evidence "
                     f"{fmt_probability(r['prior_p_converting'])}; {percent} interval of θ "
                     f"{fmt_number(r[f'{label} lower'])}–{fmt_number(r[f'{label} upper'])})")
    props = []
    for r in proposition_table(result, threshold=threshold).to_dict("records"):
        props.append(f"{r['proposition']} — {r['statement']} Verdict: {r['likelihood']} "
                     f"(P = {fmt_probability(r['posterior_probability'])}; before the evidence "
                     f"{fmt_probability(r['prior_probability'])})")
    return {"channels": lines, "propositions": props}


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{nowrap_html(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _section_html(section: PageSection) -> str:
    parts = [f'<section id="{html.escape(section.id)}"><h2>{html.escape(section.title)}</h2>']
    parts.append(_paragraphs(section.text))
    if section.html:
        parts.append(section.html)
    for file, caption in section.figures:
        parts.append(f'<figure><img src="{html.escape(file)}" alt="{html.escape(caption)}">'
                     f"<figcaption>{nowrap_html(caption)}</figcaption></figure>")
    for table in section.tables:
        parts.append(f'<div class="table" id="table-{html.escape(table.name)}">{render_html_fragment(table)}</div>')
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


#: what must not wrap inside itself in running text: dates, "P = 0.34", intervals "0.03–0.84" / "[0.03, 0.84]",
#: numbers with their sign, ids with hyphens or underscores
_UNBREAKABLE = re.compile(r"\d{4}-\d{2}-\d{2}|P(?:\([^()]*\))? = [<>]?\d+(?:\.\d+)?"
                          r"|\[[-+−]?\d+(?:\.\d+)?, [-+−]?\d+(?:\.\d+)?\]|[-+−]?\d+\.\d+–[-+−]?\d+\.\d+"
                          r"|\b\w+(?:[-_]\w+)+\b")


def nowrap_html(text: str) -> str:
    """``text`` escaped, with each date, probability, interval and hyphenated id kept on one line."""
    out, at = [], 0
    for match in _UNBREAKABLE.finditer(text):
        out.append(html.escape(text[at:match.start()]))
        out.append(f'<span class="nowrap">{html.escape(match.group())}</span>')
        at = match.end()
    return "".join(out) + html.escape(text[at:])


def _list(items: Sequence[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<ul{attr}>" + "".join(f"<li>{nowrap_html(i)}</li>" for i in items) + "</ul>"


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
    first = channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob).iloc[0]
    verdict_text = (f"Is each channel converting infrastructure into productive capacity? θ is a channel's conversion "
                    f"probability. P is the probability that θ exceeds τ = {threshold:g} (the tables' P(θ > "
                    f"{threshold:g})), after the evidence; 'before the evidence' is the same probability under the "
                    f"prior set alone (the tables' prior P(θ > {threshold:g})). The words follow the IPCC likelihood "
                    "scale. The tables also give the mean of θ "
                    f"(prior mean θ, posterior mean θ): a different number -- {first['channel']}'s θ averages "
                    f"{fmt_number(first['posterior_mean'])} and exceeds {threshold:g} with probability "
                    f"{fmt_probability(first['p_converting'])}. The interval is the "
                    f"{interval_label(ci_kind, ci_prob)} of θ. {rows} evidence rows as of {result.attrs.get('as_of')}.")
    where = stage_sentence(result)
    sections = [PageSection("verdicts", "At a glance: channels", verdict_text,
                            html=_list(words["channels"] + ([where] if where else []), "verdicts"))]
    if words["propositions"]:
        sections.append(PageSection("propositions", "At a glance: propositions",
                                    "Each proposition of the framework, as a query over the model's quantities.",
                                    html=_list(words["propositions"], "verdicts")))
    if figures:
        sections.append(PageSection("figures", "Figures", figures=tuple(figures)))
    for name, layout in dict(tables).items():
        sections.append(PageSection(f"tables-{name}", layout.title, tables=(layout,)))
    return sections


def file_name(path: str) -> str:
    """The file name of ``path``, a POSIX or a Windows path."""
    text = str(path)
    return (PureWindowsPath(text) if "\\" in text and "/" not in text else PurePosixPath(text)).name or text


def _provenance_html(result: xr.DataTree) -> str:
    import json

    prov = provenance(result)
    files = json.loads(result.attrs.get("input_files", "{}") or "{}")
    items = footnote_lines(prov)
    # file names only: the page is meant to be sent, and a path of the machine it was made on says nothing
    # to its reader (the SHA-256 above identifies each file)
    items += [f"Input file ({role}): {file_name(path)}" for role, path in files.items()]
    items.append(f"Created {result.attrs.get('created', '?')}; prior set {prov.get('prior_set')}; "
                 f"sampler {prov.get('sampler')}.")
    return "<div class=\"provenance\">" + _list(items) + "</div>"


def report_page(
    result: xr.DataTree,
    *,
    sections: Sequence[PageSection],
    title: str | None = None,
    threshold: float = THRESHOLD,
) -> str:
    """The complete page: title, the bottom line (:func:`bottom_line` at ``threshold``), banners (failed
    fit, prior only), navigation, ``sections`` in order, and the provenance of the result. A pure
    function of its arguments."""
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
    summary = f'<p class="bottom-line" id="bottom-line">{nowrap_html(bottom_line(result, threshold=threshold))}</p>'
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(name)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(name)}</h1>\n<p class=\"subtitle\">{nowrap_html(subtitle)}</p>\n{summary}\n"
            f"{banner}\n{prior_only}\n{checks}\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")
