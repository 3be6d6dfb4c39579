"""The files of a run directory that training writes besides checkpoints: ``run.json`` and the logs.

``run.json`` says what was trained on what (model family and config, training config, dataset facts, split,
soma target, status); ``metrics.csv`` has one row per logging or validation step (kept consistent across
resumes: rows after the resumed step are dropped); TensorBoard event files go to ``tb/``.
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from neuroemu import __version__
from neuroemu.io import write_json
from neuroemu.models.checkpoint import RUN_FORMAT_VERSION

__all__ = ["CSV_FIELDS", "RunLog", "write_run_json"]

CSV_FIELDS = ["step", "stage", "lr", "loss", "loss_spike", "loss_soma", "loss_dvt", "val_auc", "val_loss_spike",
              "val_soma_mse", "windows_per_s", "elapsed_s"]


def write_run_json(out: Path, run: dict[str, Any]) -> None:
    """Write ``run.json``, keeping what the first session recorded (creation time, dataset path, head biases)."""
    run = {"format_version": RUN_FORMAT_VERSION, **run,
           "software": {"neuroemu": __version__, "torch": torch.__version__, "numpy": np.__version__}}
    path = out / "run.json"
    if path.exists():
        old = json.loads(path.read_text())
        run["created"] = old.get("created")
        if old.get("head_bias_init") is not None:
            run["head_bias_init"] = old["head_bias_init"]
        run["dataset"]["path"] = old["dataset"].get("path") or run["dataset"]["path"]
    else:
        run["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(path, run)


class RunLog:
    """``metrics.csv`` rows (and TensorBoard scalars, and a callback) of one training session."""

    def __init__(self, out: Path, resumed_step: int, tensorboard: bool,
                 callback: Callable[[dict], None] | None = None) -> None:
        self.path = out / "metrics.csv"
        self.callback = callback
        rows = []
        if self.path.exists() and resumed_step > 0:
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= resumed_step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"), purge_step=resumed_step if resumed_step > 0 else None)
            except Exception:  # tensorboard missing or broken: the CSV log still works
                self.tb = None

    def write(self, row: dict[str, Any]) -> None:
        """Append one row."""
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_FIELDS).writerow({k: row.get(k, "") for k in CSV_FIELDS})
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "stage") and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, row["step"])
        if self.callback is not None:
            self.callback(row)

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self.tb is not None:
            self.tb.close()
