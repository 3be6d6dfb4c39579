"""The training loop: budgets, checkpoints, exact resume, NaN handling, CSV and TensorBoard logs."""
from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from neuroemu.errors import CheckpointError, ConfigError, DatasetError, TrainingError
from neuroemu.models.checkpoint import (RUN_FORMAT_VERSION, atomic_torch_save, atomic_write_text,
                                        load_checkpoint, read_run)
from neuroemu.models.tcn import TCN, TCNConfig
from neuroemu.training.config import TrainingConfig
from neuroemu.training.data import (TargetCache, TrialSource, WindowSampler, check_channels, dataset_fingerprint,
                                    dataset_info, make_batch, open_dataset, window_inputs)
from neuroemu.training.targets import DendriticPCA

__all__ = ["train", "resume", "TrainResult", "select_device", "set_threads"]

CSV_FIELDS = ["step", "stage", "lr", "loss", "loss_spike", "loss_soma", "loss_dvt", "val_auc", "val_loss_spike",
              "val_soma_mse", "windows_per_s", "elapsed_s"]


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    steps: int
    stop_reason: str
    best_val_auc: float | None
    best_step: int | None
    elapsed_s: float
    last_loss: float | None


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def set_threads(threads: int | None) -> int:
    """Use ``threads`` CPU threads (default: all cores this process may run on)."""
    if not threads:
        try:
            threads = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            threads = os.cpu_count() or 1
    n = int(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


# --------------------------------------------------------------------------- helpers
def _rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    np_state = {"bit_generator": np_state["bit_generator"], "key": np_state["state"]["key"].tolist(),
                "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                "gauss": float(np_state["gauss"])}
    st = {"torch": torch.get_rng_state(), "numpy": np_state, "python": random.getstate()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    s = st["numpy"]
    np.random.set_state({"bit_generator": s["bit_generator"], "state": {"key": np.asarray(s["key"], np.uint32),
                                                                         "pos": s["pos"]},
                         "has_gauss": s["has_gauss"], "gauss": s["gauss"]})
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _make_optimizer(model: torch.nn.Module, cfg: TrainingConfig, lr: float) -> torch.optim.Optimizer:
    betas = tuple(cfg.betas)
    if cfg.optimizer == "nadam":
        return torch.optim.NAdam(model.parameters(), lr=lr, betas=betas, eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, momentum_decay=4e-3)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=cfg.eps)
    return torch.optim.Adam(groups, lr=lr, betas=betas, eps=cfg.eps)


def _fit_pca(ds: TrialSource, train_idx, n_comp: int, cfg: TrainingConfig) -> DendriticPCA:
    arrays = []
    for i in list(train_idx)[:cfg.dvt_pca_trials]:
        d = getattr(ds.trial(int(i)), "dend_v_1ms", None)
        if d is None:
            raise DatasetError(f"the model predicts {n_comp} dendritic components but trial {int(i)} of the dataset "
                               f"has no dendritic voltages (make the dataset with dendritic recording, or use "
                               f"n_dendritic_components=0)")
        arrays.append(np.asarray(d))
    return DendriticPCA.fit(arrays, n_comp, cfg.dvt_clip_mv, cfg.dvt_clip_sd)


def data_head_biases(targets: TargetCache, train_idx, max_trials: int = 256) -> dict[str, float]:
    """Head biases matching the training data: the log-odds of a spike per ms and the mean soma target,
    from the first ``max_trials`` training trials (the rate is floored at 0.5 spikes per trial set so that
    a silent dataset still gets a finite bias)."""
    n_spikes, n_ms, soma_sum, soma_n = 0.0, 0, 0.0, 0
    for i in list(train_idx)[:max_trials]:
        spikes, soma, _ = targets.get(int(i))
        n_spikes += float(spikes.sum())
        n_ms += int(spikes.shape[0])
        soma = np.asarray(soma, dtype=np.float64)
        ok = np.isfinite(soma)  # a corrupt trace stops training where it is used, with its step, not here
        soma_sum += float(soma[ok].sum())
        soma_n += int(ok.sum())
    if n_ms == 0:
        raise TrainingError("no training trials to set the head biases from")
    rate = min(max(n_spikes, 0.5) / n_ms, 0.5)
    return {"spike": float(math.log(rate / (1.0 - rate))), "soma": soma_sum / max(soma_n, 1),
            "spike_rate_per_ms": rate}


def _to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in batch.items()}


def _losses(model, batch, device, amp_dtype, l2: float):
    ctx = torch.autocast(device_type="cuda", dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    with ctx:
        out = model(batch["x"])
    bce = F.binary_cross_entropy_with_logits(out.spike_logits.float(), batch["spikes"])
    mse = F.mse_loss(out.soma.float(), batch["soma"])
    dvt = F.mse_loss(out.dvt.float(), batch["dvt"]) if out.dvt is not None and "dvt" in batch else bce.new_zeros(())
    reg = l2 * sum((w.float() ** 2).sum() for w in model.kernel_weights()) if l2 else bce.new_zeros(())
    return bce, mse, dvt, reg


class _Validator:
    """Validation on whole traces (the first ``val_trials`` of the validation split), run in one pass;
    spike AUC on pooled 1-ms bins after the first min(500 ms, half a trace), as the evaluation does."""

    def __init__(self, ds, targets, val_idx, cfg: TrainingConfig, device):
        self.ds, self.targets, self.cfg, self.device = ds, targets, cfg, device
        self.trials = [int(i) for i in list(val_idx)[:cfg.val_trials]]
        self.skip = min(500, int(ds.duration_ms) // 2)

    @property
    def enabled(self) -> bool:
        return bool(self.trials)

    @torch.no_grad()
    def __call__(self, model) -> dict[str, float]:
        from neuroemu.evaluation.metrics import roc_auc
        from neuroemu.models.emulator import forward_long

        was_training = model.training
        model.eval()
        logits, ys, soma_err = [], [], []
        dur = int(self.ds.duration_ms)
        for a in range(0, len(self.trials), 4):
            chunk = self.trials[a:a + 4]
            x = np.stack([window_inputs(self.ds, i, 0, dur, self.cfg.inputs) for i in chunk])
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
        return {"val_auc": roc_auc(y, s), "val_loss_spike": bce, "val_soma_mse": float(np.mean(np.concatenate(soma_err)))}


class _StopFlag:
    """Turns SIGINT/SIGTERM into a request to stop after the current step (main thread only)."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._old[sig] = signal.signal(sig, self._handler)
                except (ValueError, OSError):
                    pass
        return self

    def _handler(self, signum, frame):
        if self.stop:  # second signal: give up immediately
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, h in self._old.items():
            signal.signal(sig, h)
        return False


# --------------------------------------------------------------------------- main entry
def resume(run_dir: str | Path, dataset: TrialSource | None = None, max_steps: int | None = None,
           max_minutes: float | None = None, progress: bool = False) -> TrainResult:
    """Continue a run from ``checkpoints/last.pt`` (optionally with a new budget)."""
    overrides = {}
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    if max_minutes is not None:
        overrides["max_minutes"] = max_minutes
    return train(dataset, None, overrides, run_dir, resume=True, progress=progress)


def train(dataset: TrialSource | str | Path | None, model_config: TCNConfig | None,
          training_config: TrainingConfig | dict | None, out_dir: str | Path, resume: bool = False,
          progress: bool = False, callback: Callable[[dict], None] | None = None) -> TrainResult:
    """Train an emulator on ``dataset`` and write the run directory ``out_dir``.

    ``model_config.n_inputs`` is set to the dataset's channel count. With ``resume=True`` the model and
    training configs, split and dataset come from ``out_dir/run.json`` and training continues from
    ``checkpoints/last.pt`` exactly where it stopped; ``training_config`` may then be a dict of budget
    overrides (``max_steps``, ``max_minutes``) or None. ``callback`` receives every logged row.
    A non-finite loss raises :class:`TrainingError`; the last good checkpoint is kept.
    """
    out = Path(out_dir)
    if isinstance(dataset, (str, Path)):
        dataset = open_dataset(dataset)
    if resume:
        run = read_run(out)
        mcfg = TCNConfig.from_dict(run["model"])
        tcfg = TrainingConfig.from_dict(run["training"])
        if isinstance(training_config, TrainingConfig):
            training_config = {"max_steps": training_config.max_steps, "max_minutes": training_config.max_minutes}
        if training_config:
            bad = set(training_config) - {"max_steps", "max_minutes"}
            if bad:
                raise ConfigError(f"only the budget (max_steps, max_minutes) can change on resume, not {sorted(bad)}")
            tcfg = tcfg.replace(**training_config)
        if dataset is None:
            path = run["dataset"].get("path")
            if not path:
                raise DatasetError(f"{out}/run.json records no dataset path (trained in memory): pass the dataset")
            dataset = open_dataset(path)
        fp = dataset_fingerprint(dataset)
        if fp != run["dataset"]["fingerprint"]:
            raise DatasetError(f"dataset fingerprint {fp} differs from the one the run {out} was trained on "
                               f"({run['dataset']['fingerprint']}): resume needs the same dataset")
        split = {k: [int(i) for i in run["split"][k]] for k in ("train", "val", "test")}
        ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
        if "optimizer" not in ckpt:
            raise CheckpointError(f"{out / 'checkpoints' / 'last.pt'} holds no training state; cannot resume")
    else:
        if dataset is None:
            raise DatasetError("train() needs a dataset")
        if model_config is None:
            model_config = TCNConfig(n_inputs=dataset.n_channels)
        if training_config is None:
            training_config = TrainingConfig()
        if isinstance(training_config, dict):
            training_config = TrainingConfig.from_dict(training_config)
        tcfg = training_config.validate()
        mcfg = model_config.replace(n_inputs=int(dataset.n_channels)) if model_config.n_inputs != dataset.n_channels \
            else model_config
        if (out / "run.json").exists():
            raise TrainingError(f"{out} already holds a training run; resume it (--resume {out}) or choose another "
                                f"output directory")
        if mcfg.n_dendritic_components and getattr(dataset.trial(0), "dend_v_1ms", None) is None:
            raise DatasetError(f"the model predicts {mcfg.n_dendritic_components} dendritic components but the dataset "
                               f"has no dendritic voltages; use n_dendritic_components=0")
        tr, va, te = dataset.split(tuple(tcfg.split_fractions), tcfg.seed)
        split = {"train": [int(i) for i in tr], "val": [int(i) for i in va], "test": [int(i) for i in te]}
        ckpt = None
    if dataset.n_channels != dataset.n_exc + dataset.n_inh:
        raise DatasetError(f"dataset reports n_channels={dataset.n_channels} but n_exc + n_inh = "
                           f"{dataset.n_exc + dataset.n_inh}")
    if resume:
        check_channels(dataset, run["dataset"]["n_exc"], run["dataset"]["n_inh"], f"the run {out}")
    return _Trainer(dataset, mcfg, tcfg, out, split, ckpt, progress, callback).run()


class _Trainer:
    def __init__(self, ds, mcfg: TCNConfig, tcfg: TrainingConfig, out: Path, split, ckpt, progress, callback):
        self.ds, self.mcfg, self.cfg, self.out, self.split = ds, mcfg, tcfg, out, split
        self.ckpt, self.progress, self.callback = ckpt, progress, callback
        set_threads(tcfg.threads)
        self.device = select_device(tcfg.device)
        self.amp_dtype = None
        self.scaler = None
        if self.device.type == "cuda" and tcfg.amp:
            if torch.cuda.is_bf16_supported():
                self.amp_dtype = torch.bfloat16
            else:
                self.amp_dtype = torch.float16
                self.scaler = torch.amp.GradScaler("cuda")
        self.head_bias_init: dict[str, float] | None = None
        self.last_path = out / "checkpoints" / "last.pt"
        self.best_path = out / "checkpoints" / "best.pt"

    # ------------------------------------------------------------- run.json / csv
    def _write_run_json(self, status: str) -> None:
        import neuroemu

        run = {"format_version": RUN_FORMAT_VERSION, "kind": "tcn", "name": self.mcfg.name,
               "model": self.mcfg.to_dict(), "training": self.cfg.to_dict(), "dataset": dataset_info(self.ds),
               "split": {**self.split, "fractions": list(self.cfg.split_fractions), "seed": self.cfg.seed},
               "inputs": self.cfg.inputs, "n_channels": int(self.ds.n_channels),
               "soma_target": {"clip_mv": self.cfg.soma_clip_mv, "offset_mv": self.cfg.soma_offset_mv},
               "n_parameters": self.mcfg.n_parameters, "receptive_field_ms": self.mcfg.receptive_field,
               "status": status, "head_bias_init": self.head_bias_init,
               "software": {"neuroemu": neuroemu.__version__, "torch": torch.__version__, "numpy": np.__version__}}
        if (self.out / "run.json").exists():
            old = json.loads((self.out / "run.json").read_text())
            run["created"] = old.get("created")
            if old.get("head_bias_init") is not None:
                run["head_bias_init"] = old["head_bias_init"]
            run["dataset"]["path"] = old["dataset"].get("path") or run["dataset"]["path"]
        else:
            run["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_text(self.out / "run.json", json.dumps(run, indent=1))

    def _init_csv(self, resumed_step: int) -> None:
        path = self.out / "metrics.csv"
        rows = []
        if path.exists() and resumed_step > 0:
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= resumed_step]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)

    def _log(self, row: dict) -> None:
        with open(self.out / "metrics.csv", "a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_FIELDS).writerow({k: row.get(k, "") for k in CSV_FIELDS})
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "stage") and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, row["step"])
        if self.callback is not None:
            self.callback(row)

    # ------------------------------------------------------------- checkpoints
    def _model_entry(self) -> dict[str, Any]:
        return {"format_version": RUN_FORMAT_VERSION, "model": self.model.state_dict(),
                "model_config": self.mcfg.to_dict(), "step": self.step,
                "n_exc": int(self.ds.n_exc), "n_inh": int(self.ds.n_inh),
                "soma_target": {"clip_mv": self.cfg.soma_clip_mv, "offset_mv": self.cfg.soma_offset_mv},
                "dvt_pca": self.pca.to_state() if self.pca is not None else None}

    def _save_last(self) -> None:
        state = self._model_entry()
        state.update({"optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                      "opt_period": list(self.opt_period) if self.opt_period is not None else None,
                      "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                      "rng": _rng_state(self.device), "sampler": self.sampler.state(),
                      "elapsed_s": self._elapsed(), "best_val_auc": self.best_auc, "best_step": self.best_step,
                      "acc": dict(self.acc), "training_config": self.cfg.to_dict()})
        atomic_torch_save(state, self.last_path)
        self.last_saved_step = self.step
        self.last_save_time = time.monotonic()

    def _elapsed(self) -> float:
        return self.elapsed0 + (time.monotonic() - self.t0)

    # ------------------------------------------------------------- main loop
    def run(self) -> TrainResult:
        cfg, ds = self.cfg, self.ds
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.model = TCN(self.mcfg).to(self.device)
        self.pca = None
        if self.mcfg.n_dendritic_components:
            if self.ckpt is not None and self.ckpt.get("dvt_pca"):
                self.pca = DendriticPCA.from_state(self.ckpt["dvt_pca"])
            else:
                self.pca = _fit_pca(ds, self.split["train"], self.mcfg.n_dendritic_components, cfg)
        self.targets = TargetCache(ds, cfg.soma_clip_mv, cfg.soma_offset_mv, self.pca)
        if self.ckpt is None and cfg.head_bias_from_data:
            self.head_bias_init = data_head_biases(self.targets, self.split["train"])
            self.model.set_head_biases(spike=self.head_bias_init["spike"], soma=self.head_bias_init["soma"])
        self.sampler = WindowSampler(self.split["train"], ds.duration_ms, cfg.batch_size, cfg.seed, cfg.sampling,
                                     cfg.min_end_ms, cfg.group_size, cfg.batches_per_group)
        self.validator = _Validator(ds, self.targets, self.split["val"], cfg, self.device)
        self.step, self.elapsed0 = 0, 0.0
        self.best_auc, self.best_step = None, None
        self.optimizer, self.opt_period = None, None
        self.acc = {"n": 0, "loss": 0.0, "spike": 0.0, "soma": 0.0, "dvt": 0.0, "windows": 0}
        if self.ckpt is not None:
            self._restore(self.ckpt)
        self.t0 = time.monotonic()
        self._write_run_json("running")
        self._init_csv(self.step)
        self.tb = None
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(self.out / "tb"), purge_step=self.step if self.ckpt is not None else None)
            except Exception:  # tensorboard missing or broken: CSV logs still work
                self.tb = None
        if self.ckpt is None:
            self._save_last()  # step 0: a good checkpoint always exists
        self.last_saved_step = self.step
        self.last_save_time = time.monotonic()
        try:
            with _StopFlag() as flag:
                reason = self._loop(flag)
        except TrainingError:
            self._write_run_json("failed: non-finite loss")
            raise
        finally:
            if self.tb is not None:
                self.tb.close()
        if self.validator.enabled and self.last_val_step != self.step:
            self._validate()
        if self.last_saved_step != self.step or reason == "interrupted":
            self._save_last()
        self._write_run_json("completed" if reason in ("max_steps", "schedule complete", "max_minutes")
                             else reason)
        return TrainResult(self.out, self.step, reason, self.best_auc, self.best_step, self._elapsed(), self.last_loss)

    def _restore(self, ck: dict) -> None:
        try:
            self.model.load_state_dict(ck["model"])
        except RuntimeError as e:
            raise CheckpointError(f"{self.last_path} does not match the model in run.json: {e}") from e
        self.step = int(ck["step"])
        self.elapsed0 = float(ck.get("elapsed_s", 0.0))
        self.best_auc, self.best_step = ck.get("best_val_auc"), ck.get("best_step")
        self.acc = dict(ck.get("acc") or self.acc)
        self.acc["windows"] = 0  # throughput is measured per session
        if ck.get("opt_period") is not None and ck.get("optimizer") is not None:
            period = tuple(ck["opt_period"])
            lr, _, _ = self.cfg.schedule_at(max(self.step - 1, 0))
            self.optimizer = _make_optimizer(self.model, self.cfg, lr)
            self.optimizer.load_state_dict(ck["optimizer"])
            self.opt_period = period
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        _set_rng_state(ck["rng"])

    def _validate(self) -> dict[str, float]:
        res = self.validator(self.model)
        self.last_val_step = self.step
        auc = res["val_auc"]
        if math.isfinite(auc) and (self.best_auc is None or auc > self.best_auc):
            self.best_auc, self.best_step = float(auc), self.step
            entry = self._model_entry()
            entry["val"] = res
            atomic_torch_save(entry, self.best_path)
        return res

    def _loop(self, flag: _StopFlag) -> str:
        cfg = self.cfg
        self.last_val_step = -1
        self.last_loss = None
        total = cfg.max_steps if cfg.max_steps is not None else cfg.schedule_length
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, desc=self.mcfg.name)
        self.model.train()
        val_auc = self.best_auc
        t_interval = time.monotonic()
        try:
            while True:
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    return "max_steps"
                sched_len = cfg.schedule_length
                if sched_len is not None and self.step >= sched_len:
                    return "schedule complete"
                if cfg.max_minutes is not None and self._elapsed() >= cfg.max_minutes * 60:
                    return "max_minutes"
                if flag.stop:
                    return "interrupted"
                lr, lw, period = cfg.schedule_at(self.step)
                if period != self.opt_period:
                    self.optimizer = _make_optimizer(self.model, cfg, lr)
                    self.opt_period = period
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                trials, ends = self.sampler.batch(self.step)
                batch = _to_device(make_batch(self.ds, self.targets, trials, ends, cfg.window_ms, cfg.inputs),
                                   self.device)
                bce, mse, dvt, reg = _losses(self.model, batch, self.device, self.amp_dtype, cfg.l2_kernel)
                loss = lw[0] * bce + lw[1] * mse + lw[2] * dvt + reg
                if not bool(torch.isfinite(loss)):
                    what = "NaN" if bool(torch.isnan(loss)) else "infinite"
                    raise TrainingError(f"{what} loss at step {self.step + 1}; last good checkpoint kept at "
                                        f"{self.last_path} (step {self.last_saved_step})")
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    if cfg.grad_clip:
                        self.scaler.unscale_(self.optimizer)
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    loss.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.optimizer.step()
                self.step += 1
                self.last_loss = float(loss.detach())
                a = self.acc
                a["n"] += 1
                a["loss"] += self.last_loss
                a["spike"] += float(bce.detach())
                a["soma"] += float(mse.detach())
                a["dvt"] += float(dvt.detach())
                a["windows"] += cfg.batch_size
                row = None
                if self.step % cfg.log_every_steps == 0 or self.step % cfg.val_every_steps == 0:
                    now = time.monotonic()
                    dt = now - t_interval
                    t_interval = now
                    n = max(a["n"], 1)
                    row = {"step": self.step, "stage": period[0], "lr": lr, "loss": a["loss"] / n,
                           "loss_spike": a["spike"] / n, "loss_soma": a["soma"] / n, "loss_dvt": a["dvt"] / n,
                           "windows_per_s": a["windows"] / dt if dt > 0 else float("nan"),
                           "elapsed_s": self._elapsed()}
                    for k in ("n", "loss", "spike", "soma", "dvt", "windows"):
                        a[k] = 0
                if self.validator.enabled and self.step % cfg.val_every_steps == 0:
                    row.update(self._validate())
                    val_auc = row["val_auc"]
                if row is not None:
                    self._log(row)
                if bar is not None:
                    bar.update(1)
                    post = {"loss": f"{self.last_loss:.4f}"}
                    if val_auc is not None:
                        post["val_auc"] = f"{val_auc:.4f}"
                    bar.set_postfix(post, refresh=False)
                due_time = time.monotonic() - self.last_save_time >= cfg.checkpoint_every_minutes * 60
                due_steps = cfg.checkpoint_every_steps and self.step % cfg.checkpoint_every_steps == 0
                if due_time or due_steps:
                    self._save_last()
        finally:
            if bar is not None:
                bar.close()
