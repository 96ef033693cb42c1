"""What every analysis shares: the study a result was fitted on (hash-checked), its draws, Pareto-smoothed
importance reweighting with its k-hat check, weighted summaries, Monte Carlo standard errors and the
IPCC word of a probability.

**Reweighting.** Every analysis asks how the posterior would look under a changed likelihood (a
package left out, an outcome observed, a prior or likelihood power-scaled, contrary clues added)
without refitting: the current draws weighted by the ratio of the changed to the current density are
an importance sample of the changed posterior. The weights are Pareto-smoothed (PSIS, Vehtari et al.
2024) and trusted when the Pareto shape k-hat is below min(1 - 1/log10 S, 0.7) for S draws (the
sample-size dependent threshold of that paper); above it, the answer is marked unreliable (and,
where the analysis can, refitted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..engine.fastpath import khat_threshold_for
from ..engine.mcmcstats import ess_mean
from ..engine.psis import psis_one
from ..errors import BayescpecError
from ..inputs.study import Study, load_study
from ..outputs.summary import ipcc_likelihood, provenance
from ..workflow.store import check_inputs

__all__ = ["khat_threshold_for", "study_of", "require_pointwise", "flat", "sample_shape", "Reweighting", "reweight",
           "weighted_mean", "weighted_sd", "words", "word_index", "WORD_BOUNDARIES", "mcse_mean", "analysis_attrs",
           "logit_odds"]

#: the boundaries of the IPCC likelihood words (:func:`~bayescpec.outputs.summary.ipcc_likelihood`)
WORD_BOUNDARIES = (0.01, 0.10, 0.33, 0.66, 0.90, 0.99)


def study_of(result: xr.DataTree, *, framework=None, priors=None, evidence=None, sources=None) -> Study:
    """The study ``result`` was fitted on: its recorded input files (or the ones given), with evidence as
    of the result's date; raises :class:`~bayescpec.errors.ResultMismatchError` when a file changed
    since (the SHA-256 of every input is compared) and an input error when one is missing."""
    files = json.loads(result.attrs.get("input_files", "{}") or "{}")
    chosen = {"framework": framework, "priors": priors, "evidence": evidence, "sources": sources}
    paths = {role: (given if given is not None else files.get(role)) for role, given in chosen.items()}
    study = load_study(framework=paths["framework"], priors=paths["priors"] or "baseline",
                       evidence=paths["evidence"], sources=paths["sources"],
                       as_of=str(result.attrs.get("as_of")) if result.attrs.get("as_of") else None)
    check_inputs(result, study)
    return study


def require_pointwise(result: xr.DataTree, command: str) -> xr.DataArray:
    """The result's per-row log-likelihood (chain, draw, evidence) as the fit used it -- each row's
    stored (unweighted) value times its tempering ``weight`` -- so that it matches
    :func:`~bayescpec.engine.likelihood.pointwise_log_likelihood`; a clear error when it has none."""
    if "log_likelihood" not in result.children or "rows" not in result["log_likelihood"].data_vars:
        raise BayescpecError(
            f"{command}: the result has no log_likelihood group (each evidence row's log-likelihood at every "
            f"draw, kept by `bayescpec run` for logs of up to 20 000 rows); refit it with `bayescpec run` "
            f"to analyse it")
    group = result["log_likelihood"]
    rows = group["rows"].transpose("chain", "draw", "evidence")
    return rows * group["weight"] if "weight" in group.data_vars else rows


def sample_shape(result: xr.DataTree, group: str = "posterior") -> tuple[int, int]:
    return int(result[group].sizes["chain"]), int(result[group].sizes["draw"])


def flat(result: xr.DataTree, name: str, group: str = "posterior") -> np.ndarray:
    """Variable ``name`` of ``group`` with (chain, draw) flattened chain-major into one leading axis."""
    var = result[group][name].transpose("chain", "draw", ...)
    return var.values.reshape((var.shape[0] * var.shape[1],) + var.shape[2:])


@dataclass(frozen=True)
class Reweighting:
    """Normalised importance weights (S,), their Pareto k-hat, importance ESS and whether trusted."""

    weights: np.ndarray
    khat: float
    ess: float
    threshold: float

    @property
    def reliable(self) -> bool:
        return bool(self.khat < self.threshold)


def reweight(log_ratio: np.ndarray, chains: int = 1, *, smooth: bool = True) -> Reweighting:
    """PSIS weights for log importance ratios (S,) of draws flattened chain-major over ``chains``."""
    log_ratio = np.asarray(log_ratio, dtype=float)
    size = log_ratio.size
    threshold = khat_threshold_for(size)
    finite = np.isfinite(log_ratio)
    if np.any(np.isnan(log_ratio)) or np.any(log_ratio == np.inf) or not finite.any():
        return Reweighting(np.full(size, 1.0 / size), float("inf"), 0.0, threshold)
    if not finite.all():  # a zero density at some draws: their weight is zero
        log_ratio = np.where(finite, log_ratio, log_ratio[finite].min() - 800.0)
    if np.ptp(log_ratio) < 1e-12:
        return Reweighting(np.full(size, 1.0 / size), float("-inf"), float(size), threshold)
    if smooth:
        shifted = log_ratio - np.max(log_ratio)
        r_eff = 1.0
        if chains > 1 and size % chains == 0:
            ratios = np.exp(shifted).reshape(chains, -1)
            r_eff = float(np.clip(ess_mean(ratios[None])[0] / size, 0.05, 1.0))
        log_weights, khat = psis_one(shifted, r_eff)
    else:
        log_weights, khat = log_ratio, float("nan")
    weights = np.exp(log_weights - np.max(log_weights))
    weights /= weights.sum()
    return Reweighting(weights, khat, float(1.0 / np.sum(weights**2)), threshold)


def weighted_mean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted mean over the leading axis: weights (S,) or (Y, S) against values (S, ...)."""
    return np.tensordot(weights, values, axes=([-1], [0]))


def weighted_sd(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    mean = weighted_mean(weights, values)
    second = weighted_mean(weights, values**2)
    return np.sqrt(np.clip(second - mean**2, 0.0, None))


def words(probabilities) -> list[str]:
    """The IPCC likelihood word of each probability."""
    return [ipcc_likelihood(float(np.clip(p, 0.0, 1.0))) for p in np.ravel(probabilities)]


def word_index(p) -> np.ndarray:
    """Index of the IPCC word of each probability (0 = exceptionally unlikely ... 6 = virtually certain),
    with the scale's own inclusive ends (> .01, > .10, > .33, >= .66, >= .90, >= .99)."""
    p = np.asarray(p, dtype=float)
    return (p > 0.01).astype(int) + (p > 0.10) + (p > 0.33) + (p >= 0.66) + (p >= 0.90) + (p >= 0.99)


def logit_odds(p: np.ndarray, draws: int) -> np.ndarray:
    """log odds of a probability estimated from ``draws`` draws, kept finite (p within 1/(2S) of 0 or 1)."""
    eps = 0.5 / max(int(draws), 1)
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def mcse_mean(values: np.ndarray, chains: int) -> np.ndarray:
    """Monte Carlo standard error of the mean of ``values`` (S, ...) drawn as ``chains`` chains
    (ArviZ's ``mcse``, method "mean", over chain and draw, as :mod:`bayescpec.engine.mcmcstats` computes it
    for every element at once, without importing ArviZ's statistics: tests/test_mcmcstats.py compares them)."""
    from ..engine.mcmcstats import mcse_mean as _mcse_of_rows

    values = np.asarray(values, dtype=float)
    shaped = values.reshape((chains, -1) + values.shape[1:])
    moved = np.moveaxis(shaped, (0, 1), (-2, -1))                 # (..., chain, draw)
    rows = moved.reshape((-1,) + moved.shape[-2:])
    constant = np.ptp(rows.reshape(rows.shape[0], -1), axis=-1) == 0
    out = np.where(constant, 0.0, _mcse_of_rows(rows))
    return out.reshape(moved.shape[:-2])


def analysis_attrs(result: xr.DataTree, title: str, **extra) -> dict:
    """``attrs`` of an analysis table: its title, the result's provenance (for the footnote) and figure
    caption (:func:`~bayescpec.outputs.captions.provenance_caption`), and anything else."""
    from ..outputs.captions import provenance_caption

    return {"title": title, "provenance": provenance(result), "caption": provenance_caption(result.attrs), **extra}


def result_folder(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_dir() else path.parent
