"""The package layout is the architecture: stages import only from their own or lower stages, no module
imports the CLI, no import circle between modules, every module short enough to read.

Stages, lowest first (ARCHITECTURE.md): the foundation (``errors``, ``_fs``, the package root) ->
``inputs`` -> ``engine`` -> ``outputs`` -> ``workflow`` -> ``analysis`` -> ``cli``. Every import counts,
also those inside functions (they are deferred for start-up speed, not exempt from the layering).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bayescpec"
STAGES = ("inputs", "engine", "outputs", "workflow", "analysis", "cli")
#: the longest a module may be (lines); a longer one should be split by what it owns
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def stage_of(module: str) -> int:
    """0 for the foundation, then 1 + the index in STAGES."""
    parts = module.split(".")
    return STAGES.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in STAGES else 0


def imports_of(module: str) -> set[str]:
    """Every bayescpec module ``module`` imports (resolved to a module of the package)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                root = ".".join(base + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            names = [root] + [f"{root}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name in MODULES:
                found.add(name)
    found.discard(module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_stage_is_a_package_with_a_docstring():
    for stage in STAGES:
        init = PACKAGE / stage / "__init__.py"
        assert init.exists(), stage
        assert ast.get_docstring(ast.parse(init.read_text())), f"bayescpec/{stage}/__init__.py needs a docstring"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_higher_stage(module):
    higher = [name for name in GRAPH[module] if stage_of(name) > stage_of(module)]
    assert not higher, f"{module} (stage {stage_of(module)}) imports {higher} from a higher stage"


def test_nothing_outside_the_cli_imports_the_cli():
    offenders = [m for m, deps in GRAPH.items() if stage_of(m) != len(STAGES) and any(
        stage_of(d) == len(STAGES) for d in deps)]
    assert not offenders


def test_no_cli_command_module_imports_the_app():
    commands = [m for m in MODULES if m.startswith("bayescpec.cli.") and m not in ("bayescpec.cli.__main__",)]
    assert commands
    for module in commands:
        assert "bayescpec.cli" not in GRAPH[module], f"{module} imports the app"


def test_no_import_circle_between_modules():
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


def test_no_module_is_too_long_to_read():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_layering_test_sees_imports():
    """Not vacuous: it resolves relative imports, including those inside functions."""
    assert "bayescpec.inputs.study" in GRAPH["bayescpec.engine.aggregate"]
    assert "bayescpec.engine.sampling" in GRAPH["bayescpec.workflow.update"]  # a deferred import
    assert stage_of("bayescpec.cli.run") == len(STAGES) and stage_of("bayescpec.errors") == 0


def test_architecture_md_lists_every_module():
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [m for m, p in MODULES.items() if p.name != "__init__.py" and p.name != "__main__.py"
               and f"{p.relative_to(PACKAGE).as_posix()}" not in text]
    assert not missing, f"ARCHITECTURE.md does not mention {missing}"


def test_every_public_name_resolves_and_import_is_light():
    """Each name in ``bayescpec.__all__`` is defined where the lazy map says; importing the package (in a
    fresh interpreter) does not import PyMC."""
    import subprocess
    import sys

    import bayescpec as bc

    missing = [name for name in bc.__all__ if not hasattr(bc, name)]
    assert not missing, missing
    code = "import sys, bayescpec; print('pymc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
