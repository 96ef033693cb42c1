"""The vectorised convergence statistics (engine.mcmcstats) against ArviZ's own implementation, variable by
variable: independent, autocorrelated, heavy-tailed, discrete (ties), constant and NaN-holding draws."""

from __future__ import annotations

import numpy as np
import pytest
from arviz_stats.base import array_stats

from bayescpec.engine import mcmcstats


def _draws(seed: int, chains: int = 4, draws: int = 301) -> np.ndarray:
    """(variables, chains, draws): white noise, AR(1) chains of rising autocorrelation, a chain stuck apart,
    Cauchy tails, a rounded (tied) variable, an integer-valued one and a nearly constant one."""
    rng = np.random.default_rng(seed)
    out = [rng.normal(size=(chains, draws))]
    for phi in (0.3, 0.8, 0.97):
        x = np.zeros((chains, draws))
        noise = rng.normal(size=(chains, draws))
        for t in range(1, draws):
            x[:, t] = phi * x[:, t - 1] + noise[:, t]
        out.append(x)
    shifted = rng.normal(size=(chains, draws))
    shifted[0] += 1.5
    out += [shifted, rng.standard_cauchy(size=(chains, draws)), np.round(rng.normal(size=(chains, draws)), 1),
            rng.poisson(2.0, size=(chains, draws)).astype(float), 1.0 + 1e-12 * rng.normal(size=(chains, draws))]
    return np.stack(out)


@pytest.mark.parametrize("seed, chains, draws", [(1, 4, 301), (2, 2, 1000), (3, 1, 200), (4, 3, 8)])
def test_every_statistic_equals_arviz(seed, chains, draws):
    ary = _draws(seed, chains, draws)
    checks = {
        "rhat": (mcmcstats.rhat_rank(ary), array_stats.rhat(ary, method="rank")),
        "ess_bulk": (mcmcstats.ess_bulk(ary), array_stats.ess(ary, method="bulk")),
        "ess_tail": (mcmcstats.ess_tail(ary), array_stats.ess(ary, method="tail", prob=(0.05, 0.95))),
        "ess_mean": (mcmcstats.ess_mean(ary), array_stats.ess(ary, method="mean")),
        "mcse_mean": (mcmcstats.mcse_mean(ary), array_stats.mcse(ary, method="mean")),
    }
    for name, (ours, theirs) in checks.items():
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)
    energy = ary[2]
    np.testing.assert_allclose(mcmcstats.bfmi(energy), array_stats.bfmi(energy), rtol=1e-12)


def test_a_nan_or_too_few_draws_give_nan_like_arviz():
    ary = _draws(5)[:3].copy()
    ary[1, 0, 7] = np.nan
    assert np.isnan(mcmcstats.rhat_rank(ary)[1]) and np.isnan(mcmcstats.ess_bulk(ary)[1])
    assert np.isfinite(mcmcstats.rhat_rank(ary)[[0, 2]]).all()
    short = ary[:, :, :3]
    assert np.isnan(mcmcstats.ess_bulk(short)).all() and np.isnan(np.asarray(array_stats.ess(short[:1]))).all()


def test_ties_share_their_average_rank():
    values = np.array([[[3.0, 1.0, 3.0, 2.0], [1.0, 5.0, 3.0, 3.0]]])
    ranks = mcmcstats._average_ranks(values)
    from scipy.stats import rankdata

    np.testing.assert_array_equal(ranks.ravel(), rankdata(values.ravel(), method="average"))
