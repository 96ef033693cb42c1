"""Layouts: what each table looks like in a paper -- cells as text, headers, alignment, spanners, notes.

One rounding for every table and format (:func:`fmt_number`, :func:`fmt_probability`), a provenance
footnote for every table (:func:`footnote_lines`), and one layout function per table, registered in
:data:`LAYOUTS`. The renderers (:mod:`bayescpec.outputs.render`) turn a :class:`Layout` into CSV,
Markdown, LaTeX or HTML without knowing which table it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import InputError
from .formatting import (DIGITS, INTERVAL_KINDS, MISSING, PRIOR_ONLY_NOTE, _interval_sentence, _int_text,  # noqa: F401
                         _is_prior_only, banner_text, fmt_interval, fmt_number, fmt_probability, footnote_lines,
                         gate_figures, round_frame)
from .summary import WITHIN_NOISE, interval_label

__all__ = ["DIGITS", "MISSING", "Layout", "LAYOUTS", "layout", "fmt_number", "fmt_probability", "fmt_interval",
           "footnote_lines", "round_frame", "banner_text", "PRIOR_ONLY_NOTE"]

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
    banner: str = ""  # shown above the table in every format (a failed fit); "" for none



class _Parts(NamedTuple):
    """What a table's layout function returns; :func:`layout` adds alignment and the footnote."""

    title: str
    cells: pd.DataFrame
    headers: dict[str, str]
    notes: list[str]
    spanners: list[tuple[str, list[str]]]
    wrap: dict[str, str]
    code: tuple[str, ...]


@dataclass(frozen=True)
class _Context:
    """A table and the options every layout needs: its numbers as text, one rounding for all."""

    table: pd.DataFrame
    digits: int
    ci_kind: str
    ci_prob: float
    threshold: float

    @property
    def label(self) -> str:
        return interval_label(self.ci_kind, self.ci_prob)

    def num(self, column: str) -> list[str]:
        return [fmt_number(v, self.digits) for v in self.table[column]]

    def prob(self, column: str) -> list[str]:
        return [fmt_probability(v, self.digits) for v in self.table[column]]

    def mcse(self, column: str) -> list[str]:
        """An MCSE as text: three decimals (one more than a probability), '<0.001' when smaller."""
        return ["–" if not np.isfinite(v) else ("<0.001" if v < 0.0005 else f"{v:.3f}") for v in self.table[column]]

    def interval(self) -> list[str]:
        return [fmt_interval(lo, hi, self.digits) for lo, hi in
                zip(self.table[f"{self.label} lower"], self.table[f"{self.label} upper"])]


def _channels(ctx: _Context) -> _Parts:
    table, threshold, label, ci_kind, ci_prob = ctx.table, ctx.threshold, ctx.label, ctx.ci_kind, ctx.ci_prob
    notes: list[str] = []
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
    tiers = [c for c in table.columns if c.startswith("rows_")]
    cells = pd.DataFrame({
        "channel": table["channel"].astype(str),
        "prior_mean": ctx.num("prior_mean"),
        "posterior_mean": ctx.num("posterior_mean"),
        "posterior_sd": ctx.num("posterior_sd"),
        "interval": ctx.interval(),
        **({"prior_p_converting": ctx.prob("prior_p_converting")} if "prior_p_converting" in table.columns else {}),
        "p_converting": ctx.prob("p_converting"),
        **({"p_converting_mcse": ctx.mcse("p_converting_mcse")} if "p_converting_mcse" in table.columns else {}),
        "likelihood": _words(table),
        **{c: table[c].astype(int).astype(str) for c in tiers},
    })
    headers = {"channel": "Channel", "prior_mean": "Prior mean θ", "posterior_mean": "Posterior mean θ",
               "posterior_sd": "Posterior sd", "interval": label, "prior_p_converting": f"Prior P(θ > {threshold:g})",
               "p_converting": f"P(θ > {threshold:g})", "p_converting_mcse": "MCSE", "likelihood": "IPCC likelihood",
               **{c: c.removeprefix("rows_") for c in tiers}}
    spanners = [("Posterior θ", ["posterior_mean", "posterior_sd", "interval"]),
                ("Converting", [c for c in ("prior_p_converting", "p_converting", "p_converting_mcse", "likelihood")
                                if c in cells.columns])]
    if tiers:
        spanners.append(("Evidence rows per tier", tiers))
    title = f"Conversion probability θ per channel; P(converting) = P(θ > τ), τ = {threshold:g}"
    notes.append(_interval_sentence(ci_kind, ci_prob) + f" P(converting) is the posterior probability that θ > τ = {threshold:g}; "
                 "prior P(θ > τ) is the same probability under the prior set alone, before the evidence -- not the "
                 "prior mean of θ, which is a different number. IPCC likelihood terms after Mastrandrea et al. (2010).")
    notes.append("Channels: " + "; ".join(f"{c} = {lab}" for c, lab in zip(table["channel"], table["label"])) + ".")
    notes += _mcse_notes(table, "posterior_mean_mcse", "posterior mean of θ")
    return _Parts(title, cells, headers, notes, spanners, wrap, code)


#: the mark of an IPCC word whose probability lies within 2 MCSE of a boundary of the scale
NEAR_BOUNDARY_MARK = "≈"


def _words(table: pd.DataFrame) -> list[str]:
    near = table["likelihood_near_boundary"] if "likelihood_near_boundary" in table.columns else [False] * len(table)
    return [f"{w} {NEAR_BOUNDARY_MARK}" if flag else str(w) for w, flag in zip(table["likelihood"], near)]


def _mcse_notes(table: pd.DataFrame, mean_column: str | None, what: str) -> list[str]:
    notes = []
    if mean_column and mean_column in table.columns and len(table):
        notes.append(f"Monte Carlo standard error (MCSE) of the {what}: at most {float(table[mean_column].max()):.3f}. "
                     "MCSE: the Monte Carlo error of a probability, from the draws' autocorrelation.")
    if "likelihood_near_boundary" in table.columns and table["likelihood_near_boundary"].any():
        notes.append(f"{NEAR_BOUNDARY_MARK}: the probability lies within 2 MCSE of a boundary of the IPCC scale; its "
                     "word could change with more draws (sample more before quoting it).")
    return notes


def _propositions(ctx: _Context) -> _Parts:
    table, digits, threshold = ctx.table, ctx.digits, ctx.threshold
    notes: list[str] = []
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
    part_of = table["part_of"].astype(str) if "part_of" in table.columns else pd.Series("", index=table.index)
    conditional = ("condition_probability" in table.columns and table["condition_probability"].notna().any())
    cells = pd.DataFrame({
        "proposition": [f"· {p.split('/', 1)[1]}" if parent else p
                        for p, parent in zip(table["proposition"].astype(str), part_of)],
        "statement": table["statement"].astype(str),
        "query": table["query"].astype(str),
        "prior_probability": ctx.prob("prior_probability"),
        "posterior_probability": ctx.prob("posterior_probability"),
        **({"condition_probability": [("" if pd.isna(v) else f"{fmt_number(v, digits)} ({int(n)} draws)")
                                      for v, n in zip(table["condition_probability"], table["condition_draws"])]}
           if conditional else {}),
        **({"posterior_probability_mcse": ctx.mcse("posterior_probability_mcse")}
           if "posterior_probability_mcse" in table.columns else {}),
        "change": [WITHIN_NOISE if noise else fmt_number(round(b, digits) - round(a, digits), digits, signed=True)
                   for a, b, noise in zip(table["prior_probability"], table["posterior_probability"],  # as shown
                                          table.get("change_within_noise", pd.Series(False, index=table.index)))],
        "likelihood": _words(table),
    })
    headers = {"proposition": "", "statement": "Statement", "query": "Query", "prior_probability": "Prior P",
               "posterior_probability": "Posterior P", "posterior_probability_mcse": "MCSE", "change": "Change",
               "likelihood": "IPCC likelihood", "condition_probability": "P(condition)"}
    wrap = {"statement": "7cm", "query": "3.6cm"}
    code = ("query",)
    delta = table.attrs.get("delta")
    title = (f"Propositions: prior and posterior probability (τ = {threshold:g}"
             + (f", δ = {delta:g})" if delta is not None else ")"))
    notes.append(f"Probabilities are shares of prior and posterior draws satisfying the query; τ = {threshold:g}"
                 + (f", δ = {delta:g} (materiality)" if delta is not None else "") + ". Change = posterior − prior"
                 + (f" ({WITHIN_NOISE}: within 2 Monte Carlo standard errors of no change)."
                    if "change_within_noise" in table.columns and table["change_within_noise"].any() else "."))
    if part_of.ne("").any():
        notes.append("Rows marked · are parts of the proposition above them, each with its own probability.")
    if conditional:
        notes.append("A conditional proposition (B given A) reports P(B | A) = P(A and B) / P(A); P(condition) is "
                     "the posterior P(A), with the number of posterior draws in A.")
    if "reading" in table.columns:
        notes += [f"{p}: {r}" for p, r in zip(table["proposition"], table["reading"]) if r]
    notes += _mcse_notes(table, None, "") + list(table.attrs.get("assumption_notes", []))
    return _Parts(title, cells, headers, notes, spanners, wrap, code)


def _constraints(ctx: _Context) -> _Parts:
    table, label, ci_kind, ci_prob = ctx.table, ctx.label, ctx.ci_kind, ctx.ci_prob
    notes: list[str] = []
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
    if len(table) == 0:
        cells = pd.DataFrame({"constraint": []})
        headers = {"constraint": "Constraint"}
    else:
        cells = pd.DataFrame({
            "constraint": (table["label"] if "label" in table.columns else table["constraint"]).astype(str),
            "binds": table["binds"].astype(str),
            **({"loops": table["loops"].astype(str)} if "loops" in table.columns and table["loops"].astype(bool).any()
               else {}),
            "prior_mean": ctx.num("prior_mean"),
            "posterior_mean": ctx.num("posterior_mean"),
            "posterior_sd": ctx.num("posterior_sd"),
            "interval": ctx.interval(),
            "p_binding": ctx.prob("p_binding"),
            "rows_context": table["rows_context"].astype(int).astype(str),
        })
        headers = {"constraint": "Constraint", "binds": "Binds channels (stage)", "loops": "Feedback loop",
                   "prior_mean": "Prior mean",
                   "posterior_mean": "Posterior mean", "posterior_sd": "Posterior sd", "interval": label,
                   "p_binding": "P(severity > 0)", "rows_context": "Context rows"}
        spanners = [("Posterior severity", ["posterior_mean", "posterior_sd", "interval", "p_binding"])]
        wrap = {"constraint": "4.2cm", "binds": "3.2cm"}
    title = "Constraint severity (logit scale; 0 = typical, > 0 = more binding than typical)"
    notes.append(_interval_sentence(ci_kind, ci_prob))
    return _Parts(title, cells, headers, notes, spanners, wrap, code)


def _constraint_effects(ctx: _Context) -> _Parts:
    table, label, ci_kind, ci_prob = ctx.table, ctx.label, ctx.ci_kind, ctx.ci_prob
    notes: list[str] = []
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
    delta = table.attrs.get("delta", 0.05)
    optional = [c for c in ("stage", "p_loading_positive", "p_material") if c in table.columns]
    names = table.attrs.get("constraint_labels", {})  # ids stay in the table (and the CSV); papers show labels
    cells = pd.DataFrame({
        "constraint": [str(names.get(k, k)) for k in table["constraint"]],
        "channel": table["channel"].astype(str),
        **({"stage": table["stage"].astype(str)} if "stage" in optional else {}),
        "loading_mean": ctx.num("loading_mean"),
        **({"p_loading_positive": ctx.prob("p_loading_positive")} if "p_loading_positive" in optional else {}),
        "prior_reduction_mean": ctx.num("prior_reduction_mean"),
        "reduction_mean": ctx.num("reduction_mean"),
        "interval": ctx.interval(),
        "p_reduces": ctx.prob("p_reduces"),
        **({"p_material": ctx.prob("p_material")} if "p_material" in optional else {}),
    })
    headers = {"constraint": "Constraint", "channel": "Channel", "stage": "Stage", "loading_mean": "Loading",
               "p_loading_positive": "P(loading > 0)", "prior_reduction_mean": "Prior mean",
               "reduction_mean": "Posterior mean", "interval": label, "p_reduces": "P(reduction > 0)",
               "p_material": f"P(reduction > {delta:g})"}
    spanners = [("Reduction of θ", [c for c in ("prior_reduction_mean", "reduction_mean", "interval", "p_reduces",
                                                "p_material") if c in cells.columns])]
    wrap = {"constraint": "4.2cm"}
    title = "Constraint effects: reduction of each linked channel's conversion probability θ"
    notes.append("Reduction = θ with the constraint's severity at typical (0) − θ with its estimated severity, per "
                 "draw, where the constraint acts on the stage shown; on the probability scale (0.10 = 10 percentage "
                 "points). Loading: posterior mean (logit scale of the stage, per unit of severity); loadings are "
                 "signed, so P(loading > 0) says how sure the evidence is that the constraint interrupts at all. "
                 + _interval_sentence(ci_kind, ci_prob))
    notes += list(table.attrs.get("assumption_notes", []))
    return _Parts(title, cells, headers, notes, spanners, wrap, code)


def _evidence(ctx: _Context) -> _Parts:
    table = ctx.table
    notes: list[str] = []
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
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
        "target": [t + (f"/{u}" if u else "") for t, u in
                   zip(table["target"].astype(str), table.get("unit", pd.Series("", index=table.index)).astype(str))],
        "stage": table.get("stage", pd.Series("", index=table.index)).astype(str),
        "indicator": table["indicator"].astype(str),
        "observation": [f"{kind} {observation(row)}" for kind, (_, row) in zip(table["kind"], table.iterrows())],
        "test": table["test"].astype(str),
        "reliability": ctx.num("reliability"),
        "weight": ctx.num("weight"),
        "source": table["source"].astype(str),
        "loglik_mean": ctx.num("loglik_mean"),
    })
    headers = {"evidence": "Row", "observed": "Observed", "tier": "Tier", "target": "Target", "stage": "Stage",
               "indicator": "Indicator", "observation": "Observation", "test": "Test",
               "reliability": "Reliability", "weight": "Weight", "source": "Source key",
               "loglik_mean": "Log-lik."}
    title = "Evidence ledger: every evidence row used, with its log-likelihood contribution"
    notes.append("Log-lik.: the row's weighted pointwise log-likelihood, posterior mean (package rows share "
                 "one unit of weight). Observation: signal 1/0, count k/n, or a measured value. The notes of "
                 "each row are in the CSV export.")
    return _Parts(title, cells, headers, notes, spanners, wrap, code)


def _prior_comparison(ctx: _Context) -> _Parts:
    table, digits, threshold, label, ci_kind, ci_prob = ctx.table, ctx.digits, ctx.threshold, ctx.label, ctx.ci_kind, ctx.ci_prob
    notes: list[str] = []
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
    sets = table.attrs["prior_sets"]
    data = {"channel": table["channel"].astype(str)}
    headers = {"channel": "Channel"}
    for ps in sets:
        data[f"{ps}:p"] = ctx.prob(f"{ps} p_converting")
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
    return _Parts(title, cells, headers, notes, spanners, wrap, code)


def _prior_comparison_propositions(ctx: _Context) -> _Parts:
    table, threshold = ctx.table, ctx.threshold
    notes: list[str] = []
    spanners: list[tuple[str, list[str]]] = []
    wrap: dict[str, str] = {}
    code: tuple[str, ...] = ()
    sets = table.attrs["prior_sets"]
    data = {"proposition": table["proposition"].astype(str), "query": table["query"].astype(str)}
    headers = {"proposition": "", "query": "Query"}
    for ps in sets:
        data[f"{ps}:p"] = ctx.prob(f"{ps} posterior_probability")
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
    return _Parts(title, cells, headers, notes, spanners, wrap, code)


#: the layout of each table, by the table's file stem
LAYOUTS: dict[str, Callable[[_Context], _Parts]] = {
    "channels": _channels,
    "propositions": _propositions,
    "constraints": _constraints,
    "constraint-effects": _constraint_effects,
    "evidence": _evidence,
    "prior-comparison": _prior_comparison,
    "prior-comparison-propositions": _prior_comparison_propositions,
}


#: columns aligned left in every table (text); every other column is a number, aligned right
_LEFT = {"channel", "constraint", "proposition", "statement", "query", "likelihood", "binds", "evidence", "observed",
         "tier", "target", "indicator", "observation", "test", "source", "changes", "stage", "loops", "dimension",
         "label", "measures", "unit", "gap", "note", "constraint_a", "constraint_b", "loop", "weakest"}


def layout(name: str, table: pd.DataFrame, *, digits: int, ci_kind: str, ci_prob: float, threshold: float) -> Layout:
    """The layout of table ``name`` (a key of :data:`LAYOUTS`), with its provenance footnote."""
    if name not in LAYOUTS:
        raise InputError(f"table: unknown table {name!r}; allowed: {', '.join(LAYOUTS)}")
    ctx = _Context(table, digits, ci_kind, ci_prob, threshold)
    title, cells, headers, notes, spanners, wrap, code = LAYOUTS[name](ctx)
    align = {c: "l" if c in _LEFT or c.endswith(":likelihood") else "r" for c in cells.columns}
    prov = table.attrs.get("provenance", {})
    notes = list(notes) + footnote_lines(prov, digits=digits)
    return Layout(name=name, title=title, cells=cells.reset_index(drop=True), headers=headers, align=align,
                  notes=notes, spanners=spanners, wrap=wrap, code=code, banner=banner_text(prov))
