"""Framework and prior-set files: pydantic models (unknown keys forbidden) and their loaders.

Loading collects every problem in a file -- syntax, unknown keys with a "did you mean", values out
of range, names that do not exist in the framework -- and raises one :class:`SpecError` listing
them all with file, line and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import Problem, SpecError, allowed_list, did_you_mean
from .files import line_of
from .specread import Identifier, read_spec
from .chain import ANY_CHANNEL, catalogue_problems, chain_problems
from .propositions import Level, Proposition, Route, level_problems, proposition_problems, route_problems
from .scenarios import SEVERITY_LIMIT, Scenario, scenario_problems
from .statements import BETA, HALF_NORMAL, NORMAL, Family, StatedPrior, statement_records

__all__ = [
    "Framework",
    "PriorSet",
    "SINGLE_STAGE",
    "load_framework",
    "load_priors",
    "EVIDENCE_KINDS",
    "OBSERVATION_KINDS",
]

#: kinds of evidence rows: observations (signal, count, measure) and a recorded data gap, which is
#: tracked and reported but is not evidence for or against conversion
EVIDENCE_KINDS = ("signal", "count", "measure", "gap")
OBSERVATION_KINDS = ("signal", "count", "measure")




class _Spec(BaseModel):
    # inf/nan are no numbers here; strict: `true` or "3" is not a number (an int is, for a float)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


# ----------------------------------------------------------------------------- framework
class FrameworkInfo(_Spec):
    name: str
    source: str | None = None
    description: str | None = None
    #: delta in proposition queries: the smallest change of a conversion probability that counts as material
    materiality: Annotated[float, Field(gt=0, lt=1)] = 0.05


class Stage(_Spec):
    """One stage of the conversion chain; ``quote`` gives the source's words for it."""

    id: Identifier
    label: str
    quote: str | None = None
    #: share of the prior's failure mass (Beta b) carried by this stage; shares are normalised per chain
    prior_share: Annotated[float, Field(gt=0)] = 1.0


class Channel(_Spec):
    id: Identifier
    label: str
    section: str | None = None
    #: the stages of this channel's chain, in framework order (default: every framework stage)
    stages: list[str] | None = None


class Constraint(_Spec):
    id: Identifier
    label: str
    #: channels this constraint binds (frameworks without [[stages]]); with stages, use [[links]]
    binds: list[str] = Field(default_factory=list)
    section: str | None = None
    #: where this constraint's named levels lie, when not where the framework's [[levels]] put them
    levels: dict[str, Annotated[float, Field(ge=-SEVERITY_LIMIT, le=SEVERITY_LIMIT)]] = Field(default_factory=dict)
    #: why the framework has this constraint, when the source does not list it among its constraints
    addition: str | None = None


class Link(_Spec):
    """A constraint that binds a channel, at one stage of its chain, with the source's words for it."""

    constraint: str
    channel: str
    stage: str | None = None
    basis: str | None = None


class Loop(_Spec):
    """A feedback loop of constraints that reinforce each other (a shared latent factor of their severities)."""

    id: Identifier
    label: str
    constraints: list[str] = Field(min_length=2)
    quote: str | None = None


class Dimension(_Spec):
    """A dimension of the overall quantity: the mean reach of ``channel.stage`` entries (``channel``
    alone means the whole chain, theta)."""

    id: Identifier
    label: str
    measures: list[str] = Field(min_length=1)
    weight: Annotated[float, Field(gt=0)] = 1.0
    quote: str | None = None


class Tier(_Spec):
    id: Identifier
    label: str
    targets: Literal["channel", "constraint"]
    rank: int


class TestType(_Spec):
    id: Identifier
    label: str


class Indicator(_Spec):
    id: Identifier
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
    #: the stage of the conversion chain this indicator observes (channel indicators)
    stage: str | None = None


#: the one stage of a framework that declares no [[stages]]: the chain is a single step
SINGLE_STAGE = "conversion"


class Framework(_Spec):
    framework: FrameworkInfo
    stages: list[Stage] = Field(default_factory=list)
    channels: list[Channel] = Field(min_length=1)
    constraints: list[Constraint] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    loops: list[Loop] = Field(default_factory=list)
    tiers: list[Tier] = Field(min_length=1)
    test_types: list[TestType] = Field(default_factory=list)
    propositions: list[Proposition] = Field(default_factory=list)
    dimensions: list[Dimension] = Field(default_factory=list)
    indicators: list[Indicator] = Field(min_length=1)
    #: named policy scenarios (optional): constraints set, shifted or removed (:mod:`.scenarios`)
    scenarios: list[Scenario] = Field(default_factory=list)
    #: named levels of the constraints' severity scale, for counterfactual queries (:mod:`.propositions`)
    levels: list[Level] = Field(default_factory=list)
    #: at most one bypass route of the conversion chain (:mod:`.propositions`)
    routes: list[Route] = Field(default_factory=list)

    def level_severity(self, constraint_id: str, level_id: str) -> float:
        """Where level ``level_id`` lies on constraint ``constraint_id``'s severity scale."""
        constraint = next(c for c in self.constraints if c.id == constraint_id)
        if level_id in constraint.levels:
            return float(constraint.levels[level_id])
        return float(next(level.severity for level in self.levels if level.id == level_id))

    @property
    def stage_ids(self) -> list[str]:
        """The framework's stages in order (one implicit stage when it declares none)."""
        return [s.id for s in self.stages] or [SINGLE_STAGE]

    def chain(self, channel_id: str) -> list[str]:
        """The stages of a channel's conversion chain, in order."""
        channel = next(c for c in self.channels if c.id == channel_id)
        return list(channel.stages) if channel.stages else self.stage_ids

    def stage_share(self, stage_id: str) -> float:
        return next((s.prior_share for s in self.stages if s.id == stage_id), 1.0)

    def link_stages(self) -> list[tuple[str, str, str]]:
        """(channel, constraint, stage) for every binding: ``binds`` entries (at the channel's only
        stage), then [[links]] in file order."""
        out = [(ch, con, self.chain(ch)[-1]) for ch, con in self._bind_pairs()]
        out += [(link.channel, link.constraint, link.stage or self.chain(link.channel)[-1]) for link in self.links]
        return out

    def _bind_pairs(self) -> list[tuple[str, str]]:
        return [(ch, con.id) for con in self.constraints for ch in self.channel_ids if ch in con.binds]

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

    def link_pairs(self) -> list[tuple[str, str]]:
        """(channel, constraint) pairs where the constraint binds the channel (see :meth:`link_stages`)."""
        return [(ch, con) for ch, con, _ in self.link_stages()]


# ----------------------------------------------------------------------------- prior sets
Probability = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
#: bounds that keep a prior set where the logit scale and the sampler can carry it: beyond them a fit
#: overflows (a severity sd of 1e300) or the prior is a point mass in disguise (logistic(10) = 0.99995)
LOGIT_BOUND = 10.0
CONCENTRATION_BOUND = 10_000.0
Logit = Annotated[float, Field(ge=-LOGIT_BOUND, le=LOGIT_BOUND)]
LogitScale = Annotated[float, Field(gt=0, le=LOGIT_BOUND)]
Concentration = Annotated[float, Field(gt=0, le=CONCENTRATION_BOUND)]


#: a statement in the analyst's words (:mod:`.statements`): ``between = [lower, upper]``, ``mass = 0.9``
Between = tuple[float, float] | None
Mass = Probability | None


class _Prior(StatedPrior, _Spec):
    """A prior of one family, given by its parameters or as a statement (:class:`.statements.StatedPrior`)."""


class BetaPrior(_Prior):
    """A Beta prior given as its mean and concentration (a = mean*conc, b = (1-mean)*conc)."""

    STATEMENT_FAMILY: ClassVar[Family] = BETA
    mean: Probability
    concentration: Concentration  # pseudo-observations
    between: Between = None
    mass: Mass = None

    @property
    def alpha(self) -> float:
        return self.mean * self.concentration

    @property
    def beta(self) -> float:
        return (1 - self.mean) * self.concentration


class NormalPrior(_Prior):
    STATEMENT_FAMILY: ClassVar[Family] = NORMAL
    mean: Logit
    sd: LogitScale
    between: Between = None
    mass: Mass = None


class HalfNormalPrior(_Prior):
    STATEMENT_FAMILY: ClassVar[Family] = HALF_NORMAL
    sd: LogitScale
    between: Between = None
    mass: Mass = None


class LoadingPrior(_Prior):
    """The prior of every loading L (how much a unit of severity lowers a stage's logit). With ``mean``
    it is Normal(mean, sd): signed, so the evidence can say a constraint does *not* interrupt
    conversion (a mean > 0 leans toward the paper's expectation that it does). Without ``mean`` it is
    the half-normal of earlier versions: constraints can then only lower conversion. A statement
    (``between``, ``mass``) gives the signed Normal."""

    STATEMENT_FAMILY: ClassVar[Family] = NORMAL
    sd: LogitScale
    mean: Logit | None = None
    #: the share of the loadings' prior variance they have in common (signed loadings): L = mean + sd
    #: (sqrt(shared) common + sqrt(1 - shared) own), so each loading keeps its Normal(mean, sd) prior and
    #: two loadings correlate by ``shared``; evidence on one link then informs how strongly constraints
    #: bind in general. 0: independent loadings
    shared: Annotated[float, Field(ge=0, lt=1)] = 0.0
    between: Between = None
    mass: Mass = None

    @property
    def signed(self) -> bool:
        return self.mean is not None

    @property
    def family(self) -> Family:
        return NORMAL if self.signed else HALF_NORMAL


class CountPriors(_Spec):
    """Priors of count rows (k of n units). Each count indicator's per-unit rates f (not converting) and
    s = f + (1 - f) g (converting) have Beta priors whose means are the catalogue's
    ``rate_not_converting`` and ``rate_converting`` and whose concentration is ``rate_concentration``
    (pseudo-units behind each catalogue rate); ``overdispersion`` is the Beta prior of the intra-class
    correlation rho of one row's units (k ~ BetaBinomial with phi = 1/rho - 1): rho > 0 bounds what one
    count row, however large, can say."""

    rate_concentration: Concentration
    overdispersion: BetaPrior


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
    loadings: LoadingPrior
    #: Beta prior of each constraint's loading on a feedback loop's shared factor (frameworks with [[loops]])
    loop_loadings: BetaPrior | None = None
    #: half-normal prior of the spread of units (e.g. individual zones) around their channel, logit scale
    units: HalfNormalPrior = HalfNormalPrior(sd=0.5)
    diagnosticity: DiagnosticityPriors
    measure_loading: dict[str, LogitScale]
    #: count rows: the concentration of the indicators' rate priors and the overdispersion prior
    #: (required when the framework's catalogue has an indicator with a count kind)
    counts: CountPriors | None = None
    #: Beta prior of each channel's probability of taking the framework's bypass route ([[routes]])
    routes: dict[str, BetaPrior] = Field(default_factory=dict)

    def statements(self) -> list[dict]:
        """The priors given as statements (``between``, ``mass``), each with its solved parameters."""
        return statement_records(self)


# ----------------------------------------------------------------------------- loading
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
    framework, lines, problems = read_spec(path, Framework, SpecError)
    if framework is None:
        raise SpecError(problems)

    def duplicates(section: str, ids: list[str]):
        seen: set[str] = set()
        for index, item_id in enumerate(ids):
            if item_id in seen:
                problems.append(_problem(path, lines, (section, index, "id"), f"duplicate id {item_id!r}"))
            seen.add(item_id)

    for section in ("channels", "constraints", "tiers", "test_types", "propositions", "indicators", "scenarios"):
        duplicates(section, [item.id for item in getattr(framework, section)])
    channels = framework.channel_ids
    for section in ("channels", "constraints"):
        for index, item in enumerate(getattr(framework, section)):
            if item.id == ANY_CHANNEL:
                problems.append(_problem(path, lines, (section, index, "id"),
                                         f"{ANY_CHANNEL!r} is reserved (an indicator's target for every channel)"))
    for index, constraint in enumerate(framework.constraints):
        if constraint.id in channels:
            problems.append(_problem(path, lines, ("constraints", index, "id"),
                                     f"{constraint.id!r} is already a channel id; targets must be unique"))
        for channel in constraint.binds:
            if channel not in channels:
                problems.append(_problem(path, lines, ("constraints", index, "binds"),
                                         _unknown(channel, "channel", channels)))
    located = lambda loc, message: _problem(path, lines, loc, message)  # noqa: E731
    problems += _rank_problems(framework, path, lines) + catalogue_problems(framework, located)
    problems += chain_problems(framework, located) + scenario_problems(framework, located)
    problems += level_problems(framework, located) + route_problems(framework, located)
    if any(p.field and p.field.split(".")[0] in ("stages", "channels", "constraints", "dimensions", "levels")
           for p in problems):
        return _raise(problems)  # the queries' names would be unreliable: report the root causes only
    problems += proposition_problems(framework, located)
    if problems:
        raise SpecError(problems)
    return framework


def _raise(problems: list[Problem]):
    raise SpecError(problems)


def load_priors(path: str | Path, framework: Framework) -> PriorSet:
    """Load a prior set and check it covers exactly the framework's names."""
    path = Path(path)
    priors, lines, problems = read_spec(path, PriorSet, SpecError)
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
    same_names(("routes",), list(priors.routes), [r.id for r in framework.routes], "route")
    if priors.loadings.shared and not priors.loadings.signed:
        problems.append(_problem(path, lines, ("loadings", "shared"),
                                 "shared loadings need signed loadings: give [loadings] a mean"))
    if framework.loops and priors.loop_loadings is None:
        problems.append(_problem(path, lines, ("loop_loadings",),
                                 "the framework has feedback loops ([[loops]]): give loop_loadings = "
                                 "{ mean = ..., concentration = ... }, the Beta prior of each constraint's "
                                 "loading on its loop's shared factor"))
    counted = [i.id for i in framework.indicators if "count" in i.kinds]
    if counted and priors.counts is None:
        shown = ", ".join(counted[:3]) + (f" and {len(counted) - 3} more" if len(counted) > 3 else "")
        problems.append(_problem(path, lines, ("counts",),
                                 f"the framework's catalogue has count indicators ({shown}): give [counts] "
                                 "with rate_concentration = ... (pseudo-units behind each catalogue rate) and "
                                 "overdispersion = { mean = ..., concentration = ... } (Beta prior of the "
                                 "intra-class correlation of a count's units)"))
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
