"""Model criticism (``bayescpec check``): is the fitted model consistent with its own evidence?

Every check compares an observation with what the model says it could have been -- replicated data drawn
from the prior or the posterior draws (:mod:`bayescpec.engine.replicate`: signals Bernoulli of the row's
P(positive) with its reliability, counts from the engine's count model, measures Normal) -- and reports a
predictive p-value p = P(y_rep > y) + P(y_rep = y) / 2, the **mid-p value** (for a measure the plain tail
probability). It is averaged over the draws (each draw's probability computed exactly, not sampled), so
its Monte Carlo error is that of a posterior mean (reported as MCSE). Small p: the observation is higher
than the model expected; large p: lower.

* **Prior-data conflict** (per row and per tier x kind): the observation lies in the far tail of the
  *prior* predictive, p < 0.01 or p > 0.99 (``flag_level``).
* **Posterior predictive checks** (per row and per tier x kind): the same rule on the posterior predictive.
  The tier x kind discrepancy is the number of positive signals, the sum of the counts' k, or the sum of
  the measures' z, of the tier's rows; its replicate is the sum of the rows' replicates at each draw.
* **Overdispersion of counts**: per indicator and target (the count rows the model gives one rate), the
  binomial dispersion statistic D = Σ (k_i − n_i p̂)² / (n_i p̂ (1 − p̂)), p̂ = Σk / Σn, a function of the
  data alone (≈ χ² on rows − 1 degrees of freedom for binomial counts), against its replicates under the
  model; flagged when the posterior predictive P(D_rep ≥ D) < 0.01. With binomial counts the replicates
  are binomial, so spread beyond binomial is flagged; with an overdispersed count model (beta-binomial)
  the replicates carry the model's own overdispersion, so only spread beyond what the model allows is.
* **PSIS-LOO** (ArviZ ``loo``, pointwise, on the log-likelihood the fit used -- each row's weighted
  contribution): Pareto k̂ per row, flagged above min(1 − 1/log10 S, 0.7); and **LOO-PIT** (ArviZ
  ``loo_pit``, randomised for discrete values), P(y_rep ≤ y_i | the other rows), uniform when the model is
  right; its uniformity is tested with ArviZ's ECDF-PIT test (``pot_c``), flagged below 0.01.

A pure function of the result and the study it was fitted on: no refit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import betainc, logsumexp

from ..engine.aggregate import evidence_data, observation_rows
from ..engine.mcmcstats import ess_mean
from ..engine.psis import psis_rows
from ..engine.assemble import LIKELIHOOD_VARIABLES, posterior_draws
from ..engine.replicate import RowPredictive, observed_values, row_predictive
from ..errors import InputError, ResultMismatchError
from ..inputs.study import Study
from .base import analysis_attrs, khat_threshold_for, mcse_mean

__all__ = ["FLAG_LEVEL", "ModelCheck", "check", "quick_check", "dispersion_statistic", "GROUP_STATISTICS",
           "MAX_ELEMENTS", "QUICK_ROW_LIMIT", "QUICK_LOO_ROWS"]

#: a p-value below this (or above 1 minus it) is flagged
FLAG_LEVEL = 0.01
#: the largest draws x rows array kept per predictive distribution (32 MB; a check holds about six such
#: arrays at once); beyond it every chain's draws are thinned alike
MAX_ELEMENTS = 4_000_000
#: ``bayescpec run`` checks its fit when the log has at most this many rows (the per-row log-likelihood's limit),
#: with PSIS-LOO up to QUICK_LOO_ROWS (PSIS costs about 1.5 ms a row)
QUICK_ROW_LIMIT = 20_000
QUICK_LOO_ROWS = 2_000
#: the discrepancy of each kind's rows in a tier
GROUP_STATISTICS = {"signal": "positive signals", "count": "sum of k", "measure": "sum of z"}


@dataclass(frozen=True)
class ModelCheck:
    """The checks of one result: ``summary`` (one line per check: its rule, how many were checked and
    flagged), ``rows`` (per evidence row), ``groups`` (per tier x kind), ``dispersion`` (per indicator and
    target with two or more count rows), the ``verdict`` in words and the ``flags`` one by one."""

    summary: pd.DataFrame
    rows: pd.DataFrame
    groups: pd.DataFrame
    dispersion: pd.DataFrame
    verdict: str
    flags: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.flags


def dispersion_statistic(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Σ (k_i − n_i p̂)² / (n_i p̂ (1 − p̂)) over the last axis of ``k`` (rows), p̂ = Σk / Σn: Pearson's
    statistic of binomial dispersion (0 when every unit or none shows the outcome)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    total_k, total_n = k.sum(axis=-1), n.sum()
    rate = total_k / total_n
    spread = (k**2 / n).sum(axis=-1) - total_k**2 / total_n  # Σ (k − n p̂)² / n
    scale = rate * (1 - rate)
    return np.where(scale > 0, np.clip(spread, 0.0, None) / np.where(scale > 0, scale, 1.0), 0.0)


def _mid_p(replicated: np.ndarray, observed) -> np.ndarray:
    """Per draw: 1 when the replicate exceeds the observation, 1/2 when equal (the mid-p convention)."""
    return (replicated > observed) + 0.5 * (replicated == observed)


def _draws(result: xr.DataTree, group: str, rows: int) -> tuple[dict[str, np.ndarray], int, int]:
    """The likelihood's variables of ``group`` (chain-major flattened), every ``step``-th draw of each chain
    so that draws x rows stays within MAX_ELEMENTS; returns (draws, chains, step)."""
    chains, draws = int(result[group].sizes["chain"]), int(result[group].sizes["draw"])
    step = max(1, -(-chains * draws * max(rows, 1) // MAX_ELEMENTS))
    found = posterior_draws(result, LIKELIHOOD_VARIABLES, group)
    if step > 1:
        kept = len(range(0, draws, step))
        found = {name: values.reshape((chains, draws) + values.shape[1:])[:, ::step].reshape(
            (chains * kept,) + values.shape[1:]) for name, values in found.items()}
    return found, chains, step


def _row_labels(study: Study) -> pd.DataFrame:
    ev = observation_rows(study.evidence)
    unit = ev["unit"].astype(str) if "unit" in ev.columns else pd.Series("", index=ev.index)
    return pd.DataFrame({"evidence": ev["id"].astype(str), "tier": ev["tier"].astype(str),
                         "kind": ev["kind"].astype(str), "target": ev["target"].astype(str), "unit": unit,
                         "stage": ev["stage"].astype(str), "indicator": ev["indicator"].astype(str),
                         "test": ev["test"].astype(str)}).reset_index(drop=True)


def _observation_text(kind: str, y: float, n: float) -> str:
    if kind == "count":
        return f"{y:.0f}/{n:.0f}"
    return f"{y:.0f}" if kind == "signal" else f"z = {y:.2f}"


def _mcse(values: np.ndarray, chains: int, *, independent: bool) -> np.ndarray:
    """MCSE of the mean over the leading axis: sd / sqrt(S) for independent draws (the forward-simulated
    prior), ArviZ's (autocorrelation-aware, over the chains) for MCMC draws."""
    if values.shape[0] < 4:
        return np.full(values.shape[1:], np.nan)
    if independent:
        return values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    return mcse_mean(values, chains)


def _predictive_rows(pred: RowPredictive, chains: int, flag_level: float, prefix: str) -> dict[str, np.ndarray]:
    p_draws = pred.mid_p
    p = p_draws.mean(axis=0)
    return {f"{prefix}_mean": pred.mean.mean(axis=0), f"p_{prefix}": p,
            f"p_{prefix}_mcse": _mcse(p_draws, chains, independent=prefix == "prior"),
            f"{prefix}_flag": (p < flag_level) | (p > 1 - flag_level)}


def _group_table(labels: pd.DataFrame, preds: dict[str, tuple[RowPredictive, int]], flag_level: float) -> pd.DataFrame:
    records = []
    for (tier, kind), members in labels.groupby(["tier", "kind"], sort=False).groups.items():
        idx = np.asarray(list(members), int)
        record = {"tier": tier, "kind": kind, "rows": idx.size, "statistic": GROUP_STATISTICS.get(kind, kind)}
        for prefix, (pred, chains) in preds.items():
            observed = float(pred.observed[idx].sum())
            replicated = pred.replicates[:, idx].sum(axis=1)
            indicator = _mid_p(replicated, observed)
            p = float(indicator.mean())
            record.update({"observed": observed, f"{prefix}_mean": float(replicated.mean()),
                           f"{prefix}_lower": float(np.quantile(replicated, 0.05)),
                           f"{prefix}_upper": float(np.quantile(replicated, 0.95)), f"p_{prefix}": p,
                           f"p_{prefix}_mcse": float(_mcse(indicator, chains, independent=prefix == "prior")),
                           f"{prefix}_flag": bool(p < flag_level or p > 1 - flag_level)})
        records.append(record)
    return pd.DataFrame(records)


def _dispersion_table(labels: pd.DataFrame, observed: np.ndarray, n_units: np.ndarray,
                      preds: dict[str, tuple[RowPredictive, int]], flag_level: float) -> pd.DataFrame:
    counts = labels[labels["kind"] == "count"]
    keys = ["indicator", "target", "unit", "stage", "tier", "test"]
    records = []
    for key, members in counts.groupby(keys, sort=False).groups.items():
        idx = np.asarray(list(members), int)
        if idx.size < 2:
            continue
        n = n_units[idx]
        k = observed[idx]
        statistic = float(dispersion_statistic(k, n))
        record = {**dict(zip(keys, key)), "rows": idx.size,
                  "counts": ", ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(k, n)),
                  "pooled_rate": float(k.sum() / n.sum()), "statistic": statistic, "df": idx.size - 1,
                  "dispersion_index": statistic / (idx.size - 1)}
        for prefix, (pred, chains) in preds.items():
            replicated = dispersion_statistic(pred.replicates[:, idx], n)
            indicator = _mid_p(replicated, statistic)
            p = float(indicator.mean())
            record.update({f"{prefix}_index_median": float(np.median(replicated)) / (idx.size - 1),
                           f"{prefix}_index_upper": float(np.quantile(replicated, 0.95)) / (idx.size - 1),
                           f"p_{prefix}": p,
                           f"p_{prefix}_mcse": float(_mcse(indicator, chains, independent=prefix == "prior")),
                           f"{prefix}_flag": bool(p < flag_level)})
        records.append(record)
    columns = keys + ["rows", "counts", "pooled_rate", "statistic", "df", "dispersion_index"]
    return pd.DataFrame(records) if records else pd.DataFrame(columns=columns)


def _loo(result: xr.DataTree, pred: RowPredictive, step: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """PSIS-LOO on the fit's (weighted) per-row log-likelihood, as ArviZ's ``loo`` and ``loo_pit`` compute it
    (r_eff from the ESS of the posterior's theta and severity; ties in a discrete row's replicates broken by
    one uniform per row): LOO-PIT and Pareto k-hat per row, and the draws S they were computed from.
    ``tests/test_psis.py`` compares the two."""
    from .base import require_pointwise

    loglik = require_pointwise(result, "check").isel(draw=slice(None, None, step))
    if [str(i) for i in loglik["evidence"].values] != [str(i) for i in result["evidence"]["evidence"].values]:
        raise ResultMismatchError("check: the result's log_likelihood rows are not its evidence rows")
    chains, draws = loglik.sizes["chain"], loglik.sizes["draw"]
    size = chains * draws
    rows = loglik.transpose("evidence", "chain", "draw").values.reshape(-1, size)   # chain-major, as replicates
    r_eff = 1.0
    if chains > 1:
        posterior = result["posterior"].to_dataset()
        blocks = [posterior[v].isel(draw=slice(None, None, step)).transpose("chain", "draw", ...).values
                  for v in ("theta", "severity") if v in posterior]
        if blocks:
            stacked = np.concatenate([np.moveaxis(b.reshape(chains, draws, -1), 2, 0) for b in blocks])
            r_eff = float(np.mean(ess_mean(stacked)) / size)
    log_weights, khat = psis_rows(-rows, r_eff)
    weights = np.exp(log_weights - logsumexp(log_weights, axis=1, keepdims=True))
    replicates = pred.replicates.T                                                      # (rows, S)
    observed = np.asarray(pred.observed, dtype=float)[:, None]
    below = np.sum(weights * (replicates < observed), axis=1)
    at = np.sum(weights * (replicates == observed), axis=1)
    pit = below + np.random.default_rng(seed).uniform(size=below.shape) * at
    return pit, khat, size


def _uniformity(pit: np.ndarray) -> float:
    """ArviZ's ``uniformity_test`` (method ``pot_c``, Tesso and Vehtari 2026): each order statistic of the
    PIT values against its Beta(i, n + 1 - i) distribution, the two-sided p-values combined by the truncated
    Cauchy combination (terms with p >= 0.5 set to 0): the p-value that the values are uniform."""
    pit = np.asarray(pit, dtype=float)
    pit = np.sort(pit[np.isfinite(pit)])
    if pit.size < 2:
        return float("nan")
    order = np.arange(1, pit.size + 1)
    probs = betainc(order, order[::-1], pit)
    ps = 2 * np.minimum(probs, 1 - probs)
    cauchy = np.tan((0.5 - ps) * np.pi)
    return float(0.5 - np.arctan(np.mean(np.where(ps < 0.5, cauchy, 0.0))) / np.pi)


def check(
    result: xr.DataTree,
    study: Study | None = None,
    *,
    flag_level: float = FLAG_LEVEL,
    seed: int | None = None,
    loo: bool = True,
) -> ModelCheck:
    """Prior and posterior predictive checks, prior-data conflict, overdispersion of counts, PSIS-LOO
    Pareto k-hat and LOO-PIT of ``result`` against its evidence (see the module's docstring for every
    rule). ``study`` defaults to the result's input files (SHA-256 checked, :func:`~.base.study_of`);
    ``seed`` (default: the result's) draws the replicates and the LOO-PIT's randomisation; ``loo=False``
    leaves PSIS-LOO out (it needs the result's per-row log-likelihood, kept for logs of up to 20 000 rows)."""
    from .base import study_of

    if not 0 < flag_level < 0.5:
        raise InputError(f"flag_level: must be in (0, 0.5); found {flag_level!r}")
    study = study if study is not None else study_of(result)
    data = evidence_data(study)
    labels = _row_labels(study)
    ids = [str(i) for i in result["evidence"]["evidence"].values] if "evidence" in result.children else []
    if ids != labels["evidence"].tolist():
        raise ResultMismatchError("check: the result's evidence rows are not the study's (refit the result, or "
                                  "give the input files it was fitted on)")
    seed = int(result.attrs.get("seed", 0) or 0) if seed is None else int(seed)
    rng = np.random.default_rng([seed, 20])
    n_units = data.rows["n"].to_numpy(float)
    table = labels.copy()
    observed = observed_values(data.rows)
    table["observed"] = [_observation_text(k, y, n) for k, y, n in zip(labels["kind"], observed, n_units)]
    table["y"] = observed
    preds: dict[str, tuple[RowPredictive, int]] = {}
    steps = {}
    for group in ("prior", "posterior"):
        if group not in result.children or not len(labels):
            continue
        draws, chains, steps[group] = _draws(result, group, len(labels))
        preds[group] = (row_predictive(data.rows, draws, rng), chains)
        for name, values in _predictive_rows(preds[group][0], chains, flag_level, group).items():
            table[name] = values
    has_loo = bool(loo and len(labels) and "posterior" in preds and "log_likelihood" in result.children)
    threshold = float("nan")
    pit_p = float("nan")
    if has_loo:
        pit, khat, used = _loo(result, preds["posterior"][0], steps["posterior"], seed)
        threshold = khat_threshold_for(used)
        table["loo_pit"], table["pareto_k"] = pit, khat
        table["khat_flag"] = khat > threshold
        pit_p = _uniformity(pit)
    groups = _group_table(labels, preds, flag_level) if len(labels) and preds else pd.DataFrame()
    dispersion = _dispersion_table(labels, observed, n_units, preds, flag_level) if preds else pd.DataFrame()
    summary, flags = _summary(table, groups, dispersion, flag_level=flag_level, threshold=threshold, pit_p=pit_p,
                              has_loo=has_loo)
    verdict = _verdict(summary, flags, len(labels))
    attrs = {"flag_level": flag_level, "seed": seed, "khat_threshold": threshold, "loo_pit_uniformity_p": pit_p,
             "draws": {group: int(pred.mean.shape[0]) for group, (pred, _) in preds.items()},
             "update_method": str(result.attrs.get("update_method", "") or "")}
    common = analysis_attrs(result, "Model check", **attrs)
    for frame, title in ((summary, "Model check: summary"), (table, "Model check per evidence row"),
                         (groups, "Model check per tier and kind"), (dispersion, "Overdispersion of counts")):
        frame.attrs = {**common, "title": title, "verdict": verdict,
                       "precise_columns": [c for c in frame.columns if str(c).startswith("p_") or c == "loo_pit"]}
    return ModelCheck(summary, table, groups, dispersion, verdict, flags, {**common, "verdict": verdict})


def quick_check(result: xr.DataTree, study: Study) -> ModelCheck | None:
    """The check ``bayescpec run`` makes of the fit it just made (``study`` is the one fitted, so no hash
    check), or None for a prior-only result or a log beyond :data:`QUICK_ROW_LIMIT` rows; without PSIS-LOO
    beyond :data:`QUICK_LOO_ROWS` rows."""
    rows = int(result.attrs.get("evidence_rows", 0) or 0)
    if not rows or rows > QUICK_ROW_LIMIT:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return check(result, study, loo=rows <= QUICK_LOO_ROWS)


def _p_is(p: float) -> str:
    """'p = 0.003', 'p < 0.001' or 'p > 0.999'."""
    return "p < 0.001" if p < 0.0005 else ("p > 0.999" if p > 0.9995 else f"p = {p:.3f}")


def _summary(rows: pd.DataFrame, groups: pd.DataFrame, dispersion: pd.DataFrame, *, flag_level: float,
             threshold: float, pit_p: float, has_loo: bool) -> tuple[pd.DataFrame, list[str]]:
    tail = f"< {flag_level:g} or > {1 - flag_level:g}"
    lines, flags = [], []

    def add(check: str, rule: str, checked: int, items: list[str], note: str = "") -> None:
        lines.append({"check": check, "rule": rule, "checked": checked, "flagged": len(items),
                      "items": "; ".join(items) if items else (note or "none")})
        flags.extend(f"{check}: {item}" for item in items)

    for prefix, what in (("prior", "Prior-data conflict"), ("posterior", "Posterior predictive")):
        if f"p_{prefix}" not in rows.columns:
            continue
        hit = rows[rows[f"{prefix}_flag"]]
        add(f"{what} (rows)", f"{prefix} predictive p (mid-p) {tail}", len(rows),
            [f"{r.evidence} ({_p_is(r[f'p_{prefix}'])})" for _, r in hit.iterrows()])
        if len(groups):
            hit = groups[groups[f"{prefix}_flag"]]
            add(f"{what} (tier × kind)", f"{prefix} predictive p of the tier's positives, Σk or Σz {tail}",
                len(groups), [f"{r.tier} {r.kind} ({_p_is(r[f'p_{prefix}'])})" for _, r in hit.iterrows()])
    if "p_posterior" in rows.columns:
        hit = dispersion[dispersion["posterior_flag"]] if len(dispersion) else dispersion
        add("Overdispersion of counts", f"posterior predictive P(D_rep ≥ D) < {flag_level:g}", len(dispersion),
            [f"{r.indicator} on {r.target}{'/' + r.unit if r.unit else ''} (D = {r.statistic:.1f} on {r.df} df, "
             f"{_p_is(r.p_posterior)})" for _, r in hit.iterrows()],
            note="" if len(dispersion) else "no indicator has two or more count rows about one target")
    if has_loo:
        hit = rows[rows["khat_flag"]]
        add("Pareto k̂ (PSIS-LOO)", f"k̂ > {threshold:.2f} = min(1 − 1/log10 S, 0.7)", len(rows),
            [f"{r.evidence} (k̂ = {r.pareto_k:.2f})" for _, r in hit.iterrows()])
        flagged = bool(np.isfinite(pit_p) and pit_p < flag_level)
        add("LOO-PIT uniformity", f"ECDF-PIT test (ArviZ pot_c) p < {flag_level:g}", len(rows),
            [_p_is(pit_p)] if flagged else [],
            note=_p_is(pit_p) if np.isfinite(pit_p) else "too few rows")
    return pd.DataFrame(lines, columns=["check", "rule", "checked", "flagged", "items"]), flags


def _verdict(summary: pd.DataFrame, flags: list[str], rows: int, *, shown: int = 4) -> str:
    if not rows:
        return "No evidence rows to check (a prior-only result)."
    if not flags:
        return (f"Passed: no check flags any of the {rows} evidence rows (prior-data conflict, posterior predictive, "
                "tier × kind, overdispersion, Pareto k̂, LOO-PIT).")
    parts = []
    for _, line in summary[summary["flagged"] > 0].iterrows():
        items = line["items"].split("; ")
        parts.append(f"{line['check']}: " + "; ".join(items[:shown])
                     + (f" and {len(items) - shown} more" if len(items) > shown else ""))
    return f"{len(flags)} flag{'s' if len(flags) > 1 else ''} — " + " | ".join(parts) + "."
