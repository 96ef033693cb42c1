"""Writing files without ever leaving a half-written one: every stage that writes uses these.

``atomic_write_bytes`` writes beside the target and renames over it; ``staged_folder`` gives a
temporary folder beside an output folder, and ``publish_directory`` moves its files into place only
once everything was written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import InputError

__all__ = ["atomic_write_bytes", "staged_folder", "publish_directory", "check_output_folder", "check_output_file"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``
    (keeping ``path``'s permissions when it exists)."""
    path = Path(path)
    mode = os.stat(path).st_mode & 0o777 if path.exists() else 0o644
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:
        pass


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (as a file or a folder)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path, option: str, shown: Path) -> None:
    """Raise InputError unless a folder can be made (and removed) inside ``folder``: what staging needs.
    A real attempt, not ``os.access``: as root, access says yes to /proc and to read-only mounts."""
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".bayescpec-probe-"))
    except OSError as exc:
        raise InputError(f"{option}: cannot write {shown}: {folder} does not accept new files "
                         f"({exc.strerror or exc}); allowed: a folder in a writable place") from None


def check_output_folder(out: str | Path, option: str = "--out") -> None:
    """Raise :class:`~bayescpec.errors.InputError` naming ``option`` unless ``out`` is an existing folder
    or can be made as one, and a staged folder can be made beside it: ``out`` a file, a file where one
    of its parent folders should be, or a place that does not accept new files. Writes nothing
    (a probe folder is made and removed at once)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{option}: {out} is a file; allowed: a folder (new or existing)")
    anchor = _existing_ancestor(out.parent if out.name else out)
    if not anchor.is_dir():
        raise InputError(f"{option}: {out} cannot be made: {anchor} is a file, not a folder; allowed: a folder "
                         "(new or existing) whose parents are folders")
    _probe(anchor, option, out)
    if out.is_dir():
        _probe(out, option, out)


def check_output_file(path: str | Path, option: str) -> None:
    """Raise InputError naming ``option`` unless ``path`` can be written as a file: not a folder, its
    parent an existing folder that accepts new files. Writes nothing."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option}: {path} is a folder; allowed: a file name (new or existing), e.g. "
                         f"{path / 'changes.csv'}")
    parent = Path(os.path.abspath(path)).parent
    if not parent.exists():
        raise InputError(f"{option}: cannot write {path}: the folder {parent} does not exist; allowed: a file "
                         "in an existing folder")
    if not parent.is_dir():
        raise InputError(f"{option}: cannot write {path}: {parent} is a file, not a folder; allowed: a file "
                         "in an existing folder")
    _probe(parent, option, path)


def staged_folder(out: Path) -> Path:
    """A new temporary folder beside ``out`` to write into; :func:`publish_directory` moves it in.
    Raises InputError when ``out`` is a file or cannot be made (see :func:`check_output_folder`)."""
    out = Path(out)
    check_output_folder(out, "output folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging."))


def publish_directory(staging: Path, out: Path) -> None:
    """Move every file of ``staging`` into ``out`` (each by rename) and remove ``staging`` -- also when
    the move fails (``out`` a file, a full disk): no staging folder is ever left behind."""
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            raise InputError(f"output folder: {out} is a file; allowed: a folder (new or existing)")
        out.mkdir(parents=True, exist_ok=True)
        for item in Path(staging).iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
