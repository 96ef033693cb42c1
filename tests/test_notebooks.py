"""The notebooks: stored executed, with their outputs and figures (a reader on a code host sees them), in
sync with their code, calling only the public API; and (slow) every one still runs top to bottom
without error, leaving the repository untouched.

Re-execute and store them with ``bash .ci/env python notebooks/execute.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart.ipynb", "02_new_evidence.ipynb", "03_priors_and_sensitivity.ipynb",
            "04_explain_next_whatif.ipynb"]
#: the largest a stored notebook may be (its figures are PNGs)
MAX_BYTES = 3_000_000

_spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "notebooks" / "execute.py")
execute_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_notebooks)


def snapshot() -> dict[str, str]:
    """Hashes of every file under evidence/ and results/ (what the notebooks must not write)."""
    files = {}
    for folder in ("evidence", "results"):
        for path in sorted((ROOT / folder).rglob("*")) if (ROOT / folder).exists() else []:
            if path.is_file():
                files[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def outputs(book, kind: str) -> list[str]:
    """Every output of the given MIME type (``text/plain``, ``image/png``) or stream text (``stream``)."""
    found = []
    for cell in book.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if kind == "stream" and out.output_type == "stream":
                found.append(out.text)
            elif kind in out.get("data", {}):
                found.append(out["data"][kind])
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_is_stored_executed_with_outputs_in_sync_with_its_code(path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name} is not stored executed top to bottom: {counts}"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    stored = book.metadata.get("bayescpec", {}).get("source_sha256")
    assert stored == execute_notebooks.source_sha256(book), (
        f"{path.name}: a code cell changed since the notebook was executed; "
        f"run `bash .ci/env python notebooks/execute.py {path.name}`")
    assert outputs(book, "image/png"), f"{path.name} stores no figure"
    assert path.stat().st_size < MAX_BYTES
    source = "\n".join(c.source for c in code)
    assert "import bayescpec as bc" in source
    assert "bayescpec." not in source.replace("import bayescpec as bc", ""), \
        f"{path.name} reaches past the public API (use bc.<name>)"
    assert "matplotlib.use(" not in source, "figures must render inline"


def test_the_quickstart_fit_converges_with_its_warning_on():
    book = nbformat.read(ROOT / "notebooks" / "01_quickstart.ipynb", as_version=4)
    source = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert "ConvergenceWarning" not in source and "simplefilter" not in source
    text = "".join(outputs(book, "stream"))
    assert "converged: True | all checks passed" in text and "converged: False" not in text
    assert not [o for c in book.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "stream" and o.name == "stderr" and "ConvergenceWarning" in o.text]


def test_every_notebook_is_here():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path):
    before = snapshot()
    book = execute_notebooks.execute(path, save=False)   # raises CellExecutionError naming the failing cell
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert outputs(book, "image/png"), "the figures no longer render inline"
    assert snapshot() == before, "the notebook wrote into evidence/ or results/"
