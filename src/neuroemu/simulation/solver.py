"""Numerical settings of a NEURON simulation.

The defaults are the fastest settings found to be faithful to the published pipeline (see
``benchmarks/bench_simulation.py`` and ``docs/simulation.md``): the published pipeline used CVode
with default tolerances and recorded every segment at every step; ``SolverConfig.published()``
reproduces that (and evaluates the rate functions directly, as the published mod files did).

The defaults: fixed step dt = 0.025 ms with Crank-Nicolson (``secondorder=2``), rate functions
evaluated directly (no lookup tables: the published equations at every step), soma and nexus
recorded (dendrites too on request, also in CoreNEURON), run in CoreNEURON when the process can,
with the direct-evaluation build of the mechanisms (vectorised; see
:mod:`neuroemu.cells.mechanisms`).

Until the "sim-speed" change the default used the lookup tables (``use_tables=True``); that is
the *old default*, ``SolverConfig.old_default()``, kept bit for bit for datasets made with it.
The two differ in their numerics (:meth:`SolverConfig.fingerprint`), so a dataset made with one
is never extended with the other (:class:`neuroemu.dataset.writer.DatasetWriter` refuses).
Crank-Nicolson at dt = 0.04 or 0.05 ms loses spikes of the published settings (the second spike
of a doublet, then the spikes after it); backward Euler at 0.025 ms too: see docs/simulation.md.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from neuroemu.config import Config
from neuroemu.errors import ConfigError

METHODS = ("fixed", "cvode")
NUMERICS_VERSION = 1
"""Version of how neuroemu turns solver settings into numbers; bump it when the same settings start
giving other numbers (so fingerprints change)."""


@dataclass
class SolverConfig(Config):
    """How NEURON integrates the cell.

    method: ``"fixed"`` (fixed time step ``dt_ms``) or ``"cvode"`` (variable step).
    secondorder: NEURON's ``secondorder`` (0 = backward Euler, 2 = Crank-Nicolson with ion currents).
    cvode_atol: CVode absolute tolerance (``None`` = NEURON's default).
    record_all_segments: record every dendritic segment at every step as the published pipeline
        did (slow; for benchmarks and faithfulness checks).
    use_tables: use the mechanisms' lookup tables for the channel rate functions (linear
        interpolation on a 0.05-mV grid, relative error < 1e-4; see
        :mod:`neuroemu.cells.mechanisms`). ``False`` (the default) evaluates them directly, as
        the published mod files did; in CoreNEURON that is also the faster choice (the
        direct-evaluation build vectorises, the table lookups do not).
    coreneuron: run fixed-step trials in CoreNEURON (same results as NEURON to ~1e-10 mV, about
        1.9x faster). It needs a CoreNEURON build of the mechanisms, which must be the first
        loaded in the process (the simulator loads it when it is the first to load mechanisms;
        compiling it takes one to two minutes, once): the direct-evaluation build for
        ``use_tables=False``, the build with tables for ``use_tables=True`` (one kind per process,
        since CoreNEURON keeps the ``usetable`` settings of its first run). Recorded dendrites
        are sampled at every step in CoreNEURON and kept at 1 ms. Trials run in classic NEURON
        with CVode, with ``record_all_segments``, or when the process already loaded mechanisms
        of another kind (a warning says so).
    """

    method: str = "fixed"
    dt_ms: float = 0.025
    secondorder: int = 2
    cvode_atol: float | None = None
    record_all_segments: bool = False
    use_tables: bool = False
    coreneuron: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"solver method {self.method!r} is unknown; choose one of {list(METHODS)}")
        if not (0 < self.dt_ms <= 1.0):
            raise ConfigError(f"solver dt_ms = {self.dt_ms}: must be in (0, 1] ms")
        if self.secondorder not in (0, 1, 2):
            raise ConfigError(f"solver secondorder = {self.secondorder}: must be 0, 1 or 2")
        if self.cvode_atol is not None and not self.cvode_atol > 0:
            raise ConfigError(f"solver cvode_atol = {self.cvode_atol}: must be > 0")

    @classmethod
    def published(cls) -> "SolverConfig":
        """The published pipeline's settings: CVode, default tolerances, every segment recorded, no tables."""
        return cls(method="cvode", secondorder=0, record_all_segments=True, use_tables=False, coreneuron=False)

    @classmethod
    def old_default(cls) -> "SolverConfig":
        """The default before the "sim-speed" change: as now, but with the lookup tables (CoreNEURON build
        with tables, the flags it always had: the same numbers bit for bit)."""
        return cls(use_tables=True)

    def uses_coreneuron(self, record_dendrites: bool = False) -> bool:
        """Whether a trial with these settings asks for CoreNEURON (see ``coreneuron``).

        ``record_dendrites`` no longer matters (dendrites are recorded in CoreNEURON too); the argument
        stays for callers that pass it.
        """
        return self.coreneuron and self.method == "fixed" and not self.record_all_segments

    def numerics(self) -> dict:
        """The fields that decide the numbers a trial produces (engine and build included), with the
        version of the numerics scheme; what :meth:`fingerprint` hashes."""
        engine = "coreneuron" if self.uses_coreneuron() else "neuron"
        out = {"scheme": NUMERICS_VERSION, "method": self.method, "use_tables": bool(self.use_tables),
               "engine": engine}
        if self.method == "fixed":
            out.update(dt_ms=float(self.dt_ms), secondorder=int(self.secondorder))
        else:
            out.update(cvode_atol=self.cvode_atol)
        if engine == "coreneuron":
            out["build"] = "tables" if self.use_tables else "direct-v1"
        return out

    def fingerprint(self) -> str:
        """Short stable hash of :meth:`numerics`: equal fingerprints give the same numbers (same machine
        kind); a dataset is only extended with trials of its own fingerprint."""
        text = json.dumps(self.numerics(), sort_keys=True, separators=(",", ":"))
        return "solver-" + hashlib.sha256(text.encode()).hexdigest()[:12]
