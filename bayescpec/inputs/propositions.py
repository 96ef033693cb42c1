"""The framework's propositions and what they are evaluated against: named constraint levels, the bypass
route of the conversion chain, and propositions with parts.

**Levels** (``[[levels]]``) name points of every constraint's standardised severity scale (0 = typical
for a lower-middle-income corridor economy), each with its meaning, so that a proposition can ask what a
constraint *can* do: ``swing(theta[sez], energy_debt)`` is theta with energy debt at its *favourable*
level minus theta at its *unfavourable* one. A constraint may place a level elsewhere (its ``levels``)::

    [[levels]]
    id = "favourable"
    severity = -1.28
    meaning = "as easy as in the best tenth of comparable corridor economies"

**A route** (``[[routes]]``, at most one) lets a channel's chain jump from one stage to a later one,
bypassing the stages between, with a probability the prior sets give a prior (``[routes.<id>]``): the
*enclave route* of the CPEC framework goes from firms straight to productivity and exports, bypassing
supplier linkages and learning. The stages it bypasses are then not necessary for the end stage, which
is what makes "only if linked" (P1) and "underembedded projects" (P4) testable.

**Propositions** may have ``[[propositions.parts]]``; a proposition without its own ``query`` holds when
every part holds. Tables show a proposition's parts beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..errors import Problem, allowed_list, did_you_mean
from .query import QueryError, split_given
from .querycheck import check_query
from .scenarios import SEVERITY_LIMIT
from .specread import Identifier

__all__ = ["Level", "Route", "PropositionPart", "Proposition", "proposition_problems", "route_problems",
           "level_problems"]

Severity = Annotated[float, Field(ge=-SEVERITY_LIMIT, le=SEVERITY_LIMIT)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class Level(_Spec):
    """A named point of every constraint's severity scale (logit scale, 0 = typical) and what it means."""

    id: Identifier
    severity: Severity
    meaning: str


class Route(_Spec):
    """A bypass of the conversion chain: after passing stage ``after``, a chain whose next stages fail still
    reaches stage ``reaches`` with the route's probability (per channel; prior in the prior sets)."""

    id: Identifier
    label: str
    after: str
    reaches: str
    quote: str | None = None


class PropositionPart(_Spec):
    id: Identifier
    label: str
    query: str


class Proposition(_Spec):
    id: Identifier
    statement: str
    #: the headline query; without it, the proposition holds when every part holds
    query: str | None = None
    #: how the query reads the statement: what each condition stands for, what raises and what lowers it
    reading: str | None = None
    parts: list[PropositionPart] = Field(default_factory=list)

    @property
    def headline(self) -> str:
        """The query whose probability is the proposition's (the parts' conjunction if none is given)."""
        if self.query is not None:
            return self.query
        return " and ".join(f"({part.query})" for part in self.parts)


def _unknown(name: str, kind: str, allowed: list[str]) -> str:
    return f"unknown {kind} {name!r}{did_you_mean(name, allowed)}; allowed: {allowed_list(allowed)}"


def level_problems(framework, problem: Callable[[tuple, str], Problem]) -> list[Problem]:
    """Duplicate level ids; a constraint placing a level the framework does not name."""
    problems: list[Problem] = []
    ids = [level.id for level in framework.levels]
    seen: set[str] = set()
    for index, level in enumerate(framework.levels):
        if level.id in seen:
            problems.append(problem(("levels", index, "id"), f"duplicate id {level.id!r}"))
        seen.add(level.id)
    for index, constraint in enumerate(framework.constraints):
        for name in constraint.levels:
            if name not in ids:
                problems.append(problem(("constraints", index, "levels", name), _unknown(name, "level", ids)))
    return problems


def route_problems(framework, problem: Callable[[tuple, str], Problem]) -> list[Problem]:
    """At most one route; its stages exist, in order, with at least one stage between them."""
    problems: list[Problem] = []
    stages = [s.id for s in framework.stages]
    if len(framework.routes) > 1:
        problems.append(problem(("routes", 1, "id"), f"found {len(framework.routes)} routes; allowed: at most one"))
    for index, route in enumerate(framework.routes):
        bad = False
        for key in ("after", "reaches"):
            name = getattr(route, key)
            if name not in stages:
                problems.append(problem(("routes", index, key), _unknown(name, "stage", stages) if stages
                                        else "a route needs the framework's [[stages]]"))
                bad = True
        if not bad and stages.index(route.reaches) - stages.index(route.after) < 2:
            problems.append(problem(("routes", index, "reaches"),
                                    f"found {route.reaches!r}; allowed: a stage at least two after {route.after!r} "
                                    "(a route bypasses the stages between)"))
    return problems


def proposition_problems(framework, problem: Callable[[tuple, str], Problem]) -> list[Problem]:
    """Every proposition's query and parts: parsed, names known, able to be both true and false."""
    problems: list[Problem] = []
    names = dict(channels=framework.channel_ids, constraints=framework.constraint_ids, stages=framework.stage_ids,
                 dimensions=[d.id for d in framework.dimensions], delta=framework.framework.materiality,
                 levels=[level.id for level in framework.levels])
    for index, proposition in enumerate(framework.propositions):
        if proposition.query is None and not proposition.parts:
            problems.append(problem(("propositions", index), "a proposition needs a query, or parts whose "
                                                             "conjunction it is"))
            continue
        if proposition.query is None and any(split_given(part.query)[1] is not None for part in proposition.parts
                                             if "given" in part.query):
            problems.append(problem(("propositions", index, "query"),
                                    "a part is conditional (B given A), so the parts' conjunction is no query: give "
                                    "the proposition its own query"))
        seen: set[str] = set()
        for number, part in enumerate(proposition.parts):
            if part.id in seen:
                problems.append(problem(("propositions", index, "parts", number, "id"), f"duplicate id {part.id!r}"))
            seen.add(part.id)
            try:
                check_query(part.query, **names)
            except QueryError as exc:
                problems.append(problem(("propositions", index, "parts", number, "query"), str(exc)))
        if proposition.query is not None:
            try:
                check_query(proposition.query, **names)
            except QueryError as exc:
                problems.append(problem(("propositions", index, "query"), str(exc)))
    return problems
