"""Replicated evidence: what each evidence row could have been under the model, at given parameter draws --
the predictive distribution a model check compares the observation with (``bayescpec check``).

The replicates come from the likelihood itself, so they follow whatever the engine's model is:

* **Signals and counts** are enumerated: the probability of every value a row can take (0 or 1 for a
  signal, 0..n for a count of n units) is :func:`~.likelihood.pointwise_log_likelihood` evaluated at that
  value (unweighted), normalised over the values at each draw. A signal's reliability is part of it (a clue
  read correctly with probability r, else a coin toss); a count gets the count model the likelihood
  implements (binomial today; a beta-binomial or any other distribution over 0..n alike).
* **Measures** (the standardised score z) are Normal: their mean and sd at each draw are read off the
  likelihood's log density at z = -1, 0, 1 (a quadratic in z), and checked against it at the observed z.

As in :mod:`.simulate`, the *tempering* of the fit (package weights, and the reliability weight of counts and
measures) is left out: a power likelihood down-weights doubtful or dependent rows but has no generative
process to replicate from.

On the replicate scale a signal is its value (1 = the clue seen), a count its k and a measure its z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .likelihood import pointwise_log_likelihood

__all__ = ["RowPredictive", "row_predictive", "observed_values"]

#: most likelihood evaluations held in memory at once (draws x enumerated values), about 32 MB
_CHUNK = 4_000_000


@dataclass(frozen=True)
class RowPredictive:
    """Each row's predictive distribution at each of S draws, for N rows (arrays (S, N)).

    ``above`` = P(y_rep > y_obs | draw), ``at`` = P(y_rep = y_obs | draw) (0 for measures), ``mean`` and
    ``var`` of y_rep, and ``replicates``: one y_rep per draw and row, drawn from the same distribution."""

    observed: np.ndarray
    above: np.ndarray
    at: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    replicates: np.ndarray

    @property
    def mid_p(self) -> np.ndarray:
        """Per draw, P(y_rep > y_obs) + P(y_rep = y_obs) / 2 (the mid-p value; the plain tail probability for
        a measure); its mean over the draws is the row's predictive p-value."""
        return self.above + 0.5 * self.at


def observed_values(rows: pd.DataFrame) -> np.ndarray:
    """Each row's observation on the replicate scale: a signal's value, a count's k, a measure's z."""
    kind = rows["kind"].to_numpy(str)
    return np.where(kind == "count", rows["k"].to_numpy(float),
                    np.where(kind == "measure", rows["z"].to_numpy(float), rows["value"].to_numpy(float)))


def _draw_slices(draws: int, width: int):
    """Slices of the draws axis such that each slice times ``width`` values stays within _CHUNK."""
    step = max(1, _CHUNK // max(width, 1))
    return [slice(start, min(start + step, draws)) for start in range(0, draws, step)]


def _take(params: dict[str, np.ndarray], part: slice) -> dict[str, np.ndarray]:
    return {name: values[part] for name, values in params.items()}


def _enumerate_rows(rows: pd.DataFrame, params: dict[str, np.ndarray], idx: np.ndarray, observed: np.ndarray,
                    uniforms: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """Fill ``out`` for the discrete rows ``idx`` by enumerating each one's values through the likelihood."""
    kind = rows["kind"].to_numpy(str)
    top = np.where(kind[idx] == "count", rows["n"].to_numpy(float)[idx], 1.0).astype(int)  # values 0..top
    draws = uniforms.shape[0]
    start = 0
    while start < idx.size:  # rows in chunks of at most _CHUNK // draws enumerated values (at least one row)
        stop, width = start + 1, top[start] + 1
        while stop < idx.size and (width + top[stop] + 1) * draws <= _CHUNK:
            width += top[stop] + 1
            stop += 1
        chunk, sizes = idx[start:stop], top[start:stop] + 1
        expanded = rows.iloc[np.repeat(chunk, sizes)].reset_index(drop=True)
        values = np.concatenate([np.arange(size, dtype=float) for size in sizes])
        is_count = expanded["kind"].to_numpy(str) == "count"
        expanded["k"] = np.where(is_count, values, expanded["k"].to_numpy(float))
        expanded["value"] = np.where(is_count, expanded["value"].to_numpy(float), values)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        for part in _draw_slices(draws, width):
            loglik = pointwise_log_likelihood(expanded, _take(params, part), weighted=False)
            for j, row in enumerate(chunk):
                block = loglik[:, bounds[j]:bounds[j + 1]]
                pmf = np.exp(block - block.max(axis=1, keepdims=True))
                pmf /= pmf.sum(axis=1, keepdims=True)
                support = np.arange(sizes[j], dtype=float)
                y = int(round(observed[row]))
                cdf = np.cumsum(pmf, axis=1)
                out["at"][part, row] = pmf[:, y]
                out["above"][part, row] = np.clip(1.0 - cdf[:, y], 0.0, 1.0)
                mean = pmf @ support
                out["mean"][part, row] = mean
                out["var"][part, row] = np.clip(pmf @ support**2 - mean**2, 0.0, None)
                out["replicates"][part, row] = (uniforms[part, row][:, None] > cdf[:, :-1]).sum(axis=1)
        start = stop


def _normal_rows(rows: pd.DataFrame, params: dict[str, np.ndarray], idx: np.ndarray, observed: np.ndarray,
                 normals: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """Fill ``out`` for the measure rows ``idx``: Normal(mean, sd) read off the likelihood's log density."""
    sub = rows.iloc[idx].reset_index(drop=True)
    at_value = {}
    for z in (-1.0, 0.0, 1.0):
        sub["z"] = z
        at_value[z] = pointwise_log_likelihood(sub, params, weighted=False)
    curvature = at_value[1.0] + at_value[-1.0] - 2 * at_value[0.0]  # = -1 / sd^2
    if np.any(curvature >= 0):
        raise RuntimeError("engine.replicate: a measure's log-likelihood is not a Normal density in z; "
                           "its replicates need updating with the likelihood")
    var = -1.0 / curvature
    mean = var * (at_value[1.0] - at_value[-1.0]) / 2
    sub["z"] = observed[idx]
    check = pointwise_log_likelihood(sub, params, weighted=False)
    normal = -0.5 * (observed[idx] - mean) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
    if not np.allclose(check, normal, rtol=1e-6, atol=1e-6):
        raise RuntimeError("engine.replicate: a measure's log-likelihood is not a Normal density in z; "
                           "its replicates need updating with the likelihood")
    sd = np.sqrt(var)
    out["above"][:, idx] = ndtr(-(observed[idx] - mean) / sd)
    out["at"][:, idx] = 0.0
    out["mean"][:, idx] = mean
    out["var"][:, idx] = var
    out["replicates"][:, idx] = mean + sd * normals


def row_predictive(rows: pd.DataFrame, params: dict[str, np.ndarray], rng: np.random.Generator) -> RowPredictive:
    """Every row's predictive distribution at every draw of ``params`` (arrays with a leading draws axis,
    as :func:`~.likelihood.pointwise_log_likelihood` takes them), with one replicate per draw and row drawn
    with ``rng``. ``rows`` is :attr:`~.aggregate.EvidenceData.rows`."""
    n_rows = len(rows)
    draws = next(iter(params.values())).shape[0] if params else 0
    observed = observed_values(rows)
    out = {name: np.zeros((draws, n_rows)) for name in ("above", "at", "mean", "var", "replicates")}
    kind = rows["kind"].to_numpy(str)
    discrete = np.flatnonzero(np.isin(kind, ("signal", "count")))
    measure = np.flatnonzero(kind == "measure")
    if discrete.size and draws:
        uniforms = np.zeros((draws, n_rows))
        uniforms[:, discrete] = rng.random((draws, discrete.size))
        _enumerate_rows(rows, params, discrete, observed, uniforms, out)
        del uniforms
    if measure.size and draws:
        _normal_rows(rows, params, measure, observed, rng.standard_normal((draws, measure.size)), out)
    return RowPredictive(observed=observed, **out)
