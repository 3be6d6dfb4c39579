"""Numerical settings of a NEURON simulation.

The defaults are the fastest settings found to be faithful to the published pipeline (see
``benchmarks/bench_simulation.py``): the published pipeline used CVode with default tolerances and
recorded every segment at every step; ``SolverConfig.published()`` reproduces that (and evaluates
the rate functions directly, as the published mod files did).

The defaults: fixed step dt = 0.025 ms with Crank-Nicolson (``secondorder=2``), the mechanisms'
lookup tables, soma and nexus recorded only, run in CoreNEURON when the process can. On the
built-in cell (3 six-second trials, 88 output spikes) they reproduced every output spike of the
published settings within 0.88 ms, 4.7x faster in CPU time (2.6x when run in classic NEURON).
Backward Euler at the same step put 30% of the spikes more than 1 ms away; Crank-Nicolson at
dt = 0.04 or 0.05 ms 18-23%.
"""
from __future__ import annotations

from dataclasses import dataclass

from neuroemu.config import Config
from neuroemu.errors import ConfigError

METHODS = ("fixed", "cvode")


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
        :mod:`neuroemu.cells.mechanisms`). ``False`` evaluates them directly, as the published
        mod files did.
    coreneuron: run fixed-step trials in CoreNEURON (same results as NEURON to ~1e-10 mV, about
        1.9x faster). It needs the CoreNEURON build of the mechanisms, which must be the first
        loaded in the process (the simulator loads it when it is the first to load mechanisms;
        compiling it takes one to two minutes, once). Trials run in classic NEURON instead with
        CVode, without tables, when dendrites are recorded (CoreNEURON cannot record at 1-ms
        intervals), or when the process already loaded the mechanisms without CoreNEURON (a
        warning says so). Tables are required because CoreNEURON keeps the ``usetable`` settings
        of its first run in a process.
    """

    method: str = "fixed"
    dt_ms: float = 0.025
    secondorder: int = 2
    cvode_atol: float | None = None
    record_all_segments: bool = False
    use_tables: bool = True
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

    def uses_coreneuron(self, record_dendrites: bool = False) -> bool:
        """Whether a trial with these settings asks for CoreNEURON (see ``coreneuron``)."""
        return (self.coreneuron and self.method == "fixed" and self.use_tables
                and not self.record_all_segments and not record_dendrites)
