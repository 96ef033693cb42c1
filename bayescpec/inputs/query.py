"""Propositions as small queries over the latent quantities.

A query is a restricted Python expression, parsed with :mod:`ast` and never passed to ``eval``::

    theta[sez] > tau and theta[gwadar] > tau
    reach[sez][learning] > tau
    any(reach[sez, digital, gwadar][productivity] > tau)
    implies(nqpf > tau, reach[sez][learning] > tau)
    interruption[security] > delta

Quantities (their dimensions in brackets):

* ``theta[channel]`` -- the probability that the channel's conversion chain completes;
* ``base_theta[channel]`` -- the same without any constraint (every severity at "typical");
* ``reach[channel][stage]`` -- the probability that the chain reaches (passes) a stage;
* ``severity[constraint]`` -- a constraint's severity (logit scale, 0 = typical);
* ``constraint_effect[channel]`` -- base_theta - theta: how much the constraints lower theta;
* ``interruption[constraint]`` -- the largest reduction of a linked channel's theta by the constraint
  (theta with the severity at "typical" minus theta with it);
* ``nqpf_dimension[dimension]`` -- a dimension of the overall quantity (mean reach of its measures);
* ``nqpf`` -- the overall quantity (weighted mean of the dimensions).

``tau`` is the conversion threshold and ``delta`` the materiality threshold (framework file).
Operators: comparisons, ``and``/``or``/``not``, ``+ - * /``; ``all any count mean max min`` reduce
over every remaining dimension; ``implies(a, b)`` is ``not a or b``. A subscript selects labels of
the quantity's dimensions in order (``reach[sez]`` leaves the stages; ``reach[sez][learning]`` one
number). A query must reduce to one true/false value per draw, and it must depend on a quantity.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..errors import BayescpecError, did_you_mean

__all__ = ["QUANTITY_DIMS", "QueryError", "check_query", "evaluate_query"]

#: the quantity names a query may use and the dimensions each is indexed by, in subscript order
QUANTITY_DIMS: dict[str, tuple[str, ...]] = {
    "theta": ("channel",),
    "base_theta": ("channel",),
    "reach": ("channel", "stage"),
    "severity": ("constraint",),
    "constraint_effect": ("channel",),
    "interruption": ("constraint",),
    "nqpf_dimension": ("dimension",),
    "nqpf": (),
}
#: label dimensions (everything a reduction may reduce over)
LABEL_DIMS = ("channel", "stage", "constraint", "dimension")
_REDUCE = {"all", "any", "mean", "count", "max", "min"}
_COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less, ast.LtE: np.less_equal}
_ARITH = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}
_CONSTANTS = ("tau", "delta")
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class QueryError(BayescpecError, ValueError):
    """A query that does not parse, names something unknown, does not reduce to one value, mixes
    numbers and true/false statements, or cannot be false (or true) whatever the values."""


def _shown(query: str, limit: int = 80) -> str:
    return repr(query if len(query) <= limit else query[: limit - 3] + "...")


def _parse(query: str) -> ast.Expression:
    try:
        return ast.parse(query, mode="eval")
    except SyntaxError as exc:
        raise QueryError(f"cannot parse query {_shown(query)}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):  # NUL characters; absurd nesting
        raise QueryError(f"cannot parse query {_shown(query)}: nested too deeply") from None


def _labels(node: ast.expr) -> list[str]:
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    labels = []
    for item in items:
        if isinstance(item, ast.Name):
            labels.append(item.id)
        elif isinstance(item, ast.Constant) and isinstance(item.value, str):
            labels.append(item.value)
        else:
            raise QueryError("an index must be a name, e.g. theta[sez] or reach[sez][learning]")
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


class _Evaluator:
    def __init__(self, env: Mapping[str, xr.DataArray], names: Mapping[str, list[str]], constants: dict):
        self.env, self.names, self.constants = env, names, constants

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
                return self.env[node.id]
            raise QueryError(f"unknown name {node.id!r}{did_you_mean(node.id, [*_CONSTANTS, *QUANTITY_DIMS])}; "
                             f"allowed: {', '.join([*_CONSTANTS, *QUANTITY_DIMS])}")
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise QueryError(f"{type(node).__name__} is not allowed in a query")

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
        array = self.env[quantity]
        for dim, part in zip(dims, slices):
            labels = _labels(part)
            for label in labels:
                if label not in self.names[dim]:
                    raise QueryError(f"{quantity}[...{label}...]: {label!r} is not a {dim}"
                                     f"{did_you_mean(label, self.names[dim])}; allowed: {', '.join(self.names[dim])}")
            array = array.sel({dim: labels}) if isinstance(part, ast.Tuple) else array.sel({dim: labels[0]})
        return array

    def _call(self, node: ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _REDUCE | {"implies"}:
            raise QueryError(f"only the functions {', '.join(sorted(_REDUCE | {'implies'}))} are allowed")
        if node.keywords:
            raise QueryError(f"{name}() takes no keyword arguments")
        if name == "implies":
            if len(node.args) != 2:
                raise QueryError("implies(a, b) takes exactly two statements")
            a, b = (_statement(self(arg), arg, "implies()") for arg in node.args)
            return ~a | b
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
        return {"mean": value.mean, "max": value.max, "min": value.min}[name](dims)


def evaluate_query(
    query: str,
    quantities: Mapping[str, xr.DataArray],
    *,
    tau: float,
    delta: float = 0.05,
    sample_dims=("chain", "draw"),
) -> xr.DataArray:
    """Evaluate ``query`` draw by draw; returns a boolean array over ``sample_dims`` only."""
    names = {dim: [] for dim in LABEL_DIMS}
    for name, dims in QUANTITY_DIMS.items():
        if name in quantities:
            for dim in dims:
                names[dim] = [str(c) for c in quantities[name].coords[dim].values]
    try:
        result = _Evaluator(quantities, names, {"tau": tau, "delta": delta})(_parse(query))
    except RecursionError:
        raise QueryError(f"query {_shown(query)} is nested too deeply") from None
    if not isinstance(result, xr.DataArray):
        raise QueryError(f"query {query!r} does not depend on any quantity")
    extra = [d for d in result.dims if d not in sample_dims]
    if extra:
        raise QueryError(
            f"query {query!r} leaves one value per {extra[0]}; reduce it with all(), any(), count(), mean(), "
            "max() or min()")
    if result.dtype != bool:
        raise QueryError(f"query {query!r} must be a true/false statement (use a comparison)")
    return result


#: values each quantity takes at the test points of :func:`check_query`, by the range of the quantity:
#: both ends and ordinary values (the query's own numbers, and values just beside them, are added)
_PROBE_VALUES = {
    "probability": (1e-9, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1 - 1e-9),
    "difference": (-1 + 1e-9, -0.5, -0.1, -0.01, 0.0, 0.01, 0.03, 0.1, 0.3, 0.6, 1 - 1e-9),
    "logit": (-1e6, -10.0, -2.0, -0.5, 0.0, 0.5, 2.0, 10.0, 1e6),
}
_RANGE = {"theta": "probability", "base_theta": "probability", "reach": "probability", "nqpf": "probability",
          "nqpf_dimension": "probability", "constraint_effect": "difference", "interruption": "difference",
          "severity": "logit"}
_LIMITS = {"probability": (0.0, 1.0), "difference": (-1.0, 1.0), "logit": (-5.0, 5.0)}
PROBE_DRAWS = 1024


def _probe_quantities(tree: ast.AST, constants: dict, dims: dict[str, list[str]]) -> dict[str, xr.DataArray]:
    """Test points for :func:`check_query`: every quantity at ``PROBE_DRAWS`` draws, the first ones
    with every label at one probe value, the rest a fixed random mix of probe values (and uniform
    values), so a query that can be true and false is seen to be both."""
    numbers = list(constants.values()) + [
        float(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)
        and isinstance(n.value, (int, float)) and not isinstance(n.value, bool) and abs(n.value) < 1e300]
    beside = [v + d for v in numbers for d in (-1e-6 * max(1.0, abs(v)), 0.0, 1e-6 * max(1.0, abs(v)))]
    rng = np.random.default_rng(20260527)
    out = {}
    for name, qdims in QUANTITY_DIMS.items():
        kind = _RANGE[name]
        low, high = _LIMITS[kind]
        pool = np.array(sorted(set(_PROBE_VALUES[kind]) | set(beside)))
        if kind != "logit":
            pool = pool[(pool > low) & (pool < high)]
        width = int(np.prod([len(dims[d]) for d in qdims])) if qdims else 1
        corners = np.repeat(pool[:, None], width, axis=1)
        mixed = pool[rng.integers(0, len(pool), size=(PROBE_DRAWS // 2, width))]
        uniform = rng.uniform(low, high, size=(PROBE_DRAWS - len(corners) - len(mixed), width))
        values = np.concatenate([corners, mixed, uniform]).reshape((1, PROBE_DRAWS, *(len(dims[d]) for d in qdims)))
        out[name] = xr.DataArray(values, dims=("chain", "draw", *qdims), coords={d: dims[d] for d in qdims})
    return out


def check_query(query: str, *, channels: list[str], constraints: list[str], stages: list[str] | None = None,
                dimensions: list[str] | None = None, delta: float = 0.05) -> None:
    """Validate a query against the framework's names without any samples (raises QueryError): it must
    parse, name only known quantities and labels, reduce to one true/false value per draw, and be able
    to come out both true and false (a query true whatever the values, such as
    ``count(theta > tau) >= 0``, says nothing; so does one that is never true)."""
    dims = {"channel": list(dict.fromkeys(channels)), "constraint": list(dict.fromkeys(constraints)),
            "stage": list(dict.fromkeys(stages or ["conversion"])), "dimension": list(dict.fromkeys(dimensions or []))}
    tree = _parse(query)
    constants = {"tau": 0.5, "delta": delta}
    with np.errstate(all="ignore"):
        result = evaluate_query(query, _probe_quantities(tree, constants, dims), tau=0.5, delta=delta)
    holds = result.values
    if holds.all() or not holds.any():
        word = "true" if holds.all() else "false"
        raise QueryError(f"query {_shown(query)} is {word} whatever the values of the quantities (it was {word} at "
                         f"every one of {holds.size} test points); allowed: a statement that can be true or false, "
                         "such as theta[sez] > tau")
