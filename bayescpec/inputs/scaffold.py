"""A new study folder for another corridor (``bayescpec init DIR``).

:func:`init_study` writes, from the templates in ``bayescpec/inputs/templates/`` (shipped as package
data): ``priors/framework.toml`` (the evidence ladder, test types, an example channel, constraint,
proposition and indicators, commented), the prior set ``priors/baseline.toml``, an empty evidence
log ``evidence/evidence.csv`` (the header only), ``evidence/sources.csv`` and a ``README.md``. Inside
the folder ``bayescpec validate`` passes and ``bayescpec run`` gives a prior-only result. The files
are written into a temporary folder first and moved in together; a folder that is not empty is
refused.
"""

from __future__ import annotations

import shutil
import string
import tempfile
from pathlib import Path

from ..errors import InputError

__all__ = ["init_study", "TEMPLATES", "STUDY_FILES"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: file in the new study -> template file
STUDY_FILES = {
    "priors/framework.toml": "framework.toml",
    "priors/baseline.toml": "baseline.toml",
    "evidence/evidence.csv": "evidence.csv",
    "evidence/sources.csv": "sources.csv",
    "README.md": "README.md",
}


def init_study(folder: str | Path, *, name: str | None = None) -> list[Path]:
    """Write a new study into ``folder`` (created if missing; must be empty); return the files.

    ``name`` is the corridor's name in the framework and the README (default: the folder's name).
    Raises :class:`~bayescpec.errors.InputError` when ``folder`` is a file or is not empty.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file; give a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise InputError(f"{folder}: not empty; `bayescpec init` writes only into a new or empty folder "
                         "(nothing was written)")
    corridor = name or folder.resolve().name
    if not folder.exists():
        folder.resolve().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.resolve().parent, prefix=f".{folder.name}.init."))
    try:
        for target, template in STUDY_FILES.items():
            text = (TEMPLATES / template).read_text(encoding="utf-8")
            path = staging / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(string.Template(text).safe_substitute(corridor=corridor), encoding="utf-8")
        if folder.exists():
            for item in staging.iterdir():
                item.replace(folder / item.name)
            staging.rmdir()
        else:
            staging.replace(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [folder / target for target in STUDY_FILES]
