"""Appending new evidence: clean append, duplicates, conflicts, bad rows, interruption, CLI.

None of these tests samples except the two end-to-end update tests at the bottom (tiny settings).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import bayescpec as bc
from bayescpec.cli import app
from bayescpec.errors import EvidenceError
from bayescpec.inputs.append import append_evidence
from bayescpec.workflow.update import update_evidence
from bayescpec.workflow.vintages import fit_key

#: observations (rows that are not data gaps) in the shipped log, which the updates add to
SHIPPED_ROWS = sum(1 for line in (Path(__file__).resolve().parent.parent / "evidence" / "cpec.csv").read_text(
    encoding="utf-8").splitlines()[1:] if line and ",gap," not in line)

ROOT = Path(__file__).resolve().parent.parent
HYPOTHETICAL = ROOT / "evidence" / "hypothetical_sez_batch.csv"
HEADER = ("id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,"
          "reliability,package,source,note")  # a batch without the log's optional last column, unit
ROW_A = ("new-a,2026-11-15,sez,sez_zone_exports,outcome,signal,1,,,,,,0.9,,hypothetical,"
         '"HYPOTHETICAL: test row, with a comma"')
ROW_B = "new-b,2026-11-16,digital,network_reliability,mechanism,signal,0,,,,,,0.8,,hypothetical,HYPOTHETICAL test row"


@pytest.fixture
def log(shipped_copy) -> Path:
    return shipped_copy["evidence"]


def batch(folder: Path, *rows: str, name: str = "new.csv") -> Path:
    path = folder / name
    path.write_text("\n".join((HEADER,) + rows) + "\n", encoding="utf-8")
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def test_clean_append_copies_old_bytes_and_adds_rows(log, tmp_path, shipped_copy):
    before = log.read_bytes()
    report = append_evidence(batch(tmp_path, ROW_A, ROW_B), evidence=log, framework=shipped_copy["framework"])
    after = log.read_bytes()
    assert report.added == ("new-a", "new-b") and report.skipped == ()
    assert after.startswith(before), "an earlier row was rewritten"
    assert after[len(before):].decode().splitlines() == [ROW_A + ",", ROW_B + ","]  # the log's empty unit
    assert report.sha256_before != report.sha256_after and report.rows_after == report.rows_before + 2
    study = bc.load_study(framework=shipped_copy["framework"], evidence=log)
    assert list(study.evidence["id"])[-2:] == ["new-a", "new-b"]
    assert study.evidence["note"].iloc[-2] == "HYPOTHETICAL: test row, with a comma"
    assert leftovers(log.parent) == []


def test_append_follows_the_logs_column_order_and_line_endings(tmp_path, shipped_copy):
    log = shipped_copy["evidence"]
    crlf = log.read_bytes().replace(b"\n", b"\r\n").rstrip(b"\r\n")  # CRLF and no final newline
    log.write_bytes(crlf)
    # a batch with its columns in another order and the optional ones left out
    new = tmp_path / "reordered.csv"
    new.write_text("source,id,observed,target,indicator,tier,kind,value,note\n"
                   "hypothetical,new-c,2026-11-15,sez,sez_zone_exports,outcome,signal,1,HYPOTHETICAL\n")
    append_evidence(new, evidence=log, framework=shipped_copy["framework"])
    data = log.read_bytes()
    assert data.startswith(crlf + b"\r\n")
    assert data.endswith(b"new-c,2026-11-15,sez,sez_zone_exports,outcome,signal,1,,,,,,,,hypothetical,HYPOTHETICAL,\r\n")
    assert bc.load_study(framework=shipped_copy["framework"], evidence=log).evidence["id"].iloc[-1] == "new-c"


def test_duplicate_batch_changes_nothing(log, tmp_path, shipped_copy):
    first = append_evidence(HYPOTHETICAL, evidence=log, framework=shipped_copy["framework"])
    assert len(first.added) == 6
    snapshot, stat = log.read_bytes(), log.stat()
    again = append_evidence(HYPOTHETICAL, evidence=log, framework=shipped_copy["framework"])
    assert again.added == () and again.skipped == first.added and not again.changed
    assert again.sha256_before == again.sha256_after == first.sha256_after
    assert log.read_bytes() == snapshot and log.stat().st_ino == stat.st_ino  # not even rewritten
    # a batch mixing old rows and a new one appends just the new one
    mixed = batch(tmp_path, HYPOTHETICAL.read_text().splitlines()[1], ROW_B)
    report = append_evidence(mixed, evidence=log, framework=shipped_copy["framework"])
    assert report.added == ("new-b",) and report.skipped == ("hyp-001",)


def test_conflicting_id_is_refused_naming_both_rows(log, tmp_path, shipped_copy):
    existing = log.read_text().splitlines()[3].removesuffix(",")  # the log's line 4, without its empty unit
    row_id = existing.split(",")[0]
    changed = existing.replace(",0.95,", ",0.7,", 1)
    assert changed != existing
    snapshot = log.read_bytes()
    with pytest.raises(EvidenceError) as caught:
        append_evidence(batch(tmp_path, ROW_A, changed), evidence=log, framework=shipped_copy["framework"])
    message = str(caught.value)
    assert f"id {row_id!r} is already in the log" in message
    assert str(log) in message and "line 4" in message                 # the log's row
    assert str(tmp_path / "new.csv") in message and "line 3" in message  # the new row
    assert "reliability" in message
    assert log.read_bytes() == snapshot  # ROW_A, valid, was not appended either
    assert leftovers(log.parent) == []


def test_bad_row_rejects_the_whole_batch_listing_every_problem(log, tmp_path, shipped_copy):
    bad_tier = ROW_B.replace("new-b", "bad-1").replace(",mechanism,", ",mechansim,")
    bad_date = ROW_B.replace("new-b", "bad-2").replace("2026-11-16", "2026-13-01")
    snapshot = log.read_bytes()
    with pytest.raises(EvidenceError) as caught:
        append_evidence(batch(tmp_path, ROW_A, bad_tier, bad_date), evidence=log, framework=shipped_copy["framework"])
    problems = caught.value.problems
    assert any("bad-1" in (p.where or "") and p.field == "tier" and "did you mean 'mechanism'" in p.message
               for p in problems)
    assert any("bad-2" in (p.where or "") and p.field == "observed" for p in problems)
    assert log.read_bytes() == snapshot
    assert leftovers(log.parent) == []


def test_unknown_source_is_checked_against_the_logs_sources(log, tmp_path, shipped_copy):
    snapshot = log.read_bytes()
    with pytest.raises(EvidenceError, match="source key"):
        append_evidence(batch(tmp_path, ROW_A.replace(",hypothetical,", ",no_such_source,")),
                        evidence=log, framework=shipped_copy["framework"])
    assert log.read_bytes() == snapshot


def test_interrupted_update_leaves_the_log_untouched(log, tmp_path, shipped_copy, monkeypatch):
    snapshot = log.read_bytes()
    calls = []

    def crash(src, dst):
        calls.append((src, dst))
        raise KeyboardInterrupt("power cut before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        append_evidence(batch(tmp_path, ROW_A, ROW_B), evidence=log, framework=shipped_copy["framework"])
    assert calls and Path(calls[0][1]) == log and Path(calls[0][0]).parent == log.parent
    assert log.read_bytes() == snapshot
    assert leftovers(log.parent) == [], "the temporary file was left behind"
    monkeypatch.undo()
    # and the same batch goes through afterwards
    assert append_evidence(batch(tmp_path, ROW_A, ROW_B), evidence=log,
                           framework=shipped_copy["framework"]).added == ("new-a", "new-b")


@pytest.mark.parametrize("failure", [RuntimeError("the sampler crashed"), KeyboardInterrupt()],
                         ids=["fit-raises", "ctrl-c"])
def test_a_failed_fit_writes_nothing(log, tmp_path, shipped_copy, monkeypatch, failure):
    """A failed update changes nothing: the updated log is fitted from a scratch copy before anything is
    appended, so a fit that raises (or Ctrl-C) leaves the log's bytes as they were and saves no vintage."""
    import bayescpec.workflow.update as update_module

    snapshot = log.read_bytes()
    seen = []

    def crash(previous, study, **kwargs):
        seen.append((log.read_bytes() == snapshot, list(study.evidence["id"])[-2:], study.files["evidence"]))
        raise failure

    monkeypatch.setattr(update_module, "update_result", crash)
    with pytest.raises(type(failure)):
        update_evidence(batch(tmp_path, ROW_A, ROW_B), evidence=log, framework=shipped_copy["framework"],
                        priors=shipped_copy["priors"], vintages=tmp_path / "vintages")
    # the fit saw the updated rows, under the log's own name, while the log was still untouched
    assert seen == [(True, ["new-a", "new-b"], str(log))]
    assert log.read_bytes() == snapshot and not (tmp_path / "vintages").exists()
    assert leftovers(log.parent) == []


def test_rows_another_update_appended_during_the_fit_are_fitted_too(log, tmp_path, shipped_copy, monkeypatch,
                                                                     recwarn):
    """If the log changes while an update fits (another update appended), the update still appends its
    rows (under the lock, once) and fits the log as it then is: the vintage's hash is the log's."""
    import bayescpec.workflow.update as update_module

    real = update_module.update_result
    calls = []

    def other_update_meanwhile(previous, study, **kwargs):
        calls.append(list(study.evidence["id"])[-2:])
        if len(calls) == 1:
            append_evidence(batch(tmp_path, ROW_B, name="b.csv"), evidence=log, framework=shipped_copy["framework"])
        return real(previous, study, **kwargs)

    monkeypatch.setattr(update_module, "update_result", other_update_meanwhile)
    outcome = update_evidence(batch(tmp_path, ROW_A), evidence=log, framework=shipped_copy["framework"],
                              priors=shipped_copy["priors"], vintages=tmp_path / "vintages", method="refit", **FAST)
    assert calls == [[list(pd.read_csv(log)["id"])[-3], "new-a"], ["new-b", "new-a"]]
    ids = list(pd.read_csv(log)["id"])
    assert ids[-2:] == ["new-b", "new-a"] and ids.count("new-a") == ids.count("new-b") == 1
    saved = bc.load_result(outcome.vintage)
    import hashlib
    import json as json_module

    assert json_module.loads(saved.attrs["input_sha256"])["evidence"] == hashlib.sha256(log.read_bytes()).hexdigest()
    assert json_module.loads(saved.attrs["input_files"])["evidence"] == str(log)


@pytest.mark.parametrize("options,message", [
    (["--vintages", "__log__"], "cpec.csv is a file; allowed: a folder (new or existing)"),
    (["--seed", "-1"], "--seed: must be from 0 to 4294967295; found -1"),
    (["--chains", "99999999999"], "--chains: must be from 1 to 64; found 99999999999"),
    (["--draws", "99999999999999999999"], "--draws: must be from 10 to 100000"),
])
def test_cli_update_refuses_impossible_sampler_settings_before_appending(log, tmp_path, shipped_copy, options,
                                                                           message):
    snapshot = log.read_bytes()
    options = [str(log) if option == "__log__" else option for option in options]
    result = CliRunner().invoke(app, ["update", str(batch(tmp_path, ROW_A)), "--evidence", str(log), "--yes",
                                      "--framework", str(shipped_copy["framework"]),
                                      "--vintages", str(tmp_path / "vintages"), *options])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert log.read_bytes() == snapshot and not (tmp_path / "vintages").exists()


def test_fit_and_update_evidence_refuse_impossible_sampler_settings(log, tmp_path, shipped_copy):
    from bayescpec.errors import InputError

    study = bc.load_study(framework=shipped_copy["framework"], evidence=log)
    with pytest.raises(InputError, match=r"seed: must be from 0 to 4294967295; found -1"):
        bc.fit(study, seed=-1)
    with pytest.raises(InputError, match=r"draws: must be a whole number from 10 to 100000; found 1.5"):
        bc.fit(study, draws=1.5)
    snapshot = log.read_bytes()
    with pytest.raises(InputError, match=r"chains: must be from 1 to 64; found 100"):
        update_evidence(batch(tmp_path, ROW_A), evidence=log, framework=shipped_copy["framework"], chains=100)
    assert log.read_bytes() == snapshot


def test_cli_refuses_bad_batch_with_exit_code_2(log, tmp_path, shipped_copy):
    snapshot = log.read_bytes()
    bad = batch(tmp_path, ROW_A, ROW_B.replace(",0,", ",2,"))
    result = CliRunner().invoke(app, ["update", str(bad), "--evidence", str(log),
                                      "--framework", str(shipped_copy["framework"]),
                                      "--vintages", str(tmp_path / "vintages")])
    assert result.exit_code == 2
    assert "a signal's value must be 1" in result.output and "Traceback" not in result.output
    assert log.read_bytes() == snapshot and not (tmp_path / "vintages").exists()


def test_cli_conflict_and_duplicate(log, tmp_path, shipped_copy):
    runner = CliRunner()
    common = ["--evidence", str(log), "--framework", str(shipped_copy["framework"]),
              "--vintages", str(tmp_path / "vintages")]
    existing = log.read_text().splitlines()[1].removesuffix(",")  # without its empty unit
    conflict = batch(tmp_path, existing.replace(",1,", ",0,", 1))
    snapshot = log.read_bytes()
    result = runner.invoke(app, ["update", str(conflict), *common])
    assert result.exit_code == 2 and "already in the log" in result.output
    assert log.read_bytes() == snapshot
    duplicate = batch(tmp_path, existing, name="dup.csv")
    result = runner.invoke(app, ["update", str(duplicate), *common])
    assert result.exit_code == 0 and "no new rows" in result.output
    assert log.read_bytes() == snapshot and not (tmp_path / "vintages").exists()


FAST = dict(draws=150, tune=150, chains=2, seed=11)


def test_update_evidence_saves_a_new_vintage_each_time_and_never_overwrites(log, tmp_path, shipped_copy, recwarn):
    vintages = tmp_path / "vintages"
    paths = dict(evidence=log, framework=shipped_copy["framework"], priors=shipped_copy["priors"], vintages=vintages)
    first = update_evidence(batch(tmp_path, ROW_A), method="refit", **paths, **FAST)
    assert first.method == "refit" and first.vintage.parent == vintages
    assert first.vintage.name == f"{first.result.attrs['as_of']}-{fit_key(first.result)[:10]}"
    saved = (first.vintage / "result.nc").read_bytes()
    second = update_evidence(batch(tmp_path, ROW_B, name="b.csv"), method="refit", **paths, **FAST)
    assert second.vintage != first.vintage and (first.vintage / "result.nc").read_bytes() == saved
    assert second.result.attrs["update_method"] == "refit"
    assert list(second.result["evidence"]["evidence"].values[-2:]) == ["new-a", "new-b"]
    # nothing new: no fit, no vintage
    third = update_evidence(batch(tmp_path, ROW_B, name="b.csv"), **paths, **FAST)
    assert third.result is None and third.vintage is None
    assert sorted(p.name for p in vintages.iterdir()) == sorted([first.vintage.name, second.vintage.name])
    table = bc.history(vintages)
    assert dict(zip(table["vintage"], table["rows"])) == {first.vintage.name: SHIPPED_ROWS + 1, second.vintage.name: SHIPPED_ROWS + 2}
    # oldest first; two fits stamped within the same second (a fast machine) are listed by name
    made = sorted((outcome.result.attrs["created"], outcome.vintage.name) for outcome in (first, second))
    assert list(table["vintage"]) == [name for _, name in made]


def test_update_cli_end_to_end(log, tmp_path, shipped_copy, recwarn):
    vintages = tmp_path / "vintages"
    result = CliRunner().invoke(app, ["update", str(batch(tmp_path, ROW_A)), "--evidence", str(log),
                                      "--framework", str(shipped_copy["framework"]), "--vintages", str(vintages),
                                      "--draws", "150", "--tune", "150", "--chains", "2", "--yes"])
    assert result.exit_code == 0, result.output
    assert "1 row(s) appended" in result.output and "refitted the model" in result.output
    assert "no earlier fit" in result.output and "Saved vintage" in result.output
    assert "k-hat" not in result.output and "PSIS" not in result.output  # plain words for a policy reader
    (folder,) = vintages.iterdir()
    assert (folder / "result.nc").is_file()
    assert pd.read_csv(log, dtype=str)["id"].iloc[-1] == "new-a"


# ---------------------------------------------------------------------------------------------
# Safe updates: hypothetical rows need --yes, --dry-run writes nothing, plain words
# ---------------------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_hypothetical_rows_are_recognised():
    from bayescpec.inputs.append import is_hypothetical

    assert is_hypothetical({"id": "a", "source": "hypothetical", "note": ""})
    assert is_hypothetical({"id": "a", "source": "x", "note": "HYPOTHETICAL: invented"})
    assert is_hypothetical({"id": "hypothetical-1", "source": "x", "note": ""})
    assert is_hypothetical({"id": "a", "source": "sim", "note": ""}, {"sim": "SYNTHETIC data from a simulator"})
    assert not is_hypothetical({"id": "pot-sez-001", "source": "reuters_2015_launch", "note": "Paper V: real"},
                               {"reuters_2015_launch": "Reuters 2015"})


def test_append_refuses_hypothetical_rows_into_a_real_log_unless_allowed(log, tmp_path, shipped_copy):
    from bayescpec.inputs.append import HypotheticalRowsError

    snapshot_ = log.read_bytes()
    with pytest.raises(HypotheticalRowsError, match="--yes") as caught:
        append_evidence(HYPOTHETICAL, evidence=log, framework=shipped_copy["framework"], allow_hypothetical=False)
    assert "6 of the 6 new row(s)" in str(caught.value) and "hyp-001" in str(caught.value)
    assert log.read_bytes() == snapshot_ and leftovers(log.parent) == []
    # a real-looking row goes through; once the log holds hypothetical rows, more are no surprise
    real = batch(tmp_path, ROW_B.replace("hypothetical,HYPOTHETICAL test row", "tang2026,a new observation"))
    assert append_evidence(real, evidence=log, framework=shipped_copy["framework"],
                           allow_hypothetical=False).added == ("new-b",)
    append_evidence(batch(tmp_path, ROW_A, name="a.csv"), evidence=log, framework=shipped_copy["framework"])
    report = append_evidence(HYPOTHETICAL, evidence=log, framework=shipped_copy["framework"], allow_hypothetical=False)
    assert len(report.added) == 6 and report.hypothetical == report.added and not report.needs_confirmation


def test_cli_update_refuses_hypothetical_rows_without_yes(log, tmp_path, shipped_copy):
    before = snapshot(tmp_path)
    result = CliRunner().invoke(app, ["update", str(HYPOTHETICAL), "--evidence", str(log),
                                      "--framework", str(shipped_copy["framework"]),
                                      "--vintages", str(tmp_path / "vintages")])
    assert result.exit_code == 2, result.output
    assert "hypothetical" in result.output and "--yes" in result.output and "Nothing was written" in result.output
    assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before and not (tmp_path / "vintages").exists()


def test_cli_update_dry_run_shows_rows_and_decision_and_writes_nothing(log, tmp_path, shipped_copy):
    before = snapshot(tmp_path)
    result = CliRunner().invoke(app, ["update", str(HYPOTHETICAL), "--dry-run", "--evidence", str(log),
                                      "--framework", str(shipped_copy["framework"]),
                                      "--vintages", str(tmp_path / "vintages")], env={"COLUMNS": "80"})
    assert result.exit_code == 2, result.output  # what the same update without --dry-run would exit with
    text = " ".join(result.output.split())
    assert "DRY RUN" in text and "6 row(s) would be appended" in text
    for row_id in ("hyp-001", "hyp-006"):
        assert row_id in text
    assert "would refuse them without --yes" in text
    assert "would be fitted from scratch" in text
    assert "error: the same update without --dry-run would refuse these rows (exit code 2)" in text
    assert snapshot(tmp_path) == before and not (tmp_path / "vintages").exists()
    confirmed = CliRunner().invoke(app, ["update", str(HYPOTHETICAL), "--dry-run", "--yes", "--evidence", str(log),
                                         "--framework", str(shipped_copy["framework"]),
                                         "--vintages", str(tmp_path / "vintages")])
    assert confirmed.exit_code == 0 and "error" not in confirmed.output, confirmed.output
    assert snapshot(tmp_path) == before and not (tmp_path / "vintages").exists()


def test_dry_run_decides_the_fast_path_from_a_previous_vintage(log, tmp_path, shipped_copy, recwarn):
    """The dry run reweights on a scratch copy: the decision and the headline, nothing written."""
    vintages = tmp_path / "vintages"
    study = bc.load_study(framework=shipped_copy["framework"], priors=shipped_copy["priors"], evidence=log)
    previous = bc.fit(study, **FAST)
    previous.attrs.update(converged=True, convergence_failures="", min_ess_bulk=40_000.0, max_rhat=1.0,
                          divergences=0)  # stand in for a long fit: the fast path's rules then allow reweighting
    bc.save_vintage(previous, root=vintages)
    new = batch(tmp_path, ROW_B)
    before = snapshot(tmp_path)
    outcome = update_evidence(new, evidence=log, framework=shipped_copy["framework"],
                              priors=shipped_copy["priors"], vintages=vintages, dry_run=True, **FAST)
    assert outcome.dry_run and outcome.method == "psis" and outcome.result is not None
    assert outcome.append.added == ("new-b",) and outcome.append.dry_run
    assert outcome.summary.startswith("the new rows were folded into the previous fit by reweighting")
    assert "reliable" in outcome.summary and "k-hat" not in outcome.summary
    assert outcome.result.attrs["update_method"] == "psis" and "Pareto k-hat" in outcome.result.attrs["update_reason"]
    assert snapshot(tmp_path) == before
    result = CliRunner().invoke(app, ["update", str(new), "--dry-run", "--yes", "--evidence", str(log),
                                      "--framework", str(shipped_copy["framework"]), "--priors",
                                      str(shipped_copy["priors"]), "--vintages", str(vintages)])
    assert result.exit_code == 0, result.output
    assert "Decision: the new rows were folded" in " ".join(result.output.split())
    assert "P before" in result.output and "P after" in result.output
    assert snapshot(tmp_path) == before


def test_plain_summary_says_how_rows_were_taken_in():
    from bayescpec.workflow.update import plain_summary

    psis = plain_summary({"update_method": "psis", "chains": 4, "draws": 1000, "min_ess_bulk": 2345.6,
                          "pareto_khat": -0.1})
    assert "folded into the previous fit by reweighting" in psis and "2,346" in psis and "4,000" in psis
    for reason, words in (("Pareto k-hat 0.81 >= 0.7: the new rows move the posterior too far", "changed the picture"),
                          ("too little left after reweighting: effective bulk ESS 120 (previous 3858 x importance "
                           "efficiency 0.03) < 400", "changed the picture"),
                          ("no previous result of these inputs to reweight", "fitted from scratch"),
                          ("the previous result failed its convergence checks", "failed its convergence checks"),
                          ("refit requested", "--method refit")):
        text = plain_summary({"update_method": "refit", "update_reason": reason})
        assert words in text and "ESS" not in text and "k-hat" not in text, text


def test_cli_update_says_when_it_resampled_after_divergences(tmp_path, monkeypatch):
    import bayescpec.workflow.update as workflow_update
    from bayescpec.inputs.append import AppendReport
    from report_fixtures import make_result

    result = make_result()
    result.attrs.update(update_method="refit", update_reason="no previous result of these inputs to reweight",
                        divergence_retry="12 divergences at target_accept 0.9; re-sampled at 0.97")
    report = AppendReport(tmp_path / "log.csv", ("x-1",), (), "a" * 64, "b" * 64, 3, 4)

    def fake(*args, **kwargs):
        return workflow_update.UpdateOutcome(report, result, tmp_path / "v", None, "refit", float("nan"),
                                             result.attrs["update_reason"], 1.0,
                                             summary=workflow_update.plain_summary(result.attrs))

    monkeypatch.setattr(workflow_update, "update_evidence", fake)
    out = CliRunner().invoke(app, ["update", str(tmp_path / "new.csv")])
    assert out.exit_code == 0, out.output
    assert "re-sampled once with smaller steps" in out.output and "12 divergences" in out.output
