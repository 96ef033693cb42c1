"""Malformed inputs of issue 13, one table per class: each is refused with the file, the line an editor
shows (and the column), what was found and what was allowed -- or, for what is legitimate (a
byte-order mark, a header-only log), accepted. Through the CLI: exit code 2, no traceback, nothing
written, the inputs untouched.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bayescpec as bc
from bayescpec.cli import app
from bayescpec.errors import BayescpecError, InputError
from bayescpec.inputs.query import QueryError
from bayescpec.inputs.querycheck import check_query
from bayescpec.inputs.spec import load_framework

from conftest import EVIDENCE, FRAMEWORK, replace_in

runner = CliRunner()
HEADER = ("id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,reliability,"
          "package,source,note,unit")
BOM = b"\xef\xbb\xbf"
# the shipped log's shape (one line per row): counts in messages are checked against these, so the tests
# follow the evidence log as it is audited instead of pinning a row count
SHIPPED_ROWS = EVIDENCE.read_text(encoding="utf-8").count("\n") - 1
SHIPPED_GAPS = sum(line.split(",")[5] == "gap" for line in EVIDENCE.read_text(encoding="utf-8").splitlines()[1:])
APPENDED_LINE = SHIPPED_ROWS + 2  # a line appended to the shipped log: after the header and every row


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write_rows(path: Path, rows: list[list[str]], **kwargs) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", **kwargs).writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def set_value(path: Path, row_id: str, column: str, value: str) -> int:
    """Set one cell of the row with ``row_id``; returns that row's line (the shipped log has one line per row)."""
    rows = rows_of(path)
    index = next(i for i, r in enumerate(rows) if r[0] == row_id)
    rows[index][rows[0].index(column)] = value
    write_rows(path, rows)
    return index + 1


def append_line(path: Path, line: str) -> int:
    text = path.read_text(encoding="utf-8")
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


def load(paths: dict[str, Path]):
    return bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])


def refused(paths: dict[str, Path]) -> str:
    with pytest.raises(InputError) as raised:
        load(paths)
    return str(raised.value)


def cli(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def assert_cli_refuses_run(paths: dict[str, Path], tmp_path: Path, *fragments: str, extra=()) -> str:
    """`bayescpec run` on these inputs: exit 2, one message with the fragments, nothing written,
    the inputs untouched."""
    before = {p: p.read_bytes() for p in paths.values() if p.is_file()}
    out = tmp_path / "results"
    result = cli("run", "--framework", str(paths["framework"]), "--priors", str(paths["priors"]),
                 "--evidence", str(paths["evidence"]), "--out", str(out), *extra)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, f"{fragment!r} missing from:\n{result.output}"
    assert not out.exists()
    assert {p: p.read_bytes() for p in before} == before
    return result.output


# ------------------------------------------------------------------------------------- inf
def _measure_row(value):
    return lambda p: set_value(p["evidence"], "ctx-abs-001", "value", value)


def _count_row(k, n):
    return lambda p: append_line(p["evidence"], f"cnt-1,2026-01-01,sez,sez_firm_entry,mechanism,count,,{k},{n},,,,,,"
                                                f"tang2026,a count,")


INFINITE = [
    ("measure-inf", _measure_row("inf"), "value", "not a finite number: found 'inf'; allowed: a finite number"),
    ("measure-minus-infinity", _measure_row("-Infinity"), "value", "not a finite number: found '-Infinity'"),
    ("measure-overflows", _measure_row("1e999"), "value", "not a finite number: found '1e999'"),
    ("measure-too-far", _measure_row("1e200"), "value",
     "found '1e200', 1e+199 scales from the baseline of indicator 'private_credit_gdp'"),
    ("count-n-inf", _count_row("3", "inf"), "n", "not a finite number: found 'inf'"),
    ("count-k-inf", _count_row("inf", "10"), "k", "not a finite number: found 'inf'"),
    ("reliability-inf", lambda p: set_value(p["evidence"], "pot-sez-001", "reliability", "inf"), "reliability",
     "not a finite number: found 'inf'"),
]


@pytest.mark.parametrize("case,modify,column,fragment", INFINITE, ids=[c[0] for c in INFINITE])
def test_infinite_numbers_are_refused(shipped_copy, tmp_path, case, modify, column, fragment):
    line = modify(shipped_copy)
    message = refused(shipped_copy)
    assert f"cpec.csv, line {line} " in message and f"), {column}: {fragment}" in message, message
    assert "1 problem" not in message and "problems found" not in message, "one cause, one problem"
    assert_cli_refuses_run(shipped_copy, tmp_path, f"line {line}", fragment)


@pytest.mark.parametrize("role,old,new,fragment", [
    ("priors", "concentration = 4 ", "concentration = inf ", "channels.sez.concentration: Input should be a finite number"),
    ("priors", "[constraints.security]\nmean = 0.0\nsd = 1.0", "[constraints.security]\nmean = 0.0\nsd = nan",
     "constraints.security.sd: Input should be a finite number"),
    ("framework", "scale = 0.15", "scale = inf", "indicators.5.scale: Input should be a finite number"),
    ("framework", "baseline = 0.2", "baseline = -inf", "indicators.5.baseline: Input should be a finite number"),
])
def test_infinite_numbers_in_toml_are_refused(shipped_copy, role, old, new, fragment):
    replace_in(shipped_copy[role], old, new)
    message = refused(shipped_copy)
    assert fragment in message and ", line " in message, message


# ------------------------------------------------------------------------------------- dates
def _every_date(value):
    """Every row's ``observed`` set to ``value`` (no row left with a valid date: what the fuzzer found
    crashing pandas' date comparison); returns the first row's line."""
    def modify(paths):
        rows = rows_of(paths["evidence"])
        for row in rows[1:]:
            row[1] = value
        write_rows(paths["evidence"], rows)
        return 2
    return modify


def _one_date(value):
    return lambda p: set_value(p["evidence"], "pot-sez-001", "observed", value)


DATES = [
    ("no-row-has-a-date", _every_date(""), "not a date in YYYY-MM-DD form: found ''"),
    ("every-date-is-text", _every_date("soon"), "not a date in YYYY-MM-DD form: found 'soon'"),
    ("every-date-impossible", _every_date("2026-02-30"), "not a date in YYYY-MM-DD form: found '2026-02-30'"),
    ("one-date-impossible", _one_date("2026-02-30"), "not a date in YYYY-MM-DD form: found '2026-02-30'"),
    ("one-date-day-first", _one_date("01/02/2026"), "not a date in YYYY-MM-DD form: found '01/02/2026'"),
    ("one-date-with-time", _one_date("2026-06-30T00:00"), "not a date in YYYY-MM-DD form: found '2026-06-30T00:00'"),
    ("one-date-in-the-future", _one_date("9999-12-31"), "date 9999-12-31 is in the future"),
]


@pytest.mark.parametrize("case,modify,fragment", DATES, ids=[c[0] for c in DATES])
def test_bad_dates_are_refused_at_their_line(shipped_copy, tmp_path, case, modify, fragment):
    line = modify(shipped_copy)
    message = refused(shipped_copy)
    assert f"cpec.csv, line {line} " in message and f"), observed: {fragment}" in message, message
    assert_cli_refuses_run(shipped_copy, tmp_path, f"line {line}", fragment)


# ------------------------------------------------------------------------------------- empty log
def test_header_only_log_validates_with_a_note_and_loads_with_no_rows(shipped_copy):
    shipped_copy["evidence"].write_text(HEADER + "\n", encoding="utf-8")
    study = load(shipped_copy)
    assert len(study.evidence) == 0
    from bayescpec.cli.run import prior_only_note

    assert "has a header and no rows" in prior_only_note(study) and "prior-only" in prior_only_note(study)
    result = cli("validate", str(shipped_copy["evidence"]), "--framework", str(shipped_copy["framework"]))
    assert result.exit_code == 0, result.output
    assert "no evidence rows" in result.output and "prior-only result" in result.output
    assert "(evidence, no rows)" in result.output
    early = bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"],
                          evidence=shipped_copy["evidence"], as_of="2000-01-01")
    assert "has a header and no rows" in prior_only_note(early)


def test_a_log_of_data_gaps_only_is_prior_only_and_says_so_truthfully(shipped_copy):
    from bayescpec.cli.run import prior_only_note

    lines = shipped_copy["evidence"].read_text(encoding="utf-8").split("\n")
    gaps = [line for line in lines if line.startswith("gap-")]
    assert len(gaps) == SHIPPED_GAPS > 1
    shipped_copy["evidence"].write_text("\n".join([lines[0], *gaps]) + "\n", encoding="utf-8")
    study = load(shipped_copy)
    assert len(study.evidence) == SHIPPED_GAPS
    note = prior_only_note(study)
    assert f"has only data gaps ({SHIPPED_GAPS} rows of kind 'gap') and no observations" in note and "prior-only" in note
    assert "no rows" not in note
    result = cli("validate", str(shipped_copy["evidence"]), "--framework", str(shipped_copy["framework"]))
    assert result.exit_code == 0, result.output
    assert f"only data gaps ({SHIPPED_GAPS} rows of kind 'gap')" in result.output and "prior-only result" in result.output
    assert "(evidence, only data gaps)" in " ".join(result.output.split())


def test_as_of_before_every_row_is_prior_only_and_says_so(shipped_copy):
    from bayescpec.cli.run import prior_only_note

    assert prior_only_note(load(shipped_copy)) == ""
    early = bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"],
                          evidence=shipped_copy["evidence"], as_of="2000-01-01")
    assert prior_only_note(early).startswith(f"no evidence was observed by 2000-01-01 ({SHIPPED_ROWS} later rows left out)")


def test_run_on_a_header_only_log_gives_a_prior_only_result_that_says_so(shipped_copy, tmp_path):
    shipped_copy["evidence"].write_text(HEADER + "\n", encoding="utf-8")
    out = tmp_path / "results"
    result = cli("run", "--framework", str(shipped_copy["framework"]), "--priors", str(shipped_copy["priors"]),
                 "--evidence", str(shipped_copy["evidence"]), "--out", str(out),
                 "--draws", "20", "--tune", "20", "--chains", "1")
    assert result.exit_code == 0, result.output
    assert result.output.count("prior-only result") == 2, result.output  # before the fit and after the tables
    assert "0 evidence rows" in result.output and (out / "result.nc").is_file()


def test_an_empty_file_is_refused(shipped_copy, tmp_path):
    shipped_copy["evidence"].write_bytes(b"")
    message = refused(shipped_copy)
    assert "cpec.csv, line 1: file is empty; expected a header line and rows" in message
    assert_cli_refuses_run(shipped_copy, tmp_path, "file is empty")


# ------------------------------------------------------------------------------------- line numbers
def _bad_row_after(prefix: str):
    """Rows 1-2 as shipped, then ``prefix`` (lines that shift the editor's numbering), then mech-digital-001
    with a bad target."""
    def modify(paths):
        lines = paths["evidence"].read_text(encoding="utf-8").split("\n")
        row = next(line for line in lines if line.startswith("mech-digital-001,"))
        bad = row.replace(",digital,", ",digitl,", 1)
        assert bad != row and row not in lines[:3]
        text = "\n".join(lines[:3]) + "\n" + prefix + bad + "\n"
        paths["evidence"].write_text(text, encoding="utf-8")
        return text.count("\n")  # the bad row is the last line
    return modify


LINES = [
    ("after-a-blank-line", _bad_row_after("\n")),
    ("after-two-blank-lines", _bad_row_after("\n\n")),
    ("after-a-two-line-note", _bad_row_after('extra-1,2025-01-01,sez,policy_commitment,potential,signal,1,,,,,,,,'
                                              'tang2026,"a note\nspanning two lines",\n')),
    ("after-a-note-with-a-blank-line", _bad_row_after('extra-1,2025-01-01,sez,policy_commitment,potential,signal,1,,,'
                                                      ',,,,,tang2026,"a note\n\nwith a blank line",\n\n')),
]


@pytest.mark.parametrize("case,modify", LINES, ids=[c[0] for c in LINES])
def test_line_numbers_are_the_lines_an_editor_shows(shipped_copy, tmp_path, case, modify):
    line = modify(shipped_copy)
    message = refused(shipped_copy)
    assert f"cpec.csv, line {line} (id 'mech-digital-001'), target: found 'digitl'" in message, message
    assert_cli_refuses_run(shipped_copy, tmp_path, f"line {line} (id 'mech-digital-001')")


def test_line_numbers_with_crlf_and_a_multiline_note(shipped_copy):
    lines = shipped_copy["evidence"].read_text(encoding="utf-8").split("\n")
    assert lines[4].startswith("ctx-reg-001,") and lines[5].startswith("mech-digital-001,")  # lines 5 and 6
    lines[4] = lines[4].replace('Paper 6.2:', 'Paper\r\n6.2:', 1)  # a note over two lines
    lines[5] = lines[5].replace(",digital,", ",digitl,", 1)
    shipped_copy["evidence"].write_bytes("\r\n".join(lines).encode("utf-8"))
    assert "line 7 (id 'mech-digital-001'), target" in refused(shipped_copy)


def test_duplicated_id_names_both_editor_lines(shipped_copy):
    lines = shipped_copy["evidence"].read_text(encoding="utf-8").split("\n")
    duplicate = lines[1]
    lines.insert(2, "")  # a blank line: the first row stays on line 2, every later row moves down one
    text = "\n".join(lines).rstrip("\n") + "\n" + duplicate + "\n"
    shipped_copy["evidence"].write_text(text, encoding="utf-8")
    message = refused(shipped_copy)
    assert f"line {text.count(chr(10))} (id 'pot-gwadar-003'), id: duplicated id 'pot-gwadar-003' (first on line 2)" \
        in message, message


def test_update_conflict_names_the_editor_lines(shipped_copy, tmp_path):
    from bayescpec.inputs.append import append_evidence

    log_lines = shipped_copy["evidence"].read_text(encoding="utf-8").split("\n")
    assert log_lines[4].startswith("ctx-reg-001,")
    changed = log_lines[4].replace(",0.65,", ",0.6,", 1)  # ctx-reg-001 (line 5) with other content
    assert changed != log_lines[4]
    batch = tmp_path / "batch.csv"
    batch.write_text(HEADER + "\n\n" + 'new-1,2025-01-01,sez,policy_commitment,potential,signal,1,,,,,,,,tang2026,'
                     '"two\nlines",\n' + changed + "\n", encoding="utf-8")
    with pytest.raises(InputError) as raised:
        append_evidence(batch, evidence=shipped_copy["evidence"], framework=shipped_copy["framework"])
    assert "batch.csv, line 5 (id 'ctx-reg-001'), id" in str(raised.value)
    assert "cpec.csv, line 5) with different content" in str(raised.value)


# ------------------------------------------------------------------------------------- encoding
def test_bytes_that_are_not_utf8_are_located_with_the_fix(shipped_copy, tmp_path):
    text = shipped_copy["evidence"].read_text(encoding="utf-8")
    line_text = text.split("\n")[4]
    assert "Paper 6.2" not in "\n".join(text.split("\n")[:4])  # its first occurrence is on line 5
    column = line_text.index("Paper 6.2") + 4  # the é of Papér, 1-based
    shipped_copy["evidence"].write_bytes(text.replace("Paper 6.2", "Papér 6.2", 1).encode("latin-1", "replace"))
    message = refused(shipped_copy)
    assert f"cpec.csv, line 5, column {column}: found byte 0xe9, which is not UTF-8" in message, message
    assert "'é'" in message and "save the file as UTF-8" in message and "CSV UTF-8" in message
    assert "codec" not in message and "position" not in message
    assert_cli_refuses_run(shipped_copy, tmp_path, "line 5, column", "save the file as UTF-8")


def test_every_line_with_bad_bytes_is_reported(shipped_copy):
    data = shipped_copy["evidence"].read_bytes().split(b"\n")
    data[4] = data[4][:10] + b"\x96" + data[4][10:]
    data[9] = b"\xff" + data[9]
    shipped_copy["evidence"].write_bytes(b"\n".join(data))
    message = refused(shipped_copy)
    assert "line 5, column 11: found byte 0x96" in message and "line 10, column 1: found byte 0xff" in message
    assert "2 problems found" in message


@pytest.mark.parametrize("role", ["framework", "priors", "sources"])
def test_bad_bytes_in_other_files_are_located(shipped_copy, role):
    data = shipped_copy[role].read_bytes().split(b"\n")
    data[2] = b"ab\xe1" + data[2]
    shipped_copy[role].write_bytes(b"\n".join(data))
    message = refused(shipped_copy)
    assert f"{shipped_copy[role].name}, line 3, column 3: found byte 0xe1" in message, message
    assert "save the file as UTF-8" in message


def test_utf16_and_workbooks_are_named(shipped_copy):
    shipped_copy["evidence"].write_bytes(shipped_copy["evidence"].read_text(encoding="utf-8").encode("utf-16"))
    assert "found UTF-16 text" in refused(shipped_copy)
    shipped_copy["evidence"].write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert "is a zip archive (e.g. an Excel .xlsx" in refused(shipped_copy)


# ------------------------------------------------------------------------------------- delimiters and structure
STRUCTURE = [
    ("semicolons", lambda p: write_rows(p["evidence"], rows_of(p["evidence"]), delimiter=";"),
     "cpec.csv, line 1: the columns are separated by semicolons (';'), not by commas"),
    ("tabs", lambda p: write_rows(p["evidence"], rows_of(p["evidence"]), delimiter="\t"),
     "cpec.csv, line 1: the columns are separated by tabs, not by commas"),
    ("semicolon-sources", lambda p: write_rows(p["sources"], rows_of(p["sources"]), delimiter=";"),
     "sources.csv, line 1: the columns are separated by semicolons (';')"),
    ("one-row-with-semicolons", lambda p: append_line(p["evidence"], "x-1;2025-01-01;sez;policy_commitment;potential;"
                                                      "signal;1;;;;;;;;tang2026;note;"),
     f"cpec.csv, line {APPENDED_LINE}: found 1 fields; allowed: 17, one per column of the header (line 1); the fields of this "
     "line look separated by another character than commas"),
    ("unquoted-comma", lambda p: append_line(p["evidence"], "x-1,2025-01-01,sez,policy_commitment,potential,signal,1,"
                                             ",,,,,,,tang2026,a note, with a comma,zone-1"),
     f"cpec.csv, line {APPENDED_LINE}: found 18 fields; allowed: 17, one per column of the header (line 1); a value that "
     "contains a comma must be in double quotes"),
    # the usual case: an empty unit, so the line ends with a comma; the comma in the note must not
    # be taken for a stray one at the end (the tail of the note would become the unit)
    ("unquoted-comma-empty-unit", lambda p: append_line(p["evidence"], "x-1,2025-01-01,sez,policy_commitment,"
                                                        "potential,signal,1,,,,,,,,tang2026,a note, with a comma,"),
     f"cpec.csv, line {APPENDED_LINE}: found 18 fields; allowed: 17, one per column of the header (line 1); a value that "
     "contains a comma must be in double quotes (or, if the line ends with a stray comma, remove it)"),
    ("unclosed-quote", lambda p: append_line(p["evidence"], 'x-1,2025-01-01,sez,policy_commitment,potential,signal,1,'
                                             ',,,,,,,tang2026,"a note never closed,'),
     f"cpec.csv, line {APPENDED_LINE}: found a double quote (\") that opens a quoted value and is never closed"),
    ("text-after-quote", lambda p: append_line(p["evidence"], 'x-1,2025-01-01,sez,policy_commitment,potential,signal,'
                                               '1,,,,,,,,tang2026,"a note" and more,'),
     f"cpec.csv, line {APPENDED_LINE}: found text after the closing quote of a quoted value"),
    ("duplicated-column", lambda p: write_rows(p["evidence"], [r + [r[0]] for r in rows_of(p["evidence"])]),
     "cpec.csv, line 1, id: found the column twice (fields 1 and 18); allowed: each column once"),
    ("unnamed-column", lambda p: write_rows(p["evidence"], [r + ["x" if i else ""] for i, r in
                                                            enumerate(rows_of(p["evidence"]))]),
     "cpec.csv, line 1, column 18: found a column with no name"),
]


@pytest.mark.parametrize("case,modify,fragment", STRUCTURE, ids=[c[0] for c in STRUCTURE])
def test_structure_problems_are_named(shipped_copy, tmp_path, case, modify, fragment):
    modify(shipped_copy)
    message = refused(shipped_copy)
    assert fragment in message, message
    assert "Error tokenizing" not in message and "Expected" not in message
    assert_cli_refuses_run(shipped_copy, tmp_path, fragment.split(": ", 1)[1][:40])


def test_trailing_empty_fields_are_harmless(shipped_copy):
    write_rows(shipped_copy["evidence"], [r + ([""] if i else []) for i, r in enumerate(rows_of(shipped_copy["evidence"]))])
    assert len(load(shipped_copy).evidence) == SHIPPED_ROWS


# ------------------------------------------------------------------------------------- byte-order marks
@pytest.mark.parametrize("roles", [("sources",), ("evidence",), ("sources", "evidence"), ("framework", "priors")])
def test_byte_order_marks_are_accepted(shipped_copy, roles):
    for role in roles:
        shipped_copy[role].write_bytes(BOM + shipped_copy[role].read_bytes())
    study = load(shipped_copy)
    assert len(study.evidence) == SHIPPED_ROWS and "tang2026" in set(study.sources["key"])
    args = [str(shipped_copy[role]) for role in ("framework", "priors", "sources", "evidence")]
    result = cli("validate", *args)
    assert result.exit_code == 0, result.output
    for role, kind in (("sources", "sources"), ("evidence", "evidence"), ("priors", "priors")):
        assert f"{shipped_copy[role]} ({kind})" in " ".join(result.output.split()), result.output


# ------------------------------------------------------------------------------------- tier ranks
def test_two_tiers_with_one_rank_are_refused(shipped_copy, tmp_path):
    text = shipped_copy["framework"].read_text(encoding="utf-8")
    shipped_copy["framework"].write_text(text.replace("rank = 2", "rank = 1", 1), encoding="utf-8")
    line = text.split("\n").index("rank = 2") + 1
    first = text.split("\n").index("rank = 1") + 1
    message = refused(shipped_copy)
    assert (f"framework.toml, line {line}, tiers.2.rank: found rank 1, already the rank of tier 'potential' "
            f"(line {first}); allowed: a rank no other tier has") in message, message
    assert_cli_refuses_run(shipped_copy, tmp_path, "already the rank of tier 'potential'")


# ------------------------------------------------------------------------------------- paths and options
def test_evidence_option_pointing_at_a_folder(shipped_copy, tmp_path):
    folder = shipped_copy["evidence"].parent
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"], evidence=folder)
    assert str(raised.value) == (f"--evidence: {folder} is a folder, not a file; did you mean {folder / 'cpec.csv'}? "
                                 f"(.csv files in it: cpec.csv, sources.csv)")
    proc = subprocess.run([sys.executable, "-m", "bayescpec.cli", "run", "--evidence", str(folder),
                           "--framework", str(shipped_copy["framework"]), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "IsADirectoryError" not in proc.stderr
    assert "is a folder, not a file; did you mean" in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("option,role,usual", [("--framework", "framework", "framework.toml"),
                                               ("--priors", "priors", "baseline.toml"),
                                               ("--sources", "sources", "sources.csv")])
def test_other_options_pointing_at_a_folder(shipped_copy, tmp_path, option, role, usual):
    folder = shipped_copy[role].parent
    paths = dict(shipped_copy)
    paths[role] = folder
    extra = ("--sources", str(folder)) if role == "sources" else ()
    output = assert_cli_refuses_run(paths if role != "sources" else shipped_copy, tmp_path,
                                    f"{option}: {folder} is a folder, not a file; did you mean", extra=extra)
    assert usual in output


def test_validate_refuses_a_study_whose_log_has_no_sources_file_as_run_does(shipped_copy, tmp_path, monkeypatch):
    """`validate` in a study folder refuses what `run` refuses: a log without its sources.csv. A file
    named explicitly (a batch for `update`, checked against the log's sources then) gets a note."""
    monkeypatch.chdir(shipped_copy["evidence"].parent.parent)
    shipped_copy["sources"].unlink()
    checked = cli("validate")
    assert checked.exit_code == 2 and "Traceback" not in checked.output, checked.output
    text = " ".join(checked.output.split())
    assert "sources.csv: file not found; an evidence log needs a sources file" in text, text
    assert_cli_refuses_run(shipped_copy, tmp_path, "sources.csv: file not found")
    batch = cli("validate", str(shipped_copy["evidence"]))
    assert batch.exit_code == 0 and "its source keys were not checked" in " ".join(batch.output.split())


def test_a_sources_file_without_its_key_column_is_named_as_such(shipped_copy, tmp_path, monkeypatch):
    rows = rows_of(shipped_copy["sources"])
    write_rows(shipped_copy["sources"], [row[1:] for row in rows])  # the first column, key, dropped
    assert rows[0][0] == "key"
    monkeypatch.chdir(shipped_copy["evidence"].parent.parent)
    checked = cli("validate")
    text = " ".join(checked.output.split())
    assert checked.exit_code == 2 and "sources.csv, line 1, key: missing required column" in text, text
    assert "unknown column; allowed: id" not in text  # not read as an evidence log
    assert_cli_refuses_run(shipped_copy, tmp_path, "key: missing required column")


def test_validate_and_update_given_a_folder(shipped_copy, tmp_path):
    result = cli("validate", str(shipped_copy["evidence"].parent), "--framework", str(shipped_copy["framework"]))
    assert result.exit_code == 0 and "cpec.csv (evidence)" in result.output and "sources.csv (sources)" in result.output
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = cli("validate", str(empty))
    assert result.exit_code == 2 and "is a folder with no .toml or .csv files" in result.output
    snapshot = shipped_copy["evidence"].read_bytes()
    result = cli("update", str(empty), "--evidence", str(shipped_copy["evidence"]),
                 "--framework", str(shipped_copy["framework"]), "--vintages", str(tmp_path / "v"))
    assert result.exit_code == 2 and f"{empty}: is a folder, not a file" in result.output, result.output
    result = cli("update", str(shipped_copy["evidence"]), "--evidence", str(empty),
                 "--framework", str(shipped_copy["framework"]), "--vintages", str(tmp_path / "v"))
    assert result.exit_code == 2 and "is a folder, not an evidence log" in result.output, result.output
    assert shipped_copy["evidence"].read_bytes() == snapshot and not (tmp_path / "v").exists()


PRIORS = [
    ("unknown-name", "nonexistent", ["--priors: no prior set 'nonexistent'", "nonexistent.toml",
                                      "the prior sets beside", "are: baseline"]),
    ("did-you-mean", "basline", ["--priors: no prior set 'basline' (did you mean 'baseline'?)", "are: baseline"]),
    ("missing-path", "elsewhere/mine.toml", ["--priors: elsewhere/mine.toml: file not found; the prior sets beside",
                                             "are: baseline"]),
]


@pytest.mark.parametrize("case,priors,fragments", PRIORS, ids=[c[0] for c in PRIORS])
def test_priors_option_names_itself_and_the_prior_sets_that_exist(shipped_copy, tmp_path, case, priors, fragments):
    (shipped_copy["framework"].parent / "skeptical.toml").write_text("name = 'x'\n")  # listed, even if invalid
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=priors, evidence=shipped_copy["evidence"])
    assert len(raised.value.problems) == 1
    for fragment in fragments:
        assert fragment in str(raised.value), str(raised.value)
    assert "are: baseline, skeptical" in str(raised.value)
    assert_cli_refuses_run({**shipped_copy, "priors": Path(priors)}, tmp_path, *fragments)


def test_missing_evidence_reports_the_root_cause_only(shipped_copy, tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], evidence=missing)
    assert raised.value.problems[0].message == f"--evidence: {missing}: file not found"
    assert len(raised.value.problems) == 1 and "sources" not in str(raised.value)
    output = assert_cli_refuses_run({**shipped_copy, "evidence": missing}, tmp_path, f"--evidence: {missing}")
    assert "sources.csv" not in output
    # a missing sources file beside an existing log is the root cause, and is reported
    shipped_copy["sources"].unlink()
    message = refused(shipped_copy)
    assert "sources.csv: file not found; an evidence log needs a sources file" in message


def test_compare_priors_refuses_unknown_prior_sets_before_announcing_fits(shipped_copy, tmp_path):
    result = cli("compare-priors", "--priors", "baseline", "--priors", "nope", "--priors", "basline",
                 "--framework", str(shipped_copy["framework"]), "--evidence", str(shipped_copy["evidence"]),
                 "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 2, result.output
    assert "fitting" not in result.output
    assert "no prior set 'nope'" in result.output and "did you mean 'baseline'?" in result.output
    assert not (tmp_path / "cmp").exists()
    set_value(shipped_copy["evidence"], "pot-sez-001", "target", "sezz")  # one bad row: reported once, not per set
    result = cli("compare-priors", "--priors", "baseline", "--priors", "baseline", "--framework",
                 str(shipped_copy["framework"]), "--evidence", str(shipped_copy["evidence"]))
    assert result.exit_code == 2 and result.output.count("found 'sezz'") == 1 and "fitting" not in result.output


# ------------------------------------------------------------------------------------- queries
CHANNELS = ["sez", "digital", "green", "agriculture", "gwadar"]
CONSTRAINTS = ["security", "energy_debt"]
STAGES = ["firms", "linkages", "learning", "productivity", "welfare"]
DIMENSIONS = ["innovation", "upgrading", "green", "digital", "inclusion"]
NAMES = dict(channels=CHANNELS, constraints=CONSTRAINTS, stages=STAGES, dimensions=DIMENSIONS,
             levels=["favourable", "unfavourable"])
BAD_QUERIES = [
    ("not tau", "'not' takes a true/false statement such as theta[sez] > tau; found 'tau', a number"),
    ("theta[sez] > tau and 1", "'and' takes a true/false statement such as theta[sez] > tau; found '1', a number"),
    ("all(theta)", "all() takes a true/false statement such as theta[sez] > tau; found 'theta', a number"),
    ("any(severity)", "any() takes a true/false statement"),
    ("count(theta) >= 0", "count() takes a true/false statement"),
    ("count(theta > tau) >= 0", "is true whatever the values of the quantities"),
    ("theta[sez] > tau or not theta[sez] > tau", "is true whatever the values"),
    ("theta[sez] >= theta[sez]", "is true whatever the values"),
    ("theta[sez] > 1", "is false whatever the values"),
    ("mean(theta) < 0", "is false whatever the values"),
    ("(theta[sez] > tau) > 0", "a comparison takes numbers; found 'theta[sez] > tau', a true/false statement"),
    ("-(theta[sez] > tau) < 0", "'-' takes numbers"),
    ("(theta[sez] > tau) + 1 > 0", "'+' takes numbers"),
    ("mean(theta > tau) > 1", "is false whatever the values"),  # the share of channels is at most 1
    ("max(reach[sez] > tau) > 0", "max() takes numbers"),
    # a material implication is true wherever its condition fails: not part of the language (issue 19)
    ("implies(nqpf, tau)", "implies(a, b) is not allowed: a material implication"),
    ("implies(nqpf > tau, reach[sez][learning] > tau)", "write the claim as 'b given a'"),
    # counterfactuals and conditionals, each form refused where it is malformed
    ("under(theta[sez], security=bad) < tau", "'bad' is not a level; allowed: favourable, unfavourable"),
    ("under(theta[sez], securty=favourable) < tau", "'securty' is not a constraint (did you mean 'security'?)"),
    ("under(theta[sez]) < tau", "needs at least one constraint=level pair"),
    ("under(theta[sez], 1, security=favourable) < tau", "takes one quantity and constraint=level pairs"),
    ("swing(theta[sez], sez) > delta", "swing(): 'sez' is not a constraint"),
    ("swing(theta[sez]) > delta", "swing(x, constraint) takes a quantity and a constraint"),
    ("swing(theta[sez], security, security=favourable) > 0", "it cannot also be held"),
    ("swing(theta[sez] > tau, security) > 0", "swing() takes numbers"),
    ("under(swing(theta[sez], security), energy_debt=favourable) > 0", "cannot be nested"),
    ("under(tau, security=favourable) > 0", "under() needs a quantity, not a constant"),
    ("swing(theta[sez], security) > 1", "is false whatever the values"),
    ("theta[sez] > tau given nqpf > tau given nqpf < 0.9", "'given' appears 2 times"),
    ("theta[sez] > tau given", "'given' needs a statement before it and a condition after it"),
    ("any(theta > tau given nqpf > tau)", "only join a statement and its condition at the top level"),
    ("theta[sez] > tau given nqpf >= 0", "is true whatever the values"),
    ("theta[sez] > tau given nqpf", "must be a true/false statement"),
    ("reach[:][sez] > tau", "'sez' is not a stage"),
    ("all(reach[sez] > tau) or not all(reach[sez] > tau)", "is true whatever the values"),
    ("interruption[security] > 1", "is false whatever the values"),
    ("reach[sez][productivity] > 1", "is false whatever the values"),
    ("nqpf < 0", "is false whatever the values"),
    ("theta[sez] > 1" + "0" * 400, "is too large"),
    ("not " * 5000 + "theta[sez] > tau", "cannot parse query 'not not not"),
    ("(" * 300 + "theta[sez] > tau" + ")" * 300, "too many nested parentheses"),
    ("theta[sez]" + " + theta[sez]" * 3000 + " > tau", "cannot parse query 'theta[sez] + theta[sez]"),
    ("theta[sez] > tau\x00", "cannot parse query"),
    # a comparison of constants is a true/false statement too (the fuzzer found '-((tau > tau))' raising TypeError)
    ("-((tau > tau))", "'-' takes numbers; found 'tau > tau', a true/false statement"),
    ("-(1 > 0) < theta[sez]", "'-' takes numbers; found '1 > 0', a true/false statement"),
    ("(tau > 0) * theta[sez] > 0", "'*' takes numbers; found 'tau > 0', a true/false statement"),
    ("not (tau > tau)", "does not depend on any quantity"),
    ("theta[sez] > tau or tau > 0.1", "is true whatever the values"),
    ("theta[sez] > tau and delta > 0.9", "is false whatever the values"),
]
GOOD_QUERIES = ["theta[sez] > tau", "all(constraint_effect > 0)", "count(theta > tau) >= 3", "mean(theta) > 0.6",
                "theta[sez] > 0.3 and theta[sez] < 0.31", "theta[sez] - theta[gwadar] > 0.99", "any(theta > 0.01)",
                "all(theta > 0.99)", "not theta[sez] > tau", "mean(reach[sez]) > 0.5", "severity[security] > 1",
                "theta[sez] * theta[gwadar] > 0.81", "-theta[sez] < -tau", "theta[sez] > 0.9999",
                # the chain quantities of issue 11, at the edges of their ranges too
                "reach[sez][productivity] > tau", "interruption[security] > delta", "interruption[security] > 0.99",
                "reach[sez][learning] > tau given nqpf > tau", "constraint_effect[sez] < -0.5",
                # counterfactual and conditional forms (issue 19)
                "swing(theta[sez], security) > delta", "under(theta[sez], security=unfavourable) < tau",
                "swing(theta[sez], security, energy_debt=favourable) > delta",
                "min(under(theta, security=unfavourable) / under(theta, security=favourable)) <= 2/3",
                "sum(route_reach) <= 0.1 * sum(reach[:][productivity])", "route_share[sez] <= 0.1",
                "under(mean(reach[:][learning]) < tau, security=unfavourable, energy_debt=unfavourable)",
                "count(reach[sez, gwadar][welfare] > tau) >= 2", "min(nqpf_dimension) > tau", "max(interruption) > 0.5",
                "nqpf_dimension[inclusion] > nqpf", "mean(theta > tau) > 0.5", "(tau > 0.1) and theta[sez] > tau"]


@pytest.mark.parametrize("query,fragment", BAD_QUERIES, ids=[q[:30] for q, _ in BAD_QUERIES])
def test_bad_queries_are_query_errors(query, fragment):
    with pytest.raises(QueryError) as raised:
        check_query(query, **NAMES)
    assert fragment in str(raised.value)
    assert len(str(raised.value)) < 400, "a long query is shortened in the message"
    assert isinstance(raised.value, BayescpecError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("query", GOOD_QUERIES)
def test_informative_queries_are_accepted(query):
    check_query(query, **NAMES)


@pytest.mark.parametrize("query,fragment", [q for q in BAD_QUERIES if q[1]][:6], ids=[q[0] for q in BAD_QUERIES[:6]])
def test_bad_queries_in_a_framework_are_located(shipped_copy, tmp_path, query, fragment):
    text = shipped_copy["framework"].read_text(encoding="utf-8")
    line = text.split("\n").index('query = "nqpf > tau"') + 1
    replace_in(shipped_copy["framework"], 'query = "nqpf > tau"', f'query = "{query}"')
    index = [p.id for p in load_framework(FRAMEWORK).propositions].index("NQPF")
    message = refused(shipped_copy)
    assert f"framework.toml, line {line}, propositions.{index}.query: " in message and fragment in message, message
    assert_cli_refuses_run(shipped_copy, tmp_path, f"propositions.{index}.query")


# ------------------------------------------------------------------------------------- error noise
def test_duplicated_channel_id_is_reported_without_query_noise(shipped_copy):
    replace_in(shipped_copy["framework"], 'id = "digital"', 'id = "sez"')
    with pytest.raises(InputError) as raised:
        load_framework(shipped_copy["framework"])
    message = str(raised.value)
    assert "channels.1.id: duplicate id 'sez'" in message
    assert "leaves one value per" not in message and "propositions.0" not in message and "propositions.1" not in message
    assert "sez, sez" not in message  # allowed lists name each channel once


IDS = [
    ("empty", 'id = "sez"', 'id = ""', "channels.0.id: an id is ASCII letters, digits and underscores, starting with "
                                       "a letter (ids are written in evidence cells and queries); found ''"),
    ("with-a-space", 'id = "sez"', 'id = "my industry"', "channels.0.id: an id is ASCII letters"),
    ("leading-space", 'id = "sez"', 'id = " sez"', "found ' sez'"),
    ("starts-with-a-digit", 'id = "water_stress"', 'id = "2water"', "found '2water'"),
    ("reserved", 'id = "sez"', 'id = "any_channel"',
     "channels.0.id: 'any_channel' is reserved (an indicator's target for every channel)"),
    ("constraint-named-like-a-channel", 'id = "water_stress"', 'id = "agriculture"',
     "'agriculture' is already a channel id; targets must be unique"),
]


@pytest.mark.parametrize("case,old,new,fragment", IDS, ids=[c[0] for c in IDS])
def test_framework_ids_are_names(shipped_copy, case, old, new, fragment):
    """Ids are written in evidence cells (stripped of spaces) and queries: a framework id must be a name
    (a tester's '' matched empty targets; ' industry' could never be matched), and a clash is reported
    at its root, without follow-on problems about the clashing id's tiers or queries."""
    replace_in(shipped_copy["framework"], old, new)
    with pytest.raises(InputError) as raised:
        load_framework(shipped_copy["framework"])
    message = str(raised.value)
    assert fragment in message and "framework.toml, line " in message, message
    assert "is about a" not in message and "cannot parse query" not in message, message


@pytest.mark.parametrize("k,n,column,fragment", [("0", "-5", "n", "found '-5'; n must be > 0"),
                                                 ("-1", "-5", "n", "found '-5'; n must be > 0"),
                                                 ("7", "abc", "n", "not a number: found 'abc'"),
                                                 ("inf", "5", "k", "not a finite number")])
def test_a_bad_count_is_one_problem(shipped_copy, k, n, column, fragment):
    line = _count_row(k, n)(shipped_copy)
    with pytest.raises(InputError) as raised:
        load(shipped_copy)
    problems = [p for p in raised.value.problems if p.field in ("k", "n")]
    assert f"line {line} (id 'cnt-1')" in problems[0].where
    assert any(p.field == column and fragment in p.message for p in problems), problems
    assert not any("is larger than n" in p.message for p in problems), problems
    if k != "-1":
        assert len(problems) == 1, problems
