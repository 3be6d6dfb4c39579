"""Simulation stage: drive a cell with input spike trains and get its response.

- :func:`simulate` -- one call, arrays back (builds and caches the cell in this process);
- :func:`make_simulator` -- a reusable simulator for many trials (what dataset workers use).
"""
from __future__ import annotations

from typing import Any

from neuroemu.cells.config import CellConfig
from neuroemu.inputs.spikes import InputSpikes
from neuroemu.simulation.result import SimulationResult, spike_times_to_train
from neuroemu.simulation.solver import SolverConfig

__all__ = ["simulate", "make_simulator", "SimulationResult", "SolverConfig", "spike_times_to_train"]

_CACHE: dict[str, Any] = {}


def make_simulator(cell: CellConfig | dict | None = None, solver: SolverConfig | dict | None = None):
    """Build a simulator for ``cell``: the NEURON L5PC (``kind="l5pc"``) or the NumPy I&F (``kind="iaf"``).

    The returned object has ``n_exc``, ``n_inh``, ``segment_table()`` and
    ``run(inputs, duration_ms, seed, release_probability=None, record_dendrites=False)``.
    """
    if isinstance(cell, dict):
        cell = CellConfig.from_dict(cell)
    cell = cell or CellConfig()
    if isinstance(solver, dict):
        solver = SolverConfig.from_dict(solver)
    if cell.kind == "iaf":
        from neuroemu.simulation.iaf import IAFSimulator

        return IAFSimulator()
    from neuroemu.simulation.neuron_sim import L5PCSimulator

    return L5PCSimulator(cell, solver)


def cached_simulator(cell: CellConfig | None = None, solver: SolverConfig | None = None):
    """Like :func:`make_simulator` but reuses one simulator per configuration in this process.

    NEURON cannot unload mechanisms and building the cell costs about a second, so repeated calls
    with the same configuration share one cell; a different configuration replaces it.
    """
    cell = cell or CellConfig()
    solver = solver or SolverConfig()
    key = cell.to_json() + solver.to_json()
    if key not in _CACHE:
        _CACHE.clear()  # free the previous NEURON cell before building another
        _CACHE[key] = make_simulator(cell, solver)
    return _CACHE[key]


def simulate(inputs: InputSpikes, *, variant: str = "nmda", morphology: str | None = None,
             cell: CellConfig | None = None, duration_ms: int = 6000, seed: int = 0,
             release_probability: float | None = None, t0_quirk: bool = False,
             record_dendrites: bool = False, solver: SolverConfig | None = None) -> SimulationResult:
    """Replay ``inputs`` through a cell and return its response.

    ``cell`` overrides ``variant``/``morphology`` when given. Every event is transmitted unless
    ``release_probability`` is set (a seeded Bernoulli draw per event, seeded by ``seed``).
    """
    if cell is None:
        cell = CellConfig(variant=variant, morphology=morphology)
    sim = cached_simulator(cell, solver)
    return sim.run(inputs, duration_ms=duration_ms, seed=seed, release_probability=release_probability,
                   record_dendrites=record_dendrites, **({"t0_quirk": t0_quirk} if cell.kind == "l5pc" else {}))
