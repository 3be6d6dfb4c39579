"""Validation during training: whole validation traces in one pass, scored like the evaluation.

Spike AUC on pooled 1-ms bins after the evaluation's burn-in (:func:`neuroemu.evaluation.protocol.drop_first_ms_for`),
the mean spike BCE and the soma MSE (target space) over the same bins. ``best.pt`` keeps the model with the best
validation AUC; early stopping counts validations without improvement.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from neuroemu.dataset.source import TrialSource, window_inputs
from neuroemu.dataset.targets import TargetCache
from neuroemu.evaluation.metrics import roc_auc
from neuroemu.evaluation.protocol import drop_first_ms_for
from neuroemu.models.base import EmulatorModel
from neuroemu.models.emulator import forward_long

__all__ = ["Validator"]


class Validator:
    """Scores a model on the first ``max_trials`` validation traces (all of each trace, 4 traces per pass)."""

    def __init__(self, ds: TrialSource, targets: TargetCache, trials: Sequence[int], max_trials: int,
                 inputs: str, device: torch.device) -> None:
        self.ds, self.targets, self.inputs, self.device = ds, targets, inputs, device
        self.trials = [int(i) for i in list(trials)[:max_trials]]
        self.skip = drop_first_ms_for(int(ds.duration_ms))

    @property
    def enabled(self) -> bool:
        """False when there are no validation trials."""
        return bool(self.trials)

    @torch.no_grad()
    def __call__(self, model: EmulatorModel) -> dict[str, float]:
        """``val_auc``, ``val_loss_spike`` and ``val_soma_mse`` of ``model`` (left in the mode it was in)."""
        was_training = model.training
        model.eval()
        logits, ys, soma_err = [], [], []
        dur = int(self.ds.duration_ms)
        for a in range(0, len(self.trials), 4):
            chunk = self.trials[a:a + 4]
            x = np.stack([window_inputs(self.ds, i, 0, dur, self.inputs) for i in chunk])
            lg, so = forward_long(model, x, device=self.device)
            for k, i in enumerate(chunk):
                spikes, soma, _ = self.targets.get(i)
                logits.append(lg[k, self.skip:])
                ys.append(spikes[self.skip:])
                soma_err.append((so[k, self.skip:] - soma[self.skip:]) ** 2)
        model.train(was_training)
        s = np.concatenate(logits).astype(np.float64)
        y = np.concatenate(ys).astype(np.float64)
        bce = float(np.mean(np.maximum(s, 0) - s * y + np.log1p(np.exp(-np.abs(s)))))
        return {"val_auc": roc_auc(y, s), "val_loss_spike": bce,
                "val_soma_mse": float(np.mean(np.concatenate(soma_err)))}
