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

__all__ = ["atomic_write_bytes", "staged_folder", "publish_directory"]


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


def staged_folder(out: Path) -> Path:
    """A new temporary folder beside ``out`` to write into; :func:`publish_directory` moves it in."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging."))


def publish_directory(staging: Path, out: Path) -> None:
    """Move every file of ``staging`` into ``out`` (each by rename) and remove ``staging``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for item in Path(staging).iterdir():
        os.replace(item, out / item.name)
    shutil.rmtree(staging, ignore_errors=True)
