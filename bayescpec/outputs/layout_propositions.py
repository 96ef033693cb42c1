"""Layouts of the proposition tables: the propositions with their parts and conditionals, and their
comparison across prior sets.

Registered into :data:`bayescpec.outputs.layout.LAYOUTS` on import (the exporters import this module).
"""

from __future__ import annotations

import pandas as pd

from .layout import LAYOUTS, _Context, _mcse_notes, _Parts, _words, fmt_number
from .summary import WITHIN_NOISE

__all__ = ["PROPOSITION_LAYOUTS"]


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


PROPOSITION_LAYOUTS = {"propositions": _propositions, "prior-comparison-propositions": _prior_comparison_propositions}
LAYOUTS.update(PROPOSITION_LAYOUTS)
