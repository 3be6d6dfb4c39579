"""Reading datasets: :func:`read_shard` for one file and :class:`NeuroDataset` for a whole directory.

``NeuroDataset`` keeps an LRU cache of each trial's sparse inputs (sorted by time, with a per-ms offset
index), soma voltage and spike times, so that a dense (time x channel) window costs one slice and one scatter:
``dense_inputs(i, start, stop)``. :meth:`NeuroDataset.batch_inputs` fills a whole (batch, time, channel) array.
Shards are opened only while read (no open handles are kept), so a dataset object can be shared with
forked data-loader workers.

Example::

    ds = NeuroDataset("data/nmda")
    x = ds.dense_inputs(0, 1000, 1400)       # uint8 (400, 1278), excitatory columns first
    y = ds.spike_train(0)[1000:1400]          # uint8 (400,)
    train, valid, test = ds.split((0.8, 0.1, 0.1), seed=0)
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from neuroemu.dataset.format import MANIFEST_NAME, shard_relpath
from neuroemu.dataset.trial import Trial
from neuroemu.dataset.verify import VerifyReport, verify_dataset
from neuroemu.dataset.manifest import load_manifest
from neuroemu.dataset.shard import read_shard
from neuroemu.errors import DatasetError
from neuroemu.simulation.result import spike_times_to_train


def _segments(data: Any) -> Any:
    """A :class:`~neuroemu.cells.segments.SegmentTable` when the manifest holds one, else the stored dict/None."""
    if isinstance(data, dict) and str(data.get("format", "")).startswith("neuroemu.segment_table/"):
        try:
            from neuroemu.cells.segments import SegmentTable

            return SegmentTable.from_dict(data)
        except (ImportError, ValueError, TypeError):
            return data
    return data


@dataclass
class _Cached:
    times: np.ndarray    # int32 event times, sorted
    cols: np.ndarray     # int32 dense column (exc channel, or n_exc + inh channel)
    tx: np.ndarray | None  # bool transmitted flags (None: all transmitted)
    offsets: np.ndarray  # int64 (T + 1): events of ms t are [offsets[t], offsets[t+1])
    soma: np.ndarray
    nexus: np.ndarray
    spikes: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.times, self.cols, self.offsets, self.soma, self.nexus, self.spikes)) + (
            0 if self.tx is None else self.tx.nbytes)


class NeuroDataset:
    """A dataset directory opened for reading.

    path: the directory (with ``dataset.json``). ``segments`` is the cell's SegmentTable (None for the IAF; a
    plain ``{"format", "columns", "data"}`` dict for imported NeuronIO data). cache_bytes: memory budget of the
    in-memory trial cache
    (sparse inputs, soma/nexus voltage, spike times; LRU). check: verify each shard's content hashes when first
    loaded. Only trials whose shard exists are listed (``trial_indices``); an unfinished dataset is readable.
    """

    def __init__(self, path: str | Path, cache_bytes: int = 1 << 30, check: bool = True) -> None:
        self.path = Path(path)
        self.manifest = load_manifest(self.path)
        self.config: dict[str, Any] = self.manifest["config"]
        self.n_exc = int(self.manifest["n_exc"])
        self.n_inh = int(self.manifest["n_inh"])
        self.duration_ms = int(self.manifest["duration_ms"])
        self.segments = _segments(self.manifest.get("segments"))
        self.cache_bytes = int(cache_bytes)
        self.check = check
        self._files = {int(e["index"]): self.path / e.get("file", shard_relpath(int(e["index"])))
                       for e in self.manifest["shards"]}
        self.trial_indices: list[int] = sorted(i for i, p in self._files.items() if p.is_file())
        self.entries = {int(e["index"]): e for e in self.manifest["shards"]}
        self._cache: OrderedDict[int, _Cached] = OrderedDict()
        self._cached_bytes = 0

    # ---- description ---------------------------------------------------------------------------------------
    @property
    def n_trials(self) -> int:
        """Number of readable trials."""
        return len(self.trial_indices)

    @property
    def n_channels(self) -> int:
        """Number of dense input columns: n_exc + n_inh."""
        return self.n_exc + self.n_inh

    @property
    def complete(self) -> bool:
        """True when every trial the config asks for has a shard."""
        return self.n_trials == int(self.config.get("n_trials", self.n_trials))

    def __len__(self) -> int:
        return self.n_trials

    def __repr__(self) -> str:
        return (f"NeuroDataset({str(self.path)!r}, n_trials={self.n_trials}, n_channels={self.n_channels}, "
                f"duration_ms={self.duration_ms})")

    def shard_path(self, i: int) -> Path:
        """Path of trial ``i``'s shard (``DatasetError`` if the dataset has no such trial)."""
        try:
            return self._files[int(i)]
        except KeyError:
            raise DatasetError(f"{self.path}: no trial {i} (the dataset holds {self.n_trials} trials)") from None

    # ---- whole trials ----------------------------------------------------------------------------------------
    def trial(self, i: int, dend: bool = True) -> Trial:
        """Read trial ``i`` completely (dendritic voltages included when stored and ``dend``)."""
        return read_shard(self.shard_path(i), dend=dend, check=self.check)

    def _load(self, i: int) -> _Cached:
        c = self._cache.get(i)
        if c is not None:
            self._cache.move_to_end(i)
            return c
        t = read_shard(self.shard_path(i), dend=False, check=self.check)
        exc, inh = t.inputs.exc, t.inputs.inh
        times = np.concatenate([exc[:, 1], inh[:, 1]]).astype(np.int32)
        cols = np.concatenate([exc[:, 0], inh[:, 0] + self.n_exc]).astype(np.int32)
        tx = None
        if t.exc_transmitted is not None or t.inh_transmitted is not None:
            ex = np.ones(exc.shape[0], bool) if t.exc_transmitted is None else t.exc_transmitted.astype(bool)
            ih = np.ones(inh.shape[0], bool) if t.inh_transmitted is None else t.inh_transmitted.astype(bool)
            tx = np.concatenate([ex, ih])
        order = np.argsort(times, kind="stable")
        times, cols = times[order], cols[order]
        if tx is not None:
            tx = tx[order]
        offsets = np.searchsorted(times, np.arange(self.duration_ms + 1), side="left").astype(np.int64)
        c = _Cached(times, cols, tx, offsets, t.soma_v_1ms, t.nexus_v_1ms, t.spike_times_ms)
        self._cache[i] = c
        self._cached_bytes += c.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.nbytes
        return c

    def preload(self, indices: Sequence[int] | None = None) -> None:
        """Load trials into the cache ahead of time (all of them by default, within ``cache_bytes``)."""
        for i in self.trial_indices if indices is None else indices:
            self._load(int(i))

    # ---- arrays ----------------------------------------------------------------------------------------------
    def dense_inputs(self, i: int, start_ms: int = 0, stop_ms: int | None = None,
                     inputs: str = "presynaptic", out: np.ndarray | None = None) -> np.ndarray:
        """Dense binary inputs of trial ``i`` for [start_ms, stop_ms): uint8 (time, n_channels), exc first.

        inputs: ``"presynaptic"`` (every generated event) or ``"transmitted"`` (events that reached the cell).
        Times outside [0, duration) are zero (so windows may reach into the past before the trial).
        ``out`` (zeroed by this call) may be passed to avoid an allocation.
        """
        if inputs not in ("presynaptic", "transmitted"):
            raise ValueError(f"inputs must be 'presynaptic' or 'transmitted', got {inputs!r}")
        stop_ms = self.duration_ms if stop_ms is None else int(stop_ms)
        start_ms = int(start_ms)
        n = stop_ms - start_ms
        if n < 0:
            raise ValueError(f"stop_ms ({stop_ms}) must be >= start_ms ({start_ms})")
        if out is None:
            out = np.zeros((n, self.n_channels), dtype=np.uint8)
        else:
            out[...] = 0
        c = self._load(i)
        a, b = max(start_ms, 0), min(stop_ms, self.duration_ms)
        if b > a:
            lo, hi = c.offsets[a], c.offsets[b]
            t, col = c.times[lo:hi], c.cols[lo:hi]
            if inputs == "transmitted" and c.tx is not None:
                keep = c.tx[lo:hi]
                t, col = t[keep], col[keep]
            out[t - start_ms, col] = 1
        return out

    def batch_inputs(self, trials: Sequence[int], starts: Sequence[int], length: int,
                     inputs: str = "presynaptic", out: np.ndarray | None = None) -> np.ndarray:
        """Dense windows [start, start+length) of several trials: uint8 (batch, length, n_channels)."""
        if out is None:
            out = np.zeros((len(trials), int(length), self.n_channels), dtype=np.uint8)
        for k, (i, s) in enumerate(zip(trials, starts)):
            self.dense_inputs(int(i), int(s), int(s) + int(length), inputs=inputs, out=out[k])
        return out

    def spike_times(self, i: int) -> np.ndarray:
        """Output spike times of trial ``i`` (float64 ms)."""
        return self._load(i).spikes

    def spike_train(self, i: int) -> np.ndarray:
        """Binary output per ms of trial ``i`` (uint8, length duration_ms): spike at t -> bin floor(t)."""
        return spike_times_to_train(self._load(i).spikes, self.duration_ms)

    def soma_v(self, i: int) -> np.ndarray:
        """Somatic voltage of trial ``i`` at 1 ms (float32, mV)."""
        return self._load(i).soma

    def nexus_v(self, i: int) -> np.ndarray:
        """Nexus voltage of trial ``i`` at 1 ms (float32, mV; a soma copy for the IAF)."""
        return self._load(i).nexus

    def dend_v(self, i: int) -> np.ndarray | None:
        """Dendritic voltages of trial ``i`` (float16 (n_segments, T)), or ``None`` when not recorded."""
        return self.trial(i, dend=True).dend_v_1ms

    # ---- splits ----------------------------------------------------------------------------------------------
    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> list[list[int]]:
        """Split the trials (whole trials, never windows) into groups of the given fractions.

        The trial indices are shuffled with ``numpy.random.default_rng(seed)`` and cut in order; rounding goes
        to the last group. Each group is returned sorted.
        """
        fr = np.asarray(fractions, dtype=np.float64)
        if fr.ndim != 1 or fr.size == 0 or np.any(fr < 0) or fr.sum() <= 0:
            raise ValueError(f"fractions must be non-negative with a positive sum, got {list(fractions)}")
        fr = fr / fr.sum()
        idx = np.asarray(self.trial_indices)
        perm = idx[np.random.default_rng(seed).permutation(idx.size)]
        cuts = np.floor(np.cumsum(fr)[:-1] * idx.size + 1e-9).astype(int)
        return [sorted(int(x) for x in part) for part in np.split(perm, cuts)]

    def verify(self) -> VerifyReport:
        """Check every shard (see :func:`neuroemu.dataset.verify.verify_dataset`)."""
        return verify_dataset(self.path)


def open_dataset(path: str | Path, **kwargs: Any) -> NeuroDataset:
    """Open a dataset directory (alias of ``NeuroDataset(path)``); errors name the missing manifest."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"dataset not found: {p}")
    if not (p / MANIFEST_NAME).is_file():
        raise DatasetError(f"{p}: not a neuroemu dataset (no {MANIFEST_NAME})")
    return NeuroDataset(p, **kwargs)
