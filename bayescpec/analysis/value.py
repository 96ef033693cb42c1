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
  set); a measure's outcomes z (continuous: a mixture over the draws of Normal(λ logit π_i, 1)) by a
  deterministic quadrature on the predictive's probability scale (``outcomes`` nodes,
  :mod:`.preposterior`): no outcome is simulated, so nothing depends on a seed.

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

**Monte Carlo error and ties.** The draws themselves are random: each figure has its Monte Carlo
standard error by batch means over contiguous blocks of the draws (``mcse_sd_reduction``,
``mcse_abs_dp``, ``mcse_word_change``). Designs are ranked per channel by the expected reduction of the
posterior sd of θ; a design whose reduction differs from the one ranked above it by at most 2 MCSE of
the difference (block by block: the designs share their draws) is **tied** with it and shares its
``rank`` (``tied`` is True for every member of a group of two or more); ``position`` is the plain order.

On a result updated by PSIS reweighting, everything is computed on its base draws with the update's
importance ratio (:mod:`.draws`).
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
from .base import analysis_attrs, require_pointwise, study_of
from .draws import Draws, analysis_draws, relative_efficiency
from .influence import affected_channels
from .preposterior import (NodeLikelihood, block_count, preposterior, preposterior_blocks, preposterior_measure,
                           preposterior_measure_blocks)

__all__ = ["Design", "designs", "value_of_information", "preposterior", "preposterior_measure", "candidate_rows"]


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


def _measure_means(rows: pd.DataFrame, draws: dict, reliability: float) -> np.ndarray:
    """λ logit π at each draw of a measure design, read off the model's own likelihood of its template row:
    ll(z) = w (-(z - mu)^2 / 2 - log(2 pi) / 2) with w = reliability, so mu = (ll(1) - ll(0)) / w + 1/2."""
    template = rows.reset_index(drop=True)
    at = {z: pointwise_log_likelihood(template.assign(z=z), draws)[:, 0] for z in (0.0, 1.0)}
    return (at[1.0] - at[0.0]) / reliability + 0.5


def _node_likelihood(rows: pd.DataFrame, draws: dict) -> NodeLikelihood:
    """log p(z | draw) (S', G) of a measure design's outcomes z at the draws ``index`` (all when None), by
    the model's likelihood."""
    template = rows.reset_index(drop=True)
    copies: dict[int, pd.DataFrame] = {}

    def at(z: np.ndarray, index: np.ndarray | None) -> np.ndarray:
        if len(z) not in copies:
            copies[len(z)] = pd.concat([template] * len(z), ignore_index=True)
        part = draws if index is None else {name: value[index] for name, value in draws.items()}
        return pointwise_log_likelihood(copies[len(z)].assign(z=z), part)

    return at


def _summaries(design: Design, rows: pd.DataFrame, draws: dict, theta: np.ndarray, current: Draws,
               reliability: float, nodes: int, threshold: float) -> tuple[dict, dict | None]:
    """The design's preposterior summary on all the draws, and on each block of them (for the MCSE)."""
    options = {"weights": current.weights, "log_ratio": current.log_ratio if current.update is not None else None,
               "r_eff": relative_efficiency((theta > threshold).astype(float), current.chains)}
    if design.kind == "measure":
        means, node_log_lik = _measure_means(rows, draws, reliability), _node_likelihood(rows, draws)
        return (preposterior_measure(means, node_log_lik, theta, threshold, nodes=nodes, **options),
                preposterior_measure_blocks(means, node_log_lik, theta, threshold, nodes=nodes, **options))
    ll = pointwise_log_likelihood(rows, draws)
    return (preposterior(ll, current.weights @ np.exp(ll), theta, threshold, **options),
            preposterior_blocks(ll, theta, threshold, **options))


def _block_values(blocks: dict | None, c: int) -> np.ndarray:
    """(blocks, 3): sd reduction, E|ΔP| and P(word changes) of channel ``c`` in each block of the draws."""
    if blocks is None:
        return np.zeros((0, 3))
    return np.stack([blocks["sd_now"][:, c] - blocks["expected_sd"][:, c], blocks["expected_abs_dp"][:, c],
                     blocks["p_word_change"][:, c]], axis=1)


def _block_mcse(values: np.ndarray) -> np.ndarray:
    """Batch-means MCSE of each column of ``values`` (blocks, ...): sd over blocks / sqrt(blocks)."""
    if values.shape[0] < 2:
        return np.full(values.shape[1:], np.nan)
    return values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


def _rank_with_ties(table: pd.DataFrame, blocks: np.ndarray) -> pd.DataFrame:
    """``position`` (order within the channel), ``rank`` (shared by designs tied with the one above: their
    sd reductions within 2 MCSE of the difference, taken block by block) and ``tied``."""
    position = table.groupby("channel", sort=False).cumcount().to_numpy() + 1
    rank = position.copy()
    tied_above = np.zeros(len(table), bool)
    reduction = table["sd_reduction"].to_numpy()
    for j in range(1, len(table)):
        if position[j] == 1:
            continue
        gap = abs(reduction[j - 1] - reduction[j])
        noise = _block_mcse(blocks[:, j - 1] - blocks[:, j]) if blocks.shape[0] >= 2 else np.nan
        if gap <= 2 * noise or gap == 0:
            tied_above[j] = True
            rank[j] = rank[j - 1]
    table = table.copy()
    table.insert(0, "position", position)
    table.insert(0, "rank", rank)
    shared = pd.Series(rank).groupby([table["channel"].to_numpy(), rank]).transform("size").to_numpy()
    table["tied"] = shared > 1
    return table


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
) -> pd.DataFrame:
    """The value of observing each design next (see the module's doc): one line per design and
    affected channel, ranked within each channel by the expected reduction of the posterior sd of θ,
    with Monte Carlo standard errors and ties. ``outcomes`` is the number of quadrature nodes of a
    measure's predictive."""
    check_options("eti", 0.9, threshold)
    if not 0 < reliability <= 1:
        raise InputError(f"--reliability: must be in (0, 1]; found {reliability!r}")
    if count_n < 1 or outcomes < 10:
        raise InputError(f"--count-n must be at least 1 and --outcomes at least 10; found {count_n}, {outcomes}")
    require_pointwise(result, "next")
    study = study if study is not None else study_of(result)
    structure = structure_of(study)
    current = analysis_draws(result, study, "next")          # a reweighted result: its base draws
    draws_flat = posterior_draws(current.tree, LIKELIHOOD_VARIABLES)
    theta = current.flat("theta")
    labels = {i.id: i.label for i in study.framework.indicators}
    records, block_values = [], []
    chosen = designs(study, indicators=indicators, targets=targets, count_n=count_n, tests=tests)
    per_design = [_records(study, d, reliability) for d in chosen]
    all_rows = candidate_rows(study, [r for recs in per_design for r in recs])   # one aggregation for all
    starts = np.cumsum([0] + [len(recs) for recs in per_design])
    for d, design in enumerate(chosen):
        rows = all_rows.iloc[starts[d]:starts[d + 1]].reset_index(drop=True)
        summary, blocks = _summaries(design, rows, draws_flat, theta, current, reliability, outcomes, threshold)
        likely = summary["p_outcome"] > 1e-3
        channels = [design.target] if design.target in structure.channels else affected_channels(structure,
                                                                                                  design.target)
        for channel in channels:
            c = structure.channels.index(channel)
            values = _block_values(blocks, c)
            mcse = _block_mcse(values)
            block_values.append(values[:, 0])
            records.append({
                "channel": channel, "indicator": design.indicator, "label": labels[design.indicator],
                "target": design.target, "stage": design.stage, "tier": design.tier, "test": design.test,
                "kind": design.kind, "n": design.n if design.kind == "count" else np.nan, "design": design.name,
                "sd_now": summary["sd_now"][c], "expected_sd": summary["expected_sd"][c],
                "sd_reduction": summary["sd_now"][c] - summary["expected_sd"][c],
                "mcse_sd_reduction": mcse[0],
                "expected_abs_dp": summary["expected_abs_dp"][c], "mcse_abs_dp": mcse[1],
                "p_word_change": summary["p_word_change"][c], "mcse_word_change": mcse[2],
                "word_change_near_boundary": bool(summary["word_change_near_boundary"][c]),
                "p_now": summary["p_now"][c], "word_now": ipcc_likelihood(float(np.clip(summary["p_now"][c], 0, 1))),
                "p_positive": float(summary["p_outcome"][0]) if design.kind == "signal" else np.nan,
                "min_ess": float(summary["ess"][likely].min()), "max_khat": float(summary["khat"][likely].max()),
                "p_unreliable": summary["p_unreliable"],
            })
    table = pd.DataFrame(records)
    if len(table):
        order = {c: i for i, c in enumerate(structure.channels)}
        table["_c"] = table["channel"].map(order)
        table = table.sort_values(["_c", "sd_reduction", "expected_abs_dp"], ascending=[True, False, False],
                                  kind="stable")
        blocks = np.array(block_values).T[:, table.index.to_numpy()] if block_values else np.zeros((0, len(table)))
        table = _rank_with_ties(table.drop(columns="_c").reset_index(drop=True), blocks)
    table.attrs = analysis_attrs(
        result, f"Value of information: what to observe next (expected effect on θ per channel; τ = {threshold:g})",
        threshold=threshold, count_n=count_n, outcomes=outcomes, reliability=reliability,
        batches=block_count(current.size))
    return table
