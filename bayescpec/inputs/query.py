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
            raise QueryError("an index must be a channel or constraint name, e.g. theta[sez]")
    return labels


def _eval(node: ast.AST, env: Mapping[str, xr.DataArray], names: Mapping[str, list[str]], tau: float):
    if isinstance(node, ast.Expression):
        return _eval(node.body, env, names, tau)
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env, names, tau) for v in node.values]
        out = values[0]
        for value in values[1:]:
            out = (out & value) if isinstance(node.op, ast.And) else (out | value)
        return out
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env, names, tau)
        if isinstance(node.op, ast.Not):
            return ~value.astype(bool)
        if isinstance(node.op, ast.USub):
            return -value
        raise QueryError(f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env, names, tau)
        out = None
        for op, right_node in zip(node.ops, node.comparators):
            if type(op) not in _COMPARE:
                raise QueryError("only the comparisons > >= < <= are allowed")
            right = _eval(right_node, env, names, tau)
            part = _COMPARE[type(op)](left, right)
            out = part if out is None else (out & part)
            left = right
        return out
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise QueryError("only + - * / are allowed")
        return _ARITH[type(node.op)](_eval(node.left, env, names, tau), _eval(node.right, env, names, tau))
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
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
    result = _eval(_parse(query), quantities, names, tau)
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


def check_query(query: str, *, channels: list[str], constraints: list[str]) -> None:
    """Validate a query against the framework's names without any samples (raises QueryError)."""
    dims = {"channel": channels, "constraint": constraints}
    dummy = {
        name: xr.DataArray(
            np.zeros((1, 1, len(dims[dim]))),
            dims=("chain", "draw", dim),
            coords={dim: dims[dim]},
        )
        for name, dim in QUANTITY_DIMS.items()
    }
    evaluate_query(query, dummy, tau=0.5)
