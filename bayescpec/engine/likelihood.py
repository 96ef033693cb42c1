"""Pointwise log-likelihood of each evidence row, in numpy, from posterior (or prior) draws.

This is written independently of the PyMC graph (which works on group sufficient statistics); the
test suite checks that the two agree. It is also what the fast update path uses to weigh new rows.
Each row's value is its *weighted* contribution: package tempering and reliability included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from .counts import COUNT_VARIABLES, beta_binomial_logpmf, count_probability

__all__ = ["pointwise_log_likelihood"]


def _logit(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def _latent(draws: dict[str, np.ndarray]) -> np.ndarray:
    """Each target's latent logit, in the model's target order: logit(reach) of every (channel, stage)
    cell, of every (unit, stage) cell, every severity, then (with a route) logit of every channel's reach
    through the route."""
    reach = draws["reach"]
    n = reach.shape[0]
    parts = [_logit(reach.reshape(n, -1))]
    if "unit_reach" in draws:
        parts.append(_logit(draws["unit_reach"].reshape(n, -1)))
    parts.append(draws.get("severity", np.zeros((n, 0))))  # a framework may have no constraints
    if "route_probability" in draws and "route_reach" in draws:
        parts.append(_logit(draws["route_reach"].reshape(n, -1)))
    return np.concatenate(parts, axis=-1)


def pointwise_log_likelihood(rows: pd.DataFrame, draws: dict[str, np.ndarray], *, dtype=np.float64,
                             weighted: bool = True) -> np.ndarray:
    """Log-likelihood of every row at every draw: array of shape (n_draws, n_rows).

    ``rows`` is :attr:`EvidenceData.rows`; ``draws`` maps ``reach`` (S, C, J), ``unit_reach`` (S, U, J)
    when there are units, ``severity`` (S, K), ``route_probability`` and ``route_reach`` (S, C) with a route,
    ``sensitivity_tier``/``false_positive_tier`` (S, T), when the framework has test types
    ``sensitivity_test``/``false_positive_test`` (S, M) and, when there are count rows,
    ``rate_converting``/``rate_not_converting``/``count_icc`` (S, I) to arrays with the draws flattened.
    A count row is BetaBinomial(k | n, p phi, (1 - p) phi), p = f_i + pi (s_i - f_i), phi = 1/rho_i - 1
    with its indicator's rates (:mod:`bayescpec.engine.counts`), not its tier's.
    """
    latent = _latent(draws)
    sens_parts = [draws["sensitivity_tier"]] + ([draws["sensitivity_test"]] if "sensitivity_test" in draws else [])
    fpr_parts = [draws["false_positive_tier"]] + ([draws["false_positive_test"]] if "false_positive_test" in draws else [])
    sens_all, fpr_all = np.concatenate(sens_parts, axis=-1), np.concatenate(fpr_parts, axis=-1)
    n_draws = latent.shape[0]
    out = np.zeros((n_draws, len(rows)), dtype=dtype)
    kind = rows["kind"].to_numpy()
    target = rows["target"].to_numpy(int)
    # the package/reliability tempering weight of each row (1 everywhere for the unweighted values)
    weight = rows["weight"].to_numpy(float) if weighted else np.ones(len(rows))
    explicit = rows["explicit"].to_numpy(bool)
    diag = rows["diag"].to_numpy(int)

    def prob(idx):
        pi = expit(latent[:, target[idx]])
        s = np.where(explicit[idx], rows["sens"].to_numpy()[idx], sens_all[:, diag[idx]])
        f = np.where(explicit[idx], rows["fpr"].to_numpy()[idx], fpr_all[:, diag[idx]])
        return f + pi * (s - f)

    idx = np.flatnonzero(kind == "signal")
    if idx.size:
        r = rows["reliability"].to_numpy()[idx]
        p = r * prob(idx) + (1 - r) / 2
        v = rows["value"].to_numpy()[idx]
        out[:, idx] = weight[idx] * (v * np.log(p) + (1 - v) * np.log1p(-p))
    idx = np.flatnonzero(kind == "count")
    if idx.size:
        missing = [name for name in COUNT_VARIABLES if name not in draws]
        if missing:
            raise ValueError(f"count rows need the draws of {', '.join(missing)} (the count indicators' rates "
                             "and overdispersion); a result fitted before counts had them must be refitted")
        i = rows["count_indicator"].to_numpy(int)[idx]
        p = count_probability(expit(latent[:, target[idx]]), draws["rate_converting"][:, i],
                              draws["rate_not_converting"][:, i])
        k, n = rows["k"].to_numpy()[idx], rows["n"].to_numpy()[idx]
        out[:, idx] = weight[idx] * beta_binomial_logpmf(k, n, p, draws["count_icc"][:, i])
    idx = np.flatnonzero(kind == "measure")
    if idx.size:
        mu = rows["loading"].to_numpy()[idx] * latent[:, target[idx]]
        z = rows["z"].to_numpy()[idx]
        out[:, idx] = weight[idx] * (-0.5 * (z - mu) ** 2 - 0.5 * np.log(2 * np.pi))
    return out
