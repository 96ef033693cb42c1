"""Layouts of the chain tables (stages, dimensions, units), the constraint correlations and the data gaps.

Registered into :data:`bayescpec.outputs.layout.LAYOUTS` on import (the exporters import this module).
"""

from __future__ import annotations

import pandas as pd

from .layout import LAYOUTS, _Context, _interval_sentence, _Parts, fmt_number

__all__ = ["CHAIN_LAYOUTS"]


def _stages(ctx: _Context) -> _Parts:
    table, label = ctx.table, ctx.label
    cells = pd.DataFrame({
        "channel": table["channel"].astype(str),
        "stage": table["stage"].astype(str),
        "prior_pass": ctx.prob("prior_pass"),
        "posterior_pass": ctx.prob("posterior_pass"),
        "reach_mean": ctx.num("reach_mean"),
        "interval": ctx.interval(),
        "prior_break_first": ctx.prob("prior_break_first"),
        "break_first": ctx.prob("break_first"),
        "rows": table["rows"].astype(int).astype(str),
        "gaps": table["gaps"].astype(int).astype(str),
        "weakest": ["◀ weakest" if w else "" for w in _stands_out(table)],
    })
    headers = {"channel": "Channel", "stage": "Stage", "prior_pass": "Prior", "posterior_pass": "Posterior",
               "reach_mean": "Mean", "interval": label, "prior_break_first": "Prior", "break_first": "Posterior",
               "rows": "Evidence rows", "gaps": "Data gaps", "weakest": ""}
    spanners = [("P(pass | reached)", ["prior_pass", "posterior_pass"]),
                ("Reach: P(chain gets this far)", ["reach_mean", "interval"]),
                ("P(breaks first here)", ["prior_break_first", "break_first"])]
    completes = table.attrs.get("completes", {})
    notes = [
        "Each channel's conversion is a chain of stages; the chain's completion is θ. "
        "P(pass | reached) is the stage's conditional probability; reach is the product up to the stage; "
        "P(breaks first here) = reach of the previous stage × (1 − P(pass)). Per channel these and "
        "P(completes) = mean θ add up to 1. " + _interval_sentence(ctx.ci_kind, ctx.ci_prob),
        _weakest_note(table),
        "P(completes): " + "; ".join(f"{c} {fmt_number(p, ctx.digits)}" for c, p in completes.items()) + "."
        if completes else "",
    ]
    title = "The conversion chain: where each channel's chain most likely breaks"
    return _Parts(title, cells, headers, [n for n in notes if n], spanners, {}, ())


def _stands_out(table: pd.DataFrame) -> list[bool]:
    """Which rows are a weakest stage that stands out (older tables without the column: every weakest)."""
    return list(table["stands_out"]) if "stands_out" in table.columns else list(table["weakest"])


def weakest_words(table: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """From a stage table: ``({channel: its weakest stage}, [channels where no stage stands out])``, for
    channels whose chain has more than one stage."""
    named, none = {}, []
    for channel, rows in table.groupby("channel", sort=False):
        if len(rows) < 2:
            continue
        out = rows[_stands_out(rows)]
        if len(out):
            named[str(channel)] = str(out["stage"].iloc[0])
        else:
            none.append(str(channel))
    return named, none


def _weakest_note(table: pd.DataFrame) -> str:
    if not len(table) or table.groupby("channel").size().max() < 2:
        return ""
    from .chain import STANDS_OUT

    named, none = weakest_words(table)
    text = (f"'◀ weakest' marks a channel's stage with the largest P(breaks first) only when it stands out: in at "
            f"least {STANDS_OUT:.0%} of the posterior draws (IPCC 'likely') the chain's break probability is larger "
            "there than at any other stage, and its mean lead over the next stage exceeds 2 Monte Carlo standard "
            "errors.")
    if none:
        text += (f" No stage stands out for {', '.join(none)}: the evidence cannot yet tell where "
                 + ("it most likely breaks." if len(none) == 1 else "these chains most likely break."))
    return text


def _dimensions(ctx: _Context) -> _Parts:
    table, label, threshold = ctx.table, ctx.label, ctx.threshold
    cells = pd.DataFrame({
        "dimension": table["label"].astype(str),
        "measures": table["measures"].astype(str),
        "prior_mean": ctx.num("prior_mean"),
        "posterior_mean": ctx.num("posterior_mean"),
        "interval": ctx.interval(),
        "prior_p_above": ctx.prob("prior_p_above"),
        "p_above": ctx.prob("p_above"),
    })
    headers = {"dimension": "Dimension", "measures": "Chains and stages", "prior_mean": "Prior mean",
               "posterior_mean": "Posterior mean", "interval": label, "prior_p_above": f"Prior P(> {threshold:g})",
               "p_above": f"P(> {threshold:g})"}
    dimensions = len(table) - 1  # the last row is the overall quantity
    notes = [("A dimension is the mean probability that the listed chains reach the listed stages (a channel named "
              "alone: its whole chain); the overall quantity is the weighted mean of the dimensions. " if dimensions else
              "The framework declares no dimensions: the overall quantity is the mean of θ over the channels. ")
             + _interval_sentence(ctx.ci_kind, ctx.ci_prob)]
    title = (f"The overall quantity and its {dimensions} dimension{'s' if dimensions != 1 else ''} (τ = {threshold:g})"
             if dimensions else f"The overall quantity: mean conversion over the channels (τ = {threshold:g})")
    return _Parts(title, cells, headers, notes, [], {"measures": "4.5cm"}, ())


def _units(ctx: _Context) -> _Parts:
    table, label, threshold = ctx.table, ctx.label, ctx.threshold
    if not len(table):
        return _Parts("Units within channels", pd.DataFrame({"unit": []}), {"unit": "Unit"},
                      ["No evidence row names a unit. Give evidence rows a 'unit' (e.g. one zone or province) to "
                       "compare units within a channel."], [], {}, ())
    cells = pd.DataFrame({
        "unit": table["unit"].astype(str), "channel": table["channel"].astype(str),
        "rows": table["rows"].astype(int).astype(str),
        "prior_mean": ctx.num("prior_mean"), "posterior_mean": ctx.num("posterior_mean"),
        "interval": ctx.interval(), "p_converting": ctx.prob("p_converting"),
        "channel_p_converting": ctx.prob("channel_p_converting"), "offset_mean": ctx.num("offset_mean"),
    })
    headers = {"unit": "Unit", "channel": "Channel", "rows": "Rows", "prior_mean": "Prior mean θ",
               "posterior_mean": "Posterior mean θ", "interval": label, "p_converting": f"P(θ > {threshold:g})",
               "channel_p_converting": "Channel's P", "offset_mean": "Offset (logit)"}
    notes = ["Units are partially pooled within their channel: each unit's stages share the channel's stage "
             "probabilities, shifted by the unit's offset (logit scale), whose spread is estimated per channel. "
             + _interval_sentence(ctx.ci_kind, ctx.ci_prob)]
    return _Parts(f"Units within channels (τ = {threshold:g})", cells, headers, notes, [], {}, ())


def _constraint_correlations(ctx: _Context) -> _Parts:
    table = ctx.table
    if not len(table):
        return _Parts("Correlation of constraint severities", pd.DataFrame({"constraint_a": []}),
                      {"constraint_a": "Constraint"}, ["The framework has fewer than two constraints."], [], {}, ())
    cells = pd.DataFrame({
        "constraint_a": table["constraint_a"].astype(str), "constraint_b": table["constraint_b"].astype(str),
        "loop": table["loop"].astype(str),
        "prior_correlation": [fmt_number(v, ctx.digits, signed=True) for v in table["prior_correlation"]],
        "posterior_correlation": [fmt_number(v, ctx.digits, signed=True) for v in table["posterior_correlation"]],
    })
    headers = {"constraint_a": "Constraint", "constraint_b": "Constraint", "loop": "Shared feedback loop",
               "prior_correlation": "Prior", "posterior_correlation": "Posterior"}
    notes = ["Correlation of the two severities across draws. Constraints in a feedback loop of the framework "
             "share a latent factor, so evidence about one informs the others; context evidence is sparse, so these "
             "correlations are mostly the prior's."]
    return _Parts("Correlation of constraint severities: the feedback loops", cells, headers, notes,
                  [("Correlation", ["prior_correlation", "posterior_correlation"])], {}, ())


def _gaps(ctx: _Context) -> _Parts:
    table = ctx.table
    if not len(table):
        return _Parts("Data gaps", pd.DataFrame({"gap": []}), {"gap": "Gap"},
                      ["No data gaps are recorded (evidence rows of kind 'gap')."], [], {}, ())
    cells = pd.DataFrame({c: table[c].astype(str) for c in ("gap", "target", "stage", "indicator", "tier", "source")})
    headers = {"gap": "Row", "target": "Channel", "stage": "Stage", "indicator": "Indicator without public data",
               "tier": "Tier", "source": "Source key"}
    notes = ["A data gap records that no public data exist for a monitoring indicator. It is tracked here -- it is "
             "what a monitoring system should publish next -- but it is not evidence for or against conversion "
             "(plausible but undermeasured is not the same as absent). Each gap's note, quoting the source, is in "
             "the CSV export."]
    return _Parts("Data gaps: monitoring indicators without public data", cells, headers, notes, [], {}, ())


#: the layouts this module adds, by table file stem
CHAIN_LAYOUTS = {"stages": _stages, "dimensions": _dimensions, "units": _units,
                 "constraint-correlations": _constraint_correlations, "gaps": _gaps}
LAYOUTS.update(CHAIN_LAYOUTS)
