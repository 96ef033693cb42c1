"""The native log density (issue 21): checked against PyMC's own compiled functions (PyTensor's C backend,
code it does not share) on every framework shape the tests have -- one stage without constraints, units,
several stages with constraints, links, a feedback loop and test types --, its data as arguments, its
error codes, the disk cache across processes, and the same draws for the same seed wherever they ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescpec as bc
from bayescpec.engine.compiled import built_model
from bayescpec.engine.native import BoundData, native_density

from conftest import ROOT, write_mini_study

MINI_ROWS = [f"s{i},2026-01-01,a,clue,mechanism,signal,{i % 2},,,,,,1,,test,x" for i in range(6)] + [
    "c1,2026-01-01,a,units,mechanism,count,,7,10,,,,1,,test,x",
    "m1,2026-01-01,a,level,mechanism,measure,12.5,,,,,,0.8,,test,x",
]


def _mini(tmp_path, *, units: bool = False, mean: float = 0.5):
    rows = MINI_ROWS
    if units:
        rows = [row + ",north" for row in rows[:4]] + [row + ",south" for row in rows[4:]]
    paths = write_mini_study(tmp_path, rows, mean=mean)
    if units:
        lines = paths["evidence"].read_text().splitlines()
        paths["evidence"].write_text("\n".join([lines[0] + ",unit"] + lines[1:]) + "\n")
    return bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])


def _shipped_every_kind():
    study = bc.load_study()
    batch = bc.load_study(evidence=ROOT / "evidence" / "hypothetical_sez_batch.csv")
    return study.with_evidence(pd.concat([study.evidence, batch.evidence], ignore_index=True))


@pytest.fixture(params=["one stage, no constraints", "units", "stages, constraints, loop, test types"])
def study(request, tmp_path):
    if request.param == "one stage, no constraints":
        return _mini(tmp_path)
    if request.param == "units":
        return _mini(tmp_path, units=True)
    return _shipped_every_kind()


def _reference(model):
    """PyMC's log density, gradient, initial point and expanded variables (its C-compiled functions)."""
    from pymc.pytensorf import compile as compile_pymc

    expanded = compile_pymc(model.value_vars, model.unobserved_value_vars, on_unused_input="ignore")
    return model.compile_logp(), model.compile_dlogp(), expanded


def _split(density, flat):
    out, cursor = {}, 0
    for name, shape in density.free:
        size = int(np.prod(shape, dtype=int))
        out[name] = flat[cursor:cursor + size].reshape(shape)
        cursor += size
    return out


def test_the_native_functions_equal_pymcs_own(study):
    built = built_model(study)
    model = built.model
    density = native_density(model, built.key)
    bound = BoundData(density, {name: built.shared[name].get_value() for name, _, _ in density.data})
    logp, dlogp, expanded = _reference(model)
    start = model.initial_point()
    np.testing.assert_allclose(bound.support, np.concatenate([start[n].ravel() for n, _ in density.free]))
    names = [var.name for var in model.unobserved_value_vars]
    rng = np.random.default_rng(7)
    for _ in range(4):
        flat = bound.support + rng.normal(scale=0.7, size=density.n_dim)
        point = _split(density, flat)
        code, value, gradient = bound.logp(flat)
        assert code == 0
        assert value == pytest.approx(float(logp(point)), rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(gradient, dlogp(point), rtol=1e-7, atol=1e-9)
        code, out = bound.expand(flat)
        assert code == 0
        reference = dict(zip(names, expanded(*[point[v.name] for v in model.value_vars])))
        cursor = 0
        for name, shape, _ in density.variables:
            size = int(np.prod(shape, dtype=int))
            np.testing.assert_allclose(out[cursor:cursor + size], np.ravel(reference[name]), rtol=1e-9, atol=1e-12)
            cursor += size


def test_the_data_are_arguments_not_constants(tmp_path):
    """One compiled form serves another prior set and another evidence log of the framework: with the
    other study's data it equals PyMC on a model built for the other study."""
    study, other = _mini(tmp_path / "a"), _mini(tmp_path / "b", mean=0.3)
    other = other.with_evidence(other.evidence.iloc[:3])
    first, second = built_model(study), built_model(other)
    assert first.key == second.key  # the fingerprint has no data values in it
    density = native_density(first.model, first.key)
    bound = BoundData(density, {name: second.shared[name].get_value() for name, _, _ in density.data})
    logp = second.model.compile_logp()
    flat = bound.support + 0.3
    assert bound.logp(flat)[1] == pytest.approx(float(logp(_split(density, flat))), rel=1e-9)
    assert built_model(bc.load_study()).key != first.key  # another framework, another fingerprint


def test_errors_inside_the_log_density_come_back_as_codes(tmp_path):
    """A non-finite point is a recoverable failure (positive code: the sampler treats it as outside the
    posterior); a point of the wrong size is refused (negative code); neither raises or crashes."""
    built = built_model(_mini(tmp_path))
    density = native_density(built.model, built.key)
    bound = BoundData(density, {name: built.shared[name].get_value() for name, _, _ in density.data})
    nan = bound.support.copy()
    nan[0] = np.nan
    assert bound.logp(nan)[0] > 0
    huge = bound.support.copy()
    huge[-1] = 1e308
    assert bound.logp(huge)[0] >= 0  # finite or a recoverable failure, never a crash
    assert bound.logp(np.zeros(density.n_dim + 1))[0] < 0
    with pytest.raises(ValueError, match="dimensions"):
        BoundData(density, {name: np.zeros((1,) * (ndim + 1)) for name, _, ndim in density.data})


def test_a_fresh_process_loads_the_compiled_model_from_disk(tmp_path):
    """What this process compiled (or loaded), the next process loads: same fingerprint, no compilation."""
    study = _mini(tmp_path)
    built = built_model(study)
    native_density(built.model, built.key)
    script = textwrap.dedent(f"""
        import json
        import bayescpec as bc
        from bayescpec.engine.compiled import built_model
        from bayescpec.engine.native import native_density
        study = bc.load_study(framework={str(study.files['framework'])!r}, priors={str(study.files['priors'])!r},
                              evidence={str(study.files['evidence'])!r})
        built = built_model(study)
        density = native_density(built.model, built.key)
        print(json.dumps({{"key": built.key, "loaded": density.loaded}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=tmp_path, env=os.environ)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"key": built.key, "loaded": True}


DRAWS_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import bayescpec as bc
    warnings.simplefilter("ignore")
    study = bc.load_study(framework=sys.argv[2], priors=sys.argv[3], evidence=sys.argv[4])
    draws = {}
    for cores in (1, 2):
        result = bc.fit(study, draws=60, tune=60, chains=2, seed=3, cores=cores)
        assert result.attrs["sampler"] == "nutpie"
        draws[f"cores{cores}"] = np.concatenate([result["posterior"][name].values.ravel()
                                                 for name in ("stage_logit", "theta", "sensitivity_tier")])
    np.savez(sys.argv[1], pymc_imported=np.array("pymc" in sys.modules), **draws)
""")


@pytest.mark.slow
def test_the_same_seed_gives_the_same_draws_on_an_empty_or_a_warm_cache(tmp_path):
    """Determinism, not a Monte Carlo value, so exact: fresh processes with every cache empty, warm (no PyMC model
    built: the fingerprint from the cache's index), with only
    bayescpec's cache removed (PyTensor's Numba cache warm) and with its compiled code damaged (a miss: it
    compiles again); chains one at a time or two at once."""
    import shutil

    study = _mini(tmp_path / "study")
    caches = tmp_path / "caches"
    env = {**os.environ, "BAYESCPEC_CACHE_DIR": str(caches / "bayescpec"), "NUMBA_CACHE_DIR": str(caches / "numba"),
           "PYTENSOR_FLAGS": f"base_compiledir={caches / 'pytensor'}"}
    script = tmp_path / "draws.py"
    script.write_text(DRAWS_SCRIPT)
    files = [str(study.files[role]) for role in ("framework", "priors", "evidence")]
    runs = {}
    for label in ("empty", "warm", "bayescpec cache removed", "damaged"):
        if label == "bayescpec cache removed":
            shutil.rmtree(caches / "bayescpec")
        if label == "damaged":
            for code in (caches / "bayescpec").glob("*logp*.nbc"):
                code.write_bytes(code.read_bytes()[:1000])
        out = tmp_path / f"{label.replace(' ', '_')}.npz"
        subprocess.run([sys.executable, str(script), str(out), *files], check=True, env=env, cwd=tmp_path)
        runs[label] = np.load(out)
    reference = runs["empty"]["cores1"]
    for label, found in runs.items():
        for cores in ("cores1", "cores2"):
            assert np.array_equal(found[cores], reference), (label, cores)
    # the warm process took the index's fingerprint and sampled without building (or importing) PyMC
    assert runs["empty"]["pymc_imported"] and not runs["warm"]["pymc_imported"]


def test_fit_defaults_to_the_native_path_and_records_it(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        result = bc.fit(_mini(tmp_path), draws=50, tune=50, chains=2, seed=1)
    assert result.attrs["sampler"] == "nutpie"
    assert set(result["posterior"].data_vars) >= {"stage_logit", "theta", "sensitivity_tier", "false_positive_tier"}
    assert result["posterior"].sizes["chain"] == 2 and result["posterior"].sizes["draw"] == 50
    assert {"diverging", "energy", "maxdepth_reached"} <= set(result["sample_stats"].data_vars)


def test_the_fingerprint_index_key_changes_with_whatever_the_graph_is_made_from():
    """The index that spares a warm fit building its PyMC model is keyed by the framework and prior set (their
    content), the units and the data's names, dtypes and dimensions; a change in any is another key."""
    from bayescpec.engine.aggregate import evidence_data
    from bayescpec.engine.model import prior_data
    from bayescpec.engine.native import graph_inputs_key
    from bayescpec.engine.structure import structure_of

    study = bc.load_study()
    s = structure_of(study)
    data = {**evidence_data(study).data_arrays(), **prior_data(s, study.priors)}
    key = graph_inputs_key(study.framework, study.priors, s.units, data)
    again = bc.load_study()
    assert key == graph_inputs_key(again.framework, again.priors, structure_of(again).units, data)  # equal copies
    values = {name: np.asarray(v) * 2 if np.asarray(v).dtype.kind == "f" else v for name, v in data.items()}
    assert key == graph_inputs_key(study.framework, study.priors, s.units, values)   # data values: the same graph
    assert key != graph_inputs_key(study.framework, bc.load_study(priors="skeptical").priors, s.units, data)
    assert key != graph_inputs_key(study.framework, study.priors, [*s.units, ("sez", "made_up_zone")], data)
    retyped = {**data, "count_k": np.asarray(data["count_k"], dtype=np.int64)}
    assert key != graph_inputs_key(study.framework, study.priors, s.units, retyped)
    fewer = {name: v for name, v in data.items() if name != "count_k"}
    assert key != graph_inputs_key(study.framework, study.priors, s.units, fewer)
