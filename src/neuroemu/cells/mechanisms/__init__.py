"""NMODL mechanisms of the Hay "5b" L5PC model and its synapses, and their compile cache.

The ``.mod`` files next to this module were written for neuroemu from the equations of
reference-system.md sections 3-4 (no code copied from other projects):

- channels (``SUFFIX``): NaTa_t, NaTs2_t, Nap_Et2, K_Tst, K_Pst, SKv3_1, SK_E2, Im, Ih, Ca_HVA,
  Ca_LVAst, each with a conductance parameter ``g<Name>bar`` (S/cm2), gates starting at steady state;
- CaDynamics_E2 (``decay``, ``gamma``, ``depth``, ``minCai``), which has no INITIAL block: cai starts
  at NEURON's ``cai0_ca_ion`` (5e-5 mM), as in the published model, and eca follows cai (Nernst);
- synapses (``POINT_PROCESS``): ``AmpaNmdaSyn`` (one event drives AMPA and NMDA together; ranges
  ``gmax_AMPA``, ``gmax_NMDA``, ``mg``, ``gamma_NMDA``, ``mgblock``...) and ``DualExpSyn`` (``tau_r``,
  ``tau_d``, ``gmax``, ``e``) used for AMPA-only excitation and GABA_A inhibition. Both are
  deterministic and transmit every event; release randomness is applied in Python.

All mechanisms are THREADSAFE and use no POINTER or VERBATIM, so they also build for CoreNEURON.

Speed (measured in ``benchmarks/bench_simulation.py``; the equations are those of docs/reference.md section 3):

- lookup tables: the rate procedure of every voltage-gated channel carries a ``TABLE`` statement,
  so NEURON evaluates it once on a 0.05-mV grid from -150 to 100 mV and then interpolates linearly
  (relative error < 1e-4; beyond the range the end values are used) instead of calling 2-6 exp()
  per gate, segment and step; SK_E2 tabulates z_inf over cai (0-0.01 mM) instead of a pow().
  NEURON exposes one global ``usetable_<Mech>`` per tabulated mechanism (1 by default);
  :func:`set_use_tables` switches them all, and ``SolverConfig(use_tables=False)`` runs the direct
  evaluation of the published model. The tables have no DEPEND: nothing they read can change.
- ``CONDUCTANCE`` statements tell NEURON di/dv of every current (the channel's conductance; for
  AmpaNmdaSyn the analytic derivative including the Mg block), so NEURON computes each current
  once per step instead of twice for a finite difference (which gives the same value for ohmic
  currents, and to O(0.001 mV) the same for the NMDA current).
- CoreNEURON builds (``coreneuron=True``) are compiled with :func:`coreneuron_compile_flags`:
  CoreNEURON's generated loops then call glibc's vector exp() (libmvec, 4 wide with AVX2, 8 wide
  with AVX-512), about 1.35x faster than the default flags; results differ from classic NEURON's
  by ~1e-10 mV. The flags are part of the cache key.
- CoreNEURON builds come in two kinds (``tables=``): with the lookup tables (the build of the
  default solver before the "sim-speed" change, ``SolverConfig.old_default()``, kept bit for bit:
  same sources, same flags, same cache key), and the *direct-evaluation* build (``tables=False``,
  the default solver's now):
  the same mod files with their ``TABLE`` statements left out, compiled with ``-O3`` and the
  CPU's widest vectors. CoreNEURON's table lookup (branches and early returns) keeps gcc from
  vectorising a mechanism's loop, so every ``exp`` of the cnexp update stays a scalar call; without
  tables the whole state loop vectorises, rate functions included, and a trial costs about 25%
  less (``docs/simulation.md``). Its classic library has no tables either, so a process that loaded
  it evaluates the rate functions directly in NEURON too (:func:`set_use_tables` refuses ``True``).

Compile cache: :func:`build_mechanisms` runs the ``nrnivmodl`` of the running Python's NEURON in a
temporary directory and atomically renames it to ``<root>/mechanisms/<key>``, where ``<root>`` is
``$NEUROEMU_CACHE`` if set, else ``$XDG_CACHE_HOME/neuroemu`` or ``~/.cache/neuroemu``, and ``<key>``
hashes the mod files' contents, the NEURON version and install location, the CPU architecture and
the CoreNEURON flag (with the compile flags of CoreNEURON builds). A file lock (``fcntl.flock``) makes concurrent worker processes compile once.
Nothing is ever compiled into the user's working directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from pathlib import Path

from neuroemu.errors import MechanismError
from neuroemu.io import cache_root

MOD_DIR = Path(__file__).resolve().parent
"""Directory holding the packaged ``.mod`` files."""

CHANNEL_MECHANISMS = (
    "NaTa_t", "NaTs2_t", "Nap_Et2", "K_Tst", "K_Pst", "SKv3_1", "SK_E2", "Im", "Ih",
    "Ca_HVA", "Ca_LVAst",
)
"""The 11 Hay channels; each has a conductance parameter ``g<Name>bar``."""

CALCIUM_DYNAMICS = "CaDynamics_E2"
SYNAPSE_MECHANISMS = ("AmpaNmdaSyn", "DualExpSyn")

_CACHE_FORMAT = "neuroemu-mechanisms-v1"
_NAME_RE = re.compile(r"^\s*(?:SUFFIX|POINT_PROCESS)\s+(\w+)", re.MULTILINE)

_lock = threading.Lock()
_loaded_path: Path | None = None
_loaded_coreneuron = False
_loaded_tables = True
last_build_compiled = False
"""True if the most recent :func:`build_mechanisms` call in this process ran nrnivmodl."""


def mod_files() -> list[Path]:
    """Return the packaged ``.mod`` files, sorted by name."""
    files = sorted(MOD_DIR.glob("*.mod"))
    if not files:
        raise MechanismError(f"no .mod files found in {MOD_DIR} (broken installation?)")
    return files


def mechanism_names(paths: list[Path] | None = None) -> list[str]:
    """Return the NEURON names (SUFFIX or POINT_PROCESS) defined by the mod files, in file order."""
    names: list[str] = []
    for path in paths if paths is not None else mod_files():
        match = _NAME_RE.search(Path(path).read_text())
        if match is None:
            raise MechanismError(f"{path}: no SUFFIX or POINT_PROCESS statement found")
        names.append(match.group(1))
    return names


def neuron_version() -> str:
    """Version string of the importable NEURON package."""
    import neuron

    return str(neuron.__version__)


def cache_key(coreneuron: bool = False, paths: list[Path] | None = None, tables: bool = True) -> str:
    """Key of a build: sha256 of the mod files' names and contents, NEURON version/location, arch, flags.

    ``tables=False`` (CoreNEURON builds only) is the direct-evaluation build; builds with tables keep
    the keys they had before that option existed.
    """
    import neuron

    direct = bool(coreneuron) and not tables
    paths = sorted(paths if paths is not None else mod_files(), key=lambda p: Path(p).name)
    digest = hashlib.sha256()
    flags = " ".join(coreneuron_compile_flags(tables=not direct)) if coreneuron else ""
    parts = [_CACHE_FORMAT, neuron_version(), str(Path(neuron.__file__).resolve().parent),
             platform.machine(), f"coreneuron={bool(coreneuron)}", flags]
    if direct:
        parts.append(f"tables=False;{_DIRECT_FORMAT}")
    for part in parts:
        digest.update(part.encode() + b"\0")
    for path in paths:
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    flavour = "direct" if direct else ("core" if coreneuron else "nrn")
    return f"nrn{neuron_version()}-{flavour}-{digest.hexdigest()[:20]}"


def find_nrnivmodl() -> Path:
    """Locate the ``nrnivmodl`` belonging to the running Python's NEURON.

    Order: ``$NEUROEMU_NRNIVMODL``, next to ``sys.executable``, the interpreter's scripts
    directory, then ``PATH``. Raises :class:`MechanismError` if none exists.
    """
    override = os.environ.get("NEUROEMU_NRNIVMODL")
    if override:
        path = Path(override)
        if not path.is_file():
            raise MechanismError(f"NEUROEMU_NRNIVMODL={override!r}: no such file")
        return path
    candidates = [Path(sys.executable).parent / "nrnivmodl", Path(sysconfig.get_path("scripts")) / "nrnivmodl"]
    found = shutil.which("nrnivmodl")
    if found:
        candidates.append(Path(found))
    for cand in candidates:
        if cand.is_file():
            return cand
    raise MechanismError(
        "nrnivmodl not found next to the Python interpreter "
        f"({Path(sys.executable).parent}) nor on PATH; install NEURON with `pip install neuron` "
        "in this environment or set NEUROEMU_NRNIVMODL to its nrnivmodl"
    )


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


AVX512_FLAGS = ("avx512f", "avx512dq", "avx512vl", "avx512bw", "avx512cd")
"""CPU flags (``/proc/cpuinfo``) for which direct-evaluation builds use 8-wide (AVX-512) vectors."""


def coreneuron_compile_flags(tables: bool = True) -> list[str]:
    """Extra compiler flags of CoreNEURON builds, letting gcc vectorise the per-instance loops' exp().

    glibc declares its vector math functions (libmvec) only when ``__FAST_MATH__`` is defined; with
    ``-fno-math-errno -fno-trapping-math`` gcc may then call them. Full ``-ffast-math`` is avoided on
    purpose: it assumes no NaN, which removes the NaN check of the TABLE lookups, and a NaN voltage
    then indexes outside the table (a crash instead of neuroemu's "voltage became NaN" error).
    ``-mavx2 -mfma`` (4-wide vectors) are added where this CPU has both; only machines with the
    same flags share a cached build.

    ``tables=False`` gives the flags of the direct-evaluation build: ``-O3`` first, and on CPUs with
    AVX-512 (:data:`AVX512_FLAGS`) the AVX-512 flags after ``-mavx2 -mfma``, so that the vectorised
    exp() is libmvec's 8-wide one. ``tables=True`` (the build with lookup tables) keeps exactly the
    flags it always had, so it reproduces earlier results bit for bit.
    """
    flags = ["-fno-math-errno", "-fno-trapping-math", "-D__FAST_MATH__"]
    cpu = _cpu_flags() if platform.machine() in ("x86_64", "AMD64") else set()
    if {"avx2", "fma"} <= cpu:
        flags += ["-mavx2", "-mfma"]
    if tables:
        return flags
    flags = ["-O3"] + flags
    if {"avx2", "fma"} <= cpu and set(AVX512_FLAGS) <= cpu:
        flags += ["-m" + f for f in AVX512_FLAGS] + ["-mprefer-vector-width=512"]
    return flags


def _nrnivmodl_command(nrnivmodl: Path, coreneuron: bool, tables: bool = True) -> list[str]:
    cmd = [str(nrnivmodl)]
    try:
        with open(nrnivmodl, "rb") as fh:
            first = fh.readline(200)
        if first.startswith(b"#!") and b"python" in first:
            # The PyPI wrapper: run it with this interpreter so it finds this NEURON.
            cmd = [sys.executable, str(nrnivmodl)]
    except OSError:
        pass
    if coreneuron:
        # -incflags reach both libraries of a CoreNEURON build; builds without CoreNEURON keep
        # NEURON's default flags
        cmd += ["-coreneuron", "-incflags", " ".join(coreneuron_compile_flags(tables=tables))]
    return cmd


def _library(build_dir: Path, stem: str) -> Path | None:
    for pattern in (f"*/{stem}.so", f"*/{stem}.dylib", f"*/.libs/{stem}.so", f"{stem}.dll"):
        hits = sorted(build_dir.glob(pattern))
        if hits:
            return hits[0]
    return None


def _is_complete(build_dir: Path, coreneuron: bool) -> bool:
    if not (build_dir / "build.json").is_file() or _library(build_dir, "libnrnmech") is None:
        return False
    return not coreneuron or _library(build_dir, "libcorenrnmech") is not None


def _failure_message(cmd: list[str], rc: int | str, output: str, where: Path, log: Path | None = None) -> str:
    # the PyPI wrapper ends with its own Python traceback, which says nothing about the cause
    output = output.split("Traceback (most recent call last):")[0]
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)  # colour codes
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    notable = [ln for ln in lines if re.search(r"error|not found|no such file", ln, re.IGNORECASE)]
    tail = lines[-15:]
    shown = notable[:10] + (["..."] if notable else []) + [ln for ln in tail if ln not in notable[:10]]
    compilers = []
    for var, default in (("CC", "gcc"), ("CXX", "g++")):
        exe = (os.environ.get(var) or default).split()[0]
        if shutil.which(exe) is None:
            compilers.append(f"{var} compiler {exe!r} was not found")
    if shutil.which("make") is None:
        compilers.append("'make' was not found on PATH")
    hint = ("; ".join(compilers) + ". ") if compilers else ""
    saved = f" Full log: {log}." if log is not None else ""
    return (
        f"compiling neuroemu's NMODL mechanisms into {where} failed ({' '.join(cmd)} exited with {rc}). "
        f"{hint}NEURON needs a C/C++ compiler (such as gcc/g++) and make to build mechanisms.{saved} "
        "Last lines of the compiler output:\n" + "\n".join(shown)
    )


_TABLE_RE = re.compile(r"^(\s*)(TABLE\b.*)$", re.MULTILINE)
_DIRECT_FORMAT = "direct-v1"


def without_tables(text: str) -> str:
    """A mod file's text with its ``TABLE`` statements commented out (the direct-evaluation build).

    Nothing else changes: the rate procedures compute what they computed before, at every call.
    """
    return _TABLE_RE.sub(r"\1: (direct-evaluation build) \2", text)


def _compile(dest: Path, key: str, coreneuron: bool, paths: list[Path], tables: bool = True) -> None:
    """Compile ``paths`` in a temp dir next to ``dest`` and rename it to ``dest`` (caller holds the lock)."""
    nrnivmodl = find_nrnivmodl()
    cmd = _nrnivmodl_command(nrnivmodl, coreneuron, tables=tables)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=dest.parent))
    try:
        for path in paths:
            if tables:
                shutil.copy2(path, tmp / Path(path).name)
            else:
                (tmp / Path(path).name).write_text(without_tables(Path(path).read_text()))
        env = dict(os.environ)
        env.pop("NRN_NMODL_PATH", None)
        home = env.get("NMODLHOME")
        if home and not (Path(home) / "share" / "nmodl" / "nrnunits.lib").is_file():
            # importing neuron.nmodl sets NMODLHOME to a folder without nrnunits.lib; the nmodl binary then
            # fails ("Could not find nrnunits.lib"): let nrnivmodl's wrapper set its own
            env.pop("NMODLHOME")
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace", timeout=3600)
        except OSError as exc:
            raise MechanismError(_failure_message(cmd, f"error {exc}", "", dest)) from exc
        except subprocess.TimeoutExpired as exc:
            raise MechanismError(f"nrnivmodl took longer than 3600 s in {tmp}") from exc
        (tmp / "nrnivmodl.log").write_text(proc.stdout)
        if proc.returncode != 0 or not _library(tmp, "libnrnmech") or (
                coreneuron and not _library(tmp, "libcorenrnmech")):
            log = dest.parent / f"{key}.failed.log"
            try:
                log.write_text(proc.stdout)
            except OSError:
                log = None
            raise MechanismError(_failure_message(cmd, proc.returncode, proc.stdout, dest, log))
        info = {
            "key": key, "neuron_version": neuron_version(), "coreneuron": bool(coreneuron),
            "tables": bool(tables),
            "mechanisms": mechanism_names(paths), "nrnivmodl": " ".join(cmd),
            "seconds": round(time.perf_counter() - start, 2), "built_by_pid": os.getpid(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "build.json").write_text(json.dumps(info, indent=2))
        if dest.exists():  # an incomplete leftover (e.g. files deleted by hand)
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def build_mechanisms(coreneuron: bool = False, *, paths: list[Path] | None = None,
                     root: Path | None = None, tables: bool = True) -> Path:
    """Compile the mechanisms into the cache if needed and return the build directory (no loading).

    ``tables=False`` with ``coreneuron=True`` is the direct-evaluation build (``TABLE`` statements
    left out, ``-O3``, widest vectors; see the module docstring); ignored for classic builds.

    ``paths`` (default: the packaged mod files) and ``root`` (default: :func:`cache_root`) exist
    for tests and tools. Concurrent callers (threads or processes) wait on a file lock, so one
    compiles and the others reuse its result. Raises :class:`MechanismError` on failure.
    """
    global last_build_compiled
    paths = [Path(p) for p in (paths if paths is not None else mod_files())]
    tables = bool(tables) or not coreneuron
    key = cache_key(coreneuron, paths, tables=tables)
    base = Path(root) if root is not None else cache_root()
    base = base / "mechanisms"
    dest = base / key
    last_build_compiled = False
    if _is_complete(dest, coreneuron):
        return dest
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MechanismError(f"cannot create the mechanism cache directory {base}: {exc}") from exc
    lock_path = base / f"{key}.lock"
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: no inter-process lock available
            pass
        if not _is_complete(dest, coreneuron):
            _compile(dest, key, coreneuron, paths, tables=tables)
            last_build_compiled = True
    finally:
        os.close(fd)  # closing releases the flock
    return dest


def table_mechanisms(paths: list[Path] | None = None) -> list[str]:
    """Names of the mechanisms whose mod file has a ``TABLE`` statement (each has ``usetable_<name>``)."""
    paths = [Path(p) for p in (paths if paths is not None else mod_files())]
    table = re.compile(r"^\s*TABLE\b", re.MULTILINE)
    return [name for name, path in zip(mechanism_names(paths), paths) if table.search(path.read_text())]


def set_use_tables(enabled: bool) -> list[str]:
    """Switch the lookup tables of neuroemu's mechanisms on (NEURON's default) or off; return their names.

    Sets NEURON's ``usetable_<Mech>`` globals. Off, every rate function is evaluated directly, as in
    the published model. Loads the mechanisms if needed. Takes effect at the next ``finitialize``
    (which also builds a table the first time it is used). In a process that loaded the
    direct-evaluation build (which has no tables) ``False`` does nothing and ``True`` raises
    :class:`MechanismError`.
    """
    load_mechanisms()
    from neuron import h

    if not _loaded_tables:
        if enabled:
            raise MechanismError(
                f"this process loaded the direct-evaluation build of the mechanisms ({_loaded_path}), which has "
                "no lookup tables; use SolverConfig(use_tables=False), or the tables in a fresh process")
        return []
    names = table_mechanisms()
    for name in names:
        attr = f"usetable_{name}"
        if not hasattr(h, attr):
            raise MechanismError(f"NEURON has no {attr}: the loaded mechanisms ({_loaded_path}) are not "
                                 f"neuroemu's current {name}.mod")
        setattr(h, attr, 1 if enabled else 0)
    return names


def loaded_mechanism_path() -> Path | None:
    """The build directory loaded into this process by :func:`load_mechanisms`, or None."""
    return _loaded_path


def coreneuron_loaded() -> bool:
    """True if this process loaded a CoreNEURON-capable build (``load_mechanisms(coreneuron=True)``)."""
    return _loaded_path is not None and _loaded_coreneuron


def tables_loaded() -> bool:
    """True unless this process loaded the direct-evaluation build (which has no lookup tables)."""
    return _loaded_tables


def _set_coreneuron_library(build_dir: Path) -> None:
    lib = _library(build_dir, "libcorenrnmech")
    if lib is None:
        raise MechanismError(f"{build_dir}: no libcorenrnmech library (not a CoreNEURON build)")
    # NEURON looks for CoreNEURON's mechanism library in $CORENEURONLIB, else in ./<arch>/ of the
    # working directory; we never build there, so point it at the cache.
    os.environ["CORENEURONLIB"] = str(lib)


def load_mechanisms(coreneuron: bool = False, tables: bool = True) -> Path:
    """Compile (cached) and load neuroemu's mechanisms into this process's NEURON; return the build dir.

    Idempotent: later calls return the same path at once. With ``coreneuron=True`` the build also
    contains CoreNEURON's library and ``$CORENEURONLIB`` is pointed at it; NEURON can load one
    mechanism library per process, so request ``coreneuron=True`` in the first call if needed.
    ``tables=False`` (with ``coreneuron=True``) loads the direct-evaluation build instead; a later
    call asking for another kind returns the loaded build (see :func:`tables_loaded`).
    If mechanisms with the same names were already loaded from elsewhere (for example an
    ``x86_64/`` folder auto-loaded from the working directory), a warning is issued and those stay.
    """
    global _loaded_path, _loaded_coreneuron, _loaded_tables
    with _lock:
        if _loaded_path is not None:
            if coreneuron and not _loaded_coreneuron:
                raise MechanismError(
                    f"mechanisms were already loaded without CoreNEURON support from {_loaded_path}; "
                    "NEURON cannot load a second library in one process. Call "
                    "load_mechanisms(coreneuron=True) first (in a fresh process)."
                )
            if coreneuron:
                _set_coreneuron_library(_loaded_path)
            return _loaded_path
        tables = bool(tables) or not coreneuron
        path = build_mechanisms(coreneuron, tables=tables)
        import neuron
        from neuron import h

        names = mechanism_names()
        present = [n for n in names if hasattr(h, n)]
        if present:
            if len(present) != len(names):
                missing = sorted(set(names) - set(present))
                raise MechanismError(
                    f"NEURON already has mechanisms {present} loaded from another library but lacks "
                    f"{missing}; remove the other library (e.g. an x86_64/ folder in the working "
                    f"directory {os.getcwd()}) so neuroemu's can be loaded from {path}"
                )
            warnings.warn(
                f"NEURON mechanisms {names} were already loaded from another library (e.g. an "
                f"x86_64/ folder in {os.getcwd()}); neuroemu uses those instead of {path}",
                RuntimeWarning, stacklevel=2,
            )
        else:
            ok = neuron.load_mechanisms(str(path), warn_if_already_loaded=False)
            if not ok or not all(hasattr(h, n) for n in names):
                raise MechanismError(f"loading the compiled mechanisms from {path} failed")
        if coreneuron:
            _set_coreneuron_library(path)
        _loaded_path = path
        _loaded_coreneuron = bool(coreneuron)
        _loaded_tables = tables
        return path


__all__ = [
    "CALCIUM_DYNAMICS", "CHANNEL_MECHANISMS", "MOD_DIR", "SYNAPSE_MECHANISMS", "build_mechanisms",
    "cache_key", "cache_root", "coreneuron_compile_flags", "coreneuron_loaded", "find_nrnivmodl",
    "load_mechanisms", "loaded_mechanism_path",
    "mechanism_names", "mod_files", "neuron_version", "set_use_tables", "table_mechanisms", "tables_loaded",
    "without_tables",
]
