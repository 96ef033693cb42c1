"""``robustness``: how fragile each channel's conclusion is, in one table a reviewer can read.

Four checks, each by reweighting the current draws (PSIS, k-hat checked; see :mod:`.base`):

1. **Power-scaling sensitivity** (Kallioinen et al. 2024; ArviZ's ``psense``): the prior, or the
   likelihood, raised to a power α near 1; the sensitivity is the rate at which the posterior of
   each quantity moves (cumulative Jensen-Shannon distance). Above 0.05 the prior is informative
   (prior) or the likelihood is (likelihood); both above: a possible prior-data conflict; prior
   above and likelihood below: a strong prior and weak likelihood. The log prior density of the
   draws is computed in numpy/scipy (:mod:`.logprior`). Beyond the local rate, the IPCC word of
   P(θ > τ) is recomputed with the prior and with the likelihood power-scaled by α = 0.8 and 1.25
   (the range of priorsense's power-scaling sequence).
2. **Diagnosticity overstated** by a factor k: every row's likelihood ratio (in log odds) is 1/k of
   what the prior set says -- for a signal or count, s and f replaced by the (s', f') with
   log(s'/f') = log(s/f)/k and log((1 - s')/(1 - f')) = log((1 - s)/(1 - f))/k; for a measure, the
   loading λ by λ/k -- for each tier's rows and for all rows. The tipping point is the smallest k
   (of 1.1, 1.25, 1.5, 2, 3, 5, 10) at which the channel's IPCC word changes.
3. **Contrary clues**: how many fully reliable clues of each channel tier -- negative (value 0), or
   positive (value 1) -- at the latest stage the tier's catalogue indicators observe for the
   channel, before the channel's IPCC word changes (up to ``max_clues``; where the reweighting stops
   being reliable, the answer is a lower bound, shown as "> n").
4. **Prior sets** (optional): the channel's word in results fitted under other prior sets on the same
   evidence (``bayescpec compare-priors`` or ``bc.fit_prior_sets``).

**Verdict** per channel, with its reasons (``why``):

* *sensitive to prior* when power-scaling flags the prior of θ (a strong prior with a weak likelihood,
  or a prior-data conflict), or the word changes with the prior power-scaled by α ∈ {0.8, 1.25}, or
  between prior sets;
* *sensitive to likelihood* when the word changes with the likelihood power-scaled by α ∈ {0.8, 1.25},
  or with every diagnosticity overstated by 1.25 or less, or after one clue of the weakest channel
  tier (``potential`` in the shipped framework) either way;
* both when both; else *robust*.

A power-scaled reweighting whose k-hat is too high is not used and is noted; so is a probability
within 2 Monte Carlo standard errors of a word's boundary (its word can change with a new seed alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..engine.aggregate import evidence_data
from ..engine.likelihood import pointwise_log_likelihood
from ..engine.sampling import LIKELIHOOD_VARIABLES, posterior_draws
from ..engine.structure import structure_of
from ..errors import InputError
from ..inputs.chain import ANY_CHANNEL
from ..inputs.study import Study
from ..outputs.summary import THRESHOLD, check_options, framework_info
from .base import WORD_BOUNDARIES, analysis_attrs, flat, require_pointwise, study_of, word_index, words
from .draws import Draws, analysis_draws, power_scaling_sensitivity
from .logprior import PRIOR_PARAMETERS, log_prior_density
from .loops import propositions_without_loops
from .value import candidate_rows

__all__ = ["Robustness", "robustness", "weaken", "ALPHAS", "FACTORS", "SENSITIVITY_THRESHOLD"]

ALPHAS = (0.8, 1.25)
FACTORS = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
SENSITIVITY_THRESHOLD = 0.05
#: the boundaries of the IPCC likelihood words
BOUNDARIES = WORD_BOUNDARIES
PSENSE_QUANTITIES = ("theta", "base_theta", "severity", "interruption", "nqpf")


@dataclass
class Robustness:
    """``reviewer`` (one line per channel and its verdict), ``power_scaling`` (psense of every reported
    quantity), ``tipping`` (per channel and tier: diagnosticity factor and contrary clues) and
    ``prior_sets`` (per channel, P and word under each prior set; empty without other results) and
    ``loops`` (each proposition with and without the feedback loops; empty without loops)."""

    reviewer: pd.DataFrame
    power_scaling: pd.DataFrame
    tipping: pd.DataFrame
    prior_sets: pd.DataFrame
    attrs: dict = field(default_factory=dict)
    loops: pd.DataFrame = field(default_factory=pd.DataFrame)


def weaken(s: np.ndarray, f: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """(s', f') whose positive and negative log likelihood ratios are those of (s, f) divided by ``factor``."""
    up = (np.asarray(s) / np.asarray(f)) ** (1.0 / factor)
    down = ((1.0 - np.asarray(s)) / (1.0 - np.asarray(f))) ** (1.0 / factor)
    f_new = (1.0 - down) / (up - down)
    return f_new * up, f_new


def _weakened(rows: pd.DataFrame, draws: dict, factor: float) -> tuple[pd.DataFrame, dict]:
    out = dict(draws)
    for kind in ("tier", "test"):
        if f"sensitivity_{kind}" in draws:
            out[f"sensitivity_{kind}"], out[f"false_positive_{kind}"] = weaken(
                draws[f"sensitivity_{kind}"], draws[f"false_positive_{kind}"], factor)
    if "rate_converting" in draws:  # a count row's per-unit rates are its indicator's own (engine.counts)
        out["rate_converting"], out["rate_not_converting"] = weaken(
            draws["rate_converting"], draws["rate_not_converting"], factor)
    rows = rows.copy()
    explicit = rows["explicit"].to_numpy(bool)
    sens, fpr = weaken(np.where(explicit, rows["sens"], 0.7), np.where(explicit, rows["fpr"], 0.3), factor)
    rows["sens"] = np.where(explicit, sens, rows["sens"])
    rows["fpr"] = np.where(explicit, fpr, rows["fpr"])
    rows["loading"] = rows["loading"] / factor
    return rows, out


def _psense(current: Draws, log_prior: np.ndarray, log_lik: np.ndarray) -> pd.DataFrame:
    """Power-scaling sensitivity of every reported quantity to the prior and to the likelihood."""
    post = current.tree["posterior"].to_dataset()
    names = [n for n in PSENSE_QUANTITIES if n in post and post[n].size]
    records = []
    for name in names:
        var = post[name].transpose("chain", "draw", ...)
        values = current.flat(name)
        found = {group: power_scaling_sensitivity(current, component, values)
                 for group, component in (("prior", log_prior), ("likelihood", log_lik))}
        for index in np.ndindex(values.shape[1:]):
            label = name + "".join(f"[{var[d].values[i]}]" for d, i in zip(var.dims[2:], index))
            p, q = float(found["prior"][index]), float(found["likelihood"][index])
            diagnosis = ("prior-data conflict" if p >= SENSITIVITY_THRESHOLD and q >= SENSITIVITY_THRESHOLD else
                         "strong prior / weak likelihood" if p >= SENSITIVITY_THRESHOLD else "no issue")
            records.append({"quantity": label, "variable": name, "prior_sensitivity": p,
                            "likelihood_sensitivity": q, "diagnosis": diagnosis})
    return pd.DataFrame(records)


def _tier_stage(study: Study, channel: str, tier: str) -> tuple[str, str]:
    """(indicator, stage) a tier's catalogue indicators observe last in the channel's chain."""
    chain = study.framework.chain(channel)
    found = [(chain.index(i.stage or chain[-1]), i.id) for i in study.framework.indicators
             if i.target in (channel, ANY_CHANNEL) and tier in i.tiers and (i.stage or chain[-1]) in chain]
    if not found:
        return "", chain[-1]
    position, indicator = max(found)
    return indicator, chain[position]


def _first_change(log_step: np.ndarray, theta: np.ndarray, word: int, direction: int, current: Draws,
                  threshold: float, max_clues: int) -> str:
    """The number of clues (each adding ``log_step`` to the log weights) before the word moves in ``direction``."""
    for n in range(1, max_clues + 1):
        rw = current.reweight(n * log_step)
        if not rw.reliable:
            return f"> {n - 1}"
        moved = int(word_index(rw.weights @ (theta > threshold))) - word
        if moved * direction > 0:
            return str(n)
    return f"> {max_clues}"


def robustness(
    result: xr.DataTree,
    study: Study | None = None,
    *,
    threshold: float = THRESHOLD,
    others: Mapping[str, xr.DataTree] | None = None,
    max_clues: int = 20,
) -> Robustness:
    """The fragility checks of every channel's conclusion (see the module's doc). ``others`` maps prior
    set names to results fitted on the same evidence under other prior sets."""
    check_options("eti", 0.9, threshold)
    require_pointwise(result, "robustness")
    study = study if study is not None else study_of(result)
    structure = structure_of(study)
    current = analysis_draws(result, study, "robustness")     # a reweighted result: its base draws
    pointwise = require_pointwise(current.tree, "robustness")
    size = current.size
    channels = structure.channels
    theta = current.flat("theta")
    above = theta > threshold
    p_now = current.mean(above)
    word_now = word_index(p_now)
    ll = pointwise.values.reshape(size, -1)
    log_prior = log_prior_density(structure, study.priors, posterior_draws(current.tree, PRIOR_PARAMETERS))
    power = _psense(current, log_prior, ll.sum(axis=1))
    scaled = {}
    for which, density in (("prior", log_prior), ("likelihood", ll.sum(axis=1))):
        for alpha in ALPHAS:
            rw = current.reweight((alpha - 1.0) * density)
            scaled[(which, alpha)] = (rw.weights @ above, rw.khat, rw.reliable)

    rows = evidence_data(study).rows
    draws_flat = posterior_draws(current.tree, LIKELIHOOD_VARIABLES)
    tiers = [t for t in structure.tiers if (rows["tier"] == t).any()]
    tipping_factor: dict[str, list[float]] = {}
    for tier in tiers + ["all"]:
        mask = np.ones(len(rows), bool) if tier == "all" else (rows["tier"] == tier).to_numpy()
        part = rows[mask].reset_index(drop=True)
        found = np.full(len(channels), np.nan)
        for factor in FACTORS:
            weak_rows, weak_draws = _weakened(part, draws_flat, factor)
            rw = current.reweight((pointwise_log_likelihood(weak_rows, weak_draws) - ll[:, mask]).sum(axis=1))
            changed = (word_index(rw.weights @ above) != word_now) & np.isnan(found) & rw.reliable
            found[changed] = factor
        tipping_factor[tier] = list(found)

    channel_tiers = [t.id for t in sorted(study.framework.tiers, key=lambda t: t.rank) if t.targets == "channel"]
    tipping = []
    for c, channel in enumerate(channels):
        for tier in channel_tiers:
            indicator, stage = _tier_stage(study, channel, tier)
            clue = candidate_rows(study, [{"indicator": indicator, "target": channel, "stage": stage, "tier": tier,
                                           "kind": "signal", "value": v} for v in (0.0, 1.0)])
            clue_ll = pointwise_log_likelihood(clue, draws_flat)
            tipping.append({
                "channel": channel, "tier": tier, "stage": stage,
                "diagnosticity_factor": tipping_factor.get(tier, [np.nan] * len(channels))[c],
                "clues_down": _first_change(clue_ll[:, 0], theta[:, c], word_now[c], -1, current, threshold, max_clues),
                "clues_up": _first_change(clue_ll[:, 1], theta[:, c], word_now[c], +1, current, threshold, max_clues),
            })
    tipping = pd.DataFrame(tipping)

    prior_sets = _prior_sets(result, others or {}, channels, threshold)
    mcse = current.mcse(above.astype(float))
    weakest = channel_tiers[0] if channel_tiers else ""
    reviewer = []
    for c, channel in enumerate(channels):
        psense_row = power[power["quantity"] == f"theta[{channel}]"].iloc[0]
        mine = tipping[tipping["channel"] == channel]
        prior_reasons, lik_reasons, notes = [], [], []
        if psense_row["diagnosis"] != "no issue":
            prior_reasons.append(f"power-scaling: {psense_row['diagnosis']} (prior sensitivity "
                                 f"{psense_row['prior_sensitivity']:.2f})")
        for which, reasons in (("prior", prior_reasons), ("likelihood", lik_reasons)):
            for alpha in ALPHAS:
                p_alpha, khat, reliable = scaled[(which, alpha)]
                if not reliable:
                    notes.append(f"{which} scaled by {alpha:g}: reweighting unreliable (k-hat {khat:.2f})")
                elif word_index(p_alpha[c]) != word_now[c]:
                    reasons.append(f"{which} power-scaled by {alpha:g}: P = {p_alpha[c]:.2f}, {words([p_alpha[c]])[0]}")
        if len(prior_sets):
            theirs = prior_sets[prior_sets["channel"] == channel]
            if theirs["changes"].any():
                prior_reasons.append("prior sets: " + "; ".join(f"{r['prior_set']} {r['likelihood']}"
                                                                for _, r in theirs.iterrows()))
        factor_all = tipping_factor["all"][c]
        if factor_all <= 1.25:
            lik_reasons.append(f"diagnosticities overstated by {factor_all:g}")
        one = mine[(mine["tier"] == weakest) & ((mine["clues_down"] == "1") | (mine["clues_up"] == "1"))]
        if len(one):
            way = "negative" if one["clues_down"].iloc[0] == "1" else "positive"
            lik_reasons.append(f"one {way} {weakest} clue")
        verdict = ("sensitive to prior and likelihood" if prior_reasons and lik_reasons else
                   "sensitive to prior" if prior_reasons else "sensitive to likelihood" if lik_reasons else "robust")
        if min(abs(p_now[c] - b) for b in BOUNDARIES) < 2 * mcse[c]:
            notes.append("P is within 2 Monte Carlo standard errors of a word boundary")
        reviewer.append({
            "channel": channel, "p_converting": p_now[c], "mcse_p": mcse[c], "likelihood": words([p_now[c]])[0],
            "prior_sensitivity": psense_row["prior_sensitivity"],
            "likelihood_sensitivity": psense_row["likelihood_sensitivity"], "psense": psense_row["diagnosis"],
            **{f"p_prior_{a:g}": scaled[("prior", a)][0][c] for a in ALPHAS},
            **{f"p_likelihood_{a:g}": scaled[("likelihood", a)][0][c] for a in ALPHAS},
            "prior_sets": "; ".join(f"{r['prior_set']}: {r['likelihood']}" for _, r in
                                    prior_sets[prior_sets["channel"] == channel].iterrows()) if len(prior_sets) else "",
            "diagnosticity_factor": factor_all,
            "clues_down": ", ".join(f"{r['tier']} {r['clues_down']}" for _, r in mine.iterrows()),
            "clues_up": ", ".join(f"{r['tier']} {r['clues_up']}" for _, r in mine.iterrows()),
            "verdict": verdict, "why": "; ".join(prior_reasons + lik_reasons), "note": "; ".join(notes),
        })
    reviewer = pd.DataFrame(reviewer)
    attrs = analysis_attrs(result, "", threshold=threshold, alphas=ALPHAS, factors=FACTORS, max_clues=max_clues,
                           prior_sets=list((others or {}).keys()))
    titles = {"reviewer": f"Robustness of each channel's conclusion (P(θ > {threshold:g}) and its IPCC word)",
              "power": "Power-scaling sensitivity of each reported quantity (prior and likelihood)",
              "tipping": "Tipping points: diagnosticity overstatement and contrary clues before the IPCC word changes",
              "sets": f"P(θ > {threshold:g}) and its IPCC word under each prior set"}
    for frame, key in ((reviewer, "reviewer"), (power, "power"), (tipping, "tipping"), (prior_sets, "sets")):
        frame.attrs = {**attrs, "title": titles[key]}
    loops = propositions_without_loops(current, structure, framework_info(result), threshold=threshold)
    return Robustness(reviewer, power, tipping, prior_sets, dict(result.attrs), loops)


def _prior_sets(result: xr.DataTree, others: Mapping[str, xr.DataTree], channels: list[str],
                threshold: float) -> pd.DataFrame:
    import json

    if not others:
        return pd.DataFrame(columns=["channel", "prior_set", "p_converting", "likelihood", "changes"])
    mine = json.loads(result.attrs.get("input_sha256", "{}")).get("evidence")
    sets = {str(result.attrs.get("prior_set", "this result")): result, **dict(others)}
    for name, other in others.items():
        theirs = json.loads(other.attrs.get("input_sha256", "{}")).get("evidence")
        if theirs != mine or other.attrs.get("as_of") != result.attrs.get("as_of"):
            raise InputError(f"--with: the result of prior set {name!r} was fitted on other evidence (or another "
                             f"as-of date) than this result; compare results of the same evidence only")
    records = []
    for name, other in sets.items():
        p = (flat(other, "theta") > threshold).mean(axis=0)
        labels = list(other["posterior"]["channel"].values)
        for channel in channels:
            value = float(p[labels.index(channel)])
            records.append({"channel": channel, "prior_set": name, "p_converting": value,
                            "likelihood": words([value])[0]})
    frame = pd.DataFrame(records)
    frame["changes"] = frame.groupby("channel")["likelihood"].transform("nunique") > 1
    return frame
