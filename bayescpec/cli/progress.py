"""Progress and notes on standard error, so that a long command is never silent (and ``--quiet`` is).

On a terminal each step is a rich progress line with a spinner and the elapsed time, ticked off
when done; a sweep (several fits, several files) is a bar. When standard error is not a terminal
(a log file, CI) each step is one plain line instead. ``--quiet`` shows neither; results and
errors still print.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .options import err_console

__all__ = ["Reporter"]


class Reporter:
    """Notes and progress of one command on standard error."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    @property
    def live(self) -> bool:
        return not self.quiet and err_console.is_terminal

    def info(self, message: str, *, markup: bool = True) -> None:
        """A note (``bayescpec: ...``); silent with --quiet."""
        if not self.quiet:
            err_console.print(message if markup else escape(message), highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        """A warning: shown even with --quiet."""
        err_console.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    def _progress(self, *columns) -> Progress:
        return Progress(SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"), *columns,
                        TimeElapsedColumn(), console=err_console, transient=False)

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        """One long step (a fit, writing a folder): a spinner and the elapsed time until it ends."""
        if self.quiet:
            yield
            return
        if not self.live:
            started = time.perf_counter()
            err_console.print(f"bayescpec: {description} ...", highlight=False, soft_wrap=True)
            yield
            err_console.print(f"bayescpec: {description}: done in {time.perf_counter() - started:.1f} s",
                              highlight=False, soft_wrap=True)
            return
        with self._progress() as progress:
            task = progress.add_task(description, total=1)
            yield
            progress.update(task, completed=1)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[str], None]]:
        """A sweep of ``total`` items; yields ``advance(note)``, called once per finished item."""
        done = [0]
        if self.quiet:
            yield lambda note="": None
            return
        if not self.live:
            err_console.print(f"bayescpec: {description} ({total})", highlight=False, soft_wrap=True)

            def advance(note: str = "") -> None:
                done[0] += 1
                err_console.print(f"  [{done[0]}/{total}] {note}", highlight=False, soft_wrap=True)

            yield advance
            return
        with self._progress(BarColumn(bar_width=24), MofNCompleteColumn()) as progress:
            task = progress.add_task(description, total=total)

            def advance(note: str = "") -> None:
                if note:
                    progress.console.print(f"  {note}", highlight=False, soft_wrap=True)
                progress.advance(task)

            yield advance
