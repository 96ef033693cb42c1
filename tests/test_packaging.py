"""Installable (issue 14): the shipped study and the init templates travel as package data, mapped from the
one editable source (top-level priors/ and evidence/), and every sub-package is in the wheel.

The full check -- the wheel installed into a clean virtual environment runs the shipped study from
another folder -- is ``.ci/wheel-check`` (run by ``.ci/run``); the slow test here builds the wheel and
looks inside it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from bayescpec.inputs import study as study_module

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_every_sub_package_is_listed_for_the_wheel():
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bayescpec").rglob("__init__.py")}
    listed = set(SETUPTOOLS["packages"])
    assert found <= listed, f"sub-packages missing from pyproject.toml [tool.setuptools] packages: {found - listed}"
    assert "bayescpec.inputs.templates" in listed


def test_the_shipped_study_is_mapped_from_the_top_level_folders_not_copied():
    assert SETUPTOOLS["package-dir"] == {"bayescpec._shipped.priors": "priors",
                                          "bayescpec._shipped.evidence": "evidence"}
    assert not (ROOT / "bayescpec" / "_shipped").exists(), "a second committed copy of the study would drift"
    for pattern, folder in (("*.toml", "priors"), ("*.csv", "evidence")):
        assert sorted((ROOT / folder).glob(pattern)), folder


def test_shipped_path_prefers_the_current_folder_then_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # nothing here, no package data in a source checkout: the checkout's own files
    assert study_module.shipped_path("priors", "framework.toml") == ROOT / "priors" / "framework.toml"
    assert study_module.default_evidence() == ROOT / "evidence" / "cpec.csv"
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "evidence.csv").write_text("id\n")
    assert study_module.default_evidence() == tmp_path / "evidence" / "evidence.csv"
    (tmp_path / "evidence" / "cpec.csv").write_text("id\n")
    assert study_module.default_evidence() == tmp_path / "evidence" / "cpec.csv"
    # an installed package: its package data (bayescpec/_shipped/) comes before the checkout
    fake = tmp_path / "site" / "bayescpec" / "inputs" / "study.py"
    (tmp_path / "site" / "bayescpec" / "_shipped" / "priors").mkdir(parents=True)
    (tmp_path / "site" / "bayescpec" / "_shipped" / "priors" / "framework.toml").write_text("")
    monkeypatch.setattr(study_module, "__file__", str(fake))
    monkeypatch.chdir(tmp_path / "site")
    assert study_module.shipped_path("priors", "framework.toml") == \
        tmp_path / "site" / "bayescpec" / "_shipped" / "priors" / "framework.toml"


@pytest.mark.slow
def test_the_wheel_holds_the_study_and_templates_byte_for_byte(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, timeout=600, capture_output=True)
    subprocess.run(["rm", "-rf", str(ROOT / "build")], check=False)
    (wheel,) = tmp_path.glob("bayescpec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for folder, pattern in (("priors", "*.toml"), ("evidence", "*.csv")):
            for path in (ROOT / folder).glob(pattern):
                member = f"bayescpec/_shipped/{folder}/{path.name}"
                assert archive.read(member) == path.read_bytes(), member
        for path in (ROOT / "bayescpec" / "inputs" / "templates").iterdir():
            assert f"bayescpec/inputs/templates/{path.name}" in names
        assert {f"{p.replace('.', '/')}/__init__.py" for p in SETUPTOOLS["packages"]
                if not p.startswith(("bayescpec._shipped", "bayescpec.inputs.templates"))} <= names
        assert "bayescpec/cli/help.py" in names
