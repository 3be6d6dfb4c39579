"""Training configuration and the two presets: ``published`` (reference 8.6/8.7) and ``modern``."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from neuroemu.config import Config, reject_nonfinite
from neuroemu.errors import ConfigError

__all__ = ["Stage", "TrainingConfig", "PUBLISHED_STEPS_PER_EPOCH"]

PUBLISHED_STEPS_PER_EPOCH = 2880  # 10 Keras epochs x 6 files x 48 batches


@dataclass
class Stage(Config):
    """A block of steps with one learning rate and one set of loss weights [spike, soma, dendritic]."""

    steps: int
    lr: float
    loss_weights: list[float]


def _published_stages() -> list[Stage]:
    e = PUBLISHED_STEPS_PER_EPOCH
    return [Stage(40 * e, 1e-4, [1.0, 0.02, 5e-6]), Stage(40 * e, 3e-5, [2.0, 0.01, 3e-6]),
            Stage(40 * e, 1e-5, [4.0, 0.01, 1e-6]), Stage(40 * e, 3e-6, [8.0, 0.01, 1e-8]),
            Stage(90 * e, 1e-6, [9.0, 0.003, 1e-9])]


@dataclass
class TrainingConfig(Config):
    """How to train an emulator. Build one with :meth:`from_preset` (``"published"`` or ``"modern"``).

    Budget: ``max_steps`` (total optimiser steps, over resumes) and/or ``max_minutes`` (total training
    wall time, over resumes); training stops at whichever comes first, or at the end of the schedule.

    Schedules: ``lr_schedule="stages"`` runs ``stages`` one after the other (the published 5-stage
    schedule; the optimiser is re-created every ``optimizer_reset_steps`` steps and at every stage, as
    Keras' re-compilation did); ``"cosine"`` warms up linearly for ``warmup_steps`` then decays with a
    cosine to ``min_lr_ratio * lr`` at ``schedule_steps`` (default: ``max_steps``, else 20,000), then stays
    there. ``compress_schedule``: scale the stage lengths (and reset period) to fit ``max_steps``. Both
    follow the current ``max_steps``: a run resumed with the same budget continues bit for bit, one resumed
    with a larger budget stretches the rest of its schedule. :meth:`frozen` fixes the schedule instead.

    Validation every ``val_every_steps`` on the first ``val_trials`` validation traces, whole, in one
    pass (spike AUC on pooled 1-ms bins after the evaluation's burn-in,
    :func:`neuroemu.evaluation.protocol.drop_first_ms_for`); ``best.pt`` keeps the best AUC. ``patience``:
    stop early after that many validations without a better AUC (``None``: never; the best checkpoint is
    what evaluation uses either way). ``input_dropout``: during training, drop each input spike with this
    probability (a regulariser for small datasets; 0 = off, as published).
    Soma target: ``min(V, soma_clip_mv) + soma_offset_mv``. ``head_bias_from_data``: start the spike head's
    bias at the training data's log-odds of a spike per ms and the soma head's at the mean soma target,
    instead of the published constants (bias -2.0: p = 0.12 per ms against ~0.001 in the data; short runs
    then spend their budget unlearning it, and small networks learn their first feature with the wrong
    sign, measured in ``docs/training-notes.md``). ``inputs``: ``presynaptic`` (published) or
    ``transmitted`` spikes. ``threads``: CPU threads (default all cores); ``device``: auto/cpu/cuda
    (mixed precision on CUDA when ``amp``).
    """

    preset: str = "published"
    optimizer: str = "nadam"
    lr_schedule: str = "stages"
    stages: list[Stage] = field(default_factory=_published_stages)
    optimizer_reset_steps: int | None = PUBLISHED_STEPS_PER_EPOCH
    compress_schedule: bool = False
    lr: float = 1e-3
    loss_weights: list[float] = field(default_factory=lambda: [1.0, 0.02, 1e-3])
    warmup_steps: int = 200
    schedule_steps: int | None = None
    min_lr_ratio: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-7
    weight_decay: float = 0.0
    l2_kernel: float = 1e-8
    grad_clip: float | None = None
    batch_size: int = 8
    window_ms: int = 400
    sampling: str = "published"
    min_end_ms: int = 500
    group_size: int = 128
    batches_per_group: int = 48
    inputs: str = "presynaptic"
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    max_steps: int | None = None
    max_minutes: float | None = None
    log_every_steps: int = 50
    val_every_steps: int = 500
    val_trials: int = 16
    checkpoint_every_minutes: float = 5.0
    checkpoint_every_steps: int | None = None
    soma_clip_mv: float = -55.0
    soma_offset_mv: float = 67.7
    dvt_clip_mv: float = 2.0
    dvt_clip_sd: float = 3.0
    dvt_pca_trials: int = 32
    device: str = "auto"
    amp: bool = True
    threads: int | None = None
    tensorboard: bool = True
    head_bias_from_data: bool = False
    patience: int | None = None
    input_dropout: float = 0.0

    def __post_init__(self) -> None:
        self.stages = [s if isinstance(s, Stage) else Stage.from_dict(s) for s in self.stages]
        self.validate()

    @classmethod
    def preset_defaults(cls, data: dict) -> dict:
        """A dict naming a ``preset`` starts from that preset's defaults (its other keys override them)."""
        name = data.get("preset")
        return cls.from_preset(name).to_dict() if name is not None else {}

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "TrainingConfig":
        """``published``: Nadam, 5 stages of reference 8.6, optimiser reset every 2880 steps, L2 1e-8, batch 8 x
        400 ms, file-grouped sampling of 8.7. ``modern``: AdamW (lr 1e-3, weight decay 1e-2 on kernels),
        200-step warm-up then cosine decay, uniform window sampling, loss weights [1, 0.02, 1e-3], head biases
        from the training data (``head_bias_from_data``)."""
        if name == "published":
            cfg = cls(preset="published")
        elif name == "modern":
            cfg = cls(preset="modern", optimizer="adamw", lr_schedule="cosine", optimizer_reset_steps=None,
                      lr=1e-3, loss_weights=[1.0, 0.02, 1e-3], warmup_steps=200, eps=1e-8, weight_decay=1e-2,
                      l2_kernel=0.0, grad_clip=1.0, sampling="uniform", schedule_steps=None,
                      head_bias_from_data=True)
        else:
            raise ConfigError(f"unknown training preset {name!r}; choose 'published' or 'modern'")
        return cfg.replace(**overrides) if overrides else cfg

    def validate(self) -> "TrainingConfig":
        """Check fields; raise :class:`ConfigError` naming the field and value."""
        choices = {"optimizer": ("nadam", "adamw", "adam"), "lr_schedule": ("stages", "cosine"),
                   "sampling": ("published", "uniform"), "inputs": ("presynaptic", "transmitted"),
                   "device": ("auto", "cpu", "cuda")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed and not (name == "device" and str(self.device).startswith("cuda:")):
                raise ConfigError(f"TrainingConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("batch_size", "window_ms", "log_every_steps", "val_every_steps", "group_size",
                     "batches_per_group"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainingConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 0:
            raise ConfigError(f"TrainingConfig.max_steps must be >= 0, got {self.max_steps}")
        reject_nonfinite(self)
        for name in ("lr", "eps"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"TrainingConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.weight_decay < 0 or self.l2_kernel < 0:
            raise ConfigError(f"TrainingConfig.weight_decay and l2_kernel must be >= 0, got {self.weight_decay}, "
                              f"{self.l2_kernel}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"TrainingConfig.grad_clip must be > 0 or null, got {self.grad_clip}")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ConfigError(f"TrainingConfig.input_dropout must be in [0, 1), got {self.input_dropout}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"TrainingConfig.patience must be >= 1 validations or null, got {self.patience}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"TrainingConfig.max_minutes must be > 0, got {self.max_minutes}")
        if self.lr_schedule == "stages" and not self.stages:
            raise ConfigError("TrainingConfig.stages is empty but lr_schedule is 'stages'")
        for i, st in enumerate(self.stages):
            if st.steps < 1 or st.lr <= 0 or len(st.loss_weights) != 3:
                raise ConfigError(f"TrainingConfig.stages[{i}] = {st.to_dict()}: need steps >= 1, lr > 0 and "
                                  f"3 loss weights [spike, soma, dendritic]")
        if len(self.loss_weights) != 3:
            raise ConfigError(f"TrainingConfig.loss_weights needs 3 values [spike, soma, dendritic], "
                              f"got {self.loss_weights}")
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions) or \
                abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ConfigError(f"TrainingConfig.split_fractions must be 3 non-negative numbers summing to 1, "
                              f"got {self.split_fractions}")
        return self

    # ----------------------------------------------------------------- schedule
    def frozen(self) -> "TrainingConfig":
        """The same schedule with nothing left to depend on the budget: a compressed stage schedule is
        written out, the cosine length is fixed (``schedule_steps`` = ``max_steps``, or 20,000). Train with
        this config when a later, larger budget must not change the steps already planned."""
        if self.lr_schedule == "stages" and self._scale() != 1.0:
            f = self._scale()
            stages = [st.replace(steps=n) for st, n in zip(self.stages, self._stage_steps())]
            reset = max(1, int(round(self.optimizer_reset_steps * f))) if self.optimizer_reset_steps else None
            return self.replace(stages=stages, optimizer_reset_steps=reset, compress_schedule=False)
        if self.lr_schedule == "cosine" and self.schedule_steps is None:
            return self.replace(schedule_steps=self.max_steps or 20000)
        return self

    @property
    def schedule_length(self) -> int | None:
        """Steps of the whole schedule (stages: their sum, possibly compressed; cosine: None = open-ended)."""
        if self.lr_schedule == "stages":
            return sum(self._stage_steps())
        return None

    def _scale(self) -> float:
        if self.compress_schedule and self.max_steps and self.lr_schedule == "stages":
            return self.max_steps / sum(s.steps for s in self.stages)
        return 1.0

    def _stage_steps(self) -> list[int]:
        f = self._scale()
        return [max(1, int(round(s.steps * f))) for s in self.stages]

    def schedule_at(self, step: int) -> tuple[float, list[float], tuple[int, int]]:
        """(lr, loss weights, optimiser period id) for 0-based step ``step``. A new period id means a
        freshly created optimiser (the published re-compilation)."""
        if self.lr_schedule == "stages":
            bounds = self._stage_steps()
            start, idx = 0, len(bounds) - 1
            for i, n in enumerate(bounds):
                if step < start + n:
                    idx = i
                    break
                start += n
            else:
                start = sum(bounds[:-1])
            st = self.stages[idx]
            reset = self.optimizer_reset_steps
            if reset:
                reset = max(1, int(round(reset * self._scale())))
            sub = (step - start) // reset if reset else 0
            return st.lr, list(st.loss_weights), (idx, sub)
        total = self.schedule_steps or self.max_steps or 20000
        if step < self.warmup_steps:
            lr = self.lr * (step + 1) / self.warmup_steps
        else:
            p = min(1.0, (step - self.warmup_steps) / max(1, total - self.warmup_steps))
            lr = self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))
        return lr, list(self.loss_weights), (0, 0)
