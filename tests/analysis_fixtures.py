"""A small study for the analysis tests: one channel, one stage, no constraints -- so that its posterior
can be refitted in seconds and some answers have closed forms.

Rows: a package of two strong signals (explicit sensitivity 0.9, false positive 0.1, each weighing 1/2),
a count of 8 of 10 units (the catalogue's rates 0.7 / 0.2 as the means of the indicator's own rates,
with overdispersion) and one measure (z = 1 at loading 0.6).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

import bayescpec as bc
from conftest import write_mini_study

ROWS = [
    "p1,2026-01-01,a,clue,mechanism,signal,1,,,,0.9,0.1,1,pk,test,strong clue",
    "p2,2026-01-02,a,clue,mechanism,signal,1,,,,0.9,0.1,1,pk,test,the same fact again",
    "c1,2026-01-03,a,units,mechanism,count,,8,10,,,,1,,test,eight of ten",
    "m1,2026-01-04,a,level,mechanism,measure,12,,,,,,1,,test,one level",
]
FIT = dict(draws=1000, tune=500, chains=2)


def mini_study(folder: Path, rows=ROWS, *, tier: tuple[float, float] | None = None, **priors) -> bc.Study:
    """The small study in ``folder``; ``tier`` replaces the mechanism tier's (sensitivity, false positive) means."""
    paths = write_mini_study(folder, list(rows), **priors)
    if tier is not None:
        text = paths["priors"].read_text().replace("mean = 0.7, concentration = 15", f"mean = {tier[0]}, concentration = 40")
        paths["priors"].write_text(text.replace("mean = 0.3, concentration = 15", f"mean = {tier[1]}, concentration = 40"))
    return bc.load_study(framework=paths["framework"], priors=paths["priors"], evidence=paths["evidence"],
                         sources=paths["sources"])


def quiet_fit(study: bc.Study, seed: int = 1, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bc.fit(study, seed=seed, **{**FIT, **settings})


def theta(result) -> np.ndarray:
    return result["posterior"]["theta"].values.reshape(-1, result["posterior"].sizes["channel"])


def mcse(values: np.ndarray, ess: float) -> float:
    return float(np.std(values) / np.sqrt(ess))
