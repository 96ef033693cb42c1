"""Synthetic result objects, built without sampling, for table tests."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

CHANNELS = {"a": "Channel A", "b": "Channel B"}
CONSTRAINTS = {"k": "Constraint K"}
LINKS = [["a", "k"]]


def synthetic_result(theta_post: np.ndarray, theta_prior: np.ndarray, *, severity_post=None, severity_prior=None,
                     propositions=None) -> xr.DataTree:
    """``theta_*`` have shape (chain, draw, 2); severities (chain, draw, 1)."""
    rng = np.random.default_rng(0)

    def group(theta, severity):
        chains, draws, _ = theta.shape
        severity = severity if severity is not None else rng.normal(size=(chains, draws, 1))
        loading = np.abs(rng.normal(size=(chains, draws, 1)))
        pull = loading * severity
        eta = np.log(theta / (1 - theta))
        base = 1 / (1 + np.exp(-(eta + np.concatenate([pull, np.zeros((chains, draws, 1))], axis=-1))))
        reduction = 1 / (1 + np.exp(-(eta[..., :1] + pull))) - theta[..., :1]
        coords = {"chain": np.arange(chains), "draw": np.arange(draws), "channel": list(CHANNELS),
                  "constraint": list(CONSTRAINTS), "link": ["a|k"], "stage": ["conversion"]}
        return xr.Dataset({
            "theta": (("chain", "draw", "channel"), theta),
            "reach": (("chain", "draw", "channel", "stage"), theta[..., None]),
            "base_theta": (("chain", "draw", "channel"), base),
            "severity": (("chain", "draw", "constraint"), severity),
            "loading": (("chain", "draw", "link"), loading),
            "constraint_effect": (("chain", "draw", "channel"), base - theta),
            "link_reduction": (("chain", "draw", "link"), reduction),
            "interruption": (("chain", "draw", "constraint"), reduction),
            "nqpf": (("chain", "draw"), theta.mean(axis=-1)),
        }, coords=coords)

    ledger = xr.Dataset({
        "target": ("evidence", np.array(["a", "a", "b", "k"])),
        "tier": ("evidence", np.array(["potential", "outcome", "potential", "context"])),
        "source": ("evidence", np.array(["s"] * 4)),
    }, coords={"evidence": ["e1", "e2", "e3", "e4"]})
    tree = xr.DataTree.from_dict({
        "posterior": group(theta_post, severity_post),
        "prior": group(theta_prior, severity_prior),
        "evidence": ledger,
    })
    tree.attrs = {
        "framework": json.dumps({
            "channels": CHANNELS, "constraints": CONSTRAINTS, "links": LINKS, "materiality": 0.05,
            "stages": {"conversion": "Conversion"}, "chains": {c: ["conversion"] for c in CHANNELS},
            "tiers": ["context", "potential", "mechanism", "outcome"],
            "tier_targets": {"context": "constraint", "potential": "channel", "mechanism": "channel",
                             "outcome": "channel"},
            "propositions": propositions or [
                {"id": "P1", "statement": "a converts", "query": "theta[a] > tau"},
                {"id": "P2", "statement": "both convert", "query": "all(theta > tau)"},
            ],
            "name": "synthetic",
        }),
        "prior_set": "synthetic", "seed": 1, "draws": theta_post.shape[1], "chains": theta_post.shape[0],
        "max_rhat": 1.0, "min_ess_bulk": 1000.0, "divergences": 0, "converged": 1,
        "input_sha256": json.dumps({"evidence": "ab" * 32}), "as_of": "2026-01-01",
        "bayescpec_version": "test", "sampler": "none", "evidence_rows": 4,
    }
    return tree
