"""Every command's --help (issue 14): each default shown, choices shown as choices, no stray type labels,
-h and --version; bad choices are refused naming the option. Nothing here fits a model."""

from __future__ import annotations

import re

import pytest
from typer.core import TyperArgument, TyperOption
from typer.main import get_command
from typer.testing import CliRunner

import bayescpec
from bayescpec.cli import app

runner = CliRunner()
GROUP = get_command(app)
COMMANDS = sorted(GROUP.commands)
#: options whose choices --help must list, and the choices
CHOICES = {"--ci-kind": "[eti|hdi]", "--sampler": "[auto|pymc|nutpie]", "--method": "[auto|psis|refit]",
           "--format": "csv, md, latex, html, all"}
#: flags that are off unless given: nothing to show as a default
PLAIN_FLAGS = {"--help", "--quiet", "--json", "--yes", "--dry-run", "--version"}
STRAY = ("<bool>", "<int", "<float>", "<str>", "<path>", "<list", "range", "x>=", "{")


def render(*args: str, columns: int = 250) -> str:
    result = runner.invoke(app, [*args], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def rows(text: str) -> dict[str, str]:
    """The help text of each option/argument row, keyed by its first name (rows may wrap)."""
    found, current = {}, None
    for line in text.splitlines():
        body = line.strip("│ ").strip()
        head = re.match(r"^(\*\s+)?(--[\w-]+|-\w|[A-Z][A-Z_.]*)(\s|$)", body)
        if head and not body.startswith("[default"):
            current = head.group(2)
            found[current] = body
        elif current and body and not line.startswith(("╰", "╭")):
            found[current] += " " + body
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_every_default_and_choice_without_stray_labels(command):
    text = render(command, "--help")
    table = rows(text)
    for param in GROUP.commands[command].params:
        if isinstance(param, TyperOption):
            name = max(param.opts, key=len)
            assert name in table, (name, text)
            if name in PLAIN_FLAGS:
                continue
            assert "[default: " in table[name], f"{command} {name}: no default shown: {table[name]!r}"
            assert "[default: ]" not in table[name]
            if name in CHOICES:
                assert CHOICES[name] in table[name], (name, table[name])
        elif isinstance(param, TyperArgument):
            label = param.name.upper() if param.metavar is None else param.metavar
            assert label in table, (label, text)
            if not param.required:
                assert "[default: " in table[label]
    for stray in STRAY:
        assert stray not in text, f"{command} --help shows {stray!r}"
    assert not re.search(r"\w \.(\s|$)", text), "an empty default left 'text .' behind"
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    arguments = [p for p in GROUP.commands[command].params if isinstance(p, TyperArgument)]
    for argument in arguments:
        label = argument.metavar or argument.name.upper()
        assert (label if argument.required else f"[{label}") in usage, usage


@pytest.mark.parametrize("command", COMMANDS)
def test_minus_h_is_help_and_reads_at_80_columns(command):
    assert render(command, "-h", columns=120) == render(command, "--help", columns=120)
    narrow = render(command, "-h", columns=80)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    table = rows(narrow)
    for name, choices in CHOICES.items():  # wrapped between words, never inside one ("a ll")
        if name in table:
            assert choices in table[name], (command, name, table[name])
    assert "…" not in narrow


def test_app_help_lists_every_command_and_version():
    text = render("--help")
    for command in COMMANDS:
        assert command in text
    assert "--version" in text and "-h" in text
    for stray in STRAY:
        assert stray not in text
    assert render("--version").strip() == f"bayescpec {bayescpec.__version__}"
    assert render("-h") == text


@pytest.mark.parametrize("args, message", [
    (["run", "--ci-kind", "hpd"], "--ci-kind: must be 'eti' or 'hdi'; found 'hpd'"),
    (["run", "--sampler", "stan"], "--sampler: must be one of 'auto', 'pymc' or 'nutpie'; found 'stan'"),
    (["update", "x.csv", "--method", "fast"], "--method: must be one of 'auto', 'psis' or 'refit'; found 'fast'"),
    (["report", "r", "-f", "md", "-f", "docx"], "--format: must be one of 'csv', 'md', 'latex', 'html' or 'all'; "
                                                "found 'docx'"),
    (["run", "--draws", "5"], "--draws: must be from 10 to 100000; found 5"),
    (["trajectory", "--chains", "0"], "--chains: must be from 1 to 64; found 0"),
    # beyond what a sampler can take: refused before anything runs (update appended rows and then crashed)
    (["run", "--seed", "-1"], "--seed: must be from 0 to 4294967295; found -1"),
    (["run", "--seed", "99999999999999999999"], "--seed: must be from 0 to 4294967295; found 99999999999999999999"),
    (["run", "--draws", "99999999999999999999"], "--draws: must be from 10 to 100000"),
    (["run", "--tune", "100001"], "--tune: must be from 10 to 100000; found 100001"),
    (["run", "--chains", "99999999999"], "--chains: must be from 1 to 64; found 99999999999"),
    (["update", "x.csv", "--seed", "-1"], "--seed: must be from 0 to 4294967295; found -1"),
    (["update", "x.csv", "--chains", "65"], "--chains: must be from 1 to 64; found 65"),
    (["compare-priors", "--seed", "-1"], "--seed: must be from 0 to 4294967295"),
    (["calibrate", "--draws", "100001"], "--draws: must be from 10 to 100000"),
    (["calibrate", "--simulations", "10", "--seed", "4294967290"],
     "--seed: must be from 0 to 4294967279 for 10 simulations (simulation i fits with seed + i + 7); found 4294967290"),
    (["trajectory", "--seed", "4294967296"], "--seed: must be from 0 to 4294967295"),
])
def test_bad_choices_and_numbers_name_the_option_and_exit_2(tmp_path, args, message):
    result = runner.invoke(app, [*args, *(["--out", str(tmp_path / "out")] if args[0] != "update" else [])])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_help_does_not_import_the_heavy_stack():
    import subprocess
    import sys

    code = ("import sys; from bayescpec.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['run', '--help']); "
            "print(sorted(m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
