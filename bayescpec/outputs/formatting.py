"""Formatting shared by every table: one rounding for every number and probability, intervals, the
convergence figures, and the provenance footnote and failed-fit banner of every table. The layouts
(:mod:`bayescpec.outputs.layout`) use these; so does the terminal display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from .summary import interval_label

#: decimals of every number in the exported tables (one rounding for all tables and formats)
DIGITS = 2
INTERVAL_KINDS = {"eti": "equal-tailed", "hdi": "highest-density"}

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


def gate_figures(values, *, zero_treedepth: bool = False) -> str:
    """The convergence gate's figures of a result (its attrs or provenance) in one phrase: max R-hat,
    min bulk and tail ESS, divergences, the share at maximum tree depth (when above 0, or always with
    ``zero_treedepth``), min E-BFMI; figures an older result lacks are left out."""
    text = (f"max R-hat {float(values.get('max_rhat', float('nan'))):.3f}, "
            f"min bulk ESS {_int_text(values.get('min_ess_bulk'))}")
    if values.get("min_ess_tail") is not None:
        text += f", min tail ESS {_int_text(values.get('min_ess_tail'))}"
    text += f", {values.get('divergences')} divergences"
    if values.get("treedepth_share") is not None and (zero_treedepth or values.get("treedepth_share")):
        text += f", {float(values['treedepth_share']):.1%} at maximum tree depth"
    if values.get("min_bfmi") is not None and math.isfinite(float(values["min_bfmi"])):
        text += f", min E-BFMI {float(values['min_bfmi']):.2f}"
    return text


def round_frame(table: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Floats rounded to ``digits``; Monte Carlo standard errors (columns named ``mcse``) and the columns a
    table lists in ``attrs["precise_columns"]`` (p-values compared with 0.01) keep two more decimals, since
    an MCSE of 0.004 rounded to 2 decimals would read as no error at all."""
    out = table.copy()
    precise = set(table.attrs.get("precise_columns", ()))
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            places = digits + 2 if "mcse" in str(col) or col in precise else digits
            out[col] = out[col].round(places) + 0.0  # + 0.0 turns -0.0 into 0.0
    out.attrs = dict(table.attrs)
    return out


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
    lines = [PRIOR_ONLY_NOTE] if _is_prior_only(prov) else []
    lines += [
        f"Prior set: {prov.get('prior_set')}. Evidence as of {prov.get('as_of')}"
        + (f" ({rows} rows)" if rows not in (None, "") else "") + "."
        + (f" Input files (SHA-256, first 12 hex digits): {hashes}." if hashes else ""),
        (f"Draws: {prov['psis']}; the base fit: seed {prov.get('seed')}, {prov.get('draws')} draws × "
         f"{prov.get('chains')} chains" if prov.get("psis") else
         f"Sampling: seed {prov.get('seed')}, {prov.get('draws')} draws × {prov.get('chains')} chains")
        + (f" ({prov.get('sampler')})" if prov.get("sampler") else "")
        + "; " + gate_figures(prov)
        + (f"; {prov['divergence_retry']}" if prov.get("divergence_retry") else "")
        + ("; convergence checks passed." if prov.get("converged") else "; CONVERGENCE CHECKS FAILED: do not publish these numbers.")
        + f" bayescpec {prov.get('bayescpec_version')}.",
    ]
    if prov.get("prior_statements"):
        lines.append("Priors stated as intervals, each solved as the maximum-entropy distribution of its family "
                     f"(PreliZ): {prov['prior_statements']}.")
    if prov.get("per_prior_set"):
        lines.append("Per prior set: " + "; ".join(prov["per_prior_set"]) + ".")
    step = 10.0 ** -digits
    lines.append(f"All numbers rounded to {digits} decimals; probabilities that would round to 0 or 1 without "
                 f"being exactly 0 or 1 are shown as <{step:.{digits}f} or >{1 - step:.{digits}f}.")
    return lines


#: the footnote of a result fitted without any evidence row
PRIOR_ONLY_NOTE = ("PRIOR ONLY: no evidence rows were used, so every 'posterior' number is what the prior set "
                   "alone says.")


def _is_prior_only(prov: Mapping) -> bool:
    rows = prov.get("evidence_rows")
    try:
        return rows not in (None, "") and int(rows) == 0
    except (TypeError, ValueError):
        return False


def banner_text(prov: Mapping) -> str:
    """The warning shown above a table whose result failed its convergence checks ('' otherwise)."""
    if not prov or prov.get("converged", True):
        return ""
    failures = prov.get("convergence_failures") or "see the footnote"
    return f"CONVERGENCE CHECKS FAILED ({failures}): do not publish these numbers; refit with more draws."


def _int_text(value) -> str:
    try:
        return f"{float(value):.0f}"
    except (TypeError, ValueError):
        return str(value)
