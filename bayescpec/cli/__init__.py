"""The ``bayescpec`` command line. This module makes the app and registers every command; the commands
live one stage per module (``run``, ``report``, ``update``, ``vintages``, ``analysis``, ``check``) and share only :mod:`.options`,
:mod:`.display`, :mod:`.progress` and :mod:`.help`, so no command module imports the app.

Every input error ends with one message listing each problem (file, line, column, what was found
and what was allowed), exit code 2, no traceback, and nothing written.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from .. import __version__
from ..errors import BayescpecError
from . import analysis, calibrate, check, priors, report, run, update, vintages
from .help import Command, Group
from .options import EXIT_INPUT, configure_consoles, err_console

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=Group,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Bayesian evidence updating about development-corridor conversion.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bayescpec {__version__}")
        raise typer.Exit()


@app.callback()
def _app(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """Bayesian evidence updating about development-corridor conversion."""
    configure_consoles()


app.command(cls=Command)(run.run)
app.command(cls=Command)(run.validate)
app.command(cls=Command)(run.init)
app.command(cls=Command)(report.report)
app.command("compare-priors", cls=Command)(report.compare_priors_command)
app.command(cls=Command)(update.update)
app.command(cls=Command)(vintages.history)
app.command(cls=Command)(vintages.diff)
app.command(cls=Command)(update.trajectory)
app.command("calibrate", cls=Command)(calibrate.calibrate_command)
app.command("explain", cls=Command)(analysis.explain_command)
app.command("next", cls=Command)(analysis.next_command)
app.command("robustness", cls=Command)(analysis.robustness_command)
app.command("whatif", cls=Command)(analysis.whatif_command)
app.add_typer(priors.priors_app, name="priors")
app.command("check", cls=Command)(check.check_command)


def main() -> None:
    try:
        app()
    except BayescpecError as exc:  # anything raised past the commands' own handling
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        _exit(EXIT_INPUT)
    except SystemExit as exc:  # how a finished command ends (click's standalone mode)
        if exc.code is None or isinstance(exc.code, int):
            _exit(exc.code or 0)
        raise


def _exit(code: int) -> None:
    """End the process once its output is flushed, without the interpreter's teardown: after a fit,
    tearing down the loaded libraries (LLVM, PyTensor, the sampler's threads' memory) takes 1-1.5 s and
    does nothing a command needs -- every file is written and closed, every worker process and cluster
    shut down by then. Coverage measurement (which writes its data at exit) gets the ordinary exit."""
    if "coverage" in sys.modules or os.environ.get("BAYESCPEC_ORDINARY_EXIT"):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`bayescpec run | head`)
            pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
