"""The result store: saving a fitted result as netCDF (atomically), loading it, and checking that it was
fitted on the input files of a study.

Draws are stored as float32, and an array is compressed (gzip with byte shuffling) where that pays: every
numeric array that is not draws, and arrays of draws that are repetitive -- holding NaN (a counterfactual
quantity under the settings that do not read it) or constant at more than a quarter of their elements
(a stage outside a chain). Draws that vary at every element shrink by only about a quarter under gzip,
which took about 0.25 s of the 0.9 s a save of the shipped study's fit took: that fit is 15.9 MB stored
so, 14.7 MB with every array compressed, 29 MB with none. float32 keeps 7 significant digits, far below
the Monte Carlo error of anything reported (2 decimals; an MCSE of ~0.005); the evidence ledger, the data
gaps and the sampler's statistics keep their own types. A result held in memory keeps float64: only a
loaded one has float32 draws.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import BayescpecError, ResultMismatchError
from ..inputs.study import Study

__all__ = ["save_result", "load_result", "check_inputs", "RESULT_FILE", "READ_ERRORS", "REQUIRED_GROUPS"]

RESULT_FILE = "result.nc"
#: what reading a damaged file raises: netCDF4 an OSError, RuntimeError or (an unreadable HDF5 attribute)
#: AttributeError, xarray ValueError/KeyError
READ_ERRORS = (OSError, ValueError, RuntimeError, KeyError, AttributeError)
#: the groups every saved result has (tables, diffs and analyses read them)
REQUIRED_GROUPS = ("posterior", "prior", "evidence")
#: groups whose float64 draws are stored as float32
FLOAT32_GROUPS = ("posterior", "prior", "log_likelihood")
#: gzip level: 4 is within 1% of 9's size at two thirds of its time
COMPRESSION_LEVEL = 4
#: the netCDF library results are written and read with: Unidata's netCDF4 (libnetcdf), which writes the
#: shipped fit in 0.23 s and reads it in 0.15 s where h5netcdf took 0.61 s and 0.55-0.9 s (its per-variable
#: dimension lookups); the files are the same netCDF-4/HDF5, so results saved by either are read
ENGINE = "netcdf4"


def save_result(result: xr.DataTree, path: str | Path) -> Path:
    """Write ``result`` to netCDF atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        tree = _netcdf_safe(result)
        tree.to_netcdf(tmp, engine=ENGINE, encoding=_encoding(tree))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _encoding(tree: xr.DataTree) -> dict:
    """Per group and variable: float32 for the draws of :data:`FLOAT32_GROUPS`, gzip + shuffle for every
    numeric array of more than a few values."""
    encoding = {}
    for node in tree.subtree:
        group = node.path.strip("/")
        chosen = {}
        for name, variable in node.dataset.data_vars.items():
            options = {}
            if group in FLOAT32_GROUPS and variable.dtype == "float64" and "draw" in variable.dims:
                options["dtype"] = "float32"
            if variable.ndim and variable.size > 64 and variable.dtype.kind in "fiub" and _pays(variable):
                options.update(zlib=True, complevel=COMPRESSION_LEVEL, shuffle=True)
            if options:
                chosen[name] = options
        if chosen:
            encoding[node.path] = chosen
    return encoding


def _pays(variable: xr.DataArray) -> bool:
    """Whether gzip is worth its time on ``variable``: not draws, or repetitive draws (any NaN, or more than
    a quarter of the elements constant over the draws)."""
    if "draw" not in variable.dims or variable.dtype.kind != "f":
        return True
    values = variable.transpose("chain", "draw", ...).values
    flat = values.reshape(values.shape[0] * values.shape[1], -1)
    return bool(np.isnan(flat).any() or (np.ptp(flat, axis=0) == 0).mean() > 0.25)


def _netcdf_safe(result: xr.DataTree) -> xr.DataTree:
    """A copy whose attrs netCDF can hold: booleans as 0/1, containers as JSON text."""
    tree = result.copy()
    for node in tree.subtree:
        for key, value in list(node.attrs.items()):
            if isinstance(value, bool):
                node.attrs[key] = int(value)
            elif isinstance(value, (dict, list, tuple)):
                node.attrs[key] = json.dumps(value)
            elif value is None:
                node.attrs[key] = ""
    return tree


def load_result(path: str | Path, *, study: Study | None = None) -> xr.DataTree:
    """Load a saved result; with ``study``, check it was fitted on the same input files."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.exists():
        raise BayescpecError(f"{path}: no saved result there (expected a {RESULT_FILE} written by `bayescpec run`)")
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            result = tree.load()
    except READ_ERRORS as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise BayescpecError(f"{path}: not a readable bayescpec result ({reason}); the file is damaged or "
                             "incomplete: make it again with `bayescpec run`") from None
    for node in result.subtree:  # netCDF keeps lists as JSON text (see _netcdf_safe); ArviZ wants a list
        if isinstance(node.attrs.get("sample_dims"), str):
            try:
                node.attrs["sample_dims"] = json.loads(node.attrs["sample_dims"])
            except ValueError:
                raise BayescpecError(f"{path}: not a readable bayescpec result (attribute sample_dims of group "
                                     f"{node.path!r} is not JSON)") from None
    if "framework" not in result.attrs:
        raise BayescpecError(f"{path}: a netCDF file, but not a bayescpec result (no framework attrs)")
    missing = [group for group in REQUIRED_GROUPS if group not in result.children]
    if missing:
        raise BayescpecError(f"{path}: an incomplete bayescpec result: no {', '.join(missing)} group(s); "
                             f"a saved result has {', '.join(REQUIRED_GROUPS)}. Make it again with `bayescpec run`")
    if study is not None:
        check_inputs(result, study)
    return result


def check_inputs(result: xr.DataTree, study: Study) -> None:
    """Raise :class:`ResultMismatchError` if ``study``'s files differ from the result's inputs. The
    sources file is not compared: it is provenance (every row's source key is in the evidence log),
    so correcting a reference leaves every fit as it was."""
    saved = json.loads(result.attrs.get("input_sha256", "{}"))
    changed = [f"{role} ({study.files[role]}: saved {saved.get(role, '?')[:12]}, now {digest[:12]})"
               for role, digest in study.hashes.items() if role != "sources" and saved.get(role) != digest]
    if result.attrs.get("prior_set") != study.prior_set:
        changed.append(f"prior set (saved {result.attrs.get('prior_set')!r}, now {study.prior_set!r})")
    if changed:
        raise ResultMismatchError("the result was fitted on different inputs; changed: " + "; ".join(changed))
