"""Input/output figures: input raster, voltage and spike traces, ROC, spike timing, voltage scatter.

All functions take NumPy arrays and return a :class:`matplotlib.figure.Figure` (reference-system
sections 9.4, 9.5 and 10). Times are in ms on a 1-ms grid unless stated otherwise.
"""
from __future__ import annotations

import numpy as np

from neuroemu.errors import ConfigError
from neuroemu.report._style import (
    EXC_COLOR, INH_COLOR, PRED_COLOR, TRUE_COLOR, box_smooth, new_figure, styled, time_scale,
)


def _events(arr, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ConfigError(f"input_raster: '{name}' must have shape (n, 2) = (channel, time_ms), got {a.shape}")
    return a.astype(np.int64)


@styled
def input_raster(exc, inh, n_exc: int, n_inh: int, soma_v=None, window_ms=None,
                 smooth_ms: int = 18, soma_t0_ms: float = 0.0):
    """Input raster (excitatory red above inhibitory blue) with population rates and optional soma trace.

    ``exc`` / ``inh`` are (n, 2) arrays of (channel, time_ms). The middle panel shows the population
    rate in Hz per synapse (events per ms / number of channels x 1000) box-smoothed over ``smooth_ms``.
    ``soma_v`` is a 1-ms somatic voltage trace (mV) whose first sample is at ``soma_t0_ms``.
    ``window_ms=(start, stop)`` restricts the plot (default: the whole trial).
    """
    exc, inh = _events(exc, "exc"), _events(inh, "inh")
    if window_ms is None:
        last = max([int(e[:, 1].max()) for e in (exc, inh) if len(e)] or [0])
        if soma_v is not None:
            last = max(last, int(soma_t0_ms + len(soma_v) - 1))
        window_ms = (0, last + 1)
    start, stop = int(window_ms[0]), int(window_ms[1])
    if stop <= start:
        raise ConfigError(f"input_raster: window_ms={window_ms} must have start < stop")
    div, unit = time_scale(stop - start)

    n_panels = 3 if soma_v is not None else 2
    ratios = [3.0, 1.2, 1.2][:n_panels]
    fig = new_figure(8.0, 2.2 + 1.4 * n_panels, "input_raster")
    axes = fig.subplots(n_panels, 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    ax_r, ax_rate = axes[0], axes[1]

    def sel(e):
        return e[(e[:, 1] >= start) & (e[:, 1] < stop)]

    e_in, i_in = sel(exc), sel(inh)
    n_ev = len(e_in) + len(i_in)
    ms = 2.0 if n_ev < 5000 else (1.5 if n_ev < 40000 else 1.0)
    ax_r.plot(i_in[:, 1] / div, i_in[:, 0], ".", color=INH_COLOR, ms=ms, mew=0, rasterized=True)
    ax_r.plot(e_in[:, 1] / div, n_inh + e_in[:, 0], ".", color=EXC_COLOR, ms=ms, mew=0, rasterized=True)
    ax_r.axhline(n_inh - 0.5, color="0.3", lw=0.6)
    ax_r.set_ylim(-0.5, n_exc + n_inh - 0.5)
    ax_r.set_yticks([n_inh / 2, n_inh + n_exc / 2])
    ax_r.set_yticklabels([f"inh\n({n_inh} ch)", f"exc\n({n_exc} ch)"])
    for lab, col in zip(ax_r.get_yticklabels(), (INH_COLOR, EXC_COLOR)):
        lab.set_color(col)
    ax_r.set_ylabel("input channel")
    ax_r.set_title(f"input spikes: {len(e_in)} excitatory, {len(i_in)} inhibitory events")

    t = np.arange(start, stop)
    for e, n, col, lab in ((e_in, n_exc, EXC_COLOR, "excitatory"), (i_in, n_inh, INH_COLOR, "inhibitory")):
        counts = np.bincount(e[:, 1] - start, minlength=stop - start).astype(float)
        rate = box_smooth(counts, smooth_ms) / max(n, 1) * 1000.0
        ax_rate.plot(t / div, rate, color=col, lw=1.0, label=f"{lab} (mean {counts.sum() / max(n, 1) / (stop - start) * 1000:.2f} Hz)")
    ax_rate.set_ylabel("rate\n(Hz per synapse)")
    ax_rate.set_ylim(0, ax_rate.get_ylim()[1] * 1.35)
    ax_rate.legend(loc="upper right", ncol=2)
    ax_rate.set_title(f"population rates ({smooth_ms}-ms box smoothing)", loc="left")

    if soma_v is not None:
        v = np.asarray(soma_v, dtype=float)
        tv = soma_t0_ms + np.arange(len(v))
        m = (tv >= start) & (tv < stop)
        axes[2].plot(tv[m] / div, v[m], color="k", lw=0.7)
        axes[2].set_ylabel("soma voltage\n(mV)")
    axes[-1].set_xlabel(f"time ({unit})")
    axes[-1].set_xlim(start / div, stop / div)
    return fig


def spike_onsets(spike_prob, threshold: float) -> np.ndarray:
    """Predicted spike times (ms): one per run of consecutive bins with ``spike_prob >= threshold`` (its peak)."""
    p = np.asarray(spike_prob, dtype=float)
    above = p >= threshold
    if not above.any():
        return np.zeros(0)
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return np.array([s + int(np.argmax(p[s:e])) for s, e in zip(starts, stops)], dtype=float)


def _spike_ticks(ax, times, base, height, color, style, div):
    if len(times):
        ax.vlines(np.asarray(times) / div, base, base + height, colors=color, linestyles=style, lw=1.4)


@styled
def traces(soma_true_mv, soma_pred_mv, spikes_true_times, spike_prob, threshold: float, zoom=None,
           t0_ms: float = 0.0, clip_mv: float | None = -55.0, tick_mv: float = 40.0, title: str | None = None):
    """Ground-truth (cyan) vs predicted (magenta dotted) somatic voltage with spikes as ``tick_mv`` ticks.

    Voltages are 1-ms traces in mV starting at ``t0_ms``, shown clipped at ``clip_mv`` (the evaluation's
    clip, section 9.1) so spikes appear as vertical ticks from the clip level. Predicted spikes are the
    peaks of runs of bins with ``spike_prob >= threshold``. The top panel shows the whole trace (s), the
    bottom one the ``zoom=(t0, t1)`` window in ms (default: 500 ms around the middle true spike).
    """
    vt = np.asarray(soma_true_mv, dtype=float)
    vp = np.asarray(soma_pred_mv, dtype=float)
    p = np.asarray(spike_prob, dtype=float)
    if not (len(vt) == len(vp) == len(p)):
        raise ConfigError(f"traces: lengths differ: soma_true {len(vt)}, soma_pred {len(vp)}, spike_prob {len(p)}")
    T = len(vt)
    t = t0_ms + np.arange(T)
    true_times = np.asarray(spikes_true_times, dtype=float).ravel()
    pred_times = t0_ms + spike_onsets(p, threshold)
    if clip_mv is not None:
        vt, vp = np.minimum(vt, clip_mv), np.minimum(vp, clip_mv)
    base = clip_mv if clip_mv is not None else float(np.nanmax(vt))
    if zoom is None:
        centre = true_times[len(true_times) // 2] if len(true_times) else t0_ms + T / 2
        zoom = (max(t0_ms, centre - 250), min(t0_ms + T, max(t0_ms, centre - 250) + 500))
    z0, z1 = float(zoom[0]), float(zoom[1])

    fig = new_figure(8.0, 5.2, "traces")
    ax_full, ax_zoom = fig.subplots(2, 1)
    div, unit = time_scale(T)
    for ax, d, lo, hi in ((ax_full, div, t0_ms, t0_ms + T), (ax_zoom, 1.0, z0, z1)):
        m = (t >= lo) & (t < hi)
        ax.plot(t[m] / d, vt[m], color=TRUE_COLOR, lw=1.2, label="ground truth")
        ax.plot(t[m] / d, vp[m], color=PRED_COLOR, lw=1.2, ls=":", label="prediction")
        _spike_ticks(ax, true_times[(true_times >= lo) & (true_times < hi)], base, tick_mv, TRUE_COLOR, "-", d)
        _spike_ticks(ax, pred_times[(pred_times >= lo) & (pred_times < hi)], base, tick_mv, PRED_COLOR, ":", d)
        ax.set_xlim(lo / d, hi / d)
        ymin = float(min(np.nanmin(vt[m]), np.nanmin(vp[m]))) if m.any() else base - 30.0
        top = max(base + tick_mv, float(np.nanmax(vt[m])) if m.any() else base)
        ax.set_ylim(ymin - 2.0, top + 0.3 * (top - ymin))   # headroom for the legend above the ticks
        ax.set_ylabel("soma voltage (mV)")
    ax_full.axvspan(z0 / div, z1 / div, color="0.85", zorder=0)
    ax_full.set_xlabel(f"time ({unit})")
    ax_zoom.set_xlabel("time (ms)")
    n_hit = sum(np.any(np.abs(pred_times - s) <= 10) for s in true_times)
    ax_full.set_title(title or (f"{len(true_times)} true spikes, {len(pred_times)} predicted "
                                f"({n_hit} true spikes matched within 10 ms); threshold p = {threshold:.3g}"))
    clip_txt = f"clipped at {clip_mv:g} mV, " if clip_mv is not None else ""
    ax_zoom.set_title(f"zoom: {z0:.0f}-{z1:.0f} ms (grey band above); voltage {clip_txt}"
                      f"spikes drawn as {tick_mv:g}-mV ticks", loc="left")
    ax_full.legend(loc="upper right", ncol=2)
    return fig


@styled
def roc(fpr, tpr, auc: float, operating_fp: float = 0.002, inset_max_fp: float = 0.05, inset_log: bool = False):
    """ROC curve of 1-ms spike bins with an inset for FP <= ``inset_max_fp`` (linear, or log with ``inset_log``).

    The operating point at FP = ``operating_fp`` (section 9.4) is marked in both panels.
    """
    fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    if fpr.shape != tpr.shape or fpr.ndim != 1 or fpr.size < 2:
        raise ConfigError(f"roc: fpr and tpr must be 1-D of equal length >= 2, got {fpr.shape} and {tpr.shape}")
    i_op = int(np.argmin(np.abs(fpr - operating_fp)))
    fig = new_figure(4.6, 4.4, "roc")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=0.8, label="chance")
    ax.plot(fpr, tpr, color="k", lw=1.5, label=f"AUC = {auc:.4f}")
    ax.plot(fpr[i_op], tpr[i_op], "o", color=PRED_COLOR, ms=5,
            label=f"TP = {tpr[i_op]:.3f} at FP = {100 * fpr[i_op]:.2g}%")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (fraction of non-spike 1-ms bins)")
    ax.set_ylabel("true-positive rate (fraction of spike 1-ms bins)")
    ax.set_title("spike prediction ROC")
    ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.62))
    ins = ax.inset_axes([0.42, 0.08, 0.54, 0.4])
    m = fpr <= inset_max_fp
    if inset_log:
        m &= fpr > 0
        ins.set_xscale("log")
    order = np.argsort(fpr, kind="stable")
    edge = float(np.interp(inset_max_fp, fpr[order], tpr[order]))   # ROC is drawn up to the inset's edge
    ins.plot(100 * np.append(fpr[m], inset_max_fp), np.append(tpr[m], edge), color="k", lw=1.2)
    ins.plot(100 * fpr[i_op], tpr[i_op], "o", color=PRED_COLOR, ms=4)
    ins.set_xlim(right=100 * inset_max_fp)
    if not inset_log:
        ins.set_xlim(left=0)
    ins.set_ylim(0, 1.01)
    ins.set_xlabel("FP rate (%)", fontsize=7, labelpad=1)
    ins.set_ylabel("TP rate", fontsize=7, labelpad=1)
    ins.tick_params(labelsize=7)
    ins.set_title(f"zoom: FP \u2264 {100 * inset_max_fp:g}%", fontsize=7, pad=2)
    return fig


def recall_curve(true_train, pred_binary, max_lag_ms: int = 50, within_ms: int = 10):
    """Spike-timing "recall curve" of section 9.5.

    Averages the binary prediction in +-``max_lag_ms`` around each true spike (spikes whose window
    leaves the trace are skipped), normalises to sum 1, smooths with a 2-tap box blended 50/50 with the
    raw curve, and returns ``(lags_ms, rate_spikes_per_s, fraction_within)`` where ``rate`` is the
    normalised curve per 1-ms bin x 1000 and ``fraction_within`` its mass within +-``within_ms``
    (NaN when there is no true spike or no predicted spike near one).
    """
    y = np.atleast_2d(np.asarray(true_train))
    p = np.atleast_2d(np.asarray(pred_binary, dtype=float))
    if y.shape != p.shape:
        raise ConfigError(f"recall_curve: true_train {y.shape} and pred_binary {p.shape} differ in shape")
    L = int(max_lag_ms)
    lags = np.arange(-L, L + 1)
    acc = np.zeros(2 * L + 1)
    n = 0
    T = y.shape[1]
    for i, tt in zip(*np.nonzero(y > 0)):
        if tt - L < 0 or tt + L >= T:
            continue
        acc += p[i, tt - L: tt + L + 1]
        n += 1
    if n == 0 or acc.sum() <= 0:
        return lags, np.zeros_like(acc), float("nan")
    raw = acc / acc.sum()
    box = 0.5 * (raw + np.concatenate([raw[1:], raw[-1:]]))
    curve = 0.5 * raw + 0.5 * box
    frac = float(curve[np.abs(lags) <= within_ms].sum() / curve.sum())
    return lags, curve * 1000.0, frac


@styled
def spike_cross_correlation(true_train, pred_binary, max_lag_ms: int = 50, within_ms: int = 10):
    """Cross-correlation of predicted spikes around true spikes (section 9.5 recall curve), in spikes/s.

    ``true_train`` / ``pred_binary`` are (T,) or (trials, T) 0/1 arrays on 1-ms bins; the prediction is
    usually thresholded at the FP = 0.2% operating point. The fraction within +-``within_ms`` is shown.
    """
    lags, rate, frac = recall_curve(true_train, pred_binary, max_lag_ms, within_ms)
    n_true = int((np.asarray(true_train) > 0).sum())
    fig = new_figure(4.6, 3.4, "spike_cross_correlation")
    ax = fig.subplots()
    ax.axvspan(-within_ms, within_ms, color="0.9", zorder=0, label=f"\u00b1{within_ms} ms")
    ax.plot(lags, rate, color=PRED_COLOR, lw=1.5)
    ax.axvline(0, color="0.5", lw=0.6, ls="--")
    ax.set_xlim(-max_lag_ms, max_lag_ms)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time relative to true spike (ms)")
    ax.set_ylabel("predicted spikes (spikes/s)")
    txt = "no spikes to align" if np.isnan(frac) else f"{100 * frac:.1f}% within \u00b1{within_ms} ms"
    ax.set_title(f"spike timing ({n_true} true spikes): {txt}")
    ax.legend(loc="upper right")
    return fig


@styled
def voltage_scatter(true, pred, n: int = 20000, seed: int = 0):
    """Scatter of predicted vs ground-truth somatic voltage (mV) on ``n`` random 1-ms bins, identity line.

    Explained variance (%) and RMSE (mV) over all finite bins are printed in the title.
    """
    a = np.asarray(true, dtype=float).ravel()
    b = np.asarray(pred, dtype=float).ravel()
    if a.shape != b.shape:
        raise ConfigError(f"voltage_scatter: true has {a.size} values, pred {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size == 0:
        raise ConfigError("voltage_scatter: no finite (true, pred) pairs")
    ev = 100.0 * (1.0 - np.var(a - b) / np.var(a)) if np.var(a) > 0 else float("nan")
    rmse = float(np.sqrt(np.mean((a - b) ** 2)))
    rng = np.random.default_rng(seed)
    idx = rng.choice(a.size, size=min(n, a.size), replace=False)
    fig = new_figure(4.4, 4.2, "voltage_scatter")
    ax = fig.subplots()
    ax.scatter(a[idx], b[idx], s=2, alpha=0.15, color="0.1", lw=0, rasterized=True)
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    pad = 0.03 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color=PRED_COLOR, lw=1.0, ls="--", label="identity")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("ground-truth soma voltage (mV)")
    ax.set_ylabel("predicted soma voltage (mV)")
    ax.set_title(f"{idx.size} of {a.size} bins; EV = {ev:.1f}%, RMSE = {rmse:.2f} mV")
    ax.legend(loc="upper left")
    return fig
