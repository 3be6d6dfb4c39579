"""Everything a training run changes as it goes, in one place: :class:`TrainState`.

The trainer reads and writes only this state (plus the model and optimiser tensors); a checkpoint is the state,
the tensors and the random-number generators, so a resumed run continues bit for bit.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["TrainState", "LossTotals", "rng_state", "set_rng_state"]


@dataclass
class LossTotals:
    """Sums of the losses since the last logged row (averaged into the row, then reset)."""

    n: int = 0
    loss: float = 0.0
    spike: float = 0.0
    soma: float = 0.0
    dvt: float = 0.0
    windows: int = 0

    def add(self, losses: dict[str, float], windows: int) -> None:
        """Accumulate one step's losses."""
        self.n += 1
        self.loss += losses["loss"]
        self.spike += losses["spike"]
        self.soma += losses["soma"]
        self.dvt += losses["dvt"]
        self.windows += windows

    def means(self) -> dict[str, float]:
        """Mean losses since the last reset (the ``loss*`` columns of metrics.csv)."""
        n = max(self.n, 1)
        return {"loss": self.loss / n, "loss_spike": self.spike / n, "loss_soma": self.soma / n,
                "loss_dvt": self.dvt / n}


@dataclass
class TrainState:
    """The progress of a run. ``step``: optimiser steps done; ``elapsed_s``: training wall time over all
    sessions; ``best_val_auc`` / ``best_step``: the best validation so far (kept in ``best.pt``);
    ``validations_since_best``: for early stopping; ``opt_period``: the schedule period the optimiser was made
    for (a new period re-creates it, as the published schedule did); ``totals``: losses since the last log."""

    step: int = 0
    elapsed_s: float = 0.0
    best_val_auc: float | None = None
    best_step: int | None = None
    validations_since_best: int = 0
    last_val_step: int = -1
    opt_period: tuple[int, int] | None = None
    totals: LossTotals = field(default_factory=LossTotals)
    last_loss: float | None = None

    def to_checkpoint(self) -> dict[str, Any]:
        """The entries of ``last.pt`` that describe the progress (names kept from format version 1)."""
        t = asdict(self.totals)
        return {"step": self.step, "elapsed_s": self.elapsed_s, "best_val_auc": self.best_val_auc,
                "best_step": self.best_step, "validations_since_best": self.validations_since_best,
                "last_val_step": self.last_val_step,
                "opt_period": list(self.opt_period) if self.opt_period is not None else None, "acc": t}

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any]) -> "TrainState":
        """The state saved in ``last.pt`` (throughput counters restart: they are measured per session)."""
        acc = dict(ck.get("acc") or {})
        totals = LossTotals(**{k: acc[k] for k in ("n", "loss", "spike", "soma", "dvt") if k in acc})
        period = ck.get("opt_period")
        return cls(step=int(ck["step"]), elapsed_s=float(ck.get("elapsed_s", 0.0)),
                   best_val_auc=ck.get("best_val_auc"), best_step=ck.get("best_step"),
                   validations_since_best=int(ck.get("validations_since_best", 0)),
                   last_val_step=int(ck.get("last_val_step", -1)),
                   opt_period=tuple(period) if period is not None else None, totals=totals)


def rng_state(device: torch.device) -> dict[str, Any]:
    """The torch, NumPy and Python generator states (and CUDA's on a GPU), for a checkpoint."""
    np_state = np.random.get_state(legacy=False)
    np_state = {"bit_generator": np_state["bit_generator"], "key": np_state["state"]["key"].tolist(),
                "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                "gauss": float(np_state["gauss"])}
    st = {"torch": torch.get_rng_state(), "numpy": np_state, "python": random.getstate()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(st["torch"])
    s = st["numpy"]
    np.random.set_state({"bit_generator": s["bit_generator"], "state": {"key": np.asarray(s["key"], np.uint32),
                                                                         "pos": s["pos"]},
                         "has_gauss": s["has_gauss"], "gauss": s["gauss"]})
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
