"""Framework and prior-set files: pydantic models (unknown keys forbidden) and their loaders.

Loading collects every problem in a file -- syntax, unknown keys with a "did you mean", values out
of range, names that do not exist in the framework -- and raises one :class:`SpecError` listing
them all with file, line and key.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import Problem, SpecError, allowed_list, did_you_mean
from .files import _TomlProblem, line_of, read_toml
from .query import QueryError, check_query

__all__ = [
    "Framework",
    "PriorSet",
    "load_framework",
    "load_priors",
    "EVIDENCE_KINDS",
]

EVIDENCE_KINDS = ("signal", "count", "measure")
ANY_CHANNEL = "any_channel"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # inf/nan are no numbers here


# ----------------------------------------------------------------------------- framework
class FrameworkInfo(_Spec):
    name: str
    source: str | None = None
    description: str | None = None


class Channel(_Spec):
    id: str
    label: str
    section: str | None = None


class Constraint(_Spec):
    id: str
    label: str
    binds: list[str] = Field(min_length=1)
    section: str | None = None


class Tier(_Spec):
    id: str
    label: str
    targets: Literal["channel", "constraint"]
    rank: int


class TestType(_Spec):
    id: str
    label: str


class Proposition(_Spec):
    id: str
    statement: str
    query: str


class Indicator(_Spec):
    id: str
    label: str
    target: str
    tiers: list[str] = Field(min_length=1)
    kinds: list[Literal["signal", "count", "measure"]] = Field(min_length=1)
    direction: Literal["higher_is_better", "higher_is_worse"] = "higher_is_better"
    unit: str | None = None
    baseline: float | None = None
    scale: Annotated[float, Field(gt=0)] | None = None
    reference_note: str | None = None
    rate_converting: Annotated[float, Field(gt=0, lt=1)] | None = None
    rate_not_converting: Annotated[float, Field(gt=0, lt=1)] | None = None


class Framework(_Spec):
    framework: FrameworkInfo
    channels: list[Channel] = Field(min_length=1)
    constraints: list[Constraint] = Field(default_factory=list)
    tiers: list[Tier] = Field(min_length=1)
    test_types: list[TestType] = Field(default_factory=list)
    propositions: list[Proposition] = Field(default_factory=list)
    indicators: list[Indicator] = Field(min_length=1)

    @property
    def channel_ids(self) -> list[str]:
        return [c.id for c in self.channels]

    @property
    def constraint_ids(self) -> list[str]:
        return [c.id for c in self.constraints]

    @property
    def tier_ids(self) -> list[str]:
        return [t.id for t in sorted(self.tiers, key=lambda t: t.rank)]

    @property
    def test_ids(self) -> list[str]:
        return [t.id for t in self.test_types]

    def tier(self, tier_id: str) -> Tier:
        return next(t for t in self.tiers if t.id == tier_id)

    def indicator(self, indicator_id: str) -> Indicator:
        return self._indicators[indicator_id]

    @property
    def _indicators(self) -> dict[str, Indicator]:
        return {i.id: i for i in self.indicators}

    def links(self) -> list[tuple[str, str]]:
        """(channel, constraint) pairs where the constraint binds the channel, in framework order."""
        return [(ch, con.id) for con in self.constraints for ch in self.channel_ids if ch in con.binds]


# ----------------------------------------------------------------------------- prior sets
Probability = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]


class BetaPrior(_Spec):
    """A Beta prior given as its mean and concentration (a = mean*conc, b = (1-mean)*conc)."""

    mean: Probability
    concentration: Positive

    @property
    def alpha(self) -> float:
        return self.mean * self.concentration

    @property
    def beta(self) -> float:
        return (1 - self.mean) * self.concentration


class NormalPrior(_Spec):
    mean: float
    sd: Positive


class HalfNormalPrior(_Spec):
    sd: Positive


class Diagnosticity(_Spec):
    """Beta priors on P(positive | converting) and P(positive | not converting)."""

    sensitivity: BetaPrior
    false_positive: BetaPrior


class DiagnosticityPriors(_Spec):
    tiers: dict[str, Diagnosticity]
    tests: dict[str, Diagnosticity] = Field(default_factory=dict)


class PriorSet(_Spec):
    name: str
    description: str
    channels: dict[str, BetaPrior]
    constraints: dict[str, NormalPrior] = Field(default_factory=dict)
    loadings: HalfNormalPrior
    diagnosticity: DiagnosticityPriors
    measure_loading: dict[str, Positive]


# ----------------------------------------------------------------------------- loading
def _unwrap(annotation: typing.Any) -> typing.Any:
    """Strip Annotated[...] and Optional[...] down to the type inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union or origin is types.UnionType:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class found at ``loc`` inside ``root`` (for "did you mean" on keys)."""
    current: typing.Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _pydantic_problems(
    exc: ValidationError, root: type[BaseModel], path: Path, lines: dict, data: dict
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = line_of(lines, loc)
        where = f"line {line}" if line else None
        field = ".".join(str(p) for p in loc) or None
        if err["type"] == "extra_forbidden":
            parent = _model_at(root, loc[:-1])
            allowed = list(parent.model_fields) if parent else []
            hint = did_you_mean(loc[-1], allowed)
            message = f"unknown key {loc[-1]!r}{hint}; allowed keys: {', '.join(allowed)}"
        elif err["type"] == "missing":
            message = "required key is missing"
        else:
            message = f"{err['msg']}; found {err.get('input')!r}"
        problems.append(Problem(str(path), where, field, message))
    return problems


def _read(path: Path, model: type[BaseModel], error: type[SpecError]):
    try:
        data, lines = read_toml(path)
    except _TomlProblem as exc:
        raise error(exc.problems) from None
    try:
        return model.model_validate(data), lines, []
    except ValidationError as exc:
        return None, lines, _pydantic_problems(exc, model, path, lines, data)


def _problem(path, lines, loc, message) -> Problem:
    line = line_of(lines, loc)
    return Problem(str(path), f"line {line}" if line else None, ".".join(str(p) for p in loc), message)


def _unknown(name: str, kind: str, allowed: list[str]) -> str:
    return f"unknown {kind} {name!r}{did_you_mean(name, allowed)}; allowed: {allowed_list(allowed)}"


def _rank_problems(framework: Framework, path: Path, lines: dict) -> list[Problem]:
    """The evidence ladder is ordered by rank: two tiers with one rank leave their order undefined."""
    problems: list[Problem] = []
    first: dict[int, tuple[int, str]] = {}
    for index, tier in enumerate(framework.tiers):
        if tier.rank in first:
            other_index, other = first[tier.rank]
            other_line = line_of(lines, ("tiers", other_index, "rank"))
            problems.append(_problem(path, lines, ("tiers", index, "rank"),
                                     f"found rank {tier.rank}, already the rank of tier {other!r}"
                                     f"{f' (line {other_line})' if other_line else ''}; allowed: a rank no other tier "
                                     f"has (the ranks order the evidence ladder)"))
        first.setdefault(tier.rank, (index, tier.id))
    return problems


def load_framework(path: str | Path) -> Framework:
    """Load and check a framework file; raises :class:`SpecError` listing every problem."""
    path = Path(path)
    framework, lines, problems = _read(path, Framework, SpecError)
    if framework is None:
        raise SpecError(problems)

    def duplicates(section: str, ids: list[str]):
        seen: set[str] = set()
        for index, item_id in enumerate(ids):
            if item_id in seen:
                problems.append(_problem(path, lines, (section, index, "id"), f"duplicate id {item_id!r}"))
            seen.add(item_id)

    for section in ("channels", "constraints", "tiers", "test_types", "propositions", "indicators"):
        duplicates(section, [item.id for item in getattr(framework, section)])
    channels, constraints = framework.channel_ids, framework.constraint_ids
    for index, constraint in enumerate(framework.constraints):
        if constraint.id in channels:
            problems.append(_problem(path, lines, ("constraints", index, "id"),
                                     f"{constraint.id!r} is already a channel id; targets must be unique"))
        for channel in constraint.binds:
            if channel not in channels:
                problems.append(_problem(path, lines, ("constraints", index, "binds"),
                                         _unknown(channel, "channel", channels)))
    problems += _rank_problems(framework, path, lines)
    tiers = {t.id: t for t in framework.tiers}
    if not any(t.targets == "channel" for t in framework.tiers):
        problems.append(_problem(path, lines, ("tiers",), "no tier targets channels"))
    targets = channels + constraints + [ANY_CHANNEL]
    for index, indicator in enumerate(framework.indicators):
        loc = ("indicators", index)
        if indicator.target not in targets:
            problems.append(_problem(path, lines, loc + ("target",), _unknown(indicator.target, "target", targets)))
        target_type = "constraint" if indicator.target in constraints else "channel"
        for tier in indicator.tiers:
            if tier not in tiers:
                problems.append(_problem(path, lines, loc + ("tiers",), _unknown(tier, "tier", list(tiers))))
            elif tiers[tier].targets != target_type:
                problems.append(_problem(path, lines, loc + ("tiers",),
                                         f"tier {tier!r} is about a {tiers[tier].targets}, "
                                         f"but target {indicator.target!r} is a {target_type}"))
        if "measure" in indicator.kinds and (indicator.baseline is None or indicator.scale is None):
            problems.append(_problem(path, lines, loc + ("kinds",),
                                     "kind 'measure' needs both 'baseline' and 'scale' to standardise values"))
        rates = (indicator.rate_converting, indicator.rate_not_converting)
        if (rates[0] is None) != (rates[1] is None):
            problems.append(_problem(path, lines, loc, "give both rate_converting and rate_not_converting, or neither"))
        elif rates[0] is not None and rates[0] <= rates[1]:
            problems.append(_problem(path, lines, loc + ("rate_converting",),
                                     f"rate_converting ({rates[0]}) must exceed rate_not_converting ({rates[1]})"))
    for index, proposition in enumerate(framework.propositions):
        try:
            check_query(proposition.query, channels=channels, constraints=constraints)
        except QueryError as exc:
            problems.append(_problem(path, lines, ("propositions", index, "query"), str(exc)))
    if problems:
        raise SpecError(problems)
    return framework


def load_priors(path: str | Path, framework: Framework) -> PriorSet:
    """Load a prior set and check it covers exactly the framework's names."""
    path = Path(path)
    priors, lines, problems = _read(path, PriorSet, SpecError)
    if priors is None:
        raise SpecError(problems)

    def same_names(section: tuple, given: list[str], wanted: list[str], kind: str, required: bool = True):
        for name in given:
            if name not in wanted:
                problems.append(_problem(path, lines, section + (name,), _unknown(name, kind, wanted)))
        if required:
            for name in wanted:
                if name not in given:
                    problems.append(_problem(path, lines, section,
                                             f"no prior for {kind} {name!r}; every {kind} needs one"))

    same_names(("channels",), list(priors.channels), framework.channel_ids, "channel")
    same_names(("constraints",), list(priors.constraints), framework.constraint_ids, "constraint")
    same_names(("diagnosticity", "tiers"), list(priors.diagnosticity.tiers), framework.tier_ids, "tier")
    same_names(("diagnosticity", "tests"), list(priors.diagnosticity.tests), framework.test_ids, "test type")
    same_names(("measure_loading",), list(priors.measure_loading), framework.tier_ids, "tier")
    for group, table in (("tiers", priors.diagnosticity.tiers), ("tests", priors.diagnosticity.tests)):
        for name, diag in table.items():
            if diag.sensitivity.mean <= diag.false_positive.mean:
                problems.append(_problem(
                    path, lines, ("diagnosticity", group, name, "sensitivity"),
                    f"sensitivity mean ({diag.sensitivity.mean}) must exceed false_positive mean "
                    f"({diag.false_positive.mean}): a positive clue must be likelier under conversion"))
    if problems:
        raise SpecError(problems)
    return priors
