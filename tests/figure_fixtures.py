"""Inputs of every figure, built without sampling: a synthetic result shaped like a real study (its
framework's channels, labels, constraints, links and chains of stages) and the analysis results the
analysis figures draw (an influence ledger's waterfall, a value-of-information table, power-scaling
sensitivities, policy scenarios). The numbers are plausible, not fitted: these fixtures test how the
figures are laid out, not what they say.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from bayescpec.analysis.fragility import Robustness
from bayescpec.analysis.influence import Explanation

from report_fixtures import make_result

#: a two-channel study with the kind of labels a framework file writes
TWO_CHANNELS = {"industry": "Industrial upgrading in the corridor's special economic zones, with anchor firms",
                "logistics": "Port and logistics services converting transit into local value added"}
TWO_CONSTRAINTS = {"energy": "Unreliable, costly power supply and arrears in the energy sector",
                   "security": "Security risk to personnel, sites and transport routes"}
TWO_STAGES = {"firms": "Firms enter", "linkages": "Supplier linkages form", "productivity": "Productivity and exports"}


def with_stages(result: xr.DataTree, stages: dict[str, str], *, seed: int = 0,
                pass_means: dict[str, list[float]] | None = None, concentration: float = 12.0) -> xr.DataTree:
    """``result`` with every channel's chain made of ``stages``: per draw, each stage's probability of
    being passed is Beta(mean, concentration) (``pass_means`` per channel, default 0.8 at every stage),
    reach its running product, theta the last reach."""
    rng = np.random.default_rng(seed)
    fw = json.loads(result.attrs["framework"])
    channels, names = list(fw["channels"]), list(stages)
    pass_means = pass_means or {}
    groups = {}
    for group in ("posterior", "prior"):
        ds = result[group].to_dataset()
        shape = (ds.sizes["chain"], ds.sizes["draw"], len(channels), len(names))
        means = np.array([pass_means.get(c, [0.8] * len(names)) for c in channels])[None, None]
        q = rng.beta(means * concentration, (1 - means) * concentration, size=shape).clip(1e-6, 1 - 1e-6)
        reach = np.cumprod(q, axis=-1)
        dims = ("chain", "draw", "channel", "stage")
        ds = ds.drop_vars(["reach", "stage_probability", "stage_logit"]).drop_dims(["stage", "chain_stage"])
        ds = ds.assign_coords(stage=names, chain_stage=[f"{c}|{s}" for c in channels for s in names])
        ds["reach"] = (dims, reach)
        ds["stage_probability"] = (dims, q)
        ds["stage_logit"] = (("chain", "draw", "chain_stage"), np.log(q / (1 - q)).reshape(shape[0], shape[1], -1))
        ds["theta"] = (("chain", "draw", "channel"), reach[..., -1])
        groups[group] = ds
    tree = result.copy()
    for group, ds in groups.items():
        tree[group] = xr.DataTree(ds)
    fw.update(stages=stages, chains={c: names for c in channels},
              link_stages={f"{c}|{k}": names[-1] for c, k in fw["links"]})
    tree.attrs = {**result.attrs, "framework": json.dumps(fw)}
    stage_of = tree["evidence"].to_dataset()
    if stage_of.sizes.get("evidence", 0):
        ev = stage_of.assign(stage=("evidence", np.array([names[0] if t in fw["channels"] else "" for t in
                                                          stage_of["target"].values.astype(str)])))
        tree["evidence"] = xr.DataTree(ev)
    return tree


def study_result(framework: dict, *, seed: int = 0, rows_per_channel: int = 4) -> xr.DataTree:
    """A synthetic result with a real framework's shape and texts (``framework``: the result attrs'
    framework, e.g. from ``bayescpec.engine.assemble.framework_attrs(study)``)."""
    channels, constraints = framework["channels"], framework["constraints"]
    tiers = [t for t in framework["tiers"] if framework["tier_targets"][t] == "channel"]
    ledger = [(f"{c}-{i}", c, tiers[i % len(tiers)], "signal", 1.0, np.nan, np.nan, f"src_{i}")
              for c in channels for i in range(rows_per_channel)]
    ledger += [(f"ctx-{k}", k, "context", "signal", 1.0, np.nan, np.nan, "src_ctx") for k in constraints]
    result = make_result(channels=channels, constraints=constraints, links=framework["links"], ledger=ledger,
                         seed=seed)
    stages = framework.get("stages") or {"conversion": "Conversion"}
    if len(stages) > 1:
        result = with_stages(result, stages, seed=seed)
    fw = json.loads(result.attrs["framework"])
    fw.update({k: v for k, v in framework.items() if k not in ("chains", "link_stages")})
    result.attrs["framework"] = json.dumps(fw)
    return result


def two_channel_result(seed: int = 0) -> xr.DataTree:
    result = make_result(channels=TWO_CHANNELS, constraints=TWO_CONSTRAINTS,
                         links=[["industry", "energy"], ["logistics", "security"], ["industry", "security"]],
                         ledger=[("i-1", "industry", "potential", "signal", 1.0, np.nan, np.nan, "s"),
                                 ("l-1", "logistics", "mechanism", "count", np.nan, 3.0, 8.0, "s"),
                                 ("c-1", "energy", "context", "signal", 1.0, np.nan, np.nan, "s")], seed=seed)
    return with_stages(result, TWO_STAGES, seed=seed)


def explanation_of(result: xr.DataTree, *, packages: int = 16, seed: int = 0) -> Explanation:
    """An influence ledger's waterfall per channel: prior P, ``packages`` small contributions (the sizes
    the shipped study shows: a few thousandths to a few hundredths), the joint effect, the posterior."""
    rng = np.random.default_rng(seed)
    fw = json.loads(result.attrs["framework"])
    waterfall = {}
    for channel, label in fw["channels"].items():
        shifts = rng.normal(0, 0.012, packages) * rng.choice([0.3, 1, 2], packages)
        steps = [{"step": "prior", "kind": "total", "p": 0.38, "mean": 0.41, "method": ""}]
        steps += [{"step": f"{channel}-evidence-package-{i:03d}-with-a-long-name", "kind": "package", "p": s,
                   "mean": s / 2, "method": "refit" if i == 1 else "psis"} for i, s in enumerate(shifts)]
        steps += [{"step": "joint effect and shared parameters", "kind": "remainder", "p": -0.006, "mean": -0.003,
                   "method": ""},
                  {"step": "posterior", "kind": "total", "p": 0.38 + shifts.sum() - 0.006,
                   "mean": 0.41 + shifts.sum() / 2 - 0.003, "method": ""}]
        frame = pd.DataFrame(steps)
        frame.attrs = {"channel": channel, "label": label, "threshold": 0.5}
        waterfall[channel] = frame
    return Explanation(pd.DataFrame(), pd.DataFrame(), waterfall, [], dict(result.attrs), 0.5)


def value_table_of(result: xr.DataTree, *, top: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fw = json.loads(result.attrs["framework"])
    rows = []
    for channel in fw["channels"]:
        for rank in range(1, top + 3):
            rows.append({"rank": rank, "channel": channel, "indicator": f"{channel}_indicator_with_a_long_name_{rank}",
                         "tier": ["potential", "mechanism", "outcome"][rank % 3], "test": "smoking_gun" if rank % 2 else "",
                         "kind": ["signal", "count", "measure"][rank % 3], "sd_now": 0.25,
                         "sd_reduction": float(0.08 / rank + rng.uniform(0, 0.005)),
                         "p_word_change": float(rng.uniform(0, 0.6))})
    table = pd.DataFrame(rows)
    from bayescpec.outputs.captions import provenance_caption

    table.attrs = {"caption": provenance_caption(result.attrs), "threshold": 0.5}
    return table


def robustness_of(result: xr.DataTree, *, seed: int = 0) -> Robustness:
    """Power-scaling sensitivities with the channels' θ close together (their labels would collide)."""
    rng = np.random.default_rng(seed)
    fw = json.loads(result.attrs["framework"])
    rows = [{"quantity": f"theta[{c}]", "variable": "theta", "prior_sensitivity": 0.10 + 0.004 * i,
             "likelihood_sensitivity": 0.020 + 0.001 * i} for i, c in enumerate(fw["channels"])]
    rows += [{"quantity": f"severity[{k}]", "variable": "severity", "prior_sensitivity": float(rng.uniform(0.04, 0.35)),
              "likelihood_sensitivity": float(rng.uniform(0.005, 0.09))} for k in fw["constraints"]]
    return Robustness(pd.DataFrame(), pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), dict(result.attrs))


def whatif_table_of(result: xr.DataTree, *, scenarios: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fw = json.loads(result.attrs["framework"])
    rows = []
    for s in range(scenarios):
        for channel in [*fw["channels"], "nqpf"]:
            base = float(rng.uniform(0.3, 0.5))
            change = float(rng.uniform(0.0, 0.08))
            rows.append({"scenario": f"scenario_{s}_with_a_long_id", "channel": channel, "baseline_mean": base,
                         "scenario_mean": base + change, "change_mean": change,
                         "90% ETI lower": max(0.0, base - 0.35), "90% ETI upper": min(1.0, base + 0.4),
                         "change 90% ETI lower": change - 0.03, "change 90% ETI upper": change + 0.12})
    table = pd.DataFrame(rows)
    from bayescpec.outputs.captions import provenance_caption

    table.attrs = {"caption": provenance_caption(result.attrs), "threshold": 0.5, "interval": "90% ETI"}
    return table
