"""Named policy scenarios of a framework (optional ``[[scenarios]]``): what if a constraint eased?

A scenario sets, shifts or removes constraint severities (the standardised scale of the prior sets:
0 = typical, one unit = one prior sd in the shipped sets)::

    [[scenarios]]
    id = "energy_restructuring"
    label = "Energy-sector restructuring"
    quote = "the paper's words for the lever"
    [scenarios.settings]
    shift = { energy_debt = -1.0 }       # one unit less binding
    # set = { energy_debt = 0.0 }        # at typical
    # remove = ["energy_debt"]           # no longer pulls on any stage

:func:`scenario_problems` checks every name against the framework's constraints (with "did you mean")
and that each scenario changes something; ``load_framework`` reports the problems at their lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..errors import Problem, allowed_list, did_you_mean
from .specread import Identifier

__all__ = ["Scenario", "ScenarioSettings", "scenario_problems", "SETTING_KINDS", "SEVERITY_LIMIT"]

#: the three ways a scenario changes a constraint, in the order they are applied
SETTING_KINDS = ("set", "shift", "remove")
#: the largest |severity| (logit scale, 0 = typical) a scenario may set or shift by: beyond it the pull
#: on a stage no longer changes, and far beyond it the arithmetic overflows
SEVERITY_LIMIT = 20.0
Severity = Annotated[float, Field(ge=-SEVERITY_LIMIT, le=SEVERITY_LIMIT)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class ScenarioSettings(_Spec):
    """``set``: severity values; ``shift``: added to the current severity; ``remove``: no pull at all."""

    set: dict[str, Severity] = Field(default_factory=dict)
    shift: dict[str, Severity] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class Scenario(_Spec):
    id: Identifier  # given to whatif --scenario
    label: str
    quote: str | None = None
    section: str | None = None
    settings: ScenarioSettings


def scenario_problems(framework, problem: Callable[[tuple, str], Problem]) -> list[Problem]:
    """Every problem of the framework's ``[[scenarios]]``; ``problem(loc, message)`` locates one."""
    problems: list[Problem] = []
    constraints = framework.constraint_ids
    for index, scenario in enumerate(framework.scenarios):
        loc = ("scenarios", index, "settings")
        settings = scenario.settings
        if not (settings.set or settings.shift or settings.remove):
            problems.append(problem(loc, "a scenario must set, shift or remove at least one constraint"))
        for kind in SETTING_KINDS:
            names = list(getattr(settings, kind))
            for name in names:
                if name not in constraints:
                    problems.append(problem(loc + (kind, name) if kind != "remove" else loc + (kind,),
                                            f"unknown constraint {name!r}{did_you_mean(name, constraints)}; "
                                            f"allowed: {allowed_list(constraints)}"))
        both = sorted(set(settings.remove) & (set(settings.set) | set(settings.shift)))
        for name in both:
            problems.append(problem(loc + ("remove",), f"constraint {name!r} is removed and also set or shifted; "
                                                         "give one of them"))
    return problems
