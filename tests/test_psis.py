"""Pareto-smoothed importance sampling and PSIS-LOO written over many rows at once (engine/psis.py, the
model check's LOO-PIT and uniformity test) against ArviZ's own implementations, which share no code with
them: weights and k-hat on light and heavy tails and several r_eff, and the model check's LOO-PIT, k-hat
and uniformity p-value on a synthetic result with discrete and continuous rows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from bayescpec.analysis.criticism import _loo, _uniformity
from bayescpec.engine.psis import psis_one, psis_rows
from bayescpec.engine.replicate import RowPredictive


def _rows(rng, size):
    return np.concatenate([rng.standard_normal((8, size)) * rng.uniform(0.1, 3, (8, 1)),
                           rng.standard_t(2, (4, size)), np.log(rng.uniform(0.01, 1, (4, size)))])


@pytest.mark.parametrize("r_eff", [1.0, 0.4, 0.07])
def test_row_vectorised_psis_is_arviz_psislw_row_by_row(r_eff):
    from arviz_stats.base import array_stats

    rng = np.random.default_rng(1)
    for size in (150, 400, 2000):
        rows = _rows(rng, size)
        theirs_w, theirs_k = array_stats.psislw(-rows, r_eff=r_eff, axis=-1)
        mine_w, mine_k = psis_rows(rows, r_eff)
        np.testing.assert_allclose(mine_k, theirs_k, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mine_w, theirs_w, rtol=1e-10, atol=1e-10)
        assert np.ptp(mine_k) > 0.3  # light and heavy tails: the comparison covers both
        one_w, one_k = psis_one(rows[5], r_eff)
        np.testing.assert_allclose(one_w, theirs_w[5], rtol=1e-10, atol=1e-10)
        assert one_k == pytest.approx(float(theirs_k[5]), abs=1e-12)


def test_a_row_of_equal_ratios_gets_equal_weights_and_no_tail():
    log_weights, khat = psis_one(np.full(500, -3.2))
    np.testing.assert_allclose(np.exp(log_weights), 1 / 500)
    assert khat == -np.inf


def _synthetic_result(rng, chains=4, draws=300):
    """A result with what the check's LOO reads: an autocorrelated posterior (theta, severity), each row's
    log-likelihood and one replicate per draw -- counts (ties with the observation) and measures."""
    def ar1(shape, rho):
        x = np.empty(shape)
        x[:, 0] = rng.standard_normal(shape[:1] + shape[2:])
        for t in range(1, shape[1]):
            x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(shape[:1] + shape[2:])
        return x

    theta = 1 / (1 + np.exp(-ar1((chains, draws, 5), 0.6)))
    severity = ar1((chains, draws, 3), 0.3)
    rows = 9
    loglik = -0.05 * ar1((chains, draws, rows), 0.5) ** 2 * rng.uniform(0.2, 1, rows) - 1.0
    loglik[..., 0] += 6 * rng.standard_t(1.5, (chains, draws))      # one row with a heavy tail (large k-hat)
    size = chains * draws
    replicates = np.concatenate([rng.binomial(10, 0.4, (size, 5)).astype(float),
                                 rng.normal(0, 1, (size, rows - 5))], axis=1)
    observed = np.array([4, 3, 0, 7, 4, 0.3, -1.2, 2.5, 0.0])
    evidence = [f"row{i}" for i in range(rows)]
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"theta": (("chain", "draw", "channel"), theta),
                                 "severity": (("chain", "draw", "constraint"), severity)}),
        "log_likelihood": xr.Dataset({"rows": (("chain", "draw", "evidence"), loglik)}, coords={"evidence": evidence}),
        "evidence": xr.Dataset(coords={"evidence": evidence}),
    })
    zeros = np.zeros((size, rows))
    return tree, RowPredictive(observed, zeros, zeros, zeros, zeros, replicates)


def _arviz_loo(tree, pred, seed):
    import arviz_stats as azs

    ll = tree["log_likelihood"]["rows"]
    sizes = ll.sizes
    coords = {"chain": ll["chain"].values, "draw": ll["draw"].values, "evidence": ll["evidence"].values}
    data = xr.DataTree.from_dict({
        "posterior": tree["posterior"].to_dataset(),
        "log_likelihood": xr.Dataset({"rows": ll}),
        "posterior_predictive": xr.Dataset(
            {"rows": (("chain", "draw", "evidence"), pred.replicates.reshape(sizes["chain"], sizes["draw"], -1))},
            coords=coords),
        "observed_data": xr.Dataset({"rows": ("evidence", pred.observed)}, coords={"evidence": coords["evidence"]}),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = azs.loo(data, pointwise=True, var_name="rows")
        pit = azs.loo_pit(data, var_names="rows", log_weights=xr.Dataset({"rows": loo.log_weights}),
                          pareto_k=xr.Dataset({"rows": loo.pareto_k}), random_state=seed)
    return np.asarray(pit["rows"].values, float), np.asarray(loo.pareto_k.values, float)


@pytest.mark.parametrize("seed", [3, 29])
def test_the_checks_loo_pit_and_khat_are_arvizs(seed):
    from arviz_stats.base import array_stats

    tree, pred = _synthetic_result(np.random.default_rng(seed))
    pit, khat, used = _loo(tree, pred, 1, seed)
    theirs_pit, theirs_k = _arviz_loo(tree, pred, seed)
    assert used == 1200
    np.testing.assert_allclose(khat, theirs_k, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pit, theirs_pit, rtol=1e-10, atol=1e-10)
    assert khat[0] > 0.5 > np.max(khat[1:])    # the heavy-tailed row stands out: both tails are compared
    theirs_p = float(array_stats.uniformity_test(theirs_pit, axis=-1, method="pot_c")[0])
    assert _uniformity(pit) == pytest.approx(theirs_p, rel=1e-10, abs=1e-12)


def test_uniformity_p_value_against_arviz_on_uniform_and_clumped_values():
    from arviz_stats.base import array_stats

    rng = np.random.default_rng(8)
    for values in (rng.uniform(size=40), rng.beta(5, 5, size=40), rng.uniform(0, 0.3, size=25)):
        theirs = float(array_stats.uniformity_test(values, axis=-1, method="pot_c")[0])
        assert _uniformity(values) == pytest.approx(theirs, rel=1e-10, abs=1e-12)
    assert _uniformity(rng.uniform(0, 0.3, size=25)) < 0.01 < _uniformity(rng.uniform(size=200))
