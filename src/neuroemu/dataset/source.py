"""What the emulator stages need of a dataset: the :class:`TrialSource` protocol and the facts of a dataset.

Training and evaluation use only the methods of :class:`TrialSource`, which
:class:`neuroemu.dataset.reader.NeuroDataset` provides and :class:`neuroemu.dataset.memory.InMemoryDataset`
imitates.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from neuroemu.errors import DatasetError

__all__ = ["TrialSource", "trial_indices", "dataset_fingerprint", "describe_dataset", "check_channels",
           "window_inputs"]


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


def describe_dataset(ds: TrialSource) -> dict[str, Any]:
    """Dataset facts recorded in a run (``run.json`` ``dataset``): path, fingerprint, channel counts, duration, cell."""
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
