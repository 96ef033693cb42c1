"""Counts as counts (issue 20, finding 2): a count row of k of n units is a beta-binomial with its
*indicator's* uncertain rates and an intra-class correlation, never the tier's clue diagnosticity.

Checked against code that does not share the package's: scipy's beta-binomial; quadrature over
(theta, f, g, rho) for a one-channel study; the n -> infinity limit of a count (the row reveals its own
rate r = k/n, whose likelihood is the Beta(p phi, (1 - p) phi) density at k/n), computed here with
scipy; PyTensor's gradient of the model's count term; fits with and without the teaching counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayescpec as bc
from bayescpec.engine.aggregate import aggregate_evidence
from bayescpec.engine.likelihood import pointwise_log_likelihood

from conftest import ROOT, fit_passing_the_gate, write_mini_study

#: the mini framework's count indicator 'units': rate_converting 0.7, rate_not_converting 0.2
RATE_C, RATE_N = 0.7, 0.2
TAU = 0.5


def shipped_count_priors() -> dict:
    """The shipped baseline prior set's [counts] section, as write_mini_study takes it."""
    counts = bc.load_study().priors.counts
    return {"rate_concentration": counts.rate_concentration, "icc_mean": counts.overdispersion.mean,
            "icc_concentration": counts.overdispersion.concentration}


@pytest.fixture(scope="module")
def mini_study(tmp_path_factory):
    """One channel, one stage, uniform theta; the count priors of the shipped baseline."""
    paths = write_mini_study(tmp_path_factory.mktemp("counts"), [], mean=0.5, concentration=2.0,
                             counts=shipped_count_priors())
    return bc.load_study(**paths)


def count_rows(study, counts: list[tuple[int, int, float]]) -> pd.DataFrame:
    """Model-ready rows of count rows (k, n, reliability) of the mini indicator 'units'."""
    frame = pd.DataFrame([{"id": f"c{i}", "observed": "", "target": "a", "indicator": "units", "tier": "mechanism",
                           "kind": "count", "value": np.nan, "k": float(k), "n": float(n), "test": "",
                           "sensitivity": np.nan, "false_positive": np.nan, "reliability": r, "package": "",
                           "source": "test", "note": "", "unit": ""} for i, (k, n, r) in enumerate(counts)])
    return aggregate_evidence(frame, study.framework, study.priors).rows


def draws_at(theta, f, g, rho) -> dict:
    """The draws the pointwise likelihood reads, at given (theta, f, g, rho) (flat arrays)."""
    size = len(theta)
    return {"reach": np.asarray(theta)[:, None, None], "severity": np.zeros((size, 0)),
            "sensitivity_tier": np.full((size, 1), 0.7), "false_positive_tier": np.full((size, 1), 0.3),
            "rate_converting": (f + (1 - f) * g)[:, None], "rate_not_converting": np.asarray(f)[:, None],
            "count_icc": np.asarray(rho)[:, None]}


# ------------------------------------------------------------------------------------- (a) scipy
def test_count_likelihood_is_scipys_beta_binomial_at_random_draws(mini_study):
    rng = np.random.default_rng(7)
    size = 400
    theta, f, g, rho = rng.uniform(0.01, 0.99, size), rng.uniform(0.01, 0.6, size), rng.uniform(0.01, 0.99, size), \
        rng.uniform(0.005, 0.6, size)
    counts = [(0, 5, 1.0), (3, 10, 0.9), (22, 60, 0.9), (310, 1200, 0.7), (99_999, 100_000, 1.0), (40, 40, 0.5)]
    rows = count_rows(mini_study, counts)
    values = pointwise_log_likelihood(rows, draws_at(theta, f, g, rho))
    unweighted = pointwise_log_likelihood(rows, draws_at(theta, f, g, rho), weighted=False)
    s = f + (1 - f) * g
    for j, (k, n, r) in enumerate(counts):
        p = f + theta * (s - f)
        phi = 1 / rho - 1
        expected = stats.betabinom.logpmf(k, n, p * phi, (1 - p) * phi)
        np.testing.assert_allclose(unweighted[:, j], expected, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(values[:, j], r * expected, rtol=1e-8, atol=1e-8)  # reliability tempering


# ------------------------------------------------------------------------------- quadrature grid
def quadrature_grid(study, *, nodes=(24, 24, 24, 32)) -> dict:
    """Gauss-Legendre nodes over (theta, f, g, rho) with their prior weights: theta's Beta prior split at
    TAU (so P(theta > TAU) integrates a step exactly), the count priors of ``study``'s prior set."""
    counts = study.priors.counts
    kappa = counts.rate_concentration
    gap = (RATE_C - RATE_N) / (1 - RATE_N)
    prior = study.priors.channels["a"]

    def on(a, b, m):
        x, w = np.polynomial.legendre.leggauss(m)
        return (b - a) / 2 * x + (a + b) / 2, (b - a) / 2 * w

    t_lo, wt_lo = on(0.0, TAU, nodes[0])
    t_hi, wt_hi = on(TAU, 1.0, nodes[0])
    theta, w_theta = np.concatenate([t_lo, t_hi]), np.concatenate([wt_lo, wt_hi])
    w_theta = w_theta * stats.beta.pdf(theta, prior.alpha, prior.beta)
    f, wf = on(0.0, 1.0, nodes[1])
    wf = wf * stats.beta.pdf(f, RATE_N * kappa, (1 - RATE_N) * kappa)
    g, wg = on(0.0, 1.0, nodes[2])
    wg = wg * stats.beta.pdf(g, gap * kappa, (1 - gap) * kappa)
    rho, wr = on(0.0, 1.0, nodes[3])
    wr = wr * stats.beta.pdf(rho, counts.overdispersion.alpha, counts.overdispersion.beta)
    grids = np.meshgrid(theta, f, g, rho, indexing="ij")
    weight = np.einsum("i,j,k,l->ijkl", w_theta, wf, wg, wr)
    out = {name: grid.ravel() for name, grid in zip(("theta", "f", "g", "rho"), grids)}
    out["weight"] = weight.ravel()
    return out


def posterior_p_above(grid: dict, log_lik: np.ndarray) -> float:
    """P(theta > TAU) under the grid's prior weights times exp(log_lik)."""
    w = grid["weight"] * np.exp(log_lik - np.max(log_lik))
    return float(w[grid["theta"] > TAU].sum() / w.sum())


def limit_log_likelihood(grid: dict, share: float) -> np.ndarray:
    """n -> infinity: the row reveals its own rate r = share, r ~ Beta(p phi, (1 - p) phi) (scipy)."""
    s = grid["f"] + (1 - grid["f"]) * grid["g"]
    p = grid["f"] + grid["theta"] * (s - grid["f"])
    phi = 1 / grid["rho"] - 1
    return stats.beta.logpdf(share, p * phi, (1 - p) * phi)


# ------------------------------------------------------------------------------ (b) bounded evidence
SHARES = (0.1, 0.3, 0.5, 0.7, 0.9)
SIZES = (10, 100, 1_000, 10_000, 100_000)


@pytest.fixture(scope="module")
def bounded(mini_study):
    """P(theta > TAU) after one count row of every size and share (the package's likelihood), its
    n -> infinity limit (scipy's Beta density) and the prior's, by quadrature."""
    grid = quadrature_grid(mini_study)
    draws = draws_at(grid["theta"], grid["f"], grid["g"], grid["rho"])
    prior = posterior_p_above(grid, np.zeros_like(grid["theta"]))
    table = {}
    for share in SHARES:
        rows = count_rows(mini_study, [(round(share * n), n, 1.0) for n in SIZES])
        values = pointwise_log_likelihood(rows, draws)
        table[share] = {"finite": [posterior_p_above(grid, values[:, j]) for j in range(len(SIZES))],
                        "limit": posterior_p_above(grid, limit_log_likelihood(grid, share))}
    return prior, table


def test_no_count_row_of_any_size_moves_p_beyond_what_its_overdispersion_allows(bounded):
    """One count row, n from 10 to 100 000: its move of P(theta > tau) never exceeds the move of the
    limit in which the row reveals its own rate exactly (plus 0.01 of quadrature and non-monotonicity
    slack), and the largest row is at that limit. The limit is finite evidence: P stays inside (0.02,
    0.98) whatever the share -- a binomial at fixed rates would take it to 0 or 1 (a share of 0.3 of
    100 000 units against rates 0.7 / 0.2 gives P < 1e-100)."""
    prior, table = bounded
    for share, row in table.items():
        bound = abs(row["limit"] - prior)
        moves = [abs(p - prior) for p in row["finite"]]
        assert max(moves) <= bound + 0.01, (share, prior, row)
        assert abs(row["finite"][-1] - row["limit"]) < 0.01, (share, row)
        assert 0.02 < row["limit"] < 0.98, (share, row)


def test_the_quadrature_has_converged(mini_study, bounded):
    """The same limits with half again as many nodes in every dimension agree to 0.005."""
    grid = quadrature_grid(mini_study, nodes=(36, 36, 36, 48))
    _, table = bounded
    for share in (0.1, 0.5, 0.9):
        assert abs(posterior_p_above(grid, limit_log_likelihood(grid, share)) - table[share]["limit"]) < 0.005


def test_a_bigger_count_says_more_but_never_more_than_the_limit(bounded):
    """At a share far from both rates' means the evidence grows with n toward the limit."""
    prior, table = bounded
    moves = [abs(p - prior) for p in table[0.1]["finite"]]
    assert moves[0] < moves[2] < moves[-1] + 1e-9


# ------------------------------------------------------------------ (c) diagnosticities untouched
@pytest.fixture(scope="module")
def teaching_study():
    """The shipped log plus the three hypothetical teaching counts (22/60, 14/60, 310/1200)."""
    study = bc.load_study()
    batch = bc.load_study(evidence=ROOT / "evidence" / "hypothetical_sez_batch.csv").evidence
    return study, study.with_evidence(pd.concat([study.evidence, batch[batch["kind"] == "count"]],
                                                ignore_index=True))


def test_the_count_term_has_no_gradient_with_respect_to_any_clue_diagnosticity(teaching_study):
    """d(count evidence) / d(every tier's and test type's f and g) is exactly zero at random points;
    with respect to the count indicators' own rates and overdispersion it is not."""
    import pytensor

    _, study = teaching_study
    model = bc.build_model(study)
    term = model.replace_rvs_by_values([model["count_evidence"]])[0]
    clue = [model.rvs_to_values[model[name]] for name in ("false_positive_tier", "sensitivity_gap_tier",
                                                           "false_positive_test", "sensitivity_gap_test")]
    gradient = model.compile_fn(pytensor.grad(term, wrt=clue, disconnected_inputs="ignore"),
                                inputs=model.value_vars, on_unused_input="ignore")
    rng = np.random.default_rng(3)
    points = [{k: v + rng.normal(0, 0.7, size=v.shape) for k, v in model.initial_point().items()} for _ in range(4)]
    for point in points:
        for values in gradient(point):
            assert np.all(np.asarray(values) == 0.0)
    own = [model.rvs_to_values[model[name]] for name in ("rate_not_converting", "rate_gap", "count_icc")]
    own_gradient = model.compile_fn(pytensor.grad(term, wrt=own), inputs=model.value_vars, on_unused_input="ignore")
    for point in points:
        for values in own_gradient(point):
            # the three indicators with rows: sez_firm_entry, sez_production_startups, sez_skilled_employment
            assert np.count_nonzero(values) == 3


@pytest.mark.slow
def test_the_tiers_posteriors_are_the_same_with_and_without_the_teaching_counts(teaching_study):
    """Every tier's and test type's sensitivity and false-positive rate: posterior means with and
    without the three teaching counts agree within 4 Monte Carlo standard errors of the difference
    (before counts had their own rates the mechanism tier's false-positive mean went 0.30 -> 0.22)."""
    import arviz as az
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [bc.fit(s, draws=1000, chains=4, seed=41, sampler="pymc") for s in teaching_study]
    for name in ("false_positive_tier", "sensitivity_tier", "false_positive_test", "sensitivity_test"):
        without, with_counts = (fit["posterior"][name] for fit in fits)
        mcse = [az.mcse(x.to_dataset(name="x"), method="mean")["x"] for x in (without, with_counts)]
        difference = with_counts.mean(("chain", "draw")) - without.mean(("chain", "draw"))
        bound = 4 * np.sqrt(mcse[0] ** 2 + mcse[1] ** 2)
        assert bool((abs(difference) < bound).all()), (name, difference.values, bound.values)
    theta = [fit["posterior"]["theta"].sel(channel="sez") for fit in fits]
    assert abs(float((theta[1] > 0.5).mean()) - float((theta[0] > 0.5).mean())) < 0.25  # strong, bounded


# ------------------------------------------------------------------------------- (d) oracle
ORACLE_ROWS = [  # two counts of the same indicator share its rates and overdispersion; one is tempered
    "c1,2026-01-06,a,units,mechanism,count,,9,20,,,,0.9,,test,x",
    "c2,2026-01-07,a,units,mechanism,count,,30,100,,,,1,,test,x",
]


def count_oracle(study) -> dict:
    """Posterior means of theta, f, rho and P(theta > TAU) by quadrature over (theta, f, g, rho) with
    scipy's beta-binomial (independent of the package's likelihood)."""
    grid = quadrature_grid(study, nodes=(32, 32, 32, 40))
    s = grid["f"] + (1 - grid["f"]) * grid["g"]
    p = grid["f"] + grid["theta"] * (s - grid["f"])
    phi = 1 / grid["rho"] - 1
    log_lik = (0.9 * stats.betabinom.logpmf(9, 20, p * phi, (1 - p) * phi)
               + stats.betabinom.logpmf(30, 100, p * phi, (1 - p) * phi))
    w = grid["weight"] * np.exp(log_lik - log_lik.max())
    w = w / w.sum()
    return {"theta": float(w @ grid["theta"]), "f": float(w @ grid["f"]), "rho": float(w @ grid["rho"]),
            "p_above": float(w[grid["theta"] > TAU].sum())}


@pytest.mark.slow
def test_a_fit_of_two_counts_matches_quadrature_over_theta_f_g_rho(tmp_path):
    import arviz as az

    paths = write_mini_study(tmp_path, ORACLE_ROWS, mean=0.5, concentration=2.0, counts=shipped_count_priors())
    study = bc.load_study(**paths)
    oracle = count_oracle(study)
    result = fit_passing_the_gate(study, seeds=(13, 14, 15), draws=2500, tune=1000, chains=2, sampler="pymc")
    post = result["posterior"]
    sampled = {"theta": post["theta"].sel(channel="a"), "f": post["rate_not_converting"].sel(count_indicator="units"),
               "rho": post["count_icc"].sel(count_indicator="units"),
               "p_above": (post["theta"].sel(channel="a") > TAU).astype(float)}
    for name, values in sampled.items():
        mcse = max(float(az.mcse(values.to_dataset(name="x"), method="mean")["x"]), 1e-3)
        assert abs(float(values.mean()) - oracle[name]) < 4 * mcse, (name, float(values.mean()), oracle[name], mcse)
