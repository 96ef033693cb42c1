"""Vintages (save, never overwrite, history), diff content, as-of replay and the trajectory."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayescpec as bc
from bayescpec.engine.aggregate import observation_rows
from bayescpec.cli import app
from bayescpec.workflow.vintages import find_vintage, fit_key

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(draws=200, tune=200, chains=2, seed=17)
HEADER = ("id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,"
          "reliability,package,source,note")
NEW = ["t-1,2026-11-15,sez,sez_zone_exports,outcome,signal,1,,,,,,0.9,,hypothetical,HYPOTHETICAL",
       "t-2,2026-11-16,sez,sez_skilled_employment,outcome,signal,1,,,,,,0.9,,hypothetical,HYPOTHETICAL"]


def quiet_fit(study, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bc.fit(study, **{**TINY, **kwargs})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Fits A (shipped log) and B (the log plus two rows), from copies of the log."""
    tmp = tmp_path_factory.mktemp("pair")
    for name in ("cpec.csv", "sources.csv"):
        shutil.copy(ROOT / "evidence" / name, tmp / name)
    a = quiet_fit(bc.load_study(evidence=tmp / "cpec.csv"))
    (tmp / "new.csv").write_text("\n".join([HEADER] + NEW) + "\n")
    bc.append_evidence(tmp / "new.csv", evidence=tmp / "cpec.csv")
    b = quiet_fit(bc.load_study(evidence=tmp / "cpec.csv"))
    # vintages are listed by their `created` stamp (whole seconds), then by name: two tiny fits made within
    # one second (a fast machine) would tie and be listed in the order of their fit keys' hashes; A came first
    a.attrs["created"], b.attrs["created"] = "2026-11-29T10:00:00+00:00", "2026-11-29T10:01:00+00:00"
    return a, b


def test_save_vintage_names_by_date_and_fit_key_and_never_overwrites(pair, tmp_path):
    a, b = pair
    root = tmp_path / "v"
    first = bc.save_vintage(a, root=root)
    assert first.name == f"{a.attrs['as_of']}-{fit_key(a)[:10]}"
    assert bc.load_result(first).attrs["fit_key"] == fit_key(a)
    saved = (first / "result.nc").read_bytes()
    same = bc.save_vintage(a, root=root)            # the same fit again: reused, nothing written
    assert same == first and [p.name for p in root.iterdir()] == [first.name]
    again = bc.save_vintage(a, root=root, reuse=False)  # forced: a new folder beside it, never over it
    assert again.name == first.name + "-2" and (first / "result.nc").read_bytes() == saved
    other = bc.save_vintage(b, root=root)
    assert other.name not in (first.name, again.name)
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "staging folder left behind"
    assert [v.name for v in bc.list_vintages(root)] == [first.name, again.name, other.name]
    assert bc.load_vintage("latest", root=root).attrs["vintage"] == other.name
    b_sha = json.loads(b.attrs["input_sha256"])["evidence"]
    assert bc.load_vintage(b_sha[:8], root=root).attrs["vintage"] == other.name  # by evidence hash
    assert bc.load_vintage(first, root=root).attrs["vintage"] == first.name      # by path


@pytest.mark.parametrize("attr, value", [("draws", 999), ("chains", 7), ("tune", 5), ("seed", 1), ("sampler", "pymc"),
                                         ("target_accept", 0.99), ("prior_set", "skeptical")])
def test_a_fit_with_other_settings_never_shares_a_vintage(pair, tmp_path, attr, value):
    a, _ = pair
    root = tmp_path / "v"
    first = bc.save_vintage(a, root=root)
    other = a.copy()
    other.attrs = {**a.attrs, attr: value}
    assert fit_key(other) != fit_key(a)
    assert find_vintage(other, root=root) is None          # `run` would not say "already saved"
    second = bc.save_vintage(other, root=root)
    assert second != first and bc.load_result(second).attrs[attr] == value


def test_the_same_rows_and_settings_on_another_day_reuse_the_vintage(pair, tmp_path):
    a, b = pair
    root = tmp_path / "v"
    first = bc.save_vintage(a, root=root)
    later = a.copy()
    later.attrs = {**a.attrs, "as_of": "2099-01-01", "created": "2099-01-01T00:00:00+00:00"}
    assert fit_key(later) == fit_key(a) and find_vintage(later, root=root) == first
    assert bc.save_vintage(later, root=root) == first and len(list(root.iterdir())) == 1
    # other evidence rows (b has two more) are another fit, whatever the settings
    assert fit_key(b) != fit_key(a) and find_vintage(b, root=root) is None


def test_old_vintage_folders_are_still_read(pair, tmp_path):
    a, b = pair
    root = tmp_path / "v"
    legacy = a.copy()
    legacy.attrs = {k: v for k, v in a.attrs.items() if k not in ("fit_key", "vintage")}
    old_name = f"{a.attrs['as_of']}-{json.loads(a.attrs['input_sha256'])['evidence'][:12]}"
    bc.save_result(legacy, root / old_name / "result.nc")   # a folder written before fit keys existed
    assert [v.name for v in bc.list_vintages(root)] == [old_name]
    new = bc.save_vintage(b, root=root)
    assert list(bc.history(root)["vintage"]) == [old_name, new.name]
    assert bc.load_vintage(old_name[:14], root=root) is not None
    assert bc.diff(old_name, new.name, root=root).added["id"].tolist() == ["t-1", "t-2"]
    assert find_vintage(a, root=root) is None    # never reused: it has no fit key


def test_history_says_whether_each_vintage_passed_its_checks(pair, tmp_path):
    a, b = pair
    root = tmp_path / "v"
    good = b.copy()
    good.attrs = {**b.attrs, "converged": True, "convergence_failures": ""}
    bad = a.copy()
    bad.attrs = {**a.attrs, "converged": False, "convergence_failures": "min bulk ESS 99 < 400"}
    bc.save_vintage(bad, root=root)
    bc.save_vintage(good, root=root)
    table = bc.history(root)
    assert list(table["converged"]) == [False, True]
    assert table["convergence_failures"].iloc[0] == "min bulk ESS 99 < 400"
    for columns in ("80", "200"):
        out = CliRunner().invoke(app, ["history", "--vintages", str(root)], env={"COLUMNS": columns})
        assert out.exit_code == 0 and "FAILED" in out.output and "passed" in out.output
        assert "…" not in out.output, out.output
        assert max(len(line) for line in out.output.splitlines()) <= int(columns)
        for name in table["vintage"]:
            assert name in out.output


def test_history_lists_headline_probabilities(pair, tmp_path):
    a, b = pair
    root = tmp_path / "v"
    bc.save_vintage(a, root=root)
    bc.save_vintage(b, root=root)
    table = bc.history(root)
    assert list(table["rows"]) == [len(a["evidence"]["evidence"]), len(b["evidence"]["evidence"])]
    for row, result in zip(table.to_dict("records"), (a, b)):
        p = bc.conversion_probability(result)
        for channel, value in zip(p["channel"].values, p.values):
            assert row[f"p_{channel}"] == pytest.approx(float(value))
    out = CliRunner().invoke(app, ["history", "--vintages", str(root)])
    assert out.exit_code == 0 and table["vintage"].iloc[1] in out.output


def test_diff_content(pair):
    a, b = pair
    d = bc.diff(a, b)
    channels = list(a["posterior"]["channel"].values)
    props = [p["proposition"] for p in bc.proposition_table(a).to_dict("records")]
    assert list(d.table["name"]) == channels + props
    assert list(d.added["id"]) == ["t-1", "t-2"] and d.removed.empty and d.changed.empty
    assert set(d.added["tier"]) == {"outcome"}
    ta, tb = bc.channel_table(a).set_index("channel"), bc.channel_table(b).set_index("channel")
    ch = d.table[d.table["kind"] == "channel"].set_index("name")
    np.testing.assert_allclose(ch["mean_change"], tb["posterior_mean"] - ta["posterior_mean"])
    np.testing.assert_allclose(ch["p_change"], tb["p_converting"] - ta["p_converting"])
    np.testing.assert_allclose(ch["lower_b"], tb["90% ETI lower"])
    # a change of word counts only beyond 2 MCSE of the difference (outputs.summary.word_change_is_real)
    from bayescpec.outputs.summary import word_change_is_real

    real = [word_change_is_real(ta.loc[c, "p_converting"], ta.loc[c, "p_converting_mcse"], tb.loc[c, "p_converting"],
                                tb.loc[c, "p_converting_mcse"]) for c in ch.index]
    assert ch["word_changed"].tolist() == real
    # the reverse diff lists the same rows as removed
    back = bc.diff(b, a)
    assert list(back.removed["id"]) == ["t-1", "t-2"] and back.added.empty
    np.testing.assert_allclose(back.table["p_change"], -d.table["p_change"])


def test_diff_flags_ipcc_word_changes(pair):
    a, _ = pair
    b = a.copy(deep=True)
    theta = b["posterior"]["theta"].copy()
    theta.loc[{"channel": "sez"}] = 0.95  # every draw converting: 'virtually certain'
    b["posterior"]["theta"] = theta
    d = bc.diff(a, b)
    flagged = d.word_changes
    assert list(flagged.loc[flagged["kind"] == "channel", "name"]) == ["sez"]
    row = d.table.set_index("name").loc["sez"]
    assert row["likelihood_b"] == "virtually certain" and row["p_b"] == 1.0
    assert d.added.empty and d.removed.empty


def test_diff_cli_and_bad_reference(pair, tmp_path):
    a, b = pair
    root = tmp_path / "v"
    bc.save_vintage(a, root=root)
    bc.save_vintage(b, root=root)
    out = CliRunner().invoke(app, ["diff", "previous", "latest", "--vintages", str(root),
                                   "--csv", str(tmp_path / "d.csv")])
    assert out.exit_code == 0, out.output
    assert "t-1" in out.output and "t-2" in out.output and "Evidence rows in B, not in A (2)" in out.output
    assert len(pd.read_csv(tmp_path / "d.csv")) == len(bc.diff(a, b).table)
    bad = CliRunner().invoke(app, ["diff", "nosuch", "latest", "--vintages", str(root)])
    assert bad.exit_code == 2 and "no vintage nosuch" in bad.output and "Traceback" not in bad.output


def test_diff_and_history_read_at_80_columns_and_as_json(pair, tmp_path):
    import json as json_module

    a, b = pair
    root = tmp_path / "v"
    bc.save_vintage(a, root=root)
    bc.save_vintage(b, root=root)
    narrow = CliRunner().invoke(app, ["diff", "previous", "latest", "--vintages", str(root)], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in narrow.output
    for name in ("sez", "digital", "green", "agriculture", "gwadar", "P1", "t-1", "t-2", "90% ETI B"):
        assert name in narrow.output, name
    assert "-0.00" not in narrow.output
    d = bc.diff(a, b)
    out = CliRunner().invoke(app, ["diff", "previous", "latest", "--vintages", str(root), "--json"])
    data = json_module.loads(out.output)
    assert [r["name"] for r in data["changes"]] == list(d.table["name"])
    assert [r["id"] for r in data["rows_added"]] == ["t-1", "t-2"] and data["interval"] == "90% ETI"
    assert data["changes"][0]["p_b"] == pytest.approx(d.table["p_b"].iloc[0])
    out = CliRunner().invoke(app, ["history", "--vintages", str(root), "--json"])
    rows = json_module.loads(out.output)["rows"]
    assert [r["vintage"] for r in rows] == list(bc.history(root)["vintage"])
    assert {"converged", "convergence_failures", "p_sez", "rows"} <= set(rows[0])


def test_as_of_replay_equals_a_fit_of_the_truncated_log(tmp_path):
    date = "2025-09-26"
    replay = bc.load_study(as_of=date)
    log = pd.read_csv(ROOT / "evidence" / "cpec.csv", dtype=str, keep_default_na=False)
    kept = log[log["observed"] <= date]
    assert 0 < len(kept) < len(log) and replay.excluded_after_as_of == len(log) - len(kept)
    assert list(replay.evidence["id"]) == list(kept["id"])
    shutil.copy(ROOT / "evidence" / "sources.csv", tmp_path / "sources.csv")
    kept.to_csv(tmp_path / "cpec.csv", index=False)
    truncated = bc.load_study(evidence=tmp_path / "cpec.csv")
    r1, r2 = quiet_fit(replay), quiet_fit(truncated)
    assert r1.attrs["as_of"] == date and r1.attrs["evidence_rows"] == len(kept)
    np.testing.assert_allclose(r1["posterior"]["theta"].values, r2["posterior"]["theta"].values)
    # and as_of_study (what the trajectory uses) is the same replay
    again = bc.as_of_study(bc.load_study(), date)
    assert list(again.evidence["id"]) == list(kept["id"]) and again.as_of.isoformat() == date
    np.testing.assert_allclose(quiet_fit(again)["posterior"]["theta"].values, r1["posterior"]["theta"].values)


def test_trajectory_fits_each_date_and_plots(tmp_path):
    study = bc.load_study()
    dates = ["2024-08-15", "2025-12-31", "2026-05-27"]
    # PyMC's sampler, named: with "auto" three fits pick nutpie, whose compilation (about 25 CPU-seconds)
    # would be the most of this test's cost; the choice of sampler is not what it checks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = bc.evidence_trajectory(study, dates=dates, sampler="pymc", **TINY)
    assert list(table["date"].astype(str).unique()) == dates
    rows = table.groupby("date")["rows"].first().to_numpy()
    assert (np.diff(rows) > 0).all() and rows[-1] == len(observation_rows(study.evidence))
    assert set(table["channel"]) == set(study.framework.channel_ids)
    # each point is the as-of replay of that date
    point = quiet_fit(bc.as_of_study(study, dates[1]), sampler="pymc")
    expected = bc.conversion_probability(point).values
    got = table[table["date"].astype(str) == dates[1]]["p_converting"].to_numpy()
    np.testing.assert_allclose(got, expected)
    fig = bc.plot_trajectory(table)
    assert len(fig.axes[0].get_lines()) >= len(study.framework.channel_ids)
    fig.savefig(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0
    assert bc.evidence_trajectory.__module__ == "bayescpec.workflow.trajectory"


def test_trajectory_cli_rejects_bad_dates(tmp_path):
    out = CliRunner().invoke(app, ["trajectory", "--dates", "2025-02-30", "--out", str(tmp_path / "t")])
    assert out.exit_code == 2 and "--dates" in out.output and not (tmp_path / "t").exists()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:400_000])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _flip(path: Path) -> None:
    """200 bytes past the header overwritten: HDF5 checksums fail (the netCDF library raises an error)."""
    data = bytearray(path.read_bytes())
    data[2000:2200] = bytes((b ^ 0x5A) for b in data[2000:2200])
    path.write_bytes(bytes(data))


def _no_groups(path: Path) -> None:
    """A netCDF file with the result's attrs but none of its groups."""
    import xarray as xr

    attrs = bc.load_result(path).attrs
    path.unlink()
    xr.DataTree(xr.Dataset(attrs={k: v for k, v in attrs.items() if isinstance(v, (str, int, float))})).to_netcdf(
        path, engine="netcdf4")


DAMAGES = [("truncated", _truncate), ("empty", _empty), ("bytes-flipped", _flip), ("no-groups", _no_groups)]


@pytest.mark.parametrize("case,damage", DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_damaged_vintage_is_listed_as_unreadable_and_named_when_asked_for(pair, tmp_path, case, damage):
    """A damaged vintage neither vanishes from the history nor crashes it: history lists it as
    unreadable with the reason, asking for it by name says it cannot be read (exit 2, no traceback),
    and latest/previous skip it saying so."""
    a, b = pair
    root = tmp_path / "v"
    first = bc.save_vintage(a, root=root)
    second = bc.save_vintage(b, root=root)
    damage(first / "result.nc")
    table = bc.history(root)
    assert list(table["vintage"]) == [first.name, second.name]
    bad = table.iloc[0]
    assert bad["method"] == "unreadable" and not bad["converged"] and bad["convergence_failures"].startswith(
        "cannot be read: ") and np.isnan(bad["p_sez"])
    assert table.iloc[1]["p_sez"] == pytest.approx(bc.history(root)["p_sez"].iloc[1])
    shown = CliRunner().invoke(app, ["history", "--vintages", str(root)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "UNREADABLE" in shown.output and "Traceback" not in shown.output
    assert f"{first.name} cannot be read" in " ".join(shown.output.split())
    for args in (["diff", first.name, "latest"], ["diff", first.name[:-3], second.name]):  # a unique prefix
        out = CliRunner().invoke(app, [*args, "--vintages", str(root)])
        assert out.exit_code == 2 and "Traceback" not in out.output, out.output
        text = " ".join(out.output.split())
        assert (f"vintage {first.name}" in text and "cannot be read" in text) or "not a readable" in text or \
            "incomplete bayescpec result" in text, text
    out = CliRunner().invoke(app, ["diff", "previous", "latest", "--vintages", str(root)])
    assert out.exit_code == 2 and f"only 1 readable vintage(s) (1 cannot be read: {first.name}" in " ".join(
        out.output.split())
    direct = CliRunner().invoke(app, ["report", str(first / "result.nc"), "--out", str(tmp_path / "r"), "-f", "csv",
                                      "--no-figures", "--no-page"])
    assert direct.exit_code == 2 and "Traceback" not in direct.output and not (tmp_path / "r").exists()
    assert str(first / "result.nc") in " ".join(direct.output.split()).replace(" ", "") or "result.nc" in direct.output


def test_an_exact_readable_name_wins_over_a_damaged_vintage_it_prefixes(pair, tmp_path):
    """save_vintage names a second fit of the same day NAME-2: with NAME-2 damaged, NAME still resolves,
    and a prefix of both is ambiguous rather than 'damaged'."""
    from bayescpec.workflow.vintages import load_vintage

    a, b = pair
    root = tmp_path / "v"
    first = bc.save_vintage(a, root=root)
    second = bc.save_vintage(a, root=root, reuse=False)
    assert second.name == first.name + "-2"
    _truncate(second / "result.nc")
    assert load_vintage(first.name, root=root).attrs["vintage"] == first.name
    with pytest.raises(bc.BayescpecError, match="matches several vintages"):
        load_vintage(first.name[:12], root=root)
    with pytest.raises(bc.BayescpecError, match=f"vintage {second.name} under .* cannot be read"):
        load_vintage(second.name, root=root)


def test_a_run_serialises_its_result_once_and_the_working_copy_is_the_vintages_bytes(tmp_path):
    """`run` writes the fit into its vintage and copies those bytes to results/result.nc (issue 21: the
    result written once): the two files are identical and the working copy names its vintage."""
    from typer.testing import CliRunner

    from bayescpec.cli import app
    from conftest import write_mini_study

    paths = write_mini_study(tmp_path / "in", ["s1,2026-01-01,a,clue,mechanism,signal,1,,,,,,1,,test,x"])
    out = tmp_path / "out"
    outcome = CliRunner().invoke(app, ["run", "--framework", str(paths["framework"]), "--priors",
                                       str(paths["priors"]), "--evidence", str(paths["evidence"]), "--sources",
                                       str(paths["sources"]), "--draws", "100", "--tune", "100", "--chains", "2",
                                       "--out", str(out), "-q"])
    assert outcome.exit_code == 0, outcome.output
    (vintage,) = [p for p in (out / "vintages").iterdir()]
    assert (vintage / "result.nc").read_bytes() == (out / "result.nc").read_bytes()
    assert bc.load_result(out).attrs["vintage"] == vintage.name
