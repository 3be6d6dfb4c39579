"""Training batches: which windows make batch ``step`` (:class:`WindowSampler`, reference 8.7) and the
arrays of a batch (:func:`make_batch`)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from neuroemu.dataset.source import TrialSource, window_inputs
from neuroemu.dataset.targets import TargetCache
from neuroemu.errors import ConfigError, DatasetError

__all__ = ["WindowSampler", "make_batch"]


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

    ``mode="published"`` (reference 8.7): batches come in groups of ``batches_per_group`` (48) that draw from
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
