"""Emulator targets (reference 8.4): clipped/offset soma voltage, whitened PCA of dendritic voltages, and a
per-trial cache of them. Training and evaluation read targets through this module only."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from neuroemu.dataset.source import TrialSource
from neuroemu.errors import DatasetError

__all__ = ["SOMA_CLIP_MV", "SOMA_OFFSET_MV", "soma_target", "soma_from_target", "DendriticPCA", "TargetCache"]

SOMA_CLIP_MV = -55.0
SOMA_OFFSET_MV = 67.7


def soma_target(v_mv: np.ndarray, clip_mv: float = SOMA_CLIP_MV, offset_mv: float = SOMA_OFFSET_MV) -> np.ndarray:
    """``min(V, clip) + offset`` as float32: spikes removed by the clip, resting level near 0."""
    return (np.minimum(np.asarray(v_mv, dtype=np.float32), np.float32(clip_mv)) + np.float32(offset_mv)).astype(
        np.float32)


def soma_from_target(y: np.ndarray, offset_mv: float = SOMA_OFFSET_MV) -> np.ndarray:
    """Back to mV: ``y - offset`` (the clip cannot be undone: predictions stay below the clip level)."""
    return (np.asarray(y, dtype=np.float32) - np.float32(offset_mv)).astype(np.float32)


@dataclass
class DendriticPCA:
    """Whitened PCA of dendritic voltages clipped at ``clip_mv``; projections clipped to +-``clip_sd``.

    ``mean`` (n_seg,), ``components`` (n_comp, n_seg), ``scale`` (n_comp,) = sqrt(eigenvalue).
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    clip_mv: float = 2.0
    clip_sd: float = 3.0

    @property
    def n_components(self) -> int:
        """Number of principal components."""
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, dend_v_list: list[np.ndarray], n_components: int, clip_mv: float = 2.0, clip_sd: float = 3.0,
            stride_ms: int = 1) -> "DendriticPCA":
        """Fit on a list of (n_seg, T) dendritic voltage arrays (accumulating the covariance per trial)."""
        if not dend_v_list:
            raise DatasetError("cannot fit the dendritic PCA: no trial with dendritic voltages")
        n_seg = dend_v_list[0].shape[0]
        if n_components > n_seg:
            raise DatasetError(f"dendritic PCA: {n_components} components requested but the dataset has only "
                               f"{n_seg} dendritic segments")
        s1 = np.zeros(n_seg)
        s2 = np.zeros((n_seg, n_seg))
        n = 0
        for d in dend_v_list:
            if d.shape[0] != n_seg:
                raise DatasetError(f"dendritic voltages have {d.shape[0]} segments in one trial and {n_seg} in another")
            x = np.minimum(np.asarray(d[:, ::stride_ms], dtype=np.float64), clip_mv)
            s1 += x.sum(1)
            s2 += x @ x.T
            n += x.shape[1]
        mean = s1 / n
        cov = s2 / n - np.outer(mean, mean)
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1][:n_components]
        comps = evecs[:, order].T
        # sign convention: largest-magnitude loading positive (deterministic across platforms)
        signs = np.sign(comps[np.arange(len(order)), np.abs(comps).argmax(1)])
        comps = comps * np.where(signs == 0, 1, signs)[:, None]
        scale = np.sqrt(np.maximum(evals[order], 1e-12))
        return cls(mean.astype(np.float32), comps.astype(np.float32), scale.astype(np.float32), clip_mv, clip_sd)

    def transform(self, dend_v: np.ndarray) -> np.ndarray:
        """(n_seg, T) voltages -> (T, n_components) whitened, clipped projections (float32)."""
        x = np.minimum(np.asarray(dend_v, dtype=np.float32), np.float32(self.clip_mv))
        z = ((x.T - self.mean) @ self.components.T) / self.scale
        return np.clip(z, -self.clip_sd, self.clip_sd).astype(np.float32)

    def to_state(self) -> dict:
        """Plain dict (lists) for checkpoints."""
        return {"mean": self.mean.tolist(), "components": self.components.tolist(), "scale": self.scale.tolist(),
                "clip_mv": self.clip_mv, "clip_sd": self.clip_sd}

    @classmethod
    def from_state(cls, state: dict) -> "DendriticPCA":
        """Inverse of :meth:`to_state`."""
        return cls(np.asarray(state["mean"], np.float32), np.asarray(state["components"], np.float32),
                   np.asarray(state["scale"], np.float32), float(state["clip_mv"]), float(state["clip_sd"]))


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

    def soma(self, i: int) -> np.ndarray:
        """The soma target of trial ``i`` alone (float32 (T,)), without computing dendritic PCs."""
        i = int(i)
        if i in self._cache:
            return self._cache[i][1]
        return soma_target(self.ds.soma_v(i), self.soma_clip_mv, self.soma_offset_mv)

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
