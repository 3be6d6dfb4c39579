"""Run directories and checkpoints on disk: atomic writes, and loads that fail with a clear error.

A run directory (made by :func:`neuroemu.training.train`) holds::

    run.json               model + training config, dataset path/fingerprint/channels, split, soma target
    checkpoints/last.pt    full training state (model, optimiser, step, RNG states, sampler state)
    checkpoints/best.pt    model weights with the best validation spike AUC
    metrics.csv            one row per logging / validation step
    tb/                    TensorBoard event files
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from neuroemu.errors import CheckpointError
from neuroemu.io import atomic_write, read_json

__all__ = ["RUN_FORMAT_VERSION", "atomic_torch_save", "load_checkpoint", "read_run", "checkpoint_path"]

RUN_FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` it onto ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict; raise :class:`CheckpointError` naming the file if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, garbage bytes, wrong pickle...
        raise CheckpointError(f"checkpoint {path} is corrupt or not a neuroemu checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict) or "model" not in obj or "format_version" not in obj:
        raise CheckpointError(f"checkpoint {path} is not a neuroemu checkpoint (no 'model' / 'format_version' entry)")
    if obj["format_version"] > RUN_FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {obj['format_version']}, newer than this "
                              f"neuroemu understands ({RUN_FORMAT_VERSION})")
    return obj


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run.json`` of a run directory; :class:`CheckpointError` if missing or malformed."""
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a training run: {path.name} is missing")
    run = read_json(path, CheckpointError, "training run")
    if not isinstance(run, dict):
        raise CheckpointError(f"{path} is corrupt (not a JSON object)")
    for key in ("model", "training", "dataset", "split", "soma_target"):
        if key not in run:
            raise CheckpointError(f"{path} lacks the '{key}' entry")
    return run


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """Path of ``best`` / ``last`` checkpoint (``best`` falls back to ``last`` if no validation ran yet),
    or ``which`` itself when it names a file."""
    run_dir = Path(run_dir)
    if which in ("best", "last"):
        p = run_dir / "checkpoints" / f"{which}.pt"
        if which == "best" and not p.is_file() and (run_dir / "checkpoints" / "last.pt").is_file():
            return run_dir / "checkpoints" / "last.pt"
        return p
    return Path(which)
