"""The result store: saving a fitted result as netCDF (atomically), loading it, and checking that it was
fitted on the input files of a study."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import xarray as xr

from ..errors import BayescpecError, ResultMismatchError
from ..inputs.study import Study

__all__ = ["save_result", "load_result", "check_inputs", "RESULT_FILE", "READ_ERRORS", "REQUIRED_GROUPS"]

RESULT_FILE = "result.nc"
#: what reading a damaged file raises: h5py a RuntimeError on a bad checksum, xarray OSError/ValueError/KeyError
READ_ERRORS = (OSError, ValueError, RuntimeError, KeyError)
#: the groups every saved result has (tables, diffs and analyses read them)
REQUIRED_GROUPS = ("posterior", "prior", "evidence")


def save_result(result: xr.DataTree, path: str | Path) -> Path:
    """Write ``result`` to netCDF atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        _netcdf_safe(result).to_netcdf(tmp, engine="h5netcdf")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


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
        with xr.open_datatree(path, engine="h5netcdf") as tree:
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
    """Raise :class:`ResultMismatchError` if ``study``'s files differ from the result's inputs."""
    saved = json.loads(result.attrs.get("input_sha256", "{}"))
    changed = [f"{role} ({study.files[role]}: saved {saved.get(role, '?')[:12]}, now {digest[:12]})"
               for role, digest in study.hashes.items() if saved.get(role) != digest]
    if result.attrs.get("prior_set") != study.prior_set:
        changed.append(f"prior set (saved {result.attrs.get('prior_set')!r}, now {study.prior_set!r})")
    if changed:
        raise ResultMismatchError("the result was fitted on different inputs; changed: " + "; ".join(changed))
