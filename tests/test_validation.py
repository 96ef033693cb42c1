"""Bad input, table-driven: every case names file, line/row and column, what was found and what was
allowed; `bayescpec run` exits 2 with no traceback and writes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import pytest

import bayescpec as bc
from bayescpec.errors import InputError

from conftest import replace_in


def set_cell(path: Path, row: int, column: str, value: str) -> int:
    """Set one cell of a CSV (row 0 = first data row); returns that row's line number."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    fields = list(rows[0].keys())
    rows[row][column] = value
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())
    return row + 2


def drop_column(path: Path, column: str) -> None:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    fields = [f for f in rows[0] if f != column]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())


def first_row(path: Path, **conditions) -> int:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return next(i for i, r in enumerate(rows) if all(r[k] == v for k, v in conditions.items()))


def _ev(column, value, where=None):
    def modify(paths):
        row = first_row(paths["evidence"], **(where or {}))
        return set_cell(paths["evidence"], row, column, value)
    return modify


def _text(role, old, new):
    def modify(paths):
        replace_in(paths[role], old, new)
    return modify


# (case id, modification, file role, expected fragments of the message)
CASES = [
    ("toml-syntax", _text("framework", 'id = "sez"', 'id = "sez'), "framework",
     ["framework.toml", "line", "TOML syntax error"]),
    ("unknown-key-did-you-mean", _text("priors", "concentration = 4", "concentraton = 4"), "priors",
     ["baseline.toml", "line", "unknown key 'concentraton'", "did you mean 'concentration'"]),
    ("unknown-channel-in-priors", _text("priors", "[channels.gwadar]", "[channels.gwadarr]"), "priors",
     ["baseline.toml", "unknown channel 'gwadarr'", "did you mean 'gwadar'", "no prior for channel 'gwadar'"]),
    ("beta-mean-outside", _text("priors", "mean = 0.55 ", "mean = 1.2 "), "priors",
     ["baseline.toml", "line", "channels.sez.mean", "less than 1", "1.2"]),
    ("non-positive-concentration", _text("priors", "concentration = 4", "concentration = 0"), "priors",
     ["baseline.toml", "concentration", "greater than 0", "found 0"]),
    # absurd but finite, or not a number at all: refused before a fit overflows (a tester's sd = 1e300 gave
    # R-hat 1e16 and 200-digit severities; `true` and "3" were coerced to numbers)
    ("severity-sd-huge", _text("priors", "[constraints.security]\nmean = 0.0\nsd = 1.0",
                               "[constraints.security]\nmean = 0.0\nsd = 1e300"),
     "priors", ["baseline.toml", "line", "constraints.security.sd", "less than or equal to 10", "1e+300"]),
    ("severity-mean-huge", _text("priors", "[constraints.security]\nmean = 0.0", "[constraints.security]\nmean = -1e300"),
     "priors", ["baseline.toml", "constraints.security.mean", "greater than or equal to -10"]),
    ("concentration-huge", _text("priors", "concentration = 4    # ~4", "concentration = 1e300 # ~4"),
     "priors", ["baseline.toml", "channels.sez.concentration", "less than or equal to 10000"]),
    ("loading-sd-huge", _text("priors", "sd = 0.6 ", "sd = 1e300 "), "priors",
     ["baseline.toml", "loadings.sd", "less than or equal to 10"]),
    ("concentration-boolean", _text("priors", "concentration = 4    # ~4", "concentration = true # ~4"),
     "priors", ["baseline.toml", "channels.sez.concentration", "Input should be a valid number", "True"]),
    ("concentration-text", _text("priors", "concentration = 4    # ~4", 'concentration = "3" # ~4'),
     "priors", ["baseline.toml", "channels.sez.concentration", "Input should be a valid number", "'3'"]),
    ("measure-loading-huge", _text("priors", "context = 1.0 ", "context = 1e9 "), "priors",
     ["baseline.toml", "measure_loading.context", "less than or equal to 10"]),
    ("scenario-shift-huge", _text("framework", "shift = { energy_debt = -1.0 }", "shift = { energy_debt = -1e308 }"),
     "framework", ["framework.toml", "line", "scenarios.0.settings.shift.energy_debt",
                   "greater than or equal to -20"]),
    ("scenario-shift-text", _text("framework", "shift = { energy_debt = -1.0 }", 'shift = { energy_debt = "-1" }'),
     "framework", ["framework.toml", "scenarios.0.settings.shift.energy_debt", "Input should be a valid number"]),
    ("sensitivity-below-false-positive", _text("priors", "sensitivity = { mean = 0.9, concentration = 20 }",
                                               "sensitivity = { mean = 0.5, concentration = 20 }"), "priors",
     ["baseline.toml", "sensitivity mean (0.5) must exceed false_positive mean (0.7)"]),
    ("unknown-link-channel", _text("framework", 'constraint = "security"\nchannel = "gwadar"',
                                   'constraint = "security"\nchannel = "gwadr"'),
     "framework", ["framework.toml", "line", "links.1.channel", "unknown channel 'gwadr'", "did you mean 'gwadar'"]),
    ("bad-proposition-query", _text("framework", 'query = "route_share[sez] <= 0.1"',
                                    'query = "route_share[sezz] <= 0.1"'),
     "framework", ["framework.toml", "propositions.1.parts.1.query", "'sezz' is not a channel"]),
    ("unknown-channel", _ev("target", "sezz", {"target": "sez"}), "evidence",
     ["cpec.csv", "line", "target", "found 'sezz'", "did you mean 'sez'", "allowed:"]),
    ("unknown-constraint", _ev("target", "securty", {"target": "security"}), "evidence",
     ["cpec.csv", "target", "found 'securty'", "did you mean 'security'"]),
    ("unknown-indicator", _ev("indicator", "policy_commitmnt", {"indicator": "policy_commitment"}), "evidence",
     ["cpec.csv", "indicator", "found 'policy_commitmnt'", "did you mean 'policy_commitment'"]),
    ("unknown-tier", _ev("tier", "outcom", {"tier": "outcome"}), "evidence",
     ["cpec.csv", "tier", "found 'outcom'", "did you mean 'outcome'"]),
    ("unknown-kind", _ev("kind", "signl"), "evidence", ["cpec.csv", "kind", "found 'signl'", "did you mean 'signal'"]),
    ("unknown-test-type", _ev("test", "smoking-gun"), "evidence",
     ["cpec.csv", "test", "found 'smoking-gun'", "did you mean 'smoking_gun'"]),
    ("reliability-above-one", _ev("reliability", "1.5"), "evidence", ["cpec.csv", "reliability", "1.5", "(0, 1]"]),
    ("reliability-zero", _ev("reliability", "0"), "evidence", ["cpec.csv", "reliability", "(0, 1]"]),
    ("probability-outside", _ev("sensitivity", "1.3"), "evidence", ["cpec.csv", "sensitivity", "(0, 1)"]),
    ("non-numeric-value", _ev("value", "yes"), "evidence", ["cpec.csv", "value", "not a number", "'yes'"]),
    ("signal-value-not-binary", _ev("value", "2"), "evidence", ["cpec.csv", "value", "must be 1", "'2'"]),
    ("missing-column", lambda p: drop_column(p["evidence"], "tier"), "evidence",
     ["cpec.csv", "line 1", "tier", "missing required column"]),
    ("duplicated-id", lambda p: set_cell(p["evidence"], 1, "id", list(csv.DictReader(io.StringIO(p["evidence"].read_text())))[0]["id"]),
     "evidence", ["cpec.csv", "line 3", "id", "duplicated id", "first on line 2"]),
    ("unparseable-date", _ev("observed", "27/05/2026"), "evidence", ["cpec.csv", "observed", "YYYY-MM-DD", "27/05/2026"]),
    ("future-date", _ev("observed", "2099-01-01"), "evidence", ["cpec.csv", "observed", "in the future", "2099-01-01"]),
    ("unknown-source", _ev("source", "nobody_2030"), "evidence",
     ["cpec.csv", "source", "found 'nobody_2030';", "unknown source key: add it to",
      "sources.csv (columns key, reference, year, url)"]),
    ("source-typo", _ev("source", "wb_export_2026"), "evidence",
     ["cpec.csv", "source", "found 'wb_export_2026' (did you mean 'wb_exports_2026'?)", "add it to"]),
    ("unpadded-date", _ev("observed", "2026-11-5"), "evidence", ["cpec.csv", "observed", "YYYY-MM-DD", "'2026-11-5'"]),
    ("context-row-on-channel", _ev("target", "sez", {"tier": "context"}), "evidence",
     ["cpec.csv", "target", "tier 'context' is about a constraint", "'sez' is a channel"]),
]


@pytest.mark.parametrize("case,modify,role,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_reported_with_location(shipped_copy, case, modify, role, fragments):
    modify(shipped_copy)
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"],
                      evidence=shipped_copy["evidence"])
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"
    assert isinstance(raised.value, ValueError)


COUNT_HEADER = "id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,reliability,package,source,note,unit"


@pytest.mark.parametrize("k,n,fragment", [("70", "60", "k (70) is larger than n (60)"),
                                           ("-3", "60", "counts must be >= 0"),
                                           ("2.5", "60", "k must be a whole number")])
def test_bad_counts(shipped_copy, k, n, fragment):
    with shipped_copy["evidence"].open("a") as handle:
        handle.write(f"cnt-1,2026-01-01,sez,sez_firm_entry,mechanism,count,,{k},{n},,,,,,tang2026,test,\n")
    with pytest.raises(InputError, match="k") as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"],
                      evidence=shipped_copy["evidence"])
    assert fragment in str(raised.value)
    assert "cnt-1" in str(raised.value)


def test_every_problem_in_a_file_is_reported_together(shipped_copy):
    set_cell(shipped_copy["evidence"], 0, "tier", "outcom")
    set_cell(shipped_copy["evidence"], 2, "reliability", "7")
    set_cell(shipped_copy["evidence"], 4, "observed", "yesterday")
    replace_in(shipped_copy["priors"], "concentration = 4", "concentration = -1")
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"],
                      evidence=shipped_copy["evidence"])
    message = str(raised.value)
    assert "4 problems found" in message
    for line in ("line 2", "line 4", "line 6"):
        assert line in message


def test_as_of_in_the_future_is_refused(shipped_copy):
    with pytest.raises(InputError, match="in the future"):
        bc.load_study(framework=shipped_copy["framework"], evidence=shipped_copy["evidence"],
                      as_of=dt.date.today() + dt.timedelta(days=3))


def test_shipped_files_are_valid():
    study = bc.load_study()
    assert len(study.evidence) >= 20
    assert set(study.evidence["target"]) >= set(study.framework.channel_ids)
    assert study.evidence["note"].str.len().min() > 20
    assert set(study.evidence["source"]) <= set(study.sources["key"])
    for name in ("skeptical", "optimistic", "flat"):
        assert bc.load_study(priors=name).prior_set == name


def test_hypothetical_file_says_so_in_name_and_every_row():
    root = Path(__file__).resolve().parent.parent / "evidence"
    for path in root.glob("*.csv"):
        if "hypothetical" in path.name:
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
            assert rows and all(r["note"].startswith("HYPOTHETICAL") for r in rows)
        elif path.name == "cpec.csv":
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
            assert not any("HYPOTHETICAL" in r["note"].upper() for r in rows)


@pytest.mark.parametrize("case", ["unknown-channel", "toml-syntax", "duplicated-id"])
def test_cli_bad_input_exits_2_without_traceback_or_output(shipped_copy, tmp_path, case):
    modify = next(c[1] for c in CASES if c[0] == case)
    modify(shipped_copy)
    out = tmp_path / "results"
    before = {p: p.read_bytes() for p in shipped_copy.values()}
    proc = subprocess.run(
        [sys.executable, "-m", "bayescpec.cli", "run", "--framework", str(shipped_copy["framework"]),
         "--priors", str(shipped_copy["priors"]), "--evidence", str(shipped_copy["evidence"]), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error:" in proc.stderr
    assert not out.exists()
    assert {p: p.read_bytes() for p in shipped_copy.values()} == before


def test_cli_validate_reports_and_passes(shipped_copy):
    ok = subprocess.run([sys.executable, "-m", "bayescpec.cli", "validate"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "ok:" in ok.stdout
    set_cell(shipped_copy["evidence"], 0, "target", "sezz")
    bad = subprocess.run([sys.executable, "-m", "bayescpec.cli", "validate", str(shipped_copy["evidence"]),
                          "--framework", str(shipped_copy["framework"])], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "sezz" in bad.stderr and "Traceback" not in bad.stderr


# ------------------------------------------------------------------------------ measures guarded
MEASURE_HEADER = COUNT_HEADER + ",measure_unit"


def _with_measure_unit_column(path: Path) -> None:
    """The shipped log with an empty ``measure_unit`` column added (a log may carry it or not)."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",measure_unit"] + [line + "," for line in lines[1:]]) + "\n")


#: (case, indicator, target, tier, kind, value, measure_unit, fragments of the one problem)
MEASURES = [
    ("percentage-for-a-share", "sez_local_procurement_ratio", "sez", "mechanism", "measure", "35", "",
     ["value: found '35', 232 scales from the baseline of indicator 'sez_local_procurement_ratio'",
      "(baseline 0.2, scale 0.15, unit 'share of inputs')", "allowed: within 6 scales of the baseline",
      "entered as a percentage? the catalogue expects a share", "0.35 would give z = 1"]),
    ("beyond-six-scales", "private_credit_gdp", "absorptive_capacity", "context", "measure", "150", "",
     ["value: found '150', 12 scales from the baseline of indicator 'private_credit_gdp'",
      "(baseline 30, scale 10, unit '% of GDP')", "check the unit: the catalogue expects '% of GDP'"]),
    ("just-beyond-the-bound", "sez_local_procurement_ratio", "sez", "mechanism", "measure", "1.11", "",
     ["value: found '1.11', 6.07 scales from the baseline", "allowed: within 6 scales"]),
    ("measure-unit-disagrees", "sez_local_procurement_ratio", "sez", "mechanism", "measure", "0.35", "%",
     ["measure_unit: found '%', but indicator 'sez_local_procurement_ratio' is measured in 'share of inputs'",
      "allowed: 'share of inputs'"]),
    ("measure-unit-on-a-signal", "sez_local_procurement_ratio", "sez", "mechanism", "signal", "1", "share of inputs",
     ["measure_unit: only measure rows take measure_unit", "this row is a 'signal'"]),
]


@pytest.mark.parametrize("case,indicator,target,tier,kind,value,unit,fragments", MEASURES,
                         ids=[c[0] for c in MEASURES])
def test_measures_beyond_the_bound_or_in_another_unit_are_refused(shipped_copy, case, indicator, target, tier,
                                                                  kind, value, unit, fragments):
    log = shipped_copy["evidence"]
    _with_measure_unit_column(log)
    line = len(log.read_text().splitlines()) + 1
    with log.open("a") as handle:
        handle.write(f"mea-1,2026-01-01,{target},{indicator},{tier},{kind},{value},,,,,,0.8,,tang2026,test,,{unit}\n")
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"], evidence=log)
    message = str(raised.value)
    assert f"cpec.csv, line {line} (id 'mea-1')" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"
    assert "problems found" not in message  # one cause, one problem


def test_a_measure_in_the_catalogues_unit_and_within_the_bound_is_accepted(shipped_copy):
    log = shipped_copy["evidence"]
    _with_measure_unit_column(log)
    with log.open("a") as handle:  # z = 6 exactly is the bound, allowed; the unit's case and spacing do not matter
        handle.write("mea-1,2026-01-01,sez,sez_local_procurement_ratio,mechanism,measure,1.1,,,,,,0.8,,tang2026,t,,"
                     "Share of  inputs\n")
    study = bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"], evidence=log)
    assert "mea-1" in set(study.evidence["id"])


def test_update_refuses_a_percentage_for_a_share_and_appends_nothing(shipped_copy, tmp_path):
    """`bayescpec update` validates as `validate` does: the 35 is refused, exit 2, the log untouched."""
    from typer.testing import CliRunner

    from bayescpec.cli import app

    log = shipped_copy["evidence"]
    before = log.read_bytes()
    rows = tmp_path / "rows.csv"
    rows.write_text(COUNT_HEADER + "\nmea-1,2026-01-01,sez,sez_local_procurement_ratio,mechanism,measure,35,,,,,,"
                    "0.8,,tang2026,a percentage for a share,\n")
    result = CliRunner().invoke(app, ["update", str(rows), "--evidence", str(log), "--framework",
                                      str(shipped_copy["framework"]), "--priors", str(shipped_copy["priors"]),
                                      "--vintages", str(tmp_path / "results")])
    assert result.exit_code == 2, result.output
    assert "entered as a percentage? the catalogue expects a share" in result.output
    assert "rows.csv, line 2 (id 'mea-1'), value" in result.output and "Traceback" not in result.output
    assert log.read_bytes() == before and not (tmp_path / "results").exists()


# ------------------------------------------------------------------------------ counts need rates
def test_a_count_indicator_without_rates_is_refused_in_the_framework(shipped_copy):
    replace_in(shipped_copy["framework"], "rate_converting = 0.6\nrate_not_converting = 0.25\n", "")
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"],
                      evidence=shipped_copy["evidence"])
    message = str(raised.value)
    assert "framework.toml, line" in message and "indicators.0.kinds" in message, message
    assert "kind 'count' needs rate_converting and rate_not_converting" in message


def test_a_count_row_of_an_indicator_without_rates_is_refused_located(shipped_copy):
    """A framework built in code, without the loader's check, still cannot read a count without rates."""
    from bayescpec.inputs.evidence import read_evidence, validate_evidence

    study = bc.load_study()
    indicators = [i.model_copy(update={"rate_converting": None, "rate_not_converting": None})
                  if i.id == "sez_firm_entry" else i for i in study.framework.indicators]
    framework = study.framework.model_copy(update={"indicators": indicators})
    log = shipped_copy["evidence"]
    with log.open("a") as handle:
        handle.write("cnt-1,2026-01-01,sez,sez_firm_entry,mechanism,count,,22,60,,,,0.9,,tang2026,test,\n")
    with pytest.raises(InputError) as raised:
        validate_evidence(read_evidence(log), framework, file=str(log))
    message = str(raised.value)
    assert "(id 'cnt-1'), indicator: indicator 'sez_firm_entry' has no rate_converting and rate_not_converting" \
        in message, message


def test_the_prior_set_must_give_count_priors_when_the_catalogue_has_counts(shipped_copy):
    text = shipped_copy["priors"].read_text()
    shipped_copy["priors"].write_text(text[:text.index("[counts]")])
    with pytest.raises(InputError) as raised:
        bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"],
                      evidence=shipped_copy["evidence"])
    assert "baseline.toml" in str(raised.value) and "give [counts] with rate_concentration" in str(raised.value)
