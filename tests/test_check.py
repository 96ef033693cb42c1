"""Model criticism (`bayescpec check`, issue 20): predictive p-values against closed forms and quadrature,
the replicates against the likelihood, the dispersion statistic against its χ² reference and its design
under binomial and beta-binomial replicates, PSIS-LOO k̂ and LOO-PIT against ArviZ and an independent
Rao-Blackwellised computation, the tables in every format, and the overdispersion flag on fitted logs.

Monte Carlo numbers are compared within 4 Monte Carlo standard errors computed in the test.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import integrate, stats
from scipy.special import logit

import bayescpec as bc
from analysis_fixtures import mini_study, quiet_fit
from bayescpec.analysis.criticism import FLAG_LEVEL, ModelCheck, check, dispersion_statistic
from bayescpec.analysis.criticism_report import CHECK_TABLES, check_outputs, fmt_p
from bayescpec.engine.aggregate import evidence_data
from bayescpec.engine.assemble import LIKELIHOOD_VARIABLES, evidence_ledger, log_likelihood_group, posterior_draws, \
    prior_group
from bayescpec.engine.likelihood import pointwise_log_likelihood
from bayescpec.engine.replicate import row_predictive
from bayescpec.engine.structure import structure_of
from conftest import EVIDENCE, FRAMEWORK, MINI_COUNTS, SOURCES, BASELINE

ROOT = Path(__file__).resolve().parent.parent
MEAN, CONCENTRATION, LOADING = 0.4, 3.0, 0.6
#: a one-channel log: two explicit-rate signals (seen, not seen), a tier-rate signal, a count with the
#: catalogue's rates 0.7 / 0.2, and a measure (value 13: z = 1.5 at baseline 10, scale 2)
ROWS = [
    "s1,2026-01-01,a,clue,mechanism,signal,1,,,,0.9,0.1,0.8,,test,seen",
    "s2,2026-01-02,a,clue,mechanism,signal,0,,,,0.9,0.1,0.8,,test,not seen",
    "s3,2026-01-03,a,clue,mechanism,signal,1,,,,,,1,,test,tier rates",
    "c1,2026-01-04,a,units,mechanism,count,,7,20,,,,1,,test,seven of twenty",
    "m1,2026-01-05,a,level,mechanism,measure,13,,,,,,1,,test,a level",
]


def prior_as_posterior(study: bc.Study, *, draws: int = 4000, seed: int = 5) -> xr.DataTree:
    """A result without sampling: prior draws in the prior group and independent prior draws (two chains)
    as its 'posterior', so every predictive p-value has the prior predictive's closed form."""
    structure = structure_of(study)
    prior = prior_group(structure, study, draws, seed)
    other = prior_group(structure, study, draws, seed + 1)
    posterior = xr.Dataset({name: (("chain", "draw", *var.dims[2:]),
                                   var.values.reshape((2, draws // 2) + var.shape[2:]))
                            for name, var in other.data_vars.items()},
                           coords={name: c for name, c in other.coords.items() if name not in ("chain", "draw")})
    posterior = posterior.assign_coords(chain=np.arange(2), draw=np.arange(draws // 2))
    data = evidence_data(study)
    tree = xr.DataTree.from_dict({"prior": prior, "posterior": posterior, "evidence": evidence_ledger(study, data)})
    tree["log_likelihood"] = log_likelihood_group(tree, data)
    tree.attrs = {"prior_set": "mini", "seed": 11, "draws": draws // 2, "chains": 2, "max_rhat": 1.0,
                  "min_ess_bulk": 1000.0, "divergences": 0, "converged": 1, "as_of": "2026-01-05",
                  "input_sha256": json.dumps({"evidence": "ab" * 32}), "bayescpec_version": "test",
                  "sampler": "none", "evidence_rows": data.n_rows}
    return tree


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    study = mini_study(tmp_path_factory.mktemp("check-mini"), ROWS, mean=MEAN, concentration=CONCENTRATION,
                       loading=LOADING)
    return study, prior_as_posterior(study)


def beta_expectation(f) -> float:
    """E f(θ) for θ ~ Beta(MEAN·c, (1 − MEAN)·c), by quadrature."""
    a, b = MEAN * CONCENTRATION, (1 - MEAN) * CONCENTRATION
    return integrate.quad(lambda t: f(t) * stats.beta.pdf(t, a, b), 0, 1, limit=200)[0]


def count_mid_p_by_scipy(k: int, n: int, *, size: int, seed: int = 2) -> tuple[float, float]:
    """The prior predictive mid-p P(K > k) + P(K = k)/2 of a count row of the mini study, and its sd over
    draws, by scipy alone: θ from the Beta prior, the indicator's rates and rho from MINI_COUNTS."""
    rng = np.random.default_rng(seed)
    kappa = MINI_COUNTS["rate_concentration"]
    theta = stats.beta.rvs(MEAN * CONCENTRATION, (1 - MEAN) * CONCENTRATION, size=size, random_state=rng)
    f = stats.beta.rvs(0.2 * kappa, 0.8 * kappa, size=size, random_state=rng)
    gap = 0.5 / 0.8
    g = stats.beta.rvs(gap * kappa, (1 - gap) * kappa, size=size, random_state=rng)
    c = MINI_COUNTS["icc_concentration"]
    rho = stats.beta.rvs(MINI_COUNTS["icc_mean"] * c, (1 - MINI_COUNTS["icc_mean"]) * c, size=size, random_state=rng)
    p = f + theta * (f + (1 - f) * g - f)
    phi = 1 / rho - 1
    law = stats.betabinom(n, p * phi, (1 - p) * phi)
    mid = law.sf(k) + 0.5 * law.pmf(k)
    return float(mid.mean()), float(mid.std())


def test_prior_predictive_p_values_match_their_closed_forms(mini):
    """A signal: P(positive) = r (f + E[π] (s − f)) + (1 − r)/2 (explicit rates) and with the tier's rates
    E f + E π (E s − E f) by independence; the mid-p of 1 is P(1)/2, of 0 it is P(1) + P(0)/2. A count and a
    measure: quadrature of the normal tail over the Beta prior of θ; a count: scipy's beta-binomial tail averaged
    over independent draws of θ, the indicator's rates and its overdispersion."""
    study, result = mini
    found = check(result, study)
    rows = found.rows.set_index("evidence")
    draws = 4000
    sd_theta = np.sqrt(MEAN * (1 - MEAN) / (CONCENTRATION + 1))
    positive = 0.8 * (0.1 + MEAN * 0.8) + 0.1
    expected = {"s1": positive / 2, "s2": positive + (1 - positive) / 2}
    for rid, p in expected.items():
        mcse = 0.8 * 0.8 * sd_theta / 2 / np.sqrt(draws)  # sd of the per-draw mid-p over independent draws
        for prefix in ("prior", "posterior"):
            assert abs(rows.loc[rid, f"p_{prefix}"] - p) < 4 * mcse + 1e-9, (rid, prefix)
    tier_positive = 0.3 + MEAN * (0.7 - 0.3)
    assert abs(rows.loc["s3", "p_prior"] - tier_positive / 2) < 0.01
    # the count: k = 7 of 20, BetaBinomial(20, p phi, (1 - p) phi), p = f + θ (s - f), phi = 1/rho - 1, with the
    # indicator's rates and rho drawn from their priors (MINI_COUNTS: f ~ Beta(mean 0.2, 20), s = f + (1 - f) g,
    # g ~ Beta(mean 0.5 / 0.8, 20), rho ~ Beta(3, 17)): an independent Monte Carlo of 200 000 draws with scipy
    count_p, count_sd = count_mid_p_by_scipy(7, 20, size=200_000)
    assert abs(rows.loc["c1", "p_prior"] - count_p) < 4 * count_sd * np.sqrt(1 / draws + 1 / 200_000)
    # the measure: z = 1.5 against N(λ logit θ, 1)
    measure_p = beta_expectation(lambda t: stats.norm.sf(1.5 - LOADING * logit(t)))
    measure_sd = np.sqrt(beta_expectation(lambda t: stats.norm.sf(1.5 - LOADING * logit(t)) ** 2) - measure_p**2)
    assert abs(rows.loc["m1", "p_prior"] - measure_p) < 4 * measure_sd / np.sqrt(draws)
    assert abs(rows.loc["m1", "prior_mean"] - LOADING * beta_expectation(logit)) < 4 * 1.5 / np.sqrt(draws)
    assert rows.loc["c1", "observed"] == "7/20" and rows.loc["m1", "observed"] == "z = 1.50"
    assert not (rows["prior_flag"] | rows["posterior_flag"]).any()  # (LOO means nothing on prior draws)


def test_tier_statistic_p_value_matches_quadrature(tmp_path):
    """Four signals with the same explicit rates and reliability: the number positive is Binomial(4, P(θ))
    given θ; its mid-p against the observed 3 by quadrature over the Beta prior."""
    rows = [f"s{i},2026-01-0{i},a,clue,mechanism,signal,{v},,,,0.9,0.1,0.8,,test,clue" for i, v in
            zip(range(1, 5), (1, 1, 1, 0))]
    study = mini_study(tmp_path, rows, mean=MEAN, concentration=CONCENTRATION)
    found = check(prior_as_posterior(study), study)
    group = found.groups.iloc[0]
    assert (group["tier"], group["kind"], group["rows"], group["observed"]) == ("mechanism", "signal", 4, 3.0)

    def p_of(t):
        p = 0.8 * (0.1 + t * 0.8) + 0.1
        return stats.binom.sf(3, 4, p) + 0.5 * stats.binom.pmf(3, 4, p)

    expected = beta_expectation(p_of)
    mcse = np.sqrt(expected * (1 - expected) / 4000)  # one Bernoulli-ish indicator per independent draw
    for prefix in ("prior", "posterior"):
        assert abs(group[f"p_{prefix}"] - expected) < 4 * mcse, (prefix, group[f"p_{prefix}"], expected)


def test_replicates_follow_the_likelihood(mini):
    """Every row's enumerated distribution is the likelihood normalised over the row's values; the count's is
    scipy's beta-binomial at the draw's rates and overdispersion, the measure's Normal(λ logit θ, 1); replicates have the predicted means."""
    study, result = mini
    data = evidence_data(study)
    draws = posterior_draws(result, LIKELIHOOD_VARIABLES, "prior")
    pred = row_predictive(data.rows, draws, np.random.default_rng(3))
    theta = draws["reach"][:, 0, 0]
    count = 3
    f, s_rate, rho = (draws[name][:, 0] for name in ("rate_not_converting", "rate_converting", "count_icc"))
    p_count = f + theta * (s_rate - f)
    phi = 1 / rho - 1
    law = stats.betabinom(20, p_count * phi, (1 - p_count) * phi)
    np.testing.assert_allclose(pred.at[:, count], law.pmf(7), rtol=1e-9)
    np.testing.assert_allclose(pred.above[:, count], law.sf(7), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(pred.mean[:, count], 20 * p_count, rtol=1e-9)
    np.testing.assert_allclose(pred.var[:, count], law.var(), rtol=1e-7)
    signal = 0.8 * (0.1 + theta * 0.8) + 0.1
    np.testing.assert_allclose(pred.mean[:, 0], signal, rtol=1e-12)
    np.testing.assert_allclose(pred.at[:, 0], signal, rtol=1e-12)
    np.testing.assert_allclose(pred.mean[:, 4], LOADING * logit(theta), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pred.var[:, 4], 1.0, rtol=1e-9)
    np.testing.assert_allclose(pred.above[:, 4], stats.norm.sf(1.5 - LOADING * logit(theta)), rtol=1e-9, atol=1e-12)
    # the replicates are draws from those distributions (within 4 standard errors of the mean over draws)
    for column in range(5):
        spread = np.sqrt(pred.var[:, column].mean() + pred.mean[:, column].var())
        assert abs(pred.replicates[:, column].mean() - pred.mean[:, column].mean()) < 4 * spread / np.sqrt(4000)
    # and the likelihood at each replicated value is a proper distribution (sums to 1 over the count's values)
    one = data.rows.iloc[[count] * 21].reset_index(drop=True)
    one["k"] = np.arange(21.0)
    total = np.exp(pointwise_log_likelihood(one, {k: v[:50] for k, v in draws.items()}, weighted=False)).sum(axis=1)
    np.testing.assert_allclose(total, 1.0, rtol=1e-9)


def test_dispersion_statistic_is_pearsons_and_chi_square_under_binomial_counts():
    k, n = np.array([2.0, 45, 5, 48]), np.array([50.0, 50, 50, 50])
    rate = k.sum() / n.sum()
    by_hand = sum((ki - ni * rate) ** 2 / (ni * rate * (1 - rate)) for ki, ni in zip(k, n))
    assert dispersion_statistic(k, n) == pytest.approx(by_hand, rel=1e-12)
    assert dispersion_statistic(np.array([0.0, 0.0]), np.array([5.0, 9.0])) == 0.0
    rng = np.random.default_rng(0)
    n = np.array([30.0, 50, 80, 120, 60])
    replicated = rng.binomial(n.astype(int), 0.35, size=(20000, 5)).astype(float)
    values = dispersion_statistic(replicated, n)
    assert abs(values.mean() - 4.0) < 4 * values.std() / np.sqrt(values.size)  # E χ²_4 = 4
    # its upper tail against χ²_4 (Kolmogorov distance, a loose bound for a discrete approximation)
    assert stats.kstest(values, stats.chi2(4).cdf).statistic < 0.03


@pytest.mark.parametrize("counts, binomial_flags, overdispersed_flags", [
    ((2, 45, 5, 48), True, False),     # far more spread than a binomial allows
    ((24, 27, 22, 26), False, False),  # binomial spread
])
def test_dispersion_check_judges_against_the_count_models_own_replicates(counts, binomial_flags,
                                                                         overdispersed_flags):
    """The flag asks whether the model's replicates reproduce the spread: binomial replicates flag the
    overdispersed counts; beta-binomial replicates with intra-row correlation ρ = 0.7 (the spread those
    counts show) do not; binomial counts are flagged under neither."""
    k, n = np.array(counts, float), np.full(4, 50.0)
    observed = dispersion_statistic(k, n)
    rng = np.random.default_rng(1)
    rate = rng.beta(20, 20, size=(4000, 1))
    binomial = rng.binomial(50, np.broadcast_to(rate, (4000, 4))).astype(float)
    rho = 0.7
    a, b = rate * (1 - rho) / rho, (1 - rate) * (1 - rho) / rho
    overdispersed = stats.betabinom.rvs(50, np.broadcast_to(a, (4000, 4)), np.broadcast_to(b, (4000, 4)),
                                        random_state=rng).astype(float)
    for replicates, flags in ((binomial, binomial_flags), (overdispersed, overdispersed_flags)):
        d = dispersion_statistic(replicates, n)
        p = float(np.mean(d > observed) + 0.5 * np.mean(d == observed))
        assert (p < FLAG_LEVEL) == flags, p


def test_loo_khat_and_pit_match_arviz_and_a_rao_blackwellised_computation(tmp_path):
    """k̂ equals ArviZ's loo on the fit's weighted log-likelihood (built here from the result's groups);
    each LOO-PIT value lies within Monte Carlo error of the interval [P(y_rep < y), P(y_rep ≤ y)] under the
    PSIS leave-one-out weights, computed from the exact per-draw distributions."""
    import arviz_stats as azs
    from arviz_stats.base import array_stats

    rows = ROWS[:4] + ["p1,2026-01-06,a,clue,mechanism,signal,1,,,,0.9,0.1,1,pk,test,packaged",
                       "p2,2026-01-07,a,clue,mechanism,signal,1,,,,0.9,0.1,1,pk,test,packaged",
                       "m1,2026-01-05,a,level,mechanism,measure,13,,,,,,1,,test,a level"]
    study = mini_study(tmp_path, rows, mean=MEAN, concentration=CONCENTRATION, loading=LOADING)
    result = quiet_fit(study)
    found = check(result, study)
    group = result["log_likelihood"]
    weighted = group["rows"] * group["weight"]
    tree = xr.DataTree.from_dict({"posterior": result["posterior"].to_dataset()[["theta"]],
                                  "log_likelihood": xr.Dataset({"rows": weighted})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = azs.loo(tree, pointwise=True, var_name="rows")
    np.testing.assert_allclose(found.rows["pareto_k"], reference.pareto_k.values, atol=0.05)
    assert found.attrs["khat_threshold"] == pytest.approx(min(1 - 1 / np.log10(2000), 0.7))
    data = evidence_data(study)
    draws = posterior_draws(result, LIKELIHOOD_VARIABLES, "posterior")
    pred = row_predictive(data.rows, draws, np.random.default_rng(0))
    loglik = weighted.transpose("chain", "draw", "evidence").values.reshape(-1, len(rows))
    for i in range(len(rows)):
        log_w, _ = array_stats.psislw(loglik[:, i])  # weights of leaving row i out: ∝ 1 / its likelihood
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        upper = float(w @ (1 - pred.above[:, i]))  # P(y_rep ≤ y)
        lower = upper - float(w @ pred.at[:, i])     # P(y_rep < y)
        error = np.sqrt(np.sum(w**2)) + 0.01
        pit = found.rows["loo_pit"].iloc[i]
        assert lower - 4 * error <= pit <= upper + 4 * error, (rows[i], lower, pit, upper)


def test_a_result_without_its_log_likelihood_is_checked_without_loo(mini):
    study, result = mini
    bare = result.copy()
    del bare["log_likelihood"]
    found = check(bare, study)
    assert "pareto_k" not in found.rows.columns and "p_posterior" in found.rows.columns
    assert "Pareto k̂ (PSIS-LOO)" not in set(found.summary["check"])
    tables = check_outputs(found).tables
    for name in CHECK_TABLES:
        bc.render_table(tables[name], name=name, format="md")


def test_a_large_log_thins_every_chains_draws_alike(mini, monkeypatch):
    """Beyond MAX_ELEMENTS draws x rows the draws are thinned (every 4th here): the same p-values within
    Monte Carlo error, k̂ judged against the threshold of the draws used."""
    from bayescpec.analysis import criticism

    study, result = mini
    full = check(result, study)
    monkeypatch.setattr(criticism, "MAX_ELEMENTS", 5 * 1000)  # 5 rows: 1000 of the 4000 draws
    thinned = check(result, study)
    assert thinned.attrs["draws"] == {"prior": 1000, "posterior": 1000}
    assert thinned.attrs["khat_threshold"] == pytest.approx(min(1 - 1 / np.log10(1000), 0.7))
    for prefix in ("prior", "posterior"):
        gap = (thinned.rows[f"p_{prefix}"] - full.rows[f"p_{prefix}"]).abs()
        assert (gap < 4 * np.hypot(thinned.rows[f"p_{prefix}_mcse"], full.rows[f"p_{prefix}_mcse"]) + 1e-9).all()


def test_bad_options_and_a_mismatched_study_are_refused(mini, tmp_path):
    study, result = mini
    with pytest.raises(bc.InputError, match="flag_level"):
        check(result, study, flag_level=0.6)
    other = mini_study(tmp_path, ROWS[:3], mean=MEAN, concentration=CONCENTRATION)
    with pytest.raises(bc.ResultMismatchError, match="evidence rows"):
        check(result, other)


def synthetic_check(flagged: bool) -> ModelCheck:
    """A ModelCheck built by hand (no sampling, no fit), for the layouts."""
    prov = {"prior_set": "synthetic", "as_of": "2026-01-01", "evidence_rows": 2, "seed": 1, "draws": 10, "chains": 2,
            "max_rhat": 1.0, "min_ess_bulk": 900, "divergences": 0, "converged": True, "bayescpec_version": "test",
            "sha256_evidence": "abcdef123456"}
    attrs = {"provenance": prov, "caption": "Source: synthetic", "flag_level": 0.01, "seed": 4, "khat_threshold": 0.7,
             "draws": {"prior": 20, "posterior": 20}, "loo_pit_uniformity_p": 0.5, "verdict": "v",
             "precise_columns": ["p_prior", "p_posterior", "loo_pit"]}
    rows = pd.DataFrame({"evidence": ["r1", "r2"], "tier": ["outcome", "outcome"], "kind": ["count", "measure"],
                         "target": ["a", "a"], "unit": ["zone-1", ""], "stage": ["", ""], "indicator": ["units", "lvl"],
                         "test": ["", ""], "observed": ["45/50", "z = 1.00"], "y": [45.0, 1.0],
                         "prior_mean": [25.0, 0.1], "p_prior": [0.0004, 0.3], "p_prior_mcse": [0.0001, 0.01],
                         "prior_flag": [flagged, False], "posterior_mean": [30.0, 0.5],
                         "p_posterior": [0.003 if flagged else 0.2, 0.4], "p_posterior_mcse": [0.001, 0.01],
                         "posterior_flag": [flagged, False], "loo_pit": [0.99, 0.4], "pareto_k": [0.9, 0.1],
                         "khat_flag": [flagged, False]})
    groups = pd.DataFrame({"tier": ["outcome"], "kind": ["count"], "rows": [1], "statistic": ["sum of k"],
                           "observed": [45.0], "prior_mean": [25.0], "prior_lower": [10.0], "prior_upper": [40.0],
                           "p_prior": [0.0004], "p_prior_mcse": [0.0002], "prior_flag": [True],
                           "posterior_mean": [30.0], "posterior_lower": [20.0], "posterior_upper": [40.0],
                           "p_posterior": [0.02], "p_posterior_mcse": [0.004], "posterior_flag": [False]})
    dispersion = pd.DataFrame({"indicator": ["units"], "target": ["a"], "unit": [""], "stage": ["firms"],
                               "tier": ["outcome"], "test": [""], "rows": [4], "counts": ["2/50, 45/50, 5/50, 48/50"],
                               "pooled_rate": [0.5], "statistic": [148.6], "df": [3], "dispersion_index": [49.5],
                               "prior_index_median": [0.8], "prior_index_upper": [2.6], "p_prior": [0.0],
                               "p_prior_mcse": [0.0], "prior_flag": [True], "posterior_index_median": [0.8],
                               "posterior_index_upper": [2.6], "p_posterior": [0.0], "p_posterior_mcse": [0.0],
                               "posterior_flag": [True]})
    summary = pd.DataFrame({"check": ["Prior-data conflict (rows)"], "rule": ["prior predictive p < 0.01 or > 0.99"],
                            "checked": [2], "flagged": [1 if flagged else 0], "items": ["r1 (p < 0.001)" if flagged else "none"]})
    for frame in (summary, rows, groups, dispersion):
        frame.attrs = dict(attrs, title="t")
    flags = ["Prior-data conflict (rows): r1 (p < 0.001)"] if flagged else []
    return ModelCheck(summary, rows, groups, dispersion, "verdict text", flags, attrs)


@pytest.mark.parametrize("fmt", ["md", "latex", "html", "csv"])
def test_every_table_renders_in_every_format_with_flags_rules_and_provenance(fmt):
    outputs = check_outputs(synthetic_check(True))
    assert set(outputs.tables) == set(CHECK_TABLES)
    for name in CHECK_TABLES:
        text = bc.render_table(outputs.tables[name], name=name, format=fmt)
        assert "synthetic" in text and "abcdef123456" in text, name  # the provenance footnote
        assert "mid-p" in text, name                                  # the rule, in every table
    rows = bc.render_table(outputs.tables["check-rows"], name="check-rows", format="md")
    assert "<0.001 !" in rows and "zone-1" in rows and "0.90 !" in rows  # flags marked; k̂ 0.90 above 0.70
    groups = bc.render_table(outputs.tables["check-groups"], name="check-groups", format="md")
    assert "<0.001 ± <0.001 !" in groups and "0.020 ± 0.004" in groups
    dispersion = bc.render_table(outputs.tables["check-dispersion"], name="check-dispersion", format="md")
    assert "148.6 (3)" in dispersion and "49.50" in dispersion
    if fmt == "csv":
        csv = bc.render_table(outputs.tables["check-rows"], name="check-rows", format="csv")
        assert ",0.0004," in csv  # p-values keep two more decimals than the report's rounding


def test_p_values_are_never_printed_as_0_or_1():
    assert fmt_p(0.0) == "<0.001" and fmt_p(1.0) == ">0.999" and fmt_p(0.0123) == "0.012"
    assert fmt_p(0.0123, digits=3) == "0.0123" and fmt_p(float("nan")) == "–"


def test_the_figure_draws_with_and_without_loo(tmp_path):
    from bayescpec.analysis.criticism_report import plot_check
    from bayescpec.outputs.figures import _pyplot

    for found in (synthetic_check(True), synthetic_check(False)):
        fig = plot_check(found)
        assert len(fig.axes) == 3 and "Source: synthetic" in fig._bayescpec_caption
        _pyplot().close(fig)
    bare = synthetic_check(False)
    bare.rows.drop(columns=["loo_pit", "pareto_k", "khat_flag"], inplace=True)
    _pyplot().close(plot_check(bare))


def test_an_empty_log_checks_nothing(tmp_path):
    study = mini_study(tmp_path, [])
    found = check(prior_as_posterior(study), study)
    assert found.passed and "prior-only" in found.verdict and not len(found.rows)
    for name, table in check_outputs(found).tables.items():
        bc.render_table(table, name=name, format="html")


#: eight counts of one indicator far more variable than a binomial -- or the shipped overdispersion prior
#: (rho ~ Beta(3, 17)) -- allows: the posterior predictive p of the dispersion index is about 0.002 (MCSE
#: 0.001 at 2 000 draws), well inside the flag level 0.01 (four counts gave about 0.009: a coin toss)
OVERDISPERSED = [f"c{i},2026-01-0{i},a,units,mechanism,count,,{k},50,,,,1,,test,HYPOTHETICAL overdispersed"
                 for i, k in zip(range(1, 9), (2, 45, 5, 48, 1, 47, 3, 46))] + [
                 "s1,2026-01-09,a,clue,mechanism,signal,1,,,,,,1,,test,a clue"]
BINOMIAL = ["c1,2026-01-01,a,units,mechanism,count,,22,50,,,,1,,test,HYPOTHETICAL binomial",
            "c2,2026-01-02,a,units,mechanism,count,,26,50,,,,1,,test,HYPOTHETICAL binomial",
            "c3,2026-01-03,a,units,mechanism,count,,19,50,,,,1,,test,HYPOTHETICAL binomial",
            "c4,2026-01-04,a,units,mechanism,count,,24,50,,,,1,,test,HYPOTHETICAL binomial",
            "s1,2026-01-05,a,clue,mechanism,signal,1,,,,,,1,,test,a clue"]


@pytest.mark.slow
def test_overdispersed_counts_are_flagged_and_binomial_counts_are_not(tmp_path):
    """Fitted logs: counts of one indicator far more variable than a binomial allows (2/50, 45/50, 5/50,
    48/50, 1/50, 47/50, 3/50, 46/50) are flagged by the dispersion check; binomial counts (22/50, 26/50, 19/50, 24/50) are not, with
    their p-value above the flag level by more than 4 MCSE."""
    over = mini_study(tmp_path / "over", OVERDISPERSED)
    found = check(quiet_fit(over), over)
    line = found.dispersion.iloc[0]
    assert line["posterior_flag"] and line["dispersion_index"] > 40
    assert any(f.startswith("Overdispersion of counts: units on a") for f in found.flags)
    plain = mini_study(tmp_path / "binomial", BINOMIAL)
    found = check(quiet_fit(plain), plain)
    line = found.dispersion.iloc[0]
    assert not line["posterior_flag"] and line["p_posterior"] > FLAG_LEVEL + 4 * line["p_posterior_mcse"]
    assert found.passed, found.verdict


@pytest.mark.slow
def test_posterior_predictive_p_values_match_quadrature_after_a_fit(tmp_path):
    """One channel, signals with explicit rates: the posterior of θ is the Beta prior times each signal's
    probability; the posterior predictive mid-p of each row by quadrature, against check within 4 MCSE."""
    rows = ["s1,2026-01-01,a,clue,mechanism,signal,1,,,,0.9,0.1,0.8,,test,seen",
            "s2,2026-01-02,a,clue,mechanism,signal,1,,,,0.9,0.1,1,,test,seen",
            "s3,2026-01-03,a,clue,mechanism,signal,0,,,,0.8,0.3,0.9,,test,not seen"]
    study = mini_study(tmp_path, rows, mean=MEAN, concentration=CONCENTRATION)
    found = check(quiet_fit(study, draws=2000), study)
    specs = [(1, 0.9, 0.1, 0.8), (1, 0.9, 0.1, 1.0), (0, 0.8, 0.3, 0.9)]

    def prob(t, s, f, r):
        return r * (f + t * (s - f)) + (1 - r) / 2

    def likelihood(t):
        return np.prod([prob(t, s, f, r) if y else 1 - prob(t, s, f, r) for y, s, f, r in specs], axis=0)

    norm = beta_expectation(likelihood)
    for (y, s, f, r), (_, row) in zip(specs, found.rows.iterrows()):
        mid = (lambda t: prob(t, s, f, r) / 2) if y else (lambda t: prob(t, s, f, r) + (1 - prob(t, s, f, r)) / 2)
        expected = beta_expectation(lambda t: mid(t) * likelihood(t)) / norm
        assert abs(row["p_posterior"] - expected) < 4 * row["p_posterior_mcse"] + 1e-4, (row["evidence"], expected)


TEACHING = ROOT / "evidence" / "hypothetical_overdispersed_counts.csv"


@pytest.mark.slow
def test_the_overdispersed_teaching_log_is_flagged_on_the_shipped_study(tmp_path):
    """The shipped log plus the hypothetical teaching batch of overdispersed counts: check flags the
    overdispersion of the batch's indicator."""
    folder = tmp_path / "study"
    folder.mkdir()
    for src in (FRAMEWORK, BASELINE, SOURCES):
        shutil.copy(src, folder / src.name)
    batch = TEACHING.read_text(encoding="utf-8").splitlines()
    assert batch[0] == EVIDENCE.read_text(encoding="utf-8").splitlines()[0]
    (folder / "evidence.csv").write_text(EVIDENCE.read_text(encoding="utf-8").rstrip("\n") + "\n"
                                         + "\n".join(batch[1:]) + "\n", encoding="utf-8")
    study = bc.load_study(framework=folder / FRAMEWORK.name, priors=folder / BASELINE.name,
                          evidence=folder / "evidence.csv", sources=folder / SOURCES.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bc.fit(study, draws=1000, tune=1000, chains=2, seed=4)
    found = check(result, study)
    line = found.dispersion.iloc[0]
    assert line["indicator"] == "sez_production_startups" and line["posterior_flag"], found.dispersion
    assert any(f.startswith("Overdispersion of counts") for f in found.flags)
