"""LSTM emulator: ``nn.LSTM`` on the binary inputs, one linear readout per ms (spike logit, soma, PCs).

Published baseline (spec ``emulator-families.md``): hidden 50 on 1278 inputs, 265.9 k parameters; hidden 250,
1,529.5 k. Those counts are those of an LSTM with one bias vector per gate, ``4 h (N + h + 1)`` plus the readout
``(h + 1) * 2``; PyTorch's ``nn.LSTM`` has two (``bias_ih`` and ``bias_hh``, whose sum is all that matters).
With ``single_bias=True`` (default) ``bias_hh`` is held at zero and frozen (``requires_grad=False``), so the
trainable count is the published one (265,902 and 1,529,502) and the function class is unchanged.

State carried between chunks: the LSTM's ``(h, c)``, each (layers, batch, hidden); running a trace in chunks
that hand it on equals one pass. ``history_ms`` is the burn-in (``burn_in_ms``, 150 ms by default).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from neuroemu.errors import ConfigError
from neuroemu.models._recurrent import RecurrentEmulator, check_state_batch
from neuroemu.models.base import ModelConfig, ModelOutput, check_precision
from neuroemu.models.sparse_conv import SparseEvents

__all__ = ["LSTMConfig", "LSTMEmulator"]


@dataclass
class LSTMConfig(ModelConfig):
    """Architecture of an LSTM emulator: ``hidden`` units in each of ``layers`` stacked layers;
    ``single_bias``: one trainable bias per gate (the published count; see the module docstring);
    ``forget_bias_init``: initial forget-gate bias (None: PyTorch's default uniform init);
    ``burn_in_ms``: :attr:`LSTMEmulator.history_ms`.

    Parameters: ``sum_l 4 h (n_in_l + h + b) + (h + 1)(2 + n_dvt)``, n_in_1 = N, n_in_l = h above, b = 1
    (single bias) or 2. FLOPs per ms (dense): ``sum_l 2 * 4h (n_in_l + h) + 4h b + 9h`` (gates, biases and
    the elementwise cell update) ``+ 2 h (2 + n_dvt) + 2 + n_dvt``: 533 k for hidden 50 on 1278 inputs
    (published: 266 M per 500-ms sample = 532 k per ms)."""

    family: ClassVar[str] = "lstm"
    size_field: ClassVar[str | None] = "hidden"

    hidden: int = 50
    layers: int = 1
    single_bias: bool = True
    forget_bias_init: float | None = None
    burn_in_ms: int = 150
    spike_bias_init: float = -2.0

    def __post_init__(self) -> None:
        self.check_fields()

    def check_fields(self) -> None:
        """Checks that do not depend on ``n_inputs``."""
        if self.hidden < 1:
            raise ConfigError(f"LSTMConfig.hidden must be >= 1, got {self.hidden}")
        if self.layers < 1:
            raise ConfigError(f"LSTMConfig.layers must be >= 1, got {self.layers}")
        if self.burn_in_ms < 0:
            raise ConfigError(f"LSTMConfig.burn_in_ms must be >= 0, got {self.burn_in_ms}")

    def validate(self) -> "LSTMConfig":
        """This config, checked (:class:`ConfigError` naming the field)."""
        super().validate()
        self.check_fields()
        return self

    @property
    def n_outputs(self) -> int:
        """Spike logit, somatic voltage and the dendritic components (dense supervision)."""
        return 2 + self.n_dendritic_components

    @property
    def name(self) -> str:
        """``LSTM_<hidden>`` (``LSTM_<layers>x<hidden>`` when stacked)."""
        return f"LSTM_{self.hidden}" if self.layers == 1 else f"LSTM_{self.layers}x{self.hidden}"

    def _layer_inputs(self) -> list[int]:
        return [self.n_inputs] + [self.hidden] * (self.layers - 1)

    @property
    def n_parameters(self) -> int:
        """Weights and biases of the LSTM layers and the output head."""
        h, nb = self.hidden, 1 if self.single_bias else 2
        return sum(4 * h * (n + h + nb) for n in self._layer_inputs()) + (h + 1) * self.n_outputs

    @property
    def flops_per_ms(self) -> float:
        """Floating-point operations per simulated ms (one step: gates, state update, head)."""
        h, nb, o = self.hidden, 1 if self.single_bias else 2, self.n_outputs
        per_layer = sum(2 * 4 * h * (n + h) + 4 * h * nb + 9 * h for n in self._layer_inputs())
        return float(per_layer + 2 * h * o + o)


class LSTMEmulator(RecurrentEmulator):
    """LSTM emulator: ``forward(x, state)`` with x (batch, time, n_inputs) or :class:`SparseEvents`
    (expanded to dense: the LSTM's input projection is dense), ``state`` = ``(h, c)`` of the previous chunk."""

    family: ClassVar[str] = "lstm"

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.lstm = nn.LSTM(config.n_inputs, config.hidden, config.layers, batch_first=True)
        self.readout = nn.Linear(config.hidden, config.n_outputs)
        if config.single_bias:
            for layer in range(config.layers):
                getattr(self.lstm, f"bias_hh_l{layer}").requires_grad_(False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default LSTM/Linear initialisation; ``bias_hh`` zero when ``single_bias``; forget-gate
        bias ``forget_bias_init`` when set; the spike readout's weights at zero (the data choose their sign, see
        :meth:`neuroemu.models.elm.ELM.reset_parameters`) and its bias ``spike_bias_init``, soma bias 0."""
        cfg = self.config
        self.lstm.reset_parameters()
        self.readout.reset_parameters()
        h = cfg.hidden
        with torch.no_grad():
            self.readout.weight[0].zero_()
            for layer in range(cfg.layers):
                b_ih = getattr(self.lstm, f"bias_ih_l{layer}")
                b_hh = getattr(self.lstm, f"bias_hh_l{layer}")
                if cfg.single_bias:
                    b_hh.zero_()
                if cfg.forget_bias_init is not None:  # gate order i, f, g, o
                    b_ih[h:2 * h] = cfg.forget_bias_init
                    b_hh[h:2 * h] = 0.0
            self.readout.bias[0] = cfg.spike_bias_init
            self.readout.bias[1] = 0.0

    def regularized_weights(self) -> list[torch.Tensor]:
        """The LSTM's input and recurrent weight matrices and the readout's weights."""
        ws = [getattr(self.lstm, f"weight_{k}_l{layer}") for layer in range(self.config.layers) for k in ("ih", "hh")]
        return ws + [self.readout.weight]

    def infer(self, x: torch.Tensor | SparseEvents, precision: str = "fp32", state: Any = None) -> ModelOutput:
        """Inference forward; ``bf16`` under bfloat16 autocast, except on a CPU without AVX-512, where oneDNN
        has no bfloat16 LSTM (it raises "could not create a primitive descriptor") and bfloat16 would not be
        faster: there it runs in float32."""
        if (check_precision(precision) == "bf16" and self.input_device(x).type == "cpu"
                and not torch.backends.cpu.get_cpu_capability().startswith("AVX512")):
            precision = "fp32"
        return super().infer(x, precision, state)

    def forward(self, x: torch.Tensor | SparseEvents, state: Any = None) -> ModelOutput:
        """x: (batch, time, n_inputs) spikes (any dtype) or :class:`SparseEvents` -> :class:`ModelOutput`
        whose ``state`` is the LSTM's ``(h, c)`` after the last ms."""
        self.check_input(x)
        dtype = self.readout.weight.dtype
        xd = x.to_dense(dtype) if isinstance(x, SparseEvents) else x.to(dtype)
        if state is not None:
            h0, c0 = state
            check_state_batch(self.name, h0.shape[1], xd.shape[0])
            check_state_batch(self.name, c0.shape[1], xd.shape[0])
            state = (h0.to(dtype), c0.to(dtype))
        out, (h, c) = self.lstm(xd, state)
        y = self.readout(out)  # (B, T, n_out)
        dvt = y[..., 2:].contiguous() if self.config.n_dendritic_components else None
        return ModelOutput(y[..., 0].contiguous(), y[..., 1].contiguous(), dvt, (h, c))
