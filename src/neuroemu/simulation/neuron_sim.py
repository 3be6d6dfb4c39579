"""Drive the NEURON L5 pyramidal cell with input spike trains and record its response.

Input events are delivered with one ``NetCon(None, synapse)`` per synapse, queued with
``nc.event(t)`` from an ``FInitializeHandler`` (works with fixed step and CVode alike). Somatic
and nexus voltages are recorded, resampled to a 1-ms grid (t = 0, 1, ..., T-1 ms) and to the
published 0.125-ms grid on which output spikes are detected (a sample above -25 mV that is larger
than both neighbours, reference section 2.4).

With ``SolverConfig(coreneuron=True)`` (the default) fixed-step trials run in CoreNEURON, in
memory (``pc.psolve``), with the same recordings; see :class:`SolverConfig` for when NEURON is used.
"""
from __future__ import annotations

import time
import warnings
import weakref
from typing import Any

import numpy as np

from neuroemu.cells.config import CellConfig
from neuroemu.cells import mechanisms
from neuroemu.errors import SimulationError
from neuroemu.inputs.spikes import InputSpikes
from neuroemu.simulation.detection import detect_spikes
from neuroemu.simulation.release import release_rngs, transmitted_mask
from neuroemu.simulation.result import SimulationResult
from neuroemu.simulation.solver import SolverConfig

HIGH_RES_STEP_MS = 0.125
_warned_no_coreneuron = False


def _coreneuron_available() -> bool:
    """Load the CoreNEURON build of the mechanisms unless a build is loaded already; can CoreNEURON run?"""
    global _warned_no_coreneuron
    if mechanisms.loaded_mechanism_path() is None:
        mechanisms.load_mechanisms(coreneuron=True)
    if mechanisms.coreneuron_loaded():
        return True
    if not _warned_no_coreneuron:
        _warned_no_coreneuron = True
        warnings.warn(
            "SolverConfig(coreneuron=True): this process loaded neuroemu's mechanisms without CoreNEURON "
            f"support ({mechanisms.loaded_mechanism_path()}), so trials run in classic NEURON (same results, "
            "about half the speed); build the simulator before anything else loads mechanisms to use CoreNEURON",
            RuntimeWarning, stacklevel=3)
    return False


class L5PCSimulator:
    """A built L5PC plus its input NetCons; ``run`` replays one trial at a time.

    Build once per process (cell construction takes about a second), then call :meth:`run` for
    every trial. Only one NEURON cell is simulated at a time in a process.
    """

    def __init__(self, cell: CellConfig | None = None, solver: SolverConfig | None = None) -> None:
        from neuron import h

        from neuroemu.cells.l5pc import L5PC

        self.cell_config = cell or CellConfig()
        self.solver = solver or SolverConfig()
        # CoreNEURON needs its build of the mechanisms loaded before the cell loads the plain one
        self._coreneuron = self.solver.uses_coreneuron() and _coreneuron_available()
        self.cell = L5PC(self.cell_config)
        h.load_file("stdrun.hoc")
        self._h = h
        self._exc_nc = [h.NetCon(None, syn) for syn in self.cell.exc_synapses]
        self._inh_nc = [h.NetCon(None, syn) for syn in self.cell.inh_synapses]
        for nc in self._exc_nc + self._inh_nc:
            nc.weight[0] = 1.0
            nc.delay = 0.0
        self._pending: list[tuple[list, np.ndarray]] = []
        # NEURON keeps the handler's callable alive: give it only a weak reference to this simulator,
        # so that dropping the simulator frees its cell (a bound method would keep it simulated forever)
        self_ref = weakref.ref(self)

        def queue_events() -> None:
            sim = self_ref()
            if sim is not None:
                sim._queue_events()

        self._fih = h.FInitializeHandler(queue_events)

    @property
    def n_exc(self) -> int:
        """Number of excitatory input channels (= dendritic segments)."""
        return self.cell.n_segments

    @property
    def n_inh(self) -> int:
        """Number of inhibitory input channels (= dendritic segments)."""
        return self.cell.n_segments

    def segment_table(self):
        """The cell's segment table (channel order)."""
        return self.cell.segment_table()

    def _queue_events(self) -> None:
        for netcons, events in self._pending:
            for ch, t in events.tolist():
                netcons[ch].event(float(t))

    def _setup_solver(self, use_coreneuron: bool) -> None:
        h = self._h
        s = self.solver
        h.celsius = self.cell.biophysics.celsius
        cv = h.CVode()
        if s.method == "cvode":
            cv.active(1)
            if s.cvode_atol is not None:
                cv.atol(s.cvode_atol)
        else:
            cv.active(0)
            h.dt = s.dt_ms
            h.steps_per_ms = 1.0 / s.dt_ms
        h.secondorder = s.secondorder
        mechanisms.set_use_tables(s.use_tables)
        if use_coreneuron:
            h.cvode.cache_efficient(1)
            # CoreNEURON refuses a zero minimum NetCon delay; nc.event(t) delivers at t whatever the delay
            for nc in self._exc_nc + self._inh_nc:
                nc.delay = 1.0
            self._pc = h.ParallelContext()
            self._pc.set_maxstep(10)

    def _integrate(self, duration_ms: int, use_coreneuron: bool) -> None:
        h = self._h
        if not use_coreneuron:
            h.finitialize(self.cell.biophysics.v_init)
            h.continuerun(float(duration_ms))
            return
        from neuron import coreneuron

        coreneuron.enable = True
        coreneuron.verbose = 0  # no banner and progress bar on stdout
        try:
            h.finitialize(self.cell.biophysics.v_init)
            self._pc.psolve(float(duration_ms))
        finally:
            coreneuron.enable = False

    def run(self, inputs: InputSpikes, duration_ms: int = 6000, seed: int | None = 0,
            release_probability: float | None = None, record_dendrites: bool = False,
            t0_quirk: bool = False) -> SimulationResult:
        """Simulate one trial of ``duration_ms`` ms driven by ``inputs``; return the recorded response.

        Every event is transmitted unless ``release_probability`` (seeded by ``seed``) or
        ``t0_quirk`` say otherwise; the masks of transmitted events are returned when either is on.
        """
        h = self._h
        duration_ms = int(duration_ms)
        if duration_ms < 1:
            raise SimulationError(f"duration_ms = {duration_ms}: must be >= 1")
        inputs.validate(self.n_exc, duration_ms, source="inputs", n_inh=self.n_inh)
        stochastic = release_probability is not None or t0_quirk
        rng_exc, rng_inh = release_rngs(seed or 0)
        exc_mask = transmitted_mask(inputs.exc, rng_exc, release_probability, t0_quirk)
        inh_mask = transmitted_mask(inputs.inh, rng_inh, release_probability, t0_quirk)
        self._pending = [(self._exc_nc, inputs.exc[exc_mask]), (self._inh_nc, inputs.inh[inh_mask])]

        use_coreneuron = self._coreneuron and self.solver.uses_coreneuron(record_dendrites)
        self._setup_solver(use_coreneuron)
        t_vec = h.Vector().record(h._ref_t)
        soma_vec = h.Vector().record(self.cell.soma_segment._ref_v)
        nexus_vec = h.Vector().record(self.cell.nexus_segment._ref_v)
        dend_vecs = []
        if record_dendrites or self.solver.record_all_segments:
            step = None if self.solver.record_all_segments else 1.0
            for seg in self.cell.segments:
                vec = h.Vector()
                if step is None:
                    vec.record(seg._ref_v)
                else:
                    vec.record(seg._ref_v, step)
                dend_vecs.append(vec)

        start = time.perf_counter()
        try:
            self._integrate(duration_ms, use_coreneuron)
        except RuntimeError as exc:  # a hoc error, e.g. CVode failing on a NaN voltage
            raise SimulationError(
                f"NEURON stopped at t = {h.t:.3f} ms (seed {seed}, solver {self.solver.method}): {exc}; "
                "the voltage probably became NaN/inf: check conductance scaling and solver settings") from exc
        finally:
            self._pending = []
        wall = time.perf_counter() - start

        t = t_vec.as_numpy().copy()
        soma = soma_vec.as_numpy().copy()
        nexus = nexus_vec.as_numpy().copy()
        if not np.all(np.isfinite(soma)):
            bad = int(np.flatnonzero(~np.isfinite(soma))[0])
            raise SimulationError(f"somatic voltage became NaN/inf at t = {t[bad]:.3f} ms (seed {seed}); "
                                  "check conductance scaling and solver settings")
        grid_1ms = np.arange(duration_ms, dtype=np.float64)
        grid_hi = np.arange(0.0, float(duration_ms), HIGH_RES_STEP_MS)
        soma_hi = np.interp(grid_hi, t, soma)
        spikes = detect_spikes(soma_hi, grid_hi)
        dend = None
        if dend_vecs:
            if self.solver.record_all_segments:
                dend = np.stack([np.interp(grid_1ms, t, v.as_numpy()) for v in dend_vecs])
            else:
                dend = np.stack([v.as_numpy()[:duration_ms] for v in dend_vecs])
            dend = dend.astype(np.float16) if record_dendrites else None
        return SimulationResult(
            soma_v_1ms=np.interp(grid_1ms, t, soma).astype(np.float32),
            nexus_v_1ms=np.interp(grid_1ms, t, nexus).astype(np.float32),
            spike_times_ms=np.asarray(spikes, dtype=np.float64),
            dend_v_1ms=dend,
            exc_transmitted=exc_mask if stochastic else None,
            inh_transmitted=inh_mask if stochastic else None,
            config={**self.describe(duration_ms, seed, release_probability, t0_quirk),
                    "engine": "coreneuron" if use_coreneuron else "neuron"},
            wall_time_s=wall,
        )

    def describe(self, duration_ms: int, seed: int | None, release_probability: float | None,
                 t0_quirk: bool) -> dict[str, Any]:
        """The full configuration of a run, as stored with its output."""
        return {
            "cell": self.cell_config.to_dict(),
            "biophysics": self.cell.biophysics.to_dict(),
            "synapses": self.cell.synapse_config.to_dict(),
            "solver": self.solver.to_dict(),
            "duration_ms": int(duration_ms),
            "seed": seed,
            "release_probability": release_probability,
            "t0_quirk": bool(t0_quirk),
        }
