"""Publication tables: a saved result becomes CSV, Markdown, LaTeX and HTML tables, never by refitting.

Every table is a pure function of the result (the ``xarray.DataTree`` made by :func:`bayescpec.fit`)
and reuses :mod:`bayescpec.summary` for the numbers; this module adds two tables the summary does
not have (:func:`evidence_table`, :func:`constraint_effect_table`) and the exporters.

Each exported table carries a footnote with its provenance (prior set, short input hashes, as-of
date, seed, draws x chains, max R-hat, min bulk ESS, divergences, package version), the interval
kind and probability, and the rounding. LaTeX uses booktabs and compiles on its own with
``pdflatex`` or can be ``\\input`` into a paper; HTML is made with great_tables.
"""

from __future__ import annotations

import math
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .errors import InputError
from .summary import (
    CI_KIND,
    CI_PROB,
    THRESHOLD,
    check_options,
    framework_info,
    credible_interval,
    channel_table,
    constraint_table,
    interval_label,
    proposition_table,
    provenance,
)

__all__ = [
    "FORMATS",
    "TABLES",
    "DIGITS",
    "evidence_table",
    "constraint_effect_table",
    "report_tables",
    "render_table",
    "export_tables",
    "latex_escape",
    "footnote_lines",
]

#: export formats and the file suffix of each
FORMATS = {"csv": ".csv", "md": ".md", "latex": ".tex", "html": ".html"}
#: the tables of a report, by file stem
TABLES = ("channels", "propositions", "constraints", "constraint-effects", "evidence")
#: decimals of every number in the exported tables (one rounding for all tables and formats)
DIGITS = 2
INTERVAL_KINDS = {"eti": "equal-tailed", "hdi": "highest-density"}


# --------------------------------------------------------------------------------------------
# The two tables summary.py does not have
# --------------------------------------------------------------------------------------------

def _sigmoid(x: xr.DataArray) -> xr.DataArray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: xr.DataArray) -> xr.DataArray:
    p = p.clip(1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def link_reductions(result: xr.DataTree, *, group: str = "posterior") -> xr.DataArray:
    """Per draw and link ``channel|constraint``: theta of the channel without that constraint minus
    theta with it, ``sigmoid(logit(base_theta_c) - effect_c + loading_ck * severity_k) - theta_c``.
    Positive means the constraint lowers the channel's conversion probability."""
    fw = framework_info(result)
    ds = result[group].to_dataset()
    links = [(c, k) for c, k in fw["links"]]
    if not links:
        return xr.DataArray(np.zeros((0,)), dims=["link"], coords={"link": []})
    names = [f"{c}|{k}" for c, k in links]
    channels = xr.DataArray([c for c, _ in links], dims="link", coords={"link": names})
    constraints = xr.DataArray([k for _, k in links], dims="link", coords={"link": names})
    base = ds["base_theta"].sel(channel=channels).drop_vars("channel")
    effect = ds["constraint_effect"].sel(channel=channels).drop_vars("channel")
    theta = ds["theta"].sel(channel=channels).drop_vars("channel")
    severity = ds["severity"].sel(constraint=constraints).drop_vars("constraint")
    loading = ds["loading"].sel(link=names)
    without = _sigmoid(_logit(base) - effect + loading * severity)
    return (without - theta).rename("reduction")


def constraint_effect_table(result: xr.DataTree, *, ci_kind: str = CI_KIND, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """One row per (constraint, linked channel): the posterior loading, and the estimated reduction
    of the channel's conversion probability theta by the constraint (theta without the constraint
    minus theta with it): prior mean, posterior mean, sd, interval and P(reduction > 0)."""
    check_options(ci_kind, ci_prob)
    fw = framework_info(result)
    label = interval_label(ci_kind, ci_prob)
    columns = ["constraint", "channel", "loading_mean", "prior_reduction_mean", "reduction_mean",
               "reduction_sd", f"{label} lower", f"{label} upper", "p_reduces"]
    if not fw["links"]:
        table = pd.DataFrame(columns=columns)
    else:
        post = link_reductions(result, group="posterior")
        prior = link_reductions(result, group="prior")
        interval = credible_interval(post, ci_kind, ci_prob)
        loading = result["posterior"]["loading"].mean(("chain", "draw"))
        order = {k: i for i, k in enumerate(fw["constraints"])}
        links = sorted(fw["links"], key=lambda ck: (order[ck[1]], list(fw["channels"]).index(ck[0])))
        names = [f"{c}|{k}" for c, k in links]
        table = pd.DataFrame({
            "constraint": [k for _, k in links],
            "channel": [c for c, _ in links],
            "loading_mean": loading.sel(link=names).values,
            "prior_reduction_mean": prior.mean(("chain", "draw")).sel(link=names).values,
            "reduction_mean": post.mean(("chain", "draw")).sel(link=names).values,
            "reduction_sd": post.std(("chain", "draw")).sel(link=names).values,
            f"{label} lower": interval.sel(ci_bound="lower", link=names).values,
            f"{label} upper": interval.sel(ci_bound="upper", link=names).values,
            "p_reduces": (post > 0).mean(("chain", "draw")).sel(link=names).values,
        })
    table.attrs = {"interval": label,
                   "title": "Constraint effects: reduction of each linked channel's conversion probability "
                            "θ (θ without the constraint − θ with it; probability scale)",
                   "provenance": provenance(result)}
    return table


def evidence_table(result: xr.DataTree) -> pd.DataFrame:
    """The evidence ledger: every row the fit used, with tier, target, source key, its weight and its
    pointwise log-likelihood contribution (posterior mean and sd of the weighted log-likelihood;
    NaN when the result kept no pointwise log-likelihood). Ordered by tier rank, then target."""
    fw = framework_info(result)
    ledger = result["evidence"].to_dataset()
    frame = pd.DataFrame({"evidence": ledger["evidence"].values.astype(str)})
    for name in ("observed", "tier", "target", "indicator", "kind", "value", "k", "n", "test",
                 "reliability", "weight", "package", "source", "note"):
        if name in ledger:
            values = ledger[name].values
            frame[name] = values.astype(float) if values.dtype.kind == "f" else values.astype(str)
    if "log_likelihood" in result.children and "rows" in result["log_likelihood"].data_vars:
        rows = result["log_likelihood"]["rows"]
        mean = rows.mean(("chain", "draw")).to_series()
        sd = rows.std(("chain", "draw")).to_series()
        frame["loglik_mean"] = frame["evidence"].map(mean).astype(float)
        frame["loglik_sd"] = frame["evidence"].map(sd).astype(float)
    else:
        frame["loglik_mean"] = np.nan
        frame["loglik_sd"] = np.nan
    rank = {t: i for i, t in enumerate(fw["tiers"])}
    targets = list(fw["channels"]) + list(fw["constraints"])
    position = {t: i for i, t in enumerate(targets)}
    frame["_tier"] = frame["tier"].map(rank).fillna(len(rank))
    frame["_target"] = frame["target"].map(position).fillna(len(position))
    frame["_file"] = np.arange(len(frame))
    frame = frame.sort_values(["_tier", "_target", "_file"]).drop(columns=["_tier", "_target", "_file"])
    frame = frame.reset_index(drop=True)
    frame.attrs = {"title": "Evidence ledger: every evidence row used, with its pointwise log-likelihood "
                            "contribution (weighted, posterior mean)",
                   "provenance": provenance(result)}
    return frame


def report_tables(
    result: xr.DataTree,
    *,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> dict[str, pd.DataFrame]:
    """Every table of a report, keyed by file stem (see :data:`TABLES`), as numeric DataFrames."""
    check_options(ci_kind, ci_prob, threshold)
    return {
        "channels": channel_table(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob),
        "propositions": proposition_table(result, threshold=threshold),
        "constraints": constraint_table(result, ci_kind=ci_kind, ci_prob=ci_prob),
        "constraint-effects": constraint_effect_table(result, ci_kind=ci_kind, ci_prob=ci_prob),
        "evidence": evidence_table(result),
    }


# --------------------------------------------------------------------------------------------
# Number formatting: one rounding for every table and format
# --------------------------------------------------------------------------------------------

MISSING = "–"


def fmt_number(x: float, digits: int = DIGITS, *, signed: bool = False) -> str:
    """``x`` rounded to ``digits`` decimals; never ``-0.00``; NaN as an en dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    x = float(x)
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    if float(text) == 0:
        text = f"{0:.{digits}f}"
    return text


def fmt_probability(p: float, digits: int = DIGITS) -> str:
    """A probability rounded to ``digits`` decimals, but never shown as 0 or 1 unless it is exactly
    that: 0.003 becomes ``<0.01`` and 0.998 becomes ``>0.99`` (with two digits)."""
    if p is None or math.isnan(float(p)):
        return MISSING
    p = float(p)
    step = 10.0 ** -digits
    if 0 < p < step / 2:
        return f"<{step:.{digits}f}"
    if 1 - step / 2 <= p < 1:
        return f">{1 - step:.{digits}f}"
    return fmt_number(p, digits)


def fmt_interval(lower: float, upper: float, digits: int = DIGITS) -> str:
    return f"[{fmt_number(lower, digits)}, {fmt_number(upper, digits)}]"


def _round_frame(table: pd.DataFrame, digits: int) -> pd.DataFrame:
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    out.attrs = dict(table.attrs)
    return out


# --------------------------------------------------------------------------------------------
# Layouts: what each table looks like in a paper (headers, alignment, spanners, notes)
# --------------------------------------------------------------------------------------------

@dataclass
class Layout:
    """A table ready to render: cells as text, headers, alignment, spanners and notes."""

    name: str
    title: str
    cells: pd.DataFrame  # str cells; columns are internal keys
    headers: dict[str, str]
    align: dict[str, str]  # "l" or "r"
    notes: list[str]
    spanners: list[tuple[str, list[str]]] = field(default_factory=list)
    wrap: dict[str, str] = field(default_factory=dict)  # column -> LaTeX width, e.g. "6cm"
    code: tuple[str, ...] = ()  # columns shown as code (queries)


def _interval_sentence(ci_kind: str, ci_prob: float) -> str:
    return (f"Intervals: {ci_prob * 100:g}% {INTERVAL_KINDS.get(ci_kind, ci_kind)} credible intervals "
            f"({interval_label(ci_kind, ci_prob)}) of the posterior.")


def footnote_lines(prov: Mapping, *, digits: int = DIGITS) -> list[str]:
    """The provenance footnote of a table, as sentences."""
    hashes = ", ".join(f"{role} {digest}" for role, digest in
                       sorted(((k.removeprefix("sha256_"), v) for k, v in prov.items() if k.startswith("sha256_")),
                              key=lambda kv: ["evidence", "sources", "framework", "priors"].index(kv[0])
                              if kv[0] in ("evidence", "sources", "framework", "priors") else 9))
    rows = prov.get("evidence_rows")
    lines = [
        f"Prior set: {prov.get('prior_set')}. Evidence as of {prov.get('as_of')}"
        + (f" ({rows} rows)" if rows not in (None, "") else "") + "."
        + (f" Input files (SHA-256, first 12 hex digits): {hashes}." if hashes else ""),
        f"Sampling: seed {prov.get('seed')}, {prov.get('draws')} draws × {prov.get('chains')} chains"
        + (f" ({prov.get('sampler')})" if prov.get("sampler") else "")
        + f"; max R-hat {float(prov.get('max_rhat', float('nan'))):.3f}, min bulk ESS {_int_text(prov.get('min_ess_bulk'))}, "
        f"{prov.get('divergences')} divergences"
        + ("; convergence checks passed." if prov.get("converged") else "; CONVERGENCE CHECKS FAILED: do not publish these numbers.")
        + f" bayescpec {prov.get('bayescpec_version')}.",
    ]
    if prov.get("per_prior_set"):
        lines.append("Per prior set: " + "; ".join(prov["per_prior_set"]) + ".")
    step = 10.0 ** -digits
    lines.append(f"All numbers rounded to {digits} decimals; probabilities that would round to 0 or 1 without "
                 f"being exactly 0 or 1 are shown as <{step:.{digits}f} or >{1 - step:.{digits}f}.")
    return lines


def _int_text(value) -> str:
    try:
        return f"{float(value):.0f}"
    except (TypeError, ValueError):
        return str(value)


def _layout(name: str, table: pd.DataFrame, *, digits: int, ci_kind: str, ci_prob: float,
            threshold: float) -> Layout:
    label = interval_label(ci_kind, ci_prob)
    prov = table.attrs.get("provenance", {})
    notes: list[str] = []
    num = lambda col: [fmt_number(v, digits) for v in table[col]]  # noqa: E731
    prob = lambda col: [fmt_probability(v, digits) for v in table[col]]  # noqa: E731
    interval = lambda: [fmt_interval(lo, hi, digits) for lo, hi in  # noqa: E731
                        zip(table[f"{label} lower"], table[f"{label} upper"])]
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
    if name == "channels":
        tiers = [c for c in table.columns if c.startswith("rows_")]
        cells = pd.DataFrame({
            "channel": table["channel"].astype(str),
            "prior_mean": num("prior_mean"),
            "posterior_mean": num("posterior_mean"),
            "posterior_sd": num("posterior_sd"),
            "interval": interval(),
            "p_converting": prob("p_converting"),
            "likelihood": table["likelihood"].astype(str),
            **{c: table[c].astype(int).astype(str) for c in tiers},
        })
        headers = {"channel": "Channel", "prior_mean": "Prior mean θ", "posterior_mean": "Posterior mean θ",
                   "posterior_sd": "Posterior sd", "interval": label, "p_converting": f"P(θ > {threshold:g})",
                   "likelihood": "IPCC likelihood", **{c: c.removeprefix("rows_") for c in tiers}}
        spanners = [("Posterior θ", ["posterior_mean", "posterior_sd", "interval"]),
                    ("Converting", ["p_converting", "likelihood"])]
        if tiers:
            spanners.append(("Evidence rows per tier", tiers))
        title = f"Conversion probability θ per channel; P(converting) = P(θ > τ), τ = {threshold:g}"
        notes.append(_interval_sentence(ci_kind, ci_prob) + f" P(converting) is the posterior probability that θ > τ = {threshold:g}; "
                     "IPCC likelihood terms after Mastrandrea et al. (2010).")
        notes.append("Channels: " + "; ".join(f"{c} = {lab}" for c, lab in zip(table["channel"], table["label"])) + ".")
    elif name == "propositions":
        cells = pd.DataFrame({
            "proposition": table["proposition"].astype(str),
            "statement": table["statement"].astype(str),
            "query": table["query"].astype(str),
            "prior_probability": prob("prior_probability"),
            "posterior_probability": prob("posterior_probability"),
            "change": [fmt_number(v, digits, signed=True) for v in table["change"]],
            "likelihood": table["likelihood"].astype(str),
        })
        headers = {"proposition": "", "statement": "Statement", "query": "Query", "prior_probability": "Prior P",
                   "posterior_probability": "Posterior P", "change": "Change", "likelihood": "IPCC likelihood"}
        wrap = {"statement": "7cm", "query": "3.6cm"}
        code = ("query",)
        title = f"Propositions P1–P4: prior and posterior probability (τ = {threshold:g})"
        notes.append(f"Probabilities are shares of prior and posterior draws satisfying the query; τ = {threshold:g}. "
                     "Change = posterior − prior.")
    elif name == "constraints":
        if len(table) == 0:
            cells = pd.DataFrame({"constraint": []})
            headers = {"constraint": "Constraint"}
        else:
            cells = pd.DataFrame({
                "constraint": table["constraint"].astype(str),
                "binds": table["binds"].astype(str),
                "prior_mean": num("prior_mean"),
                "posterior_mean": num("posterior_mean"),
                "posterior_sd": num("posterior_sd"),
                "interval": interval(),
                "p_binding": prob("p_binding"),
                "rows_context": table["rows_context"].astype(int).astype(str),
            })
            headers = {"constraint": "Constraint", "binds": "Binds channels", "prior_mean": "Prior mean",
                       "posterior_mean": "Posterior mean", "posterior_sd": "Posterior sd", "interval": label,
                       "p_binding": "P(severity > 0)", "rows_context": "Context rows"}
            spanners = [("Posterior severity", ["posterior_mean", "posterior_sd", "interval", "p_binding"])]
            wrap = {"binds": "3.2cm"}
        title = "Constraint severity (logit scale; 0 = typical, > 0 = more binding than typical)"
        notes.append(_interval_sentence(ci_kind, ci_prob))
    elif name == "constraint-effects":
        cells = pd.DataFrame({
            "constraint": table["constraint"].astype(str),
            "channel": table["channel"].astype(str),
            "loading_mean": num("loading_mean"),
            "prior_reduction_mean": num("prior_reduction_mean"),
            "reduction_mean": num("reduction_mean"),
            "interval": interval(),
            "p_reduces": prob("p_reduces"),
        })
        headers = {"constraint": "Constraint", "channel": "Channel", "loading_mean": "Loading",
                   "prior_reduction_mean": "Prior mean", "reduction_mean": "Posterior mean",
                   "interval": label, "p_reduces": "P(reduction > 0)"}
        spanners = [("Reduction of θ", ["prior_reduction_mean", "reduction_mean", "interval", "p_reduces"])]
        title = "Constraint effects: reduction of each linked channel's conversion probability θ"
        notes.append("Reduction = θ without the constraint − θ with it, per draw: sigmoid(logit(base θ) − "
                     "constraint effect + loading × severity) − θ; on the probability scale (0.10 = 10 percentage "
                     "points). Loading: posterior mean, logit scale. " + _interval_sentence(ci_kind, ci_prob))
    elif name == "evidence":
        def observation(row) -> str:
            if row["kind"] == "count":
                return f"{_int_text(row['k'])}/{_int_text(row['n'])}"
            if row["kind"] == "signal":
                return _int_text(row["value"])
            return f"{row['value']:g}"

        cells = pd.DataFrame({
            "evidence": table["evidence"].astype(str),
            "observed": table["observed"].astype(str),
            "tier": table["tier"].astype(str),
            "target": table["target"].astype(str),
            "indicator": table["indicator"].astype(str),
            "observation": [f"{kind} {observation(row)}" for kind, (_, row) in zip(table["kind"], table.iterrows())],
            "test": table["test"].astype(str),
            "reliability": num("reliability"),
            "weight": num("weight"),
            "source": table["source"].astype(str),
            "loglik_mean": num("loglik_mean"),
        })
        headers = {"evidence": "Row", "observed": "Observed", "tier": "Tier", "target": "Target",
                   "indicator": "Indicator", "observation": "Observation", "test": "Test",
                   "reliability": "Reliability", "weight": "Weight", "source": "Source key",
                   "loglik_mean": "Log-lik."}
        title = "Evidence ledger: every evidence row used, with its log-likelihood contribution"
        notes.append("Log-lik.: the row's weighted pointwise log-likelihood, posterior mean (package rows share "
                     "one unit of weight). Observation: signal 1/0, count k/n, or a measured value. The notes of "
                     "each row are in the CSV export.")
    elif name == "prior-comparison":
        sets = table.attrs["prior_sets"]
        data = {"channel": table["channel"].astype(str)}
        headers = {"channel": "Channel"}
        for ps in sets:
            data[f"{ps}:p"] = prob(f"{ps} p_converting")
            data[f"{ps}:interval"] = [fmt_interval(lo, hi, digits) for lo, hi in
                                      zip(table[f"{ps} {label} lower"], table[f"{ps} {label} upper"])]
            data[f"{ps}:likelihood"] = table[f"{ps} likelihood"].astype(str)
            headers.update({f"{ps}:p": f"P(θ > {threshold:g})", f"{ps}:interval": label,
                            f"{ps}:likelihood": "IPCC term"})
            spanners.append((ps, [f"{ps}:p", f"{ps}:interval", f"{ps}:likelihood"]))
        data["changes"] = ["yes" if flag else "no" for flag in table["likelihood_changes"]]
        headers["changes"] = "Term changes"
        cells = pd.DataFrame(data)
        title = f"Prior sensitivity: P(converting) = P(θ > {threshold:g}) per channel under each prior set"
        changed = [c for c, flag in zip(table["channel"], table["likelihood_changes"]) if flag]
        notes.append("The same evidence fitted under each prior set. " + _interval_sentence(ci_kind, ci_prob)
                     + " 'Term changes' flags channels whose IPCC likelihood term differs between prior sets"
                     + (f": {', '.join(changed)}." if changed else "; none does."))
    elif name == "prior-comparison-propositions":
        sets = table.attrs["prior_sets"]
        data = {"proposition": table["proposition"].astype(str), "query": table["query"].astype(str)}
        headers = {"proposition": "", "query": "Query"}
        for ps in sets:
            data[f"{ps}:p"] = prob(f"{ps} posterior_probability")
            data[f"{ps}:likelihood"] = table[f"{ps} likelihood"].astype(str)
            headers.update({f"{ps}:p": "Posterior P", f"{ps}:likelihood": "IPCC term"})
            spanners.append((ps, [f"{ps}:p", f"{ps}:likelihood"]))
        data["changes"] = ["yes" if flag else "no" for flag in table["likelihood_changes"]]
        headers["changes"] = "Term changes"
        cells = pd.DataFrame(data)
        code = ("query",)
        wrap = {"query": "3.4cm"}
        title = f"Prior sensitivity of the propositions: posterior probability under each prior set (τ = {threshold:g})"
        changed = [p for p, flag in zip(table["proposition"], table["likelihood_changes"]) if flag]
        notes.append("The same evidence fitted under each prior set. 'Term changes' flags propositions whose IPCC "
                     "likelihood term differs between prior sets" + (f": {', '.join(changed)}." if changed else "; none does."))
    else:
        raise InputError(f"table: unknown table {name!r}; allowed: "
                         f"{', '.join(TABLES + ('prior-comparison', 'prior-comparison-propositions'))}")
    align = {c: ("l" if c in ("channel", "constraint", "proposition", "statement", "query", "likelihood", "binds",
                              "evidence", "observed", "tier", "target", "indicator", "observation", "test",
                              "source", "changes") or c.endswith(":likelihood") else "r") for c in cells.columns}
    notes += footnote_lines(prov, digits=digits)
    return Layout(name=name, title=title, cells=cells.reset_index(drop=True), headers=headers, align=align,
                  notes=notes, spanners=spanners, wrap=wrap, code=code)


# --------------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"$\backslash$", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"$\sim$", "^": r"\^{}", "<": r"$<$", ">": r"$>$", "|": r"$|$",
    "θ": r"$\theta$", "τ": r"$\tau$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "−": r"$-$",
    "±": r"$\pm$", "–": "--", "—": "---", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''",
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


def render_markdown(layout: Layout) -> str:
    cols = list(layout.cells.columns)
    lines = [f"**Table: {layout.title}**", ""]
    head = []
    for c in cols:
        span = next((s for s, members in layout.spanners if c in members), None)
        head.append(_md_cell(f"{span}: {layout.headers[c]}" if span and layout.name == "prior-comparison"
                             else layout.headers[c]))
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
    if long:
        span = len(cols)
        out += [
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


def render_html(layout: Layout) -> str:
    """A complete HTML page with the table made by great_tables (header, spanners, source notes)."""
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
    gt = gt.tab_options(table_font_size="13px", source_notes_font_size="11px")
    return gt.as_raw_html(make_page=True)


def _write_csv(table: pd.DataFrame, path: Path, *, digits: int, layout: Layout) -> None:
    rounded = _round_frame(table, digits)
    lines = [f"# {layout.title}"] + [f"# {note}" for note in layout.notes]
    lines += [f"# {key}: {value}" for key, value in table.attrs.get("provenance", {}).items()
              if key != "per_prior_set"]
    text = "\n".join(lines) + "\n" + rounded.to_csv(index=False, lineterminator="\n")
    path.write_text(text, encoding="utf-8")


def render_table(
    table: pd.DataFrame,
    *,
    name: str,
    format: str,
    digits: int = DIGITS,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> str:
    """One table (from :func:`report_tables`) as text in ``format`` (csv, md, latex or html)."""
    _check_format(format)
    layout = _layout(name, table, digits=digits, ci_kind=ci_kind, ci_prob=ci_prob, threshold=threshold)
    if format == "md":
        return render_markdown(layout)
    if format == "latex":
        return render_latex(layout)
    if format == "html":
        return render_html(layout)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        _write_csv(table, path, digits=digits, layout=layout)
        return path.read_text(encoding="utf-8")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise InputError(f"--format: unknown format {format!r}; allowed: {', '.join(FORMATS)}")


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """Validate export formats ("all" means every format); keep their order, drop repeats."""
    formats = tuple(formats)
    if not formats:
        raise InputError(f"--format: give at least one of {', '.join(FORMATS)} (or all)")
    if "all" in formats:
        return tuple(FORMATS)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"--format: unknown format {', '.join(map(repr, bad))}; allowed: {', '.join(FORMATS)}, all")
    return tuple(dict.fromkeys(formats))


def check_digits(digits: int) -> int:
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or not 0 <= digits <= 6:
        raise InputError(f"--digits: must be an integer from 0 to 6; found {digits!r}")
    return int(digits)


def write_tables(
    tables: Mapping[str, pd.DataFrame],
    folder: Path,
    *,
    formats: Sequence[str],
    digits: int,
    threshold: float,
    ci_kind: str,
    ci_prob: float,
) -> list[Path]:
    """Write each table in each format into ``folder`` (which must exist); return the paths."""
    written = []
    for name, table in tables.items():
        layout = _layout(name, table, digits=digits, ci_kind=ci_kind, ci_prob=ci_prob, threshold=threshold)
        for fmt in formats:
            path = folder / f"{name}{FORMATS[fmt]}"
            if fmt == "csv":
                _write_csv(table, path, digits=digits, layout=layout)
            elif fmt == "md":
                path.write_text(render_markdown(layout), encoding="utf-8")
            elif fmt == "latex":
                path.write_text(render_latex(layout), encoding="utf-8")
            else:
                path.write_text(render_html(layout), encoding="utf-8")
            written.append(path)
    return written


def staged_output(out: Path):
    """A temporary folder beside ``out`` to write into, moved into ``out`` only on success."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging."))


def publish(staging: Path, out: Path, written: Sequence[Path]) -> list[Path]:
    from .results import publish_directory

    publish_directory(staging, Path(out))
    return [Path(out) / p.name for p in written]


def export_tables(
    result: xr.DataTree,
    *,
    out: str | Path,
    formats: Sequence[str] = tuple(FORMATS),
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
    digits: int = DIGITS,
) -> list[Path]:
    """Write every report table (:data:`TABLES`) of ``result`` in each of ``formats`` into ``out``;
    return the paths. Nothing is written unless all of them are (staged, then moved)."""
    formats = check_formats(formats)
    digits = check_digits(digits)
    try:
        check_options(ci_kind, ci_prob, threshold)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    tables = report_tables(result, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob)
    staging = staged_output(Path(out))
    try:
        written = write_tables(tables, staging, formats=formats, digits=digits, threshold=threshold,
                               ci_kind=ci_kind, ci_prob=ci_prob)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    return publish(staging, Path(out), written)
