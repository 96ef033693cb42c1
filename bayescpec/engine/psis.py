"""Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao and Gabry 2024, JMLR 25(72)): the
tail of each row's importance ratios replaced by the quantiles of a generalised Pareto fitted to it, and its
shape k-hat, which says whether the reweighting can be trusted. ArviZ's ``psislw`` and ``_gpdfit``
(arviz_stats 1.x) written over many rows at once, so that an update, the model check's PSIS-LOO and the
preposterior analysis do not import ArviZ's statistics package (about 0.6 s of a fresh process) and do not
call it once per row; ``tests/test_psis.py`` compares the two on light and heavy tails and several r_eff.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = ["psis_rows", "psis_one"]


def _gpdfit_rows(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ's ``_gpdfit`` (Zhang & Stephens 2009 with the weak prior on k of Vehtari et al. 2024) on each
    row of ``data`` (R, n), sorted ascending: (k-hat, sigma) per row."""
    rows, n = data.shape
    m_est = 30 + int(n**0.5)
    xstar = data[:, int((n / 4 + 0.5) - 1)]
    far = xstar <= data[:, 0]      # first quartile not above the minimum: far from a generalised Pareto
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
        b = b[None, :] / (3 * xstar[:, None]) + 1 / data[:, -1:]                      # (R, m)
        k_ary = np.log1p(-b[:, :, None] * data[:, None, :]).mean(axis=2)
        len_scale = n * (np.log(-b / k_ary) - k_ary - 1)
        w_theta = np.exp(len_scale - logsumexp(len_scale, axis=1, keepdims=True))
        w_theta = np.where(w_theta >= 10 * np.finfo(float).eps, w_theta, 0.0)
        w_theta /= w_theta.sum(axis=1, keepdims=True)
        b_post = np.sum(b * w_theta, axis=1)
        kappa = np.mean(np.log1p(-b_post[:, None] * data), axis=1)
        sigma = -kappa / b_post
        kappa = (n * kappa + 10 * 0.5) / (n + 10)
    sigma = np.where(np.isnan(kappa), np.nan, sigma)
    kappa = np.where(np.isnan(kappa), np.inf, kappa)
    return np.where(far, np.nan, kappa), np.where(far, np.nan, sigma)


def psis_rows(log_ratios: np.ndarray, r_eff: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed normalised log weights (R, S) and k-hat (R,) of each row of log importance ratios
    (R, S), the draws' relative efficiency ``r_eff`` setting the tail's length: ArviZ's ``psislw`` of
    ``-log_ratios`` for every row at once (k-hat -inf for a row whose ratios are all equal, where ArviZ
    raises)."""
    x = np.array(log_ratios, dtype=float)
    rows, size = x.shape
    tail = int(np.floor(3 * (size / r_eff) ** 0.5)) if size * r_eff > 225 else int(np.floor(size / 5))
    x -= x.max(axis=1, keepdims=True)
    order = np.argsort(x, axis=1)
    ordered = np.take_along_axis(x, order, axis=1)
    top, cutoff = ordered[:, size - tail:], ordered[:, size - tail - 1]
    flat = np.abs(top[:, -1] - top[:, 0]) < np.finfo(float).tiny
    khat, sigma = _gpdfit_rows(np.exp(top) - np.exp(cutoff)[:, None])
    p = (np.arange(tail) + 0.5) / tail
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        quantile = np.where(khat[:, None] == 0, -sigma[:, None] * np.log1p(-p),
                            sigma[:, None] * np.expm1(-khat[:, None] * np.log1p(-p)) / khat[:, None])
        quantile = np.where(sigma[:, None] > 0, np.exp(cutoff)[:, None] + quantile, np.nan)
        smoothed = np.minimum(np.log(quantile), top[:, -1:])
    smooth = np.isfinite(khat) & ~flat
    ordered[smooth, size - tail:] = smoothed[smooth]
    out = np.empty_like(x)
    np.put_along_axis(out, order, ordered, axis=1)
    out -= logsumexp(out, axis=1, keepdims=True)
    return out, np.where(flat, -np.inf, khat)


def psis_one(log_ratios: np.ndarray, r_eff: float = 1.0) -> tuple[np.ndarray, float]:
    """:func:`psis_rows` of one row of log ratios (S,): normalised log weights (S,) and k-hat."""
    log_weights, khat = psis_rows(np.asarray(log_ratios, dtype=float)[None, :], r_eff)
    return log_weights[0], float(khat[0])
