"""Pieces shared by the recurrent families (ELM, Branch-ELM, LSTM): input projection from dense or event
input, an exact fast exponential filter over time, a scoped thread count for per-ms loops, state checks, and
the base class of their (spike, soma) linear readout."""
from __future__ import annotations

from contextlib import contextmanager
from typing import ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from neuroemu.models.base import EmulatorModel
from neuroemu.models.sparse_conv import SparseEvents, _row_offsets, use_events

__all__ = ["project_inputs", "exp_filter", "loop_threads", "check_state_batch", "RecurrentEmulator"]


class RecurrentEmulator(EmulatorModel):
    """A recurrent family whose ``readout`` (a linear layer) has the spike log-odds as output 0 and the soma as
    output 1, and whose config has a ``burn_in_ms``."""

    recurrent: ClassVar[bool] = True

    @property
    def history_ms(self) -> int:
        """The burn-in (``burn_in_ms``, default 150 ms): outputs before it depend on the initial state."""
        return int(self.config.burn_in_ms)

    @torch.no_grad()
    def set_head_biases(self, spike: float | None = None, soma: float | None = None) -> None:
        """Set the readout's spike bias (log-odds per ms) and/or soma bias (soma target units)."""
        if spike is not None:
            self.readout.bias[0] = float(spike)
        if soma is not None:
            self.readout.bias[1] = float(soma)


def project_inputs(x: torch.Tensor | SparseEvents, weight: torch.Tensor, mode: str = "auto",
                   max_sparse_density: float = 0.05, threads: int = 0) -> torch.Tensor:
    """``x @ weight`` for every (batch, ms): x (batch, time, n_in) dense (any dtype) or :class:`SparseEvents`,
    ``weight`` (n_in, k) -> (batch, time, k).

    ``mode``: ``"dense"`` (one matmul), ``"sparse"`` (event-driven: one ``embedding_bag`` sum of the weight
    rows of the channels that spiked, per (batch, ms): ``nnz * k`` adds) or ``"auto"`` (events on CPU when at
    most ``max_sparse_density`` of the bins are non-zero; dense on GPUs). Both are differentiable in ``weight``
    (not in ``x``). ``threads``: for the event path's backward (see :func:`loop_threads`)."""
    n_in, k = weight.shape
    if isinstance(x, SparseEvents):
        b, t = x.batch, x.time
    else:
        b, t = x.shape[0], x.shape[1]
    ev = use_events(x, mode, float(b * t * n_in * k), max_sparse_density)
    if ev is None:
        xd = x.to_dense(weight.dtype) if isinstance(x, SparseEvents) else x.to(weight.dtype)
        return torch.matmul(xd, weight)  # under autocast: in the autocast dtype
    return _EventProjection.apply(weight, ev, threads).view(b, t, k)


class _EventProjection(torch.autograd.Function):
    """(weight (n_in, k), events) -> (batch * time, k): per (batch, ms) row, the sum of the weight rows of the
    channels that spiked (times their values). Backward (weight only): ``dW[c] += value * G[row]`` over the
    events, by ``index_add_`` (``embedding_bag``'s own backward sorts the indices, ~10x slower here)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, ev: SparseEvents, threads: int):  # type: ignore[override]
        offsets = _row_offsets(ev.rows, ev.batch * ev.time)
        psw = None if ev.values is None else ev.values.to(weight.dtype)
        ctx.ev, ctx.threads, ctx.n_in = ev, threads, weight.shape[0]
        return F.embedding_bag(ev.cols, weight, offsets, mode="sum", per_sample_weights=psw)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        ev: SparseEvents = ctx.ev
        with loop_threads(ctx.threads, g.device):
            rows = g.index_select(0, ev.rows)
            if ev.values is not None:
                rows = rows * ev.values.to(g.dtype).unsqueeze(1)
            dw = g.new_zeros(ctx.n_in, g.shape[1]).index_add_(0, ev.cols, rows)
        return dw, None, None


#: Rows (batch x channels) up to which :func:`exp_filter` uses the blocked matmul; wider rows use the
#: per-ms loop. Measured here (1 thread, T = 2000, 30 channels): batch 1 blocked 0.76 ms vs loop 12 ms;
#: batch 8: 7 ms vs 10 ms; batch 256: 462 ms vs 103 ms.
BLOCKED_MAX_WIDTH = 256
_BLOCK = 32


def _decay_matrix(n: int, kappa: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n, n) lower-triangular ``kappa ** (i - j)``; powers below 1e-30 are set to 0 (no denormals)."""
    i = torch.arange(n, dtype=torch.float64)
    lag = i.view(-1, 1) - i.view(1, -1)
    p = torch.where(lag >= 0, torch.tensor(kappa, dtype=torch.float64) ** lag.clamp_min(0), torch.zeros(()))
    p[p < 1e-30] = 0.0
    return p.to(dtype=dtype, device=device)


def _filter_blocked(u: torch.Tensor, kappa: float) -> torch.Tensor:
    """Blocks of ``_BLOCK`` ms filtered by one matmul with the decay matrix, block ends chained (no grad)."""
    t = u.shape[0]
    n = min(_BLOCK, t)
    nb = -(-t // n)
    pad = nb * n - t
    up = F.pad(u, (0, 0, 0, pad)) if pad else u
    y = torch.matmul(_decay_matrix(n, kappa, u.dtype, u.device), up.view(nb, n, -1))  # (nb, n, R)
    if nb > 1:
        ends = y[:, -1].clone()
        kn = kappa ** n
        if nb <= 512:
            ends = torch.matmul(_decay_matrix(nb, kn, u.dtype, u.device), ends)
        else:
            for j in range(1, nb):
                ends[j].add_(ends[j - 1], alpha=kn)
        head = torch.tensor(kappa, dtype=torch.float64) ** torch.arange(1, n + 1, dtype=torch.float64)
        y[1:] += head.to(dtype=u.dtype, device=u.device).view(1, n, 1) * ends[:-1].unsqueeze(1)
    y = y.reshape(nb * n, -1)
    return y[:t] if pad else y


def _filter_loop(u: torch.Tensor, kappa: float) -> torch.Tensor:
    """One in-place multiply-add per ms (no grad)."""
    y = u.clone()
    rows = y.unbind(0)
    for prev, cur in zip(rows[:-1], rows[1:]):
        cur.add_(prev, alpha=kappa)
    return y


def _filter(u: torch.Tensor, kappa: float) -> torch.Tensor:
    return _filter_blocked(u, kappa) if u.shape[1] <= BLOCKED_MAX_WIDTH else _filter_loop(u, kappa)


class _ExpFilter(torch.autograd.Function):
    """``y[t] = kappa * y[t-1] + u[t]`` along dim 0 of a (T, R) tensor; backward: the same filter run backwards
    in time on the gradient, ``g_u[t] = g_y[t] + kappa * g_u[t+1]``."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, kappa: float, threads: int):  # type: ignore[override]
        ctx.threads, ctx.kappa = threads, kappa
        with loop_threads(threads, u.device):
            return _filter(u.contiguous(), kappa)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        with loop_threads(ctx.threads, g.device):
            gu = _filter(g.flip(0).contiguous(), ctx.kappa).flip(0)
        return gu, None, None


def exp_filter(u: torch.Tensor, kappa: float, carry: torch.Tensor | None = None, threads: int = 0) -> torch.Tensor:
    """The causal exponential filter ``y[t] = kappa * y[t-1] + u[t]`` along dim 0 of ``u`` (time, ...), with
    ``y[-1] = carry`` (zeros when None; shape ``u.shape[1:]``). Exact; differentiable in ``u`` and ``carry``.

    Narrow rows (batch x channels <= :data:`BLOCKED_MAX_WIDTH`): blocks of 32 ms filtered by one matmul with
    the decay matrix and chained (32 multiply-adds per element, few calls); wider rows: one in-place
    multiply-add per ms over the whole row (1 multiply-add per element, T calls). Backward (hand-written):
    the same filter run backwards in time on the gradient. ``threads``: see :func:`loop_threads`."""
    t = u.shape[0]
    if t == 0:
        return u
    rest = u.shape[1:]
    u2 = u.reshape(t, -1)
    if carry is not None:
        u2 = torch.cat((u2[:1] + kappa * carry.reshape(1, -1).to(u2.dtype), u2[1:]), 0)
    return _ExpFilter.apply(u2, float(kappa), int(threads)).reshape(t, *rest)


@contextmanager
def loop_threads(n: int, device: torch.device) -> Iterator[None]:
    """Run the body with ``n`` intra-op threads on CPU (restored afterwards); ``n <= 0`` or a GPU: unchanged.

    The per-ms loops of the recurrent families multiply matrices of a few hundred elements; with 2 threads
    each tiny GEMM pays a thread hand-off, which on a busy machine costs 5-30x its single-thread time."""
    if n <= 0 or device.type != "cpu" or torch.get_num_threads() == n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def check_state_batch(name: str, got: int, expected: int) -> None:
    """``ValueError`` when a carried state's batch size differs from the input's."""
    if got != expected:
        raise ValueError(f"{name}: the state carried in has batch size {got}, the input has {expected}")
