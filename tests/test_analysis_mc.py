"""The Monte Carlo machinery of the analyses (issue 20, findings 1 and 5), each against something that does
not share its code: ArviZ's own PSIS and power-scaling, brute-force simulation of a measure's outcomes,
the spread over independent sets of draws, and numpy's quantiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import bayescpec as bc

from bayescpec.analysis.preposterior import (preposterior, preposterior_blocks, preposterior_measure,
                                             preposterior_measure_blocks)

TAU = 0.5


def beta_draws(size: int, seed: int, a: float = 2.0, b: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).beta(a, b, size=(size, 1))


def measure(theta: np.ndarray, loading: float = 0.8):
    """A measure of the single channel: z ~ Normal(loading logit theta, 1) at each draw (scipy's density)."""
    means = loading * np.log(theta[:, 0] / (1 - theta[:, 0]))

    def node_log_lik(z, index=None):
        mu = means if index is None else means[index]
        return stats.norm.logpdf(np.asarray(z)[None, :], loc=mu[:, None], scale=1.0)

    return means, node_log_lik


# ------------------------------------------------------------------ a measure: quadrature against simulation
def test_measure_quadrature_agrees_with_brute_force_simulation_within_its_monte_carlo_error():
    """The deterministic quadrature over a measure's predictive against 20 000 outcomes simulated from it
    (draw i at random, z = mu_i + noise), each outcome's summaries averaged, at 4 MCSE of the simulation."""
    theta = beta_draws(1000, seed=2)
    means, node_log_lik = measure(theta)
    found = preposterior_measure(means, node_log_lik, theta, TAU, nodes=200)
    rng = np.random.default_rng(3)
    outcomes = 20_000
    z = means[rng.integers(0, len(means), outcomes)] + rng.standard_normal(outcomes)
    each = [preposterior(node_log_lik(part), np.full(len(part), 1 / len(part)), theta, TAU) for part in
            np.array_split(z, 10)]
    now = found["p_now"][0]
    sd = np.concatenate([e["posterior_sd"][:, 0] for e in each])
    ps = np.concatenate([e["posterior_p"][:, 0] for e in each])
    for mine, values in ((found["expected_sd"][0], sd), (found["expected_abs_dp"][0], np.abs(ps - now))):
        assert abs(mine - values.mean()) <= 4 * values.std() / np.sqrt(outcomes), (mine, values.mean())
    # the IPCC word of P(theta > tau) after each simulated outcome against today's (scipy-free: the scale itself)
    changes = np.array([bc.ipcc_likelihood(p) != bc.ipcc_likelihood(now) for p in ps], dtype=float)
    assert 0.1 < changes.mean() < 0.9  # not a vacuous comparison
    assert abs(found["p_word_change"][0] - changes.mean()) <= 4 * changes.std() / np.sqrt(outcomes)
    # deterministic: no seed, the same numbers every time
    again = preposterior_measure(means, node_log_lik, theta, TAU, nodes=200)
    assert again["expected_sd"][0] == found["expected_sd"][0] and again["p_word_change"][0] == found["p_word_change"][0]
    # the nodes are the predictive's quantiles: F(z_g) = (g + 1/2) / G
    cdf = stats.norm.cdf(found["z"][:, None] - means[None, :]).mean(axis=1)
    np.testing.assert_allclose(cdf, (np.arange(200) + 0.5) / 200, atol=1e-9)


# ------------------------------------------------------------------ batch means against independent draw sets
def test_batch_means_mcse_matches_the_spread_over_independent_sets_of_draws():
    """The MCSE of a design's expected sd reduction (signal and measure) from blocks of one set of draws
    against the sd of the estimate over 150 independent sets: their ratio is near 1 (0.8 to 1.25 allows the
    spread's own error, about 6% here, and the blocks' small-sample bias)."""
    s, f = 0.9, 0.1
    estimates = {"signal": [], "measure": []}
    mcses = {"signal": [], "measure": []}
    for seed in range(150):
        theta = beta_draws(1000, seed=100 + seed)
        p = f + (s - f) * theta[:, 0]
        ll = np.log(np.stack([p, 1 - p], axis=1))
        full = preposterior(ll, np.exp(ll).mean(axis=0), theta, TAU)
        blocks = preposterior_blocks(ll, theta, TAU)
        estimates["signal"].append(full["sd_now"][0] - full["expected_sd"][0])
        mcses["signal"].append(np.std(blocks["sd_now"][:, 0] - blocks["expected_sd"][:, 0], ddof=1) / np.sqrt(10))
        means, node_log_lik = measure(theta)
        full = preposterior_measure(means, node_log_lik, theta, TAU, nodes=60)
        blocks = preposterior_measure_blocks(means, node_log_lik, theta, TAU, nodes=60)
        estimates["measure"].append(full["sd_now"][0] - full["expected_sd"][0])
        mcses["measure"].append(np.std(blocks["sd_now"][:, 0] - blocks["expected_sd"][:, 0], ddof=1) / np.sqrt(10))
    for kind in estimates:
        ratio = np.mean(mcses[kind]) / np.std(estimates[kind], ddof=1)
        assert 0.8 < ratio < 1.25, (kind, ratio)


# ------------------------------------------------------------------ ties in the ranking
def test_designs_within_two_mcse_of_the_difference_share_a_rank_and_are_marked():
    from bayescpec.analysis.layouts import rank_labels
    from bayescpec.analysis.value import _rank_with_ties

    table = pd.DataFrame({"channel": ["a"] * 4 + ["b"] * 2,
                          "sd_reduction": [0.050, 0.049, 0.030, 0.030, 0.02, 0.01]})
    rng = np.random.default_rng(4)
    shared = rng.normal(0, 0.004, 10)   # the designs share their draws: their block values move together
    blocks = np.stack([0.050 + shared + rng.normal(0, 0.002, 10), 0.049 + shared + rng.normal(0, 0.002, 10),
                       0.030 + shared + rng.normal(0, 0.0001, 10), 0.030 + shared + rng.normal(0, 0.0001, 10),
                       np.full(10, 0.02) + rng.normal(0, 1e-4, 10), np.full(10, 0.01) + rng.normal(0, 1e-4, 10)],
                      axis=1)
    ranked = _rank_with_ties(table, blocks)
    assert ranked["position"].tolist() == [1, 2, 3, 4, 1, 2]
    assert ranked["rank"].tolist() == [1, 1, 3, 3, 1, 2]      # 0.001 apart with an MCSE of the difference ~0.001
    assert ranked["tied"].tolist() == [True, True, True, True, False, False]
    assert rank_labels(ranked) == ["1=", "1=", "3=", "3=", "1", "2"]
    # 0.02 apart where the difference's MCSE is ~0.0003: a real ranking, no tie
    clear = _rank_with_ties(table.iloc[[0, 2]].reset_index(drop=True), blocks[:, [0, 2]])
    assert clear["rank"].tolist() == [1, 2] and not clear["tied"].any()


# ------------------------------------------------------------------ weighted summaries of a reweighted result
def test_weighted_intervals_and_mcse_reduce_to_the_plain_ones_and_match_replicates():
    from bayescpec.analysis.draws import weighted_interval, weighted_mcse

    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, size=(4000, 2))
    equal = np.full(4000, 1 / 4000)
    eti = weighted_interval(x, equal, "eti", 0.9)
    np.testing.assert_allclose(eti, np.quantile(x, [0.05, 0.95], axis=0).T, atol=0.02)
    hdi = weighted_interval(x, equal, "hdi", 0.9)
    assert np.all(hdi[:, 1] - hdi[:, 0] < eti[:, 1] - eti[:, 0])      # a skewed density: HDI shorter than ETI
    covered = ((x >= hdi[:, 0]) & (x <= hdi[:, 1])).mean(axis=0)
    np.testing.assert_allclose(covered, 0.9, atol=1e-3)
    # importance weights for a Gamma(3) target from Gamma(2) draws: the weighted mean and its MCSE vs replicates
    means, errors = [], []
    for seed in range(200):
        draws = np.random.default_rng(50 + seed).gamma(2.0, size=2000)
        w = draws / draws.sum()                                        # Gamma(3) / Gamma(2) density ratio ∝ x
        means.append(w @ draws)
        errors.append(float(weighted_mcse(w, draws[:, None], chains=4)[0]))
    assert abs(np.mean(means) - 3.0) < 4 * np.std(means) / np.sqrt(200)
    assert 0.85 < np.mean(errors) / np.std(means) < 1.18
