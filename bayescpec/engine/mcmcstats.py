"""Convergence statistics of MCMC draws, computed for many variables at once: rank-normalised split R-hat,
bulk and tail effective sample size, the ESS and Monte Carlo standard error of a mean, E-BFMI.

The definitions are those of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021, Bayesian Analysis
16(2), arXiv:1903.08008) as ArviZ implements them (``arviz_stats.base.diagnostics``): the same ranks
(average ties, Blom's offset 3/8), split chains, FFT autocovariances and Geyer's initial monotone
sequence. Here the ranking and the autocovariances run over every variable in one NumPy call each,
where ArviZ ranks and transforms one variable at a time -- the convergence gate of a fit takes a
tenth of the time, and a fit does not import ArviZ's statistics package (with its LOO and SciPy's
``stats``, about half a second of a fresh process). ``tests/test_mcmcstats.py`` compares the two.

Arrays are ``(variables, chains, draws)``; results are per variable. A variable with fewer than 4 draws
(or, for R-hat, fewer than 2 chains) or with a NaN gets NaN, as in ArviZ.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfcinv

__all__ = ["rhat_rank", "ess_bulk", "rhat_and_ess_bulk", "ess_tail", "ess_mean", "mcse_mean", "bfmi"]


def _valid(ary: np.ndarray, min_chains: int) -> np.ndarray:
    return (~np.isnan(ary).any(axis=(1, 2))) & (ary.shape[1] >= min_chains) & (ary.shape[2] >= 4)


def _split(ary: np.ndarray) -> np.ndarray:
    half = ary.shape[2] // 2
    return np.concatenate([ary[:, :, :half], ary[:, :, ary.shape[2] - half:]], axis=1)


def _average_ranks(ary: np.ndarray) -> np.ndarray:
    """Ranks 1..size over each variable's draws, tied values sharing their average rank."""
    k = ary.shape[0]
    flat = ary.reshape(k, -1)
    size = flat.shape[1]
    order = np.argsort(flat, axis=1)  # ties are averaged below, so the sort need not be stable
    ordered = np.take_along_axis(flat, order, axis=1)
    starts = np.ones_like(ordered, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ranks = np.empty(flat.shape, dtype=float)
    # continuous draws have no ties: a variable's ranks are then its sort order's inverse
    plain = starts.all(axis=1)
    if plain.any():
        inverse = np.empty_like(order[plain])
        np.put_along_axis(inverse, order[plain], np.arange(size)[None, :], axis=1)
        ranks[plain] = inverse + 1.0
    tied = np.flatnonzero(~plain)
    if tied.size:
        t = tied.size
        tied_starts = starts[tied]
        group = np.cumsum(tied_starts, axis=1) - 1 + (np.arange(t) * size)[:, None]  # tie groups, unique per row
        counts = np.bincount(group.ravel(), minlength=t * size)
        first = np.zeros(t * size, dtype=float)
        first[group[tied_starts]] = np.tile(np.arange(size, dtype=float), t)[tied_starts.ravel()]
        average = first[group] + (counts[group] + 1) / 2.0
        out = np.empty_like(average)
        np.put_along_axis(out, order[tied], average, axis=1)
        ranks[tied] = out
    return ranks.reshape(ary.shape)


def _z_scale(ary: np.ndarray) -> np.ndarray:
    size = ary.shape[1] * ary.shape[2]
    quantiles = (_average_ranks(ary) - 3 / 8) / (size - 2 * 3 / 8 + 1)
    return -np.sqrt(2) * erfcinv(2 * quantiles)  # the standard normal quantile, as scipy.stats.norm.ppf


def _rhat(ary: np.ndarray) -> np.ndarray:
    n = ary.shape[2]
    between = n * np.var(ary.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(ary, axis=2, ddof=1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def rhat_and_ess_bulk(ary) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rhat_rank` and :func:`ess_bulk` together, ranking the split chains once for both."""
    ary = np.asarray(ary, dtype=float)
    rhat, bulk = np.full(ary.shape[0], np.nan), np.full(ary.shape[0], np.nan)
    valid = _valid(ary, 1)
    if valid.any():
        split = _split(ary[valid])
        z = _z_scale(split)
        bulk[valid] = _ess(z)
        if ary.shape[1] >= 2:
            folded = np.abs(split - np.median(split, axis=(1, 2), keepdims=True))
            rhat[valid] = np.maximum(_rhat(z), _rhat(_z_scale(folded)))
    return rhat, bulk


def rhat_rank(ary) -> np.ndarray:
    """Rank-normalised split R-hat: the larger of the bulk (z-scaled) and tail (folded) R-hats."""
    return rhat_and_ess_bulk(ary)[0]


def _next_regular(target: int) -> int:
    """The smallest 2^a 3^b 5^c >= target (the FFT length ArviZ pads to, SciPy's ``next_fast_len``)."""
    best, five = None, 1
    while five < 2 * target:
        odd = five
        while odd < 2 * target:
            power = 1 << (-(-target // odd) - 1).bit_length()
            best = power * odd if best is None else min(best, power * odd)
            odd *= 3
        five *= 5
    return best


def _ess(ary: np.ndarray) -> np.ndarray:
    """ESS of each variable of a (variables, chains, draws) array of split chains."""
    k, m, n = ary.shape
    out = np.full(k, float(m * n))
    constant = (ary.max(axis=(1, 2)) - ary.min(axis=(1, 2))) < np.finfo(float).resolution
    rows = np.flatnonzero(~constant)
    if not rows.size:
        return out
    x = ary[rows]
    centred = x - x.mean(axis=2, keepdims=True)
    length = _next_regular(2 * n)
    transformed = np.fft.rfft(centred, n=length, axis=2)
    transformed *= np.conjugate(transformed)
    acov = np.fft.irfft(transformed, n=length, axis=2)[:, :, :n] / n
    mean_var = acov[:, :, 0].mean(axis=1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(x.mean(axis=2), axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # (variables, lags)
    for j, row in enumerate(rows):
        out[row] = _geyer(rho[j], m, n)
    return out


def _geyer(rho: np.ndarray, m: int, n: int) -> float:
    """ESS from the autocorrelations by Geyer's initial positive and monotone sequences (ArviZ's loop)."""
    rho_t = np.zeros(n)
    rho_t[0], rho_t[1] = 1.0, rho[1]
    even, odd = 1.0, rho[1]
    t = 1
    while t < n - 3 and even + odd > 0.0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0:
            rho_t[t + 1], rho_t[t + 2] = even, odd
        t += 2
    max_t = t - 2
    if even > 0:
        rho_t[max_t + 1] = even
    t = 1
    while t <= max_t - 2:
        if rho_t[t + 1] + rho_t[t + 2] > rho_t[t - 1] + rho_t[t]:
            rho_t[t + 1] = rho_t[t + 2] = (rho_t[t - 1] + rho_t[t]) / 2.0
        t += 2
    total = m * n
    tau = -1.0 + 2.0 * np.sum(rho_t[:max_t + 1]) + np.sum(rho_t[max_t + 1:max_t + 2])
    tau = max(tau, 1 / np.log10(total))
    return float("nan") if np.isnan(rho_t).any() else total / tau


def ess_bulk(ary) -> np.ndarray:
    """Bulk ESS: of the rank-normalised split chains."""
    return rhat_and_ess_bulk(ary)[1]


def ess_tail(ary, prob: tuple[float, float] = (0.05, 0.95)) -> np.ndarray:
    """Tail ESS: the smaller ESS of the indicators of the draws below the ``prob`` quantiles."""
    ary = np.asarray(ary, dtype=float)
    out = np.full(ary.shape[0], np.nan)
    valid = _valid(ary, 1)
    if valid.any():
        x = ary[valid]
        found = []
        for p in prob:
            quantile = np.quantile(x.reshape(x.shape[0], -1), p, axis=1)
            found.append(_ess(_split((x <= quantile[:, None, None]).astype(float))))
        out[valid] = np.minimum(*found)
    return out


def ess_mean(ary) -> np.ndarray:
    """ESS of the mean: of the split chains as they are."""
    ary = np.asarray(ary, dtype=float)
    out = np.full(ary.shape[0], np.nan)
    valid = _valid(ary, 1)
    if valid.any():
        out[valid] = _ess(_split(ary[valid]))
    return out


def mcse_mean(ary) -> np.ndarray:
    """Monte Carlo standard error of the mean: sd / sqrt(ESS of the mean)."""
    ary = np.asarray(ary, dtype=float)
    flat = ary.reshape(ary.shape[0], -1)
    sd = np.std(flat, axis=1, ddof=1) if flat.shape[1] > 1 else np.full(ary.shape[0], np.nan)
    return sd / np.sqrt(ess_mean(ary))


def bfmi(energy) -> np.ndarray:
    """E-BFMI of each chain from the sampler's energy, (chains, draws)."""
    energy = np.atleast_2d(np.asarray(energy, dtype=float))
    return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)
