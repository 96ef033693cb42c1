"""The vintage store: every distinct fit of an evidence log, kept side by side and never overwritten.

A vintage is a saved result in ``<root>/<as-of date>-<fit key[:10]>[-<prior set>]/result.nc`` (the
prior set is added to the name only when it is not ``baseline``). The fit key (:func:`fit_key`) is
the SHA-256 of everything that distinguishes one fit from another: the evidence rows actually used
(their content), the framework and prior-set files, the prior set, draws, tune, chains, seed,
sampler, target_accept, how it was made (a fit, or a reweighting of which earlier evidence) and the
bayescpec version. So two fits with other settings never share a name, and fitting the same
evidence with the same settings again -- on another day, with another as-of date but the same rows
-- finds the vintage already saved (:func:`find_vintage`) instead of storing a second copy.

Folders written before the fit key existed (``<as-of>-<evidence sha256[:12]>``) are still listed,
loaded and compared; they are just never reused. Saving never replaces an existing folder.

:func:`history` lists the vintages with their headline P(converting) per channel and whether each
passed its convergence checks; :func:`diff` tabulates what changed between two of them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayescpecError
from .store import ENGINE, READ_ERRORS, REQUIRED_GROUPS, RESULT_FILE, load_result, save_result

__all__ = ["DEFAULT_ROOT", "Vintage", "ResultDiff", "fit_key", "planned_fit_keys", "find_planned_fit", "vintage_name",
           "save_vintage", "find_vintage", "list_vintages", "load_vintage", "find_previous", "newest_on_inputs",
           "history", "diff"]

DEFAULT_ROOT = Path("results") / "vintages"


def _hashes(result: xr.DataTree) -> dict:
    return json.loads(result.attrs.get("input_sha256", "{}"))


#: the result attrs that distinguish one fit of the same evidence rows from another
KEY_ATTRS = ("prior_set", "draws", "tune", "chains", "seed", "sampler", "target_accept", "bayescpec_version")


def _ledger_digest(ledger: xr.Dataset | None) -> str:
    """SHA-256 of an evidence ledger: ids and every field, in order."""
    digest = hashlib.sha256()
    if ledger is None:
        return digest.hexdigest()
    digest.update(json.dumps([str(i) for i in ledger["evidence"].values]).encode())
    for name in sorted(ledger.data_vars):
        values = ledger[name].values
        if values.dtype.kind == "f":
            items = [None if math.isnan(v) else repr(float(v)) for v in values]
        else:
            items = [str(v) for v in values]
        digest.update(name.encode() + json.dumps(items).encode())
    return digest.hexdigest()


def _rows_digest(result: xr.DataTree) -> str:
    """SHA-256 of the evidence rows a result used: ids and every ledger field, in order."""
    return _ledger_digest(result["evidence"].to_dataset() if "evidence" in result.children else None)


def _key(attrs: dict, hashes: dict, made: str, rows: str) -> str:
    parts = {name: str(attrs.get(name, "")) for name in KEY_ATTRS}
    parts.update(framework=hashes.get("framework", ""), priors=hashes.get("priors", ""), made=made, rows=rows)
    if json.loads(attrs.get("prior_statements") or "[]"):  # what the statements were solved into (PreliZ's
        parts["prior_statements"] = attrs["prior_statements"]  # optimiser may differ between its versions)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def fit_key(result: xr.DataTree) -> str:
    """SHA-256 (hex) of what distinguishes this fit: the evidence rows used, the framework and prior
    files, the prior set, the sampler settings, how it was made and the package version. The sources
    file is not part of it: sources are provenance (each row's source key is in the rows), not model
    input, so correcting a reference changes no fit."""
    attrs = result.attrs
    made = "psis from " + str(attrs.get("psis_base_sha256", "")) if attrs.get("update_method") == "psis" else "fit"
    return _key(attrs, _hashes(result), made, _rows_digest(result))


def planned_fit_keys(study, *, draws: int, tune: int, chains: int, seed: int, sampler: str = "auto",
                     target_accept: float = 0.9) -> tuple[str, str]:
    """The fit keys :func:`bayescpec.fit` of ``study`` with these settings will get, known before
    sampling: (at ``target_accept``, after the automatic re-run at the higher target_accept that
    divergences trigger). ``sampler="auto"`` is resolved as ``fit`` resolves it now."""
    from .. import __version__
    from ..engine.aggregate import evidence_data
    from ..engine.assemble import evidence_ledger
    from ..engine.compiled import choose_backend
    from ..engine.sampling import RETRY_TARGET_ACCEPT

    rows = _ledger_digest(evidence_ledger(study, evidence_data(study)))
    attrs = {"prior_set": study.prior_set, "draws": draws, "tune": tune, "chains": chains, "seed": seed,
             "sampler": choose_backend(sampler), "target_accept": target_accept, "bayescpec_version": __version__,
             "prior_statements": json.dumps(study.priors.statements())}
    return (_key(attrs, study.hashes, "fit", rows),
            _key({**attrs, "target_accept": RETRY_TARGET_ACCEPT}, study.hashes, "fit", rows))


def find_planned_fit(study, *, root: str | Path = DEFAULT_ROOT, **settings) -> Path | None:
    """The saved vintage that already holds the fit ``fit(study, **settings)`` would make (same rows,
    files and settings; also one re-run after divergences, which the same seed repeats), so that it is
    reused without sampling. ``settings``: draws, tune, chains, seed, sampler, target_accept."""
    from ..engine.sampling import RETRY_TARGET_ACCEPT

    key, retried = planned_fit_keys(study, **settings)
    for vintage in reversed(list_vintages(root)):
        saved = vintage.attrs.get("fit_key")
        if saved == key or (saved == retried and vintage.attrs.get("divergence_retry")
                            and settings.get("target_accept", 0.9) < RETRY_TARGET_ACCEPT):
            return vintage.path
    return None


def vintage_name(result: xr.DataTree) -> str:
    """``<as-of>-<fit key[:10]>``, plus ``-<prior set>`` when it is not ``baseline``."""
    name = f"{result.attrs['as_of']}-{fit_key(result)[:10]}"
    prior = result.attrs.get("prior_set", "baseline")
    return name if prior == "baseline" else f"{name}-{prior}"


def find_vintage(result: xr.DataTree, *, root: str | Path = DEFAULT_ROOT) -> Path | None:
    """The saved vintage holding the same fit as ``result`` (same :func:`fit_key`), if any."""
    key = fit_key(result)
    for vintage in list_vintages(root):
        if vintage.attrs.get("fit_key") == key:
            return vintage.path
    return None


def save_vintage(result: xr.DataTree, *, root: str | Path = DEFAULT_ROOT, reuse: bool = True) -> Path:
    """Save ``result`` as a new vintage folder under ``root``; never overwrites. Returns the folder.

    With ``reuse`` (the default), a vintage holding the same fit (:func:`find_vintage`) is returned
    instead and nothing is written. The folder is written under a temporary name and renamed into
    place, so a vintage folder is either complete or absent.
    """
    root = Path(root)
    if reuse:
        existing = find_vintage(result, root=root)
        if existing is not None:
            result.attrs["vintage"] = existing.name
            return existing
    root.mkdir(parents=True, exist_ok=True)
    base = vintage_name(result)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        for attempt in range(1, 1000):
            name = base if attempt == 1 else f"{base}-{attempt}"
            target = root / name
            if target.exists():
                continue
            result.attrs["vintage"] = name
            result.attrs["fit_key"] = fit_key(result)
            save_result(result, staging / RESULT_FILE)
            try:
                os.rename(staging, target)  # fails if another process made a non-empty `target`
            except OSError:
                if target.exists():
                    continue
                raise
            return target
        raise BayescpecError(f"{root}: too many vintages named {base}")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class Vintage:
    name: str
    path: Path
    attrs: dict
    problem: str = ""  # why its result cannot be read ("" when it can)

    @property
    def evidence_sha256(self) -> str:
        return json.loads(self.attrs.get("input_sha256", "{}")).get("evidence", "")


def _read_attrs(path: Path) -> dict:
    """The result's attrs (lazily: no arrays are read); ValueError when it lacks a result's groups."""
    with xr.open_datatree(path, engine=ENGINE) as tree:
        missing = [group for group in REQUIRED_GROUPS if group not in tree.children]
        if missing:
            raise ValueError(f"an incomplete bayescpec result: no {', '.join(missing)} group(s)")
        return dict(tree.attrs)


def _problem(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def list_vintages(root: str | Path = DEFAULT_ROOT, *, unreadable: bool = False) -> list[Vintage]:
    """Every readable vintage under ``root``, oldest first (by creation time). With ``unreadable``,
    also the damaged ones (a truncated or corrupted ``result.nc``), each with its ``problem`` and
    no attrs, first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        file = folder / RESULT_FILE
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        if not file.is_file():  # a folder without its result (a save never finished: saves are atomic)
            if unreadable and not any(folder.iterdir()):
                continue
            problem = f"no {RESULT_FILE} in it"
        else:
            try:
                found.append(Vintage(folder.name, folder, _read_attrs(file)))
                continue
            except READ_ERRORS as exc:
                problem = _problem(exc)
        if unreadable:
            found.append(Vintage(folder.name, folder, {}, problem))
    return sorted(found, key=lambda v: (str(v.attrs.get("created", "")), v.name))


def _resolve(ref: str | Path, root: Path) -> Path:
    path = Path(ref)
    if path.exists():
        return path
    every = list_vintages(root, unreadable=True)  # one scan: each file is opened once
    vintages = [v for v in every if not v.problem]
    damaged = [v for v in every if v.problem]
    also = f" ({len(damaged)} cannot be read: {', '.join(v.name for v in damaged)}; see `bayescpec history`)" \
        if damaged else ""
    if str(ref) in ("latest", "previous"):
        index = -1 if str(ref) == "latest" else -2
        if len(vintages) < -index:
            raise BayescpecError(f"{root}: only {len(vintages)} readable vintage(s){also}; there is no {ref!s} one")
        return vintages[index].path
    if not every:
        raise BayescpecError(f"no vintages under {root}, and no file or folder {ref}")
    exact = [v for v in every if v.name == str(ref)]
    matches = exact or [v for v in every if v.name.startswith(str(ref)) or v.evidence_sha256.startswith(str(ref))]
    if len(matches) == 1 and matches[0].problem:
        v = matches[0]
        raise BayescpecError(f"vintage {v.name} under {root} cannot be read ({v.problem}): its file is damaged. "
                             f"Remove the folder {v.path} (or restore it from a backup); `bayescpec run` or "
                             "`bayescpec update` make new vintages")
    if len(matches) == 1:
        return matches[0].path
    names = ", ".join(v.name for v in vintages)
    if not matches:
        raise BayescpecError(f"no vintage {ref!s} under {root}; there are: {names or 'none readable'}{also}")
    raise BayescpecError(f"{ref!s} matches several vintages ({', '.join(v.name for v in matches)}); be more specific")


def load_vintage(ref: str | Path | xr.DataTree, *, root: str | Path = DEFAULT_ROOT) -> xr.DataTree:
    """A vintage by folder or file path, by name, by a unique prefix of its name or evidence hash,
    or ``latest`` / ``previous``. A DataTree is returned as is."""
    if isinstance(ref, xr.DataTree):
        return ref
    return load_result(_resolve(ref, Path(root)))


#: the input files whose content a fit depends on (the sources file is provenance: see :func:`fit_key`)
MODEL_INPUTS = ("evidence", "framework", "priors")


def find_previous(root: str | Path, study, evidence_sha256: str, *, working: str | Path | None = None) -> Path | None:
    """The newest vintage fitted on the log with hash ``evidence_sha256`` and ``study``'s framework
    and prior set, if any (the sources file may differ: it is provenance, not model input). When
    that vintage is itself a PSIS reweighting, the sampled vintage it was reweighted from is
    returned instead (reweighting resampled draws again would compound their duplication).
    ``<root>/../result.nc`` (what ``bayescpec run`` writes) and ``<working>/result.nc`` are
    candidates too."""
    root = Path(root)
    candidates = [(v.path, v.attrs) for v in reversed(list_vintages(root))]
    for folder in dict.fromkeys([root.parent] + ([Path(working)] if working is not None else [])):
        run_result = folder / RESULT_FILE
        if run_result.is_file():
            try:
                candidates.append((run_result, _read_attrs(run_result)))
            except READ_ERRORS:
                pass

    def same_inputs(attrs: dict) -> bool:
        saved = json.loads(attrs.get("input_sha256", "{}"))
        return (attrs.get("prior_set") == study.prior_set
                and all(saved.get(role) == study.hashes.get(role) for role in ("framework", "priors")))

    for path, attrs in candidates:
        saved = json.loads(attrs.get("input_sha256", "{}"))
        if saved.get("evidence") != evidence_sha256 or not same_inputs(attrs):
            continue
        if attrs.get("update_method") == "psis":
            base = attrs.get("psis_base_sha256", "")
            for other, other_attrs in candidates:
                if (other_attrs.get("update_method") != "psis" and same_inputs(other_attrs)
                        and json.loads(other_attrs.get("input_sha256", "{}")).get("evidence") == base):
                    return other
            continue
        return path
    return None


def newest_on_inputs(root: str | Path, hashes: dict, prior_set: str) -> Vintage | None:
    """The newest readable vintage under ``root`` fitted on input files with these SHA-256
    ``hashes`` (evidence, framework, priors) and this prior set: what a result whose inputs changed
    since should be replaced by."""
    for vintage in reversed(list_vintages(root)):
        saved = json.loads(vintage.attrs.get("input_sha256", "{}"))
        if vintage.attrs.get("prior_set") == prior_set and all(
                saved.get(role) == hashes.get(role) for role in MODEL_INPUTS if hashes.get(role)):
            return vintage
    return None


def history(root: str | Path = DEFAULT_ROOT, *, threshold: float = 0.5) -> pd.DataFrame:
    """One row per vintage (oldest first): name, as-of date, evidence hash, prior set, rows, how it
    was made (fit / refit / psis and k-hat), sampler settings, whether it passed its convergence
    checks (``converged``, ``convergence_failures``) and P(theta > threshold) per channel
    (``p_<channel>``). A vintage whose file cannot be read is listed too (first), with method
    ``unreadable`` and the reason in ``convergence_failures``."""
    from ..outputs.summary import conversion_probability

    rows = []
    channels: list[str] = []
    for vintage in list_vintages(root, unreadable=True):
        problem = vintage.problem
        if not problem:
            try:
                result = load_result(vintage.path)
            except BayescpecError as exc:
                problem = str(exc).removeprefix(f"{vintage.path / RESULT_FILE}: ")
        if problem:  # listed, not skipped: a damaged vintage must not vanish from the history
            rows.append({"vintage": vintage.name, "as_of": "", "evidence_sha256": "", "prior_set": "", "rows": 0,
                         "method": "unreadable", "pareto_khat": np.nan, "draws": None, "chains": None, "seed": None,
                         "converged": False, "convergence_failures": f"cannot be read: {problem}", "created": ""})
            continue
        attrs = result.attrs
        p = conversion_probability(result, threshold=threshold)
        row = {
            "vintage": vintage.name,
            "as_of": attrs.get("as_of"),
            "evidence_sha256": vintage.evidence_sha256[:12],
            "prior_set": attrs.get("prior_set"),
            "rows": int(attrs.get("evidence_rows", 0)),
            "method": attrs.get("update_method") or "fit",
            "pareto_khat": float(attrs.get("pareto_khat", np.nan)) if attrs.get("pareto_khat", "") != "" else np.nan,
            "draws": attrs.get("draws"),
            "chains": attrs.get("chains"),
            "seed": attrs.get("seed"),
            "converged": bool(attrs.get("converged")),
            "convergence_failures": str(attrs.get("convergence_failures", "")),
            "created": attrs.get("created"),
        }
        row.update({f"p_{channel}": float(value) for channel, value in zip(p["channel"].values, p.values)})
        channels += [str(c) for c in p["channel"].values if str(c) not in channels]
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table = table[[c for c in table.columns if not c.startswith("p_")] + [f"p_{c}" for c in channels]]
    table.attrs = {"title": f"Vintages under {root}; p_<channel> = P(theta > {threshold:g})",
                   "threshold": threshold}
    return table


@dataclass(frozen=True)
class ResultDiff:
    """What changed from result A to result B.

    ``table``: one row per channel and per proposition -- posterior mean, interval and
    P(converting) (a proposition's posterior probability) in A and B, their changes, the IPCC
    terms and whether the term changed. ``added``/``removed``: ledger rows in B not in A and in A
    not in B; ``changed``: ids in both whose content differs.
    """

    table: pd.DataFrame
    added: pd.DataFrame
    removed: pd.DataFrame
    changed: pd.DataFrame
    a: str
    b: str

    @property
    def word_changes(self) -> pd.DataFrame:
        return self.table[self.table["word_changed"]]


def _ledger_frame(result: xr.DataTree) -> pd.DataFrame:
    ds = result["evidence"].to_dataset()
    frame = ds.to_dataframe().reset_index().rename(columns={"evidence": "id"})
    return frame.drop(columns=["weight"], errors="ignore")


def _label(result: xr.DataTree, fallback: str) -> str:
    return str(result.attrs.get("vintage") or fallback)


def diff(
    a: str | Path | xr.DataTree,
    b: str | Path | xr.DataTree,
    *,
    root: str | Path = DEFAULT_ROOT,
    threshold: float = 0.5,
    ci_kind: str = "eti",
    ci_prob: float = 0.90,
) -> ResultDiff:
    """Tabulate the change from result ``a`` to result ``b`` (DataTrees, paths or vintage names)."""
    from ..outputs.summary import channel_table, interval_label, proposition_table, word_change_is_real

    ra, rb = load_vintage(a, root=root), load_vintage(b, root=root)
    label = interval_label(ci_kind, ci_prob)
    ca = channel_table(ra, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob).set_index("channel")
    cb = channel_table(rb, threshold=threshold, ci_kind=ci_kind, ci_prob=ci_prob).set_index("channel")
    channels = [c for c in cb.index if c in ca.index]
    rows = []
    for c in channels:
        x, y = ca.loc[c], cb.loc[c]
        rows.append({
            "kind": "channel", "name": c,
            "mean_a": x["posterior_mean"], "mean_b": y["posterior_mean"],
            "mean_change": y["posterior_mean"] - x["posterior_mean"],
            "lower_a": x[f"{label} lower"], "upper_a": x[f"{label} upper"],
            "lower_b": y[f"{label} lower"], "upper_b": y[f"{label} upper"],
            "width_change": (y[f"{label} upper"] - y[f"{label} lower"]) - (x[f"{label} upper"] - x[f"{label} lower"]),
            "p_a": x["p_converting"], "p_b": y["p_converting"], "p_change": y["p_converting"] - x["p_converting"],
            "likelihood_a": x["likelihood"], "likelihood_b": y["likelihood"],
            "mcse_a": x.get("p_converting_mcse", np.nan), "mcse_b": y.get("p_converting_mcse", np.nan),
        })
    pa = proposition_table(ra, threshold=threshold).set_index("proposition")
    pb = proposition_table(rb, threshold=threshold).set_index("proposition")
    for p in [p for p in pb.index if p in pa.index]:
        x, y = pa.loc[p], pb.loc[p]
        rows.append({
            "kind": "proposition", "name": p,
            "p_a": x["posterior_probability"], "p_b": y["posterior_probability"],
            "p_change": y["posterior_probability"] - x["posterior_probability"],
            "likelihood_a": x["likelihood"], "likelihood_b": y["likelihood"],
            "mcse_a": x.get("posterior_probability_mcse", np.nan), "mcse_b": y.get("posterior_probability_mcse", np.nan),
        })
    columns = ["kind", "name", "mean_a", "mean_b", "mean_change", "lower_a", "upper_a", "lower_b", "upper_b",
               "width_change", "p_a", "p_b", "p_change", "likelihood_a", "likelihood_b", "mcse_a", "mcse_b"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    # a change of IPCC word counts only when Monte Carlo noise does not explain it
    differs = table["likelihood_a"] != table["likelihood_b"]
    table["word_changed"] = [word_change_is_real(pa, ma, pb, mb) for pa, ma, pb, mb in
                             zip(table["p_a"], table["mcse_a"], table["p_b"], table["mcse_b"])]
    table["word_within_noise"] = differs & ~table["word_changed"]
    name_a, name_b = _label(ra, str(a) if not isinstance(a, xr.DataTree) else "A"), \
        _label(rb, str(b) if not isinstance(b, xr.DataTree) else "B")
    table.attrs = {"title": f"Change from {name_a} to {name_b}: posterior mean, {label}, "
                            f"P(converting) = P(theta > {threshold:g}) / proposition probability",
                   "interval": label, "threshold": threshold}
    la, lb = _ledger_frame(ra), _ledger_frame(rb)
    added = lb[~lb["id"].isin(la["id"])].reset_index(drop=True)
    removed = la[~la["id"].isin(lb["id"])].reset_index(drop=True)
    both = la.merge(lb, on="id", suffixes=("_a", "_b"))
    fields = [c for c in la.columns if c != "id" and c in lb.columns]
    differs = np.zeros(len(both), dtype=bool)
    for f in fields:
        x, y = both[f"{f}_a"], both[f"{f}_b"]
        differs |= ~((x == y) | (pd.isna(x) & pd.isna(y))).to_numpy()
    changed = both[differs].reset_index(drop=True)
    return ResultDiff(table, added, removed, changed, name_a, name_b)
