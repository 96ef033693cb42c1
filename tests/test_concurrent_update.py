"""Two `bayescpec update` processes on one log, and `kill -9` in the middle of an update.

Real subprocesses (``python -m bayescpec.cli update``) on copies of the shipped files, tiny sampling
settings. The test holds the log's lock while it starts the updates and lets them go together once
both wait for it (``/proc/locks`` shows the waiters), so they race for the same log at the same
moment. No assertion depends on timing: whenever a process is killed, the log must be the old log
or the old log plus the whole batch, and every vintage must be readable, the earlier ones unchanged.
(`update` fits a scratch copy of the updated log first and appends only after the fit, so a kill
during the fit leaves the old log.)
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bayescpec as bc
from bayescpec.workflow.vintages import list_vintages

HEADER = ("id,observed,target,indicator,tier,kind,value,k,n,test,sensitivity,false_positive,reliability,"
          "package,source,note,unit")
#: as `update` writes them into the shipped log (17 fields: an empty unit ends the line with a comma)
ROWS = {
    "shared": "hyp-shared,2026-03-01,sez,sez_zone_exports,outcome,signal,1,,,,,,0.9,,hypothetical,HYPOTHETICAL shared,",
    "a1": 'hyp-a1,2026-03-02,sez,sez_firm_entry,mechanism,count,,12,40,,,,0.9,,hypothetical,"HYPOTHETICAL a1, comma",'
          'zone-a',
    "a2": "hyp-a2,2026-03-03,digital,network_reliability,mechanism,signal,0,,,,,,0.8,,hypothetical,HYPOTHETICAL a2,",
    "b1": "hyp-b1,2026-03-04,green,electricity_reliability,mechanism,signal,1,,,hoop,,,,,hypothetical,HYPOTHETICAL b1,",
    "b2": "hyp-b2,2026-03-05,gwadar,gwadar_cargo_volume,outcome,signal,0,,,,,,0.7,,hypothetical,HYPOTHETICAL b2,",
}
TINY = ["--draws", "10", "--tune", "10", "--chains", "1", "--method", "refit"]
GUARD = 600  # seconds: only so that a hung process fails the test instead of hanging it


def batch(folder: Path, name: str, *keys: str) -> Path:
    path = folder / name
    path.write_text("\n".join([HEADER] + [ROWS[k] for k in keys]) + "\n", encoding="utf-8")
    return path


def start_update(new: Path, paths: dict[str, Path], vintages: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "bayescpec.cli", "update", str(new), "--evidence", str(paths["evidence"]),
               "--framework", str(paths["framework"]), "--priors", str(paths["priors"]),
               "--vintages", str(vintages), "--yes", *(extra or TINY)]  # --yes: the rows are hypothetical on purpose
    return subprocess.Popen(command, cwd=new.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lock_waiters(path: Path) -> set[int]:
    """PIDs blocked on an flock of ``path`` (Linux /proc/locks: blocked requests are marked '->')."""
    inode = os.stat(path).st_ino
    waiters = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and "FLOCK" in fields:
            rest = fields[fields.index("->") + 1:]
            pid, device = int(rest[3]), rest[4]
            if int(device.rsplit(":", 1)[1]) == inode:
                waiters.add(pid)
    return waiters


class HeldLock:
    """The log's lock held by the test (as `update` takes it: flock LOCK_EX on the file)."""

    def __init__(self, path: Path):
        self.handle = open(path, "rb")
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        self.path = path

    def wait_for(self, *processes: subprocess.Popen) -> None:
        """Return once every process waits for this lock (or has exited, which the caller then sees)."""
        if not Path("/proc/locks").exists():
            pytest.skip("no /proc/locks to see who waits for the lock")
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            waiting = lock_waiters(self.path)
            if all(p.pid in waiting or p.poll() is not None for p in processes):
                return
            time.sleep(0.05)
        raise AssertionError("the updates never reached the log's lock")

    def release(self) -> None:
        self.handle.close()


def ids_of(path: Path) -> list[str]:
    return [row["id"] for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def finish(process: subprocess.Popen) -> tuple[int, str]:
    out, err = process.communicate(timeout=GUARD)
    return process.returncode, out + err


def assert_readable(paths: dict[str, Path], vintages: Path) -> None:
    bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"])
    for vintage in list_vintages(vintages):
        bc.load_vintage(vintage.path)
    if vintages.exists():
        bc.history(vintages)


@pytest.mark.slow
def test_two_updates_started_together_append_every_row_exactly_once(shipped_copy, tmp_path):
    log, vintages = shipped_copy["evidence"], tmp_path / "vintages"
    original, original_ids = log.read_bytes(), ids_of(log)
    first = batch(tmp_path, "first.csv", "shared", "a1", "a2")
    second = batch(tmp_path, "second.csv", "shared", "b1", "b2")
    lock = HeldLock(log)
    try:
        processes = [start_update(first, shipped_copy, vintages), start_update(second, shipped_copy, vintages)]
        lock.wait_for(*processes)
    finally:
        lock.release()  # both go at once
    results = [finish(p) for p in processes]
    for code, output in results:
        assert code == 0, output
        assert "Traceback" not in output
    outputs = "\n".join(output for _, output in results)
    assert len(re.findall(r"\d+ row\(s\) appended[;,]", outputs)) == 2  # one append message per update
    assert "already in the log skipped (hyp-shared)" in outputs  # the second to get the lock skips it

    data = log.read_bytes()
    assert data.startswith(original), "an earlier row was rewritten"
    ids = ids_of(log)
    assert ids[:len(original_ids)] == original_ids
    assert sorted(ids[len(original_ids):]) == sorted(f"hyp-{k}" for k in ("shared", "a1", "a2", "b1", "b2")), \
        "every row of both batches appended exactly once"
    assert leftovers(log.parent) == []
    assert_readable(shipped_copy, vintages)
    assert len(list_vintages(vintages)) == 2


def test_kill_while_waiting_for_the_lock_changes_nothing(shipped_copy, tmp_path):
    log, vintages = shipped_copy["evidence"], tmp_path / "vintages"
    original = log.read_bytes()
    lock = HeldLock(log)
    try:
        process = start_update(batch(tmp_path, "new.csv", "a1", "b1"), shipped_copy, vintages)
        lock.wait_for(process)
        assert process.poll() is None, finish(process)[1]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=GUARD)
    finally:
        lock.release()
    assert log.read_bytes() == original
    assert leftovers(log.parent) == [] and list_vintages(vintages) == []
    assert_readable(shipped_copy, vintages)


@pytest.mark.slow
def test_kill_9_during_an_update_leaves_log_and_vintages_readable(shipped_copy, tmp_path):
    log, vintages = shipped_copy["evidence"], tmp_path / "vintages"
    code, output = finish(start_update(batch(tmp_path, "first.csv", "a1"), shipped_copy, vintages))
    assert code == 0, output
    (earlier,) = list_vintages(vintages)
    earlier_bytes = (earlier.path / "result.nc").read_bytes()
    before = log.read_bytes()
    new = batch(tmp_path, "second.csv", "a2", "b1")
    appended = [ROWS["a2"], ROWS["b1"]]

    # killed during a long fit: the log is written only after the fit, so it is the old log (or, had the
    # fit finished first, the old log plus the whole batch); no vintage of it is half there
    process = start_update(new, shipped_copy, vintages, "--draws", "5000", "--tune", "5000", "--chains", "1")
    time.sleep(3)  # where the update is by then does not matter for the assertions below
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=GUARD)
    after = log.read_bytes()
    with_batch = before + ("\n".join(appended) + "\n").encode()
    assert after in (before, with_batch), "the log is neither the old log nor the old log plus the batch"
    assert (earlier.path / "result.nc").read_bytes() == earlier_bytes
    assert leftovers(log.parent) == []
    assert_readable(shipped_copy, vintages)
    # updating with the batch again: appends it if the kill came before the append, else nothing new
    code, output = finish(start_update(new, shipped_copy, vintages))
    assert code == 0, output
    assert ("no new rows" in output) == (after == with_batch), output
    assert log.read_bytes() == with_batch


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 2.0, 4.0, 8.0])
def test_kill_9_at_any_moment_leaves_the_old_log_or_the_whole_batch(shipped_copy, tmp_path, delay):
    log, vintages = shipped_copy["evidence"], tmp_path / "vintages"
    before = log.read_bytes()
    with_batch = before + (ROWS["b2"] + "\n").encode()
    process = start_update(batch(tmp_path, "new.csv", "b2"), shipped_copy, vintages)
    time.sleep(delay)  # wherever the update is by now: validating, appending, fitting or saving
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=GUARD)
    assert log.read_bytes() in (before, with_batch)
    assert leftovers(log.parent) == []
    assert_readable(shipped_copy, vintages)
