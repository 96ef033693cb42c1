"""Seeded simulator of a SYNTHETIC evidence log, for benchmarks only (never real evidence).

    python bench/simulate.py --rows 100000 --seed 1 --out bench/out/data

writes ``synthetic_<rows>_seed<seed>.csv`` and a ``sources.csv`` (one key, ``synthetic``) into
``--out``. Every row's ``note`` starts with ``SYNTHETIC``. The rows are valid for
``bayescpec.load_study(framework=..., evidence=..., sources=...)``: each row is a combination
(indicator, target, tier, kind) the framework's indicator catalogue allows, drawn from a known
"truth" (a conversion probability per channel, a severity per constraint) with the tier's
diagnosticity (signals) or the indicator's catalogue rates and overdispersion (counts), so they look like
firm-level survey data: many rows, few distinct groups.

Reliabilities come from a short list (0.6 ... 1.0) and count sizes from a few survey sizes, so the
number of *groups* the model sees stays bounded however many rows there are. About one row in ten
belongs to a package of 2-3 rows (one underlying fact reported several times).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from bayescpec.inputs.evidence import EVIDENCE_COLUMNS, MAX_STANDARDISED
from bayescpec.inputs.spec import ANY_CHANNEL, load_framework
from bayescpec.inputs.study import shipped_path

__all__ = ["simulate", "simulate_rows", "SOURCE_KEY"]

SOURCE_KEY = "synthetic"
RELIABILITIES = np.array([0.6, 0.7, 0.8, 0.9, 1.0])
COUNT_SIZES = np.array([20, 50, 100])
#: intra-class correlation of a count's units (the shipped baseline's prior mean of [counts] overdispersion)
COUNT_ICC = 0.15
#: (sensitivity, false positive) the simulator uses per tier: the shipped baseline prior means
TIER_RATES = {"context": (0.8, 0.25), "potential": (0.9, 0.7), "mechanism": (0.7, 0.3), "outcome": (0.8, 0.1)}
MEASURE_LOADING = {"context": 1.0, "potential": 0.25, "mechanism": 0.6, "outcome": 1.0}


def _combinations(framework) -> pd.DataFrame:
    """Every (indicator, target, tier, kind) the framework allows."""
    rows = []
    for ind in framework.indicators:
        targets = framework.channel_ids if ind.target == ANY_CHANNEL else [ind.target]
        for target in targets:
            for tier in ind.tiers:
                for kind in ind.kinds:
                    rows.append((ind.id, target, tier, kind, ind.baseline, ind.scale, ind.direction,
                                 ind.rate_converting, ind.rate_not_converting))
    return pd.DataFrame(rows, columns=["indicator", "target", "tier", "kind", "baseline", "scale",
                                       "direction", "rate_c", "rate_n"])


def simulate_rows(n_rows: int, seed: int = 1, *, framework=None, start_id: int = 1,
                  id_prefix: str = "syn") -> pd.DataFrame:
    """``n_rows`` synthetic evidence rows (all columns of an evidence CSV, as text-ready values)."""
    framework = framework or load_framework(shipped_path("priors", "framework.toml"))
    rng = np.random.default_rng(seed)
    combos = _combinations(framework)
    channels, constraints = framework.channel_ids, framework.constraint_ids
    truth = {c: v for c, v in zip(channels, rng.uniform(0.2, 0.8, len(channels)))}   # theta
    truth.update({k: v for k, v in zip(constraints, rng.normal(0.5, 0.7, len(constraints)))})  # severity
    pick = combos.iloc[rng.integers(0, len(combos), n_rows)].reset_index(drop=True)
    kind, tier, target = pick["kind"].to_numpy(), pick["tier"].to_numpy(), pick["target"].to_numpy()
    is_constraint = np.isin(target, constraints)
    latent = np.array([truth[t] for t in target]) if n_rows else np.zeros(0)
    # P(conversion-type event) per row: theta for channels, sigmoid(severity) for constraints
    pi = np.where(is_constraint, 1 / (1 + np.exp(-latent)), latent)
    sens = np.array([TIER_RATES[t][0] for t in tier]) if n_rows else np.zeros(0)
    fpr = np.array([TIER_RATES[t][1] for t in tier]) if n_rows else np.zeros(0)
    counted = (kind == "count") & pick["rate_c"].notna().to_numpy()  # a count reads its indicator's rates
    sens = np.where(counted, pick["rate_c"].astype(float), sens)
    fpr = np.where(counted, pick["rate_n"].astype(float), fpr)
    p = fpr + pi * (sens - fpr)
    reliability = RELIABILITIES[rng.integers(0, len(RELIABILITIES), n_rows)]

    value = np.full(n_rows, "", dtype=object)
    k_col = np.full(n_rows, "", dtype=object)
    n_col = np.full(n_rows, "", dtype=object)
    sig = kind == "signal"
    p_signal = reliability * p + (1 - reliability) / 2
    value[sig] = (rng.random(n_rows) < p_signal)[sig].astype(int).astype(str)
    cnt = kind == "count"
    n = COUNT_SIZES[rng.integers(0, len(COUNT_SIZES), n_rows)]
    # a count's units share their row's own rate, drawn around p (beta-binomial, intra-class correlation
    # COUNT_ICC: the shipped baseline's prior mean); its rates are the catalogue's (every count indicator has them)
    phi = 1 / COUNT_ICC - 1
    k = rng.binomial(n, rng.beta(np.clip(p, 1e-6, 1) * phi, np.clip(1 - p, 1e-6, 1) * phi))
    k_col[cnt] = k[cnt].astype(str)
    n_col[cnt] = n[cnt].astype(str)
    mea = kind == "measure"
    if mea.any():
        z_latent = np.where(is_constraint, latent, np.log(np.clip(latent, 1e-6, 1 - 1e-6) / (1 - np.clip(latent, 1e-6, 1 - 1e-6))))
        loading = np.array([MEASURE_LOADING.get(t, 1.0) for t in tier])
        z = rng.normal(loading * z_latent, 1.0)
        z = np.clip(z, -MAX_STANDARDISED, MAX_STANDARDISED)  # validation refuses |z| beyond the bound
        # value = baseline + sign * z * scale, the inverse of aggregate.py's standardisation
        worse = pick["direction"].to_numpy() == "higher_is_worse"
        sign = np.where(worse == is_constraint, 1.0, -1.0)
        raw = pick["baseline"].astype(float).to_numpy() + sign * z * pick["scale"].astype(float).to_numpy()
        value[mea] = np.char.mod("%.4f", raw[mea])

    test = np.full(n_rows, "", dtype=object)
    tests = framework.test_ids
    if tests:
        use_test = sig & (rng.random(n_rows) < 0.1)
        test[use_test] = np.array(tests, dtype=object)[rng.integers(0, len(tests), n_rows)][use_test]

    # packages: ~10% of rows, in packages of 2-3 consecutive rows
    package = np.full(n_rows, "", dtype=object)
    starts = np.flatnonzero(rng.random(n_rows) < 0.04)
    for number, start in enumerate(starts):
        size = 2 + (number % 2)
        package[start:start + size] = f"{id_prefix}-pkg-{seed}-{number:06d}"

    days = rng.integers(0, (dt.date(2025, 12, 31) - dt.date(2015, 1, 1)).days, n_rows)
    observed = (np.datetime64("2015-01-01") + days.astype("timedelta64[D]")).astype(str)
    ids = [f"{id_prefix}-{seed}-{i:07d}" for i in range(start_id, start_id + n_rows)]
    frame = pd.DataFrame({
        "id": ids, "observed": observed, "target": target, "indicator": pick["indicator"].to_numpy(),
        "tier": tier, "kind": kind, "value": value, "k": k_col, "n": n_col, "test": test,
        "sensitivity": "", "false_positive": "", "reliability": np.char.mod("%.1f", reliability),
        "package": package, "source": SOURCE_KEY,
        "note": f"SYNTHETIC: generated by bench/simulate.py (seed {seed}) for benchmarks; not real evidence",
        "unit": "", "measure_unit": "",
    })
    return frame[list(EVIDENCE_COLUMNS)]


def write_sources(out: Path, extra: pd.DataFrame | None = None) -> Path:
    """A sources.csv with the ``synthetic`` key (plus the rows of ``extra``, e.g. the shipped sources)."""
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([{"key": SOURCE_KEY, "reference": "SYNTHETIC evidence generated by bench/simulate.py "
                           "(seeded simulator for benchmarks; not real data)", "year": "", "url": ""}])
    if extra is not None:
        table = pd.concat([extra[["key", "reference", "year", "url"]], table], ignore_index=True)
    path = out / "sources.csv"
    table.to_csv(path, index=False)
    return path


def simulate(n_rows: int, seed: int, out: str | Path, *, framework: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``synthetic_<n_rows>_seed<seed>.csv`` and ``sources.csv`` into ``out``; return both paths."""
    out = Path(out)
    if out.resolve() == shipped_path("evidence").resolve():
        raise ValueError("synthetic evidence never goes into evidence/; choose another folder")
    fw = load_framework(framework or shipped_path("priors", "framework.toml"))
    frame = simulate_rows(n_rows, seed, framework=fw)
    sources = write_sources(out)
    path = out / f"synthetic_{n_rows}_seed{seed}.csv"
    frame.to_csv(path, index=False)
    return path, sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/out/data"))
    args = parser.parse_args()
    evidence, sources = simulate(args.rows, args.seed, args.out)
    print(f"wrote {evidence} and {sources}")


if __name__ == "__main__":
    main()
