"""Sweep and study figures: accuracy vs complexity (section 9.7) and the depth summary per cell.

Rows are sweep-table records (list of dicts, dict of columns or DataFrame) with columns such as
depth, width, receptive_field, n_parameters, spike_auc, spike_auc_sd, tp_at_fp_0.0025,
soma_explained_variance, train_minutes, cell.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuroemu.errors import ConfigError
from neuroemu.report._style import as_columns, float_column, new_figure, styled
from neuroemu.results.selection import smallest_reaching_index

#: Minimum gain, as a fraction of the y span, for a point to be kept (section 9.7 step 4).
MIN_INCREASE = {"depth": 0.01, "width": 0.05, "receptive_field": 0.03}

AXIS_LABELS = {
    "depth": "depth (layers)",
    "width": "width (channels per layer)",
    "receptive_field": "receptive field T (ms)",
    "n_parameters": "parameters (count)",
    "spike_auc": "spike AUC (1-ms bins)",
    "soma_explained_variance": "soma explained variance (%)",
    "tp_at_fp_0.0025": "TP rate at 0.25% FP (fraction)",
    "tp_at_fp_0.001": "TP rate at 0.1% FP (fraction)",
    "train_minutes": "training time (min)",
}
LOG_X = {"width", "n_parameters"}


def axis_label(name: str, values=None) -> str:
    """Axis label with unit for a sweep-table column (explained variance as % or fraction by its range)."""
    if name == "soma_explained_variance" and values is not None:
        v = np.asarray(values, dtype=float)
        if np.isfinite(v).any() and np.nanmax(np.abs(v)) <= 1.0:
            return "soma explained variance (fraction)"
    return AXIS_LABELS.get(name, f"{name.replace('_', ' ')} (value)")


def format_count(n: float) -> str:
    """Human-readable parameter count: 950, 12.3k, 1.20M."""
    n = float(n)
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def complexity_curve(x, y, yerr=None, min_increase: float = 0.01, y_span: float | None = None,
                     prune: bool = True) -> dict[str, np.ndarray]:
    """One accuracy-vs-complexity curve (section 9.7 steps 2-4) from parallel arrays.

    Sorts by ``x`` and keeps the best ``y`` per distinct x. With ``prune``: takes the cumulative max
    of y (carrying the error of the row that achieves it) and keeps only points that exceed the last
    kept point by more than ``min_increase * y_span`` (the first point is always kept). Returns a dict
    with ``x``, ``y``, ``yerr`` and ``index`` (rows of the input that the points come from).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    e = np.full_like(y, np.nan) if yerr is None else np.asarray(yerr, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return {"x": np.zeros(0), "y": np.zeros(0), "yerr": np.zeros(0), "index": np.zeros(0, dtype=int)}
    idx = idx[np.lexsort((-y[idx], x[idx]))]       # by x, best y first within equal x
    _, first = np.unique(x[idx], return_index=True)
    best = idx[first]                               # best row per distinct x, in increasing x
    if not prune:
        return {"x": x[best], "y": y[best], "yerr": e[best], "index": best}
    span = float(y_span if y_span is not None else (y[ok].max() - y[ok].min()))
    run_best = []
    cur = None
    for i in best:                                   # cumulative max, remembering the source row
        if cur is None or y[i] > y[cur]:
            cur = i
        run_best.append(cur)
    keep = [0]
    for j in range(1, len(best)):
        if y[run_best[j]] - y[run_best[keep[-1]]] > min_increase * span:
            keep.append(j)
    xs = x[best][keep]
    src = np.array([run_best[j] for j in keep], dtype=int)
    return {"x": xs, "y": y[src], "yerr": e[src], "index": src}


def _groups(cols, group) -> list[tuple[str, np.ndarray]]:
    names = [group] if isinstance(group, str) else list(group or [])
    n = len(next(iter(cols.values())))
    if not names:
        return [("all", np.ones(n, dtype=bool))]
    for g in names:
        if g not in cols:
            raise ConfigError(f"complexity: group column '{g}' is missing; columns are {sorted(cols)}")
    keys = [tuple(str(cols[g][i]) for g in names) for i in range(n)]
    out = []
    for key in sorted(set(keys), key=lambda k: tuple((len(s), s) for s in k)):
        label = ", ".join(v if g == "cell" else f"{g} {v}" for g, v in zip(names, key))
        out.append((label, np.array([k == key for k in keys])))
    return out


def group_styles(groups) -> dict[str, dict]:
    """Plot style per group label: colour by the first group value, marker/line style by the rest."""
    firsts: list[str] = []
    rests: list[str] = []
    for label, _ in groups:
        head, _, rest = label.partition(", ")
        firsts += [head] if head not in firsts else []
        rests += [rest] if rest not in rests else []
    markers, lines = "osD^vP*X", ["-", "--", ":", "-."]
    out = {}
    for label, _ in groups:
        head, _, rest = label.partition(", ")
        j = rests.index(rest)
        out[label] = {"color": f"C{firsts.index(head) % 10}", "marker": markers[j % len(markers)],
                      "ls": lines[j % len(lines)]}
    return out


def _legend(fig, ax, n_entries: int, outside: bool = False) -> None:
    if not ax.get_legend_handles_labels()[0]:
        return
    if outside or n_entries > 4:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    else:
        ax.legend(loc="lower right")


def _rf_mask(cols, rf_range) -> np.ndarray:
    n = len(next(iter(cols.values())))
    if rf_range is None or "receptive_field" not in cols:
        return np.ones(n, dtype=bool)
    rf = float_column(cols, "receptive_field", "complexity")
    return (rf >= rf_range[0]) & (rf <= rf_range[1])


def _draw_complexity(ax, cols, x, y, yerr, group, prune, min_increase, rf_range, y_span, colors=None):
    if not cols:
        raise ConfigError("complexity: the table has no rows")
    mask = _rf_mask(cols, rf_range)
    xv = float_column(cols, x, "complexity")
    yv = float_column(cols, y, "complexity")
    ev = float_column(cols, yerr, "complexity") if yerr and yerr in cols else None
    frac = MIN_INCREASE.get(x, 0.01) if min_increase is None else float(min_increase)
    if y_span is None:
        sel = yv[mask & np.isfinite(yv)]
        y_span = float(sel.max() - sel.min()) if sel.size else 0.0
    groups = _groups(cols, group)
    styles = colors or group_styles(groups)
    for label, gm in groups:
        m = np.flatnonzero(gm & mask)
        curve = complexity_curve(xv[m], yv[m], None if ev is None else ev[m], frac, y_span, prune)
        if curve["x"].size == 0:
            continue
        err = None if np.all(np.isnan(curve["yerr"])) else np.nan_to_num(curve["yerr"])
        style = dict(styles[label])
        if x == "n_parameters" and not prune:  # networks, not a curve: a line through them zig-zags
            style["ls"] = "none"
        ax.errorbar(curve["x"], curve["y"], yerr=err, ms=4, capsize=3, lw=1.4, label=label, **style)
    if x in LOG_X and np.all(xv[mask & np.isfinite(xv)] > 0):
        ax.set_xscale("log", base=2 if x == "width" else 10)
    if x in ("depth", "width", "receptive_field"):
        vals = np.unique(xv[mask & np.isfinite(xv)])
        if 0 < vals.size <= 12:
            ax.set_xticks(vals)
            ax.set_xticklabels([f"{v:g}" for v in vals])
            ax.minorticks_off()
    ax.set_xlabel(axis_label(x, xv))
    ax.set_ylabel(axis_label(y, yv))
    ax.grid(alpha=0.3)
    return (f"cumulative best; points gaining > {100 * frac:g}% of the y span" if prune
            else "best model per x value, no pruning")


@styled
def complexity(rows, x: str = "depth", y: str = "spike_auc", yerr: str | None = "spike_auc_sd",
               group: str | Sequence[str] | None = "cell", prune: bool = True, min_increase: float | None = None,
               rf_range: tuple[float, float] | None = (10, 260), y_span: float | None = None, ax=None):
    """Accuracy vs complexity, one curve per group (cell, or e.g. ``("cell", "width")``), section 9.7.

    Rows with receptive field outside ``rf_range`` are dropped. With ``prune`` each curve is the
    cumulative best over x, deduplicated, keeping points that gain more than ``min_increase`` (default
    1% depth, 5% width, 3% receptive field) of ``y_span`` (default: the span of y over the plotted
    rows); without it, the best model per x value. Error bars from ``yerr`` (the SD over the 67%
    subsets). Draws into ``ax`` when given; returns the Figure.
    """
    cols = as_columns(rows, "complexity")
    if ax is None:
        fig = new_figure(5.0, 3.8, f"complexity_{y}_vs_{x}")
        ax = fig.subplots()
    else:
        fig = ax.figure
    what = _draw_complexity(ax, cols, x, y, yerr, group, prune, min_increase, rf_range, y_span)
    ax.set_title(f"{axis_label(y).split(' (')[0]} vs {x.replace('_', ' ')}\n({what})", fontsize=9)
    _legend(fig, ax, len(ax.get_legend_handles_labels()[1]))
    return fig


@styled
def complexity_panels(rows, group: str | Sequence[str] | None = "cell",
                      xs: Sequence[str] = ("depth", "width", "receptive_field"),
                      ys: Sequence[tuple[str, str | None]] = (("spike_auc", "spike_auc_sd"),
                                                             ("soma_explained_variance",
                                                              "soma_explained_variance_sd")),
                      prune: bool = True, rf_range: tuple[float, float] | None = (10, 260)):
    """Grid of accuracy-vs-complexity panels (rows: metrics, columns: depth / width / receptive field).

    Columns absent from the table are skipped. See :func:`complexity` for what each curve shows.
    """
    cols = as_columns(rows, "complexity_panels")
    xs = [x for x in xs if x in cols]
    ys = [(y, e) for y, e in ys if y in cols]
    if not xs or not ys:
        raise ConfigError(f"complexity_panels: no x columns of {list(xs)} or y columns in table with "
                          f"columns {sorted(cols)}")
    colors = group_styles(_groups(cols, group))
    fig = new_figure(3.6 * len(xs) + 0.6, 3.0 * len(ys) + 0.6, "complexity_panels")
    axes = np.atleast_2d(fig.subplots(len(ys), len(xs), squeeze=False))
    what = ""
    for r, (y, e) in enumerate(ys):
        for c, x in enumerate(xs):
            what = _draw_complexity(axes[r, c], cols, x, y, e, group, prune, None, rf_range, None, colors)
    _legend(fig, axes[0, -1], len(colors), outside=True)
    fig.suptitle(f"accuracy vs complexity ({'cumulative best, pruned as in section 9.7' if prune else what})")
    return fig


def smallest_reaching(rows, target_auc: float, auc: str = "spike_auc", size: str = "n_parameters",
                      group: str = "cell") -> dict[str, dict | None]:
    """Per group, the row with the fewest ``size`` among those with ``auc >= target_auc`` (None if none):
    :func:`neuroemu.results.selection.smallest_reaching_index` (ties: smaller depth, then higher AUC)."""
    cols = as_columns(rows, "smallest_reaching")
    if not cols:
        return {}
    n = len(next(iter(cols.values())))
    table = [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()} for i in range(n)]
    out: dict[str, dict | None] = {}
    for label, gm in _groups(cols, group):
        members = [table[i] for i in np.flatnonzero(gm)]
        k = smallest_reaching_index(members, target_auc, auc, size)
        out[label] = None if k is None else members[k]
    return out


def architecture_name(row: dict) -> str:
    """'DxWxT' name of a sweep row (depth x width x receptive field), with what is available."""
    parts = [row.get(k) for k in ("depth", "width", "receptive_field")]
    return "x".join(f"{float(p):g}" for p in parts if p is not None)


@styled
def study_summary(rows, target_auc: float = 0.99, group: str = "cell", x: str = "depth",
                  auc: str = "spike_auc", auc_err: str | None = "spike_auc_sd",
                  ev: str = "soma_explained_variance", ev_err: str | None = "soma_explained_variance_sd",
                  size: str = "n_parameters"):
    """Two panels, spike AUC and soma explained variance vs depth, one curve per cell (best model per depth).

    The dashed line is ``target_auc``; a star marks, per cell, the smallest network (fewest parameters)
    whose AUC reaches it, annotated with its DxWxT name and parameter count; the legend says when a
    cell never reaches the target.
    """
    cols = as_columns(rows, "study_summary")
    if not cols:
        raise ConfigError("study_summary: the table has no rows")
    smallest = smallest_reaching(cols, target_auc, auc, size, group)
    fig = new_figure(10.0, 4.2, "study_summary")
    ax_a, ax_e = fig.subplots(1, 2)
    xv = float_column(cols, x, "study_summary")
    for gi, (label, gm) in enumerate(_groups(cols, group)):
        color = f"C{gi % 10}"
        best = smallest.get(label)
        best_name = (str(best["name"]) if best is not None and isinstance(best.get("name"), str)
                     else architecture_name(best) if best is not None else "")
        note = (f"smallest \u2265 {target_auc:g}: {best_name}, {format_count(best[size])} params"
                if best else f"never reaches AUC {target_auc:g}")
        for ax, metric, err, lab in ((ax_a, auc, auc_err, f"{label} ({note})"), (ax_e, ev, ev_err, label)):
            if metric not in cols:
                ax.text(0.5, 0.5, f"no '{metric}' column", transform=ax.transAxes, ha="center")
                continue
            yv = float_column(cols, metric, "study_summary")
            ee = float_column(cols, err, "study_summary") if err and err in cols else None
            m = np.flatnonzero(gm)
            c = complexity_curve(xv[m], yv[m], None if ee is None else ee[m], prune=False)
            yerr = None if np.all(np.isnan(c["yerr"])) else np.nan_to_num(c["yerr"])
            ax.errorbar(c["x"], c["y"], yerr=yerr, marker="o", ms=4, capsize=3, color=color, label=lab)
            if ax is ax_a and best is not None and best.get(metric) is not None:
                # the star is an AUC criterion: it lives on the AUC panel only
                ax.plot(float(best[x]), float(best[metric]), "*", ms=14, color=color, mec="k", mew=0.6, zorder=5)
                ax.annotate(f"{best_name}\n{format_count(best[size])} params",
                            (float(best[x]), float(best[metric])), textcoords="offset points",
                            xytext=(8, -22 - 14 * gi), fontsize=7, color=color,
                            bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1.0},
                            arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6})
    ax_a.axhline(target_auc, color="0.4", ls="--", lw=0.9)
    ax_a.text(0.99, target_auc, f"target AUC {target_auc:g}", transform=ax_a.get_yaxis_transform(),
              ha="right", va="bottom", fontsize=7, color="0.3")
    vals = np.unique(xv[np.isfinite(xv)])
    for ax, metric in ((ax_a, auc), (ax_e, ev)):
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(axis_label(metric, cols.get(metric)))
        ax.grid(alpha=0.3)
        if 0 < vals.size <= 12:
            ax.set_xticks(vals)
    ax_a.set_title(f"spike AUC vs depth (best per depth; star: smallest network reaching {target_auc:g})",
                   fontsize=9)
    ax_e.set_title("soma explained variance vs depth (best per depth)", fontsize=9)
    ax_a.legend(loc="lower right", fontsize=7)
    ax_e.legend(loc="lower right", fontsize=7)
    return fig
