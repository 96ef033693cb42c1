"""The convergence gate: every check a published number depends on, over every sampled parameter.

* R-hat (rank-normalised, split) <= 1.01 and bulk ESS >= 400 -- for every *sampled* parameter
  (stage logits, loadings, severities' innovations and loop factors, diagnosticities, unit effects,
  count indicators' rates and overdispersion),
  not only the reported quantities, and for the reported quantities too;
* tail ESS >= 400: the interval ends (5% and 95% quantiles) depend on it;
* no divergent transitions;
* at most 1% of transitions stopped at the maximum tree depth (the sampler's trajectories were cut
  short: it explored the posterior less than its ESS suggests);
* E-BFMI >= 0.3 in every chain (an energy distribution the momentum resampling cannot move through
  means the sampler may miss the tails).

``check_convergence`` returns the figures, the failures in words, and which parameter was worst. The
statistics are ArviZ's definitions, computed over every element at once (:mod:`.mcmcstats`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import mcmcstats

__all__ = ["CONVERGENCE_RULES", "SAMPLED", "REPORTED", "check_convergence", "gate_sentence"]

#: thresholds of the gate (Vehtari et al. 2021 for R-hat and ESS; Betancourt 2016 for E-BFMI)
CONVERGENCE_RULES = {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0,
                     "max_treedepth_share": 0.01, "min_bfmi": 0.3}
#: the parameters the sampler moves (names as in the posterior group), and the quantities tables report
SAMPLED = ("stage_logit", "loading", "loading_common", "route_probability", "severity_z", "loop_factor", "loop_loading", "unit_sd", "unit_z",
           "false_positive_tier", "sensitivity_gap_tier", "false_positive_test", "sensitivity_gap_test",
           "rate_not_converting", "rate_gap", "count_icc", "base_stage_probability")
REPORTED = ("theta", "base_theta", "reach", "severity", "constraint_effect")
#: the sample-stats name of "this transition hit the maximum tree depth", per sampler
_TREEDEPTH = ("reached_max_treedepth", "maxdepth_reached")


def gate_sentence() -> str:
    r = CONVERGENCE_RULES
    return (f"R-hat ≤ {r['max_rhat']}, bulk and tail ESS ≥ {r['min_ess_bulk']} (every sampled parameter), "
            f"no divergences, ≤ {r['max_treedepth_share']:.0%} at maximum tree depth, E-BFMI ≥ {r['min_bfmi']}")


def _varying(ds: xr.Dataset, names) -> list[str]:
    """Variables of ``names`` in ``ds`` that vary across draws (a constant has no R-hat)."""
    return [n for n in names if n in ds and ds[n].size and float(ds[n].std()) > 0]


def _stacked(ds: xr.Dataset, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Every element of every named variable as one (chain, draw, element) array, with its label."""
    arrays, labels = [], []
    for name in names:
        var = ds[name].transpose("chain", "draw", ...)
        values = var.values.reshape(var.shape[0], var.shape[1], -1)
        arrays.append(values)
        extra = var.dims[2:]
        if not extra:
            labels.append(name)
            continue
        grids = np.meshgrid(*[np.asarray(var[d].values if d in var.coords else np.arange(var.sizes[d]))
                              for d in extra], indexing="ij")
        labels += [f"{name}[" + ", ".join(str(g.ravel()[i]) for g in grids) + "]" for i in range(values.shape[2])]
    return np.concatenate(arrays, axis=2), labels


def _worst(values: np.ndarray, labels: list[str], *, largest: bool) -> tuple[float, str]:
    finite = np.where(np.isfinite(values), values, -np.inf if largest else np.inf)
    if not values.size or not np.isfinite(finite).any():
        return np.nan, ""
    index = int(np.argmax(finite) if largest else np.argmin(finite))
    return float(values[index]), labels[index]


#: elements per block of the gate's statistics (a block of 4 x 1000 draws is 1 MB of float64)
_CHUNK = 32


def check_convergence(result: xr.DataTree) -> dict:
    """Every figure of the gate, the failures in words and whether the result passes."""
    posterior = result["posterior"].to_dataset()
    names = _varying(posterior, SAMPLED + REPORTED)
    chains = posterior.sizes.get("chain", 1)
    stats = result["sample_stats"].to_dataset() if "sample_stats" in result.children else xr.Dataset()
    out: dict = {}
    if names:
        # one vectorised call per statistic over every element of every variable (chain, draw last)
        values, labels = _stacked(posterior, names)
        ary = np.moveaxis(values, (0, 1), (-2, -1))
        varies = np.std(ary, axis=(-2, -1)) > 0  # a constant element (e.g. a stage outside a chain) has no R-hat
        flat = ary.reshape(-1, *ary.shape[-2:])[varies.ravel()]  # (varying elements, chain, draw)
        found = [], [], []
        for start in range(0, len(flat), _CHUNK):  # small blocks: their temporaries reuse freed memory
            block = flat[start:start + _CHUNK]
            for out_list, values in zip(found, (*mcmcstats.rhat_and_ess_bulk(block),
                                                mcmcstats.ess_tail(block, prob=(0.05, 0.95)))):
                out_list.append(values)
        rhat, bulk, tail = (np.full(len(labels), np.nan) for _ in range(3))
        for target, parts in zip((rhat, bulk, tail), found):
            if parts:
                target[varies.ravel()] = np.concatenate(parts)
        values_rhat = rhat if chains > 1 else np.full(len(labels), np.nan)
        out["max_rhat"], out["max_rhat_at"] = _worst(values_rhat, labels, largest=True)
        out["min_ess_bulk"], out["min_ess_bulk_at"] = _worst(bulk, labels, largest=False)
        out["min_ess_tail"], out["min_ess_tail_at"] = _worst(tail, labels, largest=False)
    else:
        out.update(max_rhat=np.nan, max_rhat_at="", min_ess_bulk=np.nan, min_ess_bulk_at="",
                   min_ess_tail=np.nan, min_ess_tail_at="")
    diverging = stats.get("diverging")
    out["divergences"] = int(diverging.sum()) if diverging is not None else 0
    depth = next((stats[n] for n in _TREEDEPTH if n in stats), None)
    out["treedepth_share"] = float(depth.astype(float).mean()) if depth is not None else 0.0
    if "energy" in stats and stats["energy"].sizes.get("draw", 0) > 2:
        out["min_bfmi"] = float(np.min(mcmcstats.bfmi(stats["energy"].transpose("chain", "draw").values)))
    else:
        out["min_bfmi"] = np.nan
    rules, failures = CONVERGENCE_RULES, []
    if chains < 2:
        failures.append("R-hat needs at least 2 chains; this fit has 1")
    elif not out["max_rhat"] <= rules["max_rhat"]:
        failures.append(f"max R-hat {out['max_rhat']:.3f} > {rules['max_rhat']} ({out['max_rhat_at']})")
    if not out["min_ess_bulk"] >= rules["min_ess_bulk"]:
        failures.append(f"min bulk ESS {out['min_ess_bulk']:.0f} < {rules['min_ess_bulk']} ({out['min_ess_bulk_at']})")
    if not out["min_ess_tail"] >= rules["min_ess_tail"]:
        failures.append(f"min tail ESS {out['min_ess_tail']:.0f} < {rules['min_ess_tail']} ({out['min_ess_tail_at']})")
    if out["divergences"] > rules["max_divergences"]:
        failures.append(f"{out['divergences']} divergent transitions")
    if out["treedepth_share"] > rules["max_treedepth_share"]:
        failures.append(f"{out['treedepth_share']:.1%} of transitions at the maximum tree depth "
                        f"(> {rules['max_treedepth_share']:.0%})")
    if np.isfinite(out["min_bfmi"]) and out["min_bfmi"] < rules["min_bfmi"]:
        failures.append(f"E-BFMI {out['min_bfmi']:.2f} < {rules['min_bfmi']} in a chain")
    out["converged"] = not failures
    out["convergence_failures"] = "; ".join(failures)
    return out
