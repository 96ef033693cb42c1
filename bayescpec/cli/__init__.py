"""The ``bayescpec`` command line. This module makes the app and registers every command; the commands
live one stage per module (``run``, ``report``, ``update``) and share only :mod:`.options`, so no
command module imports the app.

Every input error ends with one message listing each problem (file, line, column, what was found
and what was allowed), exit code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from ..errors import BayescpecError
from . import report, run, update
from .options import EXIT_INPUT, err_console

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Bayesian evidence updating about development-corridor conversion.")
app.command()(run.run)
app.command()(run.validate)
app.command()(report.report)
app.command("compare-priors")(report.compare_priors_command)
app.command()(update.update)
app.command()(update.history)
app.command()(update.diff)
app.command()(update.trajectory)


def main() -> None:
    try:
        app()
    except BayescpecError as exc:  # anything raised past the commands' own handling
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT)


if __name__ == "__main__":
    main()
