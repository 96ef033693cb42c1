"""The model's log density as native code that survives the process.

nutpie's NUTS (Rust) calls three C functions of the model: the log density with its gradient at an
unconstrained point, the *expansion* of a draw into the model's variables (constrained parameters and
deterministics), and (here) the initial point. This module makes them from whatever PyMC model
:func:`bayescpec.engine.model.build_model` returns and keeps them on disk, so that a fresh process
loads them in a fraction of a second instead of compiling them again (about 30 s):

* **Data as arguments.** Every shared variable of the model -- the ``pm.Data`` containers holding the
  evidence and the prior set's hyper-parameters, and the lengths of its dimensions -- becomes an
  explicit input of the PyTensor graphs, which PyTensor compiles with Numba. A small generated wrapper
  with a C signature reads the inputs from a block of pointers and shapes (``data_block``) and calls the
  compiled graph. No data value is baked into the code, so one compiled form serves every evidence log
  and prior set of a framework.
* **Cached by what the code depends on.** The wrappers (which contain the compiled graphs) go into
  Numba's on-disk cache under a *fingerprint* of the model: a hash of its whole graph -- every operation,
  constant, variable type, transform and dimension length, but no data value -- with the versions of
  Python, NumPy, Numba, PyTensor and PyMC, the Numba settings and this module's source. A model whose
  fingerprint has been compiled before, in any process, is loaded; anything else compiles.
* **Errors inside the log density** are caught in the wrapper and returned as nutpie's codes: positive
  (a non-finite value or gradient, an exception inside the graph) are recoverable -- the sampler treats
  the point as outside the posterior --, negative ones (a size that does not match) stop the sampler.

The cache folder: ``BAYESCPEC_CACHE_DIR``, else ``$NUMBA_CACHE_DIR/bayescpec``, else
``$XDG_CACHE_HOME/bayescpec`` (``~/.cache/bayescpec``). Removing it only costs the next fit its compilation.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .wrappers import FORMAT, cfuncs

__all__ = ["NativeDensity", "BoundData", "cache_dir", "fingerprint", "native_density", "clear_native", "graph_inputs_key",
           "indexed_fingerprint", "record_fingerprint", "cached_density"]



def cache_dir() -> Path:
    """Where the compiled log densities are kept (see the module notes)."""
    explicit = os.environ.get("BAYESCPEC_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir).expanduser() / "bayescpec"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "bayescpec"


# --------------------------------------------------------------------------- the fingerprint
def _environment() -> str:
    import numba
    import pymc
    import pytensor

    return json.dumps({
        "format": FORMAT, "python": sys.version, "machine": platform.machine(), "numpy": np.__version__,
        "numba": numba.__version__, "pytensor": pytensor.__version__, "pymc": pymc.__version__,
        "fastmath": bool(pytensor.config.numba__fastmath), "floatX": pytensor.config.floatX,
        "numba_opt": str(numba.core.config.OPT),
        "source": hashlib.sha256(b"".join((Path(__file__).parent / name).read_bytes()
                                          for name in ("native.py", "wrappers.py"))).hexdigest(),
    }, sort_keys=True)


def fingerprint(model) -> tuple[str, dict]:
    """(the hex SHA-256 of what the compiled functions of ``model`` depend on, the model's shared
    variables by name). Data *values* are not part of it, dimension lengths are (they set the shapes)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort

    digest = hashlib.sha256(_environment().encode())
    ids: dict = {}
    shared: dict = {}

    def ref(var) -> int:
        if var not in ids:
            ids[var] = len(ids)
            if isinstance(var, Constant):
                data = var.data
                if isinstance(data, np.ndarray):
                    digest.update(f"C{data.dtype}{data.shape}".encode() + np.ascontiguousarray(data).tobytes())
                else:
                    digest.update(f"C{data!r}".encode())
            elif isinstance(var, SharedVariable):
                digest.update(f"S{var.name}{var.type}".encode())
                if getattr(var.type, "ndim", None) == 0 and var.type.dtype.startswith("int"):
                    digest.update(repr(int(var.get_value())).encode())  # a dimension's length
                if var.name is not None and not var.type.__class__.__name__.startswith("Random"):
                    shared.setdefault(var.name, var)
            elif var.owner is None:
                digest.update(f"I{var.name}{var.type}".encode())
        return ids[var]

    outputs = [*model.free_RVs, *model.deterministics, *model.potentials, *model.observed_RVs]
    outputs += [model.rvs_to_values[rv] for rv in model.observed_RVs]
    for node in toposort(outputs):
        op = node.op
        props = op._props() if getattr(op, "__props__", None) else ()
        digest.update(f"{type(op).__module__}.{type(op).__qualname__}|{props!r}|{op}".encode())
        digest.update(repr([ref(i) for i in node.inputs]).encode())
        for out in node.outputs:
            ids.setdefault(out, len(ids))
            digest.update(f"O{out.type}".encode())
    for var in outputs:
        ref(var)
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        props = transform.__dict__ if transform is not None else {}
        digest.update(f"F{rv.name}|{ids[rv]}|{type(transform).__name__}|{sorted(map(str, props.items()))}"
                      f"|{model.rvs_to_initial_values.get(rv)}".encode())
    for var in model.deterministics:
        digest.update(f"D{var.name}|{ids[var]}|{model.named_vars_to_dims.get(var.name)}".encode())
    digest.update(f"B{model.check_bounds}".encode())
    return digest.hexdigest(), shared


# --------------------------------------------------------------------------- compiled functions
@dataclass(eq=False)
class NativeDensity:
    """The three native functions of one model fingerprint and the layout of their inputs and outputs."""

    key: str
    n_dim: int
    data: list                  # [(name, dtype, ndim)] in the order of the data block
    uses: dict                  # kind -> names of the data it reads
    free: list                  # [(value variable name, shape)]: the unconstrained point's layout
    variables: list             # [(name, shape, dims)]: what a draw expands into
    functions: dict = field(default_factory=dict, repr=False)   # kind -> numba CFunc
    seconds: float = 0.0        # this process's time to compile or load it
    loaded: bool = False        # True when it came from the disk cache

    @property
    def n_expanded(self) -> int:
        return int(sum(int(np.prod(shape, dtype=int)) for _, shape, _ in self.variables))

    def meta(self) -> dict:
        return {"key": self.key, "n_dim": self.n_dim, "data": self.data, "uses": self.uses, "free": self.free,
                "variables": self.variables}


class BoundData:
    """A model's data in the layout a :class:`NativeDensity` reads: the arrays (kept alive here) and the
    block of their addresses and shapes whose address the native functions receive."""

    def __init__(self, density: NativeDensity, values: dict):
        self.density = density
        self.arrays, cells = [], []
        for name, dtype, ndim in density.data:
            array = np.array(values[name], dtype=dtype, order="C", copy=True)
            if array.ndim != ndim:
                raise ValueError(f"data {name!r}: expected {ndim} dimensions, found {array.ndim}")
            array.flags.writeable = False
            self.arrays.append(array)
            cells += [array.ctypes.data, *array.shape]
        self.block = np.array(cells, dtype=np.int64)
        self.address = int(self.block.ctypes.data)
        support = np.zeros(density.n_dim)
        code = density.functions["init"].ctypes(self.address, _doubles(support), density.n_dim)
        if code != 0:
            raise RuntimeError(f"the model's initial point could not be computed (code {code}): its parameters' "
                               "sizes do not match the compiled model")
        self.support = support

    def initial_point(self, seed: int) -> np.ndarray:
        """PyMC's default start: the support point on the unconstrained scale, jittered by U(-1, 1)."""
        return self.support + np.random.default_rng(seed).uniform(-1.0, 1.0, self.density.n_dim)

    def logp(self, point) -> tuple[int, float, np.ndarray]:
        """(return code, log density, gradient) at an unconstrained ``point`` (for checks and tests)."""
        x = np.ascontiguousarray(point, dtype=float)
        gradient, value = np.zeros(self.density.n_dim), np.zeros(1)
        code = self.density.functions["logp"].ctypes(len(x), _doubles(x), _doubles(gradient), _doubles(value),
                                                     self.address)
        return int(code), float(value[0]), gradient

    def expand(self, point) -> tuple[int, np.ndarray]:
        x = np.ascontiguousarray(point, dtype=float)
        out = np.zeros(self.density.n_expanded)
        code = self.density.functions["expand"].ctypes(len(x), len(out), _doubles(x), _doubles(out), self.address)
        return int(code), out


def _doubles(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _graphs(model):
    """The PyTensor graphs (log density and gradient, expansion, initial point) with every shared
    variable replaced by an explicit input, and their layout."""
    import pytensor
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_expression
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph import clone_replace, rewrite_graph
    from pytensor.graph.traversal import ancestors

    free = list(model.free_RVs)
    values = [model.rvs_to_values[rv] for rv in free]
    starts = make_initial_point_expression(free_rvs=free, rvs_to_transforms=model.rvs_to_transforms,
                                           initval_strategies=model.rvs_to_initial_values,
                                           return_transformed=True)
    shapes = [tuple(int(n) for n in shape) for shape in
              pytensor.function([], [start.shape for start in starts], mode="FAST_COMPILE")()]
    n_dim = int(sum(int(np.prod(shape, dtype=int)) for shape in shapes))
    x = pt.TensorType("float64", shape=(n_dim,))("x")
    replace, cursor = {}, 0
    for value, shape in zip(values, shapes):
        size = int(np.prod(shape, dtype=int))
        replace[value] = x[cursor:cursor + size].reshape(shape).astype(value.dtype)
        cursor += size
    rewrites = ["canonicalize", "stabilize"] + ([] if model.check_bounds else ["local_remove_check_parameter"])
    logp = rewrite_graph(model.logp(), include=rewrites)
    grad = pt.concatenate([g.ravel() for g in pt.grad(logp, values)])
    transformed = {model.rvs_to_values[rv].name for rv in free if model.rvs_to_transforms.get(rv) is not None}
    kept = [var for var in model.unobserved_value_vars if var.name not in transformed]
    logp, grad, *kept_x = clone_replace([logp, grad, *kept], replace)
    expanded = pt.concatenate([pt.as_tensor(var).ravel().astype("float64") for var in kept_x])
    start = pt.concatenate([s.ravel().astype("float64") for s in starts])
    graphs = [logp, grad, expanded, start]
    every = [var for var in ancestors(graphs) if isinstance(var, SharedVariable)]
    inputs = {}
    for var in every:
        if var.type.__class__.__name__.startswith("Random") or var.name is None:
            raise ValueError(f"the model's log density depends on {var} (a random generator or an unnamed shared "
                             "variable); the native backend needs every data container named")
        inputs.setdefault(var.name, var.type())
        inputs[var.name].name = var.name
    logp, grad, expanded, start = clone_replace(graphs, {var: inputs[var.name] for var in every})
    names = sorted(inputs)

    def used(*outs) -> list[str]:
        found = set(ancestors(outs))
        return [name for name in names if inputs[name] in found]

    uses = {"logp": used(logp, grad), "expand": used(expanded), "init": used(start)}
    kept_shapes = pytensor.function([x], [pt.as_tensor(v).shape for v in kept_x], mode="FAST_COMPILE",
                                    on_unused_input="ignore")(np.zeros(n_dim))
    layout = {
        "n_dim": n_dim,
        "data": [(name, str(inputs[name].dtype), int(inputs[name].ndim)) for name in names],
        "uses": uses,
        "free": [(value.name, list(shape)) for value, shape in zip(values, shapes)],
        "variables": [(var.name, [int(n) for n in shape],
                       [d if d is not None else f"{var.name}_dim_{i}"
                        for i, d in enumerate(model.named_vars_to_dims.get(var.name) or [None] * len(shape))])
                      for var, shape in zip(kept, kept_shapes)],
    }
    graphs = {"logp": ([x], [logp, grad]), "expand": ([x], [expanded]), "init": ([], [start])}
    return layout, {kind: (ins + [inputs[n] for n in uses[kind]], outs) for kind, (ins, outs) in graphs.items()}


@contextlib.contextmanager
def _locked(path: Path):
    """One process compiles a fingerprint at a time; the others wait and then load it."""
    try:
        import fcntl
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_DENSITIES: dict[str, NativeDensity] = {}


def native_density(model, key: str | None = None) -> NativeDensity:
    """The native functions of ``model``: this process's, else the disk cache's, else compiled now
    (and saved). ``key`` is the model's :func:`fingerprint` when the caller has it."""
    key = key or fingerprint(model)[0]
    found = _DENSITIES.get(key)
    if found is not None:
        return found
    started = time.perf_counter()
    folder = cache_dir()
    meta_file = folder / f"{key}.json"
    density = _load(meta_file, key, folder)
    if density is None:
        with _locked(folder / f"{key}.lock"):
            density = _load(meta_file, key, folder)  # another process may have compiled it meanwhile
            if density is None and _compile_in_child(model, key, folder):
                density = _load(meta_file, key, folder)
            if density is None:  # the cache cannot be written, or the child failed: compile here
                density = _compile(model, key, folder, meta_file)
    density.seconds = time.perf_counter() - started
    _DENSITIES[key] = density
    return density


def _load(meta_file: Path, key: str, folder: Path) -> NativeDensity | None:
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != key:
        return None
    layout = {k: meta[k] for k in ("n_dim", "data", "uses", "free", "variables")}
    functions = cfuncs(layout, key, folder, None)
    if functions is None:
        return None
    return NativeDensity(key, functions=functions, loaded=True, **layout)


def _compile(model, key: str, folder: Path, meta_file: Path) -> NativeDensity:
    from pymc.pytensorf import compile as compile_pymc

    for stale in folder.glob(f"*{key}*.nb[ci]") if folder.is_dir() else ():  # a damaged or partial entry
        with contextlib.suppress(OSError):
            stale.unlink()
    layout, graphs = _graphs(model)
    inners = {}
    with model:
        for kind, (inputs, outputs) in graphs.items():
            jit_fn = compile_pymc(inputs, outputs, mode="NUMBA", on_unused_input="ignore").vm.jit_fn
            # PyTensor's entry point is a trampoline (``*args``) around the graph's function; calling the
            # graph's function directly spares Numba one more optimisation of all the linked code (~10%)
            body = getattr(jit_fn, "py_func", None) and jit_fn.py_func.__globals__.get("jitable_func")
            inners[kind] = body if hasattr(body, "py_func") else jit_fn
    density = NativeDensity(key, functions=cfuncs(layout, key, folder, inners), **layout)
    with contextlib.suppress(OSError):  # written last, atomically: its presence says the cache is complete
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}.", suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            json.dump(density.meta(), out)
        os.replace(tmp, meta_file)
    return density


def _compile_in_child(model, key: str, folder: Path) -> bool:
    """Compile ``model`` into the cache in a child process; this one then loads it like any later process.

    Why not here: code compiled in this process would be linked with PyTensor's separately compiled
    functions already in memory, and Numba/LLVM may bind calls to those copies (optimised apart, with
    fast-math) rather than to the cached code's own -- the first run would draw differently from
    every later one with the same seed. Loading the cached code everywhere gives the same draws."""
    import subprocess

    import cloudpickle

    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, path = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}.", suffix=".model")
        with os.fdopen(handle, "wb") as out:
            cloudpickle.dump(model, out)
    except OSError:
        return False
    try:
        done = subprocess.run([sys.executable, "-m", __name__, path, key, str(folder)], capture_output=True,
                              text=True, check=False)
        return done.returncode == 0
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


# --------------------------------------------------------------------------- the index of fingerprints
# A fingerprint needs the PyMC model (its graph), and building it -- with PyMC's and PyTensor's imports --
# is most of what a warm fit spends outside sampling. The index maps what the graph is made from to the
# fingerprint it had: the framework and prior set (their full content), the units, the names, dtypes and
# dimensions of the data, every source file of this package and the versions and settings of the libraries
# that turn them into a graph. Any change to these is a new entry: the model is built once more.
_SOURCES: list[str] = []


def _light_environment() -> str:
    from importlib.metadata import version

    if not _SOURCES:
        package = Path(__file__).resolve().parent.parent
        digest = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
        _SOURCES.append(digest.hexdigest())
    rc = [Path(p).expanduser() for p in (os.environ.get("PYTENSORRC", "").split(os.pathsep)
                                          + ["~/.pytensorrc", "~/.pytensorrc.txt"]) if p]
    return json.dumps({
        "format": FORMAT, "python": sys.version, "machine": platform.machine(), "sources": _SOURCES[0],
        "versions": {name: version(name) for name in ("numpy", "numba", "llvmlite", "pytensor", "pymc")},
        "settings": {k: v for k, v in os.environ.items() if k.startswith(("PYTENSOR", "NUMBA"))},
        "pytensorrc": [p.read_text(errors="replace") if p.is_file() else "" for p in rc],
    }, sort_keys=True)


def graph_inputs_key(framework, priors, units, data: dict) -> str:
    """The index's key of a model: what its graph is made from (see above); ``data`` by name."""
    signature = sorted((name, str(np.asarray(v).dtype), int(np.ndim(v))) for name, v in data.items())
    return hashlib.sha256(json.dumps([_light_environment(), framework.model_dump_json(), priors.model_dump_json(),
                                      [list(u) for u in units], signature]).encode()).hexdigest()


def indexed_fingerprint(inputs_key: str) -> str | None:
    """The fingerprint recorded for ``inputs_key``, when its native functions are in the cache too."""
    folder = cache_dir()
    try:
        key = (folder / "index" / inputs_key).read_text().strip()
    except OSError:
        return None
    return key if len(key) == 64 and (folder / f"{key}.json").is_file() else None


def record_fingerprint(inputs_key: str, key: str) -> None:
    """Record ``key`` for ``inputs_key`` (atomically; nothing when the cache cannot be written)."""
    folder = cache_dir() / "index"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            out.write(key)
        os.replace(tmp, folder / inputs_key)


def cached_density(key: str) -> NativeDensity | None:
    """The native functions of fingerprint ``key`` from this process or the disk cache; None if absent."""
    found = _DENSITIES.get(key)
    if found is None:
        started = time.perf_counter()
        found = _load(cache_dir() / f"{key}.json", key, cache_dir())
        if found is not None:
            found.seconds = time.perf_counter() - started
            _DENSITIES[key] = found
    return found


def clear_native() -> None:
    """Forget this process's native functions (the disk cache stays)."""
    _DENSITIES.clear()


if __name__ == "__main__":  # the child of _compile_in_child: python -m bayescpec.engine.native MODEL KEY FOLDER
    import cloudpickle

    with open(sys.argv[1], "rb") as source:
        _model = cloudpickle.load(source)
    _folder = Path(sys.argv[3])
    _compile(_model, sys.argv[2], _folder, _folder / f"{sys.argv[2]}.json")
