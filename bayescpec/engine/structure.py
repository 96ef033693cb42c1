"""The model's structure as plain index arrays: what the model builder, the prior simulation, the derived
quantities and the pointwise likelihood all share, computed once from a study.

The conversion chain (section 8 of the paper): channel c passes its stages j = 1..J_c in order with
probability q_cj = P(stage j | stage j - 1); the chain *reaches* stage j with probability
pi_cj = prod_{i <= j} q_ci, and theta_c = pi_cJ is the probability that it completes. Framework stages
that are not in a channel's chain are passed with probability 1, so ``reach`` is a full
(channel x stage) grid.

The prior set gives theta_c's prior, Beta(a, b) (mean m, concentration k: a = m k, b = (1 - m) k). The
stage priors split it exactly: with failure shares w_j (framework ``prior_share``, normalised over the
chain) and b_j = b w_j, the constraint-free q_cJ ~ Beta(a, b_J) and q_cj ~ Beta(a + sum_{i > j} b_i, b_j);
by the Beta product identity (X ~ Beta(x, y), Y ~ Beta(x + y, z) independent => XY ~ Beta(x, y + z))
their product is Beta(a, b). A one-stage chain is the one-theta model.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..inputs.spec import Framework, PriorSet
from ..inputs.study import Study
from .counts import COUNT_DIM, CountStructure, count_structure

__all__ = ["Structure", "structure_of", "model_structure", "stage_beta_parameters", "units_from_rows",
           "GraphCache"]


def stage_beta_parameters(alpha: float, beta: float, shares: list[float]) -> list[tuple[float, float]]:
    """(a_j, b_j) of each stage's constraint-free pass probability so that the product is Beta(alpha, beta)."""
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    b = beta * shares
    return [(alpha + float(b[j + 1:].sum()), float(b[j])) for j in range(len(b))]


@dataclass(frozen=True, eq=False)
class Structure:
    """Index arrays of one framework + prior set + set of units."""

    channels: list[str]
    stages: list[str]
    constraints: list[str]
    links: list[tuple[str, str, str]]          # (channel, constraint, stage)
    loops: list[str]
    loop_members: list[tuple[str, str]]        # (loop, constraint)
    units: list[tuple[str, str]]               # (channel, unit)
    tiers: list[str]
    tests: list[str]
    # chain cells: the (channel, stage) pairs in a channel's chain
    cells: list[tuple[str, str]]
    cell_channel: np.ndarray
    cell_stage: np.ndarray
    cell_alpha: np.ndarray
    cell_beta: np.ndarray
    in_chain: np.ndarray                       # (C, J) bool
    # constraints
    severity_mean: np.ndarray
    severity_sd: np.ndarray
    link_cell: np.ndarray
    link_channel: np.ndarray
    link_constraint: np.ndarray
    loading_mean: float
    loading_sd: float
    loading_signed: bool
    member_loop: np.ndarray
    member_constraint: np.ndarray
    member_scale: np.ndarray                   # 1 / sqrt(number of loops the constraint is in)
    loop_alpha: float
    loop_beta: float
    # units
    unit_channel: np.ndarray
    unit_sd: float
    # dimensions of the overall quantity: weights over the (channel, stage) grid, one row per dimension
    dimensions: list[str] = field(default_factory=list)
    dimension_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    dimension_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # the bypass route ([[routes]]): after passing stage ``route_after`` (index), a chain reaches stage
    # ``route_reaches`` either through the stages between or, when they fail, through the route with the
    # channel's route_probability; ``route_channel`` marks the channels whose chain has both stages
    route: str = ""
    route_after: int = -1
    route_reaches: int = -1
    route_channel: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    route_alpha: float = 1.0
    route_beta: float = 1.0
    # loadings: the share of their prior variance they have in common (0: independent)
    loading_shared: float = 0.0
    # named levels of the severity scale: level id -> the severity of every constraint at that level
    levels: dict[str, np.ndarray] = field(default_factory=dict)

    #: the catalogue's count indicators and the priors of their rates and overdispersion (engine.counts)
    counts: CountStructure = field(default_factory=CountStructure)

    @property
    def has_route(self) -> bool:
        return bool(self.route) and bool(self.route_channel.any())

    @property
    def route_applies(self) -> np.ndarray:
        """(channels,) whether the route applies to each channel: ``route_channel``, all False without a route."""
        return self.route_channel if self.has_route else np.zeros(len(self.channels), bool)

    @property
    def link_names(self) -> list[str]:
        return [f"{c}|{k}" for c, k, _ in self.links]

    @property
    def cell_names(self) -> list[str]:
        return [f"{c}|{s}" for c, s in self.cells]

    @property
    def unit_names(self) -> list[str]:
        return [f"{c}/{u}" for c, u in self.units]

    @property
    def member_names(self) -> list[str]:
        return [f"{loop}|{k}" for loop, k in self.loop_members]

    def targets(self) -> list[str]:
        """The latent targets evidence rows speak about, in the model's order: every (channel, stage)
        grid cell, every (unit, stage) cell, every constraint, then (with a route) every channel's reach of
        the route's end stage through the route (``"<channel>|<route>"``)."""
        return ([f"{c}|{s}" for c in self.channels for s in self.stages]
                + [f"{u}|{s}" for u in self.unit_names for s in self.stages]
                + list(self.constraints)
                + ([f"{c}|{self.route}" for c in self.channels] if self.has_route else []))

    def coords(self) -> dict[str, list[str]]:
        return {
            "channel": self.channels, "stage": self.stages, "constraint": self.constraints,
            "chain_stage": self.cell_names, "link": self.link_names, "loop": self.loops,
            "loop_member": self.member_names, "unit": self.unit_names, "tier": self.tiers, "test": self.tests,
            "dimension": self.dimensions, COUNT_DIM: self.counts.indicators,
        }

    def key(self) -> tuple:
        """What a compiled model depends on (not the evidence values, not the prior hyper-parameters)."""
        return (tuple(self.channels), tuple(self.stages), tuple(self.cells), tuple(self.constraints),
                tuple(self.links), tuple(self.loop_members), tuple(self.units), tuple(self.tiers),
                tuple(self.tests), self.loading_signed, self.loading_shared > 0,
                (self.route, self.route_after, self.route_reaches, tuple(self.route_channel.tolist())),
                tuple(self.counts.indicators))


def model_structure(framework: Framework, priors: PriorSet, units: list[tuple[str, str]]) -> Structure:
    fw, pr = framework, priors
    channels, stages, constraints = fw.channel_ids, fw.stage_ids, fw.constraint_ids
    cells, alpha, beta = [], [], []
    in_chain = np.zeros((len(channels), len(stages)), dtype=bool)
    for ci, channel in enumerate(channels):
        chain = fw.chain(channel)
        params = stage_beta_parameters(pr.channels[channel].alpha, pr.channels[channel].beta,
                                       [fw.stage_share(s) for s in chain])
        for stage, (a, b) in zip(chain, params):
            cells.append((channel, stage))
            alpha.append(a)
            beta.append(b)
            in_chain[ci, stages.index(stage)] = True
    cell_index = {cell: i for i, cell in enumerate(cells)}
    links = fw.link_stages()
    members = [(loop.id, k) for loop in fw.loops for k in loop.constraints]
    loops_of = {k: sum(1 for _, kk in members if kk == k) for k in constraints}
    loop_prior = pr.loop_loadings
    dims = fw.dimensions
    weights = np.zeros((len(dims), len(channels), len(stages)))
    for d, dimension in enumerate(dims):
        for text in dimension.measures:
            channel, _, stage = text.partition(".")
            weights[d, channels.index(channel), stages.index(stage) if stage else len(stages) - 1] += 1.0
        weights[d] /= weights[d].sum()
    share = np.array([d.weight for d in dims], dtype=float)
    route = fw.routes[0] if fw.routes else None
    route_channel = np.zeros(len(channels), dtype=bool)
    after = reaches = -1
    if route is not None:
        after, reaches = stages.index(route.after), stages.index(route.reaches)
        for ci, channel in enumerate(channels):
            chain = fw.chain(channel)
            between = [st for st in chain if after < stages.index(st) < reaches]
            route_channel[ci] = route.after in chain and route.reaches in chain and bool(between)
    route_prior = pr.routes.get(route.id) if route is not None else None
    levels = {level.id: np.array([fw.level_severity(k, level.id) for k in constraints], dtype=float)
              for level in fw.levels}
    return Structure(
        channels=channels, stages=stages, constraints=constraints, links=links,
        loops=[loop.id for loop in fw.loops], loop_members=members, units=list(units),
        tiers=fw.tier_ids, tests=fw.test_ids,
        cells=cells, cell_channel=np.array([channels.index(c) for c, _ in cells], dtype=int),
        cell_stage=np.array([stages.index(s) for _, s in cells], dtype=int),
        cell_alpha=np.array(alpha), cell_beta=np.array(beta), in_chain=in_chain,
        severity_mean=np.array([pr.constraints[k].mean for k in constraints], dtype=float),
        severity_sd=np.array([pr.constraints[k].sd for k in constraints], dtype=float),
        link_cell=np.array([cell_index[(c, s)] for c, _, s in links], dtype=int),
        link_channel=np.array([channels.index(c) for c, _, _ in links], dtype=int),
        link_constraint=np.array([constraints.index(k) for _, k, _ in links], dtype=int),
        loading_mean=float(pr.loadings.mean or 0.0), loading_sd=float(pr.loadings.sd),
        loading_signed=pr.loadings.signed,
        member_loop=np.array([[loop.id for loop in fw.loops].index(loop) for loop, _ in members], dtype=int),
        member_constraint=np.array([constraints.index(k) for _, k in members], dtype=int),
        member_scale=np.array([1.0 / np.sqrt(loops_of[k]) for _, k in members], dtype=float),
        loop_alpha=loop_prior.alpha if loop_prior else 1.0, loop_beta=loop_prior.beta if loop_prior else 1.0,
        unit_channel=np.array([channels.index(c) for c, _ in units], dtype=int),
        unit_sd=float(pr.units.sd),
        dimensions=[d.id for d in dims], dimension_weights=weights,
        dimension_share=share / share.sum() if len(share) else share,
        route=route.id if route is not None else "", route_after=after, route_reaches=reaches,
        route_channel=route_channel,
        route_alpha=route_prior.alpha if route_prior else 1.0, route_beta=route_prior.beta if route_prior else 1.0,
        loading_shared=float(pr.loadings.shared) if pr.loadings.signed else 0.0,
        levels=levels,
        counts=count_structure(fw, pr),
    )


def units_from_rows(evidence, framework: Framework) -> list[tuple[str, str]]:
    """The (channel, unit) pairs named in evidence rows, sorted."""
    if "unit" not in evidence.columns or not len(evidence):
        return []
    named = evidence[(evidence["unit"].astype(str) != "") & evidence["target"].isin(framework.channel_ids)]
    return sorted({(str(c), str(u)) for c, u in zip(named["target"], named["unit"])})


_STRUCTURES: "weakref.WeakKeyDictionary[Study, Structure]" = weakref.WeakKeyDictionary()


def structure_of(study: Study) -> Structure:
    """The structure of a study's model, computed once per study."""
    found = _STRUCTURES.get(study)
    if found is None:
        found = model_structure(study.framework, study.priors, units_from_rows(study.evidence, study.framework))
        _STRUCTURES[study] = found
    return found


class GraphCache:
    """The most recent ``limit`` values computed from a study's framework, prior set and units alone (a
    model's graph, its forward-simulated prior), with an extra key. Keyed by the frozen objects themselves,
    not equal copies -- a study made by ``with_evidence`` shares them with the study it came from -- through
    their ids, each entry checked by weak references (an id is reused once its object is gone)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._entries: "OrderedDict[tuple, tuple]" = OrderedDict()

    def _key(self, study: Study, extra) -> tuple:
        return (id(study.framework), id(study.priors), tuple(structure_of(study).units), extra)

    def get(self, study: Study, extra=()):
        key = self._key(study, extra)
        entry = self._entries.get(key)
        if entry is None or entry[0]() is not study.framework or entry[1]() is not study.priors:
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def put(self, study: Study, value, extra=()) -> None:
        self._entries[self._key(study, extra)] = (weakref.ref(study.framework), weakref.ref(study.priors), value)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
