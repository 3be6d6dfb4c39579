"""The ELM neuron and the Branch-ELM (Spieler et al., ICLR 2024; facts in ``spec/emulator-families.md``).

Model, per ms t (dt = 1 ms), input x_t in {0, 1}^N, sign sigma_i = +1 (excitatory) / -1 (inhibitory)::

    s_t     = kappa_s * s_{t-1} + ReLU(w_s) * sigma * x_t          synaptic traces, kappa_s = exp(-1/tau_s)
    f_t     = s_t (ELM)  |  f_t[j] = sum_{i in branch j} s_t[i]   (Branch-ELM: branch sums)
    a_t     = W1 [f_t ; kappa_m * m_{t-1}] + b1                  MLP hidden pre-activation (2 d_m units)
    delta_t = 1.7159 * tanh(2/3 * (W2 act(a_t) + b2))             act = ReLU (default) or SiLU
    m_t     = kappa_m * m_{t-1} + lambda * (1 - kappa_m) * delta_t  kappa_m = exp(-1/tau_m), tau_m log-spaced
    y_t     = W_y m_t + b_y                                        spike logit, soma (+ dendritic PCs)

tau_s = 5 ms and tau_m (1..150 ms) are fixed; w_s is learned per synapse (per routed synapse for the
Branch-ELM: a synapse that sits in 3-4 overlapping branches has a weight in each), initialised at 0.5.

How it is computed (exact, up to float rounding). Every trace shares kappa_s, so the synaptic term of the
MLP, ``W1_f f_t``, is itself an exponential filter of a weighted input sum: ``W1_f f_t = kappa_s *
(W1_f f_{t-1}) + V x_t`` with ``V = W1_f R diag(sigma ReLU(w_s))`` (R: 0/1 routing of synapses to
branches). So for a whole window at once:

1. project: ``u_t = V x_t`` -- one (batch*time, N) x (N, 2 d_m) matmul for dense input, or, event-driven,
   one ``embedding_bag`` sum of V's rows over the channels that spiked (2 d_m adds per input spike);
   when 2 d_m > branches the projection goes to the branches first (N x branches) and through W1_f after
   the filter, whichever is smaller;
2. filter: :func:`~neuroemu.models._recurrent.exp_filter` (blocked, exact, parallel over time);
3. only the nonlinear memory recursion runs per ms, in a loop over time that is vectorised over the batch,
   with a hand-written backward (:class:`_ELMRecurrence`), single-threaded by default (tiny matrices).

State carried between chunks (:class:`ELMState`): the memory m and the filtered synaptic drive (the trace
term of the hidden pre-activations, 2 d_m values per trace). Running a trace in chunks that hand the
state on equals one pass.

Branch routing (Branch-ELM): with ``routing="interleaved"`` (default) the inputs are ordered
``E_0, I_0, E_1, I_1, ...`` (segment k's excitatory channel k and inhibitory channel n_exc + k side by
side; the dataset's segment order is morphological), then branch j takes the ``branch_size`` consecutive
inputs starting at ``min(j * stride, N - branch_size)``, ``stride = ceil(N / branches)``: the last windows,
which would run past the end, are shifted back to end at the last input (on 1278 inputs, 45 x 100: windows
41-44 all cover inputs 1178-1277; on 1258: windows 42-44 cover 1158-1257), so every branch has
``branch_size`` real synapses and every input reaches at least one branch. ``routing="sequential"`` uses
the dataset's channel order as it is (excitatory then inhibitory), for cells without paired E/I channels
(the integrate-and-fire cell: 80 + 20).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from neuroemu.errors import ConfigError
from neuroemu.models import _elm_native
from neuroemu.models._recurrent import RecurrentEmulator, check_state_batch, exp_filter, loop_threads, project_inputs
from neuroemu.models.base import ModelConfig, ModelOutput, check_precision
from neuroemu.models.sparse_conv import SparseEvents, use_events

__all__ = ["ELMConfig", "BranchELMConfig", "ELM", "BranchELM", "ELMState", "branch_starts", "routing_order",
           "TANH_GAIN", "TANH_SLOPE"]

#: The squashing of the memory update: ``TANH_GAIN * tanh(TANH_SLOPE * z)`` (LeCun's scaled tanh).
TANH_GAIN = 1.7159
TANH_SLOPE = 2.0 / 3.0
_ACTIVATIONS = ("relu", "silu")
_INPUT_MODES = ("auto", "dense", "sparse")
_ROUTINGS = ("interleaved", "sequential")


class ELMState(NamedTuple):
    """State of an ELM after a chunk: ``memory`` (batch, d_m); ``synaptic`` (batch, hidden): the filtered
    synaptic drive of the MLP's hidden pre-activations (``W1_f f_t``, without the bias)."""

    memory: torch.Tensor
    synaptic: torch.Tensor


# ----------------------------------------------------------------------------------------------- configs
@dataclass
class ELMConfig(ModelConfig):
    """Architecture of an ELM neuron (no branches: the MLP sees every synapse's trace).

    ``memory_units`` d_m; ``mlp_hidden`` (None: 2 d_m); ``mlp_activation`` ``"relu"`` | ``"silu"``;
    ``synapse_weights``: learn ReLU(w_s) per synapse (False: unit weights; for the plain ELM they are
    redundant with the MLP's first layer); ``tau_s_ms``, ``tau_m_min_ms``/``tau_m_max_ms`` (log-spaced),
    ``memory_lambda``: fixed dynamics; ``n_exc``: excitatory channels (the first ``n_exc`` inputs; None:
    half of ``n_inputs``; set by :meth:`with_inputs`); ``burn_in_ms``: :attr:`ELM.history_ms`;
    ``input_mode``: how the input projection is computed (``"auto"``: event-driven on CPU for sparse input,
    ``"dense"``, ``"sparse"``; same parameters); ``loop_threads``: intra-op threads of the per-ms loop on
    CPU (1: fastest for its tiny matrices; 0: leave torch's setting).

    Parameters: ``[N if synapse_weights] + (n_f + d_m) h + h + h d_m + d_m + (d_m + 1)(2 + n_dvt)`` with
    n_f = N (ELM) or ``branches`` (Branch-ELM, whose synapse weights number ``branches * branch_size``),
    h = hidden width. FLOPs per ms: :attr:`flops_per_ms`.
    """

    family: ClassVar[str] = "elm"
    size_field: ClassVar[str | None] = "memory_units"

    memory_units: int = 20
    mlp_hidden: int | None = None
    mlp_activation: str = "relu"
    synapse_weights: bool = True
    synapse_weight_init: float = 0.5
    tau_s_ms: float = 5.0
    tau_m_min_ms: float = 1.0
    tau_m_max_ms: float = 150.0
    memory_lambda: float = 5.0
    n_exc: int | None = None
    burn_in_ms: int = 150
    spike_bias_init: float = -2.0
    input_mode: str = "auto"
    loop_threads: int = 1

    def __post_init__(self) -> None:
        self.check_fields()

    # ---- checks
    def check_fields(self) -> None:
        """Checks that do not depend on the dataset (``n_inputs``)."""
        name = type(self).__name__
        if self.memory_units < 1:
            raise ConfigError(f"{name}.memory_units must be >= 1, got {self.memory_units}")
        if self.mlp_hidden is not None and self.mlp_hidden < 1:
            raise ConfigError(f"{name}.mlp_hidden must be >= 1 or None (2 * memory_units), got {self.mlp_hidden}")
        if self.mlp_activation not in _ACTIVATIONS:
            raise ConfigError(f"{name}.mlp_activation must be one of {_ACTIVATIONS}, got {self.mlp_activation!r}")
        if not self.tau_s_ms > 0:
            raise ConfigError(f"{name}.tau_s_ms must be > 0, got {self.tau_s_ms}")
        if not 0 < self.tau_m_min_ms <= self.tau_m_max_ms:
            raise ConfigError(f"{name}: need 0 < tau_m_min_ms <= tau_m_max_ms, got {self.tau_m_min_ms}, "
                              f"{self.tau_m_max_ms}")
        if not self.memory_lambda > 0:
            raise ConfigError(f"{name}.memory_lambda must be > 0, got {self.memory_lambda}")
        if self.burn_in_ms < 0:
            raise ConfigError(f"{name}.burn_in_ms must be >= 0, got {self.burn_in_ms}")
        if self.input_mode not in _INPUT_MODES:
            raise ConfigError(f"{name}.input_mode must be one of {_INPUT_MODES}, got {self.input_mode!r}")
        if self.loop_threads < 0:
            raise ConfigError(f"{name}.loop_threads must be >= 0, got {self.loop_threads}")

    def validate(self) -> "ELMConfig":
        """Check every field, including those that depend on ``n_inputs``; raise :class:`ConfigError`."""
        super().validate()
        self.check_fields()
        if self.n_exc is not None and not 0 <= self.n_exc <= self.n_inputs:
            raise ConfigError(f"{type(self).__name__}.n_exc must lie in [0, n_inputs={self.n_inputs}], "
                              f"got {self.n_exc}")
        return self

    def with_inputs(self, n_inputs: int, **dataset_facts: Any) -> "ELMConfig":
        """This config for a dataset of ``n_inputs`` channels; ``n_exc`` (and ``n_inh``) set the E/I signs."""
        n_inputs = int(n_inputs)
        n_exc, n_inh = dataset_facts.get("n_exc"), dataset_facts.get("n_inh")
        name = type(self).__name__
        if n_exc is None and n_inh is not None:
            n_exc = n_inputs - int(n_inh)
        if n_exc is not None:
            n_exc = int(n_exc)
            if n_inh is not None and n_exc + int(n_inh) != n_inputs:
                raise ConfigError(f"{name}: the dataset has n_exc={n_exc} + n_inh={n_inh} != n_inputs={n_inputs}")
            if not 0 <= n_exc <= n_inputs:
                raise ConfigError(f"{name}: the dataset's n_exc={n_exc} does not fit n_inputs={n_inputs}")
        cfg = self.replace(n_inputs=n_inputs, n_exc=n_exc if n_exc is not None else self.n_exc)
        return cfg.validate()

    # ---- derived
    @property
    def exc_count(self) -> int:
        """Number of excitatory channels (``n_exc``, or half of ``n_inputs`` when None)."""
        return int(self.n_exc) if self.n_exc is not None else self.n_inputs // 2

    @property
    def hidden(self) -> int:
        """Width of the MLP's hidden layer (2 d_m unless ``mlp_hidden`` says otherwise)."""
        return int(self.mlp_hidden) if self.mlp_hidden is not None else 2 * self.memory_units

    @property
    def n_features(self) -> int:
        """Synaptic inputs of the MLP: every synapse (ELM) or the branch sums (Branch-ELM)."""
        return self.n_inputs

    @property
    def n_synapse_weights(self) -> int:
        """Number of learned synapse weights w_s."""
        return self.n_inputs if self.synapse_weights else 0

    @property
    def n_outputs(self) -> int:
        """Readout size: spike logit, soma, dendritic PCs."""
        return 2 + self.n_dendritic_components

    @property
    def name(self) -> str:
        """``ELM_<d_m>``."""
        return f"ELM_{self.memory_units}"

    @property
    def n_parameters(self) -> int:
        """Trainable parameters: synapse weights + MLP (two layers) + readout."""
        d, h = self.memory_units, self.hidden
        return (self.n_synapse_weights + (self.n_features + d) * h + h + h * d + d
                + (d + 1) * self.n_outputs)

    def _synaptic_flops(self) -> float:
        # cheapest exact order for the plain ELM: project the N inputs to the h hidden units (the synapse
        # weights fold into W1's columns), then filter the h projections (1 multiply-add each)
        return 2.0 * self.n_inputs * self.hidden + 2.0 * self.hidden

    @property
    def flops_per_ms(self) -> float:
        """Dense FLOPs per ms of the model in its cheapest exact form (multiply-add = 2): the synaptic part
        (ELM: ``2 N h + 2 h``; Branch-ELM: ``2 branches * branch_size + 2 branches + 2 branches * h``), the
        memory part of the MLP's first layer ``2 d_m h``, biases and activation ``2 h``, second layer
        ``2 h d_m + d_m``, squashing ``d_m``, memory update ``3 d_m``, readout ``2 d_m n_out + n_out``."""
        d, h, o = self.memory_units, self.hidden, self.n_outputs
        return float(self._synaptic_flops() + 2 * d * h + 2 * h + 2 * h * d + d + d + 3 * d + 2 * d * o + o)


@dataclass
class BranchELMConfig(ELMConfig):
    """Architecture of a Branch-ELM: :class:`ELMConfig` plus the branch routing.

    ``branches`` (d_tree), ``branch_size`` (d_brch): synapses per branch (overlapping windows, stride
    ``ceil(n_inputs / branches)``, last windows shifted back to end at the last input, see the module
    docstring); ``routing``: ``"interleaved"`` (E and I of a segment side by side; needs n_exc == n_inh) or
    ``"sequential"`` (the dataset's channel order). Published: 1278 inputs, 45 x 100, d_m = 15: 6,827
    parameters here (6.9 k published; d_m = 1: 4,601 both).
    """

    family: ClassVar[str] = "branch-elm"

    memory_units: int = 15
    branches: int = 45
    branch_size: int = 100
    routing: str = "interleaved"

    def check_fields(self) -> None:
        """:class:`ConfigError` naming the field when a Branch-ELM field is out of range."""
        super().check_fields()
        if self.branches < 1:
            raise ConfigError(f"BranchELMConfig.branches must be >= 1, got {self.branches}")
        if self.branch_size < 1:
            raise ConfigError(f"BranchELMConfig.branch_size must be >= 1, got {self.branch_size}")
        if self.routing not in _ROUTINGS:
            raise ConfigError(f"BranchELMConfig.routing must be one of {_ROUTINGS}, got {self.routing!r}")

    def check_routing(self, n_inputs: int, n_exc: int | None, n_inh: int | None) -> None:
        """:class:`ConfigError` naming the values when the routing cannot be applied to this input layout."""
        if self.routing == "interleaved":
            n_e = n_exc if n_exc is not None else (n_inputs - n_inh if n_inh is not None else n_inputs // 2)
            n_i = n_inputs - n_e
            if n_e != n_i:
                raise ConfigError(
                    f"BranchELMConfig: routing='interleaved' puts segment k's excitatory and inhibitory channels "
                    f"side by side and needs n_exc == n_inh, but the inputs have n_exc={n_e}, n_inh={n_i} "
                    f"(n_inputs={n_inputs}); use routing='sequential' to route the channels in their dataset "
                    f"order (excitatory then inhibitory), e.g. for the integrate-and-fire cell")
        if self.branch_size > n_inputs:
            raise ConfigError(f"BranchELMConfig: branch_size={self.branch_size} exceeds the n_inputs={n_inputs} "
                              f"input channels; choose branch_size <= {n_inputs}")
        stride = math.ceil(n_inputs / self.branches)
        if self.branch_size < stride:
            raise ConfigError(
                f"BranchELMConfig: branches={self.branches} x branch_size={self.branch_size} on n_inputs={n_inputs} "
                f"(stride ceil({n_inputs}/{self.branches}) = {stride}) leaves inputs on no branch; "
                f"need branch_size >= {stride} or more branches")

    def validate(self) -> "BranchELMConfig":
        """This config, checked, its routing included."""
        super().validate()
        self.check_routing(self.n_inputs, self.n_exc, None)
        return self

    def with_inputs(self, n_inputs: int, **dataset_facts: Any) -> "BranchELMConfig":
        """This config for the dataset; raises :class:`ConfigError` (naming n_exc, n_inh, n_inputs,
        branch_size) when the routing does not fit its E/I layout."""
        n_exc, n_inh = dataset_facts.get("n_exc"), dataset_facts.get("n_inh")
        self.check_routing(int(n_inputs), None if n_exc is None else int(n_exc), None if n_inh is None else int(n_inh))
        return super().with_inputs(n_inputs, **dataset_facts)

    @property
    def n_features(self) -> int:
        """Inputs of the ELM core: one summed trace per branch."""
        return self.branches

    @property
    def n_synapse_weights(self) -> int:
        """Per-synapse weights of the routed inputs (0 when ``synapse_weights`` is off)."""
        return self.branches * self.branch_size if self.synapse_weights else 0

    @property
    def name(self) -> str:
        """``BranchELM_<d_m>``."""
        return f"BranchELM_{self.memory_units}"

    def _synaptic_flops(self) -> float:
        # weighted routed inputs (one multiply-add per routed synapse), one trace per branch sum, W1_f
        b = self.branches
        return 2.0 * b * self.branch_size + 2.0 * b + 2.0 * b * self.hidden


def branch_starts(n_inputs: int, branches: int, branch_size: int) -> list[int]:
    """First (routing-order) input of every branch: ``min(j * ceil(n_inputs / branches), n_inputs - branch_size)``."""
    stride = math.ceil(n_inputs / branches)
    return [min(j * stride, n_inputs - branch_size) for j in range(branches)]


def routing_order(n_inputs: int, n_exc: int, routing: str) -> torch.Tensor:
    """Channel index at every routing position: interleaved ``[0, n_exc, 1, n_exc + 1, ...]`` or sequential."""
    if routing == "sequential":
        return torch.arange(n_inputs)
    if 2 * n_exc != n_inputs:
        raise ConfigError(f"interleaved routing needs n_exc == n_inh, got n_exc={n_exc}, n_inh={n_inputs - n_exc}")
    e = torch.arange(n_exc)
    return torch.stack((e, e + n_exc), 1).reshape(-1)


# ----------------------------------------------------------------------------------------------- recurrence
def _forward_loop(pre: torch.Tensor, m: torch.Tensor, a_mat: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
                  kappa: torch.Tensor, gain: torch.Tensor, mem: torch.Tensor, sq: torch.Tensor, silu: bool) -> None:
    """The per-ms memory recursion, in place: ``pre`` (T, B, h) holds drive + b1 and becomes the hidden
    pre-activations; ``sq`` (T, B, d) receives tanh(...), ``mem`` (T, B, d) the memories."""
    h = torch.empty_like(pre[0])
    for a, d, mt in zip(pre.unbind(0), sq.unbind(0), mem.unbind(0)):
        a.addmm_(m, a_mat)
        if silu:
            torch.sigmoid(a, out=h)
            h.mul_(a)
        else:
            torch.clamp_min(a, 0.0, out=h)
        torch.addmm(b2, h, w2, out=d)
        d.tanh_()
        torch.mul(m, kappa, out=mt)
        mt.addcmul_(gain, d)
        m = mt


def _backward_loop(g_mem: torch.Tensor, cd: torch.Tensor, actd: torch.Tensor, w2_t: torch.Tensor,
                   a_t: torch.Tensor, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Back-propagation through the recursion: gradients of the pre-activations (T, B, h), of the tanh
    arguments (T, B, d) and of the initial memory (B, d)."""
    t_len, b, d = g_mem.shape
    g_pre = actd.new_empty(actd.shape)
    g_z = g_mem.new_empty(g_mem.shape)
    gm = g_mem.new_zeros(b, d)
    g = torch.empty_like(gm)
    gms, cds, acts, gzs, gas = (x.unbind(0) for x in (g_mem, cd, actd, g_z, g_pre))
    for t in range(t_len - 1, -1, -1):
        torch.add(gms[t], gm, out=g)
        gz = gzs[t]
        torch.mul(g, cds[t], out=gz)
        ga = gas[t]
        torch.mm(gz, w2_t, out=ga)
        ga.mul_(acts[t])
        torch.mul(g, kappa, out=gm)
        gm.addmm_(ga, a_t)
    return g_pre, g_z, gm


#: How the per-ms loops run: ``"native"`` (CPU inference in the compiled kernel of
#: :mod:`neuroemu.models._elm_native` where it builds, everything else as ``"script"``), ``"script"``
#: (TorchScript-compiled on first use; falls back to eager if scripting fails) or ``"eager"`` (Python).
#: ``benchmarks/bench_families.py --ab`` measures them (docs/models.md).
LOOP_BACKEND = "native"
#: Below this batch an unfolded Branch-ELM (hidden layer wider than the branches) runs the PyTorch loop: the
#: kernel computes whole groups of 16-32 traces, which for one trace of a large model is slower (measured at
#: d_m = 45, batch 1: 39 k vs 49 k ms/s; batch 256: 0.92 M vs 0.43 M).
NATIVE_MIN_BATCH_UNFOLDED = 4
_SCRIPTED: tuple[Any, Any] | None = None


def _loops() -> tuple[Any, Any]:
    """(forward loop, backward loop) of :data:`LOOP_BACKEND`."""
    global _SCRIPTED
    if LOOP_BACKEND in ("script", "native"):
        if _SCRIPTED is None:
            try:  # torch.jit.script is deprecated (DeprecationWarning in torch 2.13) but still works and is faster
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    _SCRIPTED = (torch.jit.script(_forward_loop), torch.jit.script(_backward_loop))
            except Exception:  # noqa: BLE001 - TorchScript unavailable or broken: the eager loops are the same
                _SCRIPTED = (_forward_loop, _backward_loop)
        return _SCRIPTED
    return _forward_loop, _backward_loop


class _ELMRecurrence(torch.autograd.Function):
    """(drive (T, B, h), b1, m0 (B, d), A (d, h), W2 (h, d), b2, kappa (d), gain (d)) -> memories (T, B, d):
    ``a_t = drive_t + b1 + m_{t-1} A``, ``m_t = kappa m_{t-1} + gain tanh(act(a_t) W2 + b2)``."""

    @staticmethod
    def forward(ctx, drive, b1, m0, a_mat, w2, b2, kappa, gain, silu: bool, threads: int):  # type: ignore[override]
        t_len, b, _ = drive.shape
        d = m0.shape[1]
        with loop_threads(threads, drive.device):
            pre = drive + b1
            mem = drive.new_empty(t_len, b, d)
            sq = drive.new_empty(t_len, b, d)
            _loops()[0](pre, m0, a_mat, w2, b2, kappa, gain, mem, sq, silu)
        ctx.silu = silu
        ctx.threads = threads
        ctx.save_for_backward(pre, mem, sq, m0, a_mat, w2, kappa, gain)
        return mem

    @staticmethod
    @once_differentiable
    def backward(ctx, g_mem):  # type: ignore[override]
        with loop_threads(ctx.threads, g_mem.device):
            return _ELMRecurrence._backward(ctx, g_mem)

    @staticmethod
    def _backward(ctx, g_mem):
        pre, mem, sq, m0, a_mat, w2, kappa, gain = ctx.saved_tensors
        t_len, b, h = pre.shape
        d = m0.shape[1]
        cd = gain * (1.0 - sq * sq)
        if ctx.silu:
            s = torch.sigmoid(pre)
            act = pre * s
            actd = s * (1.0 + pre * (1.0 - s))
        else:
            act = torch.relu(pre)
            actd = (pre > 0).to(pre.dtype)
        g_pre, g_z, g_m0 = _loops()[1](g_mem.contiguous().to(pre.dtype), cd, actd, w2.t().contiguous(),
                                          a_mat.t().contiguous(), kappa)
        need = ctx.needs_input_grad
        g_b1 = g_pre.sum((0, 1)) if need[1] else None
        g_a = None
        if need[3]:
            m_prev = torch.cat((m0.unsqueeze(0).to(pre.dtype), mem[:-1]), 0)
            g_a = m_prev.reshape(-1, d).t() @ g_pre.reshape(-1, h)
        g_w2 = act.reshape(-1, h).t() @ g_z.reshape(-1, d) if need[4] else None
        g_b2 = g_z.sum((0, 1)) if need[5] else None
        return (g_pre if need[0] else None, g_b1, g_m0 if need[2] else None, g_a, g_w2, g_b2,
                None, None, None, None)


# ----------------------------------------------------------------------------------------------- models
class ELM(RecurrentEmulator):
    """ELM neuron: ``forward(x, state)`` with x (batch, time, n_inputs) or :class:`SparseEvents`."""

    family: ClassVar[str] = "elm"

    def __init__(self, config: ELMConfig) -> None:
        super().__init__(config)
        cfg = config
        n, d, h = cfg.n_inputs, cfg.memory_units, cfg.hidden
        sign = torch.ones(n)
        sign[cfg.exc_count:] = -1.0
        self.register_buffer("sign", sign, persistent=False)
        self.synapse_weight = nn.Parameter(torch.empty(self._synapse_shape())) if cfg.synapse_weights else None
        self.mlp_in = nn.Linear(cfg.n_features + d, h)
        self.mlp_out = nn.Linear(h, d)
        self.readout = nn.Linear(d, cfg.n_outputs)
        tau_m = torch.logspace(math.log10(cfg.tau_m_min_ms), math.log10(cfg.tau_m_max_ms), d, dtype=torch.float64)
        kappa_m = torch.exp(-1.0 / tau_m)
        self.register_buffer("kappa_m", kappa_m.float(), persistent=False)
        self.register_buffer("memory_gain", (TANH_GAIN * cfg.memory_lambda * (1.0 - kappa_m)).float(),
                             persistent=False)
        self.kappa_s = math.exp(-1.0 / cfg.tau_s_ms)
        self.reset_parameters()

    def _synapse_shape(self) -> tuple[int, ...]:
        return (self.config.n_inputs,)

    def reset_parameters(self) -> None:
        """PyTorch's default Linear initialisation; synapse weights at ``synapse_weight_init`` (0.5); the spike
        readout's weights at zero and its bias at ``spike_bias_init``, soma bias 0.

        A zero spike readout lets the data choose the sign of each memory unit's vote; PyTorch's default draws
        it at random, and a short run then often stays upside down (measured on the I&F dataset of a tiny
        study, Branch-ELM d_m = 2 and 15, two seeds, 150 steps: best validation AUC 0.005-0.97 with the default,
        0.995-0.997 with zero)."""
        for lin in (self.mlp_in, self.mlp_out, self.readout):
            lin.reset_parameters()
        if self.synapse_weight is not None:
            nn.init.constant_(self.synapse_weight, self.config.synapse_weight_init)
        with torch.no_grad():
            self.readout.weight[0].zero_()
            self.readout.bias[0] = self.config.spike_bias_init
            self.readout.bias[1] = 0.0

    # ---- interface
    def regularized_weights(self) -> list[torch.Tensor]:
        """The MLP's and the readout's weight matrices (not the synapse weights, biases or fixed dynamics)."""
        return [self.mlp_in.weight, self.mlp_out.weight, self.readout.weight]

    def synapse_weights(self) -> torch.Tensor:
        """The effective signed synapse weights ``sigma * ReLU(w_s)`` (shape of ``synapse_weight``)."""
        if self.synapse_weight is None:
            return self.sign
        return F.relu(self.synapse_weight) * self.sign

    # ---- computation
    def input_maps(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(V (n_inputs, r), W or None): the input projection, filtered, then (if W) mapped by W (r, h) to
        the synaptic drive of the hidden units. ELM: V = diag(sigma ReLU(w_s)) W1_f^T (r = h)."""
        w1f = self.mlp_in.weight[:, :self.config.n_features]  # (h, n)
        return self.synapse_weights().unsqueeze(1) * w1f.t(), None

    def synaptic_drive(self, x: torch.Tensor | SparseEvents, carry: torch.Tensor | None,
                       bf16: bool = False) -> torch.Tensor:
        """Filtered synaptic drive of the hidden units, time-major (T, B, h), in the parameters' dtype;
        ``carry`` (B, h): the drive at the last ms of the previous chunk. Everything but the input projection
        runs with ``loop_threads`` threads (small operations)."""
        threads, dev = self.config.loop_threads, self.mlp_in.weight.device
        with loop_threads(threads, dev):
            v, w = self.input_maps()
        if bf16:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                u = project_inputs(x, v, self.config.input_mode, threads=threads)
        else:
            u = project_inputs(x, v, self.config.input_mode, threads=threads)
        with loop_threads(threads, dev):
            u = u.to(v.dtype).transpose(0, 1).contiguous()  # (T, B, r)
            if w is None:
                return exp_filter(u, self.kappa_s, carry=carry, threads=threads)
            drive = torch.matmul(exp_filter(u, self.kappa_s, threads=threads), w)
            if carry is not None:
                decay = torch.tensor(self.kappa_s, dtype=torch.float64) ** torch.arange(1, u.shape[0] + 1,
                                                                                       dtype=torch.float64)
                drive = drive + decay.to(drive.dtype).to(dev).view(-1, 1, 1) * carry.unsqueeze(0)
            return drive

    def accepts_events(self, device: torch.device) -> bool:
        """Spike lists go straight into the input projection on a CPU (``input_mode`` auto or sparse)."""
        mode = self.config.input_mode
        return mode == "sparse" or (mode == "auto" and torch.device(device).type == "cpu")

    def forward(self, x: torch.Tensor | SparseEvents, state: ELMState | None = None) -> ModelOutput:
        """x: (batch, time, n_inputs) spikes (any dtype) or :class:`SparseEvents`; ``state``: the
        :class:`ELMState` of the previous chunk (None: from rest) -> :class:`ModelOutput` with the new state."""
        return self._run(x, state, bf16=False)

    def infer(self, x: torch.Tensor | SparseEvents, precision: str = "fp32", state: Any = None) -> ModelOutput:
        """Inference forward; ``bf16``: the input projection (the only large matmul) in bfloat16, the filter,
        the recursion and the readout in float32 (the memory recursion accumulates over hundreds of ms)."""
        return self._run(x, state, bf16=check_precision(precision) == "bf16")

    def _run(self, x: torch.Tensor | SparseEvents, state: ELMState | None, bf16: bool) -> ModelOutput:
        self.check_input(x)
        cfg = self.config
        b = x.batch if isinstance(x, SparseEvents) else x.shape[0]
        d, h = cfg.memory_units, cfg.hidden
        dev, dtype = self.mlp_in.weight.device, self.mlp_in.weight.dtype
        if state is None:
            m0 = torch.zeros(b, d, device=dev, dtype=dtype)
            carry = None
        else:
            m0, carry = state
            check_state_batch(self.name, m0.shape[0], b)
            check_state_batch(self.name, carry.shape[0], b)
            m0, carry = m0.to(dtype), carry.to(dtype)
        with torch.autocast(device_type=dev.type, enabled=False):
            native = self._run_native(x, m0, carry, bf16)
            if native is not None:
                return native
            drive = self.synaptic_drive(x, carry, bf16)  # (T, B, h)
            t_len = drive.shape[0]
            if t_len == 0:
                empty = drive.new_zeros(b, 0)
                return ModelOutput(empty, empty, drive.new_zeros(b, 0, cfg.n_dendritic_components)
                                   if cfg.n_dendritic_components else None,
                                   state if state is not None else ELMState(m0, drive.new_zeros(b, h)))
            with loop_threads(cfg.loop_threads, dev):
                return self._recur(drive, m0)

    def _native_applies(self, b: int, t_len: int) -> bool:
        """Whether a call on ``b`` traces of ``t_len`` ms runs in the compiled kernel: CPU float32 inference (no
        gradient wanted), a non-empty window, ``LOOP_BACKEND == "native"`` and a kernel that builds."""
        w = self.mlp_in.weight
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if self.input_maps_unfolded and b < NATIVE_MIN_BATCH_UNFOLDED:
            return False
        return (LOOP_BACKEND == "native" and w.device.type == "cpu" and w.dtype == torch.float32 and not grad
                and t_len > 0 and _elm_native.available())

    @property
    def input_maps_unfolded(self) -> bool:
        """Whether a matrix follows the filter (:meth:`input_maps` returns W): a Branch-ELM whose hidden layer is
        wider than its branch count."""
        return False

    def _run_native(self, x: torch.Tensor | SparseEvents, m0: torch.Tensor, carry: torch.Tensor | None,
                    bf16: bool) -> ModelOutput | None:
        """The whole window in :func:`~neuroemu.models._elm_native.elm_forward` (None: it does not apply)."""
        b, t_len = (x.batch, x.time) if isinstance(x, SparseEvents) else (x.shape[0], x.shape[1])
        if not self._native_applies(b, t_len):
            return None
        cfg = self.config
        threads = cfg.loop_threads
        with loop_threads(threads, m0.device):
            v, w = self.input_maps()
        ev = use_events(x, cfg.input_mode, float(b * t_len * v.numel()))
        if ev is None:  # dense input: projected by one matmul, the rest in the kernel
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
                ev = project_inputs(x, v, "dense")
        w1m = self.mlp_in.weight[:, cfg.n_features:]
        mem, f_last = _elm_native.elm_forward(
            ev, v, w, carry, self.kappa_s, self.mlp_in.bias, m0, (w1m * self.kappa_m).t(),
            (TANH_SLOPE * self.mlp_out.weight).t(), TANH_SLOPE * self.mlp_out.bias, self.kappa_m, self.memory_gain,
            cfg.mlp_activation == "silu", threads=torch.get_num_threads())
        y = F.linear(mem, self.readout.weight, self.readout.bias)  # (B, T, n_out)
        dvt = y[..., 2:].contiguous() if cfg.n_dendritic_components else None
        return ModelOutput(y[..., 0].contiguous(), y[..., 1].contiguous(), dvt, ELMState(mem[:, -1], f_last))

    def _recur(self, drive: torch.Tensor, m0: torch.Tensor) -> ModelOutput:
        """Memory recursion and readout on the synaptic drive (T, B, h) from memory ``m0`` (B, d)."""
        cfg = self.config
        w1m = self.mlp_in.weight[:, cfg.n_features:]  # (h, d)
        a_mat = (w1m * self.kappa_m).t()  # (d, h): kappa_m * m enters the MLP
        w2 = (TANH_SLOPE * self.mlp_out.weight).t()  # (h, d)
        b2 = TANH_SLOPE * self.mlp_out.bias
        mem = _ELMRecurrence.apply(drive, self.mlp_in.bias, m0, a_mat, w2, b2, self.kappa_m, self.memory_gain,
                                   cfg.mlp_activation == "silu", cfg.loop_threads)  # (T, B, d)
        y = F.linear(mem, self.readout.weight, self.readout.bias).transpose(0, 1)  # (B, T, n_out)
        spike = y[..., 0].contiguous()
        soma = y[..., 1].contiguous()
        dvt = y[..., 2:].contiguous() if cfg.n_dendritic_components else None
        return ModelOutput(spike, soma, dvt, ELMState(mem[-1], drive[-1]))


class BranchELM(ELM):
    """Branch-ELM: the ELM whose MLP sees ``branches`` sums of weighted traces over overlapping windows of
    morphologically ordered (interleaved E/I) synapses; see the module docstring for the routing."""

    family: ClassVar[str] = "branch-elm"

    def __init__(self, config: BranchELMConfig) -> None:
        super().__init__(config)
        order = routing_order(config.n_inputs, config.exc_count, config.routing)
        starts = torch.tensor(branch_starts(config.n_inputs, config.branches, config.branch_size))
        positions = starts.view(-1, 1) + torch.arange(config.branch_size).view(1, -1)  # (branches, size)
        self.register_buffer("slot_channel", order[positions], persistent=False)

    def _synapse_shape(self) -> tuple[int, ...]:
        return (self.config.branches, self.config.branch_size)

    def synapse_weights(self) -> torch.Tensor:
        """Effective signed weights (branches, branch_size) of the routed synapses."""
        w = self.sign[self.slot_channel]
        return w if self.synapse_weight is None else F.relu(self.synapse_weight) * w

    def routing_matrix(self) -> torch.Tensor:
        """(n_inputs, branches): signed weight of input channel c in branch j (0 where c is not on j)."""
        cfg = self.config
        w = self.synapse_weights()
        branch = torch.arange(cfg.branches, device=w.device).view(-1, 1).expand_as(self.slot_channel)
        r = w.new_zeros(cfg.n_inputs, cfg.branches)
        return r.index_put((self.slot_channel.reshape(-1), branch.reshape(-1)), w.reshape(-1), accumulate=True)

    @property
    def input_maps_unfolded(self) -> bool:
        """Whether a matrix follows the filter: the hidden layer is wider than the branch count."""
        return self.config.hidden > self.config.branches

    def input_maps(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Folded (n_inputs, h) projection when the hidden layer is no wider than the branch count, else the
        routing matrix (n_inputs, branches) and W1_f^T (branches, h) applied after the filter."""
        cfg = self.config
        w1f = self.mlp_in.weight[:, :cfg.branches]  # (h, branches)
        if cfg.hidden <= cfg.branches:
            w = self.synapse_weights()  # (branches, size)
            rows = w.reshape(-1, 1) * w1f.t().repeat_interleave(cfg.branch_size, 0)  # (branches * size, h)
            v = rows.new_zeros(cfg.n_inputs, cfg.hidden).index_add(0, self.slot_channel.reshape(-1), rows)
            return v, None
        return self.routing_matrix(), w1f.t()
