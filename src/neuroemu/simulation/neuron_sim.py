"""Drive the NEURON L5 pyramidal cell with input spike trains and record its response.

Input events are delivered with one ``NetCon(None, synapse)`` per synapse, queued with
``nc.event(t)`` from an ``FInitializeHandler`` (works with fixed step and CVode alike). Somatic
and nexus voltages are recorded, resampled to a 1-ms grid (t = 0, 1, ..., T-1 ms) and to the
published 0.125-ms grid on which output spikes are detected (a sample above -25 mV that is larger
than both neighbours, reference section 2.4).

With ``SolverConfig(coreneuron=True)`` (the default) fixed-step trials run in CoreNEURON, in
memory (``pc.psolve``), with the same recordings; see :class:`SolverConfig` for when NEURON is used.
CoreNEURON cannot record at 1-ms intervals (``Vector.record(ref, Dt)`` breaks there), so recorded
dendrites are sampled at every step and the run is split into chunks of :data:`CHUNK_MS`: after
each chunk the 1-ms samples are kept (float16) and the step-by-step buffers emptied. Splitting a
run this way gives bit-identical results (CoreNEURON continues from its own state, event queue
included); memory stays at about n_segments x CHUNK_MS / dt doubles.
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
CHUNK_MS = 250.0
"""Length of the pieces a CoreNEURON trial with recorded dendrites is run in (bounds the buffers)."""
_warned_no_coreneuron = False


def _coreneuron_available(tables: bool) -> bool:
    """Load the CoreNEURON build of the mechanisms (with or without tables) unless a build is loaded
    already; can CoreNEURON run trials with ``use_tables=tables`` in this process?"""
    global _warned_no_coreneuron
    if mechanisms.loaded_mechanism_path() is None:
        mechanisms.load_mechanisms(coreneuron=True, tables=tables)
    if mechanisms.coreneuron_loaded() and mechanisms.tables_loaded() == bool(tables):
        return True
    if not _warned_no_coreneuron:
        _warned_no_coreneuron = True
        why = ("without CoreNEURON support" if not mechanisms.coreneuron_loaded() else
               "as the CoreNEURON build " + ("with" if mechanisms.tables_loaded() else "without") + " lookup tables")
        warnings.warn(
            f"SolverConfig(coreneuron=True, use_tables={bool(tables)}): this process loaded neuroemu's mechanisms "
            f"{why} ({mechanisms.loaded_mechanism_path()}), so trials run in classic NEURON (same equations, "
            "slower); build the simulator before anything else loads mechanisms to use CoreNEURON",
            RuntimeWarning, stacklevel=3)
    return False


def _grid_weights(t: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Columns and weights that interpolate samples at times ``t`` (increasing) linearly at ``grid``
    (within [t[0], t[-1]]), like ``np.interp``: value = a[cols] * (1 - w) + a[cols + 1] * w.

    When every grid time falls on a sample (to 1e-6 of a step, as with dt = 0.025 ms and a 1-ms grid)
    the weights are ``None`` and the samples are taken as they are.
    """
    cols = np.searchsorted(t, grid, side="right") - 1
    cols = np.clip(cols, 0, len(t) - 1)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    near = np.abs(t[cols] - grid) <= 1e-6 * step
    nxt = np.minimum(cols + 1, len(t) - 1)
    near_next = np.abs(t[nxt] - grid) <= 1e-6 * step
    if np.all(near | near_next):
        return np.where(near, cols, nxt), None
    cols = np.minimum(cols, len(t) - 2)
    w = (grid - t[cols]) / (t[cols + 1] - t[cols])
    return cols, np.clip(w, 0.0, 1.0)


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
        self._coreneuron = self.solver.uses_coreneuron() and _coreneuron_available(self.solver.use_tables)
        self.cell = L5PC(self.cell_config)
        h.load_file("stdrun.hoc")
        self._h = h
        self._exc_nc = [h.NetCon(None, syn) for syn in self.cell.exc_synapses]
        self._inh_nc = [h.NetCon(None, syn) for syn in self.cell.inh_synapses]
        for nc in self._exc_nc + self._inh_nc:
            nc.weight[0] = 1.0
            nc.delay = 0.0
        self._pending: list[tuple[list, np.ndarray]] = []
        self._queue_until = np.inf  # finitialize queues the events before this time (see _integrate)
        # NEURON keeps the handler's callable alive: give it only a weak reference to this simulator,
        # so that dropping the simulator frees its cell (a bound method would keep it simulated forever)
        self_ref = weakref.ref(self)

        def queue_events() -> None:
            sim = self_ref()
            if sim is not None:
                sim._queue_events(-np.inf, sim._queue_until)

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

    def _queue_events(self, t_lo: float = -np.inf, t_hi: float = np.inf) -> None:
        """Queue the pending input events with t_lo <= t < t_hi (one ``NetCon.event`` each)."""
        for netcons, events in self._pending:
            if np.isfinite(t_lo) or np.isfinite(t_hi):
                events = events[(events[:, 1] >= t_lo) & (events[:, 1] < t_hi)]
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

    def _integrate(self, duration_ms: int, use_coreneuron: bool, chunk_done=None) -> None:
        """Initialise and run to ``duration_ms``. In CoreNEURON with ``chunk_done`` the run is split into
        pieces of CHUNK_MS, and ``chunk_done()`` is called after each (to empty the recording buffers)."""
        h = self._h
        if not use_coreneuron:
            h.finitialize(self.cell.biophysics.v_init)
            h.continuerun(float(duration_ms))
            return
        from neuron import coreneuron

        coreneuron.enable = True
        coreneuron.verbose = 0  # no banner and progress bar on stdout
        dt = float(h.dt)
        ends = [float(duration_ms)]
        if chunk_done is not None:
            ends = [float(e) for e in np.arange(CHUNK_MS, float(duration_ms), CHUNK_MS)] + [float(duration_ms)]
        # Each psolve hands NEURON's event queue to CoreNEURON and back, so a chunked run queues only the
        # events up to half a ms past each chunk's end before running it (input times are whole ms: an
        # event at a chunk's end is queued with that chunk, and every event is queued before its time)
        limits = [e + 0.5 for e in ends[:-1]] + [np.inf]
        try:
            self._queue_until = limits[0]
            h.finitialize(self.cell.biophysics.v_init)
            for k, end in enumerate(ends):
                if k:
                    self._queue_events(limits[k - 1], limits[k])
                # half a step beyond the end: CoreNEURON counts whole steps from the current t, which
                # carries rounding; this gives exactly the steps of one uninterrupted run
                self._pc.psolve(end + 0.5 * dt)
                if abs(h.t - end) > 0.5 * dt * (1 + 1e-6):
                    raise SimulationError(f"CoreNEURON stopped at t = {h.t} ms instead of {end} ms")
                if chunk_done is not None:
                    chunk_done()
        finally:
            coreneuron.enable = False
            self._queue_until = np.inf

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
        grid_1ms = np.arange(duration_ms, dtype=np.float64)
        dend_vecs = []
        dend = None
        chunk_done = None
        if record_dendrites or self.solver.record_all_segments:
            # classic NEURON records at 1 ms itself; CoreNEURON records every step (see CHUNK_MS)
            step = None if (self.solver.record_all_segments or use_coreneuron) else 1.0
            for seg in self.cell.segments:
                vec = h.Vector()
                if step is None:
                    vec.record(seg._ref_v)
                else:
                    vec.record(seg._ref_v, step)
                dend_vecs.append(vec)
        pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if use_coreneuron and dend_vecs:
            dend = np.empty((len(dend_vecs), duration_ms), dtype=np.float16)
            filled = [0]
            prev: list = []  # the last sample of the previous chunk: (t, [v of each segment])

            def chunk_done() -> None:
                t_c = t_vec.as_numpy()
                i0 = filled[0]
                i1 = int(np.searchsorted(grid_1ms, t_c[-1] + 1e-6 * float(h.dt), side="right"))
                if i1 > i0:
                    # index 0 of t_all is the previous chunk's last sample (when there is one)
                    t_all = np.concatenate([[prev[0]], t_c]) if prev else t_c
                    cols, w = _grid_weights(t_all, grid_1ms[i0:i1])
                    off = 1 if prev else 0
                    for k, vec in enumerate(dend_vecs):
                        a = vec.as_numpy()

                        def take(idx: np.ndarray, a=a, k=k) -> np.ndarray:
                            got = a[np.maximum(idx - off, 0)]
                            return np.where(idx < off, prev[1][k], got) if off else got

                        dend[k, i0:i1] = take(cols) if w is None else take(cols) * (1.0 - w) + take(cols + 1) * w
                    filled[0] = i1
                prev[:] = [float(t_c[-1]), [float(vec.as_numpy()[-1]) for vec in dend_vecs]]
                pieces.append((t_c.copy(), soma_vec.as_numpy().copy(), nexus_vec.as_numpy().copy()))
                for vec in (t_vec, soma_vec, nexus_vec, *dend_vecs):
                    vec.resize(0)

        start = time.perf_counter()
        try:
            self._integrate(duration_ms, use_coreneuron, chunk_done)
        except RuntimeError as exc:  # a hoc error, e.g. CVode failing on a NaN voltage
            raise SimulationError(
                f"NEURON stopped at t = {h.t:.3f} ms (seed {seed}, solver {self.solver.method}): {exc}; "
                "the voltage probably became NaN/inf: check conductance scaling and solver settings") from exc
        finally:
            self._pending = []
        wall = time.perf_counter() - start

        if pieces:
            t, soma, nexus = (np.concatenate(parts) for parts in zip(*pieces))
            if filled[0] != duration_ms:
                raise SimulationError(f"recorded dendrites cover {filled[0]} of {duration_ms} ms")
        else:
            t = t_vec.as_numpy().copy()
            soma = soma_vec.as_numpy().copy()
            nexus = nexus_vec.as_numpy().copy()
        if not np.all(np.isfinite(soma)):
            bad = int(np.flatnonzero(~np.isfinite(soma))[0])
            raise SimulationError(f"somatic voltage became NaN/inf at t = {t[bad]:.3f} ms (seed {seed}); "
                                  "check conductance scaling and solver settings")
        grid_hi = np.arange(0.0, float(duration_ms), HIGH_RES_STEP_MS)
        soma_hi = np.interp(grid_hi, t, soma)
        spikes = detect_spikes(soma_hi, grid_hi)
        if dend_vecs and dend is None:
            if self.solver.record_all_segments:
                dend = np.stack([np.interp(grid_1ms, t, v.as_numpy()) for v in dend_vecs])
            else:
                dend = np.stack([v.as_numpy()[:duration_ms] for v in dend_vecs])
            dend = dend.astype(np.float16) if record_dendrites else None
        elif dend is not None and not record_dendrites:
            dend = None
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
