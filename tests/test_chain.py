"""The conversion chain, the identified parametrisation, feedback loops and units (issue 11), checked
against code that does not share the model's: the Beta product identity (scipy), a quadrature oracle
over the stages, the centred parametrisation's log-density, and recovery of simulated truths."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import expit

import bayescpec as bc
from bayescpec.engine.model import build_model
from bayescpec.engine.prior import draw_prior
from bayescpec.engine.structure import stage_beta_parameters, structure_of

from conftest import ROOT

HEADER = "id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,reliability,package,source,note,unit"


# ---------------------------------------------------------------------------------------------
# The stage priors: their product has exactly the prior set's Beta prior of theta
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha, beta, shares", [(2.2, 1.8, [1] * 5), (1.0, 1.0, [1, 2, 3]), (3.0, 3.0, [0.5, 2])])
def test_the_product_of_stage_priors_is_the_theta_prior(alpha, beta, shares):
    params = stage_beta_parameters(alpha, beta, shares)
    rng = np.random.default_rng(1)
    product = np.prod([rng.beta(a, b, size=40_000) for a, b in params], axis=0)
    assert stats.kstest(product, stats.beta(alpha, beta).cdf).pvalue > 1e-3
    assert abs(product.mean() - alpha / (alpha + beta)) < 4 * product.std() / np.sqrt(product.size)
    assert sum(b for _, b in params) == pytest.approx(beta)


def test_the_prior_group_has_the_prior_sets_theta_prior_without_constraints():
    """base_theta (every severity at typical) of the shipped study's *embedded* chain (the enclave route's
    probability at 0) is Beta(mean * conc, (1 - mean) * conc); the route only adds to it."""
    from bayescpec.engine.quantities import derive

    study = bc.load_study()
    structure = structure_of(study)
    assert structure.has_route
    draws = draw_prior(structure, study.priors, 20_000, seed=3)
    embedded = derive(structure, {**draws, "route_probability": np.zeros_like(draws["route_probability"])})
    for c, channel in enumerate(study.framework.channel_ids):
        prior = study.priors.channels[channel]
        assert stats.kstest(embedded["base_theta"][:, c], stats.beta(prior.alpha, prior.beta).cdf).pvalue > 1e-3
        assert (draws["base_theta"][:, c] >= embedded["base_theta"][:, c] - 1e-12).all()
        assert draws["base_theta"][:, c].mean() > embedded["base_theta"][:, c].mean()


# ---------------------------------------------------------------------------------------------
# The identified parametrisation: the same posterior as the centred one
# ---------------------------------------------------------------------------------------------

def test_identified_and_centred_log_densities_differ_by_a_constant():
    """Sampling eta = logit(q0) - sum L s directly is a shear of (logit q0, L, s): unit Jacobian, so at
    corresponding points the two models' log-densities differ by the same constant (here 0)."""
    import pandas as pd

    study = bc.load_study()
    batch = bc.load_study(evidence=ROOT / "evidence" / "hypothetical_sez_batch.csv")
    study = study.with_evidence(pd.concat([study.evidence, batch.evidence], ignore_index=True))
    identified, centred = build_model(study), build_model(study, parametrisation="centred")
    logp_i, logp_c = identified.compile_logp(), centred.compile_logp()
    s = structure_of(study)
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(8):
        point = {k: v + rng.normal(0, 0.8, size=v.shape) for k, v in identified.initial_point().items()}
        severity_z = point["severity_z"]
        rho = expit(point["loop_loading_logodds__"]) * s.member_scale
        shared = np.zeros(len(s.constraints))
        np.add.at(shared, s.member_constraint, rho * point["loop_factor"][s.member_loop])
        rho2 = np.zeros(len(s.constraints))
        np.add.at(rho2, s.member_constraint, rho**2)
        severity = s.severity_mean + s.severity_sd * (shared + np.sqrt(1 - rho2) * severity_z)
        effect = np.zeros(len(s.cells))
        np.add.at(effect, s.link_cell, point["loading"] * severity[s.link_constraint])
        other = {k: v for k, v in point.items() if k != "stage_logit"}
        other["base_stage_probability_logodds__"] = point["stage_logit"] + effect
        differences.append(logp_i(point) - logp_c(other))
    assert np.ptp(differences) < 1e-8, differences


# ---------------------------------------------------------------------------------------------
# A two-stage chain against quadrature over (q1, q2)
# ---------------------------------------------------------------------------------------------

TWO_STAGE = textwrap.dedent('''
    [framework]
    name = "two stages"
    [[stages]]
    id = "start"
    label = "started"
    [[stages]]
    id = "finish"
    label = "finished"
    prior_share = 2.0
    [[channels]]
    id = "a"
    label = "A"
    [[tiers]]
    id = "mechanism"
    label = "mechanism"
    targets = "channel"
    rank = 1
    [[indicators]]
    id = "early"
    label = "an early clue"
    target = "a"
    stage = "start"
    tiers = ["mechanism"]
    kinds = ["signal"]
    [[indicators]]
    id = "late"
    label = "a late clue"
    target = "a"
    stage = "finish"
    tiers = ["mechanism"]
    kinds = ["signal", "count"]
    rate_converting = 0.7
    rate_not_converting = 0.2
''')
TWO_STAGE_PRIORS = textwrap.dedent('''
    name = "two"
    description = "test"
    [channels.a]
    mean = 0.5
    concentration = 3
    [loadings]
    sd = 0.5
    [diagnosticity.tiers.mechanism]
    sensitivity = { mean = 0.7, concentration = 15 }
    false_positive = { mean = 0.3, concentration = 15 }
    [measure_loading]
    mechanism = 0.6
    [counts]
    rate_concentration = 10000
    overdispersion = { mean = 0.001, concentration = 10000 }
''')
#: the count's rates are all but fixed (sd 0.004) and its intra-class correlation 0.001: the oracle uses
#: the beta-binomial at those values (tests/test_counts.py integrates over realistic count priors)
TWO_STAGE_ICC = 0.001
#: (stage, value, sensitivity, false_positive, reliability) of each signal, then the count at 'finish'
TWO_STAGE_SIGNALS = [("start", 1, 0.9, 0.3, 1.0), ("start", 1, 0.8, 0.4, 0.9), ("finish", 0, 0.8, 0.2, 1.0)]
TWO_STAGE_COUNT = (6, 20)


def _two_stage_oracle():
    """Nested Gauss-Kronrod quadrature with algebraic end-point weights: the stage priors' Beta densities
    are singular at q = 1 when b < 1, which the weights (1 - q)^(b - 1) integrate exactly."""
    from scipy.special import betaln

    (a1, b1), (a2, b2) = stage_beta_parameters(1.5, 1.5, [1.0, 2.0])
    norm1, norm2 = np.exp(betaln(a1, b1)), np.exp(betaln(a2, b2))

    def likelihood(q1, q2):
        value = 1.0
        reach = {"start": q1, "finish": q1 * q2}
        for stage, v, s, f, r in TWO_STAGE_SIGNALS:
            p = r * (f + reach[stage] * (s - f)) + (1 - r) / 2
            value *= p if v else 1 - p
        k, n = TWO_STAGE_COUNT
        p, phi = 0.2 + reach["finish"] * 0.5, 1 / TWO_STAGE_ICC - 1
        return value * stats.betabinom.pmf(k, n, p * phi, (1 - p) * phi)

    def integral(g, lower_q2=lambda q1: 0.0, q1_range=(0.0, 1.0)):
        def inner(q1):
            lo = lower_q2(q1)
            if lo >= 1:
                return 0.0
            # q2^(a2-1) (1-q2)^(b2-1): the (1 - q2) power as a weight, the q2 power in the integrand
            return integrate.quad(lambda q2: g(q1, q2) * likelihood(q1, q2) * q2 ** (a2 - 1), lo, 1,
                                  weight="alg", wvar=(0, b2 - 1), limit=200)[0] / norm2
        return integrate.quad(lambda q1: inner(q1) * q1 ** (a1 - 1), *q1_range, weight="alg",
                              wvar=(0, b1 - 1), limit=200)[0] / norm1

    norm = integral(lambda q1, q2: 1.0)
    mean_theta = integral(lambda q1, q2: q1 * q2) / norm
    mean_start = integral(lambda q1, q2: q1) / norm
    p_half = integral(lambda q1, q2: 1.0, lower_q2=lambda q1: 0.5 / q1, q1_range=(0.5, 1.0)) / norm
    return mean_theta, mean_start, p_half


@pytest.fixture(scope="module")
def two_stage_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    (folder / "framework.toml").write_text(TWO_STAGE)
    (folder / "two.toml").write_text(TWO_STAGE_PRIORS)
    rows = [f"s{i},2026-01-01,a,{'early' if st == 'start' else 'late'},mechanism,signal,{v},,,,{s},{f},{r},,test,x,"
            for i, (st, v, s, f, r) in enumerate(TWO_STAGE_SIGNALS)]
    rows.append(f"c1,2026-01-02,a,late,mechanism,count,,{TWO_STAGE_COUNT[0]},{TWO_STAGE_COUNT[1]},,,,1,,test,x,")
    (folder / "evidence.csv").write_text("\n".join([HEADER] + rows) + "\n")
    (folder / "sources.csv").write_text("key,reference,year,url\ntest,Test source,2026,\n")
    study = bc.load_study(framework=folder / "framework.toml", priors=folder / "two.toml",
                          evidence=folder / "evidence.csv")
    return bc.fit(study, draws=3000, tune=1000, chains=2, seed=4)


def test_two_stage_chain_matches_quadrature(two_stage_fit):
    import arviz as az

    mean_theta, mean_start, p_half = _two_stage_oracle()
    post = two_stage_fit["posterior"]
    theta = post["theta"].sel(channel="a")
    start = post["reach"].sel(channel="a", stage="start")
    for value, target in ((theta, mean_theta), (start, mean_start)):
        mcse = float(az.mcse(value, method="mean"))
        assert abs(float(value.mean()) - target) < 4 * mcse + 1e-3, (float(value.mean()), target, mcse)
    above = (theta > 0.5).astype(float)
    assert abs(float(above.mean()) - p_half) < 4 * max(float(az.mcse(above, method="mean")), 1e-3)
    # the stages table adds up: breaking first somewhere, or completing, is certain
    stages = bc.report_tables(two_stage_fit)["stages"]
    assert stages["break_first"].sum() + stages.attrs["completes"]["a"] == pytest.approx(1.0, abs=1e-9)
    assert list(stages["stage"]) == ["start", "finish"] and stages["rows"].tolist() == [2, 2]


# ---------------------------------------------------------------------------------------------
# Loadings are signed (P4 can go either way; the propositions' faithfulness: tests/test_propositions.py)
# ---------------------------------------------------------------------------------------------

def test_loadings_are_signed_in_every_shipped_prior_set():
    """P4 must be testable: a constraint may turn out not to interrupt (a loading below 0)."""
    from conftest import FRAMEWORK

    framework = bc.load_study().framework
    for name in ("baseline", "skeptical", "optimistic", "flat"):
        from bayescpec.inputs.spec import load_priors

        priors = load_priors(FRAMEWORK.parent / f"{name}.toml", framework)
        assert priors.loadings.signed and stats.norm.cdf(0, priors.loadings.mean, priors.loadings.sd) > 0.01, name


# ---------------------------------------------------------------------------------------------
# Slow: recovery of units, loops that carry evidence between constraints, a P4 the evidence moves
# ---------------------------------------------------------------------------------------------

def _shipped_with_rows(folder, rows):
    """The shipped framework and baseline priors with an evidence log of only ``rows``."""
    import shutil

    from conftest import BASELINE, FRAMEWORK, SOURCES

    (folder / "priors").mkdir(parents=True)
    (folder / "evidence").mkdir()
    shutil.copy(FRAMEWORK, folder / "priors" / "framework.toml")
    shutil.copy(BASELINE, folder / "priors" / "baseline.toml")
    shutil.copy(SOURCES, folder / "evidence" / "sources.csv")
    (folder / "evidence" / "log.csv").write_text("\n".join([HEADER] + rows) + "\n")
    return bc.load_study(framework=folder / "priors" / "framework.toml", evidence=folder / "evidence" / "log.csv")


@pytest.mark.slow
def test_units_are_recovered_and_pooled_within_their_channel(tmp_path):
    """Three units of one channel with true conversion 0.2, 0.5, 0.8 (a one-stage chain), 20 counts of
    40 each on the indicator's fixed rates (0.7 converting, 0.2 not): each unit's 99% interval covers its
    truth (99%, not 95%: pooling pulls the outer units towards the channel, and three 95% intervals on
    one data set all cover only 86% of the time), the units are ordered, and the channel lies between them."""
    from conftest import NEAR_FIXED_COUNTS, fit_passing_the_gate, write_mini_study

    rng = np.random.default_rng(12)
    truths = {"u-low": 0.2, "u-mid": 0.5, "u-high": 0.8}
    rows = []
    for unit, theta in truths.items():
        for i in range(20):
            k = rng.binomial(40, 0.2 + theta * 0.5)
            rows.append(f"{unit}-{i},2026-01-01,a,units,mechanism,count,,{k},40,,,,1,,test,sim,{unit}")
    paths = write_mini_study(tmp_path, rows, counts=NEAR_FIXED_COUNTS)  # the rates all but fixed, rho ~ 0.001
    text = paths["evidence"].read_text().splitlines()
    paths["evidence"].write_text("\n".join([text[0] + ",unit"] + text[1:]) + "\n")
    study = bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])
    result = fit_passing_the_gate(study, draws=1500, tune=1500, chains=2, seeds=(6, 7, 8))  # intervals to trust
    units = bc.report_tables(result, ci_kind="eti", ci_prob=0.99)["units"].set_index("unit")
    for unit, theta in truths.items():
        assert units.loc[unit, "99% ETI lower"] < theta < units.loc[unit, "99% ETI upper"], units.to_string()
    means = units.loc[list(truths), "posterior_mean"].to_numpy()
    assert means[0] < means[1] < means[2]
    channel = float(result["posterior"]["theta"].sel(channel="a").mean())
    assert means[0] < channel < means[2]


@pytest.mark.slow
def test_a_feedback_loop_carries_evidence_to_the_constraints_it_reinforces(tmp_path):
    """Thirty strong context clues that security binds: energy debt (in security's loop) becomes more
    binding than its prior; the macro-fiscal constraint (in no loop) does not move."""
    rows = [f"c{i},2026-01-01,security,security_incidents,context,signal,1,,,,0.95,0.05,1,,tang2026,sim,"
            for i in range(30)]
    study = _shipped_with_rows(tmp_path, rows)
    result = bc.fit(study, draws=1500, tune=1000, chains=2, seed=8)
    post, prior = result["posterior"]["severity"], result["prior"]["severity"]
    shift = (post.mean(("chain", "draw")) - prior.mean(("chain", "draw"))).to_series()
    assert shift["security"] > 1.0
    assert shift["energy_debt"] > 0.15, shift
    assert abs(shift["macro_fiscal"]) < 0.12, shift
    correlations = bc.report_tables(result)["constraint-correlations"]
    in_loop = correlations[correlations["loop"] != ""]
    assert (in_loop["prior_correlation"] > 0.05).all()
