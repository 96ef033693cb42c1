"""``whatif``: policy scenarios from the posterior draws, without refitting.

A scenario sets constraint severities to values (``set``), shifts them (``shift``, added after
``set``), or removes constraints (``remove``: they no longer pull on any stage). At every posterior
draw the stage probabilities are recomputed with the changed severities through the framework's
links, keeping what the evidence pinned (the constrained stage logit η) and each link's loading L:

    q'_cj = sigmoid(η_cj + Σ over the links l of stage (c, j) of L_l (s_k(l) − s'_k(l)))

and θ', reach', ... follow (:mod:`bayescpec.engine.scenario`). Each channel's θ and P(θ > τ) under
the scenario are shown beside the baseline, with credible intervals and Monte Carlo standard errors
(ArviZ's ``mcse`` over chains and draws) of the means, of the change and of the probabilities. The
severity scale is the prior sets' (0 = typical for a lower-middle-income corridor economy); what a
one-unit change means in the world is the prior set's assumption, not an estimate. The scenario
answers "what would the model say if the constraint were this binding", holding each draw's other
parameters: it is a counterfactual within the model, not a forecast of a policy's effect.

Named scenarios (the paper's policy levers) live in the framework file (``[[scenarios]]``, see
:mod:`bayescpec.inputs.scenarios`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..engine.quantities import FREE_DIMS
from ..engine.sampling import posterior_draws
from ..engine.scenario import derive_scenario, scenario_severity
from ..engine.structure import structure_of
from ..errors import InputError, Problem, allowed_list, did_you_mean
from ..inputs.study import Study
from ..inputs.scenarios import SEVERITY_LIMIT  # one bound for --set/--shift and the framework's [[scenarios]]
from ..outputs.summary import (CI_KIND, CI_PROB, THRESHOLD, check_options, interval_label,
                               near_boundary)
from .base import analysis_attrs, study_of, words
from .draws import analysis_draws

__all__ = ["ScenarioSpec", "parse_settings", "named_scenarios", "whatif", "SEVERITY_LIMIT"]



@dataclass(frozen=True)
class ScenarioSpec:
    id: str
    label: str
    set: dict[str, float] = field(default_factory=dict)
    shift: dict[str, float] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    quote: str = ""

    def describe(self) -> str:
        parts = [f"{k} = {v:g}" for k, v in self.set.items()] + [f"{k} {v:+g}" for k, v in self.shift.items()]
        return ", ".join(parts + [f"{k} removed" for k in self.remove])


def _number(option: str, name: str, value) -> float:
    if isinstance(value, bool):
        raise InputError(f"{option} {name}: the severity must be a number; found {value!r}")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InputError(f"{option} {name}: the severity must be a number; found {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{option} {name}: the severity must be a finite number; found {value!r}")
    if abs(number) > SEVERITY_LIMIT:
        what = "shift" if option == "--shift" else "severity"
        raise InputError(f"{option} {name}: found {value!r}; allowed: a {what} from {-SEVERITY_LIMIT:g} to "
                         f"{SEVERITY_LIMIT:g} (logit scale, 0 = typical; beyond that the pull no longer changes)")
    return number


def _pairs(option: str, given) -> dict:
    """``{"k": v}`` from a mapping or from ``["k=v", ...]`` (what the command line passes)."""
    if isinstance(given, Mapping):
        return dict(given)
    out, texts, twice = {}, {}, []
    for text in given or ():
        name, sep, value = str(text).partition("=")
        if not sep or not name.strip():
            raise InputError(f"{option}: expected CONSTRAINT=VALUE (e.g. {option} energy_debt=0); found {text!r}")
        if name.strip() in out:  # the last one silently won
            twice.append(Problem("", None, None, f"{option}: constraint {name.strip()!r} is given twice "
                                                 f"({texts[name.strip()]!r}, then {text!r}); give each constraint once"))
        out[name.strip()], texts[name.strip()] = value, text
    if twice:
        raise InputError(twice)
    return out


def parse_settings(constraints: Sequence[str], *, set=None, shift=None, remove: Iterable[str] = (),
                   id: str = "custom", label: str = "") -> ScenarioSpec:
    """A scenario from ``set``/``shift`` (mappings, or ``"name=value"`` strings) and ``remove`` (names);
    every name must be a constraint and every value a finite number (errors name the option and, for a
    misspelt name, say "did you mean")."""
    problems = []
    values = {}
    for option, given in (("--set", set), ("--shift", shift)):
        values[option] = {}
        for name, value in _pairs(option, given).items():
            if name not in constraints:
                problems.append(Problem("", None, None, f"{option}: unknown constraint {name!r}"
                                        f"{did_you_mean(name, constraints)}; allowed: {allowed_list(constraints)}"))
                continue
            try:
                values[option][name] = _number(option, name, value)
            except InputError as exc:
                problems += exc.problems
    removed = [str(r).strip() for r in (remove or ())]
    for name in removed:
        if name not in constraints:
            problems.append(Problem("", None, None, f"--remove: unknown constraint {name!r}"
                                    f"{did_you_mean(name, constraints)}; allowed: {allowed_list(constraints)}"))
    clash = sorted(set_ for set_ in removed if set_ in values["--set"] or set_ in values["--shift"])
    for name in clash:
        problems.append(Problem("", None, None, f"--remove: constraint {name!r} is removed and also set or shifted; "
                                                "give one of them"))
    if problems:
        raise InputError(problems)
    spec = ScenarioSpec(id, label, values["--set"], values["--shift"], tuple(removed))
    return spec if label else ScenarioSpec(id, spec.describe(), spec.set, spec.shift, spec.remove)


def named_scenarios(study: Study, ids: Sequence[str] | None = None) -> list[ScenarioSpec]:
    """The framework's ``[[scenarios]]`` (all, or those named; "did you mean" for an unknown id)."""
    found = {s.id: s for s in study.framework.scenarios}
    for name in ids or ():
        if name not in found:
            raise InputError(f"--scenario: unknown scenario {name!r}{did_you_mean(name, list(found))}; allowed: "
                             f"{allowed_list(list(found))}")
    chosen = [found[i] for i in ids] if ids else list(found.values())
    return [ScenarioSpec(s.id, s.label, dict(s.settings.set), dict(s.settings.shift), tuple(s.settings.remove),
                         s.quote or "") for s in chosen]


def whatif(
    result: xr.DataTree,
    study: Study | None = None,
    *,
    set=None,
    shift=None,
    remove: Iterable[str] = (),
    scenarios: Sequence[str] | None = None,
    threshold: float = THRESHOLD,
    ci_kind: str = CI_KIND,
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """Each channel's θ and P(θ > τ) under each scenario beside the baseline (see the module's doc).
    ``set``/``shift``/``remove`` make one scenario ("custom"); ``scenarios`` names framework scenarios;
    with neither, every framework scenario is run."""
    try:
        check_options(ci_kind, ci_prob, threshold)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    study = study if study is not None else study_of(result)
    structure = structure_of(study)
    specs = []
    if set or shift or remove:
        specs.append(parse_settings(structure.constraints, set=set, shift=shift, remove=remove))
    if scenarios or not specs:
        specs += named_scenarios(study, scenarios)
    if not specs:
        raise InputError("whatif: give --set, --shift or --remove, or --scenario (this framework names no "
                         "[[scenarios]])")
    current = analysis_draws(result, study, "whatif")          # a reweighted result: its base draws, weighted
    params = posterior_draws(current.tree, list(FREE_DIMS))
    severity = current.flat("severity")
    base = {"theta": current.flat("theta"), "nqpf": current.flat("nqpf")[:, None]}
    names = structure.channels + ["nqpf"]
    baseline = np.concatenate([base["theta"], base["nqpf"]], axis=1)
    label = interval_label(ci_kind, ci_prob)
    records = []
    for spec in specs:
        new = scenario_severity(structure, severity, set=spec.set, shift=spec.shift, remove=spec.remove)
        out = derive_scenario(structure, params, new)
        values = np.concatenate([out["theta"], out["nqpf"][:, None]], axis=1)
        change = values - baseline
        interval = current.interval(np.stack([values, change], axis=-1), ci_kind, ci_prob)  # (quantity, what, bound)
        above_b, above_s = baseline > threshold, values > threshold
        mcse = {k: current.mcse(v) for k, v in (("mean", values), ("change", change),
                                                 ("p", above_s.astype(float)),
                                                 ("dp", above_s.astype(float) - above_b))}
        means = {k: current.mean(v) for k, v in (("baseline", baseline), ("scenario", values), ("change", change),
                                                 ("p_b", above_b), ("p_s", above_s))}
        for q, name in enumerate(names):
            p_b, p_s = float(means["p_b"][q]), float(means["p_s"][q])
            records.append({
                "scenario": spec.id, "scenario_label": spec.label, "settings": spec.describe(),
                "quantity": f"theta[{name}]" if name != "nqpf" else "nqpf", "channel": name,
                "baseline_mean": float(means["baseline"][q]), "scenario_mean": float(means["scenario"][q]),
                "change_mean": float(means["change"][q]), "mcse_mean": float(mcse["mean"][q]),
                "mcse_change": float(mcse["change"][q]),
                f"{label} lower": float(interval[q, 0, 0]), f"{label} upper": float(interval[q, 0, 1]),
                f"change {label} lower": float(interval[q, 1, 0]), f"change {label} upper": float(interval[q, 1, 1]),
                "p_baseline": p_b, "p_scenario": p_s, "change_p": p_s - p_b, "mcse_p": float(mcse["p"][q]),
                "mcse_change_p": float(mcse["dp"][q]),
                "likelihood_baseline": words([p_b])[0], "likelihood_scenario": words([p_s])[0],
                "likelihood_near_boundary": near_boundary(p_s, float(mcse["p"][q])),
            })
    table = pd.DataFrame(records)
    table.attrs = analysis_attrs(result, f"Policy scenarios: θ and P(θ > {threshold:g}) per channel under each "
                                         f"scenario, beside the baseline (no refit)", interval=label,
                                 threshold=threshold, scenarios={s.id: {"label": s.label, "settings": s.describe(),
                                                                        "quote": s.quote} for s in specs})
    return table
