"""The C-callable wrappers nutpie calls, generated from a model's layout, and Numba's on-disk cache of them.

Each wrapper reads the model's data from a block of addresses and shapes (see
:class:`bayescpec.engine.native.BoundData`), calls PyTensor's Numba function of the graph (``inner``) and
returns nutpie's codes: 0 success, positive a recoverable failure (a non-finite value or gradient, an
exception inside the graph: the sampler treats the point as outside the posterior), negative an
unrecoverable one (a size that does not match the compiled layout). The generated source has no file
of its own, so a cache locator files its compiled code under the model's fingerprint.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "KINDS", "cfuncs", "sources"]

#: bump when the generated wrappers or the metadata change shape (the source hashes cover the rest)
FORMAT = 1
KINDS = ("logp", "expand", "init")


def _reads(layout: dict, kind: str) -> tuple[str, int, str]:
    """Source lines reading ``kind``'s data from the block, the block's length, the argument tuple."""
    lines, cursor, names = [], 0, []
    wanted = set(layout["uses"][kind])
    for i, (name, dtype, ndim) in enumerate(layout["data"]):
        if name in wanted:
            shape = "".join(f"block[{cursor + 1 + j}], " for j in range(ndim))
            lines.append(f"d{i} = numba.carray(as_pointer(block[{cursor}]), ({shape}), np.{dtype})")
            names.append(f"d{i}")
        cursor += 1 + ndim
    # calls of more than ~30 arguments compile to bytecode Numba cannot read: a tuple built in parts
    parts = [names[i:i + 16] for i in range(0, len(names), 16)]
    data = " + ".join("(" + "".join(f"{n}, " for n in part) + ")" for part in parts) or "()"
    return "\n        ".join(lines), cursor, data


def sources(layout: dict, tag: str) -> dict[str, str]:
    n, n_expanded = layout["n_dim"], sum(int(np.prod(s, dtype=int)) for _, s, _ in layout["variables"])
    out = {}
    reads, size, data = _reads(layout, "logp")
    out["logp"] = f"""
def logp_{tag}(dim, x_, gradient_, logp_, block_):
    if dim != {n}:
        return -1
    try:
        block = numba.carray(block_, ({size},), np.int64)
        {reads}
        args = (numba.carray(x_, ({n},)),) + {data}
        value, gradient = inner(*args)
        if gradient.shape[0] != {n}:
            return -2
        numba.carray(logp_, (1,))[0] = value
        numba.carray(gradient_, ({n},))[:] = gradient
        if not np.all(np.isfinite(gradient)):
            return 3
        if not np.isfinite(value):
            return 4
    except Exception:
        return 1
    return 0
"""
    reads, size, data = _reads(layout, "expand")
    out["expand"] = f"""
def expand_{tag}(dim, expanded, x_, out_, block_):
    if dim != {n} or expanded != {n_expanded}:
        return -1
    try:
        block = numba.carray(block_, ({size},), np.int64)
        {reads}
        args = (numba.carray(x_, ({n},)),) + {data}
        (values,) = inner(*args)
        if values.shape[0] != {n_expanded}:
            return -2
        numba.carray(out_, ({n_expanded},))[:] = values
    except Exception:
        return -3
    return 0
"""
    reads, size, data = _reads(layout, "init")
    out["init"] = f"""
def init_{tag}(block_, out_, n):
    if n != {n}:
        return -1
    try:
        block = numba.carray(block_, ({size},), np.int64)
        {reads}
        args = {data}
        (values,) = inner(*args)
        if values.shape[0] != {n}:
            return -2
        numba.carray(out_, ({n},))[:] = values
    except Exception:
        return -3
    return 0
"""
    return out


_NUMBA: dict = {}


def _numba():
    """Numba, the pointer intrinsic and the cache locator, set up once per process."""
    if _NUMBA:
        return _NUMBA
    import numba
    from numba.core import cgutils, types
    from numba.core.caching import CacheImpl, _CacheLocator
    from numba.extending import intrinsic

    @intrinsic
    def as_pointer(typingctx, address):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)

        return types.voidptr(address), codegen

    class Locator(_CacheLocator):
        """Numba's cache of one generated wrapper: in :func:`cache_dir`, named by the model's
        fingerprint (the generated source has no file of its own)."""

        def __init__(self, folder: Path, key: str):
            self._folder, self._key = folder, key

        def ensure_cache_path(self):
            self._folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self._folder).close()  # writable, or Numba caches nothing

        def get_cache_path(self):
            return str(self._folder)

        def get_source_stamp(self):
            return FORMAT

        def get_disambiguator(self):
            return self._key

        @classmethod
        def from_function(cls, py_func, py_file):
            found = _NUMBA["registry"].get(py_func)
            return None if found is None else cls(*found)

    CacheImpl._locator_classes.insert(0, Locator)
    double = types.CPointer(types.double)
    _NUMBA.update(numba=numba, as_pointer=as_pointer, registry={}, signatures={
        "logp": types.int64(types.uint64, double, double, double, types.voidptr),
        "expand": types.int64(types.uint64, types.uint64, double, double, types.voidptr),
        "init": types.int64(types.voidptr, double, types.int64),
    })
    return _NUMBA


def _not_compiled(*args):  # the callee of a wrapper that is only loaded, never compiled
    raise RuntimeError("not compiled")


def cfuncs(layout: dict, key: str, folder: Path, inners: dict | None) -> dict | None:
    """The three wrappers: loaded from Numba's cache (``inners`` None: None when any is missing) or
    compiled around ``inners`` (PyTensor's Numba functions) and saved."""
    nb = _numba()
    numba = nb["numba"]
    generated, out = sources(layout, key[:16]), {}
    for kind in KINDS:
        env = {"__name__": __name__, "numba": numba, "np": np, "as_pointer": nb["as_pointer"],
               "inner": inners[kind] if inners else _not_compiled}
        exec(compile(generated[kind], f"bayescpec_{kind}_{key[:16]}", "exec"), env)
        function = env[f"{kind}_{key[:16]}"]
        nb["registry"][function] = (folder, f"{key}-{kind}")
        if inners is None:  # load only: anything short of a readable cache entry is a miss
            try:
                out[kind] = numba.cfunc(nb["signatures"][kind], cache=True)(function)
            except Exception:  # noqa: BLE001 - not in the cache (typing the placeholder fails), or damaged
                return None
            continue
        try:
            out[kind] = numba.cfunc(nb["signatures"][kind], cache=True)(function)
        except OSError:  # the cache folder cannot be written: compile for this process only
            out[kind] = numba.cfunc(nb["signatures"][kind])(function)
    return out
