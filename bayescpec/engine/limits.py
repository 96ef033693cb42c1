"""The ranges of the sampler settings every fit accepts, checked before anything is sampled or written.

Outside them PyMC fails late (a negative seed), numpy overflows (a chain count beyond 64 bits) or the
draws cannot be held in memory; ``update`` would then have appended its rows before failing. The
command line and :func:`bayescpec.fit` refuse the same ranges with the same words.
"""

from __future__ import annotations

from ..errors import InputError

__all__ = ["SAMPLING_LIMITS", "check_sampling_options", "limit_problem"]

#: option -> (smallest, largest) allowed value
SAMPLING_LIMITS = {
    "draws": (10, 100_000),
    "tune": (10, 100_000),
    "chains": (1, 64),
    "seed": (0, 2**32 - 1),
}


def limit_problem(name: str, value, *, option: str | None = None) -> str | None:
    """The message for ``value`` of sampler setting ``name`` outside its range (``option`` names it, e.g.
    ``--draws``), else None."""
    low, high = SAMPLING_LIMITS[name]
    label = option or name
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{label}: must be a whole number from {low} to {high}; found {value!r}"
    if not low <= value <= high:
        return f"{label}: must be from {low} to {high}; found {value}"
    return None


def check_sampling_options(**values) -> None:
    """Raise :class:`InputError` naming every setting (draws, tune, chains, seed) outside its range; None
    stands for the default (``tune=None``: the short warm-up, re-run longer if the gate fails)."""
    problems = [p for name, value in values.items()
                if value is not None and (p := limit_problem(name, value)) is not None]
    if problems:
        raise InputError("; ".join(problems))
