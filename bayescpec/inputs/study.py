"""A study: the validated, frozen inputs of one analysis (framework, prior set, evidence, sources).

``load_study`` is the only place that touches the input files. It checks every file, reports every
problem together, records each file's SHA-256, and keeps only the evidence observed by ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import EvidenceError, InputError, Problem, SpecError, did_you_mean
from .evidence import read_evidence, read_sources, validate_evidence
from .files import sha256_file
from .spec import Framework, PriorSet, load_framework, load_priors

__all__ = ["Study", "load_study", "parse_date", "shipped_path", "default_evidence", "resolve_priors", "prior_set_names",
           "input_path_problems", "StudySource", "study_source", "is_study_folder"]

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


def is_study_folder(folder: str | Path) -> bool:
    """Does ``folder`` hold a study (``priors/framework.toml``, what ``bayescpec init`` writes)?"""
    return (Path(folder) / "priors" / "framework.toml").is_file()


def _local_log(folder: Path) -> Path | None:
    return next((folder / "evidence" / name for name in EVIDENCE_NAMES if (folder / "evidence" / name).is_file()), None)


@dataclass(frozen=True)
class StudySource:
    """Where the default input files of a command come from: the current folder's study, or the one
    shipped with bayescpec (CPEC 2.0) when the current folder has none. ``shipped`` names the roles
    (``framework``, ``evidence``) taken from the shipped study; ``nearby`` the studies found in the
    current folder's subfolders (what a user in the wrong folder most likely meant)."""

    folder: Path
    shipped: tuple[str, ...] = ()
    nearby: tuple[Path, ...] = ()

    def _found(self) -> str:
        if not self.nearby:
            return ""
        shown = [f"./{p.name}" for p in self.nearby[:3]] + (["..."] if len(self.nearby) > 3 else [])
        if len(self.nearby) == 1:
            return (f"; found a study in {shown[0]} -- cd there, or pass --framework "
                    f"{self.nearby[0].name}/priors/framework.toml and --evidence")
        return f"; found studies in {', '.join(shown)} -- cd into one, or pass --framework and --evidence"

    def note(self) -> str:
        """'' when every default input is the current folder's; else which study is used and why."""
        if not self.shipped:
            return ""
        here = f"{self.folder}"
        if set(self.shipped) == {"framework", "evidence"}:
            what = f"using the CPEC 2.0 study shipped with bayescpec (no priors/framework.toml in {here})"
        elif self.shipped == ("framework",):
            what = (f"using the CPEC 2.0 framework and prior sets shipped with bayescpec (no priors/framework.toml "
                    f"in {here}; give --framework)")
        else:
            what = (f"using the CPEC 2.0 evidence log shipped with bayescpec (no evidence/{EVIDENCE_NAMES[1]} or "
                    f"evidence/{EVIDENCE_NAMES[0]} in {here}; give --evidence)")
        return what + self._found()


def study_source(*, framework: str | Path | None = None, evidence: str | Path | None = None) -> StudySource:
    """Which study the default inputs come from (see :class:`StudySource`), for commands to say so."""
    folder = Path.cwd()
    shipped = tuple(role for role, default in (("framework", framework is None and not is_study_folder(folder)),
                                               ("evidence", evidence is None and _local_log(folder) is None))
                    if default)
    nearby: tuple[Path, ...] = ()
    if shipped:
        try:
            nearby = tuple(sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                                   and is_study_folder(p)), key=lambda p: p.name))
        except OSError:
            nearby = ()
    return StudySource(folder, shipped, nearby)


def resolve_priors(priors: str | Path, framework_path: Path) -> Path:
    """A prior-set name (``baseline``) means ``<framework folder>/<name>.toml``; anything else is a path."""
    candidate = Path(priors)
    if candidate.suffix == "" and not candidate.exists():
        return framework_path.parent / f"{priors}.toml"
    return candidate


def prior_set_names(framework_path: str | Path) -> list[str]:
    """The prior sets beside a framework file: every other ``*.toml`` there without a ``[framework]`` table."""
    framework_path = Path(framework_path)
    names = []
    for path in sorted(framework_path.parent.glob("*.toml")):
        if path.name == framework_path.name or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if not any(line.strip() == "[framework]" for line in text.splitlines()):
            names.append(path.stem)
    return names


def _missing(option: str, path: Path, suffix: str, usual: str) -> Problem | None:
    """A problem naming ``option`` when ``path`` is not a file (missing, or a folder: then suggest the
    file named ``usual`` in it, or its first other ``suffix`` file)."""
    if path.is_file():
        return None
    if path.is_dir():
        inside = sorted(p.name for p in path.glob(f"*{suffix}") if p.is_file())
        likely = [usual] if usual in inside else [n for n in inside if n not in ("sources.csv", "framework.toml")]
        hint = f"; did you mean {path / likely[0]}?" if likely else ""
        hint += f" ({suffix} files in it: {', '.join(inside)})" if inside else f" (it holds no {suffix} files)"
        return Problem("", None, None, f"{option}: {path} is a folder, not a file{hint}")
    return Problem("", None, None, f"{option}: {path}: file not found")


def input_path_problems(
    *, framework_path: Path, priors: str | Path, priors_path: Path, evidence_path: Path | None,
    sources_path: Path | None, sources_given: bool = True,
) -> list[Problem]:
    """Input paths that are not files, each naming its option; only root causes (a ``sources.csv``
    beside a missing evidence log is not reported as missing too). A missing prior set lists the
    prior sets that exist beside the framework, with a "did you mean". ``evidence_path`` None: a
    command that reads no evidence (``priors show``)."""
    problems = []
    framework_problem = _missing("--framework", framework_path, ".toml", "framework.toml")
    if framework_problem:
        problems.append(framework_problem)
    priors_problem = _missing("--priors", priors_path, ".toml", "baseline.toml")
    is_name = Path(priors) != priors_path and not priors_path.is_dir()  # a prior-set name, not a path
    if priors_problem and is_name and framework_problem:
        pass  # a name is looked up beside the framework: the framework's problem is the root cause
    elif priors_problem:
        names = prior_set_names(framework_path) if framework_path.is_file() else []
        listed = (f"; the prior sets beside {framework_path} are: {', '.join(names)}" if names
                  else f"; there are no prior sets beside {framework_path}" if framework_path.is_file() else "")
        if is_name:
            message = (f"--priors: no prior set {str(priors)!r}{did_you_mean(priors, names)} (there is no "
                       f"{priors_path}){listed}")
        else:
            message = priors_problem.message + listed
        problems.append(Problem("", None, None, message))
    evidence_problem = _missing("--evidence", evidence_path, ".csv", "cpec.csv") if evidence_path else None
    if evidence_problem:
        problems.append(evidence_problem)
    if sources_path is not None and (sources_given or not evidence_problem):
        sources_problem = _missing("--sources", sources_path, ".csv", "sources.csv")
        if sources_problem and not sources_given:
            sources_problem = Problem(str(sources_path), None, None,
                                      "file not found; an evidence log needs a sources file (key,reference,year,url) "
                                      "beside it, or give one with --sources")
        if sources_problem:
            problems.append(sources_problem)
    return problems


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
        """A copy of this study with other (already validated) evidence rows. Unless ``hashes`` are
        given, the evidence hash is recomputed from the rows themselves (a result fitted on them must
        not claim the file's hash) and the evidence file is marked as rows in memory."""
        if hashes is None:
            hashes = {**self.hashes, "evidence": evidence_rows_hash(evidence)}
        if files is None:
            files = {**self.files, "evidence": f"{self.files.get('evidence', '')} (rows in memory)"}
        return Study(self.framework, self.priors, evidence.reset_index(drop=True), self.sources,
                     files, hashes, self.as_of, 0, evidence)


def evidence_rows_hash(evidence: pd.DataFrame) -> str:
    """SHA-256 of evidence rows as canonical CSV text (columns in the log's order): rows in memory get
    a hash of their content, as a file gets the hash of its bytes."""
    import hashlib

    from .evidence import EVIDENCE_COLUMNS

    columns = [c for c in EVIDENCE_COLUMNS if c in evidence.columns]
    text = evidence[columns].astype(str).to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_date(text: str, option: str) -> dt.date:
    """A YYYY-MM-DD date given as ``option``, else InputError naming it. Only that form: Python's
    ``fromisoformat`` also takes 20260101 and 2026-W01-1, which the evidence log's dates never are."""
    text = str(text).strip()
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option}: not a date in YYYY-MM-DD form: found {text!r}") from None


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
        as_of = parse_date(as_of, "--as-of")
    as_of = as_of or today
    if as_of > today:
        raise InputError(f"--as-of: {as_of} is in the future (today is {today})")

    missing = input_path_problems(framework_path=framework_path, priors=priors, priors_path=priors_path,
                                  evidence_path=evidence_path, sources_path=sources_path,
                                  sources_given=sources is not None)
    if missing:
        raise InputError(missing)
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
        evidence_table = validate_evidence(raw, fw, sources=source_table, file=str(evidence_path), today=today,
                                           sources_file=str(sources_path))
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
