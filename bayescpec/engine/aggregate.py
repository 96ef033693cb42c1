"""Evidence rows -> sufficient statistics, so that sampling cost depends on groups, not rows.

Every row speaks about one *target* (a channel or a constraint) whose latent logit is
``eta[channel]`` or ``severity[constraint]``. Rows that share a ``package`` stem from one underlying
fact and are tempered: each carries weight ``1 / package size`` (so a package counts once in all).
Count and measure rows are additionally tempered by their reliability; a signal's reliability
instead shrinks its probability toward 1/2 (see docs in ARCHITECTURE.md / README).

Signals and measures reduce to additive sufficient statistics per group. Counts do not: a count's
beta-binomial likelihood (:mod:`bayescpec.engine.counts`) is not a function of summed successes and
failures, so count rows stay one term each -- identical rows (same target, indicator, k and n) merged
into one term whose weight is their summed weight.

The arrays here are plain numpy; the model builder copies them into ``pm.Data`` containers.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import gammaln

from ..inputs.spec import Framework, PriorSet
from ..inputs.study import Study
from .counts import count_indicator_ids
from .structure import model_structure, structure_of, units_from_rows

__all__ = ["EvidenceData", "aggregate_evidence", "evidence_data", "observation_rows", "row_weights"]


@dataclass(frozen=True)
class EvidenceData:
    """Per-row arrays (for pointwise log-likelihood) and per-group sufficient statistics."""

    targets: list[str]            # channels then constraints
    diagnostics: list[str]        # "tier:<id>" then "test:<id>"
    rows: pd.DataFrame            # one row per evidence row, model-ready columns
    signal: dict[str, np.ndarray]
    count: dict[str, np.ndarray]
    measure: dict[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def data_arrays(self) -> dict[str, np.ndarray]:
        """The group arrays keyed by their ``pm.Data`` names."""
        out = {}
        for kind in ("signal", "count", "measure"):
            for name, values in getattr(self, kind).items():
                out[f"{kind}_{name}"] = values
        return out


def row_weights(evidence: pd.DataFrame) -> np.ndarray:
    """1 / (number of rows in the row's package), 1 for rows without a package."""
    package = evidence["package"].astype(str)
    sizes = package.map(package[package != ""].value_counts()).fillna(1.0).to_numpy(float)
    return 1.0 / np.where(package.to_numpy() == "", 1.0, sizes)


def observation_rows(evidence: pd.DataFrame) -> pd.DataFrame:
    """The rows that are evidence (signals, counts, measures): recorded data gaps are tracked and
    reported, but they are not evidence for or against conversion."""
    if not len(evidence) or "kind" not in evidence.columns:
        return evidence
    return evidence[evidence["kind"] != "gap"].reset_index(drop=True)


def _target_keys(ev: pd.DataFrame, framework: Framework) -> pd.Series:
    """Each row's latent target: "<channel>|<stage>", "<channel>/<unit>|<stage>" or the constraint."""
    channels = set(framework.channel_ids)
    unit = ev["unit"].astype(str) if "unit" in ev.columns else pd.Series("", index=ev.index)
    stage = ev["stage"].astype(str) if "stage" in ev.columns else pd.Series(framework.stage_ids[-1], index=ev.index)
    target = ev["target"].astype(str)
    routes = [r.id for r in framework.routes]  # a route's reach is a channel's, not a unit's
    owner = np.where((unit != "") & ~stage.isin(routes), target + "/" + unit, target)
    return pd.Series(np.where(target.isin(list(channels)), owner + "|" + stage, target), index=ev.index)


def aggregate_evidence(evidence: pd.DataFrame, framework: Framework, priors: PriorSet,
                       *, units: list[tuple[str, str]] | None = None) -> EvidenceData:
    """Turn validated evidence rows into model-ready per-row columns and group statistics. Data gaps
    are left out; ``units`` (default: those named in the rows) fixes the unit targets' order."""
    evidence = observation_rows(evidence)
    units = units_from_rows(evidence, framework) if units is None else units
    targets = model_structure(framework, priors, units).targets()
    diagnostics = [f"tier:{t}" for t in framework.tier_ids] + [f"test:{t}" for t in framework.test_ids]
    target_index = {name: i for i, name in enumerate(targets)}
    diag_index = {name: i for i, name in enumerate(diagnostics)}
    indicators = {i.id: i for i in framework.indicators}
    constraints = set(framework.constraint_ids)

    ev = evidence
    n = len(ev)
    kind = ev["kind"].to_numpy(str) if n else np.array([], str)
    rows = pd.DataFrame({
        "id": ev["id"].to_numpy(str) if n else np.array([], str),
        "kind": kind,
        "target": _target_keys(ev, framework).map(target_index).to_numpy(int) if n else np.array([], int),
        "tier": ev["tier"].to_numpy(str) if n else np.array([], str),
    })
    test = ev["test"].astype(str).to_numpy() if n else np.array([], str)
    # vectorised (per distinct key, not per row): 100 000 rows aggregate in well under a second
    diag_key = np.where(test != "", np.char.add("test:", test.astype(str)),
                        np.char.add("tier:", rows["tier"].to_numpy(str)))
    rows["diag"] = pd.Series(diag_key).map(diag_index).to_numpy(int) if n else np.array([], int)
    sens = ev["sensitivity"].to_numpy(float) if n else np.array([], float)
    fpr = ev["false_positive"].to_numpy(float) if n else np.array([], float)
    ind = ev["indicator"].to_numpy(str) if n else np.array([], str)
    is_count = kind == "count"
    # a count row reads its indicator's own rates (engine.counts), never a tier's or test type's
    count_index = {name: i for i, name in enumerate(count_indicator_ids(framework))}
    rows["count_indicator"] = np.where(is_count, pd.Series(ind, dtype=object).map(count_index).fillna(-1)
                                       .to_numpy(float), -1).astype(int) if n else np.array([], int)
    if n and (rows["count_indicator"].to_numpy()[is_count] < 0).any():  # validation refuses these first
        bad = rows["id"].to_numpy()[is_count & (rows["count_indicator"].to_numpy() < 0)][0]
        raise ValueError(f"count row {bad!r}: its indicator is not a count indicator of the framework")
    rows["explicit"] = ~np.isnan(sens)
    rows["sens"] = np.nan_to_num(sens, nan=0.5)
    rows["fpr"] = np.nan_to_num(fpr, nan=0.5)
    rows["reliability"] = ev["reliability"].to_numpy(float) if n else np.array([], float)
    weight = row_weights(ev) if n else np.array([], float)
    rows["weight"] = np.where(kind == "signal", weight, weight * rows["reliability"].to_numpy())
    value = ev["value"].to_numpy(float) if n else np.array([], float)
    rows["value"] = np.where(kind == "count", 0.0, np.nan_to_num(value))
    rows["k"] = np.nan_to_num(ev["k"].to_numpy(float)) if n else np.array([], float)
    rows["n"] = np.nan_to_num(ev["n"].to_numpy(float)) if n else np.array([], float)
    # measures: standardise, orient so that + means "more converting" / "more binding"
    z = np.zeros(n)
    loading = np.zeros(n)
    mea_idx = np.flatnonzero(kind == "measure")
    if mea_idx.size:
        target_m = ev["target"].to_numpy(str)[mea_idx]
        tier_m = ev["tier"].to_numpy(str)[mea_idx]
        ind_m = pd.Series(ind[mea_idx], dtype=object)
        worse = ind_m.map({i: v.direction == "higher_is_worse" for i, v in indicators.items()}).to_numpy(bool)
        about_constraint = np.isin(target_m, list(constraints))
        sign = np.where(worse == about_constraint, 1.0, -1.0)
        baseline = ind_m.map({i: v.baseline for i, v in indicators.items()}).to_numpy(float)
        scale = ind_m.map({i: v.scale for i, v in indicators.items()}).to_numpy(float)
        z[mea_idx] = sign * (value[mea_idx] - baseline) / scale
        loading[mea_idx] = pd.Series(tier_m).map(priors.measure_loading).to_numpy(float)
    rows["z"] = z
    rows["loading"] = loading

    def groups(mask: np.ndarray, keys: list[str], sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sub = rows.loc[mask, keys].copy()
        for name, values in sums.items():
            sub[name] = values[mask]
        if len(sub) == 0:
            return {**{k: np.zeros(0, dtype=rows[k].dtype) for k in keys},
                    **{name: np.zeros(0) for name in sums}}
        grouped = sub.groupby(keys, sort=True, as_index=False)[list(sums)].sum()
        return {col: grouped[col].to_numpy() for col in grouped.columns}

    w = rows["weight"].to_numpy()
    sig = (kind == "signal")
    signal = groups(sig, ["target", "diag", "explicit", "sens", "fpr", "reliability"],
                    {"positive": w * rows["value"].to_numpy(), "negative": w * (1 - rows["value"].to_numpy())})
    count = groups(is_count, ["target", "count_indicator", "k", "n"], {"weight": w})
    k_, n_ = count["k"].astype(float), count["n"].astype(float)
    count["log_choose"] = gammaln(n_ + 1) - gammaln(k_ + 1) - gammaln(n_ - k_ + 1)
    count["indicator_index"] = count.pop("count_indicator")
    mea = kind == "measure"
    measure = groups(mea, ["target", "loading"], {"weight": w, "wz": w * z, "wz2": w * z * z})
    signal["explicit"] = signal["explicit"].astype(bool)
    return EvidenceData(targets, diagnostics, rows, signal, count, measure)


#: each study's aggregated evidence, computed once: a study is frozen, so its aggregation never changes
_AGGREGATED: "weakref.WeakKeyDictionary[Study, EvidenceData]" = weakref.WeakKeyDictionary()


def evidence_data(study: Study) -> EvidenceData:
    """The study's evidence aggregated for the model -- once per study (the fit, the model builder,
    the fast path and the ledger all ask for it; the study is frozen, so the answer never changes)."""
    data = _AGGREGATED.get(study)
    if data is None:
        data = aggregate_evidence(study.evidence, study.framework, study.priors, units=structure_of(study).units)
        _AGGREGATED[study] = data
    return data
