"""Model structure: coords and dims, finite log-probability and gradient at the initial point, the
graph's group sufficient statistics agree with the row-level numpy likelihood, and new evidence
swaps in without rebuilding the graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescpec as bc
from bayescpec.engine.aggregate import aggregate_evidence, row_weights
from bayescpec.engine.likelihood import pointwise_log_likelihood
from bayescpec.engine.model import set_evidence

from conftest import ROOT

#: the model's sampled variables the likelihood depends on (deterministic sensitivities included)
FREE_NAMES = ["stage_logit", "loading", "severity_z", "loop_factor", "loop_loading", "route_probability",
              "sensitivity_tier", "false_positive_tier", "sensitivity_test", "false_positive_test", "rate_converting",
              "rate_not_converting", "count_icc"]


@pytest.fixture(scope="module")
def combined_study():
    """Shipped evidence plus the hypothetical batch: every kind (signal, count, measure) present."""
    study = bc.load_study()
    batch = bc.load_study(evidence=ROOT / "evidence" / "hypothetical_sez_batch.csv")
    return study.with_evidence(pd.concat([study.evidence, batch.evidence], ignore_index=True))


def test_coords_and_dims(combined_study):
    model = bc.build_model(combined_study)
    fw = combined_study.framework
    assert list(model.coords["channel"]) == fw.channel_ids
    assert list(model.coords["constraint"]) == fw.constraint_ids
    assert list(model.coords["tier"]) == ["context", "potential", "mechanism", "outcome"]
    assert len(model.coords["link"]) == len(fw.link_stages()) == len(fw.links) == 25
    assert list(model.coords["stage"]) == ["firms", "linkages", "learning", "productivity", "welfare"]
    assert len(model.coords["chain_stage"]) == 5 * 5
    assert model.named_vars_to_dims["stage_logit"] == ("chain_stage",)
    assert model.named_vars_to_dims["severity_z"] == ("constraint",)
    assert model.named_vars_to_dims["loading"] == ("link",)
    assert model.named_vars_to_dims["loop_loading"] == ("loop_member",)


def test_finite_logp_and_gradient_at_initial_point(combined_study):
    model = bc.build_model(combined_study)
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    gradient = model.compile_dlogp()(point)
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)


def _evaluate(model, point, study):
    """The graph's evidence log-density at ``point``, and the draws the numpy likelihood needs, derived
    from the point's parameters by the numpy code path (engine.quantities), not by the graph."""
    from bayescpec.engine.quantities import derive
    from bayescpec.engine.structure import structure_of

    evidence = [p for p in model.potentials if p.name.endswith("_evidence")]
    logp = model.compile_logp(vars=evidence, sum=True)(point)
    outputs = model.compile_fn(model.replace_rvs_by_values([model[n] for n in FREE_NAMES]),
                               inputs=model.value_vars, on_unused_input="ignore")(point)
    params = {n: np.asarray(v)[None] for n, v in zip(FREE_NAMES, outputs)}
    return logp, {**params, **derive(structure_of(study), params)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_graph_sufficient_statistics_match_row_level_likelihood(combined_study, seed):
    model = bc.build_model(combined_study)
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0, 0.7, size=v.shape) for k, v in model.initial_point().items()}
    logp, draws = _evaluate(model, point, combined_study)
    data = aggregate_evidence(combined_study.evidence, combined_study.framework, combined_study.priors)
    rows = data.rows
    pointwise = pointwise_log_likelihood(rows, draws)[0]
    assert set(rows["kind"]) == {"signal", "count", "measure"}
    # the graph's count terms are whole beta-binomial log-probabilities (binomial coefficient included)
    np.testing.assert_allclose(pointwise.sum(), logp, rtol=1e-9)
    counts = (rows["kind"] == "count").to_numpy()
    graph_counts = model.compile_logp(vars=[model["count_evidence"]], sum=True)(point)
    np.testing.assert_allclose(pointwise[counts].sum(), graph_counts, rtol=1e-9)


def test_package_rows_count_once():
    evidence = pd.DataFrame({"package": ["p", "p", "p", "", "q", "q"]})
    np.testing.assert_allclose(row_weights(evidence), [1 / 3] * 3 + [1.0, 0.5, 0.5])


def test_set_evidence_swaps_data_without_rebuilding(combined_study):
    study = bc.load_study()
    model = bc.build_model(study)
    point = model.initial_point()
    before = model.compile_logp()(point)
    variables = set(model.named_vars)
    set_evidence(model, aggregate_evidence(combined_study.evidence, study.framework, study.priors))
    after = model.compile_logp()(point)
    assert set(model.named_vars) == variables
    assert after != before
    rebuilt = bc.build_model(combined_study)
    np.testing.assert_allclose(after, rebuilt.compile_logp()(point))


def test_empty_evidence_gives_the_prior(combined_study):
    study = bc.load_study()
    empty = study.with_evidence(study.evidence.iloc[:0])
    model = bc.build_model(empty)
    point = model.initial_point()
    evidence = [p for p in model.potentials if p.name.endswith("_evidence")]
    assert len(evidence) == 3 and model.compile_logp(vars=evidence, sum=True)(point) == 0.0


def test_derived_quantities_by_name_and_each_links_reduction_one_at_a_time():
    """derive(names=...) gives the named quantities exactly as the full derive does, and each link's reduction
    (computed for every link at once) is theta with that one link's pull removed, minus theta: here by
    removing the pull from the stage logits link by link and deriving theta again."""
    from bayescpec.engine.prior import draw_prior
    from bayescpec.engine.quantities import derive
    from bayescpec.engine.structure import model_structure, units_from_rows
    from scipy.special import expit

    study = bc.load_study()
    s = model_structure(study.framework, study.priors, units_from_rows(study.evidence, study.framework))
    params = draw_prior(s, study.priors, 500, seed=3)
    full = derive(s, params)
    for names in (["theta", "reach", "route_share"], ["interruption"], ["unit_theta"], ["nqpf"], ["break_first"]):
        some = derive(s, params, names)
        for name in names:
            assert np.array_equal(some[name], full[name]), name
    assert len(s.links) > 1
    eta, theta = params["stage_logit"], full["theta"]
    pull = params["loading"] * full["severity"][:, s.link_constraint]
    for link in range(len(s.links)):
        freed = eta.copy()
        freed[:, s.link_cell[link]] += pull[:, link]
        channel = s.link_channel[link]
        q = np.ones((len(eta), len(s.stages)))   # the channel's chain, stage by stage (1 outside it)
        cells = np.flatnonzero(s.cell_channel == channel)
        q[:, s.cell_stage[cells]] = expit(freed[:, cells])
        expected = q.prod(axis=1)
        if s.has_route and s.route_channel[channel]:  # reach_b = reach_a (E + (1 - E) epsilon), then on
            a, b, eps = s.route_after, s.route_reaches, params["route_probability"][:, channel]
            embedded = q[:, a + 1:b + 1].prod(axis=1)
            expected = q[:, :a + 1].prod(axis=1) * (embedded + (1 - embedded) * eps) * q[:, b + 1:].prod(axis=1)
        np.testing.assert_allclose(full["link_reduction"][:, link], expected - theta[:, channel], rtol=0, atol=1e-12)
