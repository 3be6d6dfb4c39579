"""Pieces shared by the recurrent families (ELM, Branch-ELM, LSTM): input projection from dense or event
input, an exact fast exponential filter over time, a scoped thread count for per-ms loops, state checks."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F

from neuroemu.models.sparse_conv import SparseEvents, _row_offsets, use_events

__all__ = ["project_inputs", "exp_filter", "loop_threads", "check_state_batch"]


def project_inputs(x: torch.Tensor | SparseEvents, weight: torch.Tensor, mode: str = "auto",
                   max_sparse_density: float = 0.05) -> torch.Tensor:
    """``x @ weight`` for every (batch, ms): x (batch, time, n_in) dense (any dtype) or :class:`SparseEvents`,
    ``weight`` (n_in, k) -> (batch, time, k).

    ``mode``: ``"dense"`` (one matmul), ``"sparse"`` (event-driven: one ``embedding_bag`` sum of the weight
    rows of the channels that spiked, per (batch, ms): ``nnz * k`` adds) or ``"auto"`` (events on CPU when at
    most ``max_sparse_density`` of the bins are non-zero; dense on GPUs). Both are differentiable in ``weight``
    (not in ``x``)."""
    n_in, k = weight.shape
    if isinstance(x, SparseEvents):
        b, t = x.batch, x.time
    else:
        b, t = x.shape[0], x.shape[1]
    ev = use_events(x, mode, float(b * t * n_in * k), max_sparse_density)
    if ev is None:
        xd = x.to_dense(weight.dtype) if isinstance(x, SparseEvents) else x.to(weight.dtype)
        return torch.matmul(xd, weight)  # under autocast: in the autocast dtype
    offsets = _row_offsets(ev.rows, b * t)
    psw = None if ev.values is None else ev.values.to(weight.dtype)
    out = F.embedding_bag(ev.cols, weight, offsets, mode="sum", per_sample_weights=psw)
    return out.view(b, t, k)


def _decay_matrix(n: int, kappa: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n, n) lower-triangular ``kappa ** (i - j)``; powers below 1e-30 are set to 0 (no denormals)."""
    i = torch.arange(n, dtype=torch.float64)
    lag = i.view(-1, 1) - i.view(1, -1)
    p = torch.where(lag >= 0, torch.tensor(kappa, dtype=torch.float64) ** lag.clamp_min(0), torch.zeros(()))
    p[p < 1e-30] = 0.0
    return p.to(dtype=dtype, device=device)


def exp_filter(u: torch.Tensor, kappa: float, block: int = 32, carry: torch.Tensor | None = None) -> torch.Tensor:
    """The causal exponential filter ``y[t] = kappa * y[t-1] + u[t]`` along dim 0 of ``u`` (time, ...), with
    ``y[-1] = carry`` (zeros when None; shape ``u.shape[1:]``).

    Exact (no truncation) and parallel: blocks of ``block`` ms are filtered by one matmul with the
    lower-triangular decay matrix, and the block ends are chained by a second decay matrix over blocks
    (or a loop over blocks for very long inputs). Work: ``block`` multiply-adds per element. Differentiable."""
    t = u.shape[0]
    if t == 0:
        return u
    rest = u.shape[1:]
    u2 = u.reshape(t, -1)
    if carry is not None:
        u2 = torch.cat((u2[:1] + kappa * carry.reshape(1, -1).to(u2.dtype), u2[1:]), 0)
    n = min(block, t)
    nb = math.ceil(t / n)
    pad = nb * n - t
    if pad:
        u2 = F.pad(u2, (0, 0, 0, pad))
    blocks = u2.view(nb, n, -1)
    y = torch.matmul(_decay_matrix(n, kappa, u2.dtype, u2.device), blocks)  # (nb, n, R), each block from 0
    if nb > 1:
        ends = y[:, -1]  # (nb, R): block ends, each block started from rest
        kn = kappa ** n
        if nb <= 512:
            true_ends = torch.matmul(_decay_matrix(nb, kn, u2.dtype, u2.device), ends)
        else:
            acc = [ends[0]]
            for j in range(1, nb):
                acc.append(ends[j] + kn * acc[-1])
            true_ends = torch.stack(acc)
        head = (torch.tensor(kappa, dtype=torch.float64) ** torch.arange(1, n + 1, dtype=torch.float64))
        head = head.to(dtype=u2.dtype, device=u2.device).view(1, n, 1)
        y = torch.cat((y[:1], y[1:] + head * true_ends[:-1].unsqueeze(1)), 0)
    y = y.reshape(nb * n, -1)
    if pad:
        y = y[:t]
    return y.reshape(t, *rest)


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
