"""The emulator interface: what every model family (TCN, ELM, Branch-ELM, LSTM, ...) provides.

Training, evaluation, sweeps, reports and the :class:`~neuroemu.models.emulator.Emulator` API talk to a
model only through :class:`EmulatorModel` and its :class:`ModelConfig`; a new family is a config class and
a module class registered in :mod:`neuroemu.models.registry`, nothing else.

A model maps binary input spikes, (batch, time, channels) with the excitatory channels first, to per-ms
outputs (:class:`ModelOutput`): a spike logit, the somatic voltage in the training target space
(:func:`neuroemu.dataset.targets.soma_target`) and optionally whitened principal components of the
dendritic voltages. Every model is causal: the output at ms t depends on inputs at ms <= t only.

How much history an output needs (:attr:`EmulatorModel.history_ms`):

- a feed-forward model (``recurrent = False``, the TCN) needs exactly its receptive field: running a trace
  in chunks that overlap by ``history_ms - 1`` is exact;
- a recurrent model (``recurrent = True``) carries state from the start of the trace; ``history_ms`` is the
  burn-in after which its state no longer depends on how the window started. The windowed evaluation
  protocol keeps outputs after that burn-in, training scores the loss after it, and long traces run in
  chunks that hand the state on (:meth:`EmulatorModel.forward` with ``state``), which is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from neuroemu.config import Config
from neuroemu.errors import ConfigError
from neuroemu.models.sparse_conv import SparseEvents

__all__ = ["ModelOutput", "ModelConfig", "EmulatorModel", "PRECISIONS", "check_precision", "count_parameters"]

#: Inference precisions of :meth:`EmulatorModel.infer`.
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, field: str = "precision") -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; else :class:`ConfigError` naming ``field``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{field} must be one of {PRECISIONS}, got {precision!r}")
    return precision


class ModelOutput(NamedTuple):
    """Per-ms outputs: spike logits (batch, time), soma target (batch, time), dendritic PCs (batch, time, n)
    or None; ``state``: a recurrent model's state after the last ms (None for feed-forward models)."""

    spike_logits: torch.Tensor
    soma: torch.Tensor
    dvt: torch.Tensor | None
    state: Any = None


@dataclass
class ModelConfig(Config):
    """Base of every family's architecture config. ``family`` (class attribute) names the family in
    checkpoints and run.json; ``n_inputs`` is set to the dataset's channel count by the trainer;
    ``n_dendritic_components``: whitened dendritic-voltage PCs predicted as an auxiliary target (0: none)."""

    family: ClassVar[str] = ""
    #: The field a model spec's size sets (``branch-elm:15`` -> ``memory_units=15``); None: no size.
    size_field: ClassVar[str | None] = None

    n_inputs: int = 1278
    n_dendritic_components: int = 0

    def validate(self) -> "ModelConfig":
        """Check every field; raise :class:`ConfigError` naming the field and value."""
        name = type(self).__name__
        if self.n_inputs < 1:
            raise ConfigError(f"{name}.n_inputs must be >= 1, got {self.n_inputs}")
        if self.n_dendritic_components < 0:
            raise ConfigError(f"{name}.n_dendritic_components must be >= 0, got {self.n_dendritic_components}")
        return self

    @property
    def name(self) -> str:
        """Short name of this architecture, e.g. ``TCN_7x128x153`` or ``BranchELM_15``."""
        raise NotImplementedError

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters (computed from the config, without building the model)."""
        raise NotImplementedError

    @property
    def flops_per_ms(self) -> float:
        """Floating-point operations (a multiply-add counts 2) per simulated ms for dense input, inference."""
        raise NotImplementedError

    @classmethod
    def from_spec(cls, size: str) -> "ModelConfig":
        """The config of a model spec's size part (``7x128`` for ``tcn:7x128``, ``15`` for ``branch-elm:15``);
        an empty size gives the family's default size. The default reads a positive integer into
        :attr:`size_field`; families with another size syntax override this."""
        if not size:
            return cls()
        if cls.size_field is None:
            raise ConfigError(f"{cls.family} models take no size in a model spec, got {size!r}")
        if not size.isdigit() or int(size) < 1:
            raise ConfigError(f"{cls.family} size {size!r}: expected a positive integer ({cls.size_field})")
        return cls(**{cls.size_field: int(size)})

    def with_inputs(self, n_inputs: int, **dataset_facts: Any) -> "ModelConfig":
        """This config fitted to a dataset of ``n_inputs`` channels. ``dataset_facts`` (``n_exc``, ``n_inh``,
        ``segments``: the dataset's segment table dict or None) let morphology-aware families derive their
        routing; families that need none ignore them. Raises :class:`ConfigError` when the model cannot fit."""
        return self.replace(n_inputs=int(n_inputs))

    def build(self) -> "EmulatorModel":
        """A freshly initialised model of this architecture."""
        if self.family not in _MODEL_CLASSES:
            raise ConfigError(f"no model class is registered for the family {self.family!r}")
        return _MODEL_CLASSES[self.family](self)


#: family name -> model class, filled as the family modules define their classes
_MODEL_CLASSES: dict[str, type["EmulatorModel"]] = {}


class EmulatorModel(nn.Module):
    """Base class of every emulator network. Subclasses set ``family``, take their config in ``__init__``
    and implement :meth:`forward`, :meth:`set_head_biases` and :meth:`regularized_weights`."""

    family: ClassVar[str] = ""
    #: True: outputs depend on the whole past (state); False: on the last ``history_ms`` ms only.
    recurrent: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.family:
            _MODEL_CLASSES[cls.family] = cls

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config

    # ------------------------------------------------------------------ what subclasses provide
    def forward(self, x: torch.Tensor | SparseEvents, state: Any = None) -> ModelOutput:  # pragma: no cover
        """x: (batch, time, n_inputs) spike counts (any dtype) or :class:`SparseEvents` -> :class:`ModelOutput`.
        ``state``: a recurrent model's state from the previous chunk (None: start from rest)."""
        raise NotImplementedError

    def set_head_biases(self, spike: float | None = None, soma: float | None = None) -> None:  # pragma: no cover
        """Set the spike readout's bias (log-odds of a spike per ms) and/or the soma readout's (target units)."""
        raise NotImplementedError

    def regularized_weights(self) -> list[torch.Tensor]:  # pragma: no cover
        """The weight tensors an L2 penalty applies to (kernels and readouts, not biases or norms)."""
        raise NotImplementedError

    @property
    def history_ms(self) -> int:
        """Feed-forward: the receptive field (ms); recurrent: the burn-in (ms). See the module docstring."""
        raise NotImplementedError

    def accepts_events(self, device: torch.device) -> bool:
        """Whether :class:`SparseEvents` input is the fast path on ``device`` (then spike lists go straight in;
        otherwise they are made dense first). Every model must accept both; this only picks the faster."""
        return False

    # ------------------------------------------------------------------ shared
    @property
    def name(self) -> str:
        """The architecture's short name."""
        return self.config.name

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of the built module."""
        return count_parameters(self)

    @property
    def flops_per_ms(self) -> float:
        """Inference FLOPs per simulated ms (dense input), from the config."""
        return float(self.config.flops_per_ms)

    @staticmethod
    def input_device(x: torch.Tensor | SparseEvents) -> torch.device:
        """The device of a dense or event input."""
        return x.rows.device if isinstance(x, SparseEvents) else x.device

    def check_input(self, x: torch.Tensor | SparseEvents) -> None:
        """Raise ``ValueError`` unless ``x`` is (batch, time, n_inputs) or events of n_inputs channels."""
        n = self.config.n_inputs
        if isinstance(x, SparseEvents):
            if x.channels != n:
                raise ValueError(f"{self.name} expects {n} input channels, the events have {x.channels}")
        elif x.dim() != 3 or x.shape[-1] != n:
            raise ValueError(f"{self.name} expects input (batch, time, {n}), got {tuple(x.shape)}")

    def infer(self, x: torch.Tensor | SparseEvents, precision: str = "fp32", state: Any = None) -> ModelOutput:
        """Inference forward in ``precision``: ``fp32``, or ``bf16`` (the network under bfloat16 autocast on
        the input's device, outputs returned in float32). Families may override to keep parts in fp32."""
        if check_precision(precision) == "fp32":
            return self(x, state) if state is not None else self(x)
        with torch.autocast(device_type=self.input_device(x).type, dtype=torch.bfloat16):
            out = self(x, state) if state is not None else self(x)
        return ModelOutput(out.spike_logits.float(), out.soma.float(),
                           out.dvt.float() if out.dvt is not None else None, out.state)

    def describe(self) -> dict[str, Any]:
        """Facts about this model for run.json and evaluation JSON."""
        return {"family": self.family, "name": self.name, "n_parameters": int(self.n_parameters),
                "flops_per_ms": float(self.flops_per_ms), "history_ms": int(self.history_ms),
                "recurrent": bool(self.recurrent)}


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))

