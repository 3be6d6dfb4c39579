"""The published evaluation protocol (reference section 9), on full test traces.

1. Full-trace prediction (9.1): 400-ms windows overlapping by ``O = min(max(T+1, min(150, 400-50)), 250)``;
   from every window after the first only outputs at positions >= O are kept, so every scored ms has at
   least T ms of real history. ``mode="one_pass"`` runs each trace at once instead (identical numbers for
   a causal network, faster).
2. Ground-truth soma clipped at -55 mV and offset +67.7 mV, as in training.
3. Filtering (9.3): drop the first 500 ms; keep traces whose spike count (in the kept part) is in
   ``spike_range`` (default [0, 24]).
4. Metrics (9.4) on pooled 1-ms bins, soma after global calibration (9.2), error bars from 12 random
   subsets of 67% of the traces.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from neuroemu.config import Config
from neuroemu.dataset.reader import open_dataset
from neuroemu.dataset.source import TrialSource, check_channels, dataset_fingerprint, trial_indices, window_inputs
from neuroemu.dataset.targets import soma_target
from neuroemu.errors import ConfigError, DatasetError
from neuroemu.evaluation.metrics import PUBLISHED_FP_RATES, soma_metrics, spike_metrics, subset_variability
from neuroemu.io import atomic_write, json_safe, write_json
from neuroemu.models.base import EmulatorModel, check_precision
from neuroemu.models.emulator import Emulator, forward_long

__all__ = ["EvaluationConfig", "PUBLISHED_DROP_FIRST_MS", "drop_first_ms_for", "overlap_ms", "window_starts",
           "window_plan", "predict_windows", "predict_traces", "evaluate_predictions", "evaluate"]

#: The published protocol drops the first 500 ms of every trace before scoring (reference 9.3).
PUBLISHED_DROP_FIRST_MS = 500


def drop_first_ms_for(duration_ms: int) -> int:
    """The burn-in rule, the one place it is written: how many ms at the start of a ``duration_ms`` trace are not
    scored -- the published 500 ms, or a quarter of the trace when that is shorter (short test trials keep three
    quarters of their length). Evaluation, validation during training, sweeps and the quickstart all use it."""
    return min(PUBLISHED_DROP_FIRST_MS, int(duration_ms) // 4)


@dataclass
class EvaluationConfig(Config):
    """Protocol settings; the defaults are the published ones."""

    mode: str = "windows"
    window_ms: int = 400
    drop_first_ms: int = 500
    spike_range: list[int] = field(default_factory=lambda: [0, 24])
    extra_spike_ranges: list[list[int]] = field(default_factory=lambda: [[0, 18], [1, 24], [0, 30], [0, 90]])
    n_subsets: int = 12
    subset_fraction: float = 0.67
    subset_seed: int = 0
    fp_rates: list[float] = field(default_factory=lambda: list(PUBLISHED_FP_RATES))
    batch_size: int = 32
    precision: str = "fp32"

    @classmethod
    def for_duration(cls, duration_ms: int, **overrides) -> "EvaluationConfig":
        """The published protocol for traces of ``duration_ms``, with :func:`drop_first_ms_for` as burn-in."""
        return cls.from_dict({"drop_first_ms": drop_first_ms_for(duration_ms), **overrides})

    def __post_init__(self) -> None:
        check_precision(self.precision, "EvaluationConfig.precision")
        if self.mode not in ("windows", "one_pass"):
            raise ConfigError(f"EvaluationConfig.mode must be 'windows' or 'one_pass', got {self.mode!r}")
        if len(self.spike_range) != 2 or self.spike_range[0] > self.spike_range[1]:
            raise ConfigError(f"EvaluationConfig.spike_range must be [min, max], got {self.spike_range}")
        if self.drop_first_ms < 0 or self.window_ms < 2:
            raise ConfigError(f"EvaluationConfig: drop_first_ms={self.drop_first_ms}, window_ms={self.window_ms}")


def overlap_ms(receptive_field: int, window_ms: int = 400) -> int:
    """Window overlap O of reference 9.1: ``min(max(T + 1, min(150, window - 50)), 250)``."""
    o = min(max(receptive_field + 1, min(150, window_ms - 50)), 250)
    if o >= window_ms:
        raise ConfigError(f"window of {window_ms} ms is too short for a receptive field of {receptive_field} ms "
                          f"(overlap {o} ms)")
    return o


def window_starts(duration_ms: int, window_ms: int, overlap: int) -> list[int]:
    """Start times of the windows covering [0, duration): steps of ``window - overlap``; the last one
    may run past the end (zero-padded)."""
    step = window_ms - overlap
    starts = [0]
    while starts[-1] + window_ms < duration_ms:
        starts.append(starts[-1] + step)
    return starts


def window_plan(duration_ms: int, receptive_field: int, window_ms: int = 400) -> list[tuple[int, int]]:
    """(window start, first kept position) of every window: all of the first window, positions >= O of
    the others. The kept ranges tile [0, duration) without gaps or overlaps."""
    o = overlap_ms(receptive_field, window_ms)
    return [(s, 0 if k == 0 else o) for k, s in enumerate(window_starts(duration_ms, window_ms, o))]


@torch.no_grad()
def predict_windows(model: EmulatorModel, x: np.ndarray, window_ms: int = 400, batch_size: int = 32,
                    device: torch.device | str = "cpu", precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Published full-trace prediction of one (time, channels) trace -> (spike logits, soma target). Windows
    overlap by :func:`overlap_ms` of the model's ``history_ms`` (receptive field, or a recurrent model's burn-in:
    every window starts from rest)."""
    duration = x.shape[0]
    plan = window_plan(duration, model.history_ms, window_ms)
    starts = [s for s, _ in plan]
    padded = np.zeros((starts[-1] + window_ms, x.shape[1]), dtype=x.dtype)
    padded[:duration] = x
    wins = np.stack([padded[s:s + window_ms] for s in starts])
    logits = np.empty((len(starts), window_ms), np.float32)
    soma = np.empty((len(starts), window_ms), np.float32)
    for a in range(0, len(starts), batch_size):
        out = model.infer(torch.from_numpy(wins[a:a + batch_size]).to(device), precision)
        logits[a:a + batch_size] = out.spike_logits.float().cpu().numpy()
        soma[a:a + batch_size] = out.soma.float().cpu().numpy()
    full_l = np.empty(padded.shape[0], np.float32)
    full_s = np.empty(padded.shape[0], np.float32)
    for k, (s, keep) in enumerate(plan):
        full_l[s + keep:s + window_ms] = logits[k, keep:]
        full_s[s + keep:s + window_ms] = soma[k, keep:]
    return full_l[:duration], full_s[:duration]


def predict_traces(emulator: Emulator, ds: TrialSource, trials: Sequence[int], mode: str = "windows",
                   inputs: str = "presynaptic", window_ms: int = 400, batch_size: int = 32,
                   progress: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """(spike logits, soma target prediction) per trial, by the windowed protocol or in one pass."""
    it = trials
    if progress:
        from tqdm import tqdm
        it = tqdm(trials, desc="predict", unit="trace")
    out = []
    emulator.model.eval()
    for i in it:
        x = window_inputs(ds, int(i), 0, int(ds.duration_ms), inputs)
        if mode == "windows":
            out.append(predict_windows(emulator.model, x, window_ms, batch_size, emulator.device, emulator.precision))
        else:
            lg, so = forward_long(emulator.model, x, device=emulator.device, precision=emulator.precision)
            out.append((lg[0], so[0]))
    return out


def _select(counts: np.ndarray, rng: Sequence[int]) -> np.ndarray:
    return np.flatnonzero((counts >= rng[0]) & (counts <= rng[1]))


def evaluate_predictions(spikes: list[np.ndarray], logits: list[np.ndarray], soma_true: list[np.ndarray],
                         soma_pred: list[np.ndarray], config: EvaluationConfig | None = None) -> dict[str, Any]:
    """Apply filtering and metrics of the protocol to full traces (lists of per-ms arrays, one per trace).

    ``soma_true`` / ``soma_pred`` in the same space (target space or mV: the calibration is affine-invariant).
    """
    cfg = config or EvaluationConfig()
    d = cfg.drop_first_ms
    sp = [np.asarray(s)[d:].astype(np.int8) for s in spikes]
    lg = [np.asarray(s)[d:] for s in logits]
    st = [np.asarray(s)[d:] for s in soma_true]
    sq = [np.asarray(s)[d:] for s in soma_pred]
    counts = np.asarray([int(s.sum()) for s in sp], dtype=np.int64)

    def block(idx: np.ndarray) -> dict[str, Any]:
        if idx.size == 0:
            return {"n_traces": 0, "n_spikes": 0}
        y = np.concatenate([sp[i] for i in idx])
        s = np.concatenate([lg[i] for i in idx])
        res = spike_metrics(y, s, cfg.fp_rates)
        res.update(soma_metrics(np.concatenate([st[i] for i in idx]), np.concatenate([sq[i] for i in idx])))
        res.update({"n_traces": int(idx.size), "n_spikes": int(y.sum()), "n_bins": int(y.size)})
        return res

    main = _select(counts, cfg.spike_range)
    res = block(main)
    var = subset_variability([sp[i] for i in main], [lg[i] for i in main], [st[i] for i in main],
                             [sq[i] for i in main], cfg.n_subsets, cfg.subset_fraction, cfg.subset_seed)
    res["spike_auc_sd"] = var["spike_auc_sd"]
    res["spike_auc_subsets_mean"] = var["spike_auc_mean"]
    res["soma_explained_variance_sd"] = var["soma_explained_variance_sd"]
    res["soma_explained_variance_subsets_mean"] = var["soma_explained_variance_mean"]
    res["n_traces_total"] = len(sp)
    res["n_traces_excluded"] = len(sp) - int(main.size)
    res["by_spike_range"] = {}
    for r in cfg.extra_spike_ranges:
        b = block(_select(counts, r))
        res["by_spike_range"][f"[{r[0]},{r[1]}]"] = {k: b.get(k) for k in (
            "spike_auc", "tp_at_fp_0.001", "tp_at_fp_0.0025", "soma_explained_variance", "soma_rmse_mv",
            "n_traces", "n_spikes")}
    return res


def save_predictions(path: str | Path, trials: Sequence[int], spikes: list[np.ndarray], logits: list[np.ndarray],
                     soma_true: list[np.ndarray], soma_pred: list[np.ndarray], config: EvaluationConfig,
                     dataset_path: str = "", dataset_fp: str = "") -> None:
    """Write one emulator's predictions of whole traces (compressed NumPy archive): ``trials`` (int64),
    ``spikes`` (uint8, traces x ms), ``logits`` (float32), ``soma_true`` / ``soma_pred`` (float32, target space)
    and the protocol (``config_json``, ``dataset``, ``fingerprint``). Written atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, trials=np.asarray(trials, np.int64), spikes=np.stack(spikes).astype(np.uint8),
                        logits=np.stack(logits).astype(np.float32), soma_true=np.stack(soma_true).astype(np.float32),
                        soma_pred=np.stack(soma_pred).astype(np.float32), config_json=np.array(config.to_json()),
                        dataset=np.array(dataset_path), fingerprint=np.array(dataset_fp))
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def evaluate(run_dir: str | Path, dataset: TrialSource | str | Path | None = None, split: str = "test",
             out: str | Path | None = None, checkpoint: str = "best", config: EvaluationConfig | None = None,
             device: str = "cpu", progress: bool = False,
             predictions_out: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a trained run by the published protocol; write JSON to ``out`` if given and return it.

    ``predictions_out``: also write the per-trace predictions (:func:`save_predictions`), for paired
    comparisons of two emulators on the same traces (:mod:`neuroemu.evaluation.paired`).

    ``dataset``: defaults to the run's dataset. ``split``: ``test`` / ``val`` / ``train`` (the run's split)
    or ``all``; when ``dataset`` is a different dataset than the run's, its trials are all used.
    NaN metrics are written as ``null``. ``soma_explained_variance`` is in percent, as published.
    """
    cfg = config or EvaluationConfig()
    t0 = time.monotonic()
    emu = Emulator.load(run_dir, checkpoint=checkpoint, device=device, precision=cfg.precision)
    run = emu.run
    if dataset is None:
        path = run.get("dataset", {}).get("path")
        if not path:
            raise DatasetError(f"{run_dir}/run.json records no dataset path: pass the dataset to evaluate on")
        dataset = path
    if isinstance(dataset, (str, Path)):
        dataset = open_dataset(dataset)
    check_channels(dataset, emu.n_exc, emu.n_inh, f"the emulator in {run_dir}")
    same = dataset_fingerprint(dataset) == run.get("dataset", {}).get("fingerprint")
    if split not in ("test", "val", "train", "all"):
        raise ConfigError(f"split must be 'test', 'val', 'train' or 'all', got {split!r}")
    if split == "all" or not same:
        trials = trial_indices(dataset)
        used_split = "all" if same or split == "all" else "all (dataset differs from the training dataset)"
    else:
        trials = [int(i) for i in run["split"][split]]
        used_split = split
    if not trials:
        raise DatasetError(f"the '{split}' split of {run_dir} holds no trials")
    if cfg.drop_first_ms >= dataset.duration_ms:
        raise ConfigError(f"drop_first_ms={cfg.drop_first_ms} leaves nothing of {dataset.duration_ms}-ms trials")
    inputs = run.get("inputs", "presynaptic")
    preds = predict_traces(emu, dataset, trials, cfg.mode, inputs, cfg.window_ms, cfg.batch_size, progress)
    st = soma_target  # ground truth in the training target space
    clip = emu.soma_clip_mv
    spikes = [np.asarray(dataset.spike_train(i)) for i in trials]
    soma_true = [st(dataset.soma_v(i), clip, emu.soma_offset_mv) for i in trials]
    res = evaluate_predictions(spikes, [p[0] for p in preds], soma_true, [p[1] for p in preds], cfg)
    if predictions_out is not None:
        save_predictions(predictions_out, trials, spikes, [p[0] for p in preds], soma_true, [p[1] for p in preds],
                         cfg, str(getattr(dataset, "path", "")), dataset_fingerprint(dataset))
    res.update({
        "run": str(Path(run_dir).resolve()) if Path(run_dir).is_dir() else str(run_dir),
        "model": emu.config.name, "family": emu.family, "n_parameters": emu.config.n_parameters,
        "n_params": emu.config.n_parameters, "flops_per_ms": float(emu.config.flops_per_ms),
        "receptive_field_ms": emu.receptive_field, "checkpoint": checkpoint,
        "checkpoint_step": emu.checkpoint_info.get("step"),
        "dataset": str(getattr(dataset, "path", None)), "split": used_split, "inputs": inputs,
        "protocol": {**cfg.to_dict(), "overlap_ms": overlap_ms(emu.receptive_field, cfg.window_ms)
                     if cfg.mode == "windows" else None},
        "units": {"soma_rmse_mv": "mV", "soma_mae_mv": "mV", "soma_explained_variance": "percent"},
        "wall_time_s": time.monotonic() - t0})
    res = json_safe(res)
    if out is not None:
        write_json(out, res)
    return res
