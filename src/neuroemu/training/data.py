"""Feeding trials to the emulator: the dataset protocol, window sampling (spec 8.7) and batches.

Training and evaluation use only the methods of :class:`TrialSource`, which
:class:`neuroemu.dataset.reader.NeuroDataset` provides and
:class:`neuroemu.training.memory_dataset.InMemoryDataset` imitates.
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from neuroemu.errors import ConfigError, DatasetError
from neuroemu.training.targets import DendriticPCA, soma_target

__all__ = ["trial_indices", "TrialSource", "open_dataset", "dataset_fingerprint", "dataset_info", "check_channels",
           "WindowSampler", "TargetCache", "window_inputs", "make_batch"]


@runtime_checkable
class TrialSource(Protocol):
    """What training and evaluation need from a dataset."""

    n_trials: int
    n_exc: int
    n_inh: int
    n_channels: int
    duration_ms: int
    config: dict

    def trial(self, i: int) -> Any:
        """Trial record with ``.inputs``, ``.soma_v_1ms``, ``.spike_times_ms``, optional ``.dend_v_1ms``."""

    def dense_inputs(self, i: int, start_ms: int, stop_ms: int, inputs: str = "presynaptic") -> np.ndarray:
        """uint8 (stop - start, n_channels), excitatory columns first."""

    def spike_train(self, i: int) -> np.ndarray:
        """uint8 per ms: a spike at t marks bin floor(t)."""

    def soma_v(self, i: int) -> np.ndarray:
        """float32 somatic voltage per ms (mV)."""

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> tuple:
        """(train_idx, val_idx, test_idx), by trial."""


def trial_indices(ds: "TrialSource") -> list[int]:
    """Indices of the dataset's readable trials (``trial_indices`` if it lists them, else 0..n-1)."""
    idx = getattr(ds, "trial_indices", None)
    return [int(i) for i in idx] if idx is not None else list(range(int(ds.n_trials)))


def open_dataset(path: str | Path) -> TrialSource:
    """Open a dataset directory with :class:`neuroemu.dataset.reader.NeuroDataset`."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset not found: {path}")
    try:
        from neuroemu.dataset.reader import open_dataset as _open
    except ImportError as e:  # pragma: no cover - the dataset package ships with neuroemu
        raise DatasetError(f"cannot open {path}: the dataset reader is unavailable ({e})") from e
    return _open(path)


def dataset_fingerprint(ds: TrialSource) -> str:
    """A short hash identifying the dataset: its own ``fingerprint`` if it has one, else its config
    (without the trial count, so an extended dataset keeps its fingerprint), channel counts and duration."""
    fp = getattr(ds, "fingerprint", None)
    if isinstance(fp, str) and fp:
        return fp
    cfg = dict(ds.config) if isinstance(ds.config, dict) else {"config": str(ds.config)}
    cfg.pop("n_trials", None)
    blob = json.dumps({"config": cfg, "n_exc": ds.n_exc, "n_inh": ds.n_inh, "duration_ms": ds.duration_ms},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dataset_info(ds: TrialSource) -> dict[str, Any]:
    """Dataset facts recorded in a run: path, fingerprint, channel counts, duration, cell description."""
    path = getattr(ds, "path", None)
    cfg = ds.config if isinstance(ds.config, dict) else {}
    return {"path": str(Path(path).resolve()) if path is not None else None,
            "fingerprint": dataset_fingerprint(ds), "n_trials": int(ds.n_trials), "n_exc": int(ds.n_exc),
            "n_inh": int(ds.n_inh), "n_channels": int(ds.n_channels), "duration_ms": int(ds.duration_ms),
            "cell": cfg.get("cell")}


def check_channels(ds: TrialSource, n_exc: int, n_inh: int, what: str) -> None:
    """Raise :class:`DatasetError` if the dataset's channel counts differ from the model's."""
    if (int(ds.n_exc), int(ds.n_inh)) != (int(n_exc), int(n_inh)):
        where = getattr(ds, "path", None) or "the dataset"
        raise DatasetError(
            f"{where} has {ds.n_exc} excitatory + {ds.n_inh} inhibitory = {ds.n_channels} input channels, but "
            f"{what} was made for {n_exc} + {n_inh} = {n_exc + n_inh}: the dataset comes from an incompatible cell")


def window_inputs(ds: TrialSource, trial: int, start_ms: int, stop_ms: int, inputs: str) -> np.ndarray:
    """uint8 (stop - start, n_channels) inputs; times outside [0, duration) are zeros."""
    n = stop_ms - start_ms
    out = np.zeros((n, ds.n_channels), dtype=np.uint8)
    a, b = max(0, start_ms), min(int(ds.duration_ms), stop_ms)
    if b > a:
        x = np.asarray(ds.dense_inputs(int(trial), a, b, inputs=inputs))
        if x.shape != (b - a, ds.n_channels):
            raise DatasetError(f"dataset returned inputs of shape {x.shape} for trial {trial} [{a}, {b}) ms; "
                               f"expected {(b - a, ds.n_channels)}")
        out[a - start_ms:b - start_ms] = x
    return out


class TargetCache:
    """Per-trial targets (spike train, soma target, dendritic PCs), kept in a small LRU cache."""

    def __init__(self, ds: TrialSource, soma_clip_mv: float, soma_offset_mv: float,
                 pca: DendriticPCA | None = None, max_trials: int = 256) -> None:
        self.ds = ds
        self.soma_clip_mv = soma_clip_mv
        self.soma_offset_mv = soma_offset_mv
        self.pca = pca
        self.max_trials = max_trials
        self._cache: OrderedDict[int, tuple] = OrderedDict()

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(spikes uint8 (T,), soma target float32 (T,), dendritic PCs float32 (T, n) or None)."""
        i = int(i)
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        spikes = np.asarray(self.ds.spike_train(i), dtype=np.uint8)
        soma = soma_target(self.ds.soma_v(i), self.soma_clip_mv, self.soma_offset_mv)
        dvt = None
        if self.pca is not None:
            d = getattr(self.ds.trial(i), "dend_v_1ms", None)
            if d is None:
                raise DatasetError(f"trial {i} has no dendritic voltages, but the model predicts dendritic PCs")
            dvt = self.pca.transform(d)
        item = (spikes, soma, dvt)
        self._cache[i] = item
        if len(self._cache) > self.max_trials:
            self._cache.popitem(last=False)
        return item


def _slice_pad(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    n = stop - start
    out = np.zeros((n,) + a.shape[1:], dtype=a.dtype)
    lo, hi = max(0, start), min(a.shape[0], stop)
    if hi > lo:
        out[lo - start:hi - start] = a[lo:hi]
    return out


def make_batch(ds: TrialSource, targets: TargetCache, trials: Sequence[int], ends: Sequence[int], window_ms: int,
               inputs: str) -> dict[str, np.ndarray]:
    """Windows [end - window, end) of the given trials: ``x`` uint8 (B, W, C), ``spikes`` float32 (B, W),
    ``soma`` float32 (B, W), ``dvt`` float32 (B, W, n) when dendritic targets are used."""
    xs, sp, so, dv = [], [], [], []
    for tr, end in zip(trials, ends):
        start = int(end) - window_ms
        xs.append(window_inputs(ds, int(tr), start, int(end), inputs))
        spikes, soma, dvt = targets.get(int(tr))
        sp.append(_slice_pad(spikes, start, int(end)))
        so.append(_slice_pad(soma, start, int(end)))
        if dvt is not None:
            dv.append(_slice_pad(dvt, start, int(end)))
    batch = {"x": np.stack(xs), "spikes": np.stack(sp).astype(np.float32), "soma": np.stack(so)}
    if dv:
        batch["dvt"] = np.stack(dv)
    return batch


class WindowSampler:
    """Which (trial, window end) pairs make training batch ``step`` -- a pure function of (seed, step).

    ``mode="published"`` (spec 8.7): batches come in groups of ``batches_per_group`` (48) that draw from
    one random "file" of ``group_size`` (128) training trials; each batch takes ``batch_size`` trials with
    replacement from the group and ``batch_size`` distinct end times from ``[min_end_ms, duration)``.
    ``mode="uniform"``: trials with replacement from all training trials, same end-time rule.
    Being stateless, the sampler resumes exactly at any step.
    """

    def __init__(self, train_trials: Sequence[int], duration_ms: int, batch_size: int, seed: int,
                 mode: str = "published", min_end_ms: int = 500, group_size: int = 128,
                 batches_per_group: int = 48) -> None:
        if mode not in ("published", "uniform"):
            raise ConfigError(f"TrainingConfig.sampling must be 'published' or 'uniform', got {mode!r}")
        if len(train_trials) == 0:
            raise DatasetError("no training trials: the split left the training set empty")
        if min_end_ms >= duration_ms:
            raise ConfigError(f"TrainingConfig.min_end_ms = {min_end_ms} but trials last only {duration_ms} ms: "
                              f"window ends are drawn from [min_end_ms, duration)")
        self.train = np.asarray(train_trials, dtype=np.int64)
        self.duration_ms = int(duration_ms)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.mode = mode
        self.min_end_ms = int(min_end_ms)
        self.group_size = int(group_size)
        self.batches_per_group = int(batches_per_group)

    def _group(self, g: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1, g])
        k = min(self.group_size, len(self.train))
        return rng.choice(self.train, size=k, replace=False)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(trial indices, window end times) for 0-based training step ``step``."""
        rng = np.random.default_rng([self.seed, 2, int(step)])
        pool = self._group(step // self.batches_per_group) if self.mode == "published" else self.train
        trials = rng.choice(pool, size=self.batch_size, replace=True)
        n_ends = self.duration_ms - self.min_end_ms
        ends = self.min_end_ms + rng.choice(n_ends, size=self.batch_size, replace=self.batch_size > n_ends)
        return trials, ends

    def state(self) -> dict[str, Any]:
        """Everything that defines the sequence of batches (saved in checkpoints)."""
        return {"train": self.train.tolist(), "duration_ms": self.duration_ms, "batch_size": self.batch_size,
                "seed": self.seed, "mode": self.mode, "min_end_ms": self.min_end_ms, "group_size": self.group_size,
                "batches_per_group": self.batches_per_group}
