"""Priors in the analyst's own words: "I am 90% sure SEZ conversion is between 0.2 and 0.6".

Wherever a prior set gives a prior (a Beta on a probability, a Normal on a logit-scale severity or
loading, a half-normal spread), it may instead say ``between = [lower, upper]`` and ``mass = 0.9``.
The statement is solved into the family's parameters as the *maximum-entropy* distribution of that
family with that mass in the interval -- the least committal prior that says what the analyst said --
by PreliZ (``preliz.maxent``, ArviZ's elicitation library). The statement stays beside the solved
parameters, so a result's provenance shows both ("90% in [0.2, 0.6]" and "Beta(mean 0.4, concentration
15.2)").

A statement that cannot be solved -- an interval outside the family's support, a mass outside (0, 1),
lower >= upper, or one that only a distribution beyond the prior set's limits could meet (90% inside
[0.495, 0.505] needs a Beta concentration above 10 000) -- raises :class:`StatementError` naming the key
(``between``, ``mass``) it is about; :mod:`.specread` places it at its file, line and key.

PreliZ takes about two seconds to import: it is imported only when a statement is solved (and when a
prior is described by :mod:`bayescpec.outputs.priors`), never for prior sets without statements.
Nothing is cached: each load of a prior set solves its statements again.

A new kind of prior joins by deriving from :class:`StatedPrior` (in :mod:`.spec`, through ``_Prior``)
with its ``STATEMENT_FAMILY``, declaring ``between`` and ``mass`` after its parameters; a new family
(say a Gamma for a rate) is one more :class:`Family` here: its support, the names of its parameters
in a prior set and the conversions to and from PreliZ. :func:`prior_entries` then finds it in any
section, and ``priors show`` lists and draws it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, TypeAdapter, ValidationError, model_validator

__all__ = [
    "STATEMENT_KEYS",
    "BETA",
    "NORMAL",
    "HALF_NORMAL",
    "Family",
    "StatedPrior",
    "StatementError",
    "solve_statement",
    "statement_text",
    "PriorEntry",
    "prior_entries",
    "statement_records",
    "preliz",
]

#: the keys of a statement, written where a prior's own parameters would be
STATEMENT_KEYS = ("between", "mass")
#: how far the solved distribution's mass in the interval may be from the stated mass (absolute); the
#: optimiser meets it to about 1e-7, so a larger gap means no distribution of the family met it
MASS_TOLERANCE = 1e-4


def preliz():
    """PreliZ, imported on first use. Its import sets matplotlib's ``savefig.bbox`` to "tight" for the
    whole process (which would change every figure bayescpec saves), so the import runs inside
    ``rc_context``, which puts matplotlib's settings back."""
    import matplotlib

    with matplotlib.rc_context():
        import preliz as pz
    return pz


def _number(value: float) -> str:
    """A solved number as a reader wants it: 3 significant digits (whole numbers from 1000 on)."""
    value = float(value)
    return f"{value:.0f}" if abs(value) >= 999.5 else f"{value:.3g}"


def _written(value: float) -> str:
    """A number the analyst wrote, as written (0.5000001 stays itself; 0.1 is not 0.1000000000000000055)."""
    return f"{float(value):.12g}"


@dataclass(frozen=True)
class Family:
    """A family of priors: what its parameters mean in a prior set and how PreliZ knows it."""

    name: str  # as written in provenance: "Beta", "Normal", "HalfNormal"
    quantity: str  # what it is a prior on, in words: "a probability", "the logit scale"
    support: tuple[float, float]
    #: the names of its parameters in a prior set, in the order they are written
    names: tuple[str, ...]
    #: the prior set's parameters (e.g. mean, concentration) -> a PreliZ distribution
    to_preliz: Callable[[Any, Mapping[str, float]], Any]
    #: a solved PreliZ distribution -> the prior set's parameters
    from_preliz: Callable[[Any], dict[str, float]]
    #: the PreliZ distribution with every parameter free (what maxent solves)
    free: Callable[[Any], Any]

    def label(self, parameters: Mapping[str, float]) -> str:
        """``Beta(mean 0.4, concentration 15.2)``."""
        return f"{self.name}(" + ", ".join(f"{k} {_number(v)}" for k, v in parameters.items()) + ")"

    def support_text(self) -> str:
        low, high = (("−∞" if math.isinf(x) and x < 0 else "∞" if math.isinf(x) else _number(x)) for x in self.support)
        return f"[{low}, {high}]"


BETA = Family(
    "Beta", "a probability", (0.0, 1.0), ("mean", "concentration"),
    to_preliz=lambda pz, p: pz.Beta(alpha=p["mean"] * p["concentration"], beta=(1 - p["mean"]) * p["concentration"]),
    from_preliz=lambda d: {"mean": float(d.alpha / (d.alpha + d.beta)), "concentration": float(d.alpha + d.beta)},
    free=lambda pz: pz.Beta(),
)
NORMAL = Family(
    "Normal", "the logit scale", (-math.inf, math.inf), ("mean", "sd"),
    to_preliz=lambda pz, p: pz.Normal(mu=p["mean"], sigma=p["sd"]),
    from_preliz=lambda d: {"mean": float(d.mu), "sd": float(d.sigma)},
    free=lambda pz: pz.Normal(),
)
HALF_NORMAL = Family(
    "HalfNormal", "a spread on the logit scale", (0.0, math.inf), ("sd",),
    to_preliz=lambda pz, p: pz.HalfNormal(sigma=p["sd"]),
    from_preliz=lambda d: {"sd": float(d.sigma)},
    free=lambda pz: pz.HalfNormal(),
)


class StatementError(ValueError):
    """A statement no distribution of its family can meet, or one written wrongly. ``key`` is the key
    it is about (``between``, ``mass``, or a parameter written beside the statement)."""

    def __init__(self, key: str | None, message: str):
        super().__init__(message)
        self.key = key


def statement_text(between: tuple[float, float], mass: float) -> str:
    """``90% in [0.2, 0.6]``."""
    return f"{_written(mass * 100)}% in [{_written(between[0])}, {_written(between[1])}]"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_between(value, family: Family) -> tuple[float, float]:
    wanted = (f"two numbers [lower, upper] with lower < upper, inside {family.support_text()} "
              f"(a {family.name} prior is on {family.quantity})")
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value):
        raise StatementError("between", f"found {value!r}; allowed: {wanted}")
    lower, upper = float(value[0]), float(value[1])
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise StatementError("between", f"found {list(value)!r}; allowed: finite numbers, {wanted}")
    if lower >= upper:
        raise StatementError("between", f"found [{_written(lower)}, {_written(upper)}]: lower is not below upper; "
                                        f"allowed: {wanted}")
    low, high = family.support
    if lower < low or upper > high:
        raise StatementError("between", f"found [{_written(lower)}, {_written(upper)}], outside "
                                        f"{family.support_text()}; allowed: {wanted}")
    if lower == low and upper == high:
        raise StatementError("between", f"found [{_written(lower)}, {_written(upper)}]: the whole range, which every "
                                        f"{family.name} covers entirely; allowed: an interval that leaves some of "
                                        f"{family.support_text()} out")
    return lower, upper


def _check_mass(value) -> float:
    wanted = "a probability strictly between 0 and 1 (90% is written 0.9)"
    if not _is_number(value) or not math.isfinite(value) or not 0 < value < 1:
        if _is_number(value) and 1 < value < 100:  # a percentage
            raise StatementError("mass", f"found {value!r} ({_written(value)}% is written {_written(value / 100)}); "
                                         "allowed: a probability strictly between 0 and 1")
        raise StatementError("mass", f"found {value!r}; allowed: {wanted}")
    return float(value)


def _solve(family: Family, lower: float, upper: float, mass: float) -> dict[str, float]:
    """The prior set's parameters of the maximum-entropy ``family`` member with ``mass`` in [lower, upper]."""
    import warnings

    pz = preliz()
    distribution = family.free(pz)
    with warnings.catch_warnings():  # a missed mass is reported below, as a problem of the statement
        warnings.simplefilter("ignore")
        try:
            pz.maxent(distribution, lower, upper, mass, plot=False)
        except Exception as exc:  # noqa: BLE001 - whatever the optimiser met, it is this statement's problem
            raise StatementError("between", f"found {statement_text((lower, upper), mass)}: the search for the "
                                            f"{family.name} that meets it failed ({exc}); allowed: a statement a "
                                            "distribution of the family can meet") from None
    reached = float(distribution.cdf(upper) - distribution.cdf(lower))
    if not math.isfinite(reached) or abs(reached - mass) > MASS_TOLERANCE:
        raise StatementError("between", f"found {statement_text((lower, upper), mass)}: no {family.name} puts "
                                        f"that mass there (the closest found puts {_number(reached * 100)}%); "
                                        "allowed: a statement a distribution of the family can meet")
    return family.from_preliz(distribution)


def solve_statement(model: type[BaseModel], family: Family, data: Any) -> Any:
    """``data`` (a prior as written in a prior set) with a statement solved: ``mean``/``concentration``
    (or the family's other parameters) filled in beside ``between`` and ``mass``. Data without a
    statement, or not a table, is returned as it is. Raises :class:`StatementError`.

    The solved parameters are checked against ``model``'s own fields (the prior set's limits, e.g. a
    concentration of at most 10 000), so a statement is held to the limits a direct prior is."""
    if not isinstance(data, Mapping) or not any(key in data for key in STATEMENT_KEYS):
        return data
    written = [key for key in data if key not in STATEMENT_KEYS and key in model.model_fields]
    if written:
        raise StatementError(written[0], f"found {written[0]} = {data[written[0]]!r} beside between/mass; allowed: "
                                         "either the parameters or the statement (between = [lower, upper] and "
                                         "mass), not both")
    for key in STATEMENT_KEYS:
        if key not in data:
            other = "mass" if key == "between" else "between"
            example = "mass = 0.9" if key == "mass" else "between = [lower, upper]"
            raise StatementError(key, f"required with {other}: found {other} alone; allowed: both keys, e.g. {example}")
    lower, upper = _check_between(data["between"], family)
    mass = _check_mass(data["mass"])
    solved = _solve(family, lower, upper, mass)
    for name, value in solved.items():
        try:
            field = model.model_fields[name]
            kind = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            TypeAdapter(kind).validate_python(value)
        except ValidationError as exc:
            limit = exc.errors()[0]["msg"].removeprefix("Input should be ")
            raise StatementError("between", f"found {statement_text((lower, upper), mass)}: the {family.name} with "
                                            f"the most entropy that meets it has {name} {_number(value)}, but a prior "
                                            f"set's {name} must be {limit}; allowed: a wider interval or a smaller "
                                            "mass") from None
    return {**data, **solved, "between": (lower, upper), "mass": mass}


class StatedPrior(BaseModel):
    """A prior of one family (``STATEMENT_FAMILY``) whose table may hold a statement instead of the
    family's parameters: ``between`` and ``mass`` are solved into them before the fields are validated
    (the subclass declares its parameters, then ``between`` and ``mass``, each defaulting to None)."""

    STATEMENT_FAMILY: ClassVar[Family]

    @model_validator(mode="before")
    @classmethod
    def _solve_statement(cls, data: Any) -> Any:
        return solve_statement(cls, cls.STATEMENT_FAMILY, data)

    @property
    def family(self) -> Family:
        """The family this prior is (a statement is always solved in ``STATEMENT_FAMILY``)."""
        return self.STATEMENT_FAMILY

    @property
    def parameters(self) -> dict[str, float]:
        """The family's parameters as a prior set writes them (e.g. mean and concentration)."""
        return {name: getattr(self, name) for name in self.family.names}


@dataclass(frozen=True)
class PriorEntry:
    """One prior of a prior set: its dotted key (``channels.sez``), the section it belongs to (the key
    up to the first name of a table of priors: ``channels``, ``diagnosticity.tiers``; a single prior is
    its own section, ``loadings``) and the prior itself."""

    key: str
    section: str
    prior: Any

    @property
    def name(self) -> str:
        """The key within its section (``sez``, ``context.sensitivity``); the key for a single prior."""
        return self.key.removeprefix(self.section + ".") if self.key != self.section else self.key


def prior_entries(model: BaseModel) -> list[PriorEntry]:
    """Every prior inside ``model`` (a prior set), in file order: the models with a ``family`` (a
    :class:`Family`), found in fields, tables and lists at any depth -- so a section added to the prior
    set is found without being named here."""
    return list(_entries(model, (), None))


def _entries(value, key: tuple, section: tuple | None) -> Iterator[PriorEntry]:
    def dotted(parts: tuple) -> str:
        return ".".join(str(part) for part in parts)

    if isinstance(getattr(value, "family", None), Family):
        yield PriorEntry(dotted(key), dotted(section or key), value)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _entries(getattr(value, name), key + (name,), section)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _entries(item, key + (name,), section or key)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _entries(item, key + (index,), section or key)


def statement_records(model: BaseModel) -> list[dict]:
    """The priors of ``model`` given as statements: key, the statement (words and numbers), the family
    and the solved parameters -- what a result's provenance records."""
    records = []
    for entry in prior_entries(model):
        prior = entry.prior
        if getattr(prior, "between", None) is None:
            continue
        family, parameters = prior.family, prior.parameters
        records.append({
            "key": entry.key,
            "statement": statement_text(prior.between, prior.mass),
            "between": list(prior.between),
            "mass": prior.mass,
            "family": family.name,
            "solved": parameters,
            "distribution": family.label(parameters),
        })
    return records
