"""The report of a complexity sweep (``SWEEP/sweep.json``): accuracy-vs-complexity figures and tables.

:func:`sweep_figures` builds the figures from the sweep's rows (one per configuration; test metrics are
reported, validation metrics select), :func:`write_sweep_figures` saves them as PNGs, and
:func:`report_sweep` writes the self-contained HTML page ``SWEEP/report/index.html``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from neuroemu.errors import ConfigError
from neuroemu.report.html import Section, write_report
from neuroemu.results.selection import select_best

__all__ = ["sweep_figures", "write_sweep_figures", "sweep_sections", "report_sweep", "done_rows", "plot_rows"]

#: Columns of the summary tables in the report, in order.
SHOWN = ["name", "cell", "depth", "width", "receptive_field", "n_parameters", "spike_auc", "spike_auc_sd",
         "tp_at_fp_0.0025", "soma_explained_variance", "soma_explained_variance_sd", "val_spike_auc",
         "train_steps", "train_minutes"]


def done_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of finished configurations with a test AUC or a soma explained variance (something to plot;
    the AUC is undefined when the test trials hold no spike)."""
    out = []
    for r in rows:
        ok = [isinstance(v, (int, float)) and math.isfinite(v)
              for v in (r.get("spike_auc"), r.get("soma_explained_variance"))]
        if r.get("status", "done") == "done" and any(ok):
            out.append(r)
    return out


def _rf_range(rows: list[dict]) -> tuple[float, float] | None:
    """Spec 9.7 step 1 keeps T in [10, 260]; fall back to no filter when that would drop every row."""
    if any(10 <= float(r.get("receptive_field") or 0) <= 260 for r in rows):
        return (10, 260)
    return None


PLOT_KEYS = ("name", "cell", "depth", "width", "receptive_field", "n_parameters", "spike_auc", "spike_auc_sd",
             "tp_at_fp_0.0025", "soma_explained_variance", "soma_explained_variance_sd", "val_spike_auc")


def plot_rows(rows: list[dict]) -> list[dict]:
    """Rows reduced to the scalar columns the figures use (list columns such as ``kernels`` dropped)."""
    return [{k: r.get(k) for k in PLOT_KEYS} for r in rows]


def sweep_figures(rows: list[dict[str, Any]]) -> list[tuple[str, Any, str]]:
    """(file stem, Figure, caption) of every sweep figure; rows without a test AUC are left out."""
    from neuroemu.report import figures as F

    rows = plot_rows(done_rows(rows))
    if not rows:
        return []
    rf = _rf_range(rows)
    out = []
    n_x = sum(len({r[k] for r in rows}) > 1 for k in ("depth", "width", "receptive_field"))
    fig = F.complexity_panels(rows, group="cell", rf_range=rf)
    out.append(("complexity_panels", fig,
                "Accuracy vs complexity by the method of section 9.7: for each of depth, width and receptive "
                "field, the cumulative best test AUC / soma explained variance over all configurations up to "
                "that value, keeping points that gain more than 1% (depth), 5% (width) or 3% (T) of the y span; "
                "error bars: SD over 12 random 67% subsets of the test traces."
                + ("" if n_x == 3 else " Panels whose x did not vary show a single point.")))
    multi_w = len({r["width"] for r in rows}) > 1
    group = ("cell", "width") if multi_w else "cell"
    out.append(("auc_vs_depth", F.complexity(rows, x="depth", y="spike_auc", yerr="spike_auc_sd", group=group,
                                             prune=False, rf_range=rf),
                "Test spike AUC of every depth, one curve per width (best receptive field per point), no pruning; "
                "error bars: SD over 67% subsets of the test traces."))
    out.append(("explained_variance_vs_depth",
                F.complexity(rows, x="depth", y="soma_explained_variance", yerr="soma_explained_variance_sd",
                             group=group, prune=False, rf_range=rf),
                "Test soma explained variance (after the global calibration of section 9.2) vs depth, per width."))
    if any(r.get("tp_at_fp_0.0025") is not None for r in rows):
        out.append(("tp_vs_depth", F.complexity(rows, x="depth", y="tp_at_fp_0.0025", yerr=None, group=group,
                                                prune=False, rf_range=rf),
                    "True-positive rate at 0.25% false positives (1-ms bins) vs depth, per width."))
    out.append(("auc_vs_parameters", F.complexity(rows, x="n_parameters", y="spike_auc", yerr="spike_auc_sd",
                                                  group="cell", prune=False, rf_range=rf),
                "Test spike AUC vs number of parameters (best configuration per parameter count)."))
    return out


def write_sweep_figures(rows: list[dict[str, Any]], fig_dir: str | Path) -> list[Path]:
    """Save :func:`sweep_figures` as ``fig_dir/<stem>.png``; return the paths."""
    from neuroemu.report._style import save_figure

    paths = []
    for stem, fig, _ in sweep_figures(rows):
        paths.append(save_figure(fig, Path(fig_dir) / f"{stem}.png"))
    return paths


def _short(rows: list[dict]) -> list[dict]:
    return [{k: r.get(k) for k in SHOWN} for r in rows]


def sweep_sections(doc: dict[str, Any]) -> list[Section]:
    """Report sections of one sweep document (the content of ``sweep.json``)."""

    rows = list(doc.get("rows") or [])
    cfg = doc.get("config") or {}
    ds = doc.get("dataset") or {}
    done = [r for r in rows if r.get("status") == "done"]
    failed = [r for r in rows if r.get("status") != "done"]
    budget = []
    if cfg.get("budget_steps"):
        budget.append(f"{cfg['budget_steps']} steps")
    if cfg.get("budget_minutes"):
        budget.append(f"{cfg['budget_minutes']} min")
    text = (f"Cell: {doc.get('cell')}. Dataset: {ds.get('path')} ({ds.get('n_trials')} trials of "
            f"{ds.get('duration_ms')} ms, {ds.get('n_channels')} input channels). Grid: depths {cfg.get('depths')}, "
            f"widths {cfg.get('widths')}, receptive fields "
            f"{cfg.get('receptive_fields') or 'default kernels per depth'} ms. Every configuration trained with "
            f"the '{cfg.get('preset')}' preset, budget {' / '.join(budget) or 'n/a'}, seed {cfg.get('seed')}, "
            f"split {cfg.get('split_fractions')}; evaluated by the published protocol on the validation trials "
            f"(to select) and the test trials (reported), checkpoint '{cfg.get('checkpoint')}'. "
            f"{len(done)} of {len(rows)} configurations finished"
            + (f", {len(failed)} failed." if failed else ".") + f" Status: {doc.get('status')}.")
    secs = [Section("Sweep", text)]
    best = select_best(done, "depth")
    if best:
        secs.append(Section("Best network per depth (selected on validation AUC, test metrics reported)", "",
                            tables=[_short(best)]))
    figs = [(fig, cap) for _, fig, cap in sweep_figures(done)]
    if figs:
        secs.append(Section("Accuracy vs complexity", "", figures=figs))
    if rows:
        table = _short(sorted(done, key=lambda r: (r.get("depth") or 0, r.get("width") or 0,
                                                   r.get("receptive_field") or 0)))
        tables = [("all finished configurations (test metrics; val_spike_auc = validation)", table)]
        if failed:
            tables.append(("failed configurations (rerun the sweep to retry)",
                           [{"name": r.get("name"), "status": r.get("status")} for r in failed]))
        secs.append(Section("Table", "The same table is in sweep.csv and sweep.json.", tables=tables))
    return secs


def report_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the HTML report of a sweep directory (default ``<sweep_dir>/report``); return ``index.html``."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"{sweep_dir} is not a sweep directory: sweep.json is missing")
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise ConfigError(f"{path} is corrupt ({e})") from None
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    return write_report(out, f"Complexity sweep: {doc.get('cell')} ({sweep_dir.name})", sweep_sections(doc),
                        footer=f"neuroemu {doc.get('neuroemu', '')} -- {path}")
