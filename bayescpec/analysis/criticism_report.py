"""The model check (:mod:`.criticism`) as files: the layouts of its four tables (registered into
:data:`~bayescpec.outputs.layout.LAYOUTS`, so every renderer and the report page render them with the
provenance footnote), its figure (LOO-PIT ECDF difference with a simultaneous band, predictive p-values
and Pareto k̂ per row) and its :class:`~.report.Outputs` (what ``bayescpec check`` writes and
``bayescpec report --check`` adds to the report and ``index.html``).
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd

from ..outputs.captions import stamp
from ..outputs.figures import POSTERIOR_COLOR, TAU_COLOR, _pyplot
from ..outputs.layout import _LEFT, LAYOUTS, _Context, _Parts, fmt_number
from .report import Outputs

__all__ = ["CHECK_TABLES", "CHECK_LAYOUTS", "check_outputs", "plot_check", "fmt_p", "flag_line"]

#: the tables of the model check, by file stem
CHECK_TABLES = ("check", "check-rows", "check-groups", "check-dispersion")
#: how many rows the figure names one by one (beyond this the row axis is unlabelled)
LABELLED_ROWS = 60


def fmt_p(p: float, digits: int = 2) -> str:
    """A p-value with one more decimal than the report's numbers (it is compared with 0.01); never 0 or 1."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    step = 10.0 ** -(digits + 1)
    if p < step / 2:
        return f"<{step:.{digits + 1}f}"
    if p > 1 - step / 2:
        return f">{1 - step:.{digits + 1}f}"
    return fmt_number(p, digits + 1)


def _rules(attrs: dict) -> list[str]:
    level = attrs.get("flag_level", 0.01)
    return [
        "Predictive p-value of an observation y: the mid-p value P(y_rep > y) + P(y_rep = y)/2 (for a measure "
        "P(y_rep > y)), averaged over the prior or posterior draws with each draw's probability computed exactly; "
        "small p: y higher than the model expected, large p: lower. Replicates: a signal is Bernoulli of the row's "
        "P(positive) with its reliability; a count comes from the engine's count model; a measure's z is Normal. "
        "The fit's tempering (package weights; reliability weights of counts and measures) has no generative "
        "process and is left out of the replicates; package members are replicated independently.",
        f"Flags: prior-data conflict when the prior predictive p < {level:g} or > {1 - level:g}; a posterior "
        f"predictive flag by the same rule on the posterior predictive; overdispersion when the posterior predictive "
        f"P(D_rep ≥ D) < {level:g}; Pareto k̂ above min(1 − 1/log10 S, 0.7); LOO-PIT when ArviZ's ECDF-PIT "
        f"uniformity test (pot_c) gives p < {level:g}.",
        f"Replicates drawn with seed {attrs.get('seed')} (draws used: " + ", ".join(
            f"{g} {n}" for g, n in dict(attrs.get("draws", {})).items()) + ").",
    ] + (["This result was updated by PSIS reweighting: its posterior draws are the resampled draws."]
         if attrs.get("update_method") == "psis" else [])


def _summary_layout(ctx: _Context) -> _Parts:
    table = ctx.table
    cells = pd.DataFrame({"check": table["check"].astype(str), "rule": table["rule"].astype(str),
                          "checked": table["checked"].astype(int).astype(str),
                          "flagged": table["flagged"].astype(int).astype(str), "items": table["items"].astype(str)})
    headers = {"check": "Check", "rule": "Flag rule", "checked": "Checked", "flagged": "Flagged", "items": "Which"}
    notes = [f"Verdict: {table.attrs.get('verdict', '')}"] + _rules(table.attrs)
    return _Parts(table.attrs.get("title", "Model check"), cells, headers, notes, [],
                  {"rule": "5cm", "items": "6cm"}, ())


def _mcse(value: float) -> str:
    return "–" if not np.isfinite(value) else ("<0.001" if value < 0.0005 else f"{value:.3f}")


def _mark(flag) -> str:
    return " !" if bool(flag) else ""


def _rows_layout(ctx: _Context) -> _Parts:
    table, digits = ctx.table, ctx.digits
    if not len(table):
        return _Parts("Model check per evidence row", pd.DataFrame({"evidence": []}), {"evidence": "Row"},
                      ["The result has no evidence rows."], [], {}, ())
    have = {name: name in table.columns for name in ("p_prior", "p_posterior", "pareto_k")}
    cells = pd.DataFrame({
        "evidence": table["evidence"].astype(str), "tier": table["tier"].astype(str),
        "kind": table["kind"].astype(str),
        "target": [t + (f"/{u}" if u else "") for t, u in zip(table["target"], table["unit"])],
        "indicator": table["indicator"].astype(str), "observation": table["observed"].astype(str)})
    headers = {"evidence": "Row", "tier": "Tier", "kind": "Kind", "target": "Target", "indicator": "Indicator",
               "observation": "Observed"}
    spanners = []
    for prefix, title in (("prior", "Prior predictive"), ("posterior", "Posterior predictive")):
        if not have[f"p_{prefix}"]:
            continue
        cells[f"{prefix}_mean"] = [fmt_number(v, digits) for v in table[f"{prefix}_mean"]]
        cells[f"p_{prefix}"] = [fmt_p(p, digits) + _mark(f) for p, f in zip(table[f"p_{prefix}"],
                                                                            table[f"{prefix}_flag"])]
        headers.update({f"{prefix}_mean": "expected", f"p_{prefix}": "p"})
        spanners.append((title, [f"{prefix}_mean", f"p_{prefix}"]))
    if have["pareto_k"]:
        cells["loo_pit"] = [fmt_number(v, digits) for v in table["loo_pit"]]
        cells["pareto_k"] = [fmt_number(v, digits) + _mark(f) for v, f in zip(table["pareto_k"], table["khat_flag"])]
        headers.update({"loo_pit": "LOO-PIT", "pareto_k": "Pareto k̂"})
        spanners.append(("PSIS-LOO", ["loo_pit", "pareto_k"]))
    notes = ["Observed: a signal's value (1 = the clue seen), a count's k/n, a measure's standardised z (oriented so "
             "that + means more converting or more binding). Expected: the predictive mean of the replicate. "
             "! marks a flag. LOO-PIT: P(y_rep ≤ y | the other rows) by PSIS (ArviZ loo_pit, randomised between "
             "P(y_rep < y) and P(y_rep ≤ y) for discrete values), uniform when the model is right. Pareto k̂: "
             f"PSIS-LOO on the log-likelihood the fit used (each row's weighted contribution); above "
             f"{table.attrs.get('khat_threshold', 0.7):.2f} the leave-one-out estimate is unreliable (an "
             "influential row)."] + _rules(table.attrs)
    return _Parts(table.attrs.get("title", "Model check per evidence row"), cells, headers, notes, spanners,
                  {"indicator": "3cm"}, ())


def _interval(table: pd.DataFrame, prefix: str, digits: int) -> list[str]:
    return [f"{fmt_number(m, digits)} [{fmt_number(lo, digits)}, {fmt_number(hi, digits)}]"
            for m, lo, hi in zip(table[f"{prefix}_mean"], table[f"{prefix}_lower"], table[f"{prefix}_upper"])]


def _groups_layout(ctx: _Context) -> _Parts:
    table, digits = ctx.table, ctx.digits
    if not len(table):
        return _Parts("Model check per tier and kind", pd.DataFrame({"tier": []}), {"tier": "Tier"},
                      ["The result has no evidence rows."], [], {}, ())
    cells = pd.DataFrame({"tier": table["tier"].astype(str), "kind": table["kind"].astype(str),
                          "row_count": table["rows"].astype(int).astype(str),
                          "statistic": table["statistic"].astype(str),
                          "observed_total": [fmt_number(v, digits) for v in table["observed"]]})
    headers = {"tier": "Tier", "kind": "Kind", "row_count": "Rows", "statistic": "Statistic",
               "observed_total": "Observed"}
    spanners = []
    for prefix, title in (("prior", "Prior predictive"), ("posterior", "Posterior predictive")):
        if f"p_{prefix}" not in table.columns:
            continue
        cells[f"{prefix}_mean"] = _interval(table, prefix, digits)
        cells[f"p_{prefix}"] = [f"{fmt_p(p, digits)} ± {_mcse(m)}" + _mark(f) for p, m, f in
                                zip(table[f"p_{prefix}"], table[f"p_{prefix}_mcse"], table[f"{prefix}_flag"])]
        headers.update({f"{prefix}_mean": "mean [90% interval]", f"p_{prefix}": "p ± MCSE"})
        spanners.append((title, [f"{prefix}_mean", f"p_{prefix}"]))
    notes = ["Per tier and kind, a discrepancy of its rows: the number of positive signals, the sum of the counts' "
             "k, or the sum of the measures' z; its replicate is the sum of the rows' replicates at each draw "
             "(rows independent given the parameters, as the model has them). p = P(T_rep > T) + P(T_rep = T)/2 "
             "over the draws, with its Monte Carlo standard error. ! marks a flag."] + _rules(table.attrs)
    return _Parts(table.attrs.get("title", "Model check per tier and kind"), cells, headers, notes, spanners, {}, ())


def _dispersion_layout(ctx: _Context) -> _Parts:
    table, digits = ctx.table, ctx.digits
    note = ("Per indicator and target with two or more count rows (the rows the model gives one rate): "
            "D = Σ (k − n p̂)² / (n p̂ (1 − p̂)), p̂ = Σk / Σn, Pearson's binomial dispersion statistic, a function of "
            "the counts alone (≈ χ² on rows − 1 degrees of freedom when the counts are binomial). Dispersion index "
            "D / (rows − 1): about 1 for binomial counts, far above 1 when the units are more alike within a row "
            "than a binomial allows. Replicated: the index of the model's replicates (posterior median and 95th "
            "percentile) -- binomial replicates under a binomial count model, overdispersed ones under an "
            "overdispersed model, so a flag means spread beyond what the model itself allows. p = P(D_rep ≥ D) "
            "(mid-p) with its MCSE; ! marks a flag.")
    if not len(table):
        return _Parts("Overdispersion of counts", pd.DataFrame({"indicator": []}), {"indicator": "Indicator"},
                      [note, "No indicator has two or more count rows about one target: nothing to check."]
                      + _rules(table.attrs), [], {}, ())
    cells = pd.DataFrame({
        "indicator": table["indicator"].astype(str),
        "target": [t + (f"/{u}" if u else "") + (f" | {s}" if s else "") for t, u, s in
                   zip(table["target"], table["unit"], table["stage"])],
        "tier": table["tier"].astype(str), "counts": table["counts"].astype(str),
        "pooled_rate": [fmt_number(v, digits) for v in table["pooled_rate"]],
        "statistic": [f"{fmt_number(v, 1)} ({int(d)})" for v, d in zip(table["statistic"], table["df"])],
        "dispersion_index": [fmt_number(v, digits) for v in table["dispersion_index"]]})
    headers = {"indicator": "Indicator", "target": "Target | stage", "tier": "Tier", "counts": "Counts k/n",
               "pooled_rate": "Pooled rate", "statistic": "D (df)", "dispersion_index": "Index"}
    spanners = []
    for prefix, title in (("prior", "Prior predictive"), ("posterior", "Posterior predictive")):
        if f"p_{prefix}" not in table.columns:
            continue
        cells[f"{prefix}_index"] = [f"{fmt_number(m, digits)} [{fmt_number(u, digits)}]" for m, u in
                                    zip(table[f"{prefix}_index_median"], table[f"{prefix}_index_upper"])]
        cells[f"p_{prefix}"] = [f"{fmt_p(p, digits)} ± {_mcse(m)}" + _mark(f) for p, m, f in
                                zip(table[f"p_{prefix}"], table[f"p_{prefix}_mcse"], table[f"{prefix}_flag"])]
        headers.update({f"{prefix}_index": "replicated index [95th pct]", f"p_{prefix}": "p ± MCSE"})
        spanners.append((title, [f"{prefix}_index", f"p_{prefix}"]))
    return _Parts(table.attrs.get("title", "Overdispersion of counts"), cells, headers, [note] + _rules(table.attrs),
                  spanners, {"counts": "3cm", "indicator": "3cm"}, ())


#: the layouts this module adds, by table file stem
CHECK_LAYOUTS = {"check": _summary_layout, "check-rows": _rows_layout, "check-groups": _groups_layout,
                 "check-dispersion": _dispersion_layout}
LAYOUTS.update(CHECK_LAYOUTS)
_LEFT.update({"check", "rule", "items", "kind", "statistic", "counts", "observation"})


def plot_check(found, *, band_probability: float = 0.99):
    """Left: the LOO-PIT ECDF minus the uniform CDF with a simultaneous ``band_probability`` band (ArviZ);
    middle: each row's prior and posterior predictive p-value with the flag zones; right: each row's Pareto k̂
    with the threshold."""
    from arviz_stats.ecdf_utils import ecdf_pit

    plt = _pyplot()
    rows = found.rows
    n = len(rows)
    height = min(2.2 + 0.16 * n, 14.0)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(12.0, height), layout="constrained",
                                              width_ratios=(4, 3, 2))
    if n >= 2 and "loo_pit" in rows.columns:
        x, ecdf, lower, upper = ecdf_pit(rows["loo_pit"].to_numpy(float), band_probability, 1000,
                                         rng=np.random.default_rng(int(found.attrs.get("seed", 0))))
        left.fill_between(x, lower - x, upper - x, step="post", color="0.85", lw=0,
                          label=f"{band_probability:.0%} simultaneous band")
        left.step(x, ecdf - x, where="post", color=POSTERIOR_COLOR, lw=1.5, label="LOO-PIT of the rows")
        left.axhline(0, color="0.4", lw=0.6)
        left.set_xlim(0, 1)
        left.legend(fontsize=7, frameon=False, loc="upper left")
        p = found.attrs.get("loo_pit_uniformity_p", float("nan"))
        shown = fmt_p(p)
        left.set_title(f"LOO-PIT: ECDF − uniform (uniformity p {shown[0] + ' ' + shown[1:] if shown[0] in '<>' else '= ' + shown})",
                       fontsize=9)
    else:
        left.text(0.5, 0.5, "LOO-PIT needs the result's per-row\nlog-likelihood and two or more rows",
                  ha="center", va="center", fontsize=8, transform=left.transAxes)
        left.set_title("LOO-PIT", fontsize=9)
    left.set_xlabel("LOO-PIT value", fontsize=8)
    left.set_ylabel("ECDF − uniform CDF", fontsize=8)
    y = np.arange(n)[::-1]
    level = float(found.attrs.get("flag_level", 0.01))
    for ax in (middle, right):
        ax.set_ylim(-0.8, max(n, 1) - 0.2)
        ax.grid(axis="x", alpha=0.3)
    for edge in (level, 1 - level):
        middle.axvline(edge, color=TAU_COLOR, linestyle="--", lw=1)
    for prefix, style in (("prior", dict(facecolors="none", edgecolors="0.45")),
                          ("posterior", dict(color=POSTERIOR_COLOR))):
        if f"p_{prefix}" in rows.columns:
            middle.scatter(rows[f"p_{prefix}"], y, s=14, label=f"{prefix} predictive", clip_on=False, **style)
    middle.set_xlim(-0.02, 1.02)
    middle.set_xlabel("predictive p-value (mid-p)", fontsize=8)
    middle.set_title(f"Predictive p-value per row (flag: < {level:g} or > {1 - level:g})", fontsize=9)
    middle.legend(fontsize=7, frameon=True, framealpha=0.9, loc="best")
    labelled = n <= LABELLED_ROWS
    middle.set_yticks(y if labelled else [], [textwrap.shorten(str(e), 24, placeholder="…") for e in rows["evidence"]]
                      if labelled else [], fontsize=6)
    if "pareto_k" in rows.columns:
        threshold = float(found.attrs.get("khat_threshold", 0.7))
        colours = np.where(rows["khat_flag"], TAU_COLOR, POSTERIOR_COLOR)
        right.scatter(rows["pareto_k"], y, s=14, c=colours)
        right.axvline(threshold, color=TAU_COLOR, linestyle="--", lw=1)
        right.set_title(f"Pareto k̂ per row (threshold {threshold:.2f})", fontsize=9)
    else:
        right.set_title("Pareto k̂: no per-row log-likelihood", fontsize=9)
    right.set_yticks(y if labelled else [], [] if not labelled else [""] * n)
    right.set_xlabel("Pareto k̂ (PSIS-LOO)", fontsize=8)
    for ax in (left, middle, right):
        ax.tick_params(labelsize=7)
    fig.suptitle("Model check: LOO-PIT, predictive p-values and Pareto k̂ of the evidence rows", fontsize=10)
    return stamp(fig, found.attrs.get("caption", ""))


def check_outputs(found) -> Outputs:
    """The model check as files: its four tables, its figure and the text of its page section."""
    tables = {"check": found.summary, "check-rows": found.rows, "check-groups": found.groups,
              "check-dispersion": found.dispersion}
    text = ("Is the fitted model consistent with its own evidence? Each evidence row, and each tier's rows "
            "together, are compared with data replicated from the prior (prior-data conflict) and from the posterior "
            "(posterior predictive checks); counts of one indicator are checked for more spread than the count "
            "model allows; PSIS-LOO gives each row's LOO-PIT and Pareto k̂ (ArviZ).\n\n" + found.verdict)
    figures = {"check": ((lambda: plot_check(found)),
                         "Left: the ECDF of the rows' LOO-PIT values minus the uniform CDF, with a 99% simultaneous "
                         "band (inside: consistent with a calibrated model; the uniformity test in the title is "
                         "more sensitive than the band). Middle: each row's prior (open) and "
                         "posterior (filled) predictive p-value; dashed: the flag levels. Right: each row's Pareto k̂.")}
    return Outputs("check", "Model criticism: predictive checks, LOO-PIT, Pareto k̂", text, tables, figures)


def flag_line(found, result_path) -> str:
    """The line ``bayescpec run`` prints when a check flags something ('' when nothing is flagged): how many
    flags each check raised, and where the details are."""
    if found.passed:
        return ""
    hits = found.summary[found.summary["flagged"] > 0]
    parts = ", ".join(f"{r['check']} {int(r['flagged'])}" for _, r in hits.iterrows())
    return (f"Model check: {len(found.flags)} flag{'s' if len(found.flags) > 1 else ''} ({parts}). "
            f"`bayescpec check {result_path}` shows which and writes the tables and the figure.")
