"""The fit's sampling logic, checked without relying on any seed's behaviour."""

from __future__ import annotations

import warnings

import pytest

import bayescpec as bc

from conftest import write_mini_study

ROWS = [f"s{i},2026-01-01,a,clue,mechanism,signal,{i % 2},,,,,,1,,test,x" for i in range(6)]


@pytest.fixture
def mini(tmp_path):
    paths = write_mini_study(tmp_path, ROWS)
    return bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])


@pytest.fixture
def divergent_first_call(monkeypatch):
    """The compiled model's sampler (whichever backend) as usual, but the first posterior it returns
    reports 3 divergent transitions."""
    from bayescpec.engine.compiled import CompiledModel

    real, calls = CompiledModel.sample, []

    def sample(self, *args, **kwargs):
        calls.append(kwargs["target_accept"])
        tree = real(self, *args, **kwargs)
        if len(calls) == 1:
            stats = tree["sample_stats"].to_dataset()
            diverging = stats["diverging"].values.copy()
            diverging[0, :3] = True
            tree["sample_stats"] = stats.assign(diverging=(stats["diverging"].dims, diverging))
        return tree

    monkeypatch.setattr(CompiledModel, "sample", sample)
    return calls


def test_divergences_trigger_one_rerun_at_higher_target_accept(mini, divergent_first_call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)  # 100 draws: about structure, not precision
        result = bc.fit(mini, draws=100, tune=100, chains=2, seed=1)
    assert divergent_first_call == [0.9, 0.97]
    assert result.attrs["divergence_retry"] == "3 divergences at target_accept 0.9; re-sampled at 0.97"
    assert result.attrs["target_accept"] == 0.97
    assert result.attrs["divergences"] == int(result["sample_stats"]["diverging"].sum()) == 0


def test_without_retry_the_divergences_are_recorded_as_a_failure(mini, divergent_first_call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = bc.fit(mini, draws=100, tune=100, chains=2, seed=1, retry_divergent=False)
    assert divergent_first_call == [0.9]
    assert result.attrs["divergence_retry"] == "" and result.attrs["target_accept"] == 0.9
    assert result.attrs["divergences"] == 3 and not result.attrs["converged"]
    assert "3 divergent transitions" in result.attrs["convergence_failures"]
    assert any(issubclass(w.category, bc.ConvergenceWarning) for w in caught)
