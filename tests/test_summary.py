"""Tables on synthetic result objects (no sampling): every number checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import bayescpec as bc
from bayescpec.inputs.query import QueryError
from bayescpec.inputs.querycheck import check_query

from synthetic import synthetic_result


@pytest.fixture
def result():
    rng = np.random.default_rng(42)
    post = np.stack([rng.beta(8, 2, size=(2, 500)), rng.beta(2, 6, size=(2, 500))], axis=-1)
    prior = rng.beta(2, 2, size=(1, 1000, 2))
    return synthetic_result(post, prior)


@pytest.mark.parametrize("p,word", [
    (1.0, "virtually certain"), (0.99, "virtually certain"), (0.95, "very likely"), (0.90, "very likely"),
    (0.7, "likely"), (0.66, "likely"), (0.5, "about as likely as not"), (0.34, "about as likely as not"),
    (0.33, "unlikely"), (0.2, "unlikely"), (0.10, "very unlikely"), (0.05, "very unlikely"),
    (0.01, "exceptionally unlikely"), (0.0, "exceptionally unlikely"),
])
def test_ipcc_words(p, word):
    assert bc.ipcc_likelihood(p) == word


def test_ipcc_rejects_non_probabilities():
    with pytest.raises(ValueError, match="found 1.5"):
        bc.ipcc_likelihood(1.5)


def test_channel_table_numbers(result):
    table = bc.channel_table(result, threshold=0.6, ci_kind="eti", ci_prob=0.8)
    theta = result["posterior"]["theta"].values.reshape(-1, 2)
    prior = result["prior"]["theta"].values.reshape(-1, 2)
    np.testing.assert_allclose(table["posterior_mean"], theta.mean(0))
    np.testing.assert_allclose(table["prior_mean"], prior.mean(0))
    np.testing.assert_allclose(table["80% ETI lower"], np.quantile(theta, 0.1, axis=0), rtol=1e-6)
    np.testing.assert_allclose(table["80% ETI upper"], np.quantile(theta, 0.9, axis=0), rtol=1e-6)
    np.testing.assert_allclose(table["p_converting"], (theta > 0.6).mean(0))
    assert list(table["likelihood"]) == [bc.ipcc_likelihood(p) for p in (theta > 0.6).mean(0)]
    assert list(table["rows_potential"]) == [1, 1] and list(table["rows_outcome"]) == [1, 0]
    assert table.attrs["interval"] == "80% ETI" and table.attrs["threshold"] == 0.6
    assert table.attrs["provenance"]["prior_set"] == "synthetic"


def test_hdi_is_narrower_than_eti_for_skewed_posterior(result):
    eti = bc.channel_table(result, ci_kind="eti", ci_prob=0.9)
    hdi = bc.channel_table(result, ci_kind="hdi", ci_prob=0.9)
    width = lambda t, k: (t[f"90% {k} upper"] - t[f"90% {k} lower"]).to_numpy()  # noqa: E731
    assert np.all(width(hdi, "HDI") <= width(eti, "ETI") + 1e-9)


def test_default_interval_is_90_percent_eti(result):
    assert "90% ETI lower" in bc.channel_table(result).columns


@pytest.mark.parametrize("kwargs,match", [({"ci_kind": "hpd"}, "ci_kind must be 'eti' or 'hdi'; found 'hpd'"),
                                          ({"ci_prob": 1.2}, "ci_prob must be in"),
                                          ({"threshold": 0.0}, "threshold must be in")])
def test_bad_table_options(result, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bc.channel_table(result, **kwargs)


def test_proposition_table_matches_numpy(result):
    table = bc.proposition_table(result, threshold=0.5).set_index("proposition")
    theta = result["posterior"]["theta"].values.reshape(-1, 2)
    prior = result["prior"]["theta"].values.reshape(-1, 2)
    assert table.loc["P1", "posterior_probability"] == pytest.approx((theta[:, 0] > 0.5).mean())
    assert table.loc["P2", "posterior_probability"] == pytest.approx((theta > 0.5).all(1).mean())
    assert table.loc["P2", "prior_probability"] == pytest.approx((prior > 0.5).all(1).mean())
    assert table.loc["P1", "change"] == pytest.approx(
        table.loc["P1", "posterior_probability"] - table.loc["P1", "prior_probability"])


def test_constraint_table(result):
    table = bc.constraint_table(result, ci_kind="eti", ci_prob=0.9)
    severity = result["posterior"]["severity"].values.ravel()
    assert table["p_binding"].item() == pytest.approx((severity > 0).mean())
    assert table["binds"].item() == "a" and table["rows_context"].item() == 1


@pytest.mark.parametrize("query", ["theta[a] > tau", "all(theta > tau) and severity[k] > 0",
                                   "count(theta > tau) >= 1", "mean(theta) > 0.4 or not theta[b] > tau",
                                   "all(theta[a, b] > tau) and any(constraint_effect > 0)"])
def test_queries_that_check(query):
    check_query(query, channels=["a", "b"], constraints=["k"])


@pytest.mark.parametrize("query,match", [
    ("theta[c] > tau", "'c' is not a channel"), ("theta > tau", "reduce it with all"),
    ("theta[a]", "true/false"), ("__import__('os')", "only the functions"), ("theta[a] >", "cannot parse"),
    ("foo[a] > 1", "can be indexed"), ("theta[a] == tau", "comparisons"),
])
def test_queries_that_fail(query, match):
    with pytest.raises(QueryError, match=match):
        check_query(query, channels=["a", "b"], constraints=["k"])
