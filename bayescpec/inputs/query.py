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

from ..errors import did_you_mean

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


class QueryError(ValueError):
    """A query that does not parse, names something unknown, or does not reduce to one value."""


def _parse(query: str) -> ast.Expression:
    try:
        return ast.parse(query, mode="eval")
    except SyntaxError as exc:
        raise QueryError(f"cannot parse query {query!r}: {exc.msg}") from None


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
    return isinstance(value, xr.DataArray) and value.dtype == bool


def _need_boolean(value, what: str) -> None:
    if not _is_boolean(value):
        raise QueryError(f"{what} needs a true/false statement (a comparison), not a number")


class _Evaluator:
    def __init__(self, env: Mapping[str, xr.DataArray], names: Mapping[str, list[str]], constants: dict):
        self.env, self.names, self.constants = env, names, constants

    def __call__(self, node: ast.AST):  # noqa: C901 - one branch per node type
        if isinstance(node, ast.Expression):
            return self(node.body)
        if isinstance(node, ast.BoolOp):
            values = [self(v) for v in node.values]
            for value in values:
                _need_boolean(value, "'and' / 'or'")
            out = values[0]
            for value in values[1:]:
                out = (out & value) if isinstance(node.op, ast.And) else (out | value)
            return out
        if isinstance(node, ast.UnaryOp):
            value = self(node.operand)
            if isinstance(node.op, ast.Not):
                _need_boolean(value, "'not'")
                return ~value
            if isinstance(node.op, ast.USub):
                if _is_boolean(value):
                    raise QueryError("'-' needs a number, not a true/false statement")
                return -value
            raise QueryError(f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.Compare):
            left = self(node.left)
            out = None
            for op, right_node in zip(node.ops, node.comparators):
                if type(op) not in _COMPARE:
                    raise QueryError("only the comparisons > >= < <= are allowed")
                right = self(right_node)
                if _is_boolean(left) or _is_boolean(right):
                    raise QueryError("a comparison needs numbers on both sides, not a true/false statement")
                part = _COMPARE[type(op)](left, right)
                out = part if out is None else (out & part)
                left = right
            return out
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _ARITH:
                raise QueryError("only + - * / are allowed")
            left, right = self(node.left), self(node.right)
            if _is_boolean(left) or _is_boolean(right):
                raise QueryError("arithmetic needs numbers, not true/false statements")
            return _ARITH[type(node.op)](left, right)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
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
            a, b = (self(arg) for arg in node.args)
            _need_boolean(a, "implies()")
            _need_boolean(b, "implies()")
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
            _need_boolean(value, f"{name}()")
            return {"all": value.all, "any": value.any, "count": value.sum}[name](dims)
        if _is_boolean(value):
            raise QueryError(f"{name}() needs numbers, not true/false statements")
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
    result = _Evaluator(quantities, names, {"tau": tau, "delta": delta})(_parse(query))
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


def _dummy(dims: Mapping[str, list[str]], values: float) -> dict[str, xr.DataArray]:
    return {
        name: xr.DataArray(np.full((1, 1, *(len(dims[d]) for d in qdims)), values), dims=("chain", "draw", *qdims),
                           coords={d: dims[d] for d in qdims})
        for name, qdims in QUANTITY_DIMS.items()
    }


def check_query(query: str, *, channels: list[str], constraints: list[str], stages: list[str] | None = None,
                dimensions: list[str] | None = None) -> None:
    """Validate a query against the framework's names without any samples (raises QueryError): it must
    parse, name only known quantities and labels, reduce to one true/false value per draw, and not be
    always true or always false whatever the quantities are (e.g. ``all(theta)`` or ``count(theta) >= 0``)."""
    dims = {"channel": channels, "constraint": constraints, "stage": stages or ["conversion"],
            "dimension": dimensions or []}
    outcomes = set()
    # evaluate over quantities all at one value, over a range that spans every threshold
    for value in (-5.0, -0.5, 0.0, 0.02, 0.3, 0.5, 0.7, 0.98, 1.0, 5.0):
        for tau in (0.5,):
            result = evaluate_query(query, _dummy(dims, value), tau=tau, delta=0.05)
            outcomes.add(bool(result.values.ravel()[0]))
    # and at mixed values (one label high, the others low), which 'all'/'any' tell apart
    rng = np.random.default_rng(0)
    for _ in range(20):
        mixed = {name: array.copy(data=rng.choice([-1.0, 0.1, 0.9, 2.0], size=array.shape))
                 for name, array in _dummy(dims, 0.0).items()}
        outcomes.add(bool(evaluate_query(query, mixed, tau=0.5, delta=0.05).values.ravel()[0]))
    if len(outcomes) == 1:
        raise QueryError(f"query {query!r} is {'always true' if outcomes.pop() else 'always false'} whatever the "
                         "quantities are, so no evidence could move it; compare a quantity with tau, delta or a number")
