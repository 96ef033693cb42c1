"""The reference: the same model as bayescpec's, written as a straightforward PyMC script.

This is what a user would otherwise write: read the TOML files and the evidence CSV with the
standard library and pandas, the conversion chain in its natural (centred) form -- each stage's
constraint-free pass probability q0 ~ Beta (the prior set's Beta of theta split over the stages),
severities with the feedback loops' shared factors, signed loadings, logit q = logit q0 - sum L s,
reach = cumulative product of q along the chain -- one likelihood term per evidence *row*
(Bernoulli for signals, BetaBinomial for counts with each count indicator's own rates and
intra-class correlation, Normal for measures; no aggregation into groups; data gaps skipped), the
same ``s = f + (1 - f) g`` parametrisation of diagnosticities and count rates, package tempering by
weighting each row's log-likelihood (``pm.Potential``), and a default ``pm.sample()``.

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
REPORTED = ("theta", "reach", "severity")


def beta_ab(mean, concentration):
    return mean * concentration, (1 - mean) * concentration


def build_model(framework_path, priors_path, evidence_path) -> pm.Model:
    fw = tomllib.loads(Path(framework_path).read_text())
    pr = tomllib.loads(Path(priors_path).read_text())
    ev = pd.read_csv(evidence_path, keep_default_na=False, na_values={c: [""] for c in
                     ("value", "k", "n", "sensitivity", "false_positive", "reliability")})
    ev = ev[ev["kind"] != "gap"].reset_index(drop=True)
    channels = [c["id"] for c in fw["channels"]]
    constraints = [c["id"] for c in fw["constraints"]]
    stages = [s["id"] for s in fw.get("stages", [])] or ["conversion"]
    share = {s["id"]: s.get("prior_share", 1.0) for s in fw.get("stages", [])}
    tiers = [t["id"] for t in sorted(fw["tiers"], key=lambda t: t["rank"])]
    tests = [t["id"] for t in fw.get("test_types", [])]
    links = [(ch, con["id"], stages[-1]) for con in fw["constraints"] for ch in channels if ch in con.get("binds", [])]
    links += [(link["channel"], link["constraint"], link.get("stage", stages[-1])) for link in fw.get("links", [])]
    indicators = {i["id"]: i for i in fw["indicators"]}

    # package tempering: each row weighs 1 / (rows in its package)
    package = ev["package"].astype(str)
    size = package.map(package[package != ""].value_counts()).fillna(1.0)
    weight = np.where(package == "", 1.0, 1.0 / size)
    reliability = ev["reliability"].fillna(1.0).to_numpy()
    row_stage = [indicators[i].get("stage", stages[-1]) for i in ev["indicator"]]
    targets = [f"{c}|{s}" for c in channels for s in stages] + constraints
    target_idx = np.array([targets.index(f"{t}|{st}" if t in channels else t) for t, st in zip(ev["target"], row_stage)])
    diags = [f"tier:{t}" for t in tiers] + [f"test:{t}" for t in tests]
    diag_idx = np.array([diags.index(f"test:{t}" if t else f"tier:{r}") for t, r in zip(ev["test"], ev["tier"])])

    # stage priors: q0_J ~ Beta(a, b_J), q0_j ~ Beta(a + sum_{i>j} b_i, b_j), b_j = b * share_j
    cell_a, cell_b = [], []
    for c in channels:
        a, b = beta_ab(**pr["channels"][c])
        w = np.array([share.get(s, 1.0) for s in stages]) / sum(share.get(s, 1.0) for s in stages)
        bj = b * w
        cell_a += [a + bj[j + 1:].sum() for j in range(len(stages))]
        cell_b += list(bj)
    coords = {"channel": channels, "stage": stages, "constraint": constraints,
              "link": [f"{c}|{k}" for c, k, _ in links], "tier": tiers, "test": tests}
    with pm.Model(coords=coords) as model:
        q0 = pm.Beta("base_stage_probability", alpha=np.array(cell_a).reshape(len(channels), len(stages)),
                     beta=np.array(cell_b).reshape(len(channels), len(stages)), dims=("channel", "stage"))
        z = pm.Normal("severity_z", 0, 1, dims="constraint")
        mu = np.array([pr["constraints"][k]["mean"] for k in constraints])
        sd = np.array([pr["constraints"][k]["sd"] for k in constraints])
        shared, rho2 = pt.zeros(len(constraints)), pt.zeros(len(constraints))
        for loop in fw.get("loops", []):
            members = np.array([constraints.index(k) for k in loop["constraints"]])
            factor = pm.Normal(f"loop_{loop['id']}", 0, 1)
            rho = pm.Beta(f"loop_loading_{loop['id']}", alpha=pr["loop_loadings"]["mean"] * pr["loop_loadings"]["concentration"],
                          beta=(1 - pr["loop_loadings"]["mean"]) * pr["loop_loadings"]["concentration"],
                          shape=len(members))
            shared = pt.inc_subtensor(shared[members], rho * factor)
            rho2 = pt.inc_subtensor(rho2[members], rho**2)
        severity = pm.Deterministic("severity", mu + sd * (shared + pt.sqrt(1 - rho2) * z), dims="constraint")
        if "mean" in pr["loadings"]:
            loading = pm.Normal("loading", mu=pr["loadings"]["mean"], sigma=pr["loadings"]["sd"], dims="link")
        else:
            loading = pm.HalfNormal("loading", sigma=pr["loadings"]["sd"], dims="link")
        effect = pt.zeros((len(channels), len(stages)))
        for j, (c, k, st) in enumerate(links):
            effect = pt.inc_subtensor(effect[channels.index(c), stages.index(st)], loading[j] * severity[constraints.index(k)])
        eta = pt.log(q0) - pt.log1p(-q0) - effect
        reach = pm.Deterministic("reach", pt.cumprod(pm.math.sigmoid(eta), axis=1), dims=("channel", "stage"))
        pm.Deterministic("theta", reach[:, -1], dims="channel")
        latent = pt.concatenate([pt.log(reach.flatten()) - pt.log1p(-reach.flatten()), severity])

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

        def prob(rows):
            pi = pm.math.sigmoid(latent[target_idx[rows]])
            s_fixed = ev["sensitivity"].to_numpy()[rows]
            f_fixed = ev["false_positive"].to_numpy()[rows]
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
        # count indicators: their own rates f, s = f + (1 - f) g (catalogue means, [counts] concentration)
        # and intra-class correlation rho; k ~ BetaBinomial(n, p phi, (1 - p) phi), phi = 1 / rho - 1
        counted = [i for i in indicators if "count" in indicators[i]["kinds"]]
        if counted and "counts" in pr:
            kappa = pr["counts"]["rate_concentration"]
            rate_c = np.array([indicators[i]["rate_converting"] for i in counted])
            rate_n = np.array([indicators[i]["rate_not_converting"] for i in counted])
            gap = (rate_c - rate_n) / (1 - rate_n)
            rate_f = pm.Beta("rate_not_converting", alpha=rate_n * kappa, beta=(1 - rate_n) * kappa, shape=len(counted))
            rate_g = pm.Beta("rate_gap", alpha=gap * kappa, beta=(1 - gap) * kappa, shape=len(counted))
            rate_s = rate_f + (1 - rate_f) * rate_g
            icc = pm.Beta("count_icc", *beta_ab(**pr["counts"]["overdispersion"]), shape=len(counted))
            rows = np.flatnonzero(ev["kind"] == "count")
            if rows.size:
                which = np.array([counted.index(i) for i in ev["indicator"].to_numpy()[rows]])
                p = rate_f[which] + pm.math.sigmoid(latent[target_idx[rows]]) * (rate_s[which] - rate_f[which])
                phi = 1 / icc[which] - 1
                n, k = ev["n"].to_numpy()[rows].astype(int), ev["k"].to_numpy()[rows].astype(int)
                pm.Potential("counts", pt.sum(weight[rows] * reliability[rows]
                                              * pm.logp(pm.BetaBinomial.dist(n=n, alpha=p * phi, beta=(1 - p) * phi), k)))
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
    tail = az.ess(posterior[list(REPORTED)], method="tail")
    min_tail = float(min(float(tail[name].min()) for name in REPORTED))
    out = {
        "import_s": imported - T0, "build_s": built - imported, "sample_s": sampled - built,
        "wall_s": time.perf_counter() - T0, "min_ess_bulk": min_ess, "min_ess_tail": min_tail,
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
