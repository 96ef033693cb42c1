"""``next``: the value of observing each catalogue indicator next (preposterior analysis on the current draws).

A **design** is one way an indicator of the framework's catalogue can be observed next: the indicator,
its target (every channel for an ``any_channel`` indicator), the stage it observes, a tier it may be
observed at, for a signal also each Van Evera test type (whose diagnosticity then replaces the
tier's, so one design per test type, shown with the indicator's highest tier), and the kind (signal; count of ``count_n`` units; measure). The new row is fully reliable
(``reliability``, default 1) and its own package (weight 1).

For each design, with y its possible outcomes and i the current posterior draws:

* the likelihood of each outcome at each draw, p(y | draw i), is the model's own pointwise likelihood
  of the candidate row (:func:`bayescpec.engine.likelihood.pointwise_log_likelihood`);
* the predictive probability of an outcome is P(y) = mean_i p(y | draw i);
* the posterior after observing y is the current draws reweighted by w_i ∝ p(y | draw i);
* outcomes: a signal's two values and a count's n + 1 values are enumerated exactly (a finite
  set); a measure's outcomes are simulated from the predictive (draw i at random, then
  z = λ logit π_i + ε, ε ~ N(0, 1); ``outcomes`` of them, each with probability 1/outcomes).

The measures, per affected channel c (the target channel; for a constraint, every channel it binds
directly or through a feedback loop) and with τ the threshold:

* expected posterior sd of θ_c, Σ_y P(y) sd(θ_c | y), and its reduction from today's sd;
* expected absolute change of P(θ_c > τ), Σ_y P(y) |P(θ_c > τ | y) − P(θ_c > τ)|;
* probability that the IPCC likelihood word of P(θ_c > τ) changes, Σ_y P(y) [word(y) ≠ word today].

The weights of each outcome are Pareto-smoothed (PSIS). A signal's weights are bounded (p(y | draw) is
a probability), so reliable; an informative count or measure can leave few effective draws for an
unlikely outcome, so each design reports the smallest importance ESS and the largest k-hat over its
outcomes (with P(y) > 0.001) and ``p_unreliable``, the predictive probability of outcomes whose k-hat
is above min(1 - 1/log10 S, 0.7): its summaries are then less certain than the table's digits.
Designs are ranked per channel by the expected reduction of the posterior sd of θ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..engine.aggregate import aggregate_evidence
from ..engine.likelihood import pointwise_log_likelihood
from ..engine.sampling import LIKELIHOOD_VARIABLES, posterior_draws
from ..engine.structure import structure_of
from ..errors import InputError, allowed_list, did_you_mean
from ..inputs.chain import ANY_CHANNEL
from ..inputs.study import Study
from ..outputs.summary import THRESHOLD, check_options, ipcc_likelihood
from .base import analysis_attrs, flat, khat_threshold_for, require_pointwise, sample_shape, study_of
from .influence import affected_channels

__all__ = ["Design", "designs", "value_of_information", "preposterior", "candidate_rows"]


@dataclass(frozen=True)
class Design:
    indicator: str
    target: str
    stage: str
    tier: str
    test: str
    kind: str
    n: int = 0

    @property
    def name(self) -> str:
        how = self.tier + (f"/{self.test}" if self.test else "")
        return f"{self.indicator} @ {self.target}" + (f"|{self.stage}" if self.stage else "") + \
            f" ({how}, {self.kind}{f' n={self.n}' if self.kind == 'count' else ''})"


def _check_names(names, allowed: list[str], what: str, option: str) -> list[str]:
    bad = [n for n in names if n not in allowed]
    if bad:
        raise InputError(f"{option}: unknown {what} {bad[0]!r}{did_you_mean(bad[0], allowed)}; allowed: "
                         f"{allowed_list(allowed)}")
    return list(names)


def designs(study: Study, *, indicators=None, targets=None, count_n: int = 10, tests: bool = True) -> list[Design]:
    """Every design of the catalogue (or of ``indicators``; only about ``targets`` when given)."""
    fw = study.framework
    catalogue = [i.id for i in fw.indicators]
    chosen = _check_names(indicators, catalogue, "indicator", "--indicator") if indicators else catalogue
    if targets:
        _check_names(targets, fw.channel_ids + fw.constraint_ids, "target", "--target")
    out = []
    for ind in (fw.indicator(i) for i in chosen):
        owners = fw.channel_ids if ind.target == ANY_CHANNEL else [ind.target]
        for owner in owners:
            if targets and owner not in targets:
                continue
            stage = (ind.stage or fw.chain(owner)[-1]) if owner in fw.channel_ids else ""
            for tier in ind.tiers:
                out += [Design(ind.id, owner, stage, tier, "", kind, count_n if kind == "count" else 0)
                        for kind in ind.kinds]
            if "signal" in ind.kinds and tests:  # a test type's diagnosticity replaces the tier's: once per test
                out += [Design(ind.id, owner, stage, ind.tiers[-1], t, "signal") for t in fw.test_ids]
    return out


def candidate_rows(study: Study, records: list[dict]) -> pd.DataFrame:
    """Model-ready rows (as :attr:`EvidenceData.rows`) of hypothetical observations: each record gives
    indicator, target, stage, tier, kind, and value / k / n / test / reliability as needed."""
    base = {"observed": "", "unit": "", "test": "", "sensitivity": np.nan, "false_positive": np.nan,
            "reliability": 1.0, "package": "", "source": "", "note": "", "value": np.nan, "k": np.nan,
            "n": np.nan}
    frame = pd.DataFrame([{**base, "id": f"candidate-{i}", **rec} for i, rec in enumerate(records)])
    frame["target_type"] = np.where(frame["target"].isin(study.framework.constraint_ids), "constraint", "channel")
    return aggregate_evidence(frame, study.framework, study.priors, units=structure_of(study).units).rows


def _records(study: Study, design: Design, reliability: float) -> list[dict]:
    """The candidate rows of a design: one per outcome (signal, count) or one template (measure)."""
    common = {"indicator": design.indicator, "target": design.target, "stage": design.stage, "tier": design.tier,
              "kind": design.kind, "test": design.test, "reliability": reliability}
    if design.kind == "signal":
        return [{**common, "value": v} for v in (1.0, 0.0)]
    if design.kind == "count":
        return [{**common, "k": float(k), "n": float(design.n)} for k in range(design.n + 1)]
    return [{**common, "value": float(study.framework.indicator(design.indicator).baseline)}]


def _outcomes(design: Design, rows: pd.DataFrame, draws: dict, size: int, outcomes: int, reliability: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """log p(y | draw) (S, Y) and P(y) (Y,) of a design, from its candidate ``rows``."""
    if design.kind in ("signal", "count"):
        ll = pointwise_log_likelihood(rows, draws)
        return ll, np.exp(ll).mean(axis=0)
    template = rows.reset_index(drop=True)
    at = {z: pointwise_log_likelihood(template.assign(z=z), draws)[:, 0] for z in (0.0, 1.0)}
    # ll(z) = w (-(z - mu)^2 / 2 - log(2 pi) / 2) with w = reliability: mu = (ll(1) - ll(0)) / w + 1/2
    mean = (at[1.0] - at[0.0]) / reliability + 0.5                   # lambda logit(pi) at each draw
    z = mean[rng.integers(0, size, outcomes)] + rng.standard_normal(outcomes)
    ll = pointwise_log_likelihood(pd.concat([template] * outcomes, ignore_index=True).assign(z=z), draws)
    return ll, np.full(outcomes, 1.0 / outcomes)


def preposterior(log_lik: np.ndarray, p_outcome: np.ndarray, theta: np.ndarray, threshold: float) -> dict:
    """Expected posterior summaries of θ (S, C) over outcomes whose likelihoods at the draws are
    ``exp(log_lik)`` (S, Y) and predictive probabilities ``p_outcome`` (Y,); the posterior under each
    outcome is the draws reweighted by its likelihood."""
    weights, khat = _smoothed(log_lik)
    p_outcome = np.asarray(p_outcome, dtype=float) / np.sum(p_outcome)
    above = (theta > threshold).astype(float)
    mean = weights @ theta
    sd = np.sqrt(np.clip(weights @ theta**2 - mean**2, 0.0, None))         # (Y, C)
    prob = weights @ above
    now_p = above.mean(axis=0)
    now_words = np.array([ipcc_likelihood(p) for p in now_p])
    new_words = np.array([[ipcc_likelihood(float(np.clip(p, 0, 1))) for p in row] for row in prob])
    ess = 1.0 / np.sum(weights**2, axis=1)
    return {"sd_now": theta.std(axis=0), "expected_sd": p_outcome @ sd, "p_now": now_p,
            "expected_abs_dp": p_outcome @ np.abs(prob - now_p),
            "p_word_change": p_outcome @ (new_words != now_words[None, :]).astype(float),
            "ess": ess, "khat": khat, "p_outcome": p_outcome, "posterior_sd": sd, "posterior_p": prob,
            "p_unreliable": float(p_outcome @ (khat >= khat_threshold_for(log_lik.shape[0])))}


def _smoothed(log_lik: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed importance weights (Y, S) of each outcome's likelihood (S, Y), and their k-hat (Y,)."""
    from arviz_stats.base import array_stats

    shifted = (log_lik - log_lik.max(axis=0, keepdims=True)).T
    flat_rows = np.ptp(shifted, axis=1) < 1e-12
    log_w, khat = array_stats.psislw(-shifted, axis=-1)
    log_w = np.where(flat_rows[:, None], 0.0, np.asarray(log_w))
    khat = np.where(flat_rows, -np.inf, np.asarray(khat, dtype=float))
    weights = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True), khat


def value_of_information(
    result: xr.DataTree,
    study: Study | None = None,
    *,
    threshold: float = THRESHOLD,
    indicators=None,
    targets=None,
    count_n: int = 10,
    outcomes: int = 200,
    reliability: float = 1.0,
    tests: bool = True,
    seed: int | None = None,
) -> pd.DataFrame:
    """The value of observing each design next (see the module's doc): one line per design and
    affected channel, ranked within each channel by the expected reduction of the posterior sd of θ."""
    check_options("eti", 0.9, threshold)
    if not 0 < reliability <= 1:
        raise InputError(f"--reliability: must be in (0, 1]; found {reliability!r}")
    if count_n < 1 or outcomes < 10:
        raise InputError(f"--count-n must be at least 1 and --outcomes at least 10; found {count_n}, {outcomes}")
    require_pointwise(result, "next")
    study = study if study is not None else study_of(result)
    structure = structure_of(study)
    chains, draws = sample_shape(result)
    size = chains * draws
    draws_flat = posterior_draws(result, LIKELIHOOD_VARIABLES)
    theta = flat(result, "theta")
    rng = np.random.default_rng(int(result.attrs.get("seed", 0)) + 12 if seed is None else seed)
    labels = {i.id: i.label for i in study.framework.indicators}
    records = []
    chosen = designs(study, indicators=indicators, targets=targets, count_n=count_n, tests=tests)
    per_design = [_records(study, d, reliability) for d in chosen]
    all_rows = candidate_rows(study, [r for recs in per_design for r in recs])   # one aggregation for all
    starts = np.cumsum([0] + [len(recs) for recs in per_design])
    for d, design in enumerate(chosen):
        rows = all_rows.iloc[starts[d]:starts[d + 1]].reset_index(drop=True)
        ll, p_y = _outcomes(design, rows, draws_flat, size, outcomes, reliability, rng)
        summary = preposterior(ll, p_y, theta, threshold)
        likely = summary["p_outcome"] > 1e-3
        channels = [design.target] if design.target in structure.channels else affected_channels(structure,
                                                                                                  design.target)
        for channel in channels:
            c = structure.channels.index(channel)
            records.append({
                "channel": channel, "indicator": design.indicator, "label": labels[design.indicator],
                "target": design.target, "stage": design.stage, "tier": design.tier, "test": design.test,
                "kind": design.kind, "n": design.n if design.kind == "count" else np.nan, "design": design.name,
                "sd_now": summary["sd_now"][c], "expected_sd": summary["expected_sd"][c],
                "sd_reduction": summary["sd_now"][c] - summary["expected_sd"][c],
                "expected_abs_dp": summary["expected_abs_dp"][c], "p_word_change": summary["p_word_change"][c],
                "p_now": summary["p_now"][c], "word_now": ipcc_likelihood(summary["p_now"][c]),
                "p_positive": float(p_y[0]) if design.kind == "signal" else np.nan,
                "min_ess": float(summary["ess"][likely].min()), "max_khat": float(summary["khat"][likely].max()),
                "p_unreliable": summary["p_unreliable"],
            })
    table = pd.DataFrame(records)
    if len(table):
        order = {c: i for i, c in enumerate(structure.channels)}
        table["_c"] = table["channel"].map(order)
        table = table.sort_values(["_c", "sd_reduction", "expected_abs_dp"], ascending=[True, False, False],
                                  kind="stable").drop(columns="_c").reset_index(drop=True)
        table.insert(0, "rank", table.groupby("channel", sort=False).cumcount() + 1)
    table.attrs = analysis_attrs(
        result, f"Value of information: what to observe next (expected effect on θ per channel; τ = {threshold:g})",
        threshold=threshold, count_n=count_n, outcomes=outcomes, reliability=reliability)
    return table
