"""Synthetic results for the report and figure tests: complete DataTrees built without sampling.

The latent quantities are made the way a one-stage chain makes them -- ``theta = sigmoid(eta)``,
``base_theta = sigmoid(eta + sum_k loading_ck * severity_k)`` and each link's reduction
``sigmoid(eta + loading_ck * severity_k) - theta`` -- so the tables' arithmetic can be checked against
an independent numpy computation.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import xarray as xr

TIERS = ["context", "potential", "mechanism", "outcome"]
TIER_TARGETS = {"context": "constraint", "potential": "channel", "mechanism": "channel", "outcome": "channel"}
CHANNELS = {"sez": "SEZ-led upgrading", "digital": "Digital connectivity", "green": "Green transition"}
CONSTRAINTS = {"security": "Security risk", "energy_debt": "Energy debt"}
LINKS = [["sez", "security"], ["green", "energy_debt"], ["sez", "energy_debt"]]
#: a label with every character LaTeX, Markdown and HTML treat specially
NASTY_LABEL = r"R&D 100% $5 #1 a_b {x} ~y ^z \q <b>bold</b> | θ ≥ τ – “quoted” café"
#: (evidence id, target, tier, kind, value, k, n, source) of the synthetic ledger, in file order
LEDGER = [
    ("pot-sez-1", "sez", "potential", "signal", 1.0, np.nan, np.nan, "src_a"),
    ("mech-sez-1", "sez", "mechanism", "count", np.nan, 3.0, 10.0, "src_b"),
    ("ctx-sec-1", "security", "context", "signal", 1.0, np.nan, np.nan, "src_c"),
    ("pot-sez-2", "sez", "potential", "signal", 0.0, np.nan, np.nan, "src_a"),
    ("out-green-1", "green", "outcome", "measure", 0.4, np.nan, np.nan, "src_d"),
    ("pot-digital-1", "digital", "potential", "signal", 1.0, np.nan, np.nan, "src_e"),
    ("ctx-energy-1", "energy_debt", "context", "signal", 1.0, np.nan, np.nan, "src_f"),
]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    return np.log(p) - np.log1p(-p)


def latent_group(rng, chains: int, draws: int, channels, constraints, links, *, base_a: float, base_b: float,
                 severity_mean: float) -> xr.Dataset:
    shape_c = (chains, draws, len(channels))
    base = rng.beta(base_a, base_b, size=shape_c).clip(1e-6, 1 - 1e-6)
    severity = rng.normal(severity_mean, 1.0, size=(chains, draws, len(constraints)))
    loading = np.abs(rng.normal(0.0, 0.6, size=(chains, draws, len(links))))
    pull = np.zeros((chains, draws, len(links)))
    effect = np.zeros(shape_c)
    channel_index = {c: i for i, c in enumerate(channels)}
    constraint_index = {k: i for i, k in enumerate(constraints)}
    for j, (c, k) in enumerate(links):
        pull[..., j] = loading[..., j] * severity[..., constraint_index[k]]
        effect[..., channel_index[c]] += pull[..., j]
    eta = _logit(base) - effect
    theta = _sigmoid(eta)
    reduction = np.stack([_sigmoid(eta[..., channel_index[c]] + pull[..., j]) - theta[..., channel_index[c]]
                          for j, (c, _) in enumerate(links)], axis=-1) if links else np.zeros((chains, draws, 0))
    interruption = np.zeros((chains, draws, len(constraints)))
    for k, name in enumerate(constraints):
        mine = [j for j, (_, kk) in enumerate(links) if kk == name]
        if mine:
            interruption[..., k] = reduction[..., mine].max(axis=-1)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "channel": list(channels),
              "constraint": list(constraints), "link": [f"{c}|{k}" for c, k in links], "stage": ["conversion"],
              "chain_stage": [f"{c}|conversion" for c in channels], "unit": [], "dimension": []}
    return xr.Dataset({
        "stage_logit": (("chain", "draw", "chain_stage"), eta),
        "base_theta": (("chain", "draw", "channel"), base),
        "theta": (("chain", "draw", "channel"), theta),
        "reach": (("chain", "draw", "channel", "stage"), theta[..., None]),
        "stage_probability": (("chain", "draw", "channel", "stage"), theta[..., None]),
        "severity": (("chain", "draw", "constraint"), severity),
        "loading": (("chain", "draw", "link"), loading),
        "constraint_effect": (("chain", "draw", "channel"), base - theta),
        "link_reduction": (("chain", "draw", "link"), reduction),
        "interruption": (("chain", "draw", "constraint"), interruption),
        "unit_theta": (("chain", "draw", "unit"), np.zeros((chains, draws, 0))),
        "nqpf_dimension": (("chain", "draw", "dimension"), np.zeros((chains, draws, 0))),
        "nqpf": (("chain", "draw"), theta.mean(axis=-1)),
    }, coords=coords)


def make_result(
    *,
    channels: dict | None = None,
    constraints: dict | None = None,
    links: list | None = None,
    ledger: list | None = None,
    chains: int = 2,
    draws: int = 200,
    seed: int = 0,
    prior_set: str = "synthetic",
    posterior_base: tuple[float, float] = (2.0, 5.0),
    prior_base: tuple[float, float] = (2.0, 2.0),
    converged: bool = True,
    with_loglik: bool = True,
    evidence_hash: str = "ab" * 32,
) -> xr.DataTree:
    """A complete synthetic result: posterior, prior (one chain), log_likelihood, evidence ledger, attrs."""
    rng = np.random.default_rng(seed)
    channels = dict(CHANNELS if channels is None else channels)
    constraints = dict(CONSTRAINTS if constraints is None else constraints)
    links = [list(link) for link in (LINKS if links is None else links)]
    ledger = LEDGER if ledger is None else ledger
    posterior = latent_group(rng, chains, draws, channels, constraints, links, base_a=posterior_base[0],
                             base_b=posterior_base[1], severity_mean=0.5)
    prior = latent_group(rng, 1, chains * draws, channels, constraints, links, base_a=prior_base[0],
                         base_b=prior_base[1], severity_mean=0.0)
    ids = [row[0] for row in ledger]
    evidence = xr.Dataset({
        "observed": ("evidence", np.array(["2025-01-0%d" % (1 + i % 9) for i in range(len(ledger))])),
        "target": ("evidence", np.array([r[1] for r in ledger], dtype=str)),
        "stage": ("evidence", np.array(["conversion" if r[1] in channels else "" for r in ledger], dtype=str)),
        "unit": ("evidence", np.array([""] * len(ledger), dtype=str)),
        "indicator": ("evidence", np.array([f"ind_{r[1]}" for r in ledger], dtype=str)),
        "tier": ("evidence", np.array([r[2] for r in ledger], dtype=str)),
        "kind": ("evidence", np.array([r[3] for r in ledger], dtype=str)),
        "value": ("evidence", np.array([r[4] for r in ledger], dtype=float)),
        "k": ("evidence", np.array([r[5] for r in ledger], dtype=float)),
        "n": ("evidence", np.array([r[6] for r in ledger], dtype=float)),
        "test": ("evidence", np.array(["hoop" if i % 3 == 0 else "" for i in range(len(ledger))], dtype=str)),
        "reliability": ("evidence", np.linspace(0.6, 1.0, len(ledger))),
        "package": ("evidence", np.array([""] * len(ledger), dtype=str)),
        "source": ("evidence", np.array([r[7] for r in ledger], dtype=str)),
        "note": ("evidence", np.array([f"note {i}, with a comma" for i in range(len(ledger))], dtype=str)),
        "weight": ("evidence", np.ones(len(ledger))),
    }, coords={"evidence": np.array(ids, dtype=str)})
    gaps = xr.Dataset({name: ("gap", np.array([], dtype=str)) for name in
                       ("observed", "target", "stage", "unit", "indicator", "tier", "source", "note")},
                      coords={"gap": np.array([], dtype=str)})
    groups = {"posterior": posterior, "prior": prior, "evidence": evidence, "gaps": gaps,
              "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))},
                                         coords={"chain": np.arange(chains), "draw": np.arange(draws)})}
    if with_loglik:
        groups["log_likelihood"] = xr.Dataset(
            {"rows": (("chain", "draw", "evidence"), -rng.gamma(2.0, 0.3, size=(chains, draws, len(ledger))))},
            coords={"chain": np.arange(chains), "draw": np.arange(draws), "evidence": np.array(ids, dtype=str)})
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {
        "bayescpec_version": "0.0.test",
        "prior_set": prior_set,
        "input_files": json.dumps({"framework": "fw.toml", "priors": f"{prior_set}.toml", "evidence": "ev.csv",
                                   "sources": "sources.csv"}),
        "input_sha256": json.dumps({"framework": "f0" * 32, "priors": hashlib.sha256(prior_set.encode()).hexdigest(),
                                    "evidence": evidence_hash, "sources": "5c" * 32}),
        "as_of": "2026-01-31",
        "evidence_rows": len(ledger),
        "seed": 4242,
        "draws": draws,
        "tune": draws,
        "chains": chains,
        "sampler": "synthetic",
        "framework": json.dumps({
            "channels": channels, "constraints": constraints, "links": links, "tiers": TIERS,
            "tier_targets": TIER_TARGETS, "stages": {"conversion": "Conversion (a one-stage chain)"},
            "chains": {c: ["conversion"] for c in channels},
            "link_stages": {f"{c}|{k}": "conversion" for c, k in links}, "loops": {}, "dimensions": {},
            "units": [], "materiality": 0.05,
            "propositions": [
                {"id": "P1", "statement": "SEZ converts", "query": f"theta[{next(iter(channels))}] > tau"},
                {"id": "P2", "statement": "every channel converts", "query": "all(theta > tau)"},
            ] + ([{"id": "P3", "statement": "a constraint interrupts", "reading": "a reading",
                   "query": f"interruption[{next(iter(constraints))}] > delta"}] if constraints else []),
            "name": "synthetic framework",
        }),
        "max_rhat": 1.003 if converged else 1.2,
        "min_ess_bulk": 1234.0 if converged else 35.0,
        "divergences": 0 if converged else 7,
        "converged": int(converged),
        "convergence_failures": "" if converged else "max R-hat 1.200 > 1.01",
    }
    return tree


#: a proposition as the lead's rewrite makes them: a statement in parts, a long reading, a long query
LONG_PROPOSITION = {
    "id": "P1long",
    "statement": ("Part (a): the corridor's special economic zones convert infrastructure into productive capacity "
                  "only if supplier linkages, skills and reliable energy arrive together, within the horizon of "
                  "the plan. Part (b): digital connectivity raises the quality of development only under stable "
                  "regulation and trusted data governance. Part (c): no single constraint -- security, energy-"
                  "sector debt, weak coordination, limited SME finance or local exclusion -- interrupts conversion "
                  "on its own once (a) and (b) hold; together they can reduce the corridor to a portfolio of "
                  "underembedded projects, which is what the evidence would show if (a) or (b) fails."),
    "reading": ("Reads part (a) as theta of the first channel above tau together with the constraint-free theta of "
                "the third; part (b) as the second channel above tau; part (c) as an implication: when both hold, "
                "neither constraint interrupts by more than the materiality delta. Refuted by draws in which (a) "
                "and (b) hold and a constraint still interrupts; supported by draws in which (a) or (b) fails and "
                "the constraints bind. A_very_long_identifier_without_any_space_in_it_at_all_for_the_line_breaker."),
    "query": ("interruption[security] <= delta and interruption[energy_debt] <= delta and "
              "count(theta[sez, digital, green] > tau) >= 1 and mean(constraint_effect[sez, digital, green]) > 0 - delta "
              "given theta[sez] > tau and base_theta[green] > tau and theta[digital] > tau"),
}
#: a channel label as long as a framework file may write one
LONG_LABEL = ("SEZ-led industrial upgrading through anchor firms, supplier linkages, skills formation and export "
              "capacity in the corridor's special economic zones")


def long_text_result(**kwargs) -> xr.DataTree:
    """:func:`make_result` with a very long channel label and constraint label, and the propositions
    replaced by long ones in parts (:data:`LONG_PROPOSITION` and two variants)."""
    result = make_result(channels={**CHANNELS, "sez": LONG_LABEL},
                         constraints={**CONSTRAINTS, "security": "Security risk to personnel, sites and transport "
                                                                 "routes, as recorded by the corridor's security reports"},
                         **kwargs)
    fw = json.loads(result.attrs["framework"])
    fw["propositions"] = [
        LONG_PROPOSITION,
        {**LONG_PROPOSITION, "id": "P2long", "statement": LONG_PROPOSITION["statement"][:300]},
        {"id": "P3", "statement": "Short.", "query": "theta[sez] > tau", "reading": ""},
    ]
    result.attrs["framework"] = json.dumps(fw)
    return result
