"""The training loop, for every model family: one :meth:`Trainer.train_step`, budgets, validation with early
stopping, checkpoints, exact resume, NaN handling, logs.

Two entry points: :func:`train` starts a run in a new directory, :func:`resume` continues one from
``checkpoints/last.pt`` exactly where it stopped (same batches, same random numbers). Both build a
:class:`Trainer`, whose progress lives in one :class:`~neuroemu.training.state.TrainState`.

The loop, in one sitting::

    while not stop_reason():
        losses = train_step()          # schedule -> batch -> forward -> loss -> one backward path -> step
        log / validate / checkpoint when due

A non-finite loss raises :class:`TrainingError`; the last good checkpoint stays on disk.
"""
from __future__ import annotations

import math
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

from neuroemu.dataset.reader import open_dataset
from neuroemu.dataset.source import TrialSource, check_channels, dataset_fingerprint, describe_dataset
from neuroemu.dataset.targets import DendriticPCA, TargetCache
from neuroemu.errors import CheckpointError, ConfigError, DatasetError, TrainingError
from neuroemu.models.base import EmulatorModel, ModelConfig
from neuroemu.models.checkpoint import RUN_FORMAT_VERSION, atomic_torch_save, load_checkpoint, read_run
from neuroemu.models.registry import build_model, model_config_from_dict
from neuroemu.models.tcn import TCNConfig
from neuroemu.parallel import cpu_count
from neuroemu.training.batches import WindowSampler, make_batch
from neuroemu.training.config import TrainingConfig
from neuroemu.training.rundir import RunLog, write_run_json
from neuroemu.training.state import TrainState, rng_state, set_rng_state
from neuroemu.training.validation import Validator

__all__ = ["train", "resume", "Trainer", "TrainResult", "select_device", "set_threads", "data_head_biases",
           "make_optimizer"]

#: Stop reasons after which a run counts as completed (run.json ``status``).
COMPLETED = ("max_steps", "schedule complete", "max_minutes", "early stopping")


@dataclass
class TrainResult:
    """Outcome of :func:`train` / :func:`resume`."""

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
    n = int(threads or cpu_count())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def make_optimizer(model: torch.nn.Module, cfg: TrainingConfig, lr: float) -> torch.optim.Optimizer:
    """The optimiser of ``cfg`` (weight decay on weight matrices and kernels only, for Adam/AdamW)."""
    betas = tuple(cfg.betas)
    if cfg.optimizer == "nadam":
        return torch.optim.NAdam(model.parameters(), lr=lr, betas=betas, eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, momentum_decay=4e-3)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=cfg.eps)
    return torch.optim.Adam(groups, lr=lr, betas=betas, eps=cfg.eps)


def data_head_biases(targets: TargetCache, train_idx, max_trials: int = 256) -> dict[str, float]:
    """Head biases matching the training data: the log-odds of a spike per ms and the mean soma target,
    from the first ``max_trials`` training trials (the rate is floored at 0.5 spikes per trial set so that
    a silent dataset still gets a finite bias)."""
    n_spikes, n_ms, soma_sum, soma_n = 0.0, 0, 0.0, 0
    for i in list(train_idx)[:max_trials]:
        spikes = np.asarray(targets.ds.spike_train(int(i)))
        soma = np.asarray(targets.soma(int(i)), dtype=np.float64)
        n_spikes += float(spikes.sum())
        n_ms += int(spikes.shape[0])
        ok = np.isfinite(soma)  # a corrupt trace stops training where it is used, with its step, not here
        soma_sum += float(soma[ok].sum())
        soma_n += int(ok.sum())
    if n_ms == 0:
        raise TrainingError("no training trials to set the head biases from")
    rate = min(max(n_spikes, 0.5) / n_ms, 0.5)
    return {"spike": float(math.log(rate / (1.0 - rate))), "soma": soma_sum / max(soma_n, 1),
            "spike_rate_per_ms": rate}


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


# --------------------------------------------------------------------------- entry points
def train(dataset: TrialSource | str | Path | None, model_config: ModelConfig | None,
          training_config: TrainingConfig | dict | None, out_dir: str | Path, resume: bool = False,
          progress: bool = False, callback: Callable[[dict], None] | None = None,
          split: dict[str, list[int]] | None = None) -> TrainResult:
    """Train a new emulator on ``dataset`` into the new run directory ``out_dir``.

    ``model_config`` (any family; default a TCN) is fitted to the dataset (channel count, routing). The split
    of whole trials is ``split`` (``train``/``val``/``test`` index lists) or else comes from the dataset's
    ``split(training_config.split_fractions, seed)``. ``callback`` receives every logged row. ``resume=True``
    is :func:`resume` (``training_config`` then holds only a new budget).
    """
    if resume:
        budget = training_config
        if isinstance(budget, TrainingConfig):
            budget = {"max_steps": budget.max_steps, "max_minutes": budget.max_minutes}
        return _resume(out_dir, dataset, dict(budget or {}), progress, callback)
    if isinstance(dataset, (str, Path)):
        dataset = open_dataset(dataset)
    if dataset is None:
        raise DatasetError("train() needs a dataset")
    tcfg = training_config if isinstance(training_config, TrainingConfig) else \
        TrainingConfig.from_dict(training_config or {})
    tcfg.validate()
    out = Path(out_dir)
    if (out / "run.json").exists():
        raise TrainingError(f"{out} already holds a training run; resume it (--resume {out}) or choose another "
                            f"output directory")
    _check_dataset(dataset)
    mcfg = fit_model_config(model_config or TCNConfig(n_inputs=dataset.n_channels), dataset)
    if mcfg.n_dendritic_components and getattr(dataset.trial(0), "dend_v_1ms", None) is None:
        raise DatasetError(f"the model predicts {mcfg.n_dendritic_components} dendritic components but the dataset "
                           f"has no dendritic voltages (make it with --record dendrites), or use 0 components")
    if split is None:
        tr, va, te = dataset.split(tuple(tcfg.split_fractions), tcfg.seed)
        split = {"train": tr, "val": va, "test": te}
    split = {k: [int(i) for i in split.get(k, [])] for k in ("train", "val", "test")}
    if not split["train"]:
        raise DatasetError("the split leaves no training trial")
    return Trainer(dataset, mcfg, tcfg, out, split, progress=progress, callback=callback).run()


def resume(run_dir: str | Path, dataset: TrialSource | None = None, max_steps: int | None = None,
           max_minutes: float | None = None, progress: bool = False,
           callback: Callable[[dict], None] | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from ``checkpoints/last.pt``, optionally with a new total budget.
    The dataset defaults to the one recorded in run.json and must have the same fingerprint."""
    budget = {k: v for k, v in (("max_steps", max_steps), ("max_minutes", max_minutes)) if v is not None}
    return _resume(run_dir, dataset, budget, progress, callback)


def fit_model_config(config: ModelConfig, ds: TrialSource) -> ModelConfig:
    """``config`` fitted to the dataset: its channel count, and for morphology-aware families its E/I layout
    and segment table (:meth:`~neuroemu.models.base.ModelConfig.with_inputs`)."""
    segments = getattr(ds, "segments", None)
    if segments is not None and hasattr(segments, "to_dict"):
        segments = segments.to_dict()
    return config.with_inputs(int(ds.n_channels), n_exc=int(ds.n_exc), n_inh=int(ds.n_inh), segments=segments)


def _check_dataset(ds: TrialSource) -> None:
    if ds.n_channels != ds.n_exc + ds.n_inh:
        raise DatasetError(f"dataset reports n_channels={ds.n_channels} but n_exc + n_inh = {ds.n_exc + ds.n_inh}")


def _resume(run_dir, dataset, budget: dict, progress, callback) -> TrainResult:
    out = Path(run_dir)
    run = read_run(out)
    bad = set(budget) - {"max_steps", "max_minutes"}
    if bad:
        raise ConfigError(f"only the budget (max_steps, max_minutes) can change on resume, not {sorted(bad)}")
    family = run.get("family") or "tcn"
    mcfg = model_config_from_dict(family, run["model"], f"{out / 'run.json'} model")
    tcfg = TrainingConfig.from_dict(run["training"]).replace(**budget)
    if dataset is None:
        path = run["dataset"].get("path")
        if not path:
            raise DatasetError(f"{out}/run.json records no dataset path (trained in memory): pass the dataset")
        dataset = open_dataset(path)
    elif isinstance(dataset, (str, Path)):
        dataset = open_dataset(dataset)
    fp = dataset_fingerprint(dataset)
    if fp != run["dataset"]["fingerprint"]:
        raise DatasetError(f"dataset fingerprint {fp} differs from the one the run {out} was trained on "
                           f"({run['dataset']['fingerprint']}): resume needs the same dataset")
    _check_dataset(dataset)
    check_channels(dataset, run["dataset"]["n_exc"], run["dataset"]["n_inh"], f"the run {out}")
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    if "optimizer" not in ckpt:
        raise CheckpointError(f"{out / 'checkpoints' / 'last.pt'} holds no training state; cannot resume")
    split = {k: [int(i) for i in run["split"][k]] for k in ("train", "val", "test")}
    return Trainer(dataset, mcfg, tcfg, out, split, checkpoint=ckpt, head_bias_init=run.get("head_bias_init"),
                   progress=progress, callback=callback).run()


# --------------------------------------------------------------------------- the trainer
class Trainer:
    """One training session of one run: builds the model, data pipeline and logs, then :meth:`run`.

    ``checkpoint``: the ``last.pt`` dict to continue from (None: a fresh run at step 0).
    """

    def __init__(self, ds: TrialSource, model_config: ModelConfig, config: TrainingConfig, out: Path,
                 split: dict[str, list[int]], checkpoint: dict | None = None, head_bias_init: dict | None = None,
                 progress: bool = False, callback: Callable[[dict], None] | None = None) -> None:
        self.ds, self.mcfg, self.cfg, self.out, self.split = ds, model_config, config, Path(out), split
        self.progress, self.callback = progress, callback
        self.last_path = self.out / "checkpoints" / "last.pt"
        self.best_path = self.out / "checkpoints" / "best.pt"
        set_threads(config.threads)
        self.device = select_device(config.device)
        self.amp_dtype = None
        if self.device.type == "cuda" and config.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # one backward path: a disabled scaler is a no-op (only fp16 autocast needs loss scaling)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        torch.manual_seed(config.seed)
        self.model: EmulatorModel = build_model(model_config).to(self.device)
        self.burn_in = self.model.history_ms if self.model.recurrent else 0
        if self.burn_in >= config.window_ms:
            raise ConfigError(f"TrainingConfig.window_ms = {config.window_ms} leaves nothing after the "
                              f"{self.burn_in}-ms burn-in of the {self.model.name} model: use longer windows")
        self.pca = self._dendritic_pca(checkpoint)
        self.targets = TargetCache(ds, config.soma_clip_mv, config.soma_offset_mv, self.pca)
        self.sampler = WindowSampler(split["train"], ds.duration_ms, config.batch_size, config.seed, config.sampling,
                                     config.min_end_ms, config.group_size, config.batches_per_group)
        self.validator = Validator(ds, self.targets, split["val"], config.val_trials, config.inputs, self.device)
        self.state = TrainState()
        self.optimizer: torch.optim.Optimizer | None = None
        self.head_bias_init = head_bias_init
        self.fresh = checkpoint is None
        if checkpoint is not None:
            self._restore(checkpoint)
        elif config.head_bias_from_data:
            self.head_bias_init = data_head_biases(self.targets, split["train"])
            self.model.set_head_biases(spike=self.head_bias_init["spike"], soma=self.head_bias_init["soma"])
        self.session_t0 = time.monotonic()
        self.session_elapsed0 = self.state.elapsed_s
        self.last_saved_step = self.state.step
        self.last_save_time = time.monotonic()

    # ------------------------------------------------------------------ set-up
    def _dendritic_pca(self, checkpoint: dict | None) -> DendriticPCA | None:
        n = self.mcfg.n_dendritic_components
        if not n:
            return None
        if checkpoint is not None and checkpoint.get("dvt_pca"):
            return DendriticPCA.from_state(checkpoint["dvt_pca"])
        arrays = []
        for i in self.split["train"][:self.cfg.dvt_pca_trials]:
            d = getattr(self.ds.trial(int(i)), "dend_v_1ms", None)
            if d is None:
                raise DatasetError(f"the model predicts {n} dendritic components but trial {int(i)} of the dataset "
                                   f"has no dendritic voltages (make the dataset with --record dendrites, or use "
                                   f"n_dendritic_components=0)")
            arrays.append(np.asarray(d))
        return DendriticPCA.fit(arrays, n, self.cfg.dvt_clip_mv, self.cfg.dvt_clip_sd)

    def _restore(self, ck: dict) -> None:
        try:
            self.model.load_state_dict(ck["model"])
        except RuntimeError as e:
            raise CheckpointError(f"{self.last_path} does not match the model in run.json: {e}") from e
        self.state = TrainState.from_checkpoint(ck)
        if self.state.opt_period is not None and ck.get("optimizer") is not None:
            lr, _, _ = self.cfg.schedule_at(max(self.state.step - 1, 0))
            self.optimizer = make_optimizer(self.model, self.cfg, lr)
            self.optimizer.load_state_dict(ck["optimizer"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, float]:
        """One optimiser step at ``state.step``: schedule, batch, forward, losses, backward, update."""
        cfg, st = self.cfg, self.state
        lr, lw, period = cfg.schedule_at(st.step)
        if period != st.opt_period:
            self.optimizer = make_optimizer(self.model, cfg, lr)
            st.opt_period = period
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        trials, ends = self.sampler.batch(st.step)
        batch = {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in
                 make_batch(self.ds, self.targets, trials, ends, cfg.window_ms, cfg.inputs).items()}
        x = batch["x"]
        if cfg.input_dropout:
            keep = torch.rand(x.shape, device=x.device) >= cfg.input_dropout
            x = x * keep.to(x.dtype)
        autocast = torch.autocast(device_type="cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with autocast:
            out = self.model(x)
        b = self.burn_in
        spike = F.binary_cross_entropy_with_logits(out.spike_logits[:, b:].float(), batch["spikes"][:, b:])
        soma = F.mse_loss(out.soma[:, b:].float(), batch["soma"][:, b:])
        dvt = F.mse_loss(out.dvt[:, b:].float(), batch["dvt"][:, b:]) if out.dvt is not None and "dvt" in batch \
            else spike.new_zeros(())
        reg = cfg.l2_kernel * sum((w.float() ** 2).sum() for w in self.model.regularized_weights()) \
            if cfg.l2_kernel else spike.new_zeros(())
        loss = lw[0] * spike + lw[1] * soma + lw[2] * dvt + reg
        if not bool(torch.isfinite(loss)):
            what = "NaN" if bool(torch.isnan(loss)) else "infinite"
            raise TrainingError(f"{what} loss at step {st.step + 1}; last good checkpoint kept at {self.last_path} "
                                f"(step {self.last_saved_step})")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        st.step += 1
        st.last_loss = float(loss.detach())
        losses = {"loss": st.last_loss, "spike": float(spike.detach()), "soma": float(soma.detach()),
                  "dvt": float(dvt.detach()), "lr": lr, "stage": period[0]}
        st.totals.add(losses, cfg.batch_size)
        return losses

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        """Train until the budget, the schedule, early stopping or a signal ends the session."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)
        self._write_run_json("running")
        log = RunLog(self.out, self.state.step if not self.fresh else 0, self.cfg.tensorboard, self.callback)
        if self.fresh:
            self.save_last()  # step 0: a good checkpoint always exists
        try:
            with _StopFlag() as flag:
                reason = self._loop(flag, log)
        except TrainingError:
            self._write_run_json("failed: non-finite loss")
            raise
        finally:
            log.close()
        st = self.state
        if self.validator.enabled and st.last_val_step != st.step and reason != "early stopping":
            self.validate()
        if self.last_saved_step != st.step or reason == "interrupted":
            self.save_last()
        self._write_run_json("completed" if reason in COMPLETED else reason)
        return TrainResult(self.out, st.step, reason, st.best_val_auc, st.best_step, self.elapsed(), st.last_loss)

    def stop_reason(self, flag: _StopFlag) -> str | None:
        """Why training must stop before the next step, or None."""
        cfg, st = self.cfg, self.state
        if cfg.max_steps is not None and st.step >= cfg.max_steps:
            return "max_steps"
        if cfg.schedule_length is not None and st.step >= cfg.schedule_length:
            return "schedule complete"
        if cfg.max_minutes is not None and self.elapsed() >= cfg.max_minutes * 60:
            return "max_minutes"
        if cfg.patience is not None and st.validations_since_best >= cfg.patience:
            return "early stopping"
        return "interrupted" if flag.stop else None

    def _loop(self, flag: _StopFlag, log: RunLog) -> str:
        cfg, st = self.cfg, self.state
        bar = None
        if self.progress:
            from tqdm import tqdm

            total = cfg.max_steps if cfg.max_steps is not None else cfg.schedule_length
            bar = tqdm(total=total, initial=st.step, unit="step", dynamic_ncols=True, desc=self.mcfg.name)
        self.model.train()
        t_interval = time.monotonic()
        try:
            while (reason := self.stop_reason(flag)) is None:
                losses = self.train_step()
                validate_now = self.validator.enabled and st.step % cfg.val_every_steps == 0
                if st.step % cfg.log_every_steps == 0 or st.step % cfg.val_every_steps == 0:
                    now = time.monotonic()
                    row = {"step": st.step, "stage": losses["stage"], "lr": losses["lr"], **st.totals.means(),
                           "windows_per_s": st.totals.windows / (now - t_interval) if now > t_interval else
                           float("nan"), "elapsed_s": self.elapsed()}
                    t_interval = now
                    st.totals = type(st.totals)()
                    if validate_now:
                        row.update(self.validate())
                    log.write(row)
                if bar is not None:
                    bar.update(1)
                    post = {"loss": f"{st.last_loss:.4f}"}
                    if st.best_val_auc is not None:
                        post["best_val_auc"] = f"{st.best_val_auc:.4f}"
                    bar.set_postfix(post, refresh=False)
                due_time = time.monotonic() - self.last_save_time >= cfg.checkpoint_every_minutes * 60
                due_steps = cfg.checkpoint_every_steps and st.step % cfg.checkpoint_every_steps == 0
                if due_time or due_steps:
                    self.save_last()
            return reason
        finally:
            if bar is not None:
                bar.close()

    # ------------------------------------------------------------------ validation and checkpoints
    def validate(self) -> dict[str, float]:
        """Score the model on the validation traces; keep it in ``best.pt`` when it is the best so far."""
        st = self.state
        res = self.validator(self.model)
        st.last_val_step = st.step
        auc = res["val_auc"]
        if math.isfinite(auc) and (st.best_val_auc is None or auc > st.best_val_auc):
            st.best_val_auc, st.best_step = float(auc), st.step
            st.validations_since_best = 0
            atomic_torch_save({**self.model_entry(), "val": res}, self.best_path)
        else:
            st.validations_since_best += 1
        return res

    def elapsed(self) -> float:
        """Training wall time over all sessions (s)."""
        return self.session_elapsed0 + (time.monotonic() - self.session_t0)

    def model_entry(self) -> dict[str, Any]:
        """What any checkpoint holds: the weights and what is needed to use them."""
        return {"format_version": RUN_FORMAT_VERSION, "family": self.model.family, "model": self.model.state_dict(),
                "model_config": self.mcfg.to_dict(), "step": self.state.step,
                "n_exc": int(self.ds.n_exc), "n_inh": int(self.ds.n_inh),
                "soma_target": {"clip_mv": self.cfg.soma_clip_mv, "offset_mv": self.cfg.soma_offset_mv},
                "dvt_pca": self.pca.to_state() if self.pca is not None else None}

    def save_last(self) -> None:
        """Write ``last.pt``: the model entry plus everything needed to resume exactly."""
        self.state.elapsed_s = self.elapsed()
        state = {**self.model_entry(), **self.state.to_checkpoint(),
                 "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                 "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                 "rng": rng_state(self.device), "sampler": self.sampler.state(),
                 "training_config": self.cfg.to_dict()}
        atomic_torch_save(state, self.last_path)
        self.last_saved_step = self.state.step
        self.last_save_time = time.monotonic()

    def _write_run_json(self, status: str) -> None:
        m = self.model
        write_run_json(self.out, {
            "kind": m.family, "family": m.family, "name": m.name, "model": self.mcfg.to_dict(),
            "training": self.cfg.to_dict(), "dataset": describe_dataset(self.ds),
            "split": {**self.split, "fractions": list(self.cfg.split_fractions), "seed": self.cfg.seed},
            "inputs": self.cfg.inputs, "n_channels": int(self.ds.n_channels),
            "soma_target": {"clip_mv": self.cfg.soma_clip_mv, "offset_mv": self.cfg.soma_offset_mv},
            "n_parameters": int(m.n_parameters), "receptive_field_ms": int(m.history_ms),
            "history_ms": int(m.history_ms), "recurrent": bool(m.recurrent),
            "flops_per_ms": float(m.flops_per_ms), "status": status, "head_bias_init": self.head_bias_init,
            "best_val_auc": self.state.best_val_auc, "best_step": self.state.best_step})
