"""A trained emulator, ready to use: load a run, predict spike probability and soma voltage per ms.

>>> emu = Emulator.load("runs/nmda_7x128")                     # doctest: +SKIP
>>> out = emu.predict(InputSpikes.load_npz("inputs.npz"), duration_ms=6000)   # doctest: +SKIP
>>> out["spike_prob"].shape, out["soma_v_pred_mv"].dtype       # doctest: +SKIP
((6000,), dtype('float32'))
>>> p, v = emu.module(torch.zeros(2, 1000, emu.n_channels))     # (batch, time, channels) tensor  # doctest: +SKIP

Traces run in one pass (the network is causal, so this equals the windowed protocol of reference 9.1 for a
feed-forward model); very long traces are cut into chunks that overlap by the receptive field minus one
(feed-forward models) or hand on their state (recurrent models), which is exact. Every model family works
through the interface of :mod:`neuroemu.models.base`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neuroemu.errors import CheckpointError, InputSpikesError
from neuroemu.inputs.spikes import InputSpikes
from neuroemu.models.base import EmulatorModel, ModelConfig, check_precision
from neuroemu.models.checkpoint import checkpoint_path, load_checkpoint, read_run
from neuroemu.models.registry import build_model, model_config_from_dict
from neuroemu.models.sparse_conv import SparseEvents

__all__ = ["Emulator", "EmulatorModule", "forward_long", "forward_events"]


class EmulatorModule(nn.Module):
    """``torch.nn.Module``: (batch, time, channels) spikes -> (spike probability, soma voltage in mV),
    both (batch, time). Wraps an :class:`~neuroemu.models.base.EmulatorModel` and the soma target offset."""

    def __init__(self, model: EmulatorModel, soma_offset_mv: float) -> None:
        super().__init__()
        self.model = model
        self.soma_offset_mv = float(soma_offset_mv)

    @property
    def tcn(self) -> EmulatorModel:
        """The wrapped network (the name predates the other model families)."""
        return self.model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spike probability (sigmoid of the logit) and predicted soma voltage (mV, below the -55 mV clip)."""
        out = self.model(x)
        return torch.sigmoid(out.spike_logits), out.soma - self.soma_offset_mv


def _run_in_chunks(model: EmulatorModel, make_input, batch: int, duration_ms: int, chunk_ms: int,
                   precision: str) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over ``duration_ms`` in time chunks: a feed-forward model sees each chunk preceded by its
    receptive field minus one ms of history, a recurrent one continues from the state the previous chunk left
    (both exact); ``make_input(lo, stop)`` gives the input for [lo, stop). Returns float32 (spike logits, soma
    target) arrays of shape (batch, duration_ms)."""
    halo = 0 if model.recurrent else model.history_ms - 1
    logits = np.empty((batch, duration_ms), dtype=np.float32)
    soma = np.empty((batch, duration_ms), dtype=np.float32)
    chunk = max(int(chunk_ms), 1)
    state = None
    for start in range(0, duration_ms, chunk):
        stop = min(duration_ms, start + chunk)
        lo = max(0, start - halo)
        out = model.infer(make_input(lo, stop), precision, state)
        state = out.state if model.recurrent else None
        logits[:, start:stop] = out.spike_logits[:, start - lo:].float().cpu().numpy()
        soma[:, start:stop] = out.soma[:, start - lo:].float().cpu().numpy()
    return logits, soma


@torch.no_grad()
def forward_long(model: EmulatorModel, x: np.ndarray | torch.Tensor, chunk_ms: int = 32768,
                 device: torch.device | str = "cpu", precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` (eval mode) on (batch, time, channels) input in one pass, in exact time chunks
    (:func:`_run_in_chunks`), in ``precision`` (:meth:`~neuroemu.models.base.EmulatorModel.infer`).
    Returns float32 (spike logits, soma target) arrays of shape (batch, time)."""
    xt = torch.as_tensor(x)
    if xt.dim() == 2:
        xt = xt.unsqueeze(0)
    b, t, _ = xt.shape
    return _run_in_chunks(model, lambda lo, stop: xt[:, lo:stop].to(device), b, t, chunk_ms, precision)


@torch.no_grad()
def forward_events(model: EmulatorModel, times, channels, duration_ms: int, batch_index=None, batch: int = 1,
                   chunk_ms: int = 32768, device: torch.device | str = "cpu",
                   precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """:func:`forward_long` for spike lists: one entry per input spike (``times`` in ms, ``channels``, and
    ``batch_index`` when ``batch`` > 1). Models with an event-driven input stage (the TCN's first layer, the
    ELM family's synapses) take them as they are, without building and searching a dense (time, channels) array.
    Returns float32 (spike logits, soma target), each (batch, time)."""
    dev = torch.device(device)
    t = torch.as_tensor(np.asarray(times), dtype=torch.int64).to(dev)
    c = torch.as_tensor(np.asarray(channels), dtype=torch.int64).to(dev)
    b = torch.zeros_like(t) if batch_index is None else torch.as_tensor(np.asarray(batch_index),
                                                                        dtype=torch.int64).to(dev)
    n_in = model.config.n_inputs

    def events(lo: int, stop: int) -> SparseEvents:
        keep = (t >= lo) & (t < stop) if (lo > 0 or stop < duration_ms) else slice(None)
        return SparseEvents.from_indices(b[keep], t[keep] - lo, c[keep], batch, stop - lo, n_in)

    return _run_in_chunks(model, events, batch, duration_ms, chunk_ms, precision)


class Emulator:
    """A trained emulator of any family with what it needs to be used: channel counts and the soma target."""

    def __init__(self, model: EmulatorModel, n_exc: int, n_inh: int, soma_offset_mv: float = 67.7,
                 soma_clip_mv: float = -55.0, run: dict[str, Any] | None = None,
                 checkpoint: dict[str, Any] | None = None, device: str | torch.device = "cpu",
                 precision: str = "fp32") -> None:
        self.device = torch.device(device)
        self.precision = check_precision(precision)
        self.model = model.to(self.device).eval()
        self.n_exc = int(n_exc)
        self.n_inh = int(n_inh)
        self.soma_offset_mv = float(soma_offset_mv)
        self.soma_clip_mv = float(soma_clip_mv)
        self.run = run or {}
        self.checkpoint_info = {k: v for k, v in (checkpoint or {}).items() if k in ("step", "val")}
        self.module = EmulatorModule(self.model, self.soma_offset_mv).eval()
        if self.n_exc + self.n_inh != model.config.n_inputs:
            raise CheckpointError(f"emulator has {model.config.n_inputs} inputs but n_exc + n_inh = "
                                  f"{self.n_exc + self.n_inh}")

    @property
    def tcn(self) -> EmulatorModel:
        """The network (named before the other families existed; the same as :attr:`model`)."""
        return self.model

    @property
    def family(self) -> str:
        """The model family (``tcn``, ``elm``, ``branch-elm``, ``lstm``, ...)."""
        return self.model.family

    @classmethod
    def load(cls, run_or_checkpoint: str | Path, checkpoint: str = "best", device: str = "cpu",
             first_layer: str | None = None, precision: str = "fp32") -> "Emulator":
        """Load a run directory (``checkpoint``: ``best``, ``last`` or a file) or a checkpoint file.
        ``first_layer`` overrides how a TCN's first layer runs (``auto``/``sparse``/``dense``); ``precision``:
        ``fp32`` or ``bf16`` inference (:meth:`~neuroemu.models.base.EmulatorModel.infer`)."""
        path = Path(run_or_checkpoint)
        run = None
        if path.is_dir():
            run = read_run(path)
            ck_path = checkpoint_path(path, checkpoint)
        else:
            ck_path = path
        ck = load_checkpoint(ck_path)
        family = ck.get("family") or (run or {}).get("family") or "tcn"
        if run is not None and (run.get("family") or "tcn") != family:
            raise CheckpointError(f"{ck_path} holds a {family} model but {path}/run.json says "
                                  f"{run.get('family')}: the checkpoint belongs to another run")
        cfg = model_config_from_dict(family, ck.get("model_config") or (run or {}).get("model"), str(ck_path))
        if first_layer is not None:
            if not hasattr(cfg, "first_layer"):
                raise CheckpointError(f"{ck_path}: first_layer={first_layer!r} applies to TCNs only, this is a "
                                      f"{family} model")
            cfg = cfg.replace(first_layer=first_layer)
        model = build_model(cfg)
        try:
            model.load_state_dict(ck["model"])
        except (RuntimeError, KeyError, TypeError) as e:
            raise CheckpointError(f"{ck_path}: weights do not match the {family} model configuration ({e})") from e
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        st = ck.get("soma_target") or (run or {}).get("soma_target") or {}
        n_exc = ck.get("n_exc", (run or {}).get("dataset", {}).get("n_exc"))
        n_inh = ck.get("n_inh", (run or {}).get("dataset", {}).get("n_inh"))
        if n_exc is None or n_inh is None:
            raise CheckpointError(f"{ck_path}: channel counts (n_exc, n_inh) missing")
        return cls(model, n_exc, n_inh, st.get("offset_mv", 67.7), st.get("clip_mv", -55.0), run, ck, device,
                   precision)

    @property
    def n_channels(self) -> int:
        """Input channels (excitatory first)."""
        return self.n_exc + self.n_inh

    @property
    def config(self) -> ModelConfig:
        """Architecture."""
        return self.model.config

    @property
    def receptive_field(self) -> int:
        """History an output needs, in ms: a feed-forward model's receptive field, a recurrent one's burn-in."""
        return self.model.history_ms
    def predict_dense(self, x: np.ndarray | torch.Tensor, chunk_ms: int = 32768) -> dict[str, np.ndarray]:
        """(time, channels) or (batch, time, channels) dense input -> ``spike_prob``, ``soma_v_pred_mv``
        (float32, same leading shape), ``spike_logit``."""
        arr = x if isinstance(x, torch.Tensor) else np.asarray(x)
        squeeze = arr.ndim == 2
        if arr.ndim not in (2, 3) or arr.shape[-1] != self.n_channels:
            raise InputSpikesError(f"dense input must be (time, {self.n_channels}) or (batch, time, "
                                   f"{self.n_channels}), got shape {tuple(arr.shape)}")
        logits, soma = forward_long(self.model, arr, chunk_ms=chunk_ms, device=self.device, precision=self.precision)
        out = self._outputs(logits, soma)
        return {k: v[0] for k, v in out.items()} if squeeze else out

    def _outputs(self, logits: np.ndarray, soma: np.ndarray) -> dict[str, np.ndarray]:
        prob = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
        volts = (soma - np.float32(self.soma_offset_mv)).astype(np.float32)
        return {"spike_prob": prob, "soma_v_pred_mv": volts, "spike_logit": logits}

    @property
    def event_driven(self) -> bool:
        """Whether the model takes spike lists on this device (e.g. a TCN's first layer in ``sparse`` mode, or
        ``auto`` on a CPU)."""
        return self.model.accepts_events(self.device)

    def predict(self, inputs: InputSpikes, duration_ms: int | None = None, source: str = "inputs") -> dict[str, np.ndarray]:
        """Predict per-ms spike probability and soma voltage (mV) for sparse input spikes.

        ``duration_ms`` defaults to the last input time + 1. Channel indices are checked against the
        emulator's cell (:class:`InputSpikesError` naming the problem)."""
        if not isinstance(inputs, InputSpikes):
            raise InputSpikesError(f"{source}: expected InputSpikes, got {type(inputs).__name__}")
        inputs.validate(self.n_exc, None, source=source, n_inh=self.n_inh)  # channels, negative times
        if duration_ms is None:
            times = [int(ev[:, 1].max()) + 1 for ev in (inputs.exc, inputs.inh) if ev.shape[0]]
            duration_ms = max(times or [0])
        if duration_ms <= 0:
            raise InputSpikesError(f"{source}: no input spikes and no duration given: nothing to predict")
        inputs.validate(self.n_exc, duration_ms, source=source, n_inh=self.n_inh)
        if self.event_driven:
            times = np.concatenate([inputs.exc[:, 1], inputs.inh[:, 1]])
            channels = np.concatenate([inputs.exc[:, 0], inputs.inh[:, 0] + self.n_exc])
            logits, soma = forward_events(self.model, times, channels, int(duration_ms), device=self.device,
                                          precision=self.precision)
            out = {k: v[0] for k, v in self._outputs(logits, soma).items()}
        else:
            out = self.predict_dense(inputs.dense(self.n_exc, 0, int(duration_ms), n_inh=self.n_inh))
        return {"spike_prob": out["spike_prob"], "soma_v_pred_mv": out["soma_v_pred_mv"]}
