"""Tables and the figure of a simulation-based calibration: pure functions of its rank rows.

``ranks`` is the long table of :class:`bayescpec.workflow.calibrate.CalibrationRun` -- one row per
(simulation, parameter) with ``parameter``, ``variable``, ``rank`` (0..``rank_draws``), ``inside_50``
and ``inside_90``.

Uniformity of each parameter's ranks is tested two ways that share no code: Pearson's chi-square
over equal-width rank bins (scipy), and the ECDF-PIT test of ArviZ (``pot_c``, Säilynoja et al.
2022) on the randomised PIT ``(rank + U) / (rank_draws + 1)``. Interval coverage is the share of
simulations whose central 50% / 90% interval held the truth, with its binomial standard error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["calibration_table", "calibration_pit", "plot_calibration", "calibration_verdict", "rank_bins"]

#: a parameter is flagged when a uniformity p-value is below this, after Bonferroni over parameters
FAMILY_ALPHA = 0.01


def rank_bins(simulations: int, rank_draws: int) -> int:
    """Bins of the chi-square test: at most 10, at least 5 expected simulations per bin, and a divisor
    of the rank_draws + 1 possible ranks where one exists (so every bin holds as many ranks)."""
    ceiling = max(2, min(10, simulations // 5))
    for bins in range(ceiling, 1, -1):
        if (rank_draws + 1) % bins == 0:
            return bins
    return ceiling


def calibration_pit(ranks: pd.DataFrame, rank_draws: int, *, seed: int = 0) -> pd.DataFrame:
    """The randomised PIT of every rank, uniform on (0, 1) exactly when the ranks are uniform."""
    rng = np.random.default_rng(seed)
    out = ranks[["simulation", "parameter", "variable"]].copy()
    out["pit"] = (ranks["rank"].to_numpy(float) + rng.random(len(ranks))) / (rank_draws + 1)
    return out


def _pot_c(pit: np.ndarray) -> float:
    from arviz_stats.base.array import array_stats

    return float(array_stats.uniformity_test(np.asarray(pit, float), axis=-1, method="pot_c")[0])


def calibration_table(ranks: pd.DataFrame, *, rank_draws: int) -> pd.DataFrame:
    """One row per parameter: simulations, the chi-square statistic and p-value of rank uniformity,
    the ECDF-PIT (pot_c) p-value, the 50% and 90% interval coverage with standard errors, and
    ``flagged`` (a p-value below 0.01 / number of parameters)."""
    rows = []
    pit = calibration_pit(ranks, rank_draws)
    params = list(dict.fromkeys(ranks["parameter"]))
    for parameter in params:
        sub = ranks[ranks["parameter"] == parameter]
        n = len(sub)
        bins = rank_bins(n, rank_draws)
        edges = np.linspace(0, rank_draws + 1, bins + 1)
        counts = np.histogram(sub["rank"].to_numpy(float), bins=edges)[0]
        expected = n * np.diff(edges) / (rank_draws + 1)
        chi2, p_chi2 = stats.chisquare(counts, expected)
        p_pit = _pot_c(pit.loc[pit["parameter"] == parameter, "pit"].to_numpy())
        cover50, cover90 = sub["inside_50"].mean(), sub["inside_90"].mean()
        rows.append({
            "parameter": parameter, "simulations": n, "bins": bins, "chi_square": float(chi2),
            "p_value_chi_square": float(p_chi2), "p_value_ecdf_pit": p_pit,
            "coverage_50": float(cover50), "coverage_50_se": float(np.sqrt(0.25 / n)),
            "coverage_90": float(cover90), "coverage_90_se": float(np.sqrt(0.09 / n)),
        })
    table = pd.DataFrame(rows)
    if len(table):
        threshold = FAMILY_ALPHA / len(table)
        table["flagged"] = (table["p_value_chi_square"] < threshold) | (table["p_value_ecdf_pit"] < threshold)
    return table


#: below this many simulations the verdict says it cannot judge (rank tests have little power)
FEW_SIMULATIONS = 50


def calibration_verdict(table: pd.DataFrame) -> str:
    """One sentence: calibrated or not, by the Bonferroni rule of :func:`calibration_table`."""
    n = len(table)
    if not n:
        return "no parameters were ranked"
    flagged = table.loc[table["flagged"], "parameter"].tolist()
    smallest = float(np.minimum(table["p_value_chi_square"], table["p_value_ecdf_pit"]).min())
    cover50, cover90 = table["coverage_50"].mean(), table["coverage_90"].mean()
    head = (f"{n} parameters over {int(table['simulations'].max())} simulations; mean coverage of the 50% "
            f"intervals {cover50:.1%}, of the 90% intervals {cover90:.1%}; smallest uniformity p-value "
            f"{smallest:.3g} (flag below {FAMILY_ALPHA / n:.2g} = {FAMILY_ALPHA}/{n})")
    simulations = int(table["simulations"].max())
    if flagged:
        return f"NOT calibrated: ranks non-uniform for {', '.join(flagged)}. {head}"
    if simulations < FEW_SIMULATIONS:
        return (f"Too few simulations to judge ({simulations}; at least {FEW_SIMULATIONS} are needed for the "
                f"uniformity tests to see a moderate miscalibration, 200 are usual). {head}")
    return f"No sign of miscalibration. {head}"


def plot_calibration(ranks: pd.DataFrame, *, rank_draws: int, band_probability: float = 0.95, columns: int = 4,
                     band_simulations: int = 2000, seed: int = 0):
    """Δ-ECDF of the randomised PIT of every variable's ranks (all its parameters pooled per panel's
    lines), with a simultaneous ``band_probability`` band for one line of uniform PITs (simulated).
    A line that leaves the band shows non-uniform ranks: above the diagonal = truths too often low in
    the posterior (posterior too high), a hump = posteriors too wide, a U = too narrow."""
    import matplotlib.pyplot as plt

    pit = calibration_pit(ranks, rank_draws, seed=seed)
    variables = list(dict.fromkeys(pit["variable"]))
    rows = max(1, -(-len(variables) // columns))
    fig, axes = plt.subplots(rows, min(columns, len(variables)) or 1, figsize=(3.4 * min(columns, len(variables)),
                             2.8 * rows), squeeze=False, constrained_layout=True)
    grid = np.linspace(0, 1, 101)
    for ax, variable in zip(axes.flat, variables):
        sub = pit[pit["variable"] == variable]
        n = int(sub.groupby("parameter").size().max())
        lower, upper = _simultaneous_band(n, grid, band_probability, band_simulations, seed)
        ax.fill_between(grid, lower, upper, color="0.85", lw=0, label=f"{band_probability:.0%} band")
        for parameter, values in sub.groupby("parameter", sort=False)["pit"]:
            ecdf = np.searchsorted(np.sort(values.to_numpy()), grid, side="right") / len(values)
            ax.plot(grid, ecdf - grid, lw=1, label=parameter.split("[", 1)[-1].rstrip("]"))
        ax.axhline(0, color="0.4", lw=0.6)
        ax.set_title(variable, fontsize=9)
        ax.set_xlabel("PIT of the truth", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False, loc="best", ncol=2)
    for ax in list(axes.flat)[len(variables):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("ECDF − uniform CDF", fontsize=8)
    fig.suptitle(f"Simulation-based calibration: {n} simulations, ranks among {rank_draws} draws", fontsize=10)
    return fig


def _simultaneous_band(n: int, grid: np.ndarray, probability: float, simulations: int, seed: int):
    """Pointwise binomial quantiles at the level (found by simulation) at which ``probability`` of
    uniform ECDFs of ``n`` values stay inside at every grid point."""
    rng = np.random.default_rng(seed)
    samples = np.sort(rng.random((simulations, n)), axis=1)
    counts = np.stack([np.searchsorted(s, grid, side="right") for s in samples])
    # each simulated ECDF's most extreme pointwise tail probability
    cdf_low = stats.binom.cdf(counts, n, grid)
    cdf_high = stats.binom.sf(counts - 1, n, grid)
    extreme = np.minimum(cdf_low, cdf_high).min(axis=1)
    gamma = np.quantile(extreme, 1 - probability)
    lower = stats.binom.ppf(gamma, n, grid) / n - grid
    upper = stats.binom.isf(gamma, n, grid) / n - grid
    return lower, upper
