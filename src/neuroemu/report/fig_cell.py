"""Cell-side figures: morphology by region, first-layer filters per region, I&F learned weights.

Weights come as NumPy arrays in PyTorch ``Conv1d`` layout (units, channels, taps) where, for a
causal convolution, the *last* tap multiplies the current time bin (``last_tap_is_now=True``).
Kernels are flipped for display so that lag 0 is the present (reference-system section 10, Fig. 2d).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuroemu.errors import ConfigError
from neuroemu.report._style import (
    EXC_COLOR, EXC_MEAN_COLOR, INH_COLOR, INH_MEAN_COLOR, REGION_COLORS, REGION_LABELS, as_columns,
    new_figure, smooth2, styled,
)

PANEL_REGIONS = ("basal", "oblique", "tuft")


def region_key(region, seg_type=None) -> str:
    """Map a region/type label to a figure group: 'basal', 'oblique' (oblique + trunk), 'tuft' or 'other'."""
    r = str(region if region is not None else "").strip().lower()
    t = str(seg_type if seg_type is not None else "").strip().lower()
    if r.startswith("basal") or r == "dend":
        return "basal"
    if "tuft" in r:
        return "tuft"
    if "oblique" in r or "trunk" in r or r.startswith("apic"):
        return "oblique"
    if r in ("", "none", "nan"):
        if t.startswith("basal") or t.startswith("dend"):
            return "basal"
        if t.startswith("apic"):
            return "oblique"
    return "other"


def _nice_length(extent: float) -> float:
    target = extent / 6.0
    for v in (10, 20, 50, 100, 200, 250, 500, 1000):
        if v >= target:
            return float(v)
    return 1000.0


@styled
def morphology(segments, soma_xyz=None, plane: tuple[str, str] = ("x", "y"), title: str | None = None):
    """Draw each segment as a line from its start to its end, coloured by region.

    ``segments`` is a segment table (dict of columns, list of row dicts, DataFrame or SegmentTable)
    with columns ``x0, y0, z0, x1, y1, z1`` (um) and ``region`` (basal / oblique / trunk / tuft; ``type``
    is used when a region is missing). Colours: basal magenta, oblique + trunk orange, tuft green.
    ``soma_xyz`` marks the soma (default: a 'soma' row's midpoint, else the start of the segment
    nearest the soma by path distance). A scale bar in um replaces the axes.
    """
    cols = as_columns(segments, "morphology")
    a, b = plane
    need = [f"{a}0", f"{b}0", f"{a}1", f"{b}1"]
    missing = [c for c in need if c not in cols]
    if missing:
        raise ConfigError(f"morphology: segment table lacks coordinate column(s) {missing}; has {sorted(cols)}")
    n = len(cols[need[0]])
    if n == 0:
        raise ConfigError("morphology: segment table is empty")
    regions = cols.get("region", np.array([None] * n))
    types = cols.get("type", np.array([None] * n))
    keys = np.array([region_key(r, t) for r, t in zip(regions, types)])
    p0 = np.stack([cols[need[0]], cols[need[1]]], axis=1).astype(float)
    p1 = np.stack([cols[need[2]], cols[need[3]]], axis=1).astype(float)
    diam = np.asarray(cols["diam_um"], dtype=float) if "diam_um" in cols else np.full(n, 1.0)
    lw = np.clip(np.nan_to_num(0.5 + 0.3 * diam, nan=0.8), 0.5, 3.0)
    ok = np.isfinite(p0).all(axis=1) & np.isfinite(p1).all(axis=1)
    if not ok.any():
        raise ConfigError("morphology: the segment table has no finite 3-D coordinates (x0..z1)")

    if soma_xyz is not None:
        soma = np.array([soma_xyz["xyz".index(a)], soma_xyz["xyz".index(b)]], dtype=float)
    else:
        is_soma = np.array([str(t).lower() == "soma" for t in types])
        if is_soma.any():
            i = int(np.flatnonzero(is_soma)[0])
            soma = 0.5 * (p0[i] + p1[i])
        else:
            dist_col = next((c for c in cols if "path_dist" in c), None)
            dist = np.asarray(cols[dist_col], dtype=float) if dist_col else np.arange(n, dtype=float)
            i = int(np.argmin(np.where(ok & np.isfinite(dist), dist, np.inf)))
            soma = p0[i]

    from matplotlib.collections import LineCollection

    fig = new_figure(4.6, 6.4, "morphology")
    ax = fig.subplots()
    for key in ("basal", "oblique", "tuft", "other"):
        m = (keys == key) & ok
        if not m.any():
            continue
        lc = LineCollection(np.stack([p0[m], p1[m]], axis=1), colors=REGION_COLORS[key], linewidths=lw[m],
                            capstyle="round", label=f"{REGION_LABELS[key]} ({int(m.sum())} segments)")
        ax.add_collection(lc)
    ax.plot(*soma, "o", color="k", ms=7, zorder=5)
    allp = np.concatenate([p0[ok], p1[ok], soma[None]])
    allp = allp[np.isfinite(allp).all(axis=1)]
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    extent = float(max(hi - lo))
    pad = 0.05 * extent
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    bar = _nice_length(extent)
    x_end, y_bar = hi[0] + pad * 0.5, lo[1] - pad * 0.5
    ax.plot([x_end - bar, x_end], [y_bar, y_bar], color="k", lw=2.5, solid_capstyle="butt")
    ax.text(x_end - bar / 2, y_bar + 0.012 * extent, f"{bar:g} \u00b5m", ha="center", va="bottom")
    ax.set_axis_off()
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c.get_colors()[0], lw=2.0) for c in ax.collections]
    handles.append(Line2D([], [], color="k", marker="o", ls="", ms=7))
    labels = [c.get_label() for c in ax.collections] + ["soma"]
    fig.legend(handles, labels, loc="outside lower center", ncol=2, handlelength=1.2)
    ax.set_title(title or f"morphology, {int(ok.sum())} segments ({a}-{b} projection)")
    return fig


def select_unit(weights) -> int:
    """Index of the unit (first axis of a (W, C, K) weight) with the largest L2 weight norm."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 3:
        raise ConfigError(f"select_unit: weights must be (units, channels, taps), got shape {w.shape}")
    return int(np.argmax(np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(axis=1))))


def prepare_kernels(kernel, n_exc: int, max_lag_ms: int | None = 40, last_tap_is_now: bool = True,
                    smooth: bool = True, sign_flip: bool = True, flip_window_ms: int = 12):
    """Prepare one unit's (C, K) kernel for display; return ``(kernel (C, L), flipped_sign)``.

    Flips time so column 0 is lag 0 (the present), crops to ``max_lag_ms`` taps, 2-tap smooths, and
    (``sign_flip``) negates the kernel when the excitatory weights of the first ``flip_window_ms``
    lags sum to a negative value, so that excitation is positive (the unit's sign is arbitrary).
    """
    k = np.asarray(kernel, dtype=float)
    if k.ndim != 2:
        raise ConfigError(f"prepare_kernels: kernel must be (channels, taps), got shape {k.shape}")
    if last_tap_is_now:
        k = k[:, ::-1]
    if max_lag_ms is not None:
        k = k[:, : min(int(max_lag_ms), k.shape[1])]
    if smooth and k.shape[1] > 1:
        k = smooth2(k, axis=1)
    flipped = False
    if sign_flip and k[:n_exc, :flip_window_ms].sum() < 0:
        k, flipped = -k, True
    return np.ascontiguousarray(k), flipped


def _channel_regions(regions: Sequence, n_exc: int, n_channels: int) -> np.ndarray:
    regions = list(regions)
    n_inh = n_channels - n_exc
    if len(regions) == n_channels:
        return np.array([region_key(r) for r in regions])
    if len(regions) != n_exc:
        raise ConfigError(f"first_layer_filters: 'regions' has {len(regions)} entries; expected one per "
                          f"excitatory channel ({n_exc}) or per channel ({n_channels})")
    if n_inh != n_exc:
        raise ConfigError(f"first_layer_filters: {n_inh} inhibitory channels != {n_exc} excitatory; "
                          f"pass one region per channel ({n_channels})")
    keys = np.array([region_key(r) for r in regions])
    return np.concatenate([keys, keys])


def _profiles(ax, lags, rows, color, mean_color, label, alpha=0.08):
    from matplotlib.collections import LineCollection

    if rows.shape[0] == 0:
        return
    segs = np.stack([np.broadcast_to(lags, rows.shape), rows], axis=2)
    ax.add_collection(LineCollection(segs, colors=color, alpha=alpha, linewidths=0.8))
    ax.plot(lags, rows.mean(axis=0), color=mean_color, lw=2.2, label=f"{label} mean")


@styled
def first_layer_filters(weights, n_exc: int, regions: Sequence, unit: int | None = None, max_lag_ms: int = 40,
                        last_tap_is_now: bool = True, sign_flip: bool = True, percentile: float = 99.8):
    """First-layer filters of one unit per dendritic region (reference-system section 10, Fig. 2d).

    ``weights`` is (W, C, K) with excitatory channels first; ``regions`` gives the region of each
    excitatory channel (inhibitory channel ``n_exc + k`` shares segment k's region) or of every
    channel. Top row: synapse x lag heatmaps (excitatory rows above inhibitory rows) for basal,
    oblique + trunk and tuft; bottom row: per-synapse temporal profiles (alpha 0.08) and their means
    (excitatory red, inhibitory blue). Colour limits at the ``percentile`` of |weight|.
    ``unit=None`` picks the unit with the largest weight norm.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ConfigError(f"first_layer_filters: weights must be (units, channels, taps), got shape {w.shape}")
    W, C, K = w.shape
    if not 0 < n_exc <= C:
        raise ConfigError(f"first_layer_filters: n_exc={n_exc} is outside 1..{C} channels")
    auto = unit is None
    unit = select_unit(w) if auto else int(unit)
    if not 0 <= unit < W:
        raise ConfigError(f"first_layer_filters: unit={unit} is outside 0..{W - 1}")
    keys = _channel_regions(regions, n_exc, C)
    k, flipped = prepare_kernels(w[unit], n_exc, max_lag_ms, last_tap_is_now, sign_flip=sign_flip)
    L = k.shape[1]
    lags = np.arange(L, dtype=float)
    vlim = float(np.percentile(np.abs(k), percentile)) or 1.0
    is_exc = np.arange(C) < n_exc

    fig = new_figure(10.0, 6.2, "first_layer_filters")
    axes = fig.subplots(2, 3, gridspec_kw={"height_ratios": [1.6, 1.0]}, sharex=True)
    im = None
    for j, reg in enumerate(PANEL_REGIONS):
        ax_h, ax_p = axes[0, j], axes[1, j]
        ex, ih = k[(keys == reg) & is_exc], k[(keys == reg) & ~is_exc]
        ax_h.set_title(f"{REGION_LABELS[reg]} ({ex.shape[0]} exc, {ih.shape[0]} inh)",
                       color=REGION_COLORS[reg])
        ax_p.set_xlabel("time before present (ms)")
        if ex.shape[0] + ih.shape[0] == 0:
            ax_h.text(0.5, 0.5, "no synapses", ha="center", va="center", transform=ax_h.transAxes)
            ax_h.set_yticks([])
            continue
        img = np.concatenate([ex, ih], axis=0)
        im = ax_h.imshow(img, aspect="auto", cmap="RdBu_r", vmin=-vlim, vmax=vlim, origin="upper",
                         extent=(-0.5, L - 0.5, img.shape[0] - 0.5, -0.5), interpolation="nearest")
        ax_h.axhline(ex.shape[0] - 0.5, color="k", lw=0.8)
        ax_h.set_yticks([(ex.shape[0] - 1) / 2, ex.shape[0] + (ih.shape[0] - 1) / 2])
        ax_h.set_yticklabels(["exc", "inh"])
        for lab, col in zip(ax_h.get_yticklabels(), (EXC_COLOR, INH_COLOR)):
            lab.set_color(col)
        _profiles(ax_p, lags, ex, EXC_COLOR, EXC_MEAN_COLOR, "exc")
        _profiles(ax_p, lags, ih, INH_COLOR, INH_MEAN_COLOR, "inh")
        ax_p.axhline(0, color="0.5", lw=0.6)
        ax_p.set_ylim(-vlim * 1.05, vlim * 1.05)
        ax_p.set_xlim(-0.5, L - 0.5)
    axes[0, 0].set_ylabel("synapse")
    axes[1, 0].set_ylabel("weight (a.u.)")
    axes[1, 0].legend(loc="upper right", frameon=True, framealpha=0.85, edgecolor="none")
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), label="weight (a.u.)", shrink=0.9)
    how = "largest weight norm" if auto else "chosen"
    fig.suptitle(f"first-layer filters of unit {unit} of {W} ({how})" + (", sign flipped" if flipped else "")
                 + f"\nlag 0 = now, 2-tap smoothed, colour limits at the {percentile:g}th percentile of |weight|")
    return fig


@styled
def iaf_weights(weights, n_exc: int, last_tap_is_now: bool = True, sign_flip: bool = True,
                reference_tau_ms: float | None = 20.0):
    """Learned weights of the integrate-and-fire emulator: synapse x time heatmap and temporal profiles.

    ``weights`` is (C, K) or (1, C, K) with the ``n_exc`` excitatory channels first (section 7:
    80 exc + 20 inh, 80-ms filter). Excitatory profiles red (expected positive), inhibitory blue
    (expected negative); a scaled exp(-t / ``reference_tau_ms``) shows the I&F kernel for comparison.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim == 3:
        if w.shape[0] != 1:
            raise ConfigError(f"iaf_weights: expected a single unit, got weights of shape {w.shape}")
        w = w[0]
    if w.ndim != 2:
        raise ConfigError(f"iaf_weights: weights must be (channels, taps), got shape {w.shape}")
    C, K = w.shape
    if not 0 < n_exc <= C:
        raise ConfigError(f"iaf_weights: n_exc={n_exc} is outside 1..{C} channels")
    k, flipped = prepare_kernels(w, n_exc, None, last_tap_is_now, smooth=False, sign_flip=sign_flip)
    lags = np.arange(K, dtype=float)
    vlim = float(np.abs(k).max()) or 1.0

    fig = new_figure(6.4, 6.6, "iaf_weights")
    ax_h, ax_p = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.5, 1.0]}, sharex=True)
    im = ax_h.imshow(k, aspect="auto", cmap="RdBu_r", vmin=-vlim, vmax=vlim, origin="upper",
                     extent=(-0.5, K - 0.5, C - 0.5, -0.5), interpolation="nearest")
    ax_h.axhline(n_exc - 0.5, color="k", lw=0.8)
    ax_h.set_ylabel("synapse (exc above, inh below)")
    fig.colorbar(im, ax=ax_h, label="weight (a.u.)")
    ex, ih = k[:n_exc], k[n_exc:]
    _profiles(ax_p, lags, ex, EXC_COLOR, EXC_MEAN_COLOR, f"exc ({n_exc})", alpha=0.2)
    _profiles(ax_p, lags, ih, INH_COLOR, INH_MEAN_COLOR, f"inh ({C - n_exc})", alpha=0.2)
    if reference_tau_ms:
        ref = np.exp(-lags / reference_tau_ms)
        for rows in (ex, ih):
            if rows.shape[0]:
                m = rows.mean(axis=0)
                amp = float(m @ ref / (ref @ ref))
                ax_p.plot(lags, amp * ref, color="k", ls="--", lw=1.1, zorder=5)
        ax_p.plot([], [], color="k", ls="--", lw=1.1, label=f"exp(-t/{reference_tau_ms:g} ms), fitted scale")
    ax_p.axhline(0, color="0.5", lw=0.6)
    ax_p.autoscale_view()
    ax_p.set_xlim(-0.5, K - 0.5)
    ax_p.set_xlabel("time before present (ms)")
    ax_p.set_ylabel("weight (a.u.)")
    ax_p.legend(loc="upper right", frameon=True, framealpha=0.85, edgecolor="none")
    ax_h.set_title("I&F emulator: learned first-layer weights" + (" (sign flipped)" if flipped else ""))
    return fig
