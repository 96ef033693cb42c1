"""The engine (issues 9 and 10): the complete convergence gate on draws with known defects, the API
guards of fit, compiled models that serve every fit of a structure, and the two NUTS backends."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayescpec as bc
from bayescpec.engine.diagnostics import CONVERGENCE_RULES, check_convergence
from bayescpec.engine.sampling import ModelMismatchError

from conftest import ROOT, fit_passing_the_gate, write_mini_study


# ---------------------------------------------------------------------------------------------
# The convergence gate on synthetic draws: each defect is caught, and named
# ---------------------------------------------------------------------------------------------

def _tree(posterior: dict, stats: dict | None = None, chains: int = 4, draws: int = 1000) -> xr.DataTree:
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    post = xr.Dataset({k: (("chain", "draw", *([f"{k}_dim"] if v.ndim == 3 else [])), v) for k, v in posterior.items()},
                      coords=coords)
    rng = np.random.default_rng(0)
    base = {"diverging": np.zeros((chains, draws), bool), "reached_max_treedepth": np.zeros((chains, draws), bool),
            "energy": rng.normal(size=(chains, draws))}
    base.update(stats or {})
    return xr.DataTree.from_dict({"posterior": post,
                                  "sample_stats": xr.Dataset({k: (("chain", "draw"), v) for k, v in base.items()},
                                                             coords=coords)})


def _good(rng, shape=(4, 1000, 3)):
    return rng.normal(size=shape)


def test_the_gate_passes_independent_draws():
    rng = np.random.default_rng(1)
    checks = check_convergence(_tree({"stage_logit": _good(rng), "loading": _good(rng)}))
    assert checks["converged"], checks["convergence_failures"]
    assert checks["min_ess_bulk"] > 3000 and checks["min_ess_tail"] > 2000 and checks["max_rhat"] < 1.01


@pytest.mark.parametrize("defect, fragment", [
    ("stuck-chain", "max R-hat"),
    ("autocorrelated", "min bulk ESS"),
    ("heavy-tailed-sticky", "min tail ESS"),
    ("divergent", "3 divergent transitions"),
    ("treedepth", "at the maximum tree depth"),
    ("bfmi", "E-BFMI"),
])
def test_the_gate_catches_each_defect_in_a_sampled_parameter(defect, fragment):
    rng = np.random.default_rng(2)
    loading = _good(rng)
    stats = {}
    if defect == "stuck-chain":
        loading[0, :, 1] += 3.0  # one chain elsewhere
    elif defect == "autocorrelated":
        walk = np.cumsum(rng.normal(scale=0.05, size=(4, 1000)), axis=1)
        loading[:, :, 2] = walk
    elif defect == "heavy-tailed-sticky":
        # the bulk mixes, the tails do not: a few long excursions, each held for many draws
        values = rng.normal(size=(4, 1000))
        for c in range(4):
            start = rng.integers(0, 900)
            values[c, start:start + 60] += 6.0 * (1 if c % 2 else -1)
        loading[:, :, 0] = values
    elif defect == "divergent":
        diverging = np.zeros((4, 1000), bool)
        diverging[0, :3] = True
        stats["diverging"] = diverging
    elif defect == "treedepth":
        stats["reached_max_treedepth"] = rng.random((4, 1000)) < 0.05
    elif defect == "bfmi":
        stats["energy"] = np.cumsum(rng.normal(scale=0.05, size=(4, 1000)), axis=1)  # energy barely moves
    checks = check_convergence(_tree({"stage_logit": _good(rng), "loading": loading}, stats))
    assert not checks["converged"] and fragment in checks["convergence_failures"], checks["convergence_failures"]
    if defect in ("stuck-chain", "autocorrelated", "heavy-tailed-sticky"):
        assert "loading[" in checks["convergence_failures"]  # the gate names the parameter, not only a quantity


def test_the_gate_ignores_constant_elements():
    rng = np.random.default_rng(3)
    stage = _good(rng)
    stage[:, :, 0] = 1.0  # e.g. a stage outside a chain: passed with probability 1 in every draw
    assert check_convergence(_tree({"stage_logit": stage}))["converged"]


def test_the_rules_are_the_published_ones():
    assert CONVERGENCE_RULES == {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0,
                                 "max_treedepth_share": 0.01, "min_bfmi": 0.3}


# ---------------------------------------------------------------------------------------------
# API guards
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mini")
    rows = [f"s{i},2026-01-01,a,clue,mechanism,signal,{i % 2},,,,,,1,,test,x" for i in range(6)]
    paths = write_mini_study(folder, rows)
    (folder / "other.toml").write_text(paths["priors"].read_text().replace('name = "mini"', 'name = "other"')
                                       .replace("mean = 0.5", "mean = 0.3"))
    return paths


def _load(paths, priors=None):
    return bc.load_study(framework=paths["framework"], priors=priors or paths["priors"], evidence=paths["evidence"])


def test_fit_refuses_a_model_built_for_another_prior_set(mini):
    study, other = _load(mini), _load(mini, mini["priors"].parent / "other.toml")
    with pytest.raises(ModelMismatchError, match="built for prior set 'other', this study uses 'mini'"):
        bc.fit(study, model=bc.build_model(other), draws=20, tune=20, chains=2)


def test_fit_refuses_a_model_built_for_another_framework(mini):
    shipped = bc.load_study()
    with pytest.raises(ModelMismatchError, match="another framework"):
        bc.fit(_load(mini), model=bc.build_model(shipped), draws=20, tune=20, chains=2)
    with pytest.raises(ModelMismatchError, match="not a model built by bayescpec.build_model"):
        import pymc as pm

        with pm.Model() as foreign:
            pm.Normal("x")
        bc.fit(_load(mini), model=foreign, draws=20, tune=20, chains=2)
    assert issubclass(ModelMismatchError, bc.BayescpecError) and issubclass(ModelMismatchError, ValueError)


def test_with_evidence_recomputes_the_evidence_hash():
    study = bc.load_study()
    batch = bc.load_study(evidence=ROOT / "evidence" / "hypothetical_sez_batch.csv")
    combined = study.with_evidence(pd.concat([study.evidence, batch.evidence], ignore_index=True))
    assert combined.hashes["evidence"] != study.hashes["evidence"]
    assert combined.hashes["framework"] == study.hashes["framework"]
    assert "rows in memory" in combined.files["evidence"]
    same = study.with_evidence(study.evidence.copy())
    assert same.hashes["evidence"] == study.with_evidence(study.evidence.copy()).hashes["evidence"]
    with pytest.raises(bc.ResultMismatchError):
        fitted = bc.fit(combined, draws=30, tune=30, chains=2, seed=1)
        bc.check_inputs(fitted, study)


# ---------------------------------------------------------------------------------------------
# Compile once, fit many
# ---------------------------------------------------------------------------------------------

def test_one_compiled_model_serves_other_evidence_and_other_prior_sets(mini):
    """A model compiled for the structure takes another prior set's hyper-parameters as data: its fit
    equals a fit of a model built for that prior set (the log-densities agree at random points)."""
    from bayescpec.engine.compiled import CompiledModel
    from bayescpec.engine.model import build_model

    study, other = _load(mini), _load(mini, mini["priors"].parent / "other.toml")
    compiled = bc.compile_model(study, sampler="pymc")
    assert isinstance(compiled, CompiledModel)
    with compiled.model:
        import pymc as pm

        pm.set_data(compiled._arrays(other))
    reused, fresh = compiled.model.compile_logp(), build_model(other).compile_logp()
    rng = np.random.default_rng(4)
    for _ in range(5):
        point = {k: v + rng.normal(size=v.shape) for k, v in compiled.model.initial_point().items()}
        assert reused(point) == pytest.approx(fresh(point), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        first = bc.fit(study, model=compiled, draws=50, tune=50, chains=2, seed=1)
        second = bc.fit(other, model=compiled, draws=50, tune=50, chains=2, seed=1)
    assert compiled.fits >= 2 and second.attrs["prior_set"] == "other" and first.attrs["prior_set"] == "mini"
    assert float(second["prior"]["theta"].mean()) < float(first["prior"]["theta"].mean())  # 0.3 against 0.5


@pytest.mark.slow
def test_the_two_backends_sample_the_same_posterior():
    """nutpie's and PyMC's NUTS on the shipped study: channel means and P(converting) agree within 4 MCSE
    of the difference."""
    study = bc.load_study()
    # each a fit that passed the gate (its MCSE to mean what it says), whichever seed that took here
    results = {s: fit_passing_the_gate(study, sampler=s, draws=1500, seeds=(11, 12, 13)) for s in ("pymc", "nutpie")}
    tables = {s: bc.channel_table(r) for s, r in results.items()}
    for column, error in (("posterior_mean", "posterior_mean_mcse"), ("p_converting", "p_converting_mcse")):
        diff = np.abs(tables["pymc"][column] - tables["nutpie"][column])
        tolerance = 4 * np.hypot(tables["pymc"][error], tables["nutpie"][error])
        assert (diff <= tolerance).all(), (column, diff.to_numpy(), tolerance.to_numpy())
    assert results["nutpie"].attrs["sampler"] == "nutpie" and results["pymc"].attrs["sampler"] == "pymc"


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_a_study_with_new_evidence_shares_its_bases_model_graph_and_gets_its_own_data(sampler):
    """A study made by with_evidence reuses the model (and prior group) of the study it came from -- its
    graph is a function of the framework, prior set and units only -- and is sampled with its own evidence:
    exactly the draws of the same study loaded afresh, whose model is built for it alone."""
    import bayescpec.engine.compiled as compiled
    from bayescpec.engine.compiled import built_model

    options = dict(draws=60, tune=60, chains=2, seed=5, sampler=sampler)
    base = bc.load_study()
    fewer = base.with_evidence(base.evidence.iloc[:-4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bc.fit(base, **options)
        shared = bc.fit(fewer, **options)
        assert built_model(fewer) is built_model(base)
        compiled._BUILT.clear()
        compiled._TWINS.clear()
        alone = bc.load_study()
        alone = alone.with_evidence(alone.evidence.iloc[:-4])
        own = bc.fit(alone, **options)
    assert built_model(alone) is not built_model(base)
    for name in ("stage_logit", "theta", "severity"):
        np.testing.assert_array_equal(shared["posterior"][name].values, own["posterior"][name].values)
    np.testing.assert_array_equal(shared["prior"]["theta"].values, own["prior"]["theta"].values)
    # the evidence differs from the base's: so do the draws (the base's data were not used)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = bc.fit(base, **options)
    assert not np.array_equal(full["posterior"]["theta"].values, shared["posterior"]["theta"].values)


def test_the_prior_made_while_the_chains_run_is_the_prior_group_and_a_failure_there_stops_the_sampler():
    from bayescpec.engine.assemble import prior_group
    from bayescpec.engine.compiled import compiled_model
    from bayescpec.engine.structure import structure_of

    study = bc.load_study()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = bc.fit(study, draws=50, tune=50, chains=2, seed=12, sampler="nutpie")
    expected = prior_group(structure_of(study), study, 100, 13)
    xr.testing.assert_identical(fitted["prior"].to_dataset()[list(expected.data_vars)], expected)
    calls = []

    def failing():
        calls.append(1)
        raise ValueError("made up")

    engine = compiled_model(study, "nutpie")
    with pytest.raises(ValueError, match="made up"):
        engine.sample(study, draws=50, tune=50, chains=2, seed=1, target_accept=0.8, meanwhile=failing)
    assert calls == [1]
    again = engine.sample(study, draws=20, tune=20, chains=2, seed=1, target_accept=0.8)  # the engine still samples
    assert again["posterior"].sizes["draw"] == 20


def test_the_posterior_alone_is_the_fits_posterior_and_gate():
    """sample_posterior (a calibration's fits) skips the prior, ledgers and counterfactual quantities, not
    the draws: the same seed gives the fit's posterior values and gate figures exactly."""
    from bayescpec.engine.diagnostics import check_convergence
    from bayescpec.engine.sampling import sample_posterior

    study = bc.load_study()
    settings = dict(draws=60, tune=60, chains=2, seed=31, sampler="nutpie")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = bc.fit(study, **settings)
    alone = sample_posterior(study, **settings)
    assert set(alone.children) == {"posterior", "sample_stats"}
    posterior, full = alone["posterior"].to_dataset(), fitted["posterior"].to_dataset()
    assert set(posterior.data_vars) < set(full.data_vars)  # the counterfactual quantities left out
    xr.testing.assert_identical(posterior, full[list(posterior.data_vars)])
    gate = check_convergence(fitted)
    assert {k: alone.attrs[k] for k in gate} == {k: fitted.attrs[k] for k in gate}
    assert alone.attrs["sampler"] == fitted.attrs["sampler"] == "nutpie"
