"""Edges of the command line found by a tester: output places that are files or cannot be made
(--out, --csv, init's DIR), option values out of range, text that must be escaped in the files
init writes, very long CSV fields. Each bad input is refused with "error: ..." naming the option,
exit code 2, no traceback, nothing written or left half-written (no staging folders).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bayescpec.cli import app
from bayescpec.errors import InputError

runner = CliRunner()


def cli(*args):
    outcome = runner.invoke(app, [str(a) for a in args])
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), repr(outcome.exception)
    return outcome


def refused(outcome, *fragments: str) -> str:
    text = " ".join(outcome.output.split())
    assert outcome.exit_code == 2, outcome.output
    assert "Traceback" not in text and text.startswith("error:"), outcome.output
    for fragment in fragments:
        assert fragment in text, (fragment, outcome.output)
    return text


def entries(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# ---------------------------------------------------------------------------------------------
# D5: --out that is a file, under a file, or in a place that accepts no new files
# ---------------------------------------------------------------------------------------------

OUT_COMMANDS = [
    ("run",),
    ("report", "RESULT", "--no-figures", "-f", "csv", "--no-page"),
    ("explain", "RESULT", "--no-figures", "-f", "csv"),
    ("next", "RESULT", "--no-figures", "-f", "csv"),
    ("robustness", "RESULT", "--no-figures", "-f", "csv"),
    ("whatif", "RESULT", "--no-figures", "-f", "csv"),
    ("check", "RESULT", "--no-figures", "-f", "csv"),
    ("compare-priors",),
    ("trajectory",),
    ("calibrate",),
]
OUT_PLACES = [
    ("a-file", lambda tmp: tmp / "afile", "is a file; allowed: a folder (new or existing)"),
    ("under-a-file", lambda tmp: tmp / "afile" / "sub", "afile is a file, not a folder"),
    ("proc", lambda tmp: Path("/proc/bayescpec-nope"), "/proc does not accept new files"),
]


@pytest.mark.parametrize("place,where,fragment", OUT_PLACES, ids=[p[0] for p in OUT_PLACES])
@pytest.mark.parametrize("command", OUT_COMMANDS, ids=[c[0] for c in OUT_COMMANDS])
def test_out_that_cannot_be_a_folder_is_refused_up_front(tmp_path, command, place, where, fragment):
    (tmp_path / "afile").write_text("mine")
    args = [str(tmp_path / "res") if a == "RESULT" else a for a in command]
    refused(cli(*args, "--out", where(tmp_path)), "error: --out:", fragment)
    assert entries(tmp_path) == ["afile"] and (tmp_path / "afile").read_text() == "mine"


@pytest.fixture
def saved_report_result(tmp_path):
    from bayescpec.workflow.store import save_result
    from report_fixtures import make_result

    save_result(make_result(), tmp_path / "res" / "result.nc")
    return tmp_path / "res"


@pytest.mark.parametrize("command", [("report", "--no-page"), ("report", "--page")])
def test_report_into_a_file_leaves_no_staging_folder(tmp_path, saved_report_result, command):
    (tmp_path / "afile").write_text("mine")
    before = entries(tmp_path)
    refused(cli(*command[:1], saved_report_result, *command[1:], "--out", tmp_path / "afile", "--no-figures",
                "-f", "csv"), "--out:", "afile is a file")
    assert entries(tmp_path) == before


def test_publish_removes_its_staging_folder_when_the_move_fails(tmp_path):
    from bayescpec._fs import publish_directory, staged_folder

    out = tmp_path / "out"
    staging = staged_folder(out)
    (staging / "table.csv").write_text("a\n1\n")
    out.write_text("a file now")                            # made a file after staging: publishing must fail
    with pytest.raises(InputError, match="is a file"):
        publish_directory(staging, out)
    assert entries(tmp_path) == ["out"] and out.read_text() == "a file now"


def test_staged_folder_refuses_a_file(tmp_path):
    from bayescpec._fs import staged_folder

    (tmp_path / "afile").write_text("mine")
    with pytest.raises(InputError, match="is a file"):
        staged_folder(tmp_path / "afile")
    assert entries(tmp_path) == ["afile"]


# ---------------------------------------------------------------------------------------------
# D6: diff --csv in a folder that does not exist, or naming a folder
# ---------------------------------------------------------------------------------------------

CSV_PLACES = [
    ("missing-folder", lambda tmp: tmp / "nonexistent" / "dir" / "x.csv", ("the folder", "dir does not exist")),
    ("a-folder", lambda tmp: tmp, ("is a folder; allowed: a file name",)),
    ("under-a-file", lambda tmp: tmp / "afile" / "x.csv", ("afile is a file, not a folder",)),
    ("proc", lambda tmp: Path("/proc/bayescpec-x.csv"), ("/proc does not accept new files",)),
]


@pytest.mark.parametrize("case,where,fragments", CSV_PLACES, ids=[c[0] for c in CSV_PLACES])
def test_diff_csv_that_cannot_be_written_is_refused(tmp_path, case, where, fragments):
    (tmp_path / "afile").write_text("mine")
    refused(cli("diff", "latest", "previous", "--vintages", tmp_path / "vintages", "--csv", where(tmp_path)),
            "error: --csv:", *fragments)
    assert entries(tmp_path) == ["afile"]


# ---------------------------------------------------------------------------------------------
# D7: init writes the name escaped for TOML and Markdown; refuses what it cannot make or use
# ---------------------------------------------------------------------------------------------

NAMES = [
    'A "quoted" name \\ with [brackets]',
    "Back\\slash\\ at the end\\",
    "Ünïcödé — corridor *bold* <b>x</b> | # `code`",
    "'''triple''' \"\"\"quotes\"\"\"",
    "$corridor ${framework_name} $$",
]


@pytest.mark.parametrize("name", NAMES)
def test_init_escapes_the_name_in_every_file_it_writes(tmp_path, name):
    import tomllib

    import bayescpec as bc
    from bayescpec.inputs.scaffold import STUDY_FILES

    study = tmp_path / "corridor"
    made = cli("init", study, "--name", name)
    assert made.exit_code == 0, made.output
    framework = tomllib.loads((study / "priors" / "framework.toml").read_text(encoding="utf-8"))
    assert framework["framework"]["name"] == f"{name} conversion framework"
    tomllib.loads((study / "priors" / "baseline.toml").read_text(encoding="utf-8"))
    loaded = bc.load_study(framework=study / "priors" / "framework.toml", priors=study / "priors" / "baseline.toml",
                           evidence=study / "evidence" / "evidence.csv")
    assert loaded.framework.channel_ids == ["industry"]
    heading = (study / "README.md").read_text(encoding="utf-8").splitlines()[0]
    assert heading.startswith("# ") and heading.endswith(": a bayescpec study")
    assert heading.replace("\\", "").replace("# ", "", 1).startswith(name.replace("\\", "")[:5])
    assert sorted(p.relative_to(study).as_posix() for p in study.rglob("*") if p.is_file()) == sorted(STUDY_FILES)


INIT_REFUSED = [
    ("empty-name", lambda tmp: tmp / "new", ["--name", ""], ("--name: found an empty name",)),
    ("blank-name", lambda tmp: tmp / "new", ["--name", "   "], ("--name: found an empty name",)),
    ("two-lines", lambda tmp: tmp / "new", ["--name", "one\ntwo"], ("--name: found the control character",)),
    ("under-a-file", lambda tmp: tmp / "afile" / "sub", [], ("DIR:", "afile is a file, not a folder")),
    ("deep-under-a-file", lambda tmp: tmp / "afile" / "f" / "sub", [], ("DIR:", "afile is a file, not a folder")),
    ("proc", lambda tmp: Path("/proc/bayescpec-nope"), [], ("DIR:", "/proc does not accept new files")),
    ("a-file", lambda tmp: tmp / "afile", [], ("DIR:", "afile is a file; allowed: a new or empty folder")),
]


@pytest.mark.parametrize("case,where,extra,fragments", INIT_REFUSED, ids=[c[0] for c in INIT_REFUSED])
def test_init_refuses_with_a_message_and_writes_nothing(tmp_path, case, where, extra, fragments):
    (tmp_path / "afile").write_text("mine")
    refused(cli("init", where(tmp_path), *extra), "error:", *fragments)
    assert entries(tmp_path) == ["afile"] and (tmp_path / "afile").read_text() == "mine"


# ---------------------------------------------------------------------------------------------
# D11: a long, properly quoted note is a note, not "a quote that is never closed"
# ---------------------------------------------------------------------------------------------

def _set_note(path: Path, row_id: str, note: str) -> int:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    index = next(i for i, r in enumerate(rows) if r and r[0] == row_id)
    rows[index][rows[0].index("note")] = note
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return index + 1


@pytest.mark.parametrize("length", [131_073, 140_000, 1_000_000])
def test_a_long_quoted_note_is_accepted(shipped_copy, length):
    import bayescpec as bc

    note = ('He said "yes, then no", twice. ' * (length // 31 + 1))[:length]
    _set_note(shipped_copy["evidence"], "mech-digital-001", note)
    study = bc.load_study(**shipped_copy)
    assert study.evidence.set_index("id").loc["mech-digital-001", "note"] == note
    assert cli("validate", shipped_copy["evidence"], "--framework", shipped_copy["framework"]).exit_code == 0


def test_a_value_longer_than_the_limit_is_named_as_such(shipped_copy, monkeypatch):
    import bayescpec as bc
    import bayescpec.inputs.text as text

    monkeypatch.setattr(text, "FIELD_LIMIT", 1000)
    line = _set_note(shipped_copy["evidence"], "mech-digital-001", "x" * 1001)
    with pytest.raises(InputError) as raised:
        bc.load_study(**shipped_copy)
    message = str(raised.value)
    assert f"line {line}" in message and "found a value of more than 1,000 characters" in message
    assert "allowed: at most 1,000 characters per value" in message


# ---------------------------------------------------------------------------------------------
# D12: numbers out of range, settings given twice, dates in other forms, an unreachable scheduler
# ---------------------------------------------------------------------------------------------

BELOW_ONE = [
    (("next", "RESULT", "--top", "0"), "--top: must be at least 1; found 0"),
    (("next", "RESULT", "--top", "-1"), "--top: must be at least 1; found -1"),
    (("explain", "RESULT", "--top", "0"), "--top: must be at least 1; found 0"),
    (("explain", "RESULT", "--top", "-3"), "--top: must be at least 1; found -3"),
    (("robustness", "RESULT", "--max-clues", "0"), "--max-clues: must be at least 1; found 0"),
    (("robustness", "RESULT", "--max-clues", "-1"), "--max-clues: must be at least 1; found -1"),
]


@pytest.mark.parametrize("args,message", BELOW_ONE, ids=[" ".join(a[::2]) + a[-1] for a, _ in BELOW_ONE])
def test_counts_below_one_are_refused_naming_the_option(tmp_path, args, message):
    args = [str(tmp_path / "res") if a == "RESULT" else a for a in args]
    refused(cli(*args, "--out", tmp_path / "out"), message)
    assert entries(tmp_path) == []


CONSTRAINTS = ["energy_debt", "security", "water_stress"]
SETTINGS = [
    ("set-twice", dict(set=["energy_debt=1", "energy_debt=2"]),
     "--set: constraint 'energy_debt' is given twice ('energy_debt=1', then 'energy_debt=2'); give each constraint once"),
    ("shift-twice", dict(shift=["security=-1", " security =1"]), "--shift: constraint 'security' is given twice"),
    ("set-huge", dict(set=["energy_debt=1e308"]),
     "--set energy_debt: found '1e308'; allowed: a severity from -20 to 20 (logit scale"),
    ("set-below", dict(set=["energy_debt=-20.5"]), "allowed: a severity from -20 to 20"),
    ("shift-huge", dict(shift=["security=-1e6"]), "--shift security: found '-1e6'; allowed: a shift from -20 to 20"),
]


@pytest.mark.parametrize("case,given,message", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_whatif_settings_given_twice_or_beyond_the_scale_are_refused(case, given, message):
    from bayescpec.analysis.scenarios import parse_settings

    with pytest.raises(InputError) as raised:
        parse_settings(CONSTRAINTS, **given)
    assert message in str(raised.value)


def test_whatif_settings_at_the_bounds_and_set_plus_shift_are_accepted():
    from bayescpec.analysis.scenarios import parse_settings

    spec = parse_settings(CONSTRAINTS, set=["energy_debt=20", "security=-20"], shift=["energy_debt=-1"])
    assert spec.set == {"energy_debt": 20.0, "security": -20.0} and spec.shift == {"energy_debt": -1.0}


@pytest.mark.parametrize("scheduler", ["tcp://127.0.0.1:1", "not-an-address"])
def test_an_unreachable_scheduler_is_one_message(scheduler):
    import dask
    import distributed  # noqa: F401  (its config defaults loaded before the override, not inside it)

    from bayescpec.workflow.executor import run_tasks

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(InputError) as raised:
        run_tasks(abs, [-1, 2], scheduler=scheduler)
    assert f"--scheduler: cannot reach the Dask scheduler at {scheduler}" in str(raised.value)


def test_compare_priors_with_an_unreachable_scheduler_exits_2(tmp_path):
    import dask
    import distributed  # noqa: F401

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        outcome = cli("compare-priors", "--priors", "baseline", "--scheduler", "tcp://127.0.0.1:1",
                      "--out", tmp_path / "out", "-q")
    refused(outcome, "--scheduler: cannot reach the Dask scheduler at tcp://127.0.0.1:1")
    assert entries(tmp_path) == []


def test_history_needs_the_vintages_folder_it_is_given(tmp_path, monkeypatch):
    (tmp_path / "afile.csv").write_text("id\n")
    refused(cli("history", "--vintages", tmp_path / "nonexistent"), "--vintages: folder", "nonexistent not found")
    refused(cli("history", "--vintages", tmp_path / "afile.csv"), "--vintages:", "afile.csv is a file")
    monkeypatch.chdir(tmp_path)                            # the default folder not made yet: no vintages yet
    outcome = cli("history")
    assert outcome.exit_code == 0 and "No vintages under results/vintages yet" in outcome.output, outcome.output


DATES = [
    ("basic-form", ("run", "--as-of", "20260101"), "--as-of: not a date in YYYY-MM-DD form: found '20260101'"),
    ("week-date", ("run", "--as-of", "2026-W01-1"), "--as-of: not a date in YYYY-MM-DD form: found '2026-W01-1'"),
    ("with-time", ("run", "--as-of", "2026-01-01T00:00"), "--as-of: not a date in YYYY-MM-DD form"),
    ("ordinal", ("compare-priors", "--as-of", "2026001"), "--as-of: not a date in YYYY-MM-DD form: found '2026001'"),
    ("dates-basic", ("trajectory", "--dates", "2026-01-01,20260201"),
     "--dates: not a date in YYYY-MM-DD form: found '20260201'"),
]


@pytest.mark.parametrize("case,args,message", DATES, ids=[d[0] for d in DATES])
def test_dates_in_other_forms_than_yyyy_mm_dd_are_refused(tmp_path, case, args, message):
    refused(cli(*args, "--out", tmp_path / "out"), message)
    assert entries(tmp_path) == []


def test_a_unit_name_with_an_accent_is_refused_saying_ascii(shipped_copy):
    import csv
    import io

    import bayescpec as bc

    path = shipped_copy["evidence"]
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    index = next(i for i, r in enumerate(rows) if r and r[0] == "mech-digital-001")
    rows[index][rows[0].index("unit")] = "Zône"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    with pytest.raises(InputError) as raised:
        bc.load_study(**shipped_copy)
    assert f"line {index + 1}" in str(raised.value) and "found 'Zône'" in str(raised.value)
    assert "only ASCII letters (A-Z, a-z, no accents)" in str(raised.value)
