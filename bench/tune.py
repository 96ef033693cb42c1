"""How short a warm-up passes the convergence gate (issue 21, item 5): fits of the shipped study and the
tests' studies at several tune lengths over many seeds, each judged by the full gate.

    bash .ci/env python bench/tune.py --seeds 20 --tunes 200,300,500,1000

Prints one line per (study, tune): fits that passed the gate / fits, the failures seen, the median
sampling time, and writes bench/out/tune.json. A tune length becomes the default only if every fit of
every study passes at it; a fit that fails is re-sampled at the long tune (engine.sampling).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

import bayescpec as bc  # noqa: E402

from conftest import write_mini_study  # noqa: E402

MINI_ROWS = [f"s{i},2026-01-01,a,clue,mechanism,signal,{i % 2},,,,,,1,,test,x" for i in range(6)] + [
    "c1,2026-01-01,a,units,mechanism,count,,7,10,,,,1,,test,x",
    "m1,2026-01-01,a,level,mechanism,measure,12.5,,,,,,0.8,,test,x",
]


def studies(folder: Path) -> dict:
    """The shipped study under each shipped prior set, the shipped log with the hypothetical batch (every
    kind of row), and the tests' one-channel study with and without units."""
    out = {f"shipped ({name})": bc.load_study(priors=name) for name in ("baseline", "skeptical", "optimistic", "flat")}
    shipped = out["shipped (baseline)"]
    batch = bc.load_study(evidence=ROOT / "evidence" / "hypothetical_sez_batch.csv")
    out["shipped + hypothetical batch"] = shipped.with_evidence(
        pd.concat([shipped.evidence, batch.evidence], ignore_index=True))
    paths = write_mini_study(folder / "mini", MINI_ROWS)
    out["tests' one-channel study"] = bc.load_study(framework=paths["framework"], priors=paths["priors"],
                                                    evidence=paths["evidence"])
    rows = [row + ",north" for row in MINI_ROWS[:4]] + [row + ",south" for row in MINI_ROWS[4:]]
    paths = write_mini_study(folder / "units", rows)
    lines = paths["evidence"].read_text().splitlines()
    paths["evidence"].write_text("\n".join([lines[0] + ",unit"] + lines[1:]) + "\n")
    out["tests' one-channel study with units"] = bc.load_study(framework=paths["framework"], priors=paths["priors"],
                                                               evidence=paths["evidence"])
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--tunes", default="200,300,500,1000")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "tune.json")
    args = parser.parse_args(argv)
    tunes = [int(t) for t in args.tunes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, study in studies(Path(folder)).items():
            for tune in tunes:
                passed, failures, seconds = 0, [], []
                for seed in range(1, args.seeds + 1):
                    started = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        # the gate judges the first sampling: no re-run at the long tune here
                        result = bc.fit(study, draws=args.draws, tune=tune, chains=4, seed=seed, pointwise=False)
                    seconds.append(time.perf_counter() - started)
                    attrs = result.attrs
                    if attrs["converged"] and not attrs.get("divergence_retry"):
                        passed += 1
                    else:
                        failures.append(f"seed {seed}: {attrs['convergence_failures'] or attrs['divergence_retry']}")
                row = {"study": label, "tune": tune, "passed": passed, "fits": args.seeds,
                       "median_fit_s": round(statistics.median(seconds), 3), "failures": failures}
                rows.append(row)
                print(f"{label:40s} tune {tune:5d}: {passed}/{args.seeds} passed, median fit "
                      f"{row['median_fit_s']:.2f} s" + (f"; {failures[:2]}" if failures else ""), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
