"""The reference: the same model as bayescpec's, written as a straightforward PyMC script.

This is what a user would otherwise write: read the TOML files and the evidence CSV with the
standard library and pandas, one likelihood term per evidence *row* (Bernoulli for signals,
Binomial for counts, Normal for measures; no aggregation into groups), the same priors and the
same ``s = f + (1 - f) g`` diagnosticity parametrisation, package tempering by weighting each
row's log-likelihood (``pm.Potential``), and a default ``pm.sample()``.

    python bench/baseline_pymc.py [--evidence evidence/cpec.csv] [--draws 1000] [--json]

(Note: with nutpie installed, PyMC 6's default ``pm.sample()`` runs nutpie's NUTS; pass
``--nuts-sampler pymc`` for PyMC's own.)
"""

from __future__ import annotations

import argparse
import json
import time

T0 = time.perf_counter()

import tomllib  # noqa: E402
from pathlib import Path  # noqa: E402

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402
import pytensor.tensor as pt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REPORTED = ("theta", "base_theta", "severity", "constraint_effect")


def beta_ab(mean, concentration):
    return mean * concentration, (1 - mean) * concentration


def build_model(framework_path, priors_path, evidence_path) -> pm.Model:
    fw = tomllib.loads(Path(framework_path).read_text())
    pr = tomllib.loads(Path(priors_path).read_text())
    ev = pd.read_csv(evidence_path, keep_default_na=False, na_values={c: [""] for c in
                     ("value", "k", "n", "sensitivity", "false_positive", "reliability")})
    channels = [c["id"] for c in fw["channels"]]
    constraints = [c["id"] for c in fw["constraints"]]
    tiers = [t["id"] for t in sorted(fw["tiers"], key=lambda t: t["rank"])]
    tests = [t["id"] for t in fw.get("test_types", [])]
    links = [(ch, con["id"]) for con in fw["constraints"] for ch in channels if ch in con["binds"]]
    indicators = {i["id"]: i for i in fw["indicators"]}

    # package tempering: each row weighs 1 / (rows in its package)
    package = ev["package"].astype(str)
    size = package.map(package[package != ""].value_counts()).fillna(1.0)
    weight = np.where(package == "", 1.0, 1.0 / size)
    reliability = ev["reliability"].fillna(1.0).to_numpy()
    targets = channels + constraints
    target_idx = ev["target"].map({t: i for i, t in enumerate(targets)}).to_numpy()
    diags = [f"tier:{t}" for t in tiers] + [f"test:{t}" for t in tests]
    diag_idx = np.array([diags.index(f"test:{t}" if t else f"tier:{r}") for t, r in zip(ev["test"], ev["tier"])])

    coords = {"channel": channels, "constraint": constraints, "link": [f"{c}|{k}" for c, k in links],
              "tier": tiers, "test": tests}
    with pm.Model(coords=coords) as model:
        a, b = zip(*[beta_ab(**pr["channels"][c]) for c in channels])
        base_theta = pm.Beta("base_theta", alpha=np.array(a), beta=np.array(b), dims="channel")
        severity = pm.Normal("severity", mu=np.array([pr["constraints"][k]["mean"] for k in constraints]),
                             sigma=np.array([pr["constraints"][k]["sd"] for k in constraints]), dims="constraint")
        loading = pm.HalfNormal("loading", sigma=pr["loadings"]["sd"], dims="link")
        effect = pt.zeros(len(channels))
        effect = pt.inc_subtensor(effect[np.array([channels.index(c) for c, _ in links])],
                                  loading * severity[np.array([constraints.index(k) for _, k in links])])
        effect = pm.Deterministic("constraint_effect", effect, dims="channel")
        eta = pt.log(base_theta) - pt.log1p(-base_theta) - effect
        pm.Deterministic("theta", pm.math.sigmoid(eta), dims="channel")

        sens, fpr = [], []
        for group, names in (("tier", tiers), ("test", tests)):
            table = pr["diagnosticity"][group + "s"]
            fa, fb = zip(*[beta_ab(**table[n]["false_positive"]) for n in names])
            f = pm.Beta(f"false_positive_{group}", alpha=np.array(fa), beta=np.array(fb), dims=group)
            ga, gb = zip(*[beta_ab(mean=(table[n]["sensitivity"]["mean"] - table[n]["false_positive"]["mean"])
                                   / (1 - table[n]["false_positive"]["mean"]),
                                   concentration=table[n]["sensitivity"]["concentration"]) for n in names])
            g = pm.Beta(f"sensitivity_gap_{group}", alpha=np.array(ga), beta=np.array(gb), dims=group)
            sens.append(pm.Deterministic(f"sensitivity_{group}", f + (1 - f) * g, dims=group))
            fpr.append(f)
        sens_all, fpr_all = pt.concatenate(sens), pt.concatenate(fpr)
        latent = pt.concatenate([eta, severity])

        def prob(rows):
            pi = pm.math.sigmoid(latent[target_idx[rows]])
            s_fixed = ev["sensitivity"].to_numpy()[rows]
            f_fixed = ev["false_positive"].to_numpy()[rows]
            kinds = ev["kind"].to_numpy()[rows]
            rate_c = np.array([indicators[i].get("rate_converting", np.nan) for i in ev["indicator"].to_numpy()[rows]])
            rate_n = np.array([indicators[i].get("rate_not_converting", np.nan) for i in ev["indicator"].to_numpy()[rows]])
            s_fixed = np.where(kinds == "count", rate_c, s_fixed)
            f_fixed = np.where(kinds == "count", rate_n, f_fixed)
            explicit = ~np.isnan(s_fixed)
            s = pt.switch(explicit, np.nan_to_num(s_fixed, nan=0.5), sens_all[diag_idx[rows]])
            f = pt.switch(explicit, np.nan_to_num(f_fixed, nan=0.5), fpr_all[diag_idx[rows]])
            return f + pi * (s - f)

        rows = np.flatnonzero(ev["kind"] == "signal")
        if rows.size:
            r = reliability[rows]
            p = r * prob(rows) + (1 - r) / 2
            y = ev["value"].to_numpy()[rows].astype(int)
            pm.Potential("signals", pt.sum(weight[rows] * pm.logp(pm.Bernoulli.dist(p=p), y)))
        rows = np.flatnonzero(ev["kind"] == "count")
        if rows.size:
            n, k = ev["n"].to_numpy()[rows].astype(int), ev["k"].to_numpy()[rows].astype(int)
            pm.Potential("counts", pt.sum(weight[rows] * reliability[rows]
                                          * pm.logp(pm.Binomial.dist(n=n, p=prob(rows)), k)))
        rows = np.flatnonzero(ev["kind"] == "measure")
        if rows.size:
            loading_tier = np.array([pr["measure_loading"][t] for t in ev["tier"].to_numpy()[rows]])
            z = []
            for i in rows:
                spec = indicators[ev["indicator"].iat[i]]
                about_constraint = ev["target"].iat[i] in constraints
                sign = 1.0 if (spec.get("direction") == "higher_is_worse") == about_constraint else -1.0
                z.append(sign * (ev["value"].iat[i] - spec["baseline"]) / spec["scale"])
            mu = loading_tier * latent[target_idx[rows]]
            pm.Potential("measures", pt.sum(weight[rows] * reliability[rows]
                                            * pm.logp(pm.Normal.dist(mu=mu, sigma=1.0), np.array(z))))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--framework", default=ROOT / "priors" / "framework.toml")
    parser.add_argument("--priors", default=ROOT / "priors" / "baseline.toml")
    parser.add_argument("--evidence", default=ROOT / "evidence" / "cpec.csv")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--nuts-sampler", default=None, help="default: PyMC's own choice")
    parser.add_argument("--json", action="store_true", help="print one JSON line of timings (for bench/run.py)")
    args = parser.parse_args()
    imported = time.perf_counter()
    model = build_model(args.framework, args.priors, args.evidence)
    built = time.perf_counter()
    extra = {"nuts_sampler": args.nuts_sampler} if args.nuts_sampler else {}
    idata = pm.sample(draws=args.draws, tune=args.tune, chains=args.chains, model=model,
                      progressbar=False, **extra)
    sampled = time.perf_counter()
    posterior = idata["posterior"].to_dataset()
    ess = az.ess(posterior[list(REPORTED)], method="bulk")
    min_ess = float(min(float(ess[name].min()) for name in REPORTED))
    out = {
        "import_s": imported - T0, "build_s": built - imported, "sample_s": sampled - built,
        "wall_s": time.perf_counter() - T0, "min_ess_bulk": min_ess,
        "theta_mean": posterior["theta"].mean(("chain", "draw")).to_numpy().tolist(),
        "sampler": args.nuts_sampler or "default",
    }
    if args.json:
        print("BENCH " + json.dumps(out))
    else:
        print(az.summary(idata, var_names=["theta"]))
        print(f"wall {out['wall_s']:.1f} s, min bulk ESS of {', '.join(REPORTED)}: {min_ess:.0f}")


if __name__ == "__main__":
    main()
