"""The published emulator: a causal temporal-convolutional network (reference section 8).

Layer k = 1..D: causal ``Conv1d(W_k, kernel K_k)`` -> ReLU -> BatchNorm (eps 1e-3, momentum 0.01, as
Keras' defaults 0.99). Heads (1x1 convolutions on the last layer's output): spike logit, somatic voltage
(clipped at -55 mV and offset by +67.7 mV, see :mod:`neuroemu.dataset.targets`) and, optionally, the
whitened principal components of the dendritic voltages. Receptive field ``T = sum(K_k - 1) + 1``.

The first layer may run event-driven (:mod:`neuroemu.models.sparse_conv`), which is much faster on
CPU for spike input with ~1% occupancy; it is numerically the same layer.

``first_layer_type="factorized"`` replaces the free first-layer kernels by a morphology-aware factorization
(:mod:`neuroemu.models.factorized`): ``W[o, c, k] = sum_p A[o, c, p] phi[g(c), p, k]``, P ``profiles`` per
channel group g (from the segment table, ``group_by``). First-layer parameters ``out * in * P + G * P * K +
out`` instead of ``out * in * K + out``; dense FLOPs ``2 in P (K + out) + out`` instead of ``2 in out K``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from neuroemu.errors import ConfigError
from neuroemu.models.base import PRECISIONS, EmulatorModel, ModelConfig, ModelOutput, check_precision
from neuroemu.models.factorized import GROUP_BY, FactorizedCausalConv1d, channel_groups
from neuroemu.models.sparse_conv import SparseCausalConv1d, SparseEvents

__all__ = ["TCNConfig", "TCN", "TCNOutput", "default_kernels", "PRECISIONS", "check_precision"]

#: The TCN's outputs are the interface's (kept under its old name).
TCNOutput = ModelOutput


def kernels_for(depth: int, receptive_field: int, first_kernel_fraction: float = 1.0 / 3.0) -> list[int]:
    """Kernel lengths of a depth-``depth`` TCN with receptive field ``receptive_field`` ms
    (``T = sum(K_k - 1) + 1``).

    - D = 1: ``[T]`` (a single temporal layer, as the published FCNs);
    - D > 1: the first layer is wide in time as published,
      ``K1 = max(round(T * first_kernel_fraction), ceil((T + D - 1) / D))`` (default fraction 1/3; the second
      term keeps the first layer at least as long as every other one), and the remaining span ``T - K1`` is
      shared as evenly as possible by layers 2..D (lower layers take the remainder), e.g.
      D = 7, T = 153 -> [51, 18, 18, 18, 18, 18, 18]; D = 3, T = 80 -> [28, 27, 27]; D = 2, T = 40 -> [21, 20].
    """
    if depth < 1 or receptive_field < 1:
        raise ConfigError(f"kernels_for: depth ({depth}) and receptive field ({receptive_field}) must be >= 1")
    if depth == 1:
        return [int(receptive_field)]
    at_least = -(-(receptive_field + depth - 1) // depth)  # ceil((T + D - 1) / D): K1 >= every other K
    k1 = max(1, min(receptive_field, max(int(round(receptive_field * first_kernel_fraction)), at_least)))
    span = receptive_field - k1
    base, extra = divmod(span, depth - 1)
    return [k1] + [1 + base + (1 if i < extra else 0) for i in range(depth - 1)]


def default_kernels(depth: int) -> list[int]:
    """Default kernel list for a depth: ``[43]`` for one layer (the published 1x128x43 FCN), otherwise
    a 39-ms first layer and 20-ms layers above it (depth 7 gives T = 153, the published 7x128x153)."""
    if depth < 1:
        raise ConfigError(f"TCNConfig.depth must be >= 1, got {depth}")
    return [43] if depth == 1 else [39] + [20] * (depth - 1)


@dataclass
class TCNConfig(ModelConfig):
    """Architecture of a TCN emulator (reference 8.2).

    ``kernels``: one kernel length (ms) per layer (``None``: :func:`default_kernels`). ``widths``: one
    width per layer (``None``: ``width`` everywhere). ``first_layer``: ``"auto"`` / ``"sparse"`` /
    ``"dense"`` (how the first layer is computed; the parameters are the same).

    ``first_layer_type``: ``"free"`` (one kernel per unit x synapse; the published layer) or
    ``"factorized"`` (:mod:`neuroemu.models.factorized`): ``profiles`` temporal profiles per channel group;
    ``group_by``: ``"ei"``, ``"type"``, ``"region"`` (default), ``"section"`` (derived by :meth:`with_inputs`
    from the dataset's segment table into ``channel_groups``) or ``"custom"`` (``channel_groups`` as given);
    ``channel_groups``: the group of every input channel (None: a single group until :meth:`with_inputs`).
    """

    family: ClassVar[str] = "tcn"

    depth: int = 7
    width: int = 128
    kernels: list[int] | None = None
    widths: list[int] | None = None
    activation: str = "relu"
    batchnorm: bool = True
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01
    kernel_init_std: float = 0.002
    first_bias_init: float = 0.0
    head_init: str = "truncated_normal"
    spike_init_std: float = 0.001
    spike_bias_init: float = -2.0
    soma_init_std: float = 0.03
    dvt_init_std: float = 0.05
    first_layer: str = "auto"
    first_layer_type: str = "free"
    profiles: int = 4
    group_by: str = "region"
    channel_groups: list[int] | None = None

    def __post_init__(self) -> None:
        if self.kernels is None:
            self.kernels = default_kernels(self.depth)
        self.kernels = [int(k) for k in self.kernels]
        if self.widths is not None:
            self.widths = [int(w) for w in self.widths]
        if self.channel_groups is not None:
            self.channel_groups = [int(g) for g in self.channel_groups]
        self.validate()

    def validate(self) -> "TCNConfig":
        """Check every field; raise :class:`ConfigError` naming the field and value."""
        super().validate()
        if self.depth < 1:
            raise ConfigError(f"TCNConfig.depth must be >= 1, got {self.depth}")
        if self.width < 1:
            raise ConfigError(f"TCNConfig.width must be >= 1, got {self.width}")
        if len(self.kernels) != self.depth:
            raise ConfigError(f"TCNConfig.kernels has {len(self.kernels)} entries {self.kernels} "
                              f"but depth is {self.depth}: give one kernel length per layer")
        if any(k < 1 for k in self.kernels):
            raise ConfigError(f"TCNConfig.kernels must all be >= 1, got {self.kernels}")
        if self.widths is not None:
            if len(self.widths) != self.depth or any(w < 1 for w in self.widths):
                raise ConfigError(f"TCNConfig.widths must hold {self.depth} positive widths, got {self.widths}")
        if self.activation not in ("relu", "linear"):
            raise ConfigError(f"TCNConfig.activation must be 'relu' or 'linear', got {self.activation!r}")
        if self.head_init not in ("truncated_normal", "normal"):
            raise ConfigError(f"TCNConfig.head_init must be 'truncated_normal' or 'normal', got {self.head_init!r}")
        if self.first_layer not in ("auto", "dense", "sparse"):
            raise ConfigError(f"TCNConfig.first_layer must be 'auto', 'dense' or 'sparse', got {self.first_layer!r}")
        if self.first_layer_type not in ("free", "factorized"):
            raise ConfigError(f"TCNConfig.first_layer_type must be 'free' or 'factorized', got {self.first_layer_type!r}")
        if self.profiles < 1:
            raise ConfigError(f"TCNConfig.profiles must be >= 1, got {self.profiles}")
        if self.group_by not in GROUP_BY:
            raise ConfigError(f"TCNConfig.group_by must be one of {GROUP_BY}, got {self.group_by!r}")
        if self.first_layer_type == "factorized" and self.channel_groups is not None:
            g = self.channel_groups
            if len(g) != self.n_inputs or min(g, default=0) < 0:
                raise ConfigError(f"TCNConfig.channel_groups must give a group >= 0 for each of the n_inputs="
                                  f"{self.n_inputs} channels, got {len(g)} entries")
        if self.first_layer_type == "factorized" and self.group_by == "custom" and self.channel_groups is None:
            raise ConfigError("TCNConfig.group_by='custom' needs channel_groups")
        return self

    def with_inputs(self, n_inputs: int, **dataset_facts: Any) -> "TCNConfig":
        """This config for a dataset of ``n_inputs`` channels. A factorized first layer gets its
        ``channel_groups`` from the dataset's segment table (``segments``) and ``n_exc`` by ``group_by``
        (kept as given for ``"custom"``); :class:`ConfigError` when the table does not allow the grouping."""
        n_inputs = int(n_inputs)
        if self.first_layer_type != "factorized":
            return self.replace(n_inputs=n_inputs)
        if self.group_by == "custom":
            return self.replace(n_inputs=n_inputs)
        n_exc = dataset_facts.get("n_exc")
        groups = channel_groups(n_inputs, None if n_exc is None else int(n_exc), dataset_facts.get("segments"),
                                self.group_by)
        return self.replace(n_inputs=n_inputs, channel_groups=groups)

    @property
    def factorized(self) -> bool:
        """True for a factorized first layer."""
        return self.first_layer_type == "factorized"

    @property
    def n_groups(self) -> int:
        """Channel groups of a factorized first layer (1 while ``channel_groups`` is None)."""
        return max(self.channel_groups) + 1 if self.channel_groups else 1

    def first_layer_groups(self) -> list[int]:
        """The group of every input channel for the factorized layer."""
        return list(self.channel_groups) if self.channel_groups is not None else [0] * self.n_inputs

    @property
    def layer_widths(self) -> list[int]:
        """Width of every layer."""
        return list(self.widths) if self.widths is not None else [self.width] * self.depth

    @property
    def receptive_field(self) -> int:
        """Receptive field T in ms: ``sum(K_k - 1) + 1``."""
        return sum(k - 1 for k in self.kernels) + 1

    @property
    def is_fcn(self) -> bool:
        """True when only the first layer is temporal (depth 1 or all later kernels 1), as published."""
        return self.depth == 1 or all(k == 1 for k in self.kernels[1:])

    @property
    def name(self) -> str:
        """Published-style name, e.g. ``TCN_7x128x153`` or ``FCN_1x128x43``; ``_fact<P>`` appended for a
        factorized first layer (``TCN_7x128x153_fact4``)."""
        widths = self.layer_widths
        mean_w = round(sum(widths) / len(widths))
        name = f"{'FCN' if self.is_fcn else 'TCN'}_{self.depth}x{mean_w}x{self.receptive_field}"
        return f"{name}_fact{self.profiles}" if self.factorized else name

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters (convolutions, BatchNorm scale/shift, heads); a factorized first
        layer has ``out * in * P + G * P * K + out``."""
        n, c_in = 0, self.n_inputs
        for i, (w, k) in enumerate(zip(self.layer_widths, self.kernels)):
            if i == 0 and self.factorized:
                n += w * c_in * self.profiles + self.n_groups * self.profiles * k + w
            else:
                n += c_in * w * k + w
            if self.batchnorm:
                n += 2 * w
            c_in = w
        n += (c_in + 1) * (2 + self.n_dendritic_components)
        return n

    @property
    def flops_per_ms(self) -> float:
        """Dense inference FLOPs per ms: ``2 * c_in * width * K`` per layer plus the heads (the published
        7x128x153 network: ~17 MFLOP per ms); a factorized first layer ``2 in P (K + out)`` (its dense
        order: profile filtering, then mixing) in place of ``2 in out K``."""
        f, c_in = 0, self.n_inputs
        for i, (w, k) in enumerate(zip(self.layer_widths, self.kernels)):
            if i == 0 and self.factorized:
                f += 2 * c_in * self.profiles * (k + w) + (4 * w if self.batchnorm else w)
            else:
                f += 2 * c_in * w * k + (4 * w if self.batchnorm else w)
            c_in = w
        return float(f + 2 * c_in * (2 + self.n_dendritic_components))

    @classmethod
    def from_spec(cls, size: str) -> "TCNConfig":
        """``DxW`` (default kernels of depth D) or ``DxWxT`` (receptive field T ms, :func:`kernels_for`)."""
        try:
            parts = [int(p) for p in size.lower().split("x")] if size else [3, 64]
        except ValueError:
            parts = []
        if len(parts) not in (2, 3) or min(parts) < 1:
            raise ConfigError(f"TCN size {size!r}: expected DEPTHxWIDTH or DEPTHxWIDTHxT, e.g. 7x128 or 3x16x80")
        kernels = kernels_for(parts[0], parts[2]) if len(parts) == 3 else None
        return cls(depth=parts[0], width=parts[1], kernels=kernels)

    @classmethod
    def iaf_network(cls, n_inputs: int = 100) -> "TCNConfig":
        """The single-unit, single-layer network of the I&F figure (reference 7): 80-ms linear filter, no BN."""
        return cls(n_inputs=n_inputs, depth=1, width=1, kernels=[80], activation="linear", batchnorm=False,
                   kernel_init_std=0.25, first_bias_init=0.1, head_init="normal", spike_init_std=0.05,
                   spike_bias_init=-2.5, soma_init_std=0.05)


def _trunc_normal_(t: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(t, mean=0.0, std=std, a=-2 * std, b=2 * std)


class TCN(EmulatorModel):
    """Causal TCN: ``forward(x)`` with x (batch, time, n_inputs) -> :class:`TCNOutput`."""

    family: ClassVar[str] = "tcn"
    recurrent: ClassVar[bool] = False

    def __init__(self, config: TCNConfig) -> None:
        super().__init__(config)
        widths = config.layer_widths
        if config.factorized:
            self.first = FactorizedCausalConv1d(config.n_inputs, widths[0], config.kernels[0],
                                                config.first_layer_groups(), config.profiles, mode=config.first_layer)
        else:
            self.first = SparseCausalConv1d(config.n_inputs, widths[0], config.kernels[0], mode=config.first_layer)
        self.convs = nn.ModuleList()
        for i in range(1, config.depth):
            self.convs.append(nn.Conv1d(widths[i - 1], widths[i], config.kernels[i]))
        self.norms = nn.ModuleList(
            [nn.BatchNorm1d(w, eps=config.bn_eps, momentum=config.bn_momentum) for w in widths]
            if config.batchnorm else [])
        w_last = widths[-1]
        self.spike_head = nn.Conv1d(w_last, 1, 1)
        self.soma_head = nn.Conv1d(w_last, 1, 1)
        self.dvt_head = nn.Conv1d(w_last, config.n_dendritic_components, 1) if config.n_dendritic_components else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Published initialisation: truncated normal kernels (std 0.002), zero biases, head inits of 8.2."""
        cfg = self.config
        if isinstance(self.first, FactorizedCausalConv1d):
            self.first.reset_parameters(cfg.kernel_init_std, cfg.first_bias_init)
        for i, conv in enumerate([self.first, *self.convs]):
            if isinstance(conv, FactorizedCausalConv1d):
                continue
            _trunc_normal_(conv.weight, cfg.kernel_init_std)
            nn.init.constant_(conv.bias, cfg.first_bias_init if i == 0 else 0.0)
        heads = [(self.spike_head, cfg.spike_init_std, cfg.spike_bias_init), (self.soma_head, cfg.soma_init_std, 0.0)]
        if self.dvt_head is not None:
            heads.append((self.dvt_head, cfg.dvt_init_std, 0.0))
        for head, std, b in heads:
            if cfg.head_init == "normal":
                nn.init.normal_(head.weight, 0.0, std)
            else:
                _trunc_normal_(head.weight, std)
            nn.init.constant_(head.bias, b)

    @torch.no_grad()
    def set_head_biases(self, spike: float | None = None, soma: float | None = None) -> None:
        """Set the spike head's bias (log-odds of a spike per ms) and/or the soma head's bias (soma target
        units), e.g. to the training data's base rate and mean instead of the published constants."""
        if spike is not None:
            self.spike_head.bias.fill_(float(spike))
        if soma is not None:
            self.soma_head.bias.fill_(float(soma))

    @property
    def history_ms(self) -> int:
        """The receptive field (ms)."""
        return self.config.receptive_field

    def regularized_weights(self) -> list[torch.Tensor]:
        """The convolution kernels and heads (the tensors the published L2 penalty applies to)."""
        return self.kernel_weights()

    def kernel_weights(self) -> list[torch.Tensor]:
        """The convolution kernels (the tensors the published L2 penalty applies to); a factorized first layer
        contributes its coefficients and profiles."""
        first = [self.first.coeff, self.first.profiles] if isinstance(self.first, FactorizedCausalConv1d) \
            else [self.first.weight]
        ws = first + [c.weight for c in self.convs] + [self.spike_head.weight, self.soma_head.weight]
        if self.dvt_head is not None:
            ws.append(self.dvt_head.weight)
        return ws

    def accepts_events(self, device: torch.device) -> bool:
        """The event-driven first layer: ``sparse`` mode, or ``auto`` on a CPU."""
        mode = self.first.mode
        return mode == "sparse" or (mode == "auto" and torch.device(device).type == "cpu")

    def set_first_layer(self, mode: str) -> None:
        """Switch the first layer between ``"auto"``, ``"sparse"`` and ``"dense"`` (same parameters)."""
        if mode not in ("auto", "dense", "sparse"):
            raise ConfigError(f"first-layer mode must be 'auto', 'dense' or 'sparse', got {mode!r}")
        self.first.mode = mode

    def _block(self, h: torch.Tensor, i: int) -> torch.Tensor:
        if self.config.activation == "relu":
            h = F.relu(h)
        if self.config.batchnorm:
            h = self.norms[i](h)
        return h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer (batch, width, time) for input (batch, time, n_inputs)."""
        h = self._block(self.first(x), 0)
        for i, conv in enumerate(self.convs, start=1):
            k = conv.kernel_size[0]
            h = self._block(conv(F.pad(h, (k - 1, 0))), i)
        return h

    def forward(self, x: torch.Tensor | SparseEvents, state: Any = None) -> TCNOutput:
        """x: (batch, time, n_inputs) spike counts (any dtype), or the same as :class:`SparseEvents` (the
        event-driven first layer then skips its search for spikes) -> :class:`TCNOutput`. ``state`` is
        ignored (the network has none)."""
        self.check_input(x)
        return self.heads(self.features(x))

    def infer(self, x: torch.Tensor | SparseEvents, precision: str = "fp32", state: Any = None) -> TCNOutput:
        """Inference forward in ``precision``: ``fp32``, or ``bf16`` (hidden layers under bfloat16 autocast on
        the input's device -- about 2x faster convolutions on CPUs with AVX512-BF16 -- heads in float32)."""
        if check_precision(precision) == "fp32":
            return self(x)
        with torch.autocast(device_type=self.input_device(x).type, dtype=torch.bfloat16):
            h = self.features(x)
        return self.heads(h.float())

    def heads(self, h: torch.Tensor) -> TCNOutput:
        """The output heads on the last hidden layer ``h`` (batch, width, time)."""
        spike = self.spike_head(h)[:, 0]
        soma = self.soma_head(h)[:, 0]
        dvt = self.dvt_head(h).transpose(1, 2) if self.dvt_head is not None else None
        return TCNOutput(spike, soma, dvt)
