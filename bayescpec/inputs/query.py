"""Propositions as small queries over the latent quantities.

A query is a restricted Python expression, parsed with :mod:`ast` and never passed to ``eval``::

    theta[sez] > tau and theta[gwadar] > tau
    reach[sez][learning] > tau
    any(reach[sez, digital, gwadar][productivity] > tau)
    interruption[security] > delta
    under(theta[digital], energy_debt=unfavourable) < tau           # a counterfactual
    swing(theta[sez], energy_debt) > delta                            # what the constraint *can* do
    sum(route_reach) <= 0.1 * sum(reach[:][productivity])
    reach[sez][productivity] > tau given severity[security] > 0       # a conditional: P(B | A)

Quantities (their dimensions in brackets):

* ``theta[channel]`` -- the probability that the channel's conversion chain completes;
* ``base_theta[channel]`` -- the same without any constraint (every severity at "typical");
* ``reach[channel][stage]`` -- the probability that the chain reaches (passes) a stage;
* ``severity[constraint]`` -- a constraint's severity (logit scale, 0 = typical);
* ``constraint_effect[channel]`` -- base_theta - theta: how much the constraints lower theta;
* ``interruption[constraint]`` -- the largest reduction of a linked channel's theta by the constraint
  (theta with the severity at "typical" minus theta with it);
* ``route_probability[channel]``, ``route_reach[channel]``, ``route_share[channel]`` -- the framework's
  bypass route (``[[routes]]``, e.g. the enclave route): its probability, the reach of its end stage
  through it, and that reach's share of the end stage's whole reach (0 without a route);
* ``nqpf_dimension[dimension]`` -- a dimension of the overall quantity (mean reach of its measures);
* ``nqpf`` -- the overall quantity (weighted mean of the dimensions).

``tau`` is the conversion threshold and ``delta`` the materiality threshold (framework file).
Operators: comparisons, ``and``/``or``/``not``, ``+ - * /``; ``all any count sum mean max min`` reduce
over every remaining dimension. A subscript selects labels of the quantity's dimensions in order
(``reach[sez]`` leaves the stages; ``reach[sez][learning]`` one number; ``reach[:][learning]`` every
channel at one stage). A query must reduce to one true/false value per draw, and it must depend on a
quantity.

**Counterfactuals.** The framework names *levels* of every constraint on its standardised severity
scale (``[[levels]]``, e.g. ``favourable`` and ``unfavourable``). ``under(x, k=level, ...)`` is the
quantity ``x`` at every draw with the named constraints held at those levels (every other constraint
as estimated): the model recomputes it from the draw's parameters, keeping what the evidence pinned
(:mod:`bayescpec.engine.scenario`). ``swing(x, k)`` is ``under(x, k=favourable) - under(x,
k=unfavourable)``: what the constraint *can* do to ``x`` between its two named levels, a statement about
its loading rather than about today's severity; ``swing(x, k, j=level)`` holds ``j`` at a level meanwhile.

**Conditionals.** ``B given A`` is reported as P(B | A) = P(A and B) / P(A), with P(A) and the number of
draws in A beside it; ``given`` may appear once, at the top level. A material implication ("not A or
B") is not part of the language: it is true in every draw where A fails, so evidence that A is unlikely
would make it likely whatever it says about B.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import BayescpecError, did_you_mean

__all__ = ["QUANTITY_DIMS", "QueryError", "evaluate_query", "evaluate_proposition",
           "split_given", "counterfactual_settings", "setting_key", "Counterfactual", "SWING_LEVELS"]

#: the quantity names a query may use and the dimensions each is indexed by, in subscript order
QUANTITY_DIMS: dict[str, tuple[str, ...]] = {
    "theta": ("channel",),
    "base_theta": ("channel",),
    "reach": ("channel", "stage"),
    "severity": ("constraint",),
    "constraint_effect": ("channel",),
    "interruption": ("constraint",),
    "route_probability": ("channel",),
    "route_reach": ("channel",),
    "route_share": ("channel",),
    "nqpf_dimension": ("dimension",),
    "nqpf": (),
}
#: label dimensions (everything a reduction may reduce over)
LABEL_DIMS = ("channel", "stage", "constraint", "dimension")
_REDUCE = {"all", "any", "mean", "count", "sum", "max", "min"}
_COUNTERFACTUAL = {"under", "swing"}
_COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less, ast.LtE: np.less_equal}
_ARITH = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}
_CONSTANTS = ("tau", "delta")
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
#: the two levels ``swing(x, k)`` compares: x with k favourable minus x with k unfavourable
SWING_LEVELS = ("favourable", "unfavourable")

#: a counterfactual setting: (constraint, level) pairs, sorted
Setting = tuple[tuple[str, str], ...]
#: what evaluates quantities under a setting: setting -> {quantity name: array over the sample dims}
Counterfactual = Callable[[Setting], Mapping[str, xr.DataArray]]


class QueryError(BayescpecError, ValueError):
    """A query that does not parse, names something unknown, does not reduce to one value, mixes
    numbers and true/false statements, or cannot be false (or true) whatever the values."""


def _shown(query: str, limit: int = 80) -> str:
    return repr(query if len(query) <= limit else query[: limit - 3] + "...")


def setting_key(setting: Setting) -> str:
    """The label of a counterfactual setting, as stored in a result: ``"energy_debt=unfavourable"``."""
    return ",".join(f"{k}={level}" for k, level in setting)


def split_given(query: str) -> tuple[str, str | None]:
    """``"B given A"`` -> ``("B", "A")``; a query without ``given`` -> ``(query, None)``. ``given`` counts
    only outside brackets; it may appear once."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(query).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return query, None  # the parser reports what is wrong
    depth, found = 0, []
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.NAME and tok.string == "given":
            if depth != 0:
                raise QueryError(f"query {_shown(query)}: 'given' may only join a statement and its condition at "
                                 "the top level (B given A), not inside brackets")
            found.append(tok)
    if not found:
        return query, None
    if len(found) > 1:
        raise QueryError(f"query {_shown(query)}: 'given' appears {len(found)} times; allowed: once (B given A)")
    lines = query.splitlines(keepends=True) or [query]
    offset = sum(len(line) for line in lines[: found[0].start[0] - 1]) + found[0].start[1]
    statement, condition = query[:offset].strip(), query[offset + len("given"):].strip()
    if not statement or not condition:
        raise QueryError(f"query {_shown(query)}: 'given' needs a statement before it and a condition after it "
                         "(B given A)")
    return statement, condition


def _parse(query: str) -> ast.Expression:
    try:
        return ast.parse(query, mode="eval")
    except SyntaxError as exc:
        raise QueryError(f"cannot parse query {_shown(query)}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):  # NUL characters; absurd nesting
        raise QueryError(f"cannot parse query {_shown(query)}: nested too deeply") from None


def _labels(node: ast.expr) -> list[str] | None:
    """The labels a subscript selects; None for ``:`` (every label)."""
    if isinstance(node, ast.Slice) and node.lower is None and node.upper is None and node.step is None:
        return None
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    labels = []
    for item in items:
        if isinstance(item, ast.Name):
            labels.append(item.id)
        elif isinstance(item, ast.Constant) and isinstance(item.value, str):
            labels.append(item.value)
        else:
            raise QueryError("an index must be a name or ':' (every label), e.g. theta[sez], reach[sez][learning] "
                             "or reach[:][learning]")
    return labels


def _is_boolean(value) -> bool:
    """A true/false statement: over the draws, or between constants (``tau > 0.1`` is a numpy bool)."""
    if isinstance(value, xr.DataArray):
        return value.dtype == bool
    return isinstance(value, (bool, np.bool_))


def _statement(value, node: ast.AST, what: str):
    if not _is_boolean(value):
        raise QueryError(f"{what} takes a true/false statement such as theta[sez] > tau; found "
                         f"{ast.unparse(node)!r}, a number")
    return value


def _number(value, node: ast.AST, what: str):
    if _is_boolean(value):
        raise QueryError(f"{what} takes numbers; found {ast.unparse(node)!r}, a true/false statement")
    return value


def _settings(node: ast.Call, names: Mapping[str, list[str]], levels: Sequence[str]) -> list[Setting]:
    """The counterfactual setting(s) of an ``under``/``swing`` call: one for under, two for swing."""
    name = node.func.id
    held: dict[str, str] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise QueryError(f"{name}() takes constraint=level pairs, e.g. {name}(theta[sez], energy_debt=unfavourable)")
        if keyword.arg not in names["constraint"]:
            raise QueryError(f"{name}(): {keyword.arg!r} is not a constraint{did_you_mean(keyword.arg, names['constraint'])}; "
                             f"allowed: {', '.join(names['constraint']) or '(the framework has no constraints)'}")
        value = keyword.value
        level = value.id if isinstance(value, ast.Name) else value.value if (
            isinstance(value, ast.Constant) and isinstance(value.value, str)) else None
        if level not in levels:
            shown = ast.unparse(value)
            raise QueryError(f"{name}(): {keyword.arg}={shown}: {shown!r} is not a level"
                             f"{did_you_mean(str(level), list(levels))}; allowed: "
                             f"{', '.join(levels) or '(the framework declares no [[levels]])'}")
        held[keyword.arg] = level
    if name == "under":
        if len(node.args) != 1:
            raise QueryError("under(x, constraint=level, ...) takes one quantity and constraint=level pairs")
        if not held:
            raise QueryError("under(x, constraint=level, ...) needs at least one constraint=level pair")
        return [tuple(sorted(held.items()))]
    if len(node.args) != 2 or not isinstance(node.args[1], ast.Name):
        raise QueryError("swing(x, constraint) takes a quantity and a constraint, e.g. swing(theta[sez], energy_debt), "
                         "and optionally other constraints held at a level")
    constraint = node.args[1].id
    if constraint not in names["constraint"]:
        raise QueryError(f"swing(): {constraint!r} is not a constraint{did_you_mean(constraint, names['constraint'])}; "
                         f"allowed: {', '.join(names['constraint']) or '(the framework has no constraints)'}")
    if constraint in held:
        raise QueryError(f"swing(x, {constraint}): {constraint} is the constraint that swings; it cannot also be held")
    missing = [level for level in SWING_LEVELS if level not in levels]
    if missing:
        raise QueryError(f"swing() compares the levels {' and '.join(SWING_LEVELS)}; the framework's [[levels]] lack "
                         f"{', '.join(missing)}")
    return [tuple(sorted({**held, constraint: level}.items())) for level in SWING_LEVELS]


class _Evaluator:
    def __init__(self, env: Mapping[str, xr.DataArray], names: Mapping[str, list[str]], constants: dict,
                 counterfactual: Counterfactual | None = None, levels: Sequence[str] = (), inside: bool = False):
        self.env, self.names, self.constants = env, names, constants
        self.counterfactual, self.levels, self.inside = counterfactual, tuple(levels), inside

    def __call__(self, node: ast.AST):  # noqa: C901 - one branch per node type
        if isinstance(node, ast.Expression):
            return self(node.body)
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            values = [_statement(self(v), v, f"'{word}'") for v in node.values]
            out = values[0]
            for value in values[1:]:
                out = (out & value) if isinstance(node.op, ast.And) else (out | value)
            return out
        if isinstance(node, ast.UnaryOp):
            value = self(node.operand)
            if isinstance(node.op, ast.Not):
                return ~_statement(value, node.operand, "'not'")
            if isinstance(node.op, ast.USub):
                return -_number(value, node.operand, "'-'")
            raise QueryError(f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.Compare):
            left = _number(self(node.left), node.left, "a comparison")
            out = None
            for op, right_node in zip(node.ops, node.comparators):
                if type(op) not in _COMPARE:
                    raise QueryError("only the comparisons > >= < <= are allowed")
                right = _number(self(right_node), right_node, "a comparison")
                part = _COMPARE[type(op)](left, right)
                out = part if out is None else (out & part)
                left = right
            return out
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _ARITH:
                raise QueryError("only + - * / are allowed")
            what = f"'{_SYMBOLS[type(node.op)]}'"
            return _ARITH[type(node.op)](_number(self(node.left), node.left, what),
                                         _number(self(node.right), node.right, what))
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            try:
                return float(node.value)
            except OverflowError:
                raise QueryError(f"the number {str(node.value)[:20]}... is too large") from None
        if isinstance(node, ast.Name):
            if node.id in self.constants:
                return self.constants[node.id]
            if node.id in QUANTITY_DIMS:
                return self._quantity(node.id)
            if node.id == "given":
                raise QueryError("'given' joins a statement and its condition at the top level: B given A")
            raise QueryError(f"unknown name {node.id!r}{did_you_mean(node.id, [*_CONSTANTS, *QUANTITY_DIMS])}; "
                             f"allowed: {', '.join([*_CONSTANTS, *QUANTITY_DIMS])}")
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise QueryError(f"{type(node).__name__} is not allowed in a query")

    def _quantity(self, name: str):
        if name not in self.env:
            raise QueryError(f"the quantity {name!r} is not available here (a result made before it existed?)")
        return self.env[name]

    def _subscript(self, node: ast.Subscript):
        slices = []
        while isinstance(node, ast.Subscript):
            slices.append(node.slice)
            node = node.value
        slices.reverse()
        if not isinstance(node, ast.Name) or node.id not in QUANTITY_DIMS or not QUANTITY_DIMS[node.id]:
            indexable = [n for n, d in QUANTITY_DIMS.items() if d]
            raise QueryError(f"only {', '.join(indexable)} can be indexed")
        quantity, dims = node.id, QUANTITY_DIMS[node.id]
        if len(slices) > len(dims):
            raise QueryError(f"{quantity} has {len(dims)} index(es) ({', '.join(dims)}); found {len(slices)}")
        array = self._quantity(quantity)
        for dim, part in zip(dims, slices):
            labels = _labels(part)
            if labels is None:
                continue
            for label in labels:
                if label not in self.names[dim]:
                    raise QueryError(f"{quantity}[...{label}...]: {label!r} is not a {dim}"
                                     f"{did_you_mean(label, self.names[dim])}; allowed: {', '.join(self.names[dim])}")
            array = array.sel({dim: labels}) if isinstance(part, ast.Tuple) else array.sel({dim: labels[0]})
        return array

    def _under(self, node: ast.AST, setting: Setting):
        if self.counterfactual is None:
            raise QueryError("counterfactual values (under, swing) are not available here")
        inner = _Evaluator(self.counterfactual(setting), self.names, self.constants, None, self.levels, inside=True)
        return inner(node)

    def _call(self, node: ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        allowed = sorted(_REDUCE | _COUNTERFACTUAL)
        if name == "implies":
            raise QueryError("implies(a, b) is not allowed: a material implication is true in every draw where a "
                             "fails, so evidence against a would make it likely; write the claim as 'b given a' "
                             "(reported as P(b | a) beside P(a)) or as a counterfactual (under, swing)")
        if name not in _REDUCE | _COUNTERFACTUAL:
            raise QueryError(f"only the functions {', '.join(allowed)} are allowed")
        if name in _COUNTERFACTUAL:
            if self.inside:
                raise QueryError(f"{name}() cannot be nested inside under() or swing(); hold every constraint in one "
                                 "call: under(x, a=favourable, b=unfavourable)")
            settings = _settings(node, self.names, self.levels)
            values = [_number(self._under(node.args[0], s), node.args[0], f"{name}()") if name == "swing"
                      else self._under(node.args[0], s) for s in settings]
            if not isinstance(values[0], xr.DataArray):
                raise QueryError(f"{name}() needs a quantity, not a constant")
            return values[0] if name == "under" else values[0] - values[1]
        if node.keywords:
            raise QueryError(f"{name}() takes no keyword arguments")
        if len(node.args) != 1:
            raise QueryError(f"{name}() takes exactly one argument")
        value = self(node.args[0])
        if not isinstance(value, xr.DataArray):
            raise QueryError(f"{name}() needs a quantity, not a constant")
        dims = [d for d in value.dims if d in LABEL_DIMS]
        if not dims:
            raise QueryError(f"{name}() needs a quantity over several labels (e.g. theta, not theta[sez])")
        if name in ("all", "any", "count"):
            _statement(value, node.args[0], f"{name}()")
            return {"all": value.all, "any": value.any, "count": value.sum}[name](dims)
        if name == "mean" and _is_boolean(value):
            return value.astype(float).mean(dims)  # the share of labels for which a statement holds
        _number(value, node.args[0], f"{name}()")
        return {"mean": value.mean, "sum": value.sum, "max": value.max, "min": value.min}[name](dims)


def _names(quantities: Mapping[str, xr.DataArray]) -> dict[str, list[str]]:
    names = {dim: [] for dim in LABEL_DIMS}
    for name, dims in QUANTITY_DIMS.items():
        if name in quantities:
            for dim in dims:
                names[dim] = [str(c) for c in quantities[name].coords[dim].values]
    return names


def _evaluate_plain(query: str, quantities, names, constants, counterfactual, levels, sample_dims) -> xr.DataArray:
    try:
        result = _Evaluator(quantities, names, constants, counterfactual, levels)(_parse(query))
    except RecursionError:
        raise QueryError(f"query {_shown(query)} is nested too deeply") from None
    if not isinstance(result, xr.DataArray):
        raise QueryError(f"query {query!r} does not depend on any quantity")
    extra = [d for d in result.dims if d not in sample_dims]
    if extra:
        raise QueryError(
            f"query {query!r} leaves one value per {extra[0]}; reduce it with all(), any(), count(), sum(), mean(), "
            "max() or min()")
    if result.dtype != bool:
        raise QueryError(f"query {query!r} must be a true/false statement (use a comparison)")
    return result


def evaluate_proposition(
    query: str,
    quantities: Mapping[str, xr.DataArray],
    *,
    tau: float,
    delta: float = 0.05,
    counterfactual: Counterfactual | None = None,
    levels: Sequence[str] = (),
    constraints: Sequence[str] | None = None,
    sample_dims=("chain", "draw"),
) -> tuple[xr.DataArray, xr.DataArray]:
    """Evaluate ``query`` (``B`` or ``B given A``) draw by draw: ``(A and B, A)`` as boolean arrays over
    ``sample_dims`` (A is true everywhere without ``given``). P(B | A) = mean(A and B) / mean(A)."""
    names = _names(quantities)
    if constraints is not None:
        names["constraint"] = list(constraints)
    constants = {"tau": tau, "delta": delta}
    statement, condition = split_given(query)
    holds = _evaluate_plain(statement, quantities, names, constants, counterfactual, levels, sample_dims)
    if condition is None:
        return holds, xr.ones_like(holds, dtype=bool)
    given = _evaluate_plain(condition, quantities, names, constants, counterfactual, levels, sample_dims)
    return holds & given, given


def evaluate_query(
    query: str,
    quantities: Mapping[str, xr.DataArray],
    *,
    tau: float,
    delta: float = 0.05,
    counterfactual: Counterfactual | None = None,
    levels: Sequence[str] = (),
    sample_dims=("chain", "draw"),
) -> xr.DataArray:
    """Evaluate a query without ``given`` draw by draw; returns a boolean array over ``sample_dims`` only.
    (A conditional query is evaluated with :func:`evaluate_proposition`.)"""
    statement, condition = split_given(query)
    if condition is not None:
        raise QueryError(f"query {_shown(query)} is conditional (B given A): evaluate it with evaluate_proposition, "
                         "which returns P(A and B) and P(A)")
    return _evaluate_plain(query, quantities, _names(quantities), {"tau": tau, "delta": delta}, counterfactual,
                           levels, sample_dims)


def counterfactual_settings(query: str) -> dict[Setting, set[str]]:
    """Every counterfactual setting a query evaluates and the quantity names it needs under each (what a
    fit stores so that tables can evaluate the query later). Names are checked when it is evaluated."""
    out: dict[Setting, set[str]] = {}
    for part in split_given(query):
        if part is None:
            continue
        for node in ast.walk(_parse(part)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _COUNTERFACTUAL
                    and node.args):
                continue
            held = {k.arg: (k.value.id if isinstance(k.value, ast.Name) else getattr(k.value, "value", None))
                    for k in node.keywords if k.arg}
            if node.func.id == "under":
                settings = [held]
            elif len(node.args) == 2 and isinstance(node.args[1], ast.Name):
                settings = [{**held, node.args[1].id: level} for level in SWING_LEVELS]
            else:
                continue
            needed = {n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name) and n.id in QUANTITY_DIMS}
            for setting in settings:
                out.setdefault(tuple(sorted((str(k), str(v)) for k, v in setting.items())), set()).update(needed)
    return out
