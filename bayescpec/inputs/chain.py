"""Checks of a framework's conversion chain: stages, the links of constraints to channel stages, the
constraint feedback loops, the dimensions of the overall quantity and the stage of each indicator.

:func:`chain_problems` returns every problem found (it never raises); ``load_framework`` reports them
together with the rest, each at the line of the key it is about.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import Problem, allowed_list, did_you_mean

__all__ = ["chain_problems", "parse_measure"]

ANY_CHANNEL = "any_channel"


def _unknown(name: str, kind: str, allowed: list[str]) -> str:
    return f"unknown {kind} {name!r}{did_you_mean(name, allowed)}; allowed: {allowed_list(allowed)}"


def parse_measure(text: str) -> tuple[str, str | None]:
    """``"sez.learning"`` -> ("sez", "learning"); ``"sez"`` -> ("sez", None) (the whole chain)."""
    channel, _, stage = text.partition(".")
    return channel, (stage or None)


def chain_problems(framework, problem: Callable[[tuple, str], Problem]) -> list[Problem]:
    """Every problem with the chain, links, loops, dimensions and indicator stages of ``framework``;
    ``problem(loc, message)`` makes a located Problem."""
    problems: list[Problem] = []
    add = lambda loc, message: problems.append(problem(loc, message))  # noqa: E731
    stage_ids = [s.id for s in framework.stages]
    channels = framework.channel_ids
    constraints = framework.constraint_ids

    seen: set[str] = set()
    for index, stage in enumerate(framework.stages):
        if stage.id in seen:
            add(("stages", index, "id"), f"duplicate id {stage.id!r}")
        seen.add(stage.id)
    for index, channel in enumerate(framework.channels):
        if channel.stages is None:
            continue
        loc = ("channels", index, "stages")
        if not stage_ids:
            add(loc, "a channel lists stages, but the framework declares no [[stages]]")
            continue
        if not channel.stages:
            add(loc, "a chain needs at least one stage")
        unknown = [s for s in channel.stages if s not in stage_ids]
        for name in unknown:
            add(loc, _unknown(name, "stage", stage_ids))
        known = [s for s in channel.stages if s in stage_ids]
        if known != sorted(known, key=stage_ids.index) or len(set(known)) != len(known):
            add(loc, f"stages must follow the framework's order without repeats ({', '.join(stage_ids)}); "
                     f"found {', '.join(channel.stages)}")

    chains = {c: (framework.chain(c) if not _bad_chain(framework, c) else []) for c in channels}
    if stage_ids:
        for index, constraint in enumerate(framework.constraints):
            if constraint.binds:
                add(("constraints", index, "binds"),
                    "with [[stages]] declared, say where a constraint binds with a [[links]] entry "
                    "(constraint, channel, stage, basis) instead of 'binds'")
    pairs = {(ch, con) for ch, con in framework._bind_pairs()}
    for index, link in enumerate(framework.links):
        loc = ("links", index)
        if link.constraint not in constraints:
            add(loc + ("constraint",), _unknown(link.constraint, "constraint", constraints))
        if link.channel not in channels:
            add(loc + ("channel",), _unknown(link.channel, "channel", channels))
            continue
        if link.stage is None:
            if stage_ids:
                add(loc + ("stage",), f"give the stage of {link.channel!r} that {link.constraint!r} binds; "
                                      f"allowed: {', '.join(chains[link.channel])}")
        elif not stage_ids:
            add(loc + ("stage",), "the framework declares no [[stages]]; leave 'stage' out")
        elif link.stage not in chains[link.channel]:
            add(loc + ("stage",), _unknown(link.stage, f"stage of {link.channel!r}", chains[link.channel]))
        if (link.channel, link.constraint) in pairs:
            add(loc, f"{link.constraint!r} already binds {link.channel!r}; one link per constraint and channel")
        pairs.add((link.channel, link.constraint))

    seen = set()
    for index, loop in enumerate(framework.loops):
        if loop.id in seen:
            add(("loops", index, "id"), f"duplicate id {loop.id!r}")
        seen.add(loop.id)
        for name in loop.constraints:
            if name not in constraints:
                add(("loops", index, "constraints"), _unknown(name, "constraint", constraints))
        if len(set(loop.constraints)) != len(loop.constraints):
            add(("loops", index, "constraints"), "a constraint is listed twice")

    seen = set()
    for index, dimension in enumerate(framework.dimensions):
        if dimension.id in seen:
            add(("dimensions", index, "id"), f"duplicate id {dimension.id!r}")
        seen.add(dimension.id)
        for text in dimension.measures:
            channel, stage = parse_measure(text)
            if channel not in channels:
                add(("dimensions", index, "measures"), _unknown(channel, "channel", channels)
                    + " (a measure is 'channel' or 'channel.stage')")
            elif stage is not None and stage not in chains[channel]:
                add(("dimensions", index, "measures"), _unknown(stage, f"stage of {channel!r}", chains[channel]))

    # an indicator may observe a route ([[routes]]): the reach of its end stage through it
    route_ids = [r.id for r in getattr(framework, "routes", [])]
    for index, indicator in enumerate(framework.indicators):
        loc = ("indicators", index, "stage")
        about_channel = indicator.target in channels or indicator.target == ANY_CHANNEL
        if not about_channel and indicator.target not in {c.id for c in framework.constraints}:
            continue  # an unknown target is reported as such; whether it may have a stage is moot
        if indicator.stage is None:
            if stage_ids and about_channel:
                add(loc, f"indicator {indicator.id!r} is about a channel: give the stage of the chain it "
                         f"observes; allowed: {', '.join(stage_ids)}")
        elif not about_channel:
            add(loc, f"indicator {indicator.id!r} is about a constraint; only channel indicators have a stage")
        elif not stage_ids:
            add(loc, "the framework declares no [[stages]]; leave 'stage' out")
        elif indicator.stage not in (chains.get(indicator.target) or stage_ids) + route_ids:
            allowed = (chains.get(indicator.target) or stage_ids) + route_ids
            add(loc, _unknown(indicator.stage, "stage", allowed))
    return problems


def _bad_chain(framework, channel_id: str) -> bool:
    channel = next(c for c in framework.channels if c.id == channel_id)
    stage_ids = [s.id for s in framework.stages]
    return channel.stages is not None and (not stage_ids or not channel.stages
                                           or any(s not in stage_ids for s in channel.stages))


def catalogue_problems(framework, located) -> list:
    """The indicator catalogue: every indicator's target and tiers exist and agree (a tier about
    constraints for a constraint), a measure has its baseline and scale, a count its two rates
    (converting above not converting). ``located(loc, message)`` makes a located problem."""
    problems: list = []
    channels, constraints = framework.channel_ids, framework.constraint_ids
    tiers = {t.id: t for t in framework.tiers}
    if not any(t.targets == "channel" for t in framework.tiers):
        problems.append(located(("tiers",), "no tier targets channels"))
    targets = channels + constraints + [ANY_CHANNEL]
    for index, indicator in enumerate(framework.indicators):
        loc = ("indicators", index)
        if indicator.target not in targets:
            problems.append(located(loc + ("target",), _unknown(indicator.target, "target", targets)))
        target_type = "constraint" if indicator.target in constraints else "channel"
        for tier in indicator.tiers:
            if indicator.target not in targets or (indicator.target in channels and indicator.target in constraints):
                break  # an unknown target or one both a channel and a constraint (reported above): no tier judged
            if tier not in tiers:
                problems.append(located(loc + ("tiers",), _unknown(tier, "tier", list(tiers))))
            elif tiers[tier].targets != target_type:
                problems.append(located(loc + ("tiers",),
                                         f"tier {tier!r} is about a {tiers[tier].targets}, "
                                         f"but target {indicator.target!r} is a {target_type}"))
        if "measure" in indicator.kinds and (indicator.baseline is None or indicator.scale is None):
            problems.append(located(loc + ("kinds",),
                                     "kind 'measure' needs both 'baseline' and 'scale' to standardise values"))
        rates = (indicator.rate_converting, indicator.rate_not_converting)
        if "count" in indicator.kinds and rates[0] is None and rates[1] is None:
            problems.append(located(loc + ("kinds",),
                                     "kind 'count' needs rate_converting and rate_not_converting: the share of "
                                     "units (firms, plots, workers, ...) showing the indicator when the chain "
                                     "reaches its stage and when it does not -- modelling assumptions, stated "
                                     "in reference_note (or drop 'count' from kinds)"))
        elif (rates[0] is None) != (rates[1] is None):
            problems.append(located(loc, "give both rate_converting and rate_not_converting, or neither"))
        elif rates[0] is not None and rates[0] <= rates[1]:
            problems.append(located(loc + ("rate_converting",),
                                     f"rate_converting ({rates[0]}) must exceed rate_not_converting ({rates[1]})"))
    return problems
