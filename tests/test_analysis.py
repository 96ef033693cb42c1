"""Evidence analytics (issue 12), fast checks: each against something that does not share its code --
closed forms, the PyMC model's own log density, an independent loop over the links -- plus the
structure of every table.

The checks against brute-force refits are in ``test_analysis_refits.py`` (slow).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from scipy.special import betaln, expit

import bayescpec as bc
from bayescpec.engine.quantities import derive
from bayescpec.analysis.fragility import weaken
from bayescpec.analysis.value import designs, preposterior
from bayescpec.engine.prior import draw_prior
from bayescpec.engine.scenario import derive_scenario, scenario_severity
from bayescpec.engine.structure import structure_of
from bayescpec.errors import InputError, SpecError

from analysis_fixtures import mini_study, quiet_fit, theta
from conftest import EVIDENCE, FRAMEWORK, NEAR_FIXED_COUNTS, replace_in


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    study = mini_study(tmp_path_factory.mktemp("mini"))
    return study, quiet_fit(study)


@pytest.fixture(scope="module")
def shipped_study():
    return bc.load_study(framework=FRAMEWORK, evidence=EVIDENCE)


# ------------------------------------------------------------------ robustness: the log prior density
def test_log_prior_density_is_the_pymc_models_up_to_nothing(shipped_study):
    """numpy/scipy log prior of draws == the PyMC model's prior terms (no Jacobians) at random points."""
    structure = structure_of(shipped_study)
    params = draw_prior(structure, shipped_study.priors, 12, seed=5)
    mine = bc.log_prior_density(structure, shipped_study.priors, params)
    model = bc.build_model(shipped_study)
    free = model.free_RVs
    assert {rv.name for rv in free} >= {"stage_logit", "loading", "severity_z", "loop_factor", "loop_loading",
                                        "false_positive_tier", "sensitivity_gap_tier",
                                        "rate_not_converting", "rate_gap", "count_icc"}  # the count indicators
    logp = model.compile_fn(model.logp(vars=free + [model["stage_prior"]], jacobian=False, sum=True),
                            inputs=model.value_vars, on_unused_input="ignore")
    theirs = []
    for i in range(len(mine)):
        point = {}
        for rv in free:
            x = params[rv.name][i]
            transform = model.rvs_to_transforms.get(rv)
            point[model.rvs_to_values[rv].name] = x if transform is None else \
                transform.forward(x, *rv.owner.inputs).eval()
        theirs.append(float(logp(point)))
    assert np.ptp(mine) > 5  # the draws differ: a constant offset would be noticed
    np.testing.assert_allclose(np.array(theirs), mine, atol=1e-5)


# ------------------------------------------------------------------ next: the preposterior on a closed form
def test_preposterior_of_a_signal_matches_the_beta_mixture_closed_form():
    a, b, s, f, tau = 2.0, 3.0, 0.95, 0.05, 0.5
    rng = np.random.default_rng(3)
    th = rng.beta(a, b, size=(200_000, 1))
    p = f + (s - f) * th[:, 0]
    log_lik = np.log(np.stack([p, 1 - p], axis=1))
    found = preposterior(log_lik, np.exp(log_lik).mean(axis=0), th, tau)
    m = [np.exp(betaln(a + k, b) - betaln(a, b)) for k in range(3)]          # E[theta^k]
    tail = [stats.beta.sf(tau, a + k, b) * m[k] for k in range(2)]             # E[theta^k 1(theta > tau)]
    p_pos = f + (s - f) * m[1]
    outcomes = {"pos": (f, s - f, p_pos), "neg": (1 - f, -(s - f), 1 - p_pos)}
    exact_sd, exact_p = 0.0, []
    for c0, c1, prob in outcomes.values():
        mean = (c0 * m[1] + c1 * m[2]) / prob
        second = (c0 * m[2] + c1 * np.exp(betaln(a + 3, b) - betaln(a, b))) / prob
        exact_sd += prob * np.sqrt(second - mean**2)
        exact_p.append((c0 * tail[0] + c1 * tail[1]) / prob)
    assert found["p_outcome"][0] == pytest.approx(p_pos, abs=3e-3)
    assert found["expected_sd"][0] == pytest.approx(exact_sd, abs=2e-3)
    np.testing.assert_allclose(found["posterior_p"][:, 0], exact_p, atol=5e-3)
    assert found["sd_now"][0] - exact_sd > 0.01  # the clue is informative: not a vacuous comparison
    # the IPCC word of P(theta > 0.5) today (0.31: unlikely) and after each outcome
    today = bc.ipcc_likelihood(stats.beta.sf(tau, a, b))
    changes = sum(prob for (_, _, prob), p_y in zip(outcomes.values(), exact_p) if bc.ipcc_likelihood(p_y) != today)
    assert changes > 0.3
    assert found["p_word_change"][0] == pytest.approx(changes, abs=3e-3)


def test_designs_cover_the_catalogue_with_every_tier_kind_and_test(shipped_study):
    fw = shipped_study.framework
    expected = 0
    for ind in fw.indicators:
        owners = len(fw.channel_ids) if ind.target == "any_channel" else 1
        expected += owners * (len(ind.tiers) * len(ind.kinds) + (len(fw.test_ids) if "signal" in ind.kinds else 0))
    found = designs(shipped_study)
    assert len(found) == expected
    assert len({d.name for d in found}) == len(found)
    assert {d.target for d in found if d.indicator == "policy_commitment"} == set(fw.channel_ids)
    assert all(d.kind == "signal" for d in found if d.test)
    with pytest.raises(InputError, match="did you mean 'sez_zone_exports'"):
        designs(shipped_study, indicators=["sez_zone_export"])


# ------------------------------------------------------------------ whatif: an independent loop over the links
def test_scenario_quantities_match_an_independent_loop_over_the_links(shipped_study):
    s = structure_of(shipped_study)
    params = draw_prior(s, shipped_study.priors, 40, seed=11)
    # the enclave route shut, so theta is the plain product of the stages (the route's arithmetic is checked
    # against a simulation in test_propositions.py); base_theta re-derived for the comparison below
    params = {**params, "route_probability": np.zeros_like(params["route_probability"])}
    params.update(derive(s, params))
    old = params["severity"]
    new = scenario_severity(s, old, set={"energy_debt": 0.0}, shift={"security": -1.0}, remove=["water_stress"])
    out = derive_scenario(s, params, new)
    k = {name: i for i, name in enumerate(s.constraints)}
    assert np.all(new[:, k["energy_debt"]] == 0) and np.all(new[:, k["water_stress"]] == 0)
    np.testing.assert_allclose(new[:, k["security"]], old[:, k["security"]] - 1.0)
    theta_loop = np.ones((40, len(s.channels)))
    for draw in range(40):
        for cell, (channel, stage) in enumerate(s.cells):
            eta = params["stage_logit"][draw, cell]
            for link, (c, constraint, st) in enumerate(s.links):
                if (c, st) == (channel, stage):
                    eta += params["loading"][draw, link] * (old[draw, k[constraint]] - new[draw, k[constraint]])
            theta_loop[draw, s.channels.index(channel)] *= expit(eta)
    np.testing.assert_allclose(out["theta"], theta_loop, rtol=1e-10)
    np.testing.assert_allclose(out["severity"], new, atol=1e-10)       # the quantities report the scenario's severities
    np.testing.assert_allclose(out["base_theta"], params["base_theta"], rtol=1e-10)  # constraint-free part kept
    assert np.abs(out["theta"] - params["theta"]).max() > 0.01          # the scenario moved something
    same = derive_scenario(s, params, old)
    np.testing.assert_allclose(same["theta"], params["theta"], rtol=1e-10)


def test_scenarios_in_the_framework_are_validated_with_located_errors(tmp_path):
    path = tmp_path / "framework.toml"
    path.write_text(FRAMEWORK.read_text() + '\n[[scenarios]]\nid = "bad"\nlabel = "Bad"\n[scenarios.settings]\n'
                    'shift = { energy_dbt = -1 }\nremove = ["security"]\nset = { security = 0 }\n')
    with pytest.raises(SpecError) as caught:
        bc.load_study(framework=path, priors=FRAMEWORK.parent / "baseline.toml", evidence=EVIDENCE)
    text = str(caught.value)
    assert "unknown constraint 'energy_dbt' (did you mean 'energy_debt'?)" in text
    assert "removed and also set or shifted" in text
    assert f"{path}, line" in text and "scenarios." in text
    replace_in(path, "shift = { energy_dbt = -1 }\nremove = [\"security\"]\nset = { security = 0 }\n", "\n")
    with pytest.raises(SpecError, match="must set, shift or remove at least one constraint"):
        bc.load_study(framework=path, priors=FRAMEWORK.parent / "baseline.toml", evidence=EVIDENCE)


# ------------------------------------------------------------------ robustness: diagnosticity overstated
def test_weaken_divides_both_log_likelihood_ratios_by_the_factor():
    s, f = np.array([0.9, 0.7, 0.35]), np.array([0.7, 0.3, 0.03])
    for factor in (1.0, 1.5, 4.0):
        s2, f2 = weaken(s, f, factor)
        assert np.all((0 < f2) & (f2 < s2) & (s2 < 1))
        np.testing.assert_allclose(np.log(s2 / f2), np.log(s / f) / factor)
        np.testing.assert_allclose(np.log((1 - s2) / (1 - f2)), np.log((1 - s) / (1 - f)) / factor)


# ------------------------------------------------------------------ explain on the small study
def test_explain_ledger_shifts_directions_and_waterfall(mini):
    study, result = mini
    found = bc.explain(result, study)
    assert set(found.packages["unit"]) == {"pk", "c1", "m1"}
    assert set(found.rows["unit"]) == {"p1", "p2", "c1", "m1"}
    for frame in (found.packages, found.rows):
        np.testing.assert_allclose(frame["shift_p"], frame["p_with"] - frame["p_without"])
        np.testing.assert_allclose(frame["shift_mean"], frame["mean_with"] - frame["mean_without"])
        assert list(frame["shift_p"].abs()) == sorted(frame["shift_p"].abs(), reverse=True)
        # a shift within floating-point noise of 0 (one of two identical rows left out) has no direction
        assert ((frame["direction"] == "for") == (frame["shift_p"] > 1e-12)).all()
        assert set(frame["method"]) == {"psis"} and (frame["khat"] < 0.7).all()
        assert "provenance" in frame.attrs and frame.attrs["provenance"]["prior_set"] == "mini"
    pk = found.packages.set_index("unit").loc["pk"]
    assert pk["rows"] == "p1, p2" and pk["direction"] == "for"
    # one of the package's two identical rows left out: its mate counts fully again, so nothing moves
    row = found.rows.set_index("unit").loc["p1"]
    assert abs(row["shift_mean"]) < 1e-9 and abs(row["shift_p"]) < 1e-9 and pk["shift_mean"] > 0.01
    steps = found.waterfall["a"]
    assert steps["kind"].tolist()[0] == "total" and steps["kind"].tolist()[-1] == "total"
    assert steps["p"].iloc[0] + steps["p"].iloc[1:-1].sum() == pytest.approx(steps["p"].iloc[-1])
    fig = bc.plot_waterfall(found, "a")
    assert "prior set mini" in fig._bayescpec_caption
    with pytest.raises(InputError, match="unknown channel"):
        bc.plot_waterfall(found, "b")


def test_weight_of_evidence_at_the_prior_matches_the_closed_form(mini):
    """The package pk (two rows, each weight 1/2, explicit s = 0.9, f = 0.1) has L = f + theta (s - f); the
    prior of theta is Beta(1, 1): WoE = 10 log10 (f + (s - f) E[theta | H]) / (f + (s - f) E[theta | not H])."""
    study, result = mini
    pk = bc.explain(result, study).packages.set_index("unit").loc["pk"]
    prior = result["prior"]["theta"].values.ravel()
    h = prior > 0.5
    exact = 10 * np.log10((0.1 + 0.8 * 0.75) / (0.1 + 0.8 * 0.25))              # E[theta | H] = 3/4 under Beta(1, 1)
    sampled = 10 * np.log10((0.1 + 0.8 * prior[h].mean()) / (0.1 + 0.8 * prior[~h].mean()))
    assert pk["woe_prior_db"] == pytest.approx(sampled, abs=1e-9)
    assert pk["woe_prior_db"] == pytest.approx(exact, abs=0.25)                  # Monte Carlo error of 2 000 draws
    assert pk["woe_posterior_db"] > 0


# ------------------------------------------------------------------ robustness on the small study
def test_robustness_reviewer_table_and_prior_sets(mini, tmp_path):
    study, result = mini
    found = bc.robustness(result, study, max_clues=6)
    row = found.reviewer.iloc[0]
    assert row["channel"] == "a" and row["verdict"] in ("robust", "sensitive to prior", "sensitive to likelihood",
                                                       "sensitive to prior and likelihood")
    assert row["p_converting"] == pytest.approx((theta(result)[:, 0] > 0.5).mean())
    assert set(found.tipping["tier"]) == {"mechanism"}
    assert {"theta[a]", "base_theta[a]", "nqpf"} <= set(found.power_scaling["quantity"])
    # the same result under another name: the prior-set comparison says nothing changes
    same = bc.robustness(result, study, others={"again": result}, max_clues=2)
    assert not same.prior_sets["changes"].any() and set(same.prior_sets["prior_set"]) == {"mini", "again"}
    other = quiet_fit(mini_study(tmp_path / "other", rows=[
        "c1,2026-01-03,a,units,mechanism,count,,2,10,,,,1,,test,two of ten"]), draws=200, tune=200)
    with pytest.raises(InputError, match="fitted on other evidence"):
        bc.robustness(result, study, others={"other": other})


def test_a_strong_likelihood_is_robust_and_a_weak_one_is_prior_sensitive(tmp_path):
    # a strong likelihood: 200 of 400 units with the indicator's rates all but fixed and almost no
    # overdispersion (with the shipped count priors one count row is bounded evidence: tests/test_counts.py)
    strong = mini_study(tmp_path / "strong", rows=["c1,2026-01-03,a,units,mechanism,count,,200,400,,,,1,,test,x"],
                        concentration=2.0, counts=NEAR_FIXED_COUNTS)
    weak = mini_study(tmp_path / "weak", rows=["c1,2026-01-03,a,units,mechanism,count,,1,2,,,,0.2,,test,x"],
                      concentration=20.0)
    verdicts = {}
    for name, study in (("strong", strong), ("weak", weak)):
        verdicts[name] = bc.robustness(quiet_fit(study, draws=500, tune=300), study, max_clues=3).reviewer.iloc[0]
    assert verdicts["strong"]["prior_sensitivity"] < 0.05 and verdicts["strong"]["likelihood_sensitivity"] > 0.05
    assert verdicts["strong"]["verdict"] == "robust"
    assert verdicts["weak"]["prior_sensitivity"] > 0.05 and "prior" in verdicts["weak"]["verdict"]


# ------------------------------------------------------------------ every analysis table in every format
def test_every_analysis_table_renders_in_every_format_and_compiles_as_latex(mini, tmp_path):
    import shutil
    import subprocess

    study, result = mini
    found = bc.analytics(result, study, top=2)
    assert [o.key for o in found] == ["explain", "next", "robustness"]  # the mini framework has no scenarios
    paths = bc.write_outputs(found, out=tmp_path / "out", figures=False)
    stems = {p.stem for p in paths}
    assert stems == {"explain-packages", "explain-rows", "next", "robustness", "power-scaling", "tipping-points"}
    assert len(paths) == 4 * len(stems)
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "mini" in text and "bayescpec" in text  # the provenance footnote (prior set, version)
        if path.suffix == ".tex":
            assert "?" not in text.replace("?}", "")  # no character lost in escaping
    if shutil.which("pdflatex"):
        for path in paths:
            if path.suffix == ".tex":
                run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", path.name],
                                     cwd=path.parent, capture_output=True, text=True, timeout=120)
                assert run.returncode == 0, run.stdout[-2000:]


def test_a_scenario_word_near_a_boundary_is_marked_and_mcse_keeps_its_digits():
    """whatif's word column marks ≈ where the scenario's P is within 2 MCSE of an IPCC boundary; CSV
    rounding keeps two more decimals for MCSE columns than for the numbers they qualify."""
    import pandas as pd

    from bayescpec.analysis.layouts import scenario_words
    from bayescpec.outputs.layout import round_frame

    table = pd.DataFrame({"likelihood_baseline": ["unlikely", "unlikely", "likely"],
                          "likelihood_scenario": ["about as likely as not", "about as likely as not", "likely"],
                          "likelihood_near_boundary": [True, False, False]})
    assert scenario_words(table) == ["unlikely → about as likely as not ≈", "unlikely → about as likely as not",
                                     "likely"]
    rounded = round_frame(pd.DataFrame({"p": [0.33551], "mcse_p": [0.00412]}), 2)
    assert rounded["p"].item() == 0.34 and rounded["mcse_p"].item() == 0.0041


# ------------------------------------------------------------------ issue 20: next's Monte Carlo error, psense
def test_next_is_deterministic_with_a_monte_carlo_error_and_ties(mini):
    """A measure's outcomes come from a quadrature, not a simulation: two runs give the same table; every
    figure carries its batch-means MCSE, and ranks within 2 MCSE of the difference are shared."""
    from bayescpec.analysis.layouts import rank_labels

    study, result = mini
    first = bc.value_of_information(result, study, count_n=3)
    second = bc.value_of_information(result, study, count_n=3)
    import pandas.testing

    pandas.testing.assert_frame_equal(first, second)
    assert "measure" in set(first["kind"])
    for column, most in (("mcse_sd_reduction", 0.01), ("mcse_abs_dp", 0.05), ("mcse_word_change", 0.2)):
        assert (first[column] >= 0).all() and (first[column] < most).all(), first[column]
    assert (first.loc[first["kind"] != "signal", "mcse_sd_reduction"] > 0).all()
    assert first["position"].tolist() == list(range(1, len(first) + 1))   # one channel
    assert (first["rank"] <= first["position"]).all() and first["rank"].is_monotonic_increasing
    labels = rank_labels(first)
    assert all(label.endswith("=") == tied for label, tied in zip(labels, first["tied"]))
    assert first.attrs["batches"] == 10


def test_power_scaling_of_equally_weighted_draws_is_arviz_psense(mini):
    """robustness's power-scaling sensitivity, generalised to weighted draws, is ArviZ's psense exactly when
    the draws are a fit's own (equal weights)."""
    from arviz_stats import psense

    from bayescpec.analysis.base import require_pointwise
    from bayescpec.analysis.draws import analysis_draws, power_scaling_sensitivity
    from bayescpec.analysis.logprior import PRIOR_PARAMETERS
    from bayescpec.engine.sampling import posterior_draws

    study, result = mini
    current = analysis_draws(result, study, "test")
    log_prior = bc.log_prior_density(structure_of(study), study.priors, posterior_draws(result, PRIOR_PARAMETERS))
    ll = require_pointwise(result, "test")
    chains, draws = result["posterior"].sizes["chain"], result["posterior"].sizes["draw"]
    posterior = result["posterior"].to_dataset()[["theta", "base_theta"]]
    tree = xr.DataTree.from_dict({
        "posterior": posterior, "log_likelihood": ll.to_dataset(name="rows"),
        "log_prior": xr.Dataset({"prior": (("chain", "draw"), log_prior.reshape(chains, draws))},
                                coords={"chain": posterior["chain"], "draw": posterior["draw"]})})
    for group, component in (("prior", log_prior), ("likelihood", ll.values.reshape(chains * draws, -1).sum(axis=1))):
        theirs = psense(tree, var_names=["theta", "base_theta"], group=group)
        for name in ("theta", "base_theta"):
            mine = power_scaling_sensitivity(current, component, theta(result) if name == "theta" else
                                             result["posterior"][name].values.reshape(chains * draws, -1))
            np.testing.assert_allclose(mine, theirs[name].values, rtol=1e-9)
