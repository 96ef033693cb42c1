"""The propositions without the feedback loops: what the loop assumption does to them.

A feedback loop (Fig. 4) makes its constraints' severities move together: with standardised severities
u_k = (s_k - mu_k) / sigma_k, the loop model has u = A F + D z (F the loops' shared factors, A their
loadings rho times the member scale, D = diag(sqrt(1 - sum of a constraint's squared loadings)), z its
own innovations), so given the loadings u ~ Normal(0, A A' + D^2): the same marginals as without the
loop, standard normal, but correlated. The loop loadings are not learned from the shipped evidence
(posterior sd = prior sd), so how much the propositions depend on them is an assumption to report.

**How.** The model without the loops differs from the fitted one only in the prior of the severities:
every other prior term (the stage prior of eta given s and the loadings, the loadings, diagnosticities,
units) and the likelihood are the same functions of the same quantities. So the posterior without the
loops is the fitted posterior reweighted by

    r(s) = p_without(s) / p_with(s) = prod_k phi(u_k) / E_rho[ Normal(u; 0, A A' + D^2) ]

(the Jacobian of u cancels), the expectation over the loop loadings' prior, by Monte Carlo over the
result's own prior draws of them, each Normal density in closed form (Woodbury: a diagonal plus a
rank-L matrix), so the shared factors are integrated exactly. The weights are Pareto-smoothed once with
any update's ratio (:mod:`.draws`), k-hat checked; each proposition's query is evaluated draw by draw
(:func:`~bayescpec.inputs.query.evaluate_query`, the same as the propositions table) and its probability
is the weighted share of draws where it holds.

Not used: setting each draw's shared-factor term to zero. That is not the posterior without the loop --
it moves every draw's severities away from what the context evidence pinned and shrinks their spread
(D z alone has variance 1 - sum rho^2) -- so it would confound the loop's correlation with a change of
the severities themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine.structure import Structure
from ..engine.counterfactual import stored_counterfactual
from ..inputs.query import QUANTITY_DIMS, evaluate_proposition
from ..outputs.summary import ipcc_likelihood, word_change_is_real
from .base import analysis_attrs
from .draws import Draws, weighted_mcse

__all__ = ["loop_free_log_ratio", "propositions_without_loops"]


def _loop_matrices(structure: Structure, loop_loading: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each draw of the loop loadings (M, members): the loop constraints' positions (K',), A (M, K', L)
    and D^2 (M, K')."""
    s = structure
    members = np.unique(s.member_constraint)
    position = {k: i for i, k in enumerate(members)}
    rho = loop_loading * s.member_scale                                   # (M, members)
    a = np.zeros((rho.shape[0], len(members), len(s.loops)))
    for m, (k, loop) in enumerate(zip(s.member_constraint, s.member_loop)):
        a[:, position[k], loop] += rho[:, m]
    return members, a, 1.0 - np.sum(a**2, axis=2)


def loop_free_log_ratio(structure: Structure, severity: np.ndarray, loop_loading: np.ndarray) -> np.ndarray:
    """log p_without(s) - log p_with(s) at each draw of the severities (S, K), the loop loadings' prior
    represented by its draws ``loop_loading`` (M, members) (see the module's doc)."""
    if not len(structure.loop_members):
        return np.zeros(severity.shape[0])
    members, a, d2 = _loop_matrices(structure, np.asarray(loop_loading, dtype=float))
    u = ((severity - structure.severity_mean) / structure.severity_sd)[:, members]       # (S, K')
    # Woodbury: (D^2 + A A')^-1 = D^-2 - D^-2 A C^-1 A' D^-2, C = I + A' D^-2 A; det = det(D^2) det(C)
    scaled = a / d2[:, :, None]                                                          # D^-2 A (M, K', L)
    c = np.eye(a.shape[2])[None] + np.einsum("mkl,mkj->mlj", a, scaled)
    c_inv = np.linalg.inv(c)
    log_det = np.log(d2).sum(axis=1) + np.linalg.slogdet(c)[1]                           # (M,)
    log_with = np.empty(len(u))
    for rows in np.array_split(np.arange(len(u)), max(1, len(u) // 256)):   # (256, M) at a time: bounded memory
        part = u[rows]
        quad = (part**2) @ (1.0 / d2).T                                                  # (S', M)
        b = np.einsum("sk,mkl->sml", part, scaled)                                       # (S', M, L)
        quad -= np.einsum("sml,mlj,smj->sm", b, c_inv, b)
        terms = -0.5 * (log_det[None, :] + quad)                                         # log N(u; 0, Sigma_m)
        top = terms.max(axis=1)
        log_with[rows] = top + np.log(np.exp(terms - top[:, None]).mean(axis=1))
    log_without = -0.5 * np.sum(u**2, axis=1)            # the same -K'/2 log 2 pi on both sides: left out
    return log_without - log_with


def propositions_without_loops(current: Draws, structure: Structure, framework: dict, *,
                               threshold: float) -> pd.DataFrame:
    """Each proposition's posterior probability with the feedback loops (the fit) and without them
    (reweighted, see the module's doc), with Monte Carlo standard errors and the reweighting's k-hat;
    empty when the framework has no loops."""
    columns = ["proposition", "statement", "query", "p_with_loops", "mcse_with", "likelihood_with", "p_without_loops",
               "mcse_without", "likelihood_without", "change", "khat", "ess", "method", "word_changes"]
    if not len(structure.loop_members) or not framework.get("propositions"):
        frame = pd.DataFrame(columns=columns)
    else:
        ratio = loop_free_log_ratio(structure, current.flat("severity"), current.flat("loop_loading", "prior"))
        rw = current.reweight(ratio)
        post = current.tree["posterior"].to_dataset()
        quantities = {name: post[name] for name in QUANTITY_DIMS if name in post}
        delta = float(framework.get("materiality", 0.05))
        lookup = stored_counterfactual(post)  # a draw's counterfactual values do not change with its weight
        records = []
        for prop in framework["propositions"]:
            holds, condition = evaluate_proposition(
                prop["query"], quantities, tau=threshold, delta=delta, counterfactual=lookup,
                levels=list(framework.get("levels", {})), constraints=list(framework.get("constraints", {})))
            values = holds.transpose("chain", "draw").values.reshape(-1).astype(float)
            given = condition.transpose("chain", "draw").values.reshape(-1).astype(float)
            # P(B | A) = E[H] / E[C] (C = 1 without a condition): the ratio estimate under each weighting
            p_with = float(current.mean(values)) / max(float(current.mean(given)), 1e-300)
            p_without = float(rw.weights @ values) / max(float(rw.weights @ given), 1e-300)
            values = (values - p_with * given) / max(float(current.mean(given)), 1e-300) + p_with  # for the MCSE
            records.append({
                "proposition": prop["id"], "statement": prop.get("statement", ""), "query": prop["query"],
                "p_with_loops": p_with, "mcse_with": float(current.mcse(values[:, None])[0]),
                "likelihood_with": ipcc_likelihood(min(max(p_with, 0.0), 1.0)),
                "p_without_loops": p_without,
                "mcse_without": float(weighted_mcse(rw.weights, values[:, None], current.chains)[0]),
                "likelihood_without": ipcc_likelihood(min(max(p_without, 0.0), 1.0)),
                "change": p_without - p_with, "khat": rw.khat, "ess": rw.ess,
                "method": "psis" if rw.reliable else "psis (unreliable)"})
        frame = pd.DataFrame(records, columns=columns)
        # a change of word only when the two probabilities differ by more than 2 MCSE of the difference
        frame["word_changes"] = [word_change_is_real(a, ma, b, mb) for a, ma, b, mb in
                                 zip(frame["p_with_loops"], frame["mcse_with"], frame["p_without_loops"],
                                     frame["mcse_without"])]
    frame.attrs = analysis_attrs(current.tree, f"Propositions with and without the feedback loops (τ = {threshold:g})",
                                 threshold=threshold, loops=list(structure.loops))
    return frame
