"""Layouts of the analysis tables (explain, next, robustness, whatif), registered into
:data:`bayescpec.outputs.layout.LAYOUTS` on import, so every renderer (CSV, Markdown, LaTeX, HTML) and
the report page render them like any other table, with the result's provenance footnote.
"""

from __future__ import annotations

import math

import pandas as pd

from ..outputs import layout_chain  # noqa: F401  (the standard layouts first)
from ..outputs.layout import (_LEFT, LAYOUTS, NEAR_BOUNDARY_MARK, _Context, _interval_sentence, _Parts, fmt_number,
                              fmt_probability)

__all__ = ["ANALYSIS_LAYOUTS", "ANALYSIS_TABLES", "TIE_MARK", "rank_labels", "fmt_mcse"]

#: the analysis tables, by file stem
ANALYSIS_TABLES = ("explain-packages", "explain-rows", "next", "robustness", "power-scaling", "tipping-points",
                   "prior-sets", "propositions-without-loops", "whatif", "whatif-custom")


def _quantity(variable: str, name: str) -> str:
    return f"θ {name}" if variable == "theta" else f"severity {name}"


def _khat(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))) \
        else f"{value:.2f}"


def _influence(ctx: _Context, level: str) -> _Parts:
    table, digits = ctx.table, ctx.digits
    if not len(table):
        return _Parts(f"Influence of each evidence {level}", pd.DataFrame({"unit": []}), {"unit": level.title()},
                      ["The result has no evidence rows."], [], {}, ())
    signed = lambda col: [fmt_number(v, digits, signed=True) for v in table[col]]  # noqa: E731
    cells = pd.DataFrame({
        "unit": table["unit"].astype(str),
        **({"rows": table["rows"].astype(str)} if level == "package" else {}),
        "tier": table["tiers"].astype(str),
        "quantity": [_quantity(v, n) for v, n in zip(table["variable"], table["name"])],
        "mean_without": ctx.num("mean_without"), "mean_with": ctx.num("mean_with"),
        "shift_mean": signed("shift_mean"),
        "p_without": ctx.prob("p_without"), "p_with": ctx.prob("p_with"), "shift_p": signed("shift_p"),
        "woe_posterior_db": [fmt_number(v, 1, signed=True) for v in table["woe_posterior_db"]],
        "woe_prior_db": [fmt_number(v, 1, signed=True) for v in table["woe_prior_db"]],
        "direction": table["direction"].astype(str),
        "method": [f"{m} (k-hat {_khat(k)})" for m, k in zip(table["method"], table["khat"])],
    })
    headers = {"unit": "Package" if level == "package" else "Row", "rows": "Rows", "tier": "Tier",
               "quantity": "Quantity", "mean_without": "without", "mean_with": "with", "shift_mean": "shift",
               "p_without": "without", "p_with": "with", "shift_p": "shift", "woe_posterior_db": "at posterior",
               "woe_prior_db": "at prior", "direction": "Direction", "method": "Method"}
    spanners = [("Posterior mean", ["mean_without", "mean_with", "shift_mean"]),
                ("P(hypothesis)", ["p_without", "p_with", "shift_p"]),
                ("Weight of evidence (dB)", ["woe_posterior_db", "woe_prior_db"])]
    threshold = table.attrs.get("khat_threshold", 0.7)
    refits = sorted(set(table.loc[table["method"] == "refit", "unit"]))
    unreliable = sorted(set(table.loc[table["method"] == "psis (unreliable)", "unit"]))
    notes = [
        f"Each {level} left out in turn: the posterior without it by Pareto-smoothed importance sampling (PSIS) of "
        f"the posterior draws, trusted when k-hat < {threshold:.2f} = min(1 − 1/log10 S, 0.7); otherwise the model is "
        "refitted without it. Shift = with − without. Hypothesis: θ > τ for a channel (τ = "
        f"{ctx.threshold:g}), severity > 0 (binding) for a constraint. Direction: 'for' raises P(hypothesis).",
        "Weight of evidence in decibans (dB), 10 log10 of a likelihood ratio for the hypothesis: at the prior, "
        "E(L | H) / E(L | not H) over the prior draws (L: the evidence's weighted likelihood); at the posterior, "
        "posterior odds with the evidence over odds without it. 10 dB = a likelihood ratio of 10; 3 dB ≈ 2.",
        ("Refitted (k-hat too high): " + ", ".join(refits) + "." if refits else "No leave-out needed a refit.")
        + (" Not refitted although k-hat was too high (read with care): " + ", ".join(unreliable) + "."
           if unreliable else ""),
    ]
    if level == "row":
        notes.append("Leaving one row of an m-row package out gives the package's other rows their full weight "
                     "back (1/(m − 1) each), as a refit without the row would.")
    title = f"Influence of each evidence {level} on the quantities it affects (leave-one-{level}-out)"
    return _Parts(title, cells, headers, notes, spanners, {"unit": "3cm", "rows": "3cm"}, ())


#: the mark of a design tied with another (their sd reductions within 2 MCSE of the difference)
TIE_MARK = "="


def rank_labels(table: pd.DataFrame) -> list[str]:
    """Each design's rank, ``3=`` when it shares the rank with another (a tie within Monte Carlo error)."""
    tied = table["tied"] if "tied" in table.columns else pd.Series(False, index=table.index)
    return [f"{int(r)}{TIE_MARK}" if flag else str(int(r)) for r, flag in zip(table["rank"], tied)]


def _next(ctx: _Context) -> _Parts:
    table, digits = ctx.table, ctx.digits
    top = int(table.attrs.get("show_top", 0) or 0)
    order = "position" if "position" in table.columns else "rank"
    shown = table[table[order] <= top] if top and len(table) else table
    if not len(shown):
        return _Parts("Value of information", pd.DataFrame({"indicator": []}), {"indicator": "Indicator"},
                      ["No catalogue indicator to assess."], [], {}, ())
    near = shown["word_change_near_boundary"] if "word_change_near_boundary" in shown.columns else [False] * len(shown)
    mcse = lambda col: [fmt_mcse(v) for v in shown[col]] if col in shown.columns else ["–"] * len(shown)  # noqa: E731
    cells = pd.DataFrame({
        "rank": rank_labels(shown),
        "channel": shown["channel"].astype(str),
        "indicator": shown["indicator"].astype(str),
        "target": [t + (f" | {s}" if s else "") for t, s in zip(shown["target"], shown["stage"])],
        "tier": [t + (f" / {x}" if x else "") for t, x in zip(shown["tier"], shown["test"])],
        "kind": [k + (f" (n = {int(n)})" if k == "count" else "") for k, n in zip(shown["kind"], shown["n"])],
        "sd_now": [fmt_number(v, digits) for v in shown["sd_now"]],
        "expected_sd": [fmt_number(v, digits) for v in shown["expected_sd"]],
        "sd_reduction": [fmt_number(v, digits + 1) for v in shown["sd_reduction"]],
        "mcse_sd_reduction": mcse("mcse_sd_reduction"),
        "expected_abs_dp": [fmt_number(v, digits) for v in shown["expected_abs_dp"]],
        "p_word_change": [fmt_probability(v, digits) + (f" {NEAR_BOUNDARY_MARK}" if flag else "")
                          for v, flag in zip(shown["p_word_change"], near)],
        "mcse_word_change": mcse("mcse_word_change"),
        "p_unreliable": [fmt_probability(v, digits) if v > 0 else "0" for v in shown["p_unreliable"]],
    })
    headers = {"rank": "#", "channel": "Channel", "indicator": "Indicator", "target": "Target | stage",
               "tier": "Tier / test", "kind": "Kind", "sd_now": "now", "expected_sd": "expected",
               "sd_reduction": "reduction", "mcse_sd_reduction": "MCSE", "expected_abs_dp": "E|ΔP(θ > τ)|",
               "p_word_change": "P(word changes)", "mcse_word_change": "MCSE", "p_unreliable": "P(unreliable)"}
    spanners = [("Posterior sd of θ", ["sd_now", "expected_sd", "sd_reduction", "mcse_sd_reduction"]),
                ("Word of P(θ > τ)", ["p_word_change", "mcse_word_change"])]
    attrs = table.attrs
    notes = [
        "Preposterior analysis on the current draws: for each outcome of the new observation, its predictive "
        "probability (mean likelihood over the draws) and the posterior after it (the draws reweighted by its "
        "likelihood, Pareto-smoothed). Signals (2 outcomes) and counts (n + 1 outcomes) are enumerated; a "
        f"measure's outcomes by a deterministic quadrature over its predictive ({attrs.get('outcomes', '?')} "
        "nodes at its quantiles; nothing simulated). The new row is reliable "
        f"({attrs.get('reliability', 1):g}) and its own package. τ = {ctx.threshold:g}.",
        "P(word changes): probability that the IPCC likelihood word of P(θ > τ) changes. P(unreliable): predictive "
        "probability of outcomes whose importance weights have k-hat above the PSIS threshold (their posterior is "
        "less certain than shown). Ranked within each channel by the expected reduction of the posterior sd of θ.",
        f"MCSE: Monte Carlo standard error from the posterior draws themselves (batch means over "
        f"{attrs.get('batches', '?')} blocks of the draws). {TIE_MARK}: tied -- the design's sd reduction is within "
        "2 MCSE of the difference from the design ranked above it (taken block by block); tied designs share a "
        "rank, and their order is not meaningful.",
    ]
    if any(near):
        notes.append(f"{NEAR_BOUNDARY_MARK}: today's P(θ > τ), or the P after a likely outcome, lies within 2 MCSE "
                     "of a boundary of the IPCC scale, so P(word changes) can jump with another set of draws.")
    if top:
        notes.append(f"The top {top} designs per channel are shown; the CSV lists all {len(table)}.")
    return _Parts(ctx.table.attrs.get("title", "Value of information"), cells, headers, notes, spanners,
                  {"indicator": "3.2cm"}, ())


def fmt_mcse(value: float) -> str:
    """An MCSE as text: one significant digit more than a value rounded to 3 decimals needs."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return "<0.0001" if value < 0.00005 else f"{value:.4f}"


def _robustness(ctx: _Context) -> _Parts:
    table, digits = ctx.table, ctx.digits
    alphas = table.attrs.get("alphas", (0.8, 1.25))
    cells = pd.DataFrame({
        "channel": table["channel"].astype(str),
        "p_converting": [f"{fmt_probability(p, digits)} ± {fmt_number(m, digits + 1)}"
                         for p, m in zip(table["p_converting"], table["mcse_p"])],
        "likelihood": table["likelihood"].astype(str),
        "prior_sensitivity": ctx.num("prior_sensitivity"),
        "likelihood_sensitivity": ctx.num("likelihood_sensitivity"),
        "prior_scaled": [" / ".join(fmt_probability(r[f"p_prior_{a:g}"], digits) for a in alphas)
                         for _, r in table.iterrows()],
        "likelihood_scaled": [" / ".join(fmt_probability(r[f"p_likelihood_{a:g}"], digits) for a in alphas)
                              for _, r in table.iterrows()],
        "diagnosticity_factor": ["> 10" if math.isnan(v) else f"{v:g}" for v in table["diagnosticity_factor"]],
        "clues_down": table["clues_down"].astype(str), "clues_up": table["clues_up"].astype(str),
        **({"prior_sets": table["prior_sets"].astype(str)} if table["prior_sets"].astype(bool).any() else {}),
        "verdict": table["verdict"].astype(str), "why": table["why"].astype(str),
    })
    alpha_text = " / ".join(f"{a:g}" for a in alphas)
    headers = {"channel": "Channel", "p_converting": f"P(θ > {ctx.threshold:g}) ± MCSE", "likelihood": "IPCC word",
               "prior_sensitivity": "prior", "likelihood_sensitivity": "likelihood",
               "prior_scaled": f"prior ^{alpha_text}", "likelihood_scaled": f"likelihood ^{alpha_text}",
               "diagnosticity_factor": "Overstated ×", "clues_down": "Negative clues", "clues_up": "Positive clues",
               "prior_sets": "Prior sets", "verdict": "Verdict", "why": "Why"}
    spanners = [("Power-scaling sensitivity", ["prior_sensitivity", "likelihood_sensitivity"]),
                ("P(θ > τ) power-scaled", ["prior_scaled", "likelihood_scaled"]),
                ("Before the word changes", ["diagnosticity_factor", "clues_down", "clues_up"])]
    notes = [
        "Power-scaling sensitivity (Kallioinen et al. 2024, ArviZ psense) of θ: above 0.05 the prior (or the "
        "likelihood) is informative; prior above and likelihood below: the prior dominates. P(θ > τ) is recomputed "
        f"with the prior and with the likelihood raised to the power {alpha_text}.",
        "Overstated ×: the smallest factor by which every row's diagnosticity (log likelihood ratio) would have to "
        "be overstated for the IPCC word to change (> 10: not up to 10). Clues: how many fully reliable clues of "
        "each tier, negative or positive, before the word changes ('> n': not within n, or the reweighting stops "
        "being reliable there).",
        "Verdict: sensitive to prior (power-scaling flags the prior, or the word changes with the prior scaled or "
        "between prior sets), sensitive to likelihood (the word changes with the likelihood scaled, with "
        "diagnosticities overstated by ≤ 1.25, or after one clue of the weakest tier), both, or robust.",
    ]
    notes += [f"{c}: {n}" for c, n in zip(table["channel"], table["note"]) if n]
    return _Parts(table.attrs.get("title", "Robustness"), cells, headers, notes, spanners,
                  {"why": "5cm", "clues_down": "2.6cm", "clues_up": "2.6cm", "prior_sets": "3cm"}, ())


def _power_scaling(ctx: _Context) -> _Parts:
    table = ctx.table
    cells = pd.DataFrame({"quantity": table["quantity"].astype(str), "prior_sensitivity": ctx.num("prior_sensitivity"),
                          "likelihood_sensitivity": ctx.num("likelihood_sensitivity"),
                          "diagnosis": table["diagnosis"].astype(str)})
    headers = {"quantity": "Quantity", "prior_sensitivity": "Prior", "likelihood_sensitivity": "Likelihood",
               "diagnosis": "Diagnosis"}
    notes = ["Power-scaling sensitivity (cumulative Jensen-Shannon distance per unit of log power, ArviZ psense) "
             "of each reported quantity; threshold 0.05. The log prior density of the draws is computed from the "
             "prior set in numpy/scipy."]
    return _Parts(table.attrs.get("title", "Power-scaling sensitivity"), cells, headers, notes,
                  [("Sensitivity", ["prior_sensitivity", "likelihood_sensitivity"])], {}, ())


def _tipping(ctx: _Context) -> _Parts:
    table = ctx.table
    cells = pd.DataFrame({"channel": table["channel"].astype(str), "tier": table["tier"].astype(str),
                          "stage": table["stage"].astype(str),
                          "diagnosticity_factor": ["> 10" if math.isnan(v) else f"{v:g}"
                                                   for v in table["diagnosticity_factor"]],
                          "clues_down": table["clues_down"].astype(str), "clues_up": table["clues_up"].astype(str)})
    headers = {"channel": "Channel", "tier": "Tier", "stage": "Stage of the clues",
               "diagnosticity_factor": "Tier overstated ×", "clues_down": "Negative clues",
               "clues_up": "Positive clues"}
    notes = ["Tier overstated ×: the smallest factor by which the tier's diagnosticities would have to be overstated "
             "(its rows' log likelihood ratios divided by it) for the channel's IPCC word to change. Clues: fully "
             "reliable clues of the tier at the stage shown (the latest its catalogue indicators observe) before "
             "the word changes."]
    return _Parts(table.attrs.get("title", "Tipping points"), cells, headers, notes,
                  [("Before the IPCC word changes", ["diagnosticity_factor", "clues_down", "clues_up"])], {}, ())


def _prior_sets(ctx: _Context) -> _Parts:
    table = ctx.table
    if not len(table):
        return _Parts("Prior sets", pd.DataFrame({"channel": []}), {"channel": "Channel"},
                      ["No results of other prior sets were given (bayescpec robustness --with RESULT)."], [], {}, ())
    wide = table.pivot(index="channel", columns="prior_set", values="likelihood")
    p = table.pivot(index="channel", columns="prior_set", values="p_converting")
    order = list(dict.fromkeys(table["channel"]))
    cells = pd.DataFrame({"channel": order, **{f"{s}:likelihood": [f"{fmt_probability(p.loc[c, s], ctx.digits)} "
                                                                   f"({wide.loc[c, s]})" for c in order]
                                                for s in dict.fromkeys(table["prior_set"])}})
    cells["changes"] = ["yes" if table.loc[table["channel"] == c, "changes"].any() else "no" for c in order]
    headers = {"channel": "Channel", **{f"{s}:likelihood": s for s in dict.fromkeys(table["prior_set"])},
               "changes": "Word changes"}
    return _Parts(table.attrs.get("title", "Prior sets"), cells, headers,
                  ["The same evidence fitted under each prior set: P(θ > τ) and its IPCC word."], [], {}, ())


def _whatif(ctx: _Context) -> _Parts:
    table, digits, label = ctx.table, ctx.digits, ctx.label
    signed = lambda v: fmt_number(v, digits, signed=True)  # noqa: E731
    cells = pd.DataFrame({
        "scenario": table["scenario"].astype(str),
        "channel": table["channel"].astype(str),
        "baseline_mean": ctx.num("baseline_mean"),
        "scenario_mean": ctx.num("scenario_mean"),
        "interval": ctx.interval(),
        "change_mean": [f"{signed(v)} ± {fmt_number(m, digits + 1)}" for v, m in
                        zip(table["change_mean"], table["mcse_change"])],
        "change_interval": [f"[{signed(lo)}, {signed(hi)}]" for lo, hi in
                            zip(table[f"change {label} lower"], table[f"change {label} upper"])],
        "p_baseline": ctx.prob("p_baseline"),
        "p_scenario": [f"{fmt_probability(p, digits)} ± {fmt_number(m, digits + 1)}"
                       for p, m in zip(table["p_scenario"], table["mcse_p"])],
        "words": scenario_words(table),
    })
    headers = {"scenario": "Scenario", "channel": "Channel", "baseline_mean": "Baseline", "scenario_mean": "Scenario",
               "interval": label, "change_mean": "Change ± MCSE", "change_interval": f"Change {label}",
               "p_baseline": "Baseline", "p_scenario": "Scenario ± MCSE", "words": "IPCC word"}
    spanners = [("Mean θ", ["baseline_mean", "scenario_mean", "interval", "change_mean", "change_interval"]),
                (f"P(θ > {ctx.threshold:g})", ["p_baseline", "p_scenario", "words"])]
    scenarios = table.attrs.get("scenarios", {})
    notes = ["Each scenario changes constraint severities (0 = typical; the prior sets' scale) and recomputes every "
             "posterior draw's stage probabilities through the framework's links, keeping what the evidence pinned "
             "and each link's loading: no refit. A counterfactual within the model, not a forecast of a policy's "
             "effect. nqpf: the overall quantity (the weighted mean of the framework's dimensions, or of θ over "
             "the channels when it has none). " + _interval_sentence(
                 ctx.ci_kind, ctx.ci_prob) + " MCSE: Monte Carlo standard error over chains and draws."]
    if "likelihood_near_boundary" in table.columns and table["likelihood_near_boundary"].any():
        notes.append(f"{NEAR_BOUNDARY_MARK}: the scenario's probability lies within 2 MCSE of a boundary of the IPCC "
                     "scale; its word (and so a change of word) could differ with more draws.")
    notes += [f"{sid}: {info['label']}" + (f" ({info['settings']})" if info["settings"] != info["label"] else "")
              + (f"; source: “{info['quote']}”" if info.get("quote") else "") for sid, info in scenarios.items()]
    return _Parts(table.attrs.get("title", "Policy scenarios"), cells, headers, notes, spanners,
                  {"scenario": "2.6cm"}, ())


def _without_loops(ctx: _Context) -> _Parts:
    table, digits = ctx.table, ctx.digits
    if not len(table):
        return _Parts("Propositions without the feedback loops", pd.DataFrame({"proposition": []}),
                      {"proposition": "Proposition"}, ["The framework has no feedback loop."], [], {}, ())
    with_mcse = lambda p, m: f"{fmt_probability(p, digits)} ± {fmt_number(m, digits + 1)}"  # noqa: E731
    cells = pd.DataFrame({
        "proposition": table["proposition"].astype(str),
        "p_with": [with_mcse(p, m) for p, m in zip(table["p_with_loops"], table["mcse_with"])],
        "p_without": [with_mcse(p, m) for p, m in zip(table["p_without_loops"], table["mcse_without"])],
        "change": [fmt_number(v, digits, signed=True) for v in table["change"]],
        "words": [f"{a} → {b}" if real else str(a) for a, b, real in
                  zip(table["likelihood_with"], table["likelihood_without"], table["word_changes"])],
        "method": [f"{m} (k-hat {_khat(k)})" for m, k in zip(table["method"], table["khat"])],
    })
    headers = {"proposition": "Proposition", "p_with": "with the loops ± MCSE", "p_without": "without ± MCSE",
               "change": "Change", "words": "IPCC word", "method": "Method"}
    spanners = [("Posterior P", ["p_with", "p_without", "change"])]
    notes = [
        "Without the loops: the fitted posterior reweighted by the ratio of the severities' prior without the "
        "feedback loops (independent) to their prior with them (correlated through each loop's shared factor, "
        "averaged over the loop loadings' prior), Pareto-smoothed (k-hat checked). The two models differ only in "
        "that prior, so this is the posterior a fit without the loops would give, without refitting. The loop "
        "loadings are not learned from the evidence (their posterior is their prior), so the difference is the "
        "loop assumption's share of each probability. A word change is shown only when the probabilities differ by "
        "more than 2 MCSE of the difference.",
        "Loops: " + ", ".join(table.attrs.get("loops", [])) + ".",
    ]
    return _Parts(table.attrs.get("title", "Propositions without the feedback loops"), cells, headers, notes,
                  spanners, {}, ())


def scenario_words(table: pd.DataFrame) -> list[str]:
    """The IPCC word under each scenario ("unlikely → about as likely as not" when it changes), marked ≈
    when the scenario's probability lies within 2 MCSE of a boundary of the scale."""
    near = table["likelihood_near_boundary"] if "likelihood_near_boundary" in table.columns else [False] * len(table)
    return [(b if b == s else f"{b} → {s}") + (f" {NEAR_BOUNDARY_MARK}" if flag else "")
            for b, s, flag in zip(table["likelihood_baseline"], table["likelihood_scenario"], near)]


#: the layouts this module adds, by table file stem
ANALYSIS_LAYOUTS = {"explain-packages": lambda ctx: _influence(ctx, "package"),
                    "explain-rows": lambda ctx: _influence(ctx, "row"), "next": _next, "robustness": _robustness,
                    "power-scaling": _power_scaling, "tipping-points": _tipping, "prior-sets": _prior_sets,
                    "whatif": _whatif, "propositions-without-loops": _without_loops,
                    "whatif-custom": _whatif}  # whatif --set/--shift/--remove
LAYOUTS.update(ANALYSIS_LAYOUTS)
_LEFT.update({"unit", "rows", "quantity", "direction", "method", "kind", "verdict", "why", "clues_down", "clues_up",
              "prior_sets", "scenario", "words", "diagnosis", "p_converting_word"})
