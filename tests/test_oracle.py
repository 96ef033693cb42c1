"""Analytic oracle: one channel, no constraints, fixed diagnosticity. The posterior of theta is then
a one-dimensional density we integrate by quadrature (scipy), independently of the model's code;
the sampled mean and 90% interval must agree within Monte-Carlo error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import logit

import bayescpec as bc
from bayescpec.engine.diagnostics import check_convergence

from conftest import NEAR_FIXED_COUNTS, write_mini_study

ROWS = [
    # signals with explicit (sensitivity, false_positive) and reliability; two share a package
    "s1,2026-01-01,a,clue,mechanism,signal,1,,,,0.8,0.3,1,,test,x",
    "s2,2026-01-02,a,clue,mechanism,signal,1,,,,0.9,0.6,0.7,,test,x",
    "s3,2026-01-03,a,clue,mechanism,signal,0,,,,0.7,0.2,1,,test,x",
    "s4,2026-01-04,a,clue,mechanism,signal,1,,,,0.6,0.1,0.9,pk,test,x",
    "s5,2026-01-05,a,clue,mechanism,signal,1,,,,0.6,0.1,0.9,pk,test,x",
    # a count on the indicator's rates (0.7 if converting, 0.2 if not), all but fixed here (10 000
    # pseudo-units, sd 0.004), with intra-class correlation 0.001 (tests/test_counts.py: realistic priors)
    "c1,2026-01-06,a,units,mechanism,count,,9,20,,,,1,,test,x",
    # a measure: z = (value - 10) / 2 ~ Normal(0.6 * logit(theta), 1), tempered by reliability 0.8
    "m1,2026-01-07,a,level,mechanism,measure,11.5,,,,,,0.8,,test,x",
]
PRIOR_A, PRIOR_B = 1.5, 2.5  # mean 0.375, concentration 4
ICC = NEAR_FIXED_COUNTS["icc_mean"]  # the count row's intra-class correlation, all but fixed


def count_logpmf(k, n, p, icc=ICC):
    """scipy's beta-binomial at the row's share p and intra-class correlation icc (phi = 1/icc - 1)."""
    phi = 1 / icc - 1
    return stats.betabinom.logpmf(k, n, p * phi, (1 - p) * phi)


def log_density(theta: float) -> float:
    value = stats.beta.logpdf(theta, PRIOR_A, PRIOR_B)
    for s, f, r, v, w in [(0.8, 0.3, 1, 1, 1), (0.9, 0.6, 0.7, 1, 1), (0.7, 0.2, 1, 0, 1),
                          (0.6, 0.1, 0.9, 1, 0.5), (0.6, 0.1, 0.9, 1, 0.5)]:
        p = r * (f + theta * (s - f)) + (1 - r) / 2
        value += w * (v * np.log(p) + (1 - v) * np.log1p(-p))
    value += count_logpmf(9, 20, 0.2 + theta * 0.5)
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
                             concentration=PRIOR_A + PRIOR_B, loading=0.6, counts=NEAR_FIXED_COUNTS)
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
    # the group holds each row's unweighted log-likelihood (what ArviZ's LOO expects) and its weight
    post = fitted["posterior"]
    draw = lambda name: post[name].sel(count_indicator="units").values.ravel()[:50]  # noqa: E731
    rate_c, rate_n, icc = draw("rate_converting"), draw("rate_not_converting"), draw("count_icc")
    expected_count = count_logpmf(9, 20, rate_n + theta * (rate_c - rate_n), icc)
    expected_measure = stats.norm.logpdf(0.75, loc=0.6 * logit(theta), scale=1)
    expected_s4 = np.log(0.9 * (0.1 + theta * 0.5) + 0.05)
    ids = list(fitted["log_likelihood"]["evidence"].values)
    np.testing.assert_allclose(ll[:, ids.index("c1")], expected_count, rtol=1e-9)
    np.testing.assert_allclose(ll[:, ids.index("m1")], expected_measure, rtol=1e-9)
    np.testing.assert_allclose(ll[:, ids.index("s4")], expected_s4, rtol=1e-9)
    weight = fitted["log_likelihood"]["weight"].to_series()
    assert weight["m1"] == 0.8 and weight["s4"] == weight["s5"] == 0.5 and weight["c1"] == 1.0  # reliability, package


def test_result_records_provenance(fitted):
    attrs = fitted.attrs
    for key in ("bayescpec_version", "prior_set", "input_sha256", "as_of", "seed", "max_rhat",
                "min_ess_bulk", "divergences", "converged"):
        assert key in attrs
    assert attrs["seed"] == 11 and attrs["prior_set"] == "mini"
    assert bool(attrs["converged"]) == check_convergence(fitted)["converged"]  # the gate's verdict, recorded
    assert list(fitted["evidence"]["evidence"].values) == [r.split(",")[0] for r in ROWS]


# ---------------------------------------------------------------------------------------------
# Uncertain diagnosticity: s = f + (1 - f) g with f, g ~ Beta -- the path every shipped row uses.
# Oracle: numerical integration over (theta, f, g) by Gauss-Legendre quadrature, one channel per tier.
# ---------------------------------------------------------------------------------------------

LADDER_FRAMEWORK = """
[framework]
name = "ladder"
[[channels]]
id = "p"
label = "observed at the potential tier"
[[channels]]
id = "m"
label = "observed at the mechanism tier"
[[channels]]
id = "o"
label = "observed at the outcome tier"
""" + "".join(f"""
[[tiers]]
id = "{tier}"
label = "{tier}"
targets = "channel"
rank = {rank}
[[indicators]]
id = "clue_{tier}"
label = "a clue"
target = "any_channel"
tiers = ["{tier}"]
kinds = ["signal"]
""" for rank, tier in enumerate(("potential", "mechanism", "outcome"), start=1))

#: the shipped baseline's tier diagnosticities (sensitivity mean, false-positive mean, concentrations)
LADDER_TIERS = {"potential": (0.9, 20, 0.7, 20), "mechanism": (0.7, 15, 0.3, 15), "outcome": (0.8, 15, 0.1, 15)}
LADDER_PRIORS = """
name = "ladder"
description = "uniform theta; the shipped baseline's tier diagnosticities"
[loadings]
sd = 0.5
[measure_loading]
potential = 0.25
mechanism = 0.6
outcome = 1.0
""" + "".join(f"""
[channels.{c}]
mean = 0.5
concentration = 2
""" for c in "pmo") + "".join(f"""
[diagnosticity.tiers.{tier}]
sensitivity = {{ mean = {s}, concentration = {sc} }}
false_positive = {{ mean = {f}, concentration = {fc} }}
""" for tier, (s, sc, f, fc) in LADDER_TIERS.items())
#: per channel (= tier): three positive clues, reliability 0.9
LADDER_CLUES = [(1, 0.9), (1, 0.9), (1, 0.9)]


def uncertain_diagnosticity_oracle(tier: str, nodes: int = 48) -> tuple[float, float]:
    """Posterior mean of theta and P(theta > 0.5) by quadrature over (theta, f, g)."""
    s_mean, s_conc, f_mean, f_conc = LADDER_TIERS[tier]
    gap_mean = (s_mean - f_mean) / (1 - f_mean)
    x, w = np.polynomial.legendre.leggauss(nodes)

    def on(a, b):  # Gauss-Legendre nodes and weights on (a, b)
        return (b - a) / 2 * x + (a + b) / 2, (b - a) / 2 * w

    f, wf = on(0, 1)
    g, wg = on(0, 1)
    prior_fg = (stats.beta.pdf(f, f_mean * f_conc, (1 - f_mean) * f_conc)[:, None] * wf[:, None]
                * stats.beta.pdf(g, gap_mean * s_conc, (1 - gap_mean) * s_conc)[None, :] * wg[None, :])
    sens = f[:, None] + (1 - f[:, None]) * g[None, :]
    mass, first, upper = 0.0, 0.0, 0.0
    for lo, hi in ((0.0, 0.5), (0.5, 1.0)):  # split at 0.5: P(theta > 0.5) integrates a step
        theta, wt = on(lo, hi)
        t = theta[:, None, None]
        like = np.ones((theta.size,) + sens.shape)
        for value, r in LADDER_CLUES:
            p = r * (f[None, :, None] + t * (sens[None] - f[None, :, None])) + (1 - r) / 2
            like *= p if value else 1 - p
        density = (like * prior_fg[None]).sum(axis=(1, 2)) * wt  # theta prior is uniform
        mass += density.sum()
        first += (theta * density).sum()
        if lo == 0.5:
            upper = density.sum()
    return first / mass, upper / mass


@pytest.fixture(scope="module")
def ladder_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ladder")
    (folder / "framework.toml").write_text(LADDER_FRAMEWORK)
    (folder / "ladder.toml").write_text(LADDER_PRIORS)
    header = "id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,reliability,package,source,note"
    rows = [f"{c}{i},2026-01-01,{c},clue_{tier},{tier},signal,{v},,,,,,{r},,test,x"
            for c, tier in zip("pmo", LADDER_TIERS) for i, (v, r) in enumerate(LADDER_CLUES)]
    (folder / "evidence.csv").write_text("\n".join([header] + rows) + "\n")
    (folder / "sources.csv").write_text("key,reference,year,url\ntest,Test source,2026,\n")
    study = bc.load_study(framework=folder / "framework.toml", priors=folder / "ladder.toml",
                          evidence=folder / "evidence.csv")
    return bc.fit(study, draws=2500, tune=1000, chains=2, seed=5)


@pytest.mark.parametrize("channel, tier", list(zip("pmo", LADDER_TIERS)))
def test_uncertain_diagnosticity_matches_quadrature_over_theta_f_g(ladder_fit, channel, tier):
    import arviz as az

    mean, p_half = uncertain_diagnosticity_oracle(tier)
    theta = ladder_fit["posterior"]["theta"].sel(channel=channel)
    mcse_mean = float(az.mcse(theta, method="mean"))
    mcse_p = max(float(az.mcse((theta > 0.5).astype(float), method="mean")), 1e-3)
    assert abs(float(theta.mean()) - mean) < 4 * mcse_mean, (float(theta.mean()), mean, mcse_mean)
    assert abs(float((theta > 0.5).mean()) - p_half) < 4 * mcse_p, (float((theta > 0.5).mean()), p_half, mcse_p)


def test_the_evidence_ladder_under_the_shipped_diagnosticities(ladder_fit):
    """The same clues (3 positive) move theta further at a stronger tier -- with the tiers'
    uncertain diagnosticities of the shipped baseline, in the fit and in the oracle alike. Moves are
    from the prior mean 0.5; the potential tier's is small but must still be positive."""
    oracle = {tier: uncertain_diagnosticity_oracle(tier)[0] - 0.5 for tier in LADDER_TIERS}
    fitted = {tier: float(ladder_fit["posterior"]["theta"].sel(channel=c).mean()) - 0.5
              for c, tier in zip("pmo", LADDER_TIERS)}
    for moves in (oracle, fitted):
        assert moves["outcome"] > moves["mechanism"] > moves["potential"] > 0, moves
    # the gaps are not a rounding matter: each step up the ladder at least doubles the move
    assert oracle["mechanism"] > 2 * oracle["potential"] and oracle["outcome"] > 1.2 * oracle["mechanism"], oracle
