"""Shared plotting helpers: colours, figure creation, saving, table normalisation.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI), and
rendered with the Agg canvas, so they work in headless workers and never leak open windows.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

EXC_COLOR = "#d62728"        # excitatory: red
INH_COLOR = "#1f4fd6"        # inhibitory: blue
EXC_MEAN_COLOR = "#8b0000"
INH_MEAN_COLOR = "#0a1f73"
TRUE_COLOR = "#00b4d8"       # ground truth: cyan
PRED_COLOR = "#e000e0"       # prediction: magenta
REGION_COLORS = {"basal": "#d400d4", "oblique": "#ff8c00", "tuft": "#1fa31f", "other": "#555555"}
REGION_LABELS = {"basal": "basal", "oblique": "oblique + trunk", "tuft": "tuft", "other": "soma / axon"}

STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "image.interpolation": "nearest",
}


def styled(func: Callable) -> Callable:
    """Decorator: build the figure under the report's rc style without touching global rcParams."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def new_figure(width_in: float, height_in: float, name: str = ""):
    """Return a new Agg-backed :class:`matplotlib.figure.Figure` (no pyplot, no GUI).

    ``name`` becomes the figure's label, used by the HTML writer to name its PNG file.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    fig.set_label(name)
    return fig


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG at ``path`` (parent directories are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", facecolor="white")
    return path


def time_scale(duration_ms: float) -> tuple[float, str]:
    """Return (divisor, unit) to show a time axis: milliseconds up to 2 s, seconds beyond."""
    return (1000.0, "s") if duration_ms > 2000 else (1.0, "ms")


def as_columns(table: Any, where: str = "table") -> dict[str, np.ndarray]:
    """Normalise a table to a dict of equal-length NumPy columns.

    Accepts a mapping of columns, a ``{"columns": names, "data": rows-as-lists}`` record dict (the
    segment table's ``to_dict()``), a sequence of row dicts, a pandas DataFrame, or an object with
    ``columns()`` / ``to_dict()`` / ``rows`` returning one of those.
    """
    from neuroemu.errors import ConfigError

    if hasattr(table, "to_dict") and hasattr(table, "columns") and hasattr(table, "iloc"):  # pandas
        table = table.to_dict(orient="list")
    elif not isinstance(table, (Mapping, Sequence, np.ndarray)):
        for attr in ("columns", "as_columns", "to_columns", "to_dict", "rows"):
            value = getattr(table, attr, None)
            if value is None:
                continue
            value = value() if callable(value) else value
            if isinstance(value, (Mapping, Sequence)) and not isinstance(value, str):
                table = value
                break
        else:
            raise ConfigError(f"{where}: cannot read a table from a {type(table).__name__}")
    if isinstance(table, Mapping) and isinstance(table.get("columns"), Sequence) and "data" in table:
        names = [str(c) for c in table["columns"]]      # {"columns": [...], "data": [[...], ...]} records
        data = list(table["data"])
        cols = {c: np.asarray([row[j] for row in data]) for j, c in enumerate(names)}
    elif isinstance(table, Mapping):
        cols = {str(k): np.asarray(v) for k, v in table.items()}
    else:
        rows = [dataclasses.asdict(r) if dataclasses.is_dataclass(r) and not isinstance(r, type) else r
                for r in table]
        if rows and not isinstance(rows[0], Mapping):
            raise ConfigError(f"{where}: rows must be dicts, got {type(rows[0]).__name__}")
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r if k not in keys)
        cols = {k: np.asarray([r.get(k, None) for r in rows]) for k in keys}
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"{where}: columns have different lengths {lengths}")
    return cols


def as_rows(table: Any, where: str = "table") -> list[dict[str, Any]]:
    """Normalise a table (see :func:`as_columns`) to a list of row dicts with plain Python values."""
    cols = as_columns(table, where)
    n = len(next(iter(cols.values()))) if cols else 0
    return [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()} for i in range(n)]


def float_column(cols: Mapping[str, np.ndarray], name: str, where: str) -> np.ndarray:
    """Return column ``name`` as float64 (None -> NaN); raise ConfigError naming a missing column."""
    from neuroemu.errors import ConfigError

    if name not in cols:
        raise ConfigError(f"{where}: missing column '{name}'; columns are {sorted(cols)}")
    return np.array([np.nan if v is None else float(v) for v in cols[name]], dtype=float)


def box_smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``width`` samples (same length, edges averaged over what exists)."""
    x = np.asarray(x, dtype=float)
    if width <= 1 or x.size == 0:
        return x.copy()
    kernel = np.ones(width)
    num = np.convolve(x, kernel, mode="same")
    den = np.convolve(np.ones_like(x), kernel, mode="same")
    return num / den


def smooth2(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """2-tap box smoothing along ``axis``: y[k] = (x[k] + x[k+1]) / 2, last sample kept (same length)."""
    x = np.asarray(x, dtype=float)
    nxt = np.concatenate([np.take(x, np.arange(1, x.shape[axis]), axis=axis),
                          np.take(x, [x.shape[axis] - 1], axis=axis)], axis=axis)
    return 0.5 * (x + nxt)
