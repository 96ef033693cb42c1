"""Every notebook in notebooks/ runs top to bottom without error, leaving the repository untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart.ipynb", "02_new_evidence.ipynb", "03_priors_and_sensitivity.ipynb"]


def snapshot() -> dict[str, str]:
    """Hashes of every file under evidence/ and results/ (what the notebooks must not write)."""
    files = {}
    for folder in ("evidence", "results"):
        for path in sorted((ROOT / folder).rglob("*")) if (ROOT / folder).exists() else []:
            if path.is_file():
                files[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def test_every_notebook_is_here_and_committed_without_big_outputs():
    assert [p.name for p in NOTEBOOKS] == EXPECTED
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        size = sum(len(str(o)) for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert size < 20_000, f"{path.name} carries {size} characters of outputs"
        code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
        assert "import bayescpec as bc" in code
        public = code.replace("import bayescpec as bc", "")
        assert "bayescpec." not in public, f"{path.name} reaches past the public API (use bc.<name>)"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path):
    before = snapshot()
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert snapshot() == before, "the notebook wrote into evidence/ or results/"
