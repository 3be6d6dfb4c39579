"""What a complexity sweep trains and how: :class:`SweepSettings` (shared with the study) and
:class:`SweepConfig`. Override dicts (``training``, ``model``, ``evaluation``) are checked against their
target dataclass when the config is built, so a typo fails here, naming the key, not later in a worker."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from neuroemu.config import Config
from neuroemu.errors import ConfigError
from neuroemu.evaluation.protocol import EvaluationConfig, drop_first_ms_for
from neuroemu.models.registry import parse_model_spec
from neuroemu.models.tcn import TCNConfig
from neuroemu.training.config import TrainingConfig

__all__ = ["SweepSettings", "SweepConfig", "GRID_FIELDS", "training_config_for", "evaluation_config_for"]

#: SweepConfig fields that may change between runs of the same sweep directory (the grid); all the
#: others define how each configuration is trained and evaluated and must stay the same.
GRID_FIELDS = ("depths", "widths", "receptive_fields", "extra", "models")

#: TrainingConfig fields a sweep sets itself from its own fields.
_SWEEP_OWNED_TRAINING = ("max_steps", "max_minutes", "seed", "split_fractions")


def _int_list(name: str, vals: Any, allow_none: bool = False, allow_empty: bool = False) -> None:
    if vals is None and allow_none:
        return
    if (not vals and not allow_empty) or any(not isinstance(v, int) or isinstance(v, bool) or v < 1
                                             for v in vals or []):
        raise ConfigError(f"{name} must be a non-empty list of integers >= 1, got {vals!r}")


@dataclass
class SweepSettings(Config):
    """The fields a sweep and a study share (the study hands them to each cell's sweep).

    depths, widths, receptive_fields: the TCN grid (receptive fields in ms; ``None``: default kernels per depth).
    models: other emulators trained beside the grid, as model specs (``branch-elm:15``, ``lstm:50``,
    ``tcn:7x128``; :func:`neuroemu.models.registry.parse_model_spec`).
    budget_steps / budget_minutes: training budget of every configuration. preset: training preset
    (``modern``: AdamW, warm-up over a tenth of the budget (at most 200 steps), then cosine decay over the
    budget; ``published``: the staged schedule of reference 8.6, compressed to the budget). training: extra
    :class:`~neuroemu.training.config.TrainingConfig` fields. seed: training and split seed. split: ``random``
    (the dataset's split of whole trials) or ``stratified`` (:mod:`neuroemu.dataset.split`: spiking trials
    dealt to every part, for small datasets where most trials are silent). train_seeds: training runs per
    configuration (replicates): replicate k trains with seed ``seed + k`` (initialisation and batch order) on
    the same split, in run ``<name>_s<k>`` (k >= 1); the paired depth gains then average over replicates and
    their CIs resample training seeds as well as test traces (:func:`neuroemu.study.findings.data_axis`).
    """

    depths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 7])
    widths: list[int] = field(default_factory=lambda: [8, 32, 128])
    receptive_fields: list[int] | None = None
    models: list[str] = field(default_factory=list)
    budget_steps: int | None = 2000
    budget_minutes: float | None = None
    preset: str = "modern"
    training: dict[str, Any] = field(default_factory=dict)
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split: str = "random"
    seed: int = 0
    train_seeds: int = 1

    def validate(self) -> "SweepSettings":
        """Check the fields; raise :class:`ConfigError` naming the field and value at fault."""
        name = type(self).__name__
        no_grid = bool(self.models) and not self.depths and not self.widths  # other families only
        _int_list(f"{name}.depths", self.depths, allow_empty=no_grid)
        _int_list(f"{name}.widths", self.widths, allow_empty=no_grid)
        _int_list(f"{name}.receptive_fields", self.receptive_fields, allow_none=True)
        if self.budget_steps is None and self.budget_minutes is None:
            raise ConfigError(f"{name}: give a training budget (budget_steps and/or budget_minutes)")
        if self.budget_steps is not None and self.budget_steps < 1:
            raise ConfigError(f"{name}.budget_steps must be >= 1, got {self.budget_steps}")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise ConfigError(f"{name}.budget_minutes must be > 0, got {self.budget_minutes}")
        if self.preset not in ("modern", "published"):
            raise ConfigError(f"{name}.preset must be 'modern' or 'published', got {self.preset!r}")
        if isinstance(self.train_seeds, bool) or not isinstance(self.train_seeds, int) or self.train_seeds < 1:
            raise ConfigError(f"{name}.train_seeds must be an integer >= 1, got {self.train_seeds!r}")
        if self.split not in ("random", "stratified"):
            raise ConfigError(f"{name}.split must be 'random' or 'stratified', got {self.split!r}")
        for key in _SWEEP_OWNED_TRAINING:
            if key in self.training:
                raise ConfigError(f"{name}.training may not set {key!r}: use {name}'s budget_steps, "
                                  f"budget_minutes, seed and split_fractions")
        for spec in self.models:
            parse_model_spec(spec, where=f"{name}.models")
        training_config_for(self, 6000)  # the overrides must make a valid TrainingConfig
        return self

    def settings(self) -> dict[str, Any]:
        """The shared fields as a dict (what a study hands to :class:`SweepConfig`)."""
        return {f.name: getattr(self, f.name) for f in fields(SweepSettings)}


@dataclass
class SweepConfig(SweepSettings):
    """A complexity sweep: :class:`SweepSettings` plus how every configuration is built and scored.

    model: extra :class:`~neuroemu.models.tcn.TCNConfig` fields for the grid (e.g. ``{"activation": "linear"}``).
    train_fraction: train on this fraction of the split's training trials, a nested subset
    (:func:`neuroemu.dataset.split.nested_subsets`: the trials of a smaller fraction are among those of every
    larger one; validation and test trials stay the same). checkpoint: ``best`` (selected on the validation
    windows during training) or ``last``. evaluation: extra
    :class:`~neuroemu.evaluation.protocol.EvaluationConfig` fields; ``drop_first_ms`` defaults to
    :func:`~neuroemu.evaluation.protocol.drop_first_ms_for` of the trial length. first_kernel_fraction: see
    :func:`~neuroemu.study.sweep.grid.kernels_for`. extra: TCN configurations trained in addition to the grid,
    each a dict with ``label``, ``depth``, ``width``, ``kernels`` and any other TCNConfig fields (e.g. the
    published I&F network: ``{"label": "linear", "depth": 1, "width": 1, "kernels": [80],
    "activation": "linear", "batchnorm": False}``); its run is named ``<D>x<W>x<T>_<label>``.
    """

    train_fraction: float = 1.0
    checkpoint: str = "best"
    model: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    first_kernel_fraction: float = 1.0 / 3.0
    extra: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "SweepConfig":
        """Check the fields and the override dicts; raise :class:`ConfigError` naming the field at fault."""
        super().validate()
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"SweepConfig.train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.checkpoint not in ("best", "last"):
            raise ConfigError(f"SweepConfig.checkpoint must be 'best' or 'last', got {self.checkpoint!r}")
        if not 0.0 < self.first_kernel_fraction <= 1.0:
            raise ConfigError(f"SweepConfig.first_kernel_fraction must be in (0, 1], got {self.first_kernel_fraction}")
        for key in ("depth", "width", "kernels", "widths", "n_inputs"):
            if key in self.model:
                raise ConfigError(f"SweepConfig.model may not set {key!r}: the sweep grid chooses it")
        TCNConfig.from_dict({"depth": 1, "width": 1, "kernels": [1], **self.model}, _where="SweepConfig.model")
        EvaluationConfig.from_dict(dict(self.evaluation), _where="SweepConfig.evaluation")
        for i, x in enumerate(self.extra):
            if not isinstance(x, dict) or not {"label", "depth", "width", "kernels"} <= set(x):
                raise ConfigError(f"SweepConfig.extra[{i}] must be a dict with label, depth, width and kernels, "
                                  f"got {x!r}")
            if not str(x["label"]).replace("_", "").replace("-", "").isalnum():
                raise ConfigError(f"SweepConfig.extra[{i}].label {x['label']!r} must be letters, digits, - or _")
            TCNConfig.from_dict({k: v for k, v in x.items() if k != "label"}, _where=f"SweepConfig.extra[{i}]")
        return self

    def protocol_dict(self) -> dict[str, Any]:
        """The fields that define how every configuration is trained and evaluated (all but the grid)."""
        d = self.to_dict()
        for k in GRID_FIELDS:
            d.pop(k, None)
        return d


def training_config_for(config: SweepSettings, duration_ms: int, threads: int | None = None) -> TrainingConfig:
    """The :class:`TrainingConfig` of every configuration of a sweep on trials of ``duration_ms``."""
    extra = dict(config.training)
    budget = config.budget_steps
    if budget is not None:
        extra.setdefault("val_every_steps", max(1, budget // 10))
        extra.setdefault("log_every_steps", max(1, min(50, extra["val_every_steps"])))
    extra.setdefault("min_end_ms", min(500, duration_ms // 2))
    extra.setdefault("tensorboard", False)
    if config.preset == "published" and budget is not None:
        extra.setdefault("compress_schedule", True)
    if config.preset == "modern" and budget is not None:
        extra.setdefault("warmup_steps", max(1, min(200, budget // 10)))  # short budgets: reach the peak lr
    extra.setdefault("threads", threads)
    try:
        return TrainingConfig.from_dict({"preset": config.preset, "max_steps": budget,
                                         "max_minutes": config.budget_minutes, "seed": config.seed,
                                         "split_fractions": list(config.split_fractions), **extra},
                                        _where=f"{type(config).__name__}.training")
    except ConfigError as e:
        raise ConfigError(str(e)) from None


def evaluation_config_for(config: SweepConfig, duration_ms: int) -> EvaluationConfig:
    """The :class:`EvaluationConfig` of a sweep on trials of ``duration_ms`` (the published protocol, with the
    burn-in rule of :func:`~neuroemu.evaluation.protocol.drop_first_ms_for` unless the sweep sets it)."""
    return EvaluationConfig.from_dict({"drop_first_ms": drop_first_ms_for(duration_ms), **config.evaluation})
