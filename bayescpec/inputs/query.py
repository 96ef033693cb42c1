"""Propositions as small queries over the latent quantities.

A query is a restricted Python expression, parsed with :mod:`ast` and never passed to ``eval``::

    theta[sez] > tau and theta[gwadar] > tau
    all(constraint_effect > 0)
    count(theta > tau) >= 3

Quantities: ``theta[channel]`` (conversion probability), ``base_theta[channel]`` (constraint-free
conversion probability), ``severity[constraint]`` (logit scale), ``constraint_effect[channel]``
(sum of loadings times severities, logit scale). ``tau`` is the conversion threshold. Operators:
comparisons, ``and``/``or``/``not``, ``+ - * /``; functions ``all any mean count`` reduce over the
channel or constraint dimension. A query must reduce to one true/false value per posterior draw.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..errors import BayescpecError

__all__ = ["QUANTITY_DIMS", "QueryError", "check_query", "evaluate_query"]

#: the quantity names a query may use and the dimension each is indexed by
QUANTITY_DIMS: dict[str, str] = {
    "theta": "channel",
    "base_theta": "channel",
    "severity": "constraint",
    "constraint_effect": "channel",
}
_FUNCTIONS = {"all", "any", "mean", "count"}
_COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less, ast.LtE: np.less_equal}
_ARITH = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}
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


def _is_statement(value) -> bool:
    """True for a true/false statement (a comparison, or and/or/not/all/any of them)."""
    return isinstance(value, xr.DataArray) and value.dtype == bool


def _statement(value, node: ast.AST, what: str):
    if not _is_statement(value):
        raise QueryError(f"{what} takes a true/false statement such as theta[sez] > tau; found "
                         f"{ast.unparse(node)!r}, a number")
    return value


def _number(value, node: ast.AST, what: str):
    if _is_statement(value):
        raise QueryError(f"{what} takes numbers; found {ast.unparse(node)!r}, a true/false statement")
    return value


def _labels(node: ast.expr) -> list[str]:
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    labels = []
    for item in items:
        if isinstance(item, ast.Name):
            labels.append(item.id)
        elif isinstance(item, ast.Constant) and isinstance(item.value, str):
            labels.append(item.value)
        else:
            raise QueryError("an index must be a channel or constraint name, e.g. theta[sez]")
    return labels


def _eval(node: ast.AST, env: Mapping[str, xr.DataArray], names: Mapping[str, list[str]], tau: float):
    if isinstance(node, ast.Expression):
        return _eval(node.body, env, names, tau)
    if isinstance(node, ast.BoolOp):
        word = "and" if isinstance(node.op, ast.And) else "or"
        values = [_statement(_eval(v, env, names, tau), v, f"'{word}'") for v in node.values]
        out = values[0]
        for value in values[1:]:
            out = (out & value) if isinstance(node.op, ast.And) else (out | value)
        return out
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env, names, tau)
        if isinstance(node.op, ast.Not):
            return ~_statement(value, node.operand, "'not'")
        if isinstance(node.op, ast.USub):
            return -_number(value, node.operand, "'-'")
        raise QueryError(f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.Compare):
        left = _number(_eval(node.left, env, names, tau), node.left, "a comparison")
        out = None
        for op, right_node in zip(node.ops, node.comparators):
            if type(op) not in _COMPARE:
                raise QueryError("only the comparisons > >= < <= are allowed")
            right = _number(_eval(right_node, env, names, tau), right_node, "a comparison")
            part = _COMPARE[type(op)](left, right)
            out = part if out is None else (out & part)
            left = right
        return out
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise QueryError("only + - * / are allowed")
        what = f"'{_SYMBOLS[type(node.op)]}'"
        return _ARITH[type(node.op)](_number(_eval(node.left, env, names, tau), node.left, what),
                                     _number(_eval(node.right, env, names, tau), node.right, what))
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        try:
            return float(node.value)
        except OverflowError:
            raise QueryError(f"the number {str(node.value)[:20]}... is too large") from None
    if isinstance(node, ast.Name):
        if node.id == "tau":
            return tau
        if node.id in env:
            return env[node.id]
        raise QueryError(f"unknown name {node.id!r}; allowed: tau, {', '.join(QUANTITY_DIMS)}")
    if isinstance(node, ast.Subscript):
        if not isinstance(node.value, ast.Name) or node.value.id not in QUANTITY_DIMS:
            raise QueryError(f"only {', '.join(QUANTITY_DIMS)} can be indexed")
        quantity = node.value.id
        dim = QUANTITY_DIMS[quantity]
        labels = _labels(node.slice)
        for label in labels:
            if label not in names[dim]:
                from ..errors import did_you_mean

                raise QueryError(
                    f"{quantity}[{label}]: {label!r} is not a {dim}{did_you_mean(label, names[dim])}; "
                    f"allowed: {', '.join(names[dim])}"
                )
        array = env[quantity]
        if isinstance(node.slice, ast.Tuple):
            return array.sel({dim: labels})
        return array.sel({dim: labels[0]})
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise QueryError(f"only the functions {', '.join(sorted(_FUNCTIONS))} are allowed")
        if len(node.args) != 1 or node.keywords:
            raise QueryError(f"{node.func.id}() takes exactly one argument")
        value = _eval(node.args[0], env, names, tau)
        if not isinstance(value, xr.DataArray):
            raise QueryError(f"{node.func.id}() needs a quantity over channels or constraints")
        dims = [d for d in value.dims if d in ("channel", "constraint")]
        if node.func.id in ("all", "any", "count"):
            _statement(value, node.args[0], f"{node.func.id}()")
        if node.func.id == "all":
            return value.astype(bool).all(dims)
        if node.func.id == "any":
            return value.astype(bool).any(dims)
        if node.func.id == "count":
            return value.astype(bool).sum(dims)
        return value.mean(dims)
    raise QueryError(f"{type(node).__name__} is not allowed in a query")


def evaluate_query(
    query: str, quantities: Mapping[str, xr.DataArray], *, tau: float, sample_dims=("chain", "draw")
) -> xr.DataArray:
    """Evaluate ``query`` draw by draw; returns a boolean array over ``sample_dims`` only."""
    names = {dim: [] for dim in QUANTITY_DIMS.values()}
    for name, dim in QUANTITY_DIMS.items():
        if name in quantities:
            names[dim] = [str(c) for c in quantities[name].coords[dim].values]
    try:
        result = _eval(_parse(query), quantities, names, tau)
    except RecursionError:
        raise QueryError(f"query {_shown(query)} is nested too deeply") from None
    if not isinstance(result, xr.DataArray):
        raise QueryError(f"query {query!r} does not depend on any quantity")
    extra = [d for d in result.dims if d not in sample_dims]
    if extra:
        raise QueryError(
            f"query {query!r} leaves one value per {extra[0]}; reduce it with all(), any(), mean() or count()"
        )
    if result.dtype != bool:
        raise QueryError(f"query {query!r} must be a true/false statement (use a comparison)")
    return result


#: values each quantity takes at the test points of :func:`check_query`: both ends of its range and
#: ordinary values (the query's own numbers, and values just beside them, are added per query)
_PROBE_VALUES = {
    "probability": (1e-9, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1 - 1e-9),  # theta, base_theta
    "logit": (-1e6, -10.0, -2.0, -0.5, 0.0, 0.5, 2.0, 10.0, 1e6),  # severity, constraint_effect
}
_BOUNDED = {"theta", "base_theta"}  # probabilities, in (0, 1)
PROBE_DRAWS = 1024


def _probe_quantities(query_tree: ast.AST, tau: float, dims: dict[str, list[str]]) -> dict[str, xr.DataArray]:
    """Test points for :func:`check_query`: every quantity at ``PROBE_DRAWS`` draws, the first ones
    with every label at one probe value, the rest a fixed random mix of probe values (and uniform
    values), so a query that can be true and false is seen to be both."""
    numbers = [tau] + [float(n.value) for n in ast.walk(query_tree) if isinstance(n, ast.Constant)
                       and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)
                       and abs(n.value) < 1e300]
    beside = [v + d for v in numbers for d in (-1e-6 * max(1.0, abs(v)), 0.0, 1e-6 * max(1.0, abs(v)))]
    rng = np.random.default_rng(20260527)
    out = {}
    for name, dim in QUANTITY_DIMS.items():
        pool = np.array(sorted(set(_PROBE_VALUES["probability" if name in _BOUNDED else "logit"]) | set(beside)))
        if name in _BOUNDED:
            pool = pool[(pool > 0) & (pool < 1)]
        labels = dims[dim]
        corners = np.repeat(pool[:, None], len(labels), axis=1)
        mixed = pool[rng.integers(0, len(pool), size=(PROBE_DRAWS // 2, len(labels)))]
        low, high = (0.0, 1.0) if name in _BOUNDED else (-5.0, 5.0)
        uniform = rng.uniform(low, high, size=(PROBE_DRAWS - len(corners) - len(mixed), len(labels)))
        values = np.concatenate([corners, mixed, uniform])[None, :, :]
        out[name] = xr.DataArray(values, dims=("chain", "draw", dim), coords={dim: labels})
    return out


def check_query(query: str, *, channels: list[str], constraints: list[str]) -> None:
    """Validate a query against the framework's names without any samples (raises QueryError): it
    must parse, name only known quantities and labels, reduce to one true/false value per draw, and
    be able to come out both true and false (a query true whatever the values, such as
    ``count(theta > tau) >= 0``, says nothing; so does one that is never true)."""
    dims = {"channel": list(dict.fromkeys(channels)), "constraint": list(dict.fromkeys(constraints))}
    tree = _parse(query)
    with np.errstate(all="ignore"):
        result = evaluate_query(query, _probe_quantities(tree, 0.5, dims), tau=0.5)
    holds = result.values
    if holds.all() or not holds.any():
        word = "true" if holds.all() else "false"
        raise QueryError(f"query {_shown(query)} is {word} whatever the values of the quantities (it was {word} at every "
                         f"one of {holds.size} test points); allowed: a statement that can be true or false, "
                         f"such as theta[sez] > tau")
