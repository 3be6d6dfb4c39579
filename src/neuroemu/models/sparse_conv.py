"""Causal 1-D convolution of sparse spike input: add kernel columns at spike events.

The emulator's input is a binary (batch, time, channels) array in which ~1% of the bins hold a
spike. A dense convolution multiplies every zero. Here the first layer is computed from the list
of events instead:

forward
    for each lag ``j`` (ms, ``0..K-1``) the bag-sum of the kernel rows ``W[:, c, K-1-j]`` of the channels
    ``c`` that spiked at each (batch, time) row (``torch.nn.functional.embedding_bag``, one bag per row),
    shifted ``j`` ms later and accumulated. Work: ``nnz * K * out`` adds; memory ``O(batch * time * out)``,
    so whole traces run in one pass.
backward (weight)
    ``dW[o, c, K-1-j] = sum over events (b, t, c) of G[b, t + j, o]``: one ``embedding_bag`` over the
    rows of the (end-padded) output gradient, one bag per (channel, tap). No unfolded copy of the
    gradient is made.
layout
    the module stores its kernel as an (out, in, K) view of (in, K, out) memory, so that neither pass
    copies a transposed kernel (a 6.4 M-parameter first layer would otherwise cost two slow strided
    copies per training step).
backward (input)
    only when the input requires a gradient (never in training): a dense transposed convolution.

Parameters have the same names and shapes as ``torch.nn.Conv1d`` (``weight`` (out, in, K), ``bias``),
so a state dict moves freely between the dense and the sparse first layer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SparseEvents", "sparse_events", "sparse_causal_conv1d", "SparseCausalConv1d",
           "dense_causal_conv1d", "event_layout_weight", "causal_conv1d_dispatch", "use_events"]


class SparseEvents:
    """Non-zero entries of a (batch, time, channels) input: flat row index ``b*T+t``, channel, value."""

    __slots__ = ("rows", "cols", "values", "batch", "time", "channels")

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor | None,
                 batch: int, time: int, channels: int) -> None:
        self.rows = rows
        self.cols = cols
        self.values = values  # None when every value is 1 (binary input)
        self.batch = batch
        self.time = time
        self.channels = channels

    @property
    def nnz(self) -> int:
        """Number of events."""
        return int(self.rows.numel())

    @property
    def density(self) -> float:
        """Fraction of (batch, time, channel) bins holding an event."""
        total = self.batch * self.time * self.channels
        return self.nnz / total if total else 0.0

    @classmethod
    def from_indices(cls, batch_index: torch.Tensor, times: torch.Tensor, channels: torch.Tensor, batch: int,
                     time: int, n_channels: int) -> "SparseEvents":
        """Events from index lists (one entry per spike; repeats add up), in any order. Skips the search for
        non-zeros that :func:`sparse_events` makes in a dense array: the fast path when inputs are spike lists."""
        b = torch.as_tensor(batch_index, dtype=torch.int64)
        t = torch.as_tensor(times, dtype=torch.int64)
        c = torch.as_tensor(channels, dtype=torch.int64)
        if not (b.shape == t.shape == c.shape) or b.dim() != 1:
            raise ValueError(f"batch_index, times and channels must be 1-D and equally long, got shapes "
                             f"{tuple(b.shape)}, {tuple(t.shape)}, {tuple(c.shape)}")
        if t.numel():
            for name, v, hi in (("batch_index", b, batch), ("times", t, time), ("channels", c, n_channels)):
                lo_v, hi_v = int(v.min()), int(v.max())
                if lo_v < 0 or hi_v >= hi:
                    raise ValueError(f"{name} must lie in [0, {hi}), got values in [{lo_v}, {hi_v}]")
        rows = b * time + t
        order = torch.argsort(rows * n_channels + c)
        return cls(rows[order].contiguous(), c[order].contiguous(), None, batch, time, n_channels)

    def to_dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The (batch, time, channels) array these events describe (repeated events add up)."""
        x = torch.zeros(self.batch * self.time, self.channels, dtype=dtype, device=self.rows.device)
        vals = torch.ones(self.nnz, dtype=dtype, device=x.device) if self.values is None else self.values.to(dtype)
        x.index_put_((self.rows, self.cols), vals, accumulate=True)
        return x.view(self.batch, self.time, self.channels)


def sparse_events(x: torch.Tensor) -> SparseEvents:
    """Find the events of a dense (batch, time, channels) tensor (any dtype; non-zero = event)."""
    if x.dim() != 3:
        raise ValueError(f"expected a (batch, time, channels) tensor, got shape {tuple(x.shape)}")
    b, t, c = x.shape
    flat = x.reshape(b * t, c)
    idx = torch.nonzero(flat)
    rows, cols = idx[:, 0].contiguous(), idx[:, 1].contiguous()
    values = None
    if rows.numel():
        vals = flat[rows, cols]
        if not bool((vals == 1).all()):
            values = vals if vals.is_floating_point() else vals.to(torch.float32)
    return SparseEvents(rows, cols, values, b, t, c)


def _row_offsets(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """CSR-style start offset of each row for sorted ``rows``."""
    counts = torch.bincount(rows, minlength=n_rows)
    return torch.cumsum(counts, 0) - counts


def _kernel_rows(weight: torch.Tensor) -> torch.Tensor:
    """The kernel as a (in * K, out) matrix, row ``c * K + k`` = ``weight[:, c, k]``. Free (a view) when the
    weight is stored in the event-friendly layout of :func:`event_layout_weight`."""
    out_ch, in_ch, k = weight.shape
    w = weight.detach().permute(1, 2, 0)
    if not w.is_contiguous():
        w = w.contiguous()
    return w.reshape(in_ch * k, out_ch)


def event_layout_weight(out_channels: int, in_channels: int, kernel_size: int, **kw) -> torch.Tensor:
    """An uninitialised (out, in, K) weight whose memory is ordered (in, K, out): a view that the event-driven
    convolution reads and writes without any transposed copy (a dense convolution copies it instead)."""
    return torch.empty(in_channels, kernel_size, out_channels, **kw).permute(2, 0, 1)


class _SparseCausalConv(torch.autograd.Function):
    """autograd Function: (events, weight, bias) -> causal conv output (batch, out, time)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, bias: torch.Tensor | None, ev: SparseEvents,
                x_dense: torch.Tensor | None):  # type: ignore[override]
        out_ch, in_ch, k = weight.shape
        b, t = ev.batch, ev.time
        dtype = weight.dtype
        rows_w = _kernel_rows(weight)  # (in * K, out)
        y = torch.zeros(b, t + k - 1, out_ch, dtype=dtype, device=weight.device)
        if ev.nnz:
            offsets = _row_offsets(ev.rows, b * t)
            psw = None if ev.values is None else ev.values.to(dtype)
            base = ev.cols * k + (k - 1)
            for j in range(k):  # tap K-1-j acts j ms after the event
                zj = F.embedding_bag(base - j, rows_w, offsets, mode="sum", per_sample_weights=psw)
                y[:, j:j + t] += zj.view(b, t, out_ch)
        y = y[:, :t]
        if bias is not None:
            y = y + bias.detach().to(dtype)
        ctx.ev = ev
        ctx.k = k
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight, x_dense if x_dense is not None else torch.empty(0))
        return y.transpose(1, 2)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        weight, x_dense = ctx.saved_tensors
        ev: SparseEvents = ctx.ev
        k = ctx.k
        out_ch, in_ch, _ = weight.shape
        b, t = ev.batch, ev.time
        g = grad_out.transpose(1, 2).to(weight.dtype)  # (b, t, out)
        grad_w = grad_b = grad_x = None
        if ctx.needs_input_grad[0]:
            # dW[o, c, k] = sum over events (b, s, c) of G[b, s + K-1-k, o], written straight into the
            # (in, K, out) layout of event_layout_weight
            gp = F.pad(g, (0, 0, 0, k - 1)).reshape(b * (t + k - 1), out_ch).contiguous()
            if ev.nnz:
                # events grouped by channel; per tap one bag per channel over the gradient rows that tap
                # reaches (K calls of nnz indices, like the forward pass; no (nnz * K) index arrays to build)
                order = torch.argsort(ev.cols, stable=True)
                rows = ev.rows[order]
                base = (rows // t) * (t + k - 1) + rows % t
                counts = torch.bincount(ev.cols, minlength=in_ch)
                offsets = torch.cumsum(counts, 0) - counts
                psw = None if ev.values is None else ev.values[order].to(weight.dtype)
                d = torch.empty(in_ch, k, out_ch, dtype=weight.dtype, device=weight.device)
                for tap in range(k):
                    d[:, tap] = F.embedding_bag(base + (k - 1 - tap), gp, offsets, mode="sum",
                                                per_sample_weights=psw)
                grad_w = d.permute(2, 0, 1)
            else:
                grad_w = torch.zeros_like(weight)
        if ctx.has_bias and ctx.needs_input_grad[1]:
            grad_b = g.sum(dim=(0, 1))
        if ctx.needs_input_grad[3] and x_dense.numel():
            # d loss / d x for the causal conv: transposed conv, dropping the left padding
            gx = F.conv_transpose1d(grad_out.to(weight.dtype), weight.contiguous())  # (b, in, t + k - 1)
            grad_x = gx[:, :, k - 1:].transpose(1, 2).to(x_dense.dtype)
        return grad_w, grad_b, None, grad_x


def sparse_causal_conv1d(x: torch.Tensor | SparseEvents, weight: torch.Tensor,
                         bias: torch.Tensor | None = None) -> torch.Tensor:
    """Causal convolution of (batch, time, in) input with ``weight`` (out, in, K) -> (batch, out, time).

    ``output[b, o, t] = bias[o] + sum_{c, k} weight[o, c, k] * x[b, t - (K - 1) + k, c]`` (zero before t = 0),
    i.e. the last tap multiplies the current time step (Keras 'causal' padding). Equal to
    :func:`dense_causal_conv1d` up to float rounding; fast when few entries of ``x`` are non-zero.
    """
    x_dense = None
    if isinstance(x, SparseEvents):
        ev = x
    else:
        ev = sparse_events(x)
        if x.requires_grad:
            x_dense = x
    if ev.channels != weight.shape[1]:
        raise ValueError(f"input has {ev.channels} channels, the layer expects {weight.shape[1]}")
    return _SparseCausalConv.apply(weight, bias, ev, x_dense)


def dense_causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Reference dense causal convolution: (batch, time, in) -> (batch, out, time)."""
    k = weight.shape[-1]
    xt = x.transpose(1, 2).to(weight.dtype)
    return F.conv1d(F.pad(xt, (k - 1, 0)), weight, bias)


def use_events(x: torch.Tensor | SparseEvents, mode: str, dense_macs: float, max_sparse_density: float = 0.05,
               min_sparse_macs: float = 0.0) -> SparseEvents | None:
    """The events to compute a layer from, or None to compute it densely, for ``mode`` ``"sparse"`` (always
    events), ``"dense"`` (never) or ``"auto"`` (events on CPU when at most ``max_sparse_density`` of the bins
    are non-zero, the input needs no gradient and the dense work ``dense_macs`` is at least
    ``min_sparse_macs``; never on GPUs). Event input in dense mode is expanded by the caller."""
    if isinstance(x, SparseEvents):
        if mode == "dense" or (mode == "auto" and x.rows.is_cuda):
            return None
        return x
    if mode == "dense":
        return None
    if mode == "sparse":
        return sparse_events(x)
    if x.is_cuda or x.requires_grad or dense_macs < min_sparse_macs:
        return None
    ev = sparse_events(x)
    return ev if ev.density <= max_sparse_density else None


def causal_conv1d_dispatch(x: torch.Tensor | SparseEvents, weight: torch.Tensor, bias: torch.Tensor | None,
                           mode: str = "auto", max_sparse_density: float = 0.05,
                           min_sparse_macs: float = 0.0) -> torch.Tensor:
    """Causal conv of (batch, time, in) input or events with ``weight`` (out, in, K), computed event-driven or
    densely as :func:`use_events` decides (the rule of :class:`SparseCausalConv1d`) -> (batch, out, time)."""
    out_ch, in_ch, k = weight.shape
    if isinstance(x, SparseEvents):
        if x.channels != in_ch:
            raise ValueError(f"events have {x.channels} channels, the layer expects {in_ch}")
        if mode == "dense" or (mode == "auto" and x.rows.is_cuda):
            return dense_causal_conv1d(x.to_dense(weight.dtype), weight, bias)
        return sparse_causal_conv1d(x, weight, bias)
    if x.dim() != 3 or x.shape[-1] != in_ch:
        raise ValueError(f"expected input (batch, time, {in_ch}), got {tuple(x.shape)}")
    if mode == "sparse":
        return sparse_causal_conv1d(x, weight, bias)
    if mode == "auto":
        macs = x.shape[0] * x.shape[1] * in_ch * k * out_ch
        ev = use_events(x, mode, macs, max_sparse_density, min_sparse_macs)
        if ev is not None:
            return sparse_causal_conv1d(ev, weight, bias)
    return dense_causal_conv1d(x, weight, bias)


class SparseCausalConv1d(nn.Module):
    """First TCN layer: causal conv of (batch, time, in) spike input, dense or event-driven.

    ``mode``: ``"sparse"`` (event-driven, :func:`sparse_causal_conv1d`), ``"dense"`` (``F.conv1d``) or
    ``"auto"`` (sparse on CPU when at most ``max_sparse_density`` of the bins are non-zero and the dense
    convolution would cost at least ``min_sparse_macs`` multiply-adds; dense otherwise and on GPUs).
    Parameters are named and shaped like ``nn.Conv1d``'s.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 mode: str = "auto", max_sparse_density: float = 0.05, min_sparse_macs: float = 0.0) -> None:
        super().__init__()
        if mode not in ("auto", "dense", "sparse"):
            raise ValueError(f"first-layer mode must be 'auto', 'dense' or 'sparse', got {mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.mode = mode
        self.max_sparse_density = max_sparse_density
        self.min_sparse_macs = min_sparse_macs
        # event-driven modes keep the kernel in (in, K, out) memory order (see event_layout_weight)
        w = torch.empty(out_channels, in_channels, kernel_size) if mode == "dense" else \
            event_layout_weight(out_channels, in_channels, kernel_size)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default Conv1d initialisation (the TCN overrides it with the published one)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor | SparseEvents) -> torch.Tensor:
        """(batch, time, in) dense input or :class:`SparseEvents` -> (batch, out, time)."""
        return causal_conv1d_dispatch(x, self.weight, self.bias, self.mode, self.max_sparse_density,
                                      self.min_sparse_macs)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"causal, mode={self.mode}")
