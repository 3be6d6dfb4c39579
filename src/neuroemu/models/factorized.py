"""A morphology-aware factorized first layer for the TCN.

A free first layer has one kernel per (unit, synapse): ``W[o, c, k]``, ``out * in * K`` parameters (6.4 M of
the published 7x128x153 network's 8.3 M on 1278 inputs). Here every synapse's kernel is a combination of
a few temporal profiles shared by its channel group::

    W[o, c, k] = sum_{p < P} A[o, c, p] * phi[g(c), p, k]

``g(c)`` is the channel's group, from the segment table (E/I type x region by default, see
:func:`channel_groups`), ``phi`` (G, P, K) the groups' profiles, ``A`` (out, in, P) per-synapse
coefficients. Parameters: ``out * in * P + G * P * K + out`` (bias): 654 k + 1.2 k for 1278 inputs,
128 units, P = 4, G = 8, K = 39, against 6.38 M free. Synapses of one group share the shapes of their
responses (their time courses differ only through the P coefficients), which is what dendritic
filtering suggests: the PSP shape at the soma depends mostly on where the synapse sits and on its type.

Computed two ways (same function, float rounding apart):

* ``dense`` (the factorized order): filter every channel with its group's P profiles (a depthwise causal
  convolution, ``in * P * K`` multiply-adds per ms), then mix the ``in * P`` filtered signals into the
  ``out`` units (``in * P * out``): ``2 in P (K + out) + out`` FLOPs per ms, 1.83 M for the layer above
  (free: 12.8 M). Memory: an (batch, in * P, time) intermediate.
* ``sparse`` (event-driven, CPU): the kernel ``W`` is formed once per call (``out * in * P * K``
  multiply-adds, amortised over batch x time) and applied by the event-driven convolution of
  :mod:`neuroemu.models.sparse_conv`: ``K * out`` adds per input spike, as the free layer. For ~1%-dense
  input that is far cheaper than either dense order (13 spikes/ms x 39 x 128 = 65 k adds/ms).
* ``auto``: the rule of :class:`~neuroemu.models.sparse_conv.SparseCausalConv1d` (events on CPU for
  sparse input that needs no gradient, dense otherwise and on GPUs).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neuroemu.errors import ConfigError
from neuroemu.models.sparse_conv import SparseEvents, sparse_causal_conv1d, use_events

__all__ = ["FactorizedCausalConv1d", "channel_groups", "GROUP_BY"]

#: How channels are grouped: E/I only, E/I x segment type (basal/apical), E/I x region (basal, oblique,
#: trunk, tuft), E/I x section (one group per dendritic section and sign), or given (``channel_groups``).
GROUP_BY = ("ei", "type", "region", "section", "custom")


def _table_rows(segments: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    cols = list(segments.get("columns") or [])
    rows = segments.get("rows", segments.get("data"))
    if not cols or rows is None:
        raise ConfigError("the segment table must be a dict with 'columns' and 'rows' (or 'data'), got keys "
                          f"{sorted(segments)}")
    return cols, rows


def channel_groups(n_inputs: int, n_exc: int | None, segments: dict[str, Any] | None, group_by: str) -> list[int]:
    """Group index of every input channel (groups numbered by first appearance in channel order, so the
    excitatory groups come first).

    ``group_by="ei"`` needs only ``n_exc``; the others need the dataset's segment table: ``"type"`` its
    ``type`` column, ``"region"`` its ``region`` column (neuroemu's own tables; the imported NeuronIO table
    has none: use ``"type"``), ``"section"`` its ``section`` column (or ``type`` + ``section_index``). Segment
    k's channels are ``channel_exc`` / ``channel_inh`` when the table has them, else k and n_segments + k.
    Raises :class:`ConfigError` naming what is missing."""
    if group_by not in GROUP_BY or group_by == "custom":
        raise ConfigError(f"group_by must be one of {GROUP_BY[:-1]} to derive channel groups, got {group_by!r}")
    if group_by == "ei":
        n_e = n_exc if n_exc is not None else n_inputs // 2
        return [0] * n_e + [1] * (n_inputs - n_e)
    if segments is None:
        raise ConfigError(f"a factorized first layer with group_by={group_by!r} needs the dataset's segment table, "
                          f"and this dataset has none (an integrate-and-fire cell?): use group_by='ei' (or "
                          f"'custom' with channel_groups)")
    cols, rows = _table_rows(segments)
    n_seg = len(rows)
    if 2 * n_seg != n_inputs:
        raise ConfigError(f"the segment table has {n_seg} segments (2 x {n_seg} = {2 * n_seg} channels) but the "
                          f"dataset has n_inputs={n_inputs}")
    if n_exc is not None and n_exc != n_seg:
        raise ConfigError(f"the segment table has {n_seg} segments but the dataset has n_exc={n_exc}")

    def column(name: str) -> list[Any]:
        return [r[cols.index(name)] for r in rows]

    if group_by == "type":
        need = ["type"]
    elif group_by == "region":
        need = ["region"]
    elif "section" in cols:
        need = ["section"]
    else:
        need = ["type", "section_index"]
    missing = [c for c in need if c not in cols]
    if missing:
        hint = " (use group_by='type')" if group_by == "region" and "type" in cols else ""
        raise ConfigError(f"group_by={group_by!r} needs segment-table column(s) {missing}; the table has "
                          f"{cols}{hint}")
    keys = list(zip(*(column(c) for c in need)))
    ch_e = [int(v) for v in column("channel_exc")] if "channel_exc" in cols else list(range(n_seg))
    ch_i = [int(v) for v in column("channel_inh")] if "channel_inh" in cols else [n_seg + k for k in range(n_seg)]
    labels: list[Any] = [None] * n_inputs
    for k, key in enumerate(keys):
        for sign, ch in (("E", ch_e[k]), ("I", ch_i[k])):
            if not 0 <= ch < n_inputs or labels[ch] is not None:
                raise ConfigError(f"segment table row {k}: channel {ch} out of range or used twice")
            labels[ch] = (sign, *key)
    ids: dict[Any, int] = {}
    return [ids.setdefault(lab, len(ids)) for lab in labels]


class FactorizedCausalConv1d(nn.Module):
    """Causal conv of (batch, time, in) spikes whose kernels are ``W[o, c, k] = sum_p A[o, c, p] phi[g(c), p, k]``.

    Parameters: ``coeff`` A (out, in, P), ``profiles`` phi (G, P, K) and ``bias`` (out). ``groups``: the group
    of every input channel (G = max + 1). ``mode``: ``"auto"`` / ``"sparse"`` / ``"dense"`` (module docstring).
    The last tap multiplies the current ms (as :class:`~neuroemu.models.sparse_conv.SparseCausalConv1d`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: Sequence[int],
                 profiles: int, mode: str = "auto", max_sparse_density: float = 0.05) -> None:
        super().__init__()
        if mode not in ("auto", "dense", "sparse"):
            raise ValueError(f"first-layer mode must be 'auto', 'dense' or 'sparse', got {mode!r}")
        glist = [int(v) for v in groups]
        if len(glist) != in_channels or min(glist, default=0) < 0:
            raise ValueError(f"groups must give a group >= 0 for each of the {in_channels} channels")
        g = torch.tensor(glist, dtype=torch.int64)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.n_profiles = int(profiles)
        self.n_groups = max(glist) + 1 if glist else 1
        self.mode = mode
        self.max_sparse_density = max_sparse_density
        self.register_buffer("groups", g, persistent=False)
        self.coeff = nn.Parameter(torch.empty(out_channels, in_channels, self.n_profiles))
        self.profiles = nn.Parameter(torch.empty(self.n_groups, self.n_profiles, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    @staticmethod
    def default_profiles(n_profiles: int, kernel_size: int) -> torch.Tensor:
        """(P, K) initial profiles: unit-norm decaying exponentials ``exp(-lag / tau_p)`` with tau_p log-spaced
        from 1 ms to K / 3 ms (lag 0 at the last tap)."""
        lag = torch.arange(kernel_size - 1, -1, -1, dtype=torch.float64)
        hi = max(kernel_size / 3.0, 1.0)
        taus = torch.logspace(0.0, math.log10(hi), n_profiles, dtype=torch.float64) if n_profiles > 1 \
            else torch.tensor([hi], dtype=torch.float64)
        p = torch.exp(-lag.view(1, -1) / taus.view(-1, 1))
        return (p / p.norm(dim=1, keepdim=True)).float()

    def reset_parameters(self, kernel_std: float = 0.002, bias: float = 0.0) -> None:
        """Profiles: :meth:`default_profiles` for every group; coefficients truncated normal (at 2 sd) with sd
        ``kernel_std * sqrt(K / P)``, so that the formed kernel's RMS is ``kernel_std`` like the free layer's."""
        with torch.no_grad():
            self.profiles.copy_(self.default_profiles(self.n_profiles, self.kernel_size).expand_as(self.profiles))
            std = kernel_std * math.sqrt(self.kernel_size / self.n_profiles)
            nn.init.trunc_normal_(self.coeff, 0.0, std, -2 * std, 2 * std)
            self.bias.fill_(bias)

    def kernel(self) -> torch.Tensor:
        """The formed kernel (out, in, K), as a view of (in, K, out) memory (the event-driven layout)."""
        phi = self.profiles[self.groups]  # (in, P, K)
        return torch.einsum("ocp,cpk->cko", self.coeff, phi).permute(2, 0, 1)

    def forward(self, x: torch.Tensor | SparseEvents) -> torch.Tensor:
        """(batch, time, in) dense input or :class:`SparseEvents` -> (batch, out, time)."""
        if isinstance(x, SparseEvents):
            if x.channels != self.in_channels:
                raise ValueError(f"events have {x.channels} channels, the layer expects {self.in_channels}")
            b, t = x.batch, x.time
        else:
            if x.dim() != 3 or x.shape[-1] != self.in_channels:
                raise ValueError(f"expected input (batch, time, {self.in_channels}), got {tuple(x.shape)}")
            b, t = x.shape[0], x.shape[1]
        macs = float(b * t * self.in_channels * self.n_profiles * (self.kernel_size + self.out_channels))
        ev = use_events(x, self.mode, macs, self.max_sparse_density)
        if ev is not None:
            return sparse_causal_conv1d(ev, self.kernel(), self.bias)
        xd = x.to_dense(self.coeff.dtype) if isinstance(x, SparseEvents) else x.to(self.coeff.dtype)
        return self.dense_forward(xd)

    def dense_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The factorized order on dense (batch, time, in) input: per-channel profile filtering, then mixing."""
        k, p = self.kernel_size, self.n_profiles
        phi = self.profiles[self.groups].reshape(self.in_channels * p, 1, k)  # (in * P, 1, K)
        xt = F.pad(x.transpose(1, 2), (k - 1, 0))  # (B, in, T + K - 1)
        z = F.conv1d(xt, phi.to(xt.dtype), groups=self.in_channels)  # (B, in * P, T), channel c * P + p
        a = self.coeff.reshape(self.out_channels, self.in_channels * p, 1)
        return F.conv1d(z, a.to(z.dtype), self.bias.to(z.dtype))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"profiles={self.n_profiles}, groups={self.n_groups}, causal, mode={self.mode}")
