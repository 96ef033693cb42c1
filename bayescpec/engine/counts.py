"""Count rows (k of n units) as counts: per-unit rates that belong to the *indicator*, and overdispersion.

A count row of indicator i about a target whose reach (or, for a constraint, sigmoid(severity)) is pi:

    p   = f_i + pi (s_i - f_i)                          the expected share of units showing the indicator
    k   ~ BetaBinomial(n, p phi_i, (1 - p) phi_i),      phi_i = 1 / rho_i - 1

* f_i (``rate_not_converting``) and s_i (``rate_converting``) are the indicator's per-unit rates when the
  chain does not / does reach the indicator's stage. The catalogue's ``rate_not_converting`` and
  ``rate_converting`` are their prior *means*: f_i ~ Beta(mean = catalogue f, concentration kappa) and
  s_i = f_i + (1 - f_i) g_i with g_i ~ Beta(mean = (s - f) / (1 - f), concentration kappa), so s_i > f_i
  (more units show it when the chain converts) and E[s_i] is the catalogue's value exactly. kappa is the
  prior set's ``[counts] rate_concentration``. They are parameters of the indicator alone: a count
  row never touches the tier's (or a test type's) clue diagnosticity.
* rho_i (``count_icc``) is the intra-class correlation of the units of one row: the row's own rate r is
  drawn around p, r ~ Beta(p phi, (1 - p) phi), and its n units are binomial at r. Units of one zone,
  survey or register share conditions the model does not see, so a count of 1 200 workers is not 1 200
  independent clues. As n grows the row reveals its own r and no more: its likelihood tends to the
  Beta(p phi, (1 - p) phi) density at k / n, so one row is strong but *bounded* evidence about pi.
  rho_i ~ Beta (the prior set's ``[counts] overdispersion``), one per indicator: units of different
  indicators (plots, firms, workers, households) are heterogeneous in different ways, and a shared
  rho would let one indicator's rows re-read every other's.

The indicators with a count kind in the framework's catalogue, in catalogue order, form the dimension
``count_indicator`` (whether or not the log has count rows for them: ``next`` and the fast path read
new count rows against their draws). Rows are tempered as before: weight 1 / package size times the
row's reliability.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from ..inputs.spec import Framework, PriorSet

__all__ = ["COUNT_DIM", "COUNT_FREE_DIMS", "COUNT_DIMS", "COUNT_VARIABLES", "CountStructure", "count_structure",
           "count_indicator_ids", "beta_binomial_logpmf", "count_probability", "draw_count_prior"]

COUNT_DIM = "count_indicator"
#: sampled parameters of the count indicators (dims after the sample axis)
COUNT_FREE_DIMS: dict[str, tuple[str, ...]] = {"rate_not_converting": (COUNT_DIM,), "rate_gap": (COUNT_DIM,),
                                               "count_icc": (COUNT_DIM,)}
#: every count variable of a result: the sampled ones and the derived rate_converting = f + (1 - f) g
COUNT_DIMS: dict[str, tuple[str, ...]] = {**COUNT_FREE_DIMS, "rate_converting": (COUNT_DIM,)}
#: what a count row's likelihood reads from the draws
COUNT_VARIABLES = ("rate_converting", "rate_not_converting", "count_icc")


def count_indicator_ids(framework: Framework) -> list[str]:
    """The catalogue's indicators that may be observed as a count, in catalogue order."""
    return [i.id for i in framework.indicators if "count" in i.kinds]


@dataclass(frozen=True)
class CountStructure:
    """The count indicators and the Beta priors of their rates and intra-class correlations."""

    indicators: list[str] = field(default_factory=list)
    rate_converting: np.ndarray = field(default_factory=lambda: np.zeros(0))       # catalogue means
    rate_not_converting: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fpr_prior: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)))        # Beta (a, b) of f_i
    gap_prior: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)))        # Beta (a, b) of g_i
    icc_prior: np.ndarray = field(default_factory=lambda: np.ones(2))              # Beta (a, b) of rho_i

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.indicators)}


def count_structure(framework: Framework, priors: PriorSet) -> CountStructure:
    """The count indicators of ``framework`` with the priors ``priors`` gives their rates and overdispersion.
    A framework without count indicators (or a prior set without ``[counts]``, which the loader refuses
    for a framework that has them) gives an empty structure."""
    ids = count_indicator_ids(framework)
    if not ids or priors.counts is None:
        return CountStructure()
    catalogue = {i.id: i for i in framework.indicators}
    s = np.array([catalogue[i].rate_converting for i in ids], dtype=float)
    f = np.array([catalogue[i].rate_not_converting for i in ids], dtype=float)
    kappa = float(priors.counts.rate_concentration)
    gap = (s - f) / (1.0 - f)
    icc = priors.counts.overdispersion
    return CountStructure(ids, s, f, np.array([f * kappa, (1.0 - f) * kappa]),
                          np.array([gap * kappa, (1.0 - gap) * kappa]), np.array([icc.alpha, icc.beta]))


def count_probability(pi: np.ndarray, rate_converting: np.ndarray, rate_not_converting: np.ndarray) -> np.ndarray:
    """The expected share of units showing the indicator, f + pi (s - f)."""
    return rate_not_converting + pi * (rate_converting - rate_not_converting)


def beta_binomial_logpmf(k, n, p, icc) -> np.ndarray:
    """log BetaBinomial(k | n, p phi, (1 - p) phi) with phi = 1 / icc - 1 (numpy, broadcasting)."""
    k, n, p, icc = (np.asarray(x, dtype=float) for x in (k, n, p, icc))
    phi = 1.0 / icc - 1.0
    a, b = p * phi, (1.0 - p) * phi
    return (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
            + gammaln(k + a) + gammaln(n - k + b) - gammaln(n + phi)
            - gammaln(a) - gammaln(b) + gammaln(phi))


def draw_count_prior(counts: CountStructure, rng: np.random.Generator, draws: int) -> dict[str, np.ndarray]:
    """``draws`` prior draws of every count indicator's rates and intra-class correlation."""
    if not counts.indicators:
        return {}
    size = (int(draws), len(counts.indicators))
    f = rng.beta(counts.fpr_prior[0], counts.fpr_prior[1], size=size)
    g = rng.beta(counts.gap_prior[0], counts.gap_prior[1], size=size)
    icc = rng.beta(counts.icc_prior[0], counts.icc_prior[1], size=size)
    return {"rate_not_converting": f, "rate_gap": g, "rate_converting": f + (1.0 - f) * g, "count_icc": icc}
