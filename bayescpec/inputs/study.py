"""A study: the validated, frozen inputs of one analysis (framework, prior set, evidence, sources).

``load_study`` is the only place that touches the input files. It checks every file, reports every
problem together, records each file's SHA-256, and keeps only the evidence observed by ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import EvidenceError, InputError, SpecError
from .evidence import read_evidence, read_sources, validate_evidence
from .files import sha256_file
from .spec import Framework, PriorSet, load_framework, load_priors

__all__ = ["Study", "load_study", "shipped_path", "default_evidence", "resolve_priors"]

DEFAULT_PRIORS = "baseline"
#: the evidence log a study folder may hold, looked for in this order (``bayescpec init`` writes the second)
EVIDENCE_NAMES = ("cpec.csv", "evidence.csv")


def shipped_path(*parts: str) -> Path:
    """A path to the shipped data: the current folder's copy if it has one, else the installed
    package's (``bayescpec/_shipped/``, package data of a wheel), else the source checkout's."""
    here = Path.cwd().joinpath(*parts)
    if here.exists():
        return here
    packaged = Path(__file__).resolve().parents[1].joinpath("_shipped", *parts)
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[2].joinpath(*parts)


def default_evidence() -> Path:
    """The evidence log used when none is given: ``evidence/cpec.csv`` or ``evidence/evidence.csv``
    in the current folder, else the shipped CPEC log."""
    for name in EVIDENCE_NAMES:
        here = Path.cwd() / "evidence" / name
        if here.exists():
            return here
    return shipped_path("evidence", EVIDENCE_NAMES[0])


def resolve_priors(priors: str | Path, framework_path: Path) -> Path:
    """A prior-set name (``baseline``) means ``<framework folder>/<name>.toml``; anything else is a path."""
    candidate = Path(priors)
    if candidate.suffix == "" and not candidate.exists():
        return framework_path.parent / f"{priors}.toml"
    return candidate


@dataclass(frozen=True, eq=False)
class Study:
    """Validated inputs. ``evidence`` holds only the rows observed on or before ``as_of``.

    Frozen; two studies are the same only if they are the same object (``eq=False``), so a study
    can key caches of what is derived from it (e.g. its aggregated evidence, computed once).
    """

    framework: Framework
    priors: PriorSet
    evidence: pd.DataFrame
    sources: pd.DataFrame
    files: dict[str, str]
    hashes: dict[str, str]
    as_of: dt.date
    excluded_after_as_of: int = 0
    evidence_all: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def prior_set(self) -> str:
        return self.priors.name

    def with_evidence(self, evidence: pd.DataFrame, *, files: dict | None = None, hashes: dict | None = None) -> "Study":
        """A copy of this study with other (already validated) evidence rows."""
        return Study(self.framework, self.priors, evidence.reset_index(drop=True), self.sources,
                     files or self.files, hashes or self.hashes, self.as_of, 0, evidence)


def load_study(
    *,
    framework: str | Path | None = None,
    priors: str | Path = DEFAULT_PRIORS,
    evidence: str | Path | None = None,
    sources: str | Path | None = None,
    as_of: dt.date | str | None = None,
    today: dt.date | None = None,
) -> Study:
    """Load and validate every input file of a study.

    Defaults are the current folder's files if it has them, else the shipped ones
    (``priors/framework.toml``, ``priors/baseline.toml``, ``evidence/cpec.csv`` -- or
    ``evidence/evidence.csv`` -- and the ``sources.csv`` beside it). ``as_of`` keeps only the evidence
    observed on or before that date. Raises :class:`~bayescpec.errors.InputError` (a
    ``ValueError``) listing every problem in every file.
    """
    today = today or dt.date.today()
    framework_path = Path(framework) if framework is not None else shipped_path("priors", "framework.toml")
    priors_path = resolve_priors(priors, framework_path)
    evidence_path = Path(evidence) if evidence is not None else default_evidence()
    sources_path = Path(sources) if sources is not None else evidence_path.parent / "sources.csv"
    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of)
        except ValueError:
            raise InputError(f"--as-of: not a date in YYYY-MM-DD form: found {as_of!r}") from None
    as_of = as_of or today
    if as_of > today:
        raise InputError(f"--as-of: {as_of} is in the future (today is {today})")

    fw = load_framework(framework_path)  # nothing else can be checked without it
    problems = []
    prior_set = source_table = evidence_table = None
    try:
        prior_set = load_priors(priors_path, fw)
    except SpecError as exc:
        problems += exc.problems
    try:
        source_table = read_sources(sources_path)
    except EvidenceError as exc:
        problems += exc.problems
    try:
        raw = read_evidence(evidence_path)
        evidence_table = validate_evidence(raw, fw, sources=source_table, file=str(evidence_path), today=today)
    except EvidenceError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)

    files = {"framework": framework_path, "priors": priors_path, "evidence": evidence_path, "sources": sources_path}
    used = evidence_table[evidence_table["observed"] <= as_of].reset_index(drop=True)
    return Study(
        framework=fw,
        priors=prior_set,
        evidence=used,
        sources=source_table,
        files={role: str(path) for role, path in files.items()},
        hashes={role: sha256_file(path) for role, path in files.items()},
        as_of=as_of,
        excluded_after_as_of=len(evidence_table) - len(used),
        evidence_all=evidence_table,
    )
