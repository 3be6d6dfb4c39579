"""The report of one trained emulator: figures and metrics on test trials, as a self-contained HTML page.

:func:`report_run` loads a run directory (``run.json``, checkpoints, ``metrics.csv``), predicts a few
test trials with the emulator, and writes ``<run>/report/index.html`` plus the PNGs. The figure and
metric part, :func:`run_sections`, works on plain arrays (:class:`RunReportData`) so it can be used
and tested without torch or NEURON.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroemu.errors import CheckpointError, ConfigError
from neuroemu.report import figures as F
from neuroemu.report._style import as_columns
from neuroemu.report.html import Section, write_report

SOMA_CLIP_MV = -55.0
OPERATING_FP = 0.002


@dataclass
class RunReportData:
    """Everything a run report shows, as arrays (voltages in mV, one row per test trial, 1-ms bins).

    ``spike_prob`` holds probabilities in [0, 1]; ``soma_true`` is the raw simulated trace (it is
    clipped at -55 mV for scoring, section 9.1). ``example`` is the row shown in the trace panels,
    with its input events ``example_exc`` / ``example_inh`` ((n, 2) channel, time_ms).
    ``first_layer`` is the first layer's weight (W, C, K), ``regions`` the region of each excitatory
    channel, ``segments`` a segment table with 3-D coordinates (or None).
    """

    title: str
    cell_kind: str
    n_exc: int
    n_inh: int
    soma_true: np.ndarray
    soma_pred: np.ndarray
    spike_true: np.ndarray
    spike_prob: np.ndarray
    spike_times: list
    trial_indices: list
    example: int = 0
    example_exc: np.ndarray | None = None
    example_inh: np.ndarray | None = None
    first_layer: np.ndarray | None = None
    regions: list | None = None
    segments: Any = None
    run_info: dict = field(default_factory=dict)
    training_rows: list = field(default_factory=list)
    evaluation_tables: list = field(default_factory=list)
    skip_ms: int = 500


def calibrate(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Section 9.2: z-score the prediction over all bins, rescale to the ground truth's mean and SD."""
    sd = float(np.std(pred))
    z = (pred - float(np.mean(pred))) / (sd if sd > 0 else 1.0)
    return z * float(np.std(true)) + float(np.mean(true))


def run_metrics(data: RunReportData) -> dict[str, Any]:
    """Pooled 1-ms-bin metrics of section 9.4 on the report's trials (after ``skip_ms``).

    Returns a dict with ``fpr``, ``tpr``, ``thresholds``, ``auc``, ``threshold`` (at FP = 0.2%),
    TP rates at 0.1/0.2/0.25% FP, soma explained variance (%), RMSE and MAE (mV), and the clipped /
    calibrated traces used for them.
    """
    from sklearn.metrics import auc as sk_auc
    from sklearn.metrics import roc_curve

    s = int(data.skip_ms)
    y = np.asarray(data.spike_true)[:, s:].ravel()
    p = np.asarray(data.spike_prob, dtype=float)[:, s:].ravel()
    out: dict[str, Any] = {"n_trials": int(data.spike_true.shape[0]), "n_bins": int(y.size),
                           "n_spikes": int(y.sum())}
    if 0 < y.sum() < y.size:
        fpr, tpr, thr = roc_curve(y, p)
        out.update(fpr=fpr, tpr=tpr, thresholds=thr, auc=float(sk_auc(fpr, tpr)))
        for fp in (0.001, 0.002, 0.0025):
            out[f"tp_at_fp_{fp:g}"] = float(tpr[int(np.argmin(np.abs(fpr - fp)))])
        i = int(np.argmin(np.abs(fpr - OPERATING_FP)))
        out["threshold"] = float(min(thr[i], 1.0))
    else:
        out.update(fpr=None, tpr=None, thresholds=None, auc=float("nan"), threshold=0.5)
    true_c = np.minimum(np.asarray(data.soma_true, dtype=float), SOMA_CLIP_MV)
    pred_c = calibrate(np.asarray(data.soma_pred, dtype=float), true_c[:, s:])
    a, b = true_c[:, s:].ravel(), pred_c[:, s:].ravel()
    out["soma_explained_variance"] = float(100 * (1 - np.var(a - b) / np.var(a))) if np.var(a) > 0 else float("nan")
    out["soma_rmse_mv"] = float(np.sqrt(np.mean((a - b) ** 2)))
    out["soma_mae_mv"] = float(np.mean(np.abs(a - b)))
    out["soma_true_clipped"], out["soma_pred_calibrated"] = true_c, pred_c
    return out


def run_sections(data: RunReportData) -> list[Section]:
    """Build the report sections (figures and tables) of one run from :class:`RunReportData`."""
    m = run_metrics(data)
    s, k = int(data.skip_ms), int(data.example)
    T = data.spike_true.shape[1]
    trial_no = data.trial_indices[k] if k < len(data.trial_indices) else k
    summary = {"trials": m["n_trials"], "spikes (after skip)": m["n_spikes"], "spike AUC": m["auc"],
               "TP @ 0.1% FP": m.get("tp_at_fp_0.001"), "TP @ 0.2% FP": m.get("tp_at_fp_0.002"),
               "TP @ 0.25% FP": m.get("tp_at_fp_0.0025"),
               "soma explained variance (%)": m["soma_explained_variance"],
               "soma RMSE (mV)": m["soma_rmse_mv"], "soma MAE (mV)": m["soma_mae_mv"]}
    sections = [Section(
        "Summary",
        f"Metrics on {m['n_trials']} test trials (dataset trials {_short_list(data.trial_indices)}), pooled over "
        f"1-ms bins after dropping the first {s} ms of each trial (reference-system section 9). Soma voltage is "
        f"scored clipped at {SOMA_CLIP_MV:g} mV with the prediction affinely calibrated to the ground truth's "
        f"mean and SD (section 9.2). These are the report's own numbers on a few trials; the full "
        f"evaluation protocol is in neuroemu.evaluation.",
        [], [("test metrics (this report)", [summary])] + list(data.evaluation_tables)
        + ([("run", [data.run_info])] if data.run_info else []))]

    if data.example_exc is not None and data.example_inh is not None:
        sections.append(Section(
            "Input", f"Input spikes of trial {trial_no}: excitatory channels (red) above inhibitory ones (blue), "
            "population rates per synapse (18-ms box smoothing) and the somatic voltage.",
            [F.input_raster(data.example_exc, data.example_inh, data.n_exc, data.n_inh,
                            soma_v=data.soma_true[k], window_ms=(0, T))]))

    pred_binary = (np.asarray(data.spike_prob) >= m["threshold"]).astype(np.uint8)
    pred_binary[:, :s] = 0
    figs = [F.traces(data.soma_true[k], m["soma_pred_calibrated"][k], data.spike_times[k], data.spike_prob[k],
                     m["threshold"], title=f"trial {trial_no}: ground truth (cyan) vs emulator (magenta), "
                     f"spike threshold at FP = {100 * OPERATING_FP:g}%")]
    sections.append(Section(
        "Somatic voltage and spikes",
        f"Ground truth vs prediction for trial {trial_no}. Predicted spikes: runs of bins whose spike "
        f"probability exceeds the threshold of the FP = {100 * OPERATING_FP:g}% operating point "
        f"(p = {m['threshold']:.3g}).", figs))

    figs = []
    if m["fpr"] is not None:
        figs.append(F.roc(m["fpr"], m["tpr"], m["auc"], operating_fp=OPERATING_FP))
        truth = np.asarray(data.spike_true).copy()
        truth[:, :s] = 0
        figs.append(F.spike_cross_correlation(truth, pred_binary))
    figs.append(F.voltage_scatter(m["soma_true_clipped"][:, s:], m["soma_pred_calibrated"][:, s:], n=20000, seed=0))
    sections.append(Section("Accuracy", "ROC of 1-ms spike bins, spike-timing recall curve (section 9.5) and "
                                        "soma-voltage scatter (20,000 random bins).", figs))

    if data.cell_kind != "iaf" and data.segments is not None:
        try:
            sections.append(Section("Morphology", "Dendritic segments coloured by region.",
                                    [F.morphology(data.segments)]))
        except ConfigError as e:  # e.g. a segment table without coordinates
            sections.append(Section("Morphology", f"Not drawn: {e}"))

    if data.first_layer is not None:
        w = np.asarray(data.first_layer, dtype=float)
        if data.cell_kind == "iaf":
            unit = F.select_unit(w)
            sections.append(Section(
                "Learned weights", f"First-layer weights of unit {unit} as synapse x time (lag 0 = now).",
                [F.iaf_weights(w[unit], data.n_exc)]))
        elif data.regions is not None:
            sections.append(Section(
                "First-layer filters", "Filters of the first-layer unit with the largest weight norm, per region.",
                [F.first_layer_filters(w, data.n_exc, data.regions)]))
    if data.training_rows:
        sections.append(Section("Training", "Last rows of metrics.csv.", [], [("training log", data.training_rows)]))
    return sections


def _short_list(xs, n: int = 8) -> str:
    xs = list(xs)
    return ", ".join(str(x) for x in xs[:n]) + (f", ... ({len(xs)} in all)" if len(xs) > n else "")


def write_run_report(data: RunReportData, out_dir: str | Path) -> Path:
    """Write the report of :class:`RunReportData` to ``out_dir/index.html`` (+ PNGs); return its path."""
    return write_report(out_dir, data.title, run_sections(data),
                        subtitle=f"cell: {data.cell_kind}; {data.n_exc} excitatory + {data.n_inh} inhibitory inputs")


# ------------------------------------------------------------------------------------------------
# Loading a run directory (uses the dataset reader and the emulator API)
# ------------------------------------------------------------------------------------------------


def _dataset_path(run: Mapping, run_dir: Path, data_dir) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    ds = run.get("dataset")
    path = ds.get("path") if isinstance(ds, Mapping) else ds
    if not path:
        raise CheckpointError(f"{run_dir / 'run.json'}: no dataset path; pass data_dir")
    p = Path(path)
    if not p.exists() and (run_dir / p).exists():
        p = run_dir / p
    return p


def _test_trials(run: Mapping, ds) -> list[int]:
    split = run.get("split")
    test = None
    if isinstance(split, Mapping):
        test = split.get("test")
    elif isinstance(split, (list, tuple)) and len(split) == 3 and isinstance(split[2], (list, tuple)):
        test = split[2]
    if not test:
        test = ds.split()[2] or ds.trial_indices
    have = set(ds.trial_indices)
    return [int(i) for i in test if int(i) in have]


def _load_emulator(run_dir: Path):
    import importlib

    for mod in ("neuroemu.models.emulator", "neuroemu.models"):
        try:
            cls = getattr(importlib.import_module(mod), "Emulator", None)
        except ImportError:
            cls = None
        if cls is not None:
            return cls.load(run_dir)
    raise CheckpointError(f"{run_dir}: cannot load the emulator (no neuroemu Emulator API is installed)")


def _prediction(out: Any) -> tuple[np.ndarray, np.ndarray]:
    """(spike probability, soma mV) from ``Emulator.predict``'s result (tuple, dict or object)."""
    def pick(obj, names):
        for n in names:
            v = obj.get(n) if isinstance(obj, Mapping) else getattr(obj, n, None)
            if v is not None:
                return v
        return None

    if isinstance(out, tuple) and len(out) >= 2 and not hasattr(out, "_fields"):
        p, v = out[0], out[1]
    else:
        p = pick(out, ("spike_prob", "spike_probability", "p_spike", "spike"))
        v = pick(out, ("soma_v_pred_mv", "soma_mv", "soma_v", "soma"))
        if p is None or v is None:
            raise CheckpointError(f"Emulator.predict returned {type(out).__name__} without spike probability "
                                  f"and soma voltage")
    p = np.asarray(p.detach().cpu() if hasattr(p, "detach") else p, dtype=float).ravel()
    v = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=float).ravel()
    if p.size and (p.min() < 0 or p.max() > 1):      # logits
        p = 1.0 / (1.0 + np.exp(-p))
    return p, v


def _first_layer_weight(emulator) -> np.ndarray | None:
    """The first layer's weight (W, C, K): ``emulator.tcn.first`` / ``emulator.module.first``, else the
    module's first 3-D parameter."""
    w = None
    for owner in (getattr(emulator, "tcn", None), getattr(emulator, "module", None)):
        w = getattr(getattr(owner, "first", None), "weight", None)
        if w is not None:
            break
    module = getattr(emulator, "module", None)
    if w is None and module is not None:
        w = next((q for q in module.parameters() if q.dim() == 3), None)
    return None if w is None else w.detach().cpu().numpy()


def _training_rows(run_dir: Path, n: int = 5) -> list[dict]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows[-n:]:
        d = {}
        for k, v in r.items():
            try:
                d[k] = float(v) if v not in ("", None) else None
            except ValueError:
                d[k] = v
        out.append(d)
    return out


def _evaluation_rows(run_dir: Path) -> list:
    """(caption, [row]) tables of the scalar entries of evaluation JSON files in the run directory."""
    tables = []
    for path in sorted(run_dir.glob("eval*.json")):
        try:
            res = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(res, Mapping):
            row = {k: v for k, v in res.items() if isinstance(v, (int, float, str)) and k not in ("run", "dataset")}
            if row:
                tables.append((f"{path.name} (published protocol)", [row]))
    return tables


def _run_info(run: Mapping, run_dir: Path) -> dict:
    info: dict[str, Any] = {"run": run_dir.name}
    model = run.get("model") if isinstance(run.get("model"), Mapping) else {}
    for k in ("depth", "width", "kernels", "n_inputs"):
        if k in model:
            info[k] = str(model[k]) if isinstance(model[k], list) else model[k]
    if isinstance(model.get("kernels"), list):
        info["receptive_field_ms"] = int(sum(int(x) - 1 for x in model["kernels"]) + 1)
    return info


def _example_row(spike_true: np.ndarray, skip_ms: int) -> int:
    counts = spike_true[:, skip_ms:].sum(axis=1)
    ok = np.flatnonzero((counts > 0) & (counts <= 24))
    if ok.size == 0:
        return int(np.argmax(counts)) if counts.size else 0
    med = np.median(counts[ok])
    return int(ok[np.argmin(np.abs(counts[ok] - med))])


def report_run(run_dir: str | Path, data_dir: str | Path | None = None, out_dir: str | Path | None = None,
               n_trials: int = 16, trial: int | None = None) -> Path:
    """Write the HTML report of a training run; return the path of ``index.html``.

    Predicts the first ``n_trials`` test trials of the run's split (or of ``data_dir``), shows
    ``trial`` (a dataset trial index; default: the one with the median spike count among trials
    with 1-24 spikes) in the trace panels, and writes to ``out_dir`` (default ``<run_dir>/report``).
    """
    from neuroemu.dataset.reader import NeuroDataset

    run_dir = Path(run_dir)
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise CheckpointError(f"{run_dir} is not a training run: run.json is missing")
    try:
        run = json.loads(run_json.read_text())
    except ValueError as e:
        raise CheckpointError(f"{run_json} is corrupt ({e})") from e
    ds = NeuroDataset(_dataset_path(run, run_dir, data_dir))
    trials = _test_trials(run, ds)[: max(1, int(n_trials))]
    if trial is not None:
        if int(trial) not in ds.trial_indices:
            raise ConfigError(f"report: trial {trial} is not in dataset {ds.path} ({ds.n_trials} trials)")
        trials = [int(trial)] + [t for t in trials if t != int(trial)]
    if not trials:
        raise ConfigError(f"report: dataset {ds.path} has no test trial to show")
    emulator = _load_emulator(run_dir)
    which = str(run.get("inputs", "presynaptic"))    # the inputs the emulator was trained on
    probs, somas, trains, times, events = [], [], [], [], {}
    for i in trials:
        dense = ds.dense_inputs(i, 0, ds.duration_ms, inputs=which)
        out = emulator.predict_dense(dense) if hasattr(emulator, "predict_dense") else \
            emulator.predict(ds.trial(i, dend=False).inputs, ds.duration_ms)
        p, v = _prediction(out)
        probs.append(p[: ds.duration_ms])
        somas.append(v[: ds.duration_ms])
        trains.append(ds.spike_train(i))
        times.append(np.asarray(ds.spike_times(i), dtype=float))
        t_e, c_e = np.nonzero(dense[:, : ds.n_exc])
        t_i, c_i = np.nonzero(dense[:, ds.n_exc:])
        events[i] = (np.stack([c_e, t_e], 1), np.stack([c_i, t_i], 1))
    spike_true = np.stack(trains)
    example = 0 if trial is not None else _example_row(spike_true, 500)
    kind = str((ds.config.get("cell") or {}).get("kind", "l5pc"))
    regions = None
    if ds.segments is not None:
        try:
            cols = as_columns(ds.segments, "dataset segments")
        except ConfigError:
            cols = None
        if cols is not None and "region" in cols:
            regions = [str(r) for r in cols["region"][: ds.n_exc]]
    data = RunReportData(
        title=f"neuroemu run report: {run_dir.name}", cell_kind=kind, n_exc=ds.n_exc, n_inh=ds.n_inh,
        soma_true=np.stack([ds.soma_v(i) for i in trials]).astype(float), soma_pred=np.stack(somas),
        spike_true=spike_true, spike_prob=np.stack(probs), spike_times=times, trial_indices=trials,
        example=example, example_exc=events[trials[example]][0], example_inh=events[trials[example]][1],
        first_layer=_first_layer_weight(emulator), regions=regions, segments=ds.segments,
        run_info=_run_info(run, run_dir), training_rows=_training_rows(run_dir),
        evaluation_tables=_evaluation_rows(run_dir))
    return write_run_report(data, Path(out_dir) if out_dir is not None else run_dir / "report")
