"""Shared fixtures: paths to the shipped files, writable copies, and a tiny one-channel study; and the
terminal every test renders CLI output for."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

#: The terminal width every test's CLI output is rendered for, whatever the shell, CI or fresh-check set
#: (fresh-check sets COLUMNS=80): wide enough that no line of any command's output wraps, so a test of
#: content never depends on where a line breaks, on a table's wide or compact layout, or on how long the
#: machine's temporary paths are. A test of layout passes its own width:
#: ``CliRunner().invoke(app, args, env={"COLUMNS": "80"})``.
TEST_COLUMNS = "1000"
#: variables that make rich or typer render as for a terminal (colour codes, the terminal's own width).
#: Removed as this file is imported, before any test module imports the CLI: rich fixes a console's
#: colours when the console is made (bayescpec.cli.options makes its two on import), typer reads these
#: when it is imported. pytest's own output has been set up by then and keeps its colours.
TERMINAL_VARIABLES = ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
                      "TERMINAL_WIDTH", "GITHUB_ACTIONS", "LINES")
for _name in TERMINAL_VARIABLES:
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _same_terminal_everywhere(monkeypatch):
    """Every test (and every process it starts) sees a terminal TEST_COLUMNS wide. Set per test, not for
    the session, so that pytest's own report keeps the width of the terminal it is printed on."""
    monkeypatch.setenv("COLUMNS", TEST_COLUMNS)


ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK = ROOT / "priors" / "framework.toml"
BASELINE = ROOT / "priors" / "baseline.toml"
EVIDENCE = ROOT / "evidence" / "cpec.csv"
SOURCES = ROOT / "evidence" / "sources.csv"


@pytest.fixture
def shipped_copy(tmp_path: Path) -> dict[str, Path]:
    """Writable copies of the shipped framework, priors, evidence and sources."""
    (tmp_path / "priors").mkdir()
    (tmp_path / "evidence").mkdir()
    paths = {}
    for role, src, sub in (("framework", FRAMEWORK, "priors"), ("priors", BASELINE, "priors"),
                           ("evidence", EVIDENCE, "evidence"), ("sources", SOURCES, "evidence")):
        paths[role] = tmp_path / sub / src.name
        shutil.copy(src, paths[role])
    return paths


MINI_FRAMEWORK = textwrap.dedent('''
    [framework]
    name = "one channel"

    [[channels]]
    id = "a"
    label = "Channel A"

    [[tiers]]
    id = "mechanism"
    label = "mechanism"
    targets = "channel"
    rank = 1

    [[indicators]]
    id = "clue"
    label = "a clue"
    target = "a"
    tiers = ["mechanism"]
    kinds = ["signal"]

    [[indicators]]
    id = "units"
    label = "units showing the outcome"
    target = "a"
    tiers = ["mechanism"]
    kinds = ["count"]
    rate_converting = 0.7
    rate_not_converting = 0.2

    [[indicators]]
    id = "level"
    label = "a standardised level"
    target = "a"
    tiers = ["mechanism"]
    kinds = ["measure"]
    baseline = 10.0
    scale = 2.0
''')

MINI_PRIORS = textwrap.dedent('''
    name = "mini"
    description = "test prior"
    [channels.a]
    mean = {mean}
    concentration = {concentration}
    [loadings]
    sd = 0.5
    [diagnosticity.tiers.mechanism]
    sensitivity = {{ mean = 0.7, concentration = 15 }}
    false_positive = {{ mean = 0.3, concentration = 15 }}
    [measure_loading]
    mechanism = {loading}
    [counts]
    rate_concentration = {rate_concentration}
    overdispersion = {{ mean = {icc_mean}, concentration = {icc_concentration} }}
''')
#: the mini study's count priors by default: the shipped baseline's [counts] (20 pseudo-units behind
#: each of the indicator's rates 0.7 / 0.2, intra-class correlation rho ~ Beta(3, 17))
MINI_COUNTS = {"rate_concentration": 20, "icc_mean": 0.15, "icc_concentration": 20}
#: for one-dimensional oracles: the rates all but fixed (10 000 pseudo-units: sd 0.004) and almost no
#: overdispersion (rho 0.001 +/- 0.0003), so a count row is the beta-binomial at fixed values
#: (tests/test_counts.py integrates over the realistic priors)
NEAR_FIXED_COUNTS = {"rate_concentration": 10000, "icc_mean": 0.001, "icc_concentration": 10000}


def write_mini_study(folder: Path, rows: list[str], *, mean=0.5, concentration=2.0, loading=0.6,
                     counts: dict | None = None) -> dict[str, Path]:
    """A one-channel, no-constraint study; ``rows`` are CSV lines after the header; ``counts`` overrides
    :data:`MINI_COUNTS` (the count priors)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "framework": folder / "framework.toml",
        "priors": folder / "mini.toml",
        "evidence": folder / "evidence.csv",
        "sources": folder / "sources.csv",
    }
    paths["framework"].write_text(MINI_FRAMEWORK)
    paths["priors"].write_text(MINI_PRIORS.format(mean=mean, concentration=concentration, loading=loading,
                                                  **{**MINI_COUNTS, **(counts or {})}))
    header = "id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,reliability,package,source,note"
    paths["evidence"].write_text("\n".join([header] + rows) + "\n")
    paths["sources"].write_text("key,reference,year,url\ntest,Test source,2026,\n")
    return paths


def replace_in(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


#: the shipped data as of this date is what the golden tables (tests/golden/) describe
GOLDEN_AS_OF = "2026-06-30"
#: the test's own fit of the shipped data: enough draws that the golden comparison, whose tolerance is
#: 4 x the Monte Carlo standard error of the difference, still fails on a real change of 0.03 in a
#: probability (test_golden.py checks this for every probability it compares)
GOLDEN_FIT = {"draws": 2500, "tune": 1000, "chains": 4, "seed": 20260527}


@pytest.fixture(scope="session")
def shipped_result():
    """One fit of the shipped data as of GOLDEN_AS_OF, shared by the golden and report tests."""
    import warnings

    from bayescpec import fit, load_study

    study = load_study(framework=FRAMEWORK, priors="baseline", evidence=EVIDENCE, as_of=GOLDEN_AS_OF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(study, **GOLDEN_FIT)


def fit_passing_the_gate(study, *, seeds=(1, 2, 3), **settings):
    """A fit of ``study`` that passes the convergence gate: the first of ``seeds`` whose fit passes.

    For a test that needs a converged fit (its Monte Carlo errors to mean what they say, or a PSIS base
    the fast path accepts). Whether one seed passes is a matter of luck and of the machine: PyTensor
    compiles for the CPU it runs on, so the same seed takes another path elsewhere. So the test retries
    with the next seed, as an analyst would (``fit`` itself re-samples once after divergences), and
    fails only when every seed fails, naming each failure."""
    import warnings

    from bayescpec import fit

    failures = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit(study, seed=seed, **settings)
        if result.attrs["converged"]:
            return result
        failures.append(f"seed {seed}: {result.attrs['convergence_failures']}")
    raise AssertionError(f"no fit with {settings} passed the convergence gate: " + "; ".join(failures))
