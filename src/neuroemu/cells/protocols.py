"""Physiological experiments on an assembled :class:`~neuroemu.cells.l5pc.L5PC`.

Each function runs a classic protocol on a built cell and returns a small dataclass of
measurements, so a user can check that *their* cell (another morphology, scaled conductances)
still shows the behaviours the Hay et al. (2011) model was built for:

- :func:`fi_curve` / :func:`rheobase`: somatic step currents, firing rate vs amplitude;
- :func:`bap_attenuation`: a somatic action potential backpropagating along the main apical trunk;
- :func:`bac_firing`: backpropagation-activated Ca spike firing (Larkum 1999; Hay 2011 protocol);
- :func:`nmda_plateau`: a local NMDA plateau in a thin basal branch under clustered synaptic input.

Every run starts from the cell's resting steady state: after ``finitialize(v_init)``,
backward-Euler steps of 1e9 ms relax every state to its fixed point (the classic NEURON
"custom init", :func:`steady_state_init`), so no simulated pre-stimulus settling is needed.
Runs work with the fixed step (``method="fixed"``, the default, ``dt_ms``) and with CVode
(``method="cvode"``; faster for long quiet stretches such as f-I steps). Time 0 is the end of that
initialisation. Each run builds its own stimuli and frees them afterwards, so protocols can be
called in any order on one cell.

Somatic spikes are counted as upward crossings of ``spike_threshold_mv`` (default -20 mV) on the
raw trace, which works on fixed-step and variable-step recordings alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from neuroemu.errors import ConfigError, SimulationError

METHODS = ("fixed", "cvode")
SPIKE_THRESHOLD_MV = -20.0


# --------------------------------------------------------------------------------------------
# Running the cell
# --------------------------------------------------------------------------------------------


def _check_method(method: str, dt_ms: float) -> None:
    if method not in METHODS:
        raise ConfigError(f"protocol method {method!r} is unknown; choose one of {list(METHODS)}")
    if not (0 < dt_ms <= 1.0):
        raise ConfigError(f"protocol dt_ms = {dt_ms}: must be in (0, 1] ms")


def steady_state_init(cell: Any, method: str = "fixed", dt_ms: float = 0.025, tol_mv: float = 1e-4,
                      max_steps: int = 5000) -> int:
    """Initialise ``cell`` at its resting steady state; t = 0 afterwards. Returns the relaxation steps taken.

    ``finitialize(cell.biophysics.v_init)``, then backward-Euler steps of 1e9 ms until the somatic
    and nexus voltages change by less than ``tol_mv`` per step (``max_steps`` at most; some hundred
    are typical). Leaves the integrator as ``method`` asks (CVode on or off, ``h.dt = dt_ms``,
    ``secondorder`` 0) and restarts the recording vectors at t = 0.
    """
    from neuron import h

    _check_method(method, dt_ms)
    h.load_file("stdrun.hoc")  # steps_per_ms and friends, whichever protocol runs first
    h.celsius = cell.biophysics.celsius
    cv = h.CVode()
    cv.active(0)
    h.secondorder = 0
    h.finitialize(cell.biophysics.v_init)
    h.t = -1e9 * (max_steps + 2)
    h.dt = 1e9
    probes = (cell.soma_segment, cell.nexus_segment)
    prev = [seg.v for seg in probes]
    steps = 0
    while steps < max_steps:
        h.fadvance()
        steps += 1
        now = [seg.v for seg in probes]
        if max(abs(a - b) for a, b in zip(now, prev)) < tol_mv:
            break
        prev = now
    h.dt = dt_ms
    h.t = 0.0
    if method == "cvode":
        cv.active(1)
        cv.re_init()
    else:
        h.steps_per_ms = 1.0 / dt_ms
        h.fcurrent()
    h.frecord_init()
    return steps


@dataclass
class _Run:
    t: np.ndarray
    v: list[np.ndarray]


def _simulate(cell: Any, tstop_ms: float, probes: Sequence[Any], method: str, dt_ms: float,
              events: Sequence[tuple[Any, float]] = (), breakpoints: Sequence[float] = ()) -> _Run:
    """Run ``cell`` from its steady state for ``tstop_ms`` and record ``v`` at the ``probes`` segments.

    ``events`` are ``(NetCon, time)`` pairs delivered after initialisation; ``breakpoints`` are
    times CVode must not step over (onsets of played waveforms).
    """
    from neuron import h

    _check_method(method, dt_ms)
    h.load_file("stdrun.hoc")
    t_vec = h.Vector().record(h._ref_t)
    v_vecs = [h.Vector().record(seg._ref_v) for seg in probes]
    steady_state_init(cell, method, dt_ms)
    cv = h.CVode()
    for nc, t in events:
        nc.event(float(t))
    if method == "cvode":
        for t in breakpoints:
            cv.event(float(t))
    try:
        h.continuerun(float(tstop_ms))
    except RuntimeError as exc:  # a hoc error (e.g. CVode failing on NaN)
        raise SimulationError(f"protocol simulation failed at t = {h.t:.3f} ms: {exc}") from exc
    t = t_vec.as_numpy().copy()
    vs = [v.as_numpy().copy() for v in v_vecs]
    for i, v in enumerate(vs):
        if not np.all(np.isfinite(v)):
            bad = int(np.flatnonzero(~np.isfinite(v))[0])
            raise SimulationError(f"voltage at {probes[i]} became NaN/inf at t = {t[bad]:.3f} ms")
    return _Run(t, vs)


def spike_times(t: np.ndarray, v: np.ndarray, threshold_mv: float = SPIKE_THRESHOLD_MV) -> np.ndarray:
    """Times (ms) of upward crossings of ``threshold_mv`` (linearly interpolated between samples)."""
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    idx = np.flatnonzero((v[:-1] < threshold_mv) & (v[1:] >= threshold_mv))
    frac = (threshold_mv - v[idx]) / (v[idx + 1] - v[idx])
    return t[idx] + frac * (t[idx + 1] - t[idx])


def longest_time_above(t: np.ndarray, v: np.ndarray, threshold_mv: float) -> float:
    """Duration (ms) of the longest continuous interval with ``v > threshold_mv``."""
    t = np.asarray(t, dtype=np.float64)
    above = np.asarray(v) > threshold_mv
    if not above.any():
        return 0.0
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return float(np.max(t[stops] - t[starts]))


def _iclamp(seg: Any, delay: float, dur: float, amp: float) -> Any:
    from neuron import h

    ic = h.IClamp(seg)
    ic.delay, ic.dur, ic.amp = float(delay), float(dur), float(amp)
    return ic


def _epsc_clamp(seg: Any, onset_ms: float, amp_nA: float, tau_rise_ms: float, tau_decay_ms: float,
                tstop_ms: float) -> tuple[Any, Any, Any]:
    """An IClamp whose amplitude follows a double-exponential EPSC with peak ``amp_nA`` from ``onset_ms``."""
    from neuron import h

    if not 0 < tau_rise_ms < tau_decay_ms:
        raise ConfigError(f"EPSC time constants: need 0 < tau_rise < tau_decay, got {tau_rise_ms}, {tau_decay_ms}")
    step = 0.025
    s = np.arange(0.0, max(tstop_ms - onset_ms, 0.0) + step, step)
    tp = tau_rise_ms * tau_decay_ms / (tau_decay_ms - tau_rise_ms) * math.log(tau_decay_ms / tau_rise_ms)
    norm = math.exp(-tp / tau_decay_ms) - math.exp(-tp / tau_rise_ms)
    wave = amp_nA * (np.exp(-s / tau_decay_ms) - np.exp(-s / tau_rise_ms)) / norm
    times = np.concatenate([[0.0, onset_ms], onset_ms + s])
    values = np.concatenate([[0.0, 0.0], wave])
    ic = h.IClamp(seg)
    ic.delay, ic.dur, ic.amp = 0.0, 1e9, 0.0
    t_vec, a_vec = h.Vector(times), h.Vector(values)
    a_vec.play(ic._ref_amp, t_vec, 1)
    return ic, t_vec, a_vec


def _path_distance(cell: Any, seg: Any) -> float:
    from neuron import h

    return float(h.distance(cell.soma_segment, seg))


# --------------------------------------------------------------------------------------------
# f-I curve
# --------------------------------------------------------------------------------------------


@dataclass
class FICurve:
    """Somatic firing under current steps.

    amps_nA, spike_counts, rates_hz (count / step duration), first_spike_latency_ms (from step
    onset; NaN when no spike), rheobase_nA (smallest amplitude with at least one spike; None if none fired),
    duration_ms (step length).
    """

    amps_nA: np.ndarray
    spike_counts: np.ndarray
    rates_hz: np.ndarray
    first_spike_latency_ms: np.ndarray
    rheobase_nA: float | None
    duration_ms: float

    def rate_at(self, amp_nA: float) -> float:
        """Rate (Hz) at one of the tested amplitudes."""
        hits = np.flatnonzero(np.isclose(self.amps_nA, amp_nA))
        if not hits.size:
            raise KeyError(f"amplitude {amp_nA} nA was not tested; tested: {self.amps_nA.tolist()}")
        return float(self.rates_hz[hits[0]])


def _step_spikes(cell: Any, amp: float, duration_ms: float, delay_ms: float, method: str, dt_ms: float,
                 threshold_mv: float) -> np.ndarray:
    ic = _iclamp(cell.soma_segment, delay_ms, duration_ms, amp)
    run = _simulate(cell, delay_ms + duration_ms, [cell.soma_segment], method, dt_ms)
    del ic
    times = spike_times(run.t, run.v[0], threshold_mv)
    return times[times >= delay_ms] - delay_ms


def fi_curve(cell: Any, amps_nA: Sequence[float], duration_ms: float = 500.0, delay_ms: float = 20.0,
             method: str = "fixed", dt_ms: float = 0.025,
             spike_threshold_mv: float = SPIKE_THRESHOLD_MV) -> FICurve:
    """Inject somatic current steps of ``amps_nA`` (one run each, from rest) and count spikes.

    Rates are spikes / step duration (``duration_ms``); the published Hay f-I curve used 2-s steps,
    shorter steps give somewhat higher rates (less adaptation).
    """
    amps = np.asarray(list(amps_nA), dtype=np.float64)
    if amps.ndim != 1 or amps.size == 0 or not np.all(np.isfinite(amps)):
        raise ConfigError(f"fi_curve: amps_nA must be a non-empty list of finite numbers, got {amps_nA!r}")
    if not duration_ms > 0:
        raise ConfigError(f"fi_curve: duration_ms = {duration_ms}: must be > 0")
    counts, latency = [], []
    for amp in amps:
        times = _step_spikes(cell, float(amp), duration_ms, delay_ms, method, dt_ms, spike_threshold_mv)
        counts.append(len(times))
        latency.append(float(times[0]) if len(times) else math.nan)
    counts_arr = np.asarray(counts, dtype=np.int64)
    fired = np.flatnonzero(counts_arr > 0)
    rheo = float(np.min(amps[fired])) if fired.size else None
    return FICurve(amps, counts_arr, counts_arr / (duration_ms / 1000.0), np.asarray(latency), rheo,
                   float(duration_ms))


def rheobase(cell: Any, duration_ms: float = 500.0, lo_nA: float = 0.0, hi_nA: float = 2.0,
             tol_nA: float = 0.02, method: str = "fixed", dt_ms: float = 0.025) -> float | None:
    """Smallest step amplitude (nA, within ``tol_nA``) evoking a spike in ``duration_ms``; bisection.

    Returns None if even ``hi_nA`` does not make the cell fire. ``lo_nA`` must not fire.
    """
    def fires(amp: float) -> bool:
        return len(_step_spikes(cell, amp, duration_ms, 20.0, method, dt_ms, SPIKE_THRESHOLD_MV)) > 0

    if not fires(hi_nA):
        return None
    if fires(lo_nA):
        raise SimulationError(f"rheobase: the cell already fires at lo_nA = {lo_nA} nA")
    while hi_nA - lo_nA > tol_nA:
        mid = 0.5 * (lo_nA + hi_nA)
        if fires(mid):
            hi_nA = mid
        else:
            lo_nA = mid
    return hi_nA


# --------------------------------------------------------------------------------------------
# Backpropagating action potential
# --------------------------------------------------------------------------------------------


def apical_main_path(cell: Any) -> list[Any]:
    """Apical sections from the apical root to the tip farthest from the soma (the path holding the nexus)."""
    from neuroemu.cells.segments import apical_path_to_farthest_tip

    return apical_path_to_farthest_tip(cell.sections)


def main_trunk_segments(cell: Any, beyond_nexus: bool = False) -> list[Any]:
    """Segments on the main apical path from the apical root to the nexus (inclusive).

    The path is the one from the apical root to the nexus section; with ``beyond_nexus`` it goes on
    to the farthest apical tip when the nexus lies on that path (it does by construction).
    """
    apical = list(cell.sections.apical)
    members = set(apical)
    nexus_sec = cell.nexus_segment.sec
    if beyond_nexus:
        path = apical_main_path(cell)
        if nexus_sec in path:
            return [seg for sec in path for seg in sec]
    chain = [nexus_sec]
    while True:
        parent = chain[-1].parentseg()
        if parent is None or parent.sec not in members:
            break
        chain.append(parent.sec)
    segs: list[Any] = []
    for sec in reversed(chain):
        for seg in sec:
            if sec == nexus_sec and seg.x > cell.nexus_segment.x + 1e-9:
                break
            segs.append(seg)
    return segs


@dataclass
class BAPResult:
    """A somatic action potential recorded along the main apical trunk.

    distances_um: path distance of each recording site (the soma first, at 0, then the trunk to the
    nexus); amplitudes_mV: peak of the first action potential minus the pre-pulse voltage at each
    site; peak_times_ms: time of that peak relative to the somatic peak (where the voltage is still
    rising at the end of the measurement window, the window end); n_somatic_spikes: spikes the
    pulse evoked in the whole run (a Ca-driven second spike is common in the Hay 5b model).
    """

    distances_um: np.ndarray
    amplitudes_mV: np.ndarray
    peak_times_ms: np.ndarray
    n_somatic_spikes: int
    soma_amplitude_mV: float
    nexus_amplitude_mV: float
    nexus_distance_um: float

    def amplitude_at(self, distance_um: float) -> float:
        """Amplitude (mV) at a path distance, linearly interpolated along the trunk."""
        if not self.distances_um[0] <= distance_um <= self.distances_um[-1]:
            raise ValueError(f"distance {distance_um} um outside the recorded trunk "
                             f"({self.distances_um[0]:.0f}..{self.distances_um[-1]:.0f} um)")
        return float(np.interp(distance_um, self.distances_um, self.amplitudes_mV))

    def attenuation(self, distance_um: float = 600.0) -> float:
        """Somatic amplitude divided by the amplitude at ``distance_um`` (> 1 means attenuation)."""
        return self.soma_amplitude_mV / self.amplitude_at(distance_um)


def bap_attenuation(cell: Any, amp_nA: float = 4.0, pulse_ms: float = 2.0, delay_ms: float = 10.0,
                    window_ms: float = 40.0, propagation_ms: float = 5.0, method: str = "fixed",
                    dt_ms: float = 0.025) -> BAPResult:
    """Evoke a somatic spike with a brief pulse and measure its amplitude along the trunk to the nexus.

    The default 2-ms, 4-nA pulse evokes a single action potential in the Hay 5b cells; longer
    pulses (e.g. Hay's 5 ms at 1.9 nA) keep depolarising the soma after the spike and often evoke a
    second, Ca-driven spike.

    Only the first action potential is measured: at every site the peak is taken between the pulse
    onset and ``propagation_ms`` after the somatic peak (and before a second somatic spike), so a
    later spike or a dendritic Ca spike does not count. Amplitude = peak minus the pre-pulse voltage;
    peak times are relative to the somatic peak.
    """
    trunk = main_trunk_segments(cell)
    probes = [cell.soma_segment, *trunk]
    dist = np.array([_path_distance(cell, seg) for seg in probes])
    ic = _iclamp(cell.soma_segment, delay_ms, pulse_ms, amp_nA)
    run = _simulate(cell, delay_ms + window_ms, probes, method, dt_ms)
    del ic
    soma = run.v[0]
    crossings = spike_times(run.t, soma)
    crossings = crossings[crossings >= delay_ms]
    if not crossings.size:
        raise SimulationError(f"bap_attenuation: a {pulse_ms}-ms pulse of {amp_nA} nA evoked no somatic spike; "
                              "raise amp_nA")
    first = (run.t >= crossings[0]) & (run.t <= crossings[0] + 2.0)
    t_peak = float(run.t[first][np.argmax(soma[first])])
    t_end = t_peak + propagation_ms
    if crossings.size > 1:
        t_end = min(t_end, float(crossings[1]))
    pre = run.t <= delay_ms
    win = (run.t >= delay_ms) & (run.t <= t_end)
    amps, peaks = [], []
    for v in run.v:
        base = float(v[pre][-1])
        i = int(np.argmax(np.where(win, v, -np.inf)))
        amps.append(float(v[i]) - base)
        peaks.append(float(run.t[i]) - t_peak)
    order = np.argsort(dist, kind="stable")
    amps_arr, peaks_arr = np.asarray(amps)[order], np.asarray(peaks)[order]
    return BAPResult(dist[order], amps_arr, peaks_arr, int(crossings.size), float(amps[0]), float(amps[-1]),
                     float(dist[-1]))


# --------------------------------------------------------------------------------------------
# BAC firing
# --------------------------------------------------------------------------------------------


@dataclass
class BACTrial:
    """One condition of the BAC protocol.

    n_somatic_spikes; ca_spike (the dendritic site stayed above ``ca_threshold_mv`` for at least
    ``ca_min_duration_ms``); ca_duration_ms (longest time above threshold); dend_peak_mV; the traces
    (t, soma, dendrite) for plotting.
    """

    n_somatic_spikes: int
    ca_spike: bool
    ca_duration_ms: float
    dend_peak_mV: float
    t: np.ndarray = field(repr=False)
    soma_v: np.ndarray = field(repr=False)
    dend_v: np.ndarray = field(repr=False)


@dataclass
class BACResult:
    """BAC firing: somatic pulse alone, distal EPSC alone, and both (EPSC ``pair_delay_ms`` after the pulse).

    ``bac_firing`` is True when the pair gives a dendritic Ca spike and a burst (at least
    ``min_burst`` somatic spikes, and no fewer than the pulse alone gives) while neither stimulus
    alone gives a Ca spike, and the distal EPSC alone gives fewer than ``min_burst`` spikes.
    """

    soma_only: BACTrial
    dend_only: BACTrial
    combined: BACTrial
    site: str
    site_distance_um: float
    min_burst: int = 2

    @property
    def bac_firing(self) -> bool:
        """Whether the cell shows BAC firing (see class docstring)."""
        c, s, d = self.combined, self.soma_only, self.dend_only
        return (c.ca_spike and c.n_somatic_spikes >= max(self.min_burst, s.n_somatic_spikes)
                and not s.ca_spike and not d.ca_spike and d.n_somatic_spikes < self.min_burst)

    def summary(self) -> dict[str, Any]:
        """Spikes, Ca spike and its duration per condition, as a plain dict."""
        out: dict[str, Any] = {"site": self.site, "site_distance_um": round(self.site_distance_um, 1)}
        for name in ("soma_only", "dend_only", "combined"):
            tr = getattr(self, name)
            out[name] = {"spikes": tr.n_somatic_spikes, "ca_spike": tr.ca_spike,
                         "ca_duration_ms": round(tr.ca_duration_ms, 1), "dend_peak_mV": round(tr.dend_peak_mV, 1)}
        out["bac_firing"] = self.bac_firing
        return out


def _dendritic_site(cell: Any, distance_um: float | None) -> Any:
    """The nexus segment, or the trunk segment whose distance is closest to ``distance_um``."""
    if distance_um is None:
        return cell.nexus_segment
    path = main_trunk_segments(cell, beyond_nexus=True)
    return min(path, key=lambda seg: abs(_path_distance(cell, seg) - distance_um))


def bac_firing(cell: Any, soma_amp_nA: float = 1.9, soma_dur_ms: float = 5.0, dend_amp_nA: float = 0.5,
               tau_rise_ms: float = 0.5, tau_decay_ms: float = 5.0, pair_delay_ms: float = 5.0,
               dend_distance_um: float | None = None, onset_ms: float = 10.0, window_ms: float = 60.0,
               ca_threshold_mv: float = -10.0, ca_min_duration_ms: float = 10.0, min_burst: int = 2,
               method: str = "fixed", dt_ms: float = 0.025) -> BACResult:
    """Larkum/Hay BAC protocol: a somatic pulse, a distal double-exponential EPSC current, and both.

    The defaults are Hay et al. (2011): 1.9 nA for 5 ms at the soma; an EPSC of peak
    ``dend_amp_nA`` = 0.5 nA (tau rise/decay 0.5/5 ms), ``pair_delay_ms`` = 5 ms after the pulse
    onset in the combined condition. The EPSC goes into the nexus segment (or the segment of the
    main apical path nearest ``dend_distance_um``), where the dendritic voltage is recorded. On the
    5b biophysics the 1.9-nA, 5-ms pulse alone already evokes a Ca-driven spike doublet and, on
    cell1.asc, a brief dendritic Ca event just below the ``ca_min_duration_ms`` criterion; a brief
    pulse evoking a single action potential (``soma_amp_nA=4, soma_dur_ms=2``) tests BAC firing
    with a wider margin.
    """
    if not 0 < tau_rise_ms < tau_decay_ms:
        raise ConfigError(f"bac_firing: need 0 < tau_rise_ms < tau_decay_ms, got {tau_rise_ms}, {tau_decay_ms}")
    _check_method(method, dt_ms)
    site = _dendritic_site(cell, dend_distance_um)
    tstop = onset_ms + window_ms
    trials = {}
    for name, soma_on, dend_on in (("soma_only", True, False), ("dend_only", False, True),
                                   ("combined", True, True)):
        keep: list[Any] = []
        breakpoints = []
        if soma_on:
            keep.append(_iclamp(cell.soma_segment, onset_ms, soma_dur_ms, soma_amp_nA))
        if dend_on:
            t_dend = onset_ms + (pair_delay_ms if soma_on else 0.0)
            keep.extend(_epsc_clamp(site, t_dend, dend_amp_nA, tau_rise_ms, tau_decay_ms, tstop))
            breakpoints.append(t_dend)
        run = _simulate(cell, tstop, [cell.soma_segment, site], method, dt_ms, breakpoints=breakpoints)
        del keep
        soma_v, dend_v = run.v
        dur = longest_time_above(run.t, dend_v, ca_threshold_mv)
        trials[name] = BACTrial(len(spike_times(run.t, soma_v)), dur >= ca_min_duration_ms, dur,
                                float(dend_v.max()), run.t, soma_v, dend_v)
    site_name = f"{cell.sections.section_name(site.sec)}({site.x:.4f})"
    return BACResult(trials["soma_only"], trials["dend_only"], trials["combined"], site_name,
                     _path_distance(cell, site), min_burst)


# --------------------------------------------------------------------------------------------
# NMDA plateau in a basal branch
# --------------------------------------------------------------------------------------------


@dataclass
class PlateauResult:
    """Clustered synaptic input on one basal branch.

    branch (section name), n_synapses (activations delivered), n_sites (segments used),
    plateau_ms (longest time the branch's recording site stayed above ``threshold_mv``),
    peak_mV, n_somatic_spikes, traces t / dend_v / soma_v.
    """

    branch: str
    n_synapses: int
    n_sites: int
    plateau_ms: float
    peak_mV: float
    n_somatic_spikes: int
    threshold_mv: float
    t: np.ndarray = field(repr=False)
    dend_v: np.ndarray = field(repr=False)
    soma_v: np.ndarray = field(repr=False)


def thin_basal_branch(cell: Any, min_length_um: float = 60.0) -> int:
    """Index in ``cell.sections.basal`` of a thin terminal basal branch for clustered input.

    Among terminal basal sections at least ``min_length_um`` long (all terminal ones if none is),
    the one with the largest input resistance at its middle, computed at rest (0 Hz): the most
    electrically compact target, where clustered NMDA input depolarises most.
    """
    from neuron import h

    basal = list(cell.sections.basal)
    if not basal:
        raise ConfigError("thin_basal_branch: the cell has no basal sections")
    members = set(basal)
    parents = {p.sec for sec in basal for p in [sec.parentseg()] if p is not None and p.sec in members}
    terminal = [i for i, sec in enumerate(basal) if sec not in parents]
    candidates = [i for i in terminal if basal[i].L >= min_length_um] or terminal or list(range(len(basal)))
    h.load_file("stdrun.hoc")
    steady_state_init(cell)
    imp = h.Impedance()
    imp.loc(0.5, sec=cell.soma_segment.sec)
    imp.compute(0.0, 1)
    return max(candidates, key=lambda i: float(imp.input(0.5, sec=basal[i])))


def _resolve_branch(cell: Any, branch: int | str | None) -> int:
    basal = list(cell.sections.basal)
    if branch is None:
        return thin_basal_branch(cell)
    if isinstance(branch, str):
        names = [cell.sections.section_name(sec) for sec in basal]
        if branch not in names:
            raise ConfigError(f"nmda_plateau: no basal section named {branch!r} (have dend[0]..dend[{len(basal) - 1}])")
        return names.index(branch)
    if not 0 <= int(branch) < len(basal):
        raise ConfigError(f"nmda_plateau: branch index {branch} outside 0..{len(basal) - 1}")
    return int(branch)


def nmda_plateau(cell: Any, branch: int | str | None = None, n_synapses: int = 20, cluster_um: float = 40.0,
                 onset_ms: float = 20.0, jitter_ms: float = 5.0, window_ms: float = 150.0,
                 threshold_mv: float = -40.0, seed: int = 0, method: str = "fixed",
                 dt_ms: float = 0.025) -> PlateauResult:
    """Activate the cell's own excitatory synapses in a cluster on one basal branch, ``n_synapses`` times.

    The cluster is the branch's segments whose centres lie within ``cluster_um`` / 2 of the
    branch's middle (at least one segment). The cell has one excitatory synapse per segment;
    activations are spread round-robin over the cluster's segments (several events on one synapse
    add their conductances) at times ``onset_ms + U(0, jitter_ms)`` (seeded). The local voltage is
    recorded at the middle of the branch. With AMPA+NMDA synapses a plateau of tens of ms is
    expected; AMPA-only synapses give a brief EPSP.
    """
    from neuron import h

    if n_synapses < 1:
        raise ConfigError(f"nmda_plateau: n_synapses = {n_synapses}: must be >= 1")
    b = _resolve_branch(cell, branch)
    sec = cell.sections.basal[b]
    seg_index = {(s.sec, round(s.x, 9)): k for k, s in enumerate(cell.segments)}
    segs = sorted(sec, key=lambda seg: abs(seg.x - 0.5))
    cluster = [seg for seg in segs if abs(seg.x - 0.5) * sec.L <= cluster_um / 2.0] or segs[:1]
    channels = [seg_index[(seg.sec, round(seg.x, 9))] for seg in cluster]
    rng = np.random.default_rng(seed)
    times = onset_ms + np.sort(rng.uniform(0.0, jitter_ms, size=n_synapses))
    netcons = []
    events = []
    for i, t in enumerate(times):
        nc = h.NetCon(None, cell.exc_synapses[channels[i % len(channels)]])
        nc.weight[0] = 1.0
        nc.delay = 0.0
        netcons.append(nc)
        events.append((nc, float(t)))
    site = sec(0.5)
    run = _simulate(cell, onset_ms + window_ms, [cell.soma_segment, site], method, dt_ms, events=events)
    del netcons, events
    soma_v, dend_v = run.v
    return PlateauResult(cell.sections.section_name(sec), int(n_synapses), len(channels),
                         longest_time_above(run.t, dend_v, threshold_mv), float(dend_v.max()),
                         len(spike_times(run.t, soma_v)), threshold_mv, run.t, dend_v, soma_v)


__all__ = [
    "BACResult", "BACTrial", "BAPResult", "FICurve", "PlateauResult", "apical_main_path", "bac_firing",
    "bap_attenuation", "fi_curve", "longest_time_above", "main_trunk_segments", "nmda_plateau", "rheobase",
    "spike_times", "steady_state_init", "thin_basal_branch",
]
