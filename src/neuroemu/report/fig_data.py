"""Figures of the data axis: learning curves (accuracy against hours of training data, one curve per model)
and the study's gain from depth at each data size, with its confidence interval and fit."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuroemu.report._style import new_figure, styled

__all__ = ["learning_curve", "depth_gain_by_data"]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _curves(ax, rows: Sequence[dict], x: str, y: str, yerr: str | None, group: str) -> int:
    """One curve per ``group`` value through its replicate-0 rows; further training replicates (``replicate``
    >= 1) as open markers of the same colour at their own AUC."""
    labels = sorted({str(r.get(group)) for r in rows})
    for i, label in enumerate(labels):
        mine = [r for r in rows if str(r.get(group)) == label and _finite(r.get(x)) and _finite(r.get(y))]
        pts = sorted((float(r[x]), float(r[y]), float(r.get(yerr) or 0.0) if yerr and _finite(r.get(yerr)) else 0.0)
                     for r in mine if not (r.get("replicate") or 0))
        extra = [(float(r[x]), float(r[y])) for r in mine if r.get("replicate") or 0]
        if pts:
            xs, ys, es = (np.array(v) for v in zip(*pts))
            ax.errorbar(xs, ys, yerr=es, marker="o", ms=4, lw=1.4, capsize=2.5, color=f"C{i % 10}", label=label)
        if extra:
            ax.plot(*zip(*extra), linestyle="none", marker="o", ms=4, mfc="none", color=f"C{i % 10}",
                    label=None if pts else label)
    return len(labels)


@styled
def learning_curve(rows: Sequence[dict], x: str = "train_hours", y: str = "spike_auc",
                   yerr: str | None = "spike_auc_sd", group: str = "model", title: str | None = None):
    """Test ``y`` against hours of training data (log axis), one curve per ``group`` value, error bars ``yerr``
    (the SD over test subsets, reference 9.4)."""
    fig = new_figure(6.4, 4.2, "learning_curve")
    ax = fig.add_subplot(1, 1, 1)
    n = _curves(ax, rows, x, y, yerr, group)
    ax.set_xscale("log")
    ax.set_xlabel("training data (hours of neuron time)")
    ax.set_ylabel("test spike AUC" if y == "spike_auc" else y)
    ax.grid(True, which="both", alpha=0.25)
    if n:
        ax.legend(loc="best", fontsize="small", framealpha=0.85, ncol=1 if n < 6 else 2)
    seeds = " (open markers: other training seeds)" if any(r.get("replicate") for r in rows) else ""
    ax.set_title((title or "learning curves: accuracy against training data") + seeds, fontsize="medium")
    return fig


@styled
def depth_gain_by_data(gains: dict[str, Sequence[dict]], fits: dict[str, dict] | None = None,
                       extrapolate_hours: float | None = None):
    """Per cell, the paired gain from depth (best deep minus best one-layer network, test AUC) at each amount of
    training data with its CI; dashed: a fit against log hours, dotted beyond the data up to
    ``extrapolate_hours`` (labelled as an extrapolation)."""
    fig = new_figure(6.4, 4.2, "depth_gain_by_data")
    ax = fig.add_subplot(1, 1, 1)
    for i, (cell, rows) in enumerate(sorted(gains.items())):
        pts = sorted((float(r["train_hours"]), float(r["delta_auc"]), float(r["ci_low"]), float(r["ci_high"]))
                     for r in rows if all(_finite(r.get(k)) for k in ("train_hours", "delta_auc", "ci_low", "ci_high")))
        if not pts:
            continue
        h, d, lo, hi = (np.array(v) for v in zip(*pts))
        color = f"C{i % 10}"
        ax.errorbar(h, d, yerr=[d - lo, hi - d], marker="o", ms=4, lw=1.4, capsize=2.5, color=color, label=cell)
        fit = (fits or {}).get(cell)
        if fit and _finite(fit.get("slope_per_decade")) and _finite(fit.get("intercept")):
            xs = np.geomspace(h.min(), h.max(), 30)
            ax.plot(xs, fit["intercept"] + fit["slope_per_decade"] * np.log10(xs), "--", color=color, lw=1)
            if extrapolate_hours and extrapolate_hours > h.max():
                xe = np.geomspace(h.max(), extrapolate_hours, 30)
                ax.plot(xe, fit["intercept"] + fit["slope_per_decade"] * np.log10(xe), ":", color=color, lw=1)
                ax.plot([extrapolate_hours], [fit["intercept"] + fit["slope_per_decade"] * np.log10(extrapolate_hours)],
                        marker="x", color=color)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training data (hours of neuron time)")
    ax.set_ylabel("gain from depth (test AUC, paired)")
    ax.grid(True, which="both", alpha=0.25)
    if gains:
        ax.legend(loc="best")
    title = "gain from depth against data (bars: 95% paired bootstrap CI)"
    if extrapolate_hours:
        title += f"\ndotted: extrapolation of the fit to {extrapolate_hours:g} h (not measured)"
    ax.set_title(title)
    return fig
