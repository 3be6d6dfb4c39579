"""Numerical settings of a NEURON simulation.

The defaults are the fastest settings found to be faithful to the published pipeline (see
``benchmarks/bench_simulation.py`` and README): the published pipeline used CVode with default
tolerances and recorded every segment at every step; ``SolverConfig.published()`` reproduces that.
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
    """

    method: str = "fixed"
    dt_ms: float = 0.025
    secondorder: int = 0
    cvode_atol: float | None = None
    record_all_segments: bool = False
    use_tables: bool = True

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
        return cls(method="cvode", record_all_segments=True, use_tables=False)
