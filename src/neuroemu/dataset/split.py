"""Spike-stratified train / validation / test splits for small datasets.

With the published input generator many trials are silent (the input ranges are drawn per trial), so a
random split of a few dozen trials easily leaves the training or the test part without a single output
spike: the emulator cannot learn spikes, or its AUC is undefined. :func:`stratified_split` deals the trials,
most spikes first, to the part that is furthest below its share, so that every part gets spiking trials in
proportion to its size. It is still a split of whole trials, deterministic given the spike counts and the
seed (which orders trials with equal counts); the trial lists are recorded in each run's ``run.json``.

:class:`StratifiedDataset` is a :class:`~neuroemu.dataset.reader.NeuroDataset` whose ``split`` is this one;
pass it to :func:`neuroemu.training.loop.train` to train on such a split.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from neuroemu.dataset.reader import NeuroDataset
from neuroemu.dataset.source import TrialSource
from neuroemu.errors import ConfigError

__all__ = ["stratified_split", "StratifiedDataset", "spike_counts", "split_trials", "nested_subsets", "SPLIT_MODES"]

#: How a sweep or learning curve splits a dataset's trials: ``random`` (:meth:`NeuroDataset.split`) or
#: ``stratified`` (:func:`stratified_split`).
SPLIT_MODES = ("random", "stratified")


def stratified_split(indices: Sequence[int], counts: Sequence[int], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                     seed: int = 0) -> list[list[int]]:
    """Split trial ``indices`` (with output spike ``counts``) into parts of the given ``fractions``.

    Trials are taken in decreasing spike count (ties in a random order from ``seed``); each goes to the part
    whose size is furthest below ``fraction * (trials dealt so far)`` (ties to the earlier part, so training
    comes first). Part sizes match ``floor``/rounding of the fractions to within one trial. Each part is
    returned sorted.
    """
    idx = np.asarray(list(indices), dtype=np.int64)
    cnt = np.asarray(list(counts), dtype=np.int64)
    if idx.shape != cnt.shape:
        raise ValueError(f"{idx.size} trial indices but {cnt.size} spike counts")
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or fr.size == 0 or np.any(fr < 0) or fr.sum() <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {list(fractions)}")
    fr = fr / fr.sum()
    tie = np.random.default_rng(seed).permutation(idx.size)
    order = np.lexsort((tie, -cnt))
    parts: list[list[int]] = [[] for _ in fr]
    for k, j in enumerate(order, start=1):
        deficit = fr * k - np.array([len(p) for p in parts])
        deficit[fr == 0] = -np.inf
        parts[int(np.argmax(deficit))].append(int(idx[j]))
    return [sorted(p) for p in parts]


def spike_counts(ds: NeuroDataset) -> list[int]:
    """Output spike count of every readable trial (from the manifest when recorded, else from the shard)."""
    out = []
    for i in ds.trial_indices:
        n = (ds.entries.get(i) or {}).get("n_output_spikes")
        out.append(int(n) if n is not None else int(len(ds.spike_times(i))))
    return out


class StratifiedDataset(NeuroDataset):
    """A :class:`NeuroDataset` whose :meth:`split` is :func:`stratified_split` on its output spike counts."""

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> list[list[int]]:
        """Spike-stratified split of the readable trials (see :func:`stratified_split`)."""
        return stratified_split(self.trial_indices, spike_counts(self), fractions, seed)


def split_trials(ds: TrialSource, mode: str = "random", fractions: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> dict[str, list[int]]:
    """The ``train`` / ``val`` / ``test`` trial lists of ``ds`` by ``mode`` (:data:`SPLIT_MODES`)."""
    if mode not in SPLIT_MODES:
        raise ConfigError(f"split mode must be one of {SPLIT_MODES}, got {mode!r}")
    if mode == "stratified" and isinstance(ds, NeuroDataset):
        parts = stratified_split(ds.trial_indices, spike_counts(ds), fractions, seed)
    elif mode == "stratified":
        idx = [int(i) for i in getattr(ds, "trial_indices", range(ds.n_trials))]
        parts = stratified_split(idx, [int(ds.spike_train(i).sum()) for i in idx], fractions, seed)
    else:
        parts = ds.split(tuple(fractions), seed)
    parts = [[int(i) for i in p] for p in parts] + [[]] * (3 - len(parts))
    return {"train": parts[0], "val": parts[1], "test": parts[2]}


def nested_subsets(trials: Sequence[int], fractions: Sequence[float], seed: int = 0) -> dict[float, list[int]]:
    """Nested subsets of ``trials``: one seeded order of the trials, and for each fraction f its first
    ``round(f * n)`` trials, so the subset of a smaller fraction lies inside every larger one. Fractions must lie
    in (0, 1] and each must keep at least one trial (:class:`ConfigError` naming the fraction otherwise)."""
    trials = [int(t) for t in trials]
    n = len(trials)
    order = [trials[k] for k in np.random.default_rng([int(seed), 7]).permutation(n)]
    out: dict[float, list[int]] = {}
    for f in fractions:
        f = float(f)
        if not 0.0 < f <= 1.0:
            raise ConfigError(f"fraction {f:g} is outside (0, 1]")
        k = int(round(f * n))
        if k < 1:
            raise ConfigError(f"fraction {f:g} of {n} training trials leaves no training trial "
                              f"(needs at least {1.0 / max(n, 1):.3g})")
        out[f] = sorted(order[:k])
    return out
