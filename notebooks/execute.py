"""Re-execute the notebooks and store them with their outputs (figures included), so that a reader on a
code host sees what each cell produces.

    bash .ci/env python notebooks/execute.py              # every notebook in notebooks/, saved in place
    bash .ci/env python notebooks/execute.py 01_quickstart.ipynb
    bash .ci/env python notebooks/execute.py --check      # execute, save nothing (what the slow test does)

Each notebook runs top to bottom in a fresh kernel with notebooks/ as its working folder; a failing
cell stops it with the cell and the error, and nothing is saved. A saved notebook records the
SHA-256 of its code cells in ``metadata.bayescpec.source_sha256``: ``tests/test_notebooks.py`` fails
when a code cell was edited without executing the notebook again.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT = 900  # seconds per cell


def source_sha256(book) -> str:
    """SHA-256 of the notebook's code: every code cell's source, in order."""
    digest = hashlib.sha256()
    for cell in book.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8") + b"\0")
    return digest.hexdigest()


def execute(path: Path, *, save: bool = True) -> nbformat.NotebookNode:
    """Run ``path`` in a fresh kernel; with ``save``, write it back with its outputs. Returns the book."""
    import bayescpec

    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, timeout=TIMEOUT, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    for cell in book.cells:
        cell.metadata.pop("execution", None)
    book.metadata["bayescpec"] = {"source_sha256": source_sha256(book), "version": bayescpec.__version__}
    if save:
        nbformat.validate(book)
        tmp = path.with_suffix(".ipynb.tmp")
        nbformat.write(book, tmp)
        tmp.replace(path)
    return book


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: every *.ipynb in notebooks/)")
    parser.add_argument("--check", action="store_true", help="execute only; save nothing")
    args = parser.parse_args(argv)
    paths = [Path(p) if Path(p).exists() else HERE / p for p in args.notebooks] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        started = time.perf_counter()
        print(f"{path.name}: executing ...", file=sys.stderr, flush=True)
        execute(path, save=not args.check)
        verb = "executed" if args.check else "executed and saved"
        print(f"{path.name}: {verb} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
