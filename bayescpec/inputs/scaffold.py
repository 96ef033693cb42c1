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

import re
import shutil
import string
import tempfile
import unicodedata
from pathlib import Path

from .._fs import check_output_folder
from ..errors import InputError

__all__ = ["init_study", "toml_string", "markdown_text", "TEMPLATES", "STUDY_FILES"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: file in the new study -> template file
STUDY_FILES = {
    "priors/framework.toml": "framework.toml",
    "priors/baseline.toml": "baseline.toml",
    "evidence/evidence.csv": "evidence.csv",
    "evidence/sources.csv": "sources.csv",
    "README.md": "README.md",
}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string, quotes included: backslash, double quote and control
    characters escaped (a name with quotes or a backslash wrote invalid TOML)."""
    escapes = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    return '"' + "".join(escapes.get(c, c) if c in escapes or (ord(c) >= 0x20 and ord(c) != 0x7F)
                         else f"\\u{ord(c):04x}" for c in text) + '"'


#: characters Markdown would read as markup (emphasis, links, code, HTML, tables, headings); not "_",
#: which inside a word (folder names like my_corridor) is no markup in CommonMark
_MARKDOWN = re.compile(r"([\\`*\[\]<>|#])")


def markdown_text(text: str) -> str:
    """``text`` shown as typed in Markdown: its markup characters escaped with a backslash."""
    return _MARKDOWN.sub(r"\\\1", text)


def _corridor(name: str | None, folder: Path) -> str:
    """The corridor's name: ``name``, else the folder's. Refused: an empty name (say so rather than
    silently using the folder's) and a name that is not one line of text (it goes into comments)."""
    if name is not None and not name.strip():
        raise InputError("--name: found an empty name; allowed: the corridor's name, one line of text "
                         "(leave --name out to use the folder's name)")
    corridor = (name if name is not None else folder.resolve().name).strip()
    bad = [c for c in corridor if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if bad:
        what = "--name" if name is not None else f"DIR: the folder's name {corridor!r} (give --name)"
        raise InputError(f"{what}: found the control character {bad[0]!r} in {corridor!r}; allowed: one line of "
                         "text without control characters")
    return corridor


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise InputError(f"DIR: {folder} is a file; allowed: a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise InputError(f"DIR: {folder} is not empty; `bayescpec init` writes only into a new or empty folder "
                         "(nothing was written)")
    check_output_folder(folder, "DIR")


def init_study(folder: str | Path, *, name: str | None = None) -> list[Path]:
    """Write a new study into ``folder`` (created if missing; must be empty); return the files.

    ``name`` is the corridor's name in the framework and the README (default: the folder's name; an
    empty name is refused). Raises :class:`~bayescpec.errors.InputError` when ``folder`` is a file, is
    not empty or cannot be made (a file among its parents, a place that takes no new files).
    """
    folder = Path(folder)
    _check_folder(folder)
    corridor = _corridor(name, folder)
    values = {"corridor": corridor, "corridor_markdown": markdown_text(corridor),
              "framework_name": toml_string(f"{corridor} conversion framework")}
    try:
        if not folder.exists():
            folder.resolve().parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.resolve().parent, prefix=f".{folder.name}.init."))
    except OSError as exc:
        raise InputError(f"DIR: cannot make {folder}: {exc.strerror or exc}") from None
    try:
        for target, template in STUDY_FILES.items():
            text = (TEMPLATES / template).read_text(encoding="utf-8")
            path = staging / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(string.Template(text).safe_substitute(values), encoding="utf-8")
        if folder.exists():
            for item in staging.iterdir():
                item.replace(folder / item.name)
            staging.rmdir()
        else:
            staging.replace(folder)
    except OSError as exc:
        raise InputError(f"DIR: cannot write the study into {folder}: {exc.strerror or exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [folder / target for target in STUDY_FILES]
