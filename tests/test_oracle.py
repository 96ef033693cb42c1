"""Analytic oracle: one channel, no constraints, fixed diagnosticity. The posterior of theta is then
a one-dimensional density we integrate by quadrature (scipy), independently of the model's code;
the sampled mean and 90% interval must agree within Monte-Carlo error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit, logit

import bayescpec as bc

from conftest import write_mini_study

ROWS = [
    # signals with explicit (sensitivity, false_positive) and reliability; two share a package
    "s1,2026-01-01,a,clue,mechanism,signal,1,,,,0.8,0.3,1,,test,x",
    "s2,2026-01-02,a,clue,mechanism,signal,1,,,,0.9,0.6,0.7,,test,x",
    "s3,2026-01-03,a,clue,mechanism,signal,0,,,,0.7,0.2,1,,test,x",
    "s4,2026-01-04,a,clue,mechanism,signal,1,,,,0.6,0.1,0.9,pk,test,x",
    "s5,2026-01-05,a,clue,mechanism,signal,1,,,,0.6,0.1,0.9,pk,test,x",
    # a count on the indicator's fixed rates (0.7 if converting, 0.2 if not)
    "c1,2026-01-06,a,units,mechanism,count,,9,20,,,,1,,test,x",
    # a measure: z = (value - 10) / 2 ~ Normal(0.6 * logit(theta), 1), tempered by reliability 0.8
    "m1,2026-01-07,a,level,mechanism,measure,11.5,,,,,,0.8,,test,x",
]
PRIOR_A, PRIOR_B = 1.5, 2.5  # mean 0.375, concentration 4


def log_density(theta: float) -> float:
    value = stats.beta.logpdf(theta, PRIOR_A, PRIOR_B)
    for s, f, r, v, w in [(0.8, 0.3, 1, 1, 1), (0.9, 0.6, 0.7, 1, 1), (0.7, 0.2, 1, 0, 1),
                          (0.6, 0.1, 0.9, 1, 0.5), (0.6, 0.1, 0.9, 1, 0.5)]:
        p = r * (f + theta * (s - f)) + (1 - r) / 2
        value += w * (v * np.log(p) + (1 - v) * np.log1p(-p))
    value += stats.binom.logpmf(9, 20, 0.2 + theta * 0.5)
    value += 0.8 * stats.norm.logpdf((11.5 - 10) / 2, loc=0.6 * logit(theta), scale=1)
    return value


def oracle():
    mode = optimize.minimize_scalar(lambda t: -log_density(t), bounds=(1e-6, 1 - 1e-6), method="bounded").x
    shift = log_density(mode)
    density = lambda t: np.exp(log_density(t) - shift)  # noqa: E731
    norm = integrate.quad(density, 0, 1, limit=200)[0]
    mean = integrate.quad(lambda t: t * density(t), 0, 1, limit=200)[0] / norm
    second = integrate.quad(lambda t: t * t * density(t), 0, 1, limit=200)[0] / norm
    cdf = lambda x: integrate.quad(density, 0, x, limit=200)[0] / norm  # noqa: E731
    q05 = optimize.brentq(lambda x: cdf(x) - 0.05, 1e-9, 1 - 1e-9)
    q95 = optimize.brentq(lambda x: cdf(x) - 0.95, 1e-9, 1 - 1e-9)
    p_half = 1 - cdf(0.5)
    return mean, np.sqrt(second - mean**2), q05, q95, p_half


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    paths = write_mini_study(tmp_path_factory.mktemp("oracle"), ROWS, mean=PRIOR_A / (PRIOR_A + PRIOR_B),
                             concentration=PRIOR_A + PRIOR_B, loading=0.6)
    study = bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])
    return bc.fit(study, draws=2000, tune=1000, chains=2, seed=11)


def test_posterior_matches_quadrature(fitted):
    import arviz as az

    mean, sd, q05, q95, p_half = oracle()
    theta = fitted["posterior"]["theta"].sel(channel="a")
    ess = float(az.ess(theta.to_dataset(name="t"), method="mean")["t"])
    mcse = sd / np.sqrt(ess)
    assert abs(float(theta.mean()) - mean) < 4 * mcse + 1e-3, (float(theta.mean()), mean, mcse)
    table = bc.channel_table(fitted, ci_kind="eti", ci_prob=0.90)
    # quantile MCSE is larger than the mean's; 0.02 on the theta scale is ~4 quantile MCSEs here
    assert abs(table["90% ETI lower"].item() - q05) < 0.02
    assert abs(table["90% ETI upper"].item() - q95) < 0.02
    assert abs(table["p_converting"].item() - p_half) < 0.03
    assert float(fitted["posterior"]["constraint_effect"].max()) == 0.0


def test_prior_group_is_the_beta_prior(fitted):
    prior = fitted["prior"]["theta"].values.ravel()
    assert abs(prior.mean() - PRIOR_A / (PRIOR_A + PRIOR_B)) < 0.02
    assert stats.kstest(prior, stats.beta(PRIOR_A, PRIOR_B).cdf).pvalue > 1e-3


def test_pointwise_log_likelihood_matches_scipy(fitted):
    theta = fitted["posterior"]["theta"].sel(channel="a").values.ravel()[:50]
    ll = fitted["log_likelihood"]["rows"].stack(s=("chain", "draw")).transpose("s", "evidence").values[:50]
    expected_count = stats.binom.logpmf(9, 20, 0.2 + theta * 0.5)
    expected_measure = 0.8 * stats.norm.logpdf(0.75, loc=0.6 * logit(theta), scale=1)
    expected_s4 = 0.5 * np.log(0.9 * (0.1 + theta * 0.5) + 0.05)
    ids = list(fitted["log_likelihood"]["evidence"].values)
    np.testing.assert_allclose(ll[:, ids.index("c1")], expected_count, rtol=1e-9)
    np.testing.assert_allclose(ll[:, ids.index("m1")], expected_measure, rtol=1e-9)
    np.testing.assert_allclose(ll[:, ids.index("s4")], expected_s4, rtol=1e-9)


def test_result_records_provenance(fitted):
    attrs = fitted.attrs
    for key in ("bayescpec_version", "prior_set", "input_sha256", "as_of", "seed", "max_rhat",
                "min_ess_bulk", "divergences", "converged"):
        assert key in attrs
    assert attrs["seed"] == 11 and attrs["prior_set"] == "mini"
    assert attrs["converged"]
    assert list(fitted["evidence"]["evidence"].values) == [r.split(",")[0] for r in ROWS]
