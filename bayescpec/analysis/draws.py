"""The draws an analysis works on: a sampled fit's own draws, or -- for a result updated by PSIS
reweighting -- the base draws it was reweighted from, with the update's log importance ratio.

A reweighted result's ``posterior`` is a resample (every table reads it), and a resample cannot be
reweighted again: the draws the new rows disfavoured are gone or few, and they are exactly what a
leave-out or another observation needs. So an analysis of such a result works on the base draws
(:func:`bayescpec.engine.fastpath.base_draws`) with the *total* log ratio -- the update's plus the
analysis's own -- Pareto-smoothed once, with the k-hat of the total. Its "current posterior"
summaries are the base draws weighted by the update's smoothed weights. For a sampled fit the log
ratio is zero and every summary is the plain one (the same numbers as before this module existed).

Summaries of weighted draws:

* mean, sd, probabilities: the self-normalised importance estimates sum_i w_i h_i;
* Monte Carlo standard error: sqrt(sum_i w_i^2 (h_i - mean)^2 / r_eff), the variance of a
  self-normalised importance estimate (Vehtari et al. 2024, eq. 6) divided by the relative efficiency
  r_eff = ESS / S of h over the base chains (ArviZ), for their autocorrelation; with equal weights it
  is ArviZ's MCSE;
* credible intervals: the weighted quantiles (ETI) or the shortest interval holding the probability
  (HDI) of the weighted draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..engine.aggregate import evidence_data
from ..engine.assemble import log_likelihood_group
from ..engine.fastpath import BASE_GROUP, base_draws
from ..engine.mcmcstats import ess_mean
from ..errors import BayescpecError
from ..inputs.study import Study
from .base import Reweighting, flat, mcse_mean, reweight, sample_shape

__all__ = ["Draws", "analysis_draws", "weighted_interval", "weighted_mcse", "relative_efficiency",
           "power_scaling_sensitivity"]


@dataclass(frozen=True)
class Draws:
    """``tree``: a DataTree with the draws to analyse as ``posterior`` (every quantity), the result's
    ``prior``, ``evidence`` and (when the result has one) ``log_likelihood`` groups and attrs;
    ``log_ratio`` (S,): the update's log importance ratio at each draw (zeros for a sampled fit);
    ``update``: its PSIS reweighting (None for a sampled fit)."""

    tree: xr.DataTree
    log_ratio: np.ndarray
    update: Reweighting | None = None

    @property
    def chains(self) -> int:
        return sample_shape(self.tree)[0]

    @property
    def size(self) -> int:
        chains, draws = sample_shape(self.tree)
        return chains * draws

    @property
    def weights(self) -> np.ndarray:
        """The normalised weights of the current posterior at each draw (equal for a sampled fit)."""
        return self.update.weights if self.update is not None else np.full(self.size, 1.0 / self.size)

    def flat(self, name: str, group: str = "posterior") -> np.ndarray:
        return flat(self.tree, name, group)

    def reweight(self, own_log_ratio: np.ndarray) -> Reweighting:
        """PSIS weights of the posterior changed by ``own_log_ratio``: the total ratio, smoothed once."""
        return reweight(self.log_ratio + np.asarray(own_log_ratio, dtype=float), self.chains)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """The current posterior mean of ``values`` (S, ...) over the draws."""
        values = np.asarray(values, dtype=float)
        return values.mean(axis=0) if self.update is None else np.tensordot(self.weights, values, axes=1)

    def sd(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if self.update is None:
            return values.std(axis=0)
        mean = self.mean(values)
        return np.sqrt(np.clip(self.mean(values**2) - mean**2, 0.0, None))

    def mcse(self, values: np.ndarray) -> np.ndarray:
        """Monte Carlo standard error of :meth:`mean` (see the module's doc)."""
        if self.update is None:
            return mcse_mean(values, self.chains)
        return weighted_mcse(self.weights, values, self.chains)

    def interval(self, values: np.ndarray, kind: str, prob: float) -> np.ndarray:
        """Credible interval (..., 2) of ``values`` (S, ...): ``kind`` "eti" or "hdi"."""
        if self.update is None:
            from ..outputs.summary import credible_interval

            chains = self.chains
            arr = xr.DataArray(np.asarray(values, dtype=float).reshape((chains, -1) + np.shape(values)[1:]),
                               dims=("chain", "draw") + tuple(f"d{i}" for i in range(np.ndim(values) - 1)))
            found = credible_interval(arr, kind, prob)
            return np.moveaxis(found.values, found.dims.index("ci_bound"), -1)
        return weighted_interval(values, self.weights, kind, prob)


def analysis_draws(result: xr.DataTree, study: Study, command: str) -> Draws:
    """The draws ``command`` analyses for ``result`` (see the module's doc); ``study`` is the result's own."""
    if result.attrs.get("update_method") != "psis":
        return Draws(result, np.zeros(int(np.prod(sample_shape(result)))))
    if BASE_GROUP not in result.children:
        raise BayescpecError(
            f"{command}: this result is a PSIS reweighting saved without the draws it was reweighted from (a "
            f"version of bayescpec before they were kept), and its resampled draws cannot be reweighted again "
            f"without bias; analyse a fit instead: `bayescpec run` on the same evidence, or `bayescpec update "
            f"--method refit`")
    posterior, log_ratio = base_draws(result, study)
    groups = {"posterior": posterior, "prior": result["prior"].to_dataset(),
              "evidence": result["evidence"].to_dataset()}
    tree = xr.DataTree.from_dict(groups)
    if "log_likelihood" in result.children:
        tree["log_likelihood"] = log_likelihood_group(tree, evidence_data(study))
    tree.attrs = dict(result.attrs)
    chains = int(posterior.sizes["chain"])
    return Draws(tree, log_ratio, reweight(log_ratio, chains))


def relative_efficiency(values: np.ndarray, chains: int) -> np.ndarray:
    """ESS (mean) / S of each column of ``values`` (S, ...), over ``chains`` chains, within [0.05, 1]."""
    shaped = np.moveaxis(values.reshape((chains, -1) + values.shape[1:]), (0, 1), (-2, -1))
    constant = np.ptp(shaped.reshape(shaped.shape[:-2] + (-1,)), axis=-1) == 0
    ess = ess_mean(shaped.reshape((-1,) + shaped.shape[-2:])).reshape(shaped.shape[:-2])
    return np.where(constant, 1.0, np.clip(ess / values.shape[0], 0.05, 1.0))


def weighted_mcse(weights: np.ndarray, values: np.ndarray, chains: int) -> np.ndarray:
    """MCSE of the self-normalised importance estimate sum_i w_i h_i (``values`` (S, ...), ``weights``
    normalised (S,)): sqrt(sum_i w_i^2 (h_i - mean)^2 / r_eff), r_eff the relative efficiency of h."""
    values = np.asarray(values, dtype=float)
    mean = np.tensordot(weights, values, axes=1)
    variance = np.tensordot(weights**2, (values - mean) ** 2, axes=1)
    return np.sqrt(variance / relative_efficiency(values, chains))


def weighted_interval(values: np.ndarray, weights: np.ndarray, kind: str, prob: float) -> np.ndarray:
    """Credible interval (..., 2) of weighted draws ``values`` (S, ...): the weighted (1 - prob)/2 and
    (1 + prob)/2 quantiles (ETI; the smallest draw whose cumulative weight reaches each), or the
    shortest interval between two draws holding weight at least ``prob`` (HDI)."""
    values = np.asarray(values, dtype=float)
    flat_values = values.reshape(values.shape[0], -1)
    out = np.empty((flat_values.shape[1], 2))
    for j in range(flat_values.shape[1]):
        order = np.argsort(flat_values[:, j], kind="stable")
        x, cum = flat_values[order, j], np.cumsum(weights[order])
        cum /= cum[-1]
        if kind == "hdi":
            before = np.concatenate([[0.0], cum[:-1]])               # weight below each start draw
            ends = np.searchsorted(cum, before + prob - 1e-12)       # first end holding the probability
            valid = ends < len(x)
            starts = np.flatnonzero(valid)
            best = starts[np.argmin(x[ends[valid]] - x[valid])]
            out[j] = x[best], x[ends[best]]
        else:
            lower, upper = np.searchsorted(cum, [(1 - prob) / 2, (1 + prob) / 2])
            out[j] = x[min(lower, len(x) - 1)], x[min(upper, len(x) - 1)]
    return out.reshape(values.shape[1:] + (2,))


def _cjs_distance(values: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> float:
    """Cumulative Jensen-Shannon distance between the ``reference``-weighted and the ``weights``-weighted
    draws ``values``: ArviZ's ``_cjs_dist`` (Kallioinen et al. 2024), whose reference is the equally
    weighted draws, with the reference's ECDF weighted too."""
    order = np.argsort(values)
    x, p_w, q_w = values[order], reference[order], weights[order]
    binwidth = np.diff(x)
    cdf_p = np.cumsum(p_w / np.sum(p_w))[:-1]
    cdf_q = np.cumsum(q_w / np.sum(q_w))[:-1]
    cdf_p_int, cdf_q_int = np.dot(cdf_p, binwidth), np.dot(cdf_q, binwidth)
    pq_numer = np.log2(cdf_p, out=np.zeros_like(cdf_p), where=cdf_p != 0)
    qp_numer = np.log2(cdf_q, out=np.zeros_like(cdf_q), where=cdf_q != 0)
    denom = 0.5 * (cdf_p + cdf_q)
    denom = np.log2(denom, out=np.zeros_like(denom), where=denom != 0)
    cjs_pq = np.sum(binwidth * (cdf_p * (pq_numer - denom))) + 0.5 / np.log(2) * (cdf_q_int - cdf_p_int)
    cjs_qp = np.sum(binwidth * (cdf_q * (qp_numer - denom))) + 0.5 / np.log(2) * (cdf_p_int - cdf_q_int)
    bound = cdf_p_int + cdf_q_int
    return float(np.sqrt((max(0.0, cjs_pq) + max(0.0, cjs_qp)) / bound)) if bound > 0 else 0.0


def power_scaling_sensitivity(current: Draws, component: np.ndarray, values: np.ndarray,
                              alphas: tuple[float, float] = (0.99, 1.01)) -> np.ndarray:
    """Power-scaling sensitivity (ArviZ's ``psense``, Kallioinen et al. 2024) of each column of
    ``values`` (S, ...) to ``component`` (S,: the log prior or log-likelihood of each draw) raised to a
    power near 1: the derivative of the CJS distance from today's posterior, by finite differences at
    ``alphas``. The power-scaled weights are the total log ratio (the update's, if any, plus
    (alpha - 1) x the component), tail-smoothed once as ``psense`` smooths them; today's posterior is
    the update's weights. For a sampled fit it is ``psense`` exactly."""
    from arviz_stats.base import array_stats

    component = np.asarray(component, dtype=float)
    scaled = []
    for alpha in alphas:
        # psense smooths (alpha - 1) * ary: hand it the total ratio divided by (alpha - 1)
        ary = component if current.update is None else (current.log_ratio + (alpha - 1.0) * component) / (alpha - 1.0)
        log_w = np.asarray(array_stats.power_scale_lw(ary, alpha=alpha), dtype=float)
        weights = np.exp(log_w - log_w.max())
        scaled.append(weights / weights.sum())
    reference = current.weights
    flat_values = np.asarray(values, dtype=float).reshape(len(component), -1)
    out = np.empty(flat_values.shape[1])
    for j in range(flat_values.shape[1]):
        x = flat_values[:, j]
        lower, upper = (max(_cjs_distance(x, reference, w), _cjs_distance(-x, reference, w)) for w in scaled)
        out[j] = (-lower / np.log2(alphas[0]) + upper / np.log2(alphas[1])) / 2
    return out.reshape(np.shape(values)[1:])
