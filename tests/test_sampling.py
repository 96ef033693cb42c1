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


@pytest.fixture
def tunes(monkeypatch):
    """The warm-up of every sampling, and a gate whose first verdict the test sets (``verdicts``)."""
    from bayescpec.engine import sampling
    from bayescpec.engine.compiled import CompiledModel

    real_sample, real_check, seen, verdicts = CompiledModel.sample, sampling.check_convergence, [], []

    def sample(self, *args, **kwargs):
        seen.append(kwargs["tune"])
        return real_sample(self, *args, **kwargs)

    def check(result):
        out = real_check(result)
        if verdicts:
            passed = verdicts.pop(0)
            out = {**out, "converged": passed, "convergence_failures": "" if passed else "forced failure"}
        return out

    monkeypatch.setattr(CompiledModel, "sample", sample)
    monkeypatch.setattr(sampling, "check_convergence", check)
    return seen, verdicts


def test_a_gate_failure_after_the_short_warm_up_resamples_with_the_long_one(mini, tunes):
    from bayescpec.engine.sampling import DEFAULT_TUNE, LONG_TUNE

    seen, verdicts = tunes
    verdicts += [False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        result = bc.fit(mini, draws=100, chains=2, seed=1)
    assert seen == [DEFAULT_TUNE, LONG_TUNE] and DEFAULT_TUNE < LONG_TUNE and not verdicts
    assert result.attrs["tune"] == LONG_TUNE and result.attrs["converged"]
    assert result.attrs["tune_retry"] == (f"the convergence checks failed after a warm-up of {DEFAULT_TUNE} steps "
                                          f"(forced failure); re-sampled with {LONG_TUNE}")


def test_a_passing_short_warm_up_or_a_given_tune_is_not_resampled(mini, tunes):
    from bayescpec.engine.sampling import DEFAULT_TUNE

    seen, verdicts = tunes
    verdicts.append(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        short = bc.fit(mini, draws=100, chains=2, seed=1)
        verdicts.append(False)
        given = bc.fit(mini, draws=100, tune=80, chains=2, seed=1)
    assert seen == [DEFAULT_TUNE, 80] and not verdicts
    assert (short.attrs["tune"], short.attrs["tune_retry"]) == (DEFAULT_TUNE, "")
    assert (given.attrs["tune"], given.attrs["tune_retry"], given.attrs["converged"]) == (80, "", False)
