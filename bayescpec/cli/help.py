"""How the command line presents itself in ``--help``: usage lines, type labels, choices and defaults.

Typer's own presentation shows a type label per option (``<bool>``, ``<int range> [x>=10]``, ``<path>``)
and required arguments as ``{new}`` in the usage line. :class:`Command` and :class:`Group` (the ``cls``
of every command and of the app) show instead the conventional labels -- ``INTEGER``, ``PATH``, a
choice as ``[eti|hdi]``, nothing for a flag -- and arguments in capitals (``update [OPTIONS] NEW``).

A default that is not the parameter's value (``--evidence``: the log found in the current folder)
is written into the help text with :func:`default`, escaped so that rich does not read the brackets
as markup (which made "Evidence CSV [default: ...]" print as "Evidence CSV .").
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["Command", "Group", "default", "choice_label"]

_LABELS = {int: "INTEGER", float: "FLOAT", str: "TEXT", Path: "PATH", bool: ""}


def default(text: str) -> str:
    """``" [default: text]"`` for a help string, escaped for rich markup."""
    return f" \\[default: {text}]"


def choice_label(choices) -> str:
    """How a choice is shown in --help: ``[eti|hdi]``."""
    return "[" + "|".join(choices) + "]"


def _type_label(param) -> str:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    origin = getattr(annotation, "__origin__", None)
    if origin is list:
        annotation = annotation.__args__[0]
    for kind, label in _LABELS.items():
        if annotation is kind or (isinstance(annotation, type) and issubclass(annotation, kind)):
            return label
    return ""


def _present(params, ctx) -> None:
    """Set the label of every parameter that has none (once; idempotent)."""
    for param in params:
        if isinstance(param, TyperOption):
            if param.metavar is None:
                param.metavar = "" if param.is_flag else _type_label(param)
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = param.name.upper()
            if not getattr(param, "_bayescpec_labelled", False):
                label = _type_label(param)
                param.display_type_rich = (lambda label: lambda ctx=None: label)(label)
                param._bayescpec_labelled = True


class Command(TyperCommand):
    """A command whose --help shows conventional labels and a plain usage line."""

    def get_params(self, ctx: typer.Context):
        params = super().get_params(ctx)
        _present(params, ctx)
        return params

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(TyperGroup):
    """The app: the same labels for its own options (``--help``, ``--version``)."""

    def get_params(self, ctx: typer.Context):
        params = super().get_params(ctx)
        _present(params, ctx)
        return params
