"""An in-memory dataset with the :class:`~neuroemu.dataset.source.TrialSource` interface, and a toy cell.

Used by the tests, the benchmarks and anyone who wants to train an emulator on responses held in
memory (for example results of :func:`neuroemu.simulate`). :func:`make_toy_dataset` builds trials of a
small integrate-and-fire-like neuron in NumPy (exponential synaptic filter, threshold, reset), which a
one-layer network can learn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from neuroemu.errors import DatasetError
from neuroemu.inputs.spikes import InputSpikes
from neuroemu.simulation.result import spike_times_to_train

__all__ = ["MemoryTrial", "InMemoryDataset", "make_toy_dataset", "split_indices"]


@dataclass
class MemoryTrial:
    """One trial: inputs and the cell's response (the fields of ``neuroemu.dataset.trial.Trial`` used here)."""

    index: int
    inputs: InputSpikes
    soma_v_1ms: np.ndarray
    spike_times_ms: np.ndarray
    dend_v_1ms: np.ndarray | None = None
    exc_transmitted: np.ndarray | None = None
    inh_transmitted: np.ndarray | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0):
    """Random split of ``range(n)`` by trial into (train, val, test) index arrays (sorted)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    n_val = min(n_val, n - n_train)
    return (np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_val]), np.sort(perm[n_train + n_val:]))


class InMemoryDataset:
    """Trials held in memory, read through the same methods as ``NeuroDataset``."""

    def __init__(self, trials: list[MemoryTrial], n_exc: int, n_inh: int, duration_ms: int,
                 config: dict[str, Any] | None = None, path: str | None = None) -> None:
        if not trials:
            raise DatasetError("InMemoryDataset needs at least one trial")
        self.trials = trials
        self.n_exc = int(n_exc)
        self.n_inh = int(n_inh)
        self.duration_ms = int(duration_ms)
        self.config = dict(config or {})
        self.path = path
        for t in trials:
            if t.soma_v_1ms.shape[0] != self.duration_ms:
                raise DatasetError(f"trial {t.index}: soma trace has {t.soma_v_1ms.shape[0]} samples, "
                                   f"expected {self.duration_ms}")

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return len(self.trials)

    @property
    def n_channels(self) -> int:
        """Input channels: excitatory then inhibitory."""
        return self.n_exc + self.n_inh

    def _check(self, i: int) -> int:
        if not 0 <= int(i) < self.n_trials:
            raise DatasetError(f"trial index {i} out of range 0..{self.n_trials - 1}")
        return int(i)

    def trial(self, i: int) -> MemoryTrial:
        """The trial record."""
        return self.trials[self._check(i)]

    def dense_inputs(self, i: int, start_ms: int, stop_ms: int, inputs: str = "presynaptic") -> np.ndarray:
        """uint8 (stop - start, n_channels), excitatory first; ``transmitted`` keeps released events only."""
        tr = self.trial(i)
        ev = tr.inputs
        if inputs == "transmitted":
            exc = ev.exc if tr.exc_transmitted is None else ev.exc[np.asarray(tr.exc_transmitted, bool)]
            inh = ev.inh if tr.inh_transmitted is None else ev.inh[np.asarray(tr.inh_transmitted, bool)]
            ev = InputSpikes(exc, inh)
        elif inputs != "presynaptic":
            raise DatasetError(f"inputs must be 'presynaptic' or 'transmitted', got {inputs!r}")
        return ev.dense(self.n_exc, start_ms, stop_ms, n_inh=self.n_inh)

    def spike_train(self, i: int) -> np.ndarray:
        """uint8 per ms, spike at t -> bin floor(t)."""
        return spike_times_to_train(self.trial(i).spike_times_ms, self.duration_ms)

    def soma_v(self, i: int) -> np.ndarray:
        """float32 soma voltage per ms (mV)."""
        return np.asarray(self.trial(i).soma_v_1ms, dtype=np.float32)

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0):
        """(train, val, test) trial indices."""
        return split_indices(self.n_trials, fractions, seed)


def _toy_cell(drive: np.ndarray, kernel: np.ndarray, threshold: float) -> tuple[np.ndarray, list[int]]:
    """Threshold-and-reset on a filtered drive: at a crossing, the drive is pulled back to 0 with the
    filter's memory (as the I&F neuron of reference 7)."""
    d = drive.copy()
    spikes: list[int] = []
    t, n, L = 0, d.shape[0], kernel.shape[0]
    while True:
        above = np.flatnonzero(d[t:] > threshold)
        if above.size == 0:
            break
        s = t + int(above[0])
        spikes.append(s)
        if s + 1 >= n:
            break
        m = min(L, n - s - 1)
        d[s + 1:s + 1 + m] -= d[s + 1] * kernel[:m]
        t = s + 1
    return d, spikes


def make_toy_dataset(n_trials: int = 40, n_exc: int = 16, n_inh: int = 4, duration_ms: int = 1000,
                     rate_per_ms: float = 0.02, tau_ms: float = 10.0, seed: int = 0,
                     with_dendrites: bool = False, release_probability: float | None = None) -> InMemoryDataset:
    """Trials of a toy integrate-and-fire-like neuron (NumPy): Bernoulli inputs (rate varying per trial),
    fixed positive/negative weights, exponential filter ``exp(-n/tau)``, threshold at -55 mV, reset to
    -75 mV. Spike at bin t is stored as time t + 0.5 ms. ``with_dendrites`` adds float16 "dendritic"
    voltages (one per excitatory channel); ``release_probability`` adds transmitted masks."""
    rng = np.random.default_rng(seed)
    n_ch = n_exc + n_inh
    w = np.concatenate([rng.uniform(0.5, 1.5, n_exc), -rng.uniform(0.5, 1.5, n_inh)])
    L = int(7 * tau_ms) + 1
    kernel = np.exp(-np.arange(L) / tau_ms)
    mean_drive = rate_per_ms * w.sum() * kernel.sum()
    sd_drive = np.sqrt(rate_per_ms * (w ** 2).sum() * (kernel ** 2).sum())
    threshold = mean_drive + 2.0 * sd_drive
    gain = 20.0 / threshold  # mV per drive unit: -75 mV at rest, -55 mV at threshold
    trials = []
    for i in range(n_trials):
        rate = rate_per_ms * rng.uniform(0.6, 1.4)
        x = (rng.random((duration_ms, n_ch)) < rate).astype(np.uint8)
        drive = np.convolve((x @ w), kernel)[:duration_ms] if duration_ms else np.zeros(0)
        d, spikes = _toy_cell(drive, kernel, threshold)
        v = (-75.0 + gain * d).astype(np.float32)
        v[spikes] = 20.0  # the spike itself (removed by the -55 mV clip of the soma target)
        inputs = InputSpikes.from_dense(x, n_exc=n_exc)
        dend = None
        if with_dendrites:
            own = np.stack([np.convolve(x[:, c], kernel)[:duration_ms] for c in range(n_exc)])
            dend = (-70.0 + 3.0 * own + 0.5 * (d / threshold)[None, :] * 10).astype(np.float16)
        exc_t = inh_t = None
        if release_probability is not None:
            exc_t = rng.random(inputs.exc.shape[0]) < release_probability
            inh_t = rng.random(inputs.inh.shape[0]) < release_probability
        trials.append(MemoryTrial(i, inputs, v, np.asarray(spikes, dtype=np.float64) + 0.5, dend, exc_t, inh_t,
                                  seed=seed * 100003 + i, params={"rate_per_ms": rate}))
    cfg = {"cell": {"kind": "toy", "n_exc": n_exc, "n_inh": n_inh, "tau_ms": tau_ms}, "seed": seed,
           "n_trials": n_trials, "duration_ms": duration_ms, "rate_per_ms": rate_per_ms}
    return InMemoryDataset(trials, n_exc, n_inh, duration_ms, cfg)
