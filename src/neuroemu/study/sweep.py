"""Complexity sweep: train and evaluate every depth x width (x receptive field) network on one dataset.

Every configuration is trained in its own run directory ``SWEEP/runs/<D>x<W>x<T>/`` with the same seed,
split and training budget, then evaluated by the published protocol (spec 9) on the validation trials
(``eval_val.json``, used to select) and on the test trials (``eval_test.json``, reported). A configuration is
finished when its ``result.json`` exists; a rerun keeps finished configurations, resumes interrupted training
from its last checkpoint and retries failed ones. The sweep writes ``SWEEP/sweep.json`` (config, dataset,
rows) and ``SWEEP/sweep.csv`` (one row per configuration), and the accuracy-vs-complexity figures of spec
9.7 as PNGs under ``SWEEP/figures/``.

Kernels for a depth D and receptive field T (:func:`kernels_for`), so that ``T = sum(K_k - 1) + 1``:

- D = 1: ``[T]`` (a single temporal layer, as the published FCNs);
- D > 1: the first layer is wide in time as published,
  ``K1 = max(round(T * first_kernel_fraction), ceil((T + D - 1) / D))`` (default fraction 1/3; the second
  term keeps the first layer at least as long as every other one), and the remaining span ``T - K1`` is
  shared as evenly as possible by layers 2..D (lower layers take the remainder), e.g.
  D = 7, T = 153 -> [51, 18, 18, 18, 18, 18, 18]; D = 3, T = 80 -> [28, 27, 27]; D = 2, T = 40 -> [21, 20].

Without ``receptive_fields`` the published-style default kernels of each depth are used
(:func:`neuroemu.models.tcn.default_kernels`: [43] at depth 1, [39, 20, ...] above, so T grows with depth).

Parallelism: ``workers`` local processes (each training process uses ``cores // workers`` torch threads) or a
Dask cluster (``client`` / ``scheduler``; workers must see the dataset and the sweep directory on a shared file
system, and run one task per worker thread).
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from neuroemu.config import Config
from neuroemu.errors import ConfigError, DatasetError, NeuroemuError
from neuroemu.parallel import process_pool

__all__ = ["SweepConfig", "SweepEntry", "kernels_for", "sweep_entries", "run_sweep", "read_sweep",
           "select_best", "write_table", "train_and_evaluate", "TABLE_COLUMNS", "SWEEP_FORMAT_VERSION"]

SWEEP_FORMAT_VERSION = 1
RESULT_NAME = "result.json"

#: Columns of ``sweep.csv`` (and keys of every row in ``sweep.json``), in order.
TABLE_COLUMNS = [
    "name", "cell", "variant", "depth", "width", "receptive_field", "kernels", "architecture", "n_parameters",
    "spike_auc", "spike_auc_sd", "tp_at_fp_0.0025", "tp_at_fp_0.001", "soma_explained_variance",
    "soma_explained_variance_sd", "soma_rmse_mv", "soma_mae_mv", "n_test_traces", "n_test_spikes",
    "val_spike_auc", "val_spike_auc_sd", "val_tp_at_fp_0.0025", "val_soma_explained_variance",
    "val_soma_explained_variance_sd", "n_val_traces", "n_val_spikes",
    "train_steps", "train_minutes", "eval_minutes", "stop_reason", "status", "run_dir",
]

#: SweepConfig fields that may change between runs of the same sweep directory (the grid); all the
#: others define how each configuration is trained and evaluated and must stay the same.
GRID_FIELDS = ("depths", "widths", "receptive_fields", "extra")


@dataclass
class SweepConfig(Config):
    """What a complexity sweep trains and how.

    depths, widths, receptive_fields: the grid (receptive fields in ms; ``None``: default kernels per depth).
    budget_steps / budget_minutes: training budget of every configuration (the same for all).
    preset: training preset (``modern``: AdamW, warm-up over a tenth of the budget (at most 200 steps), then
    cosine decay over the budget, suited to short budgets;
    ``published``: the staged schedule of spec 8.6, compressed to the budget). training: extra
    :class:`~neuroemu.training.config.TrainingConfig` fields. model: extra
    :class:`~neuroemu.models.tcn.TCNConfig` fields (e.g. ``{"activation": "linear"}``). seed: training seed
    and split seed (the same split for every configuration). split: ``random`` (the dataset's split of whole
    trials) or ``stratified`` (:mod:`neuroemu.study.split`: spiking trials dealt to every part, for small
    datasets where most trials are silent). checkpoint: ``best`` (selected on the validation
    windows during training) or ``last``. evaluation: extra
    :class:`~neuroemu.evaluation.protocol.EvaluationConfig` fields; ``drop_first_ms`` defaults to
    ``min(500, duration // 4)`` so that short trials keep most of their length. first_kernel_fraction: see
    :func:`kernels_for`. extra: configurations trained in addition to the grid, each a dict with ``label``,
    ``depth``, ``width``, ``kernels`` and any other TCNConfig fields (e.g. the published I&F network:
    ``{"label": "linear", "depth": 1, "width": 1, "kernels": [80], "activation": "linear",
    "batchnorm": False}``); its run is named ``<D>x<W>x<T>_<label>``.
    """

    depths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 7])
    widths: list[int] = field(default_factory=lambda: [8, 32, 128])
    receptive_fields: list[int] | None = None
    budget_steps: int | None = 2000
    budget_minutes: float | None = None
    preset: str = "modern"
    training: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split: str = "random"
    checkpoint: str = "best"
    evaluation: dict[str, Any] = field(default_factory=dict)
    first_kernel_fraction: float = 1.0 / 3.0
    extra: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "SweepConfig":
        """Check the fields; raise :class:`ConfigError` naming the field and value at fault."""
        for name in ("depths", "widths"):
            vals = getattr(self, name)
            if not vals or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in vals):
                raise ConfigError(f"SweepConfig.{name} must be a non-empty list of integers >= 1, got {vals!r}")
        if self.receptive_fields is not None:
            rf = self.receptive_fields
            if not rf or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in rf):
                raise ConfigError(f"SweepConfig.receptive_fields must be integers >= 1 (ms) or null, got {rf!r}")
        if self.budget_steps is None and self.budget_minutes is None:
            raise ConfigError("SweepConfig: give a training budget (budget_steps and/or budget_minutes)")
        if self.budget_steps is not None and self.budget_steps < 1:
            raise ConfigError(f"SweepConfig.budget_steps must be >= 1, got {self.budget_steps}")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise ConfigError(f"SweepConfig.budget_minutes must be > 0, got {self.budget_minutes}")
        if self.preset not in ("modern", "published"):
            raise ConfigError(f"SweepConfig.preset must be 'modern' or 'published', got {self.preset!r}")
        if self.split not in ("random", "stratified"):
            raise ConfigError(f"SweepConfig.split must be 'random' or 'stratified', got {self.split!r}")
        if self.checkpoint not in ("best", "last"):
            raise ConfigError(f"SweepConfig.checkpoint must be 'best' or 'last', got {self.checkpoint!r}")
        if not 0.0 < self.first_kernel_fraction <= 1.0:
            raise ConfigError(f"SweepConfig.first_kernel_fraction must be in (0, 1], got {self.first_kernel_fraction}")
        for key in ("depth", "width", "kernels", "widths", "n_inputs"):
            if key in self.model:
                raise ConfigError(f"SweepConfig.model may not set {key!r}: the sweep grid chooses it")
        for i, x in enumerate(self.extra):
            if not isinstance(x, dict) or not {"label", "depth", "width", "kernels"} <= set(x):
                raise ConfigError(f"SweepConfig.extra[{i}] must be a dict with label, depth, width and kernels, "
                                  f"got {x!r}")
            if not str(x["label"]).replace("_", "").replace("-", "").isalnum():
                raise ConfigError(f"SweepConfig.extra[{i}].label {x['label']!r} must be letters, digits, - or _")
        for key in ("max_steps", "max_minutes", "seed", "split_fractions"):
            if key in self.training:
                raise ConfigError(f"SweepConfig.training may not set {key!r}: use SweepConfig's budget_steps, "
                                  f"budget_minutes, seed and split_fractions")
        return self

    def protocol_dict(self) -> dict[str, Any]:
        """The fields that define how every configuration is trained and evaluated (all but the grid)."""
        d = self.to_dict()
        for k in GRID_FIELDS:
            d.pop(k, None)
        return d


def kernels_for(depth: int, receptive_field: int, first_kernel_fraction: float = 1.0 / 3.0) -> list[int]:
    """Kernel lengths of a depth-``depth`` TCN with receptive field ``receptive_field`` ms (module docstring)."""
    if depth < 1 or receptive_field < 1:
        raise ConfigError(f"kernels_for: depth ({depth}) and receptive field ({receptive_field}) must be >= 1")
    if depth == 1:
        return [int(receptive_field)]
    at_least = -(-(receptive_field + depth - 1) // depth)  # ceil((T + D - 1) / D): K1 >= every other K
    k1 = max(1, min(receptive_field, max(int(round(receptive_field * first_kernel_fraction)), at_least)))
    span = receptive_field - k1
    base, extra = divmod(span, depth - 1)
    return [k1] + [1 + base + (1 if i < extra else 0) for i in range(depth - 1)]


@dataclass
class SweepEntry:
    """One configuration: of the grid, or an extra one with its own model fields and ``label``."""

    depth: int
    width: int
    kernels: list[int]
    model: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def receptive_field(self) -> int:
        """T = sum(K - 1) + 1 (ms)."""
        return sum(k - 1 for k in self.kernels) + 1

    @property
    def name(self) -> str:
        """Run directory name ``<D>x<W>x<T>`` (the published DxWxT naming), ``_<label>`` for extras."""
        base = f"{self.depth}x{self.width}x{self.receptive_field}"
        return f"{base}_{self.label}" if self.label else base

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (task argument of the worker processes)."""
        return {"depth": self.depth, "width": self.width, "kernels": list(self.kernels), "model": dict(self.model),
                "label": self.label}


def sweep_entries(config: SweepConfig) -> list[SweepEntry]:
    """All configurations of the grid, smallest first (depth, then width, then receptive field)."""
    from neuroemu.models.tcn import default_kernels

    out: dict[str, SweepEntry] = {}
    for d in sorted(set(config.depths)):
        for w in sorted(set(config.widths)):
            if config.receptive_fields is None:
                e = SweepEntry(d, w, default_kernels(d))
                out.setdefault(e.name, e)
            else:
                for t in sorted(set(config.receptive_fields)):
                    e = SweepEntry(d, w, kernels_for(d, t, config.first_kernel_fraction))
                    out.setdefault(e.name, e)
    for x in config.extra:
        x = dict(x)
        e = SweepEntry(int(x.pop("depth")), int(x.pop("width")), [int(k) for k in x.pop("kernels")],
                       label=str(x.pop("label")), model=x)
        out.setdefault(e.name, e)
    return list(out.values())


# ---------------------------------------------------------------------------------------------- one config
def _cell_label(ds_config: dict) -> str:
    cell = (ds_config or {}).get("cell") or {}
    if cell.get("kind") == "iaf":
        return "iaf"
    return str(cell.get("variant") or cell.get("kind") or "unknown")


def _training_config(config: SweepConfig, duration_ms: int, threads: int | None):
    from neuroemu.training.config import TrainingConfig

    extra = dict(config.training)
    budget = config.budget_steps
    if budget is not None:
        extra.setdefault("val_every_steps", max(1, budget // 10))
        extra.setdefault("log_every_steps", max(1, min(50, extra["val_every_steps"])))
    extra.setdefault("min_end_ms", min(500, duration_ms // 2))
    extra.setdefault("tensorboard", False)
    if config.preset == "published" and budget is not None:
        extra.setdefault("compress_schedule", True)
    if config.preset == "modern" and budget is not None:
        extra.setdefault("warmup_steps", max(1, min(200, budget // 10)))  # short budgets: reach the peak lr
    extra.setdefault("threads", threads)
    return TrainingConfig.from_preset(config.preset, max_steps=budget, max_minutes=config.budget_minutes,
                                      seed=config.seed, split_fractions=list(config.split_fractions), **extra)


def _evaluation_config(config: SweepConfig, duration_ms: int):
    from neuroemu.evaluation.protocol import EvaluationConfig

    extra = dict(config.evaluation)
    extra.setdefault("drop_first_ms", min(500, duration_ms // 4))
    return EvaluationConfig.from_dict(extra)


def _metric(ev: dict, key: str) -> Any:
    v = ev.get(key)
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _row(entry: SweepEntry, cell: str, mcfg, val: dict, test: dict, train_info: dict, run_dir: Path,
         eval_s: float) -> dict[str, Any]:
    row = {"name": entry.name, "cell": cell, "variant": entry.label or "grid", "depth": entry.depth,
           "width": entry.width,
           "receptive_field": entry.receptive_field, "kernels": list(entry.kernels), "architecture": mcfg.name,
           "n_parameters": int(mcfg.n_parameters)}
    for k in ("spike_auc", "spike_auc_sd", "tp_at_fp_0.0025", "tp_at_fp_0.001", "soma_explained_variance",
              "soma_explained_variance_sd", "soma_rmse_mv", "soma_mae_mv"):
        row[k] = _metric(test, k)
    row["n_test_traces"] = test.get("n_traces")
    row["n_test_spikes"] = test.get("n_spikes")
    for k in ("spike_auc", "spike_auc_sd", "tp_at_fp_0.0025", "soma_explained_variance",
              "soma_explained_variance_sd"):
        row[f"val_{k}"] = _metric(val, k)
    row["n_val_traces"] = val.get("n_traces")
    row["n_val_spikes"] = val.get("n_spikes")
    row.update({"train_steps": train_info["steps"], "train_minutes": round(train_info["elapsed_s"] / 60.0, 4),
                "eval_minutes": round(eval_s / 60.0, 4), "stop_reason": train_info["stop_reason"],
                "status": "done", "run_dir": str(run_dir)})
    return row


def train_and_evaluate(data_dir: str, config_dict: dict, entry_dict: dict, run_dir: str,
                       threads: int | None = None) -> dict[str, Any]:
    """Train one configuration in ``run_dir`` (resuming an interrupted run), evaluate it on the validation
    and test trials, write ``run_dir/result.json`` and return its table row. Runs in a worker process."""
    import torch

    from neuroemu.evaluation.protocol import evaluate
    from neuroemu.models.checkpoint import atomic_write_text
    from neuroemu.models.tcn import TCNConfig
    from neuroemu.training.data import open_dataset
    from neuroemu.training.loop import train

    if threads:
        torch.set_num_threads(int(threads))
    config = SweepConfig.from_dict(config_dict)
    entry = SweepEntry(**entry_dict)
    out = Path(run_dir)
    if config.split == "stratified":
        from neuroemu.study.split import StratifiedDataset

        ds = StratifiedDataset(data_dir)
    else:
        ds = open_dataset(data_dir)
    tcfg = _training_config(config, int(ds.duration_ms), threads)
    mcfg = TCNConfig(n_inputs=int(ds.n_channels), depth=entry.depth, width=entry.width,
                     kernels=list(entry.kernels), **{**config.model, **entry.model})
    resumable = (out / "run.json").is_file() and (out / "checkpoints" / "last.pt").is_file()
    if out.exists() and not resumable:
        shutil.rmtree(out)
    if resumable:
        res = train(ds, None, {"max_steps": tcfg.max_steps, "max_minutes": tcfg.max_minutes}, out, resume=True)
    else:
        res = train(ds, mcfg, tcfg, out)
    train_info = {"steps": int(res.steps), "elapsed_s": float(res.elapsed_s), "stop_reason": res.stop_reason}
    ecfg = _evaluation_config(config, int(ds.duration_ms))
    t0 = time.monotonic()
    val = evaluate(out, ds, split="val", out=out / "eval_val.json", checkpoint=config.checkpoint, config=ecfg,
                   device="auto") if tcfg.split_fractions[1] > 0 else {}
    test = evaluate(out, ds, split="test", out=out / "eval_test.json", checkpoint=config.checkpoint, config=ecfg,
                    device="auto")
    row = _row(entry, _cell_label(ds.config), mcfg, val, test, train_info, out, time.monotonic() - t0)
    atomic_write_text(out / RESULT_NAME, json.dumps({"row": row, "entry": entry.to_dict(), "train": train_info,
                                                     "evaluation": ecfg.to_dict()}, indent=1))
    return row


def _safe_task(*args) -> dict[str, Any]:
    """:func:`train_and_evaluate`, turning a neuroemu error or a runtime failure (e.g. out of memory) into a
    row with ``status = failed: ...`` so that the other configurations go on."""
    try:
        return train_and_evaluate(*args)
    except (NeuroemuError, RuntimeError, MemoryError) as e:
        entry = SweepEntry(**args[2])
        return {"name": entry.name, "variant": entry.label or "grid", "depth": entry.depth, "width": entry.width,
                "receptive_field": entry.receptive_field, "kernels": list(entry.kernels),
                "status": f"failed: {type(e).__name__}: {e}", "run_dir": args[3]}


# ---------------------------------------------------------------------------------------------- the sweep
def _finished_row(run_dir: Path, entry: SweepEntry) -> dict[str, Any] | None:
    path = run_dir / RESULT_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        row = doc["row"]
    except (OSError, ValueError, KeyError):
        return None
    stored = doc.get("entry")
    if stored is not None and stored != entry.to_dict():
        raise ConfigError(f"{run_dir} was trained as {stored}, but the sweep now defines {entry.name} as "
                          f"{entry.to_dict()}; remove {run_dir} or give the extra configuration another label")
    return row if row.get("status") == "done" else None


def _dataset_summary(data_dir: Path) -> dict[str, Any]:
    from neuroemu.training.data import dataset_info, open_dataset

    ds = open_dataset(data_dir)
    if ds.n_trials < 3:
        raise DatasetError(f"{data_dir}: a sweep needs at least 3 trials (train, validation, test); "
                           f"the dataset holds {ds.n_trials}")
    info = dataset_info(ds)
    info["cell_label"] = _cell_label(ds.config)
    return info


def _check_compatible(out_dir: Path, config: SweepConfig, dataset: dict[str, Any]) -> None:
    path = out_dir / "sweep.json"
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable ({e}); remove it to start the sweep afresh") from None
    old_proto = SweepConfig.from_dict(old.get("config", {})).protocol_dict()
    diff = sorted(k for k, v in config.protocol_dict().items() if old_proto.get(k) != v)
    if diff:
        raise ConfigError(f"{out_dir} holds a sweep trained with different settings ({', '.join(diff)}: "
                          f"{ {k: old_proto.get(k) for k in diff} }); use another --out directory or the same "
                          "settings (only depths, widths and receptive fields may change)")
    od = old.get("dataset", {})
    if (od.get("fingerprint"), od.get("n_trials")) != (dataset["fingerprint"], dataset["n_trials"]):
        raise DatasetError(f"{out_dir} holds a sweep on another dataset (fingerprint {od.get('fingerprint')}, "
                           f"{od.get('n_trials')} trials) than {dataset['path']} (fingerprint "
                           f"{dataset['fingerprint']}, {dataset['n_trials']} trials); use another --out directory")


def _csv_value(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return "-".join(str(x) for x in v)
    if v is None:
        return ""
    return v


def write_table(rows: list[dict[str, Any]], csv_path: Path) -> None:
    """Write rows as CSV with :data:`TABLE_COLUMNS` (lists joined with '-', missing values empty)."""
    import io

    from neuroemu.models.checkpoint import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(r.get(k)) for k in TABLE_COLUMNS})
    atomic_write_text(csv_path, buf.getvalue())


def _write_sweep_json(out_dir: Path, config: SweepConfig, dataset: dict, rows: list[dict], status: str,
                      extra: dict[str, Any]) -> None:
    import neuroemu
    from neuroemu.models.checkpoint import atomic_write_text

    doc = {"format": "neuroemu-sweep", "format_version": SWEEP_FORMAT_VERSION, "status": status,
           "cell": dataset.get("cell_label"), "config": config.to_dict(), "dataset": dataset,
           "columns": TABLE_COLUMNS, "rows": rows, "neuroemu": neuroemu.__version__, **extra}
    atomic_write_text(out_dir / "sweep.json", json.dumps(doc, indent=1))
    write_table(rows, out_dir / "sweep.csv")


def read_sweep(sweep_dir: str | Path) -> dict[str, Any]:
    """Load ``SWEEP/sweep.json``; raise :class:`ConfigError` naming the file if it is missing or unreadable."""
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"{path}: not found (is {sweep_dir} a sweep directory?)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable ({e})") from None


def select_best(rows: list[dict[str, Any]], by: str = "depth", select_on: str = "val_spike_auc",
                fallback: str = "spike_auc") -> list[dict[str, Any]]:
    """Per (cell, ``by`` value), the finished row with the highest ``select_on`` (validation) metric.

    Rows without a finite ``select_on`` value are ranked by ``fallback`` after those with one.
    Returned in increasing ``by`` order within each cell.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("status") != "done":
            continue
        groups.setdefault((str(r.get("cell")), r.get(by)), []).append(r)

    def score(r):
        a, b = r.get(select_on), r.get(fallback)
        fin = lambda v: isinstance(v, (int, float)) and math.isfinite(v)  # noqa: E731
        return (1 if fin(a) else 0, a if fin(a) else -1.0, b if fin(b) else -1.0, -(r.get("n_parameters") or 0))

    return [max(g, key=score) for _, g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1]))]


def _run_local(tasks, workers: int, on_row: Callable[[dict], None]) -> None:
    if workers <= 1:
        for t in tasks:
            on_row(_safe_task(*t))
        return
    with process_pool(workers) as pool:
        futs = [pool.submit(_safe_task, *t) for t in tasks]
        try:
            for fut in cf.as_completed(futs):
                on_row(fut.result())
        except BaseException:
            for f in futs:
                f.cancel()
            raise


def _run_dask(tasks, client, on_row: Callable[[dict], None]) -> None:
    from distributed import as_completed

    futs = [client.submit(_safe_task, *t, pure=False) for t in tasks]
    try:
        for fut in as_completed(futs):
            on_row(fut.result())
    except BaseException:
        for f in futs:
            f.cancel()
        raise


def run_sweep(data_dir: str | Path, config: SweepConfig, out_dir: str | Path, *, workers: int | None = None,
              threads: int | None = None, client: Any = None, scheduler: str | None = None, figures: bool = True,
              log: Callable[[str], None] | None = None, train: bool = True) -> dict[str, Any]:
    """Train and evaluate every configuration of ``config`` on ``data_dir``; write ``out_dir`` (see module doc).

    workers: parallel local training processes (default: one per core -- one per GPU where CUDA is available --
    and at most one per configuration; ``workers=1`` trains in this process). threads: torch threads per
    training process (default ``cores // workers``; the small sweep networks gain little from more, and
    oversubscribed cores slow every process down). client / scheduler: run on a Dask cluster instead (one thread
    per task; shared file system needed). figures: write the accuracy-vs-complexity PNGs. Finished
    configurations are kept; failed ones are reported in the table (``status``) and retried on the next run.
    ``train=False`` trains nothing: it tabulates the finished configurations (status ``incomplete`` while any
    is missing), e.g. for a report while another process is still training.
    Returns the ``sweep.json`` dict plus ``trained_now`` (names of the configurations trained by this call).
    """
    config.validate()
    data_dir = Path(data_dir).resolve()
    out_dir = Path(out_dir)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dataset = _dataset_summary(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_compatible(out_dir, config, dataset)
    entries = sweep_entries(config)
    rows: dict[str, dict] = {}
    todo = []
    for e in entries:
        rd = out_dir / "runs" / e.name
        done = _finished_row(rd, e)
        if done is not None:
            rows[e.name] = done
        else:
            todo.append(e)
    not_trained = [] if train else [e.name for e in todo]
    if not train:
        todo = []
    cores = os.cpu_count() or 1
    own_client = False
    if client is None and scheduler:
        from distributed import Client

        client = Client(scheduler)
        own_client = True
    if workers is None:
        import torch

        per_device = torch.cuda.device_count() if torch.cuda.is_available() else cores  # one job per GPU
        workers = max(1, min(len(todo), per_device)) if client is None else 1
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    if threads is None:
        threads = 1 if client is not None else max(1, cores // max(1, min(workers, max(1, len(todo)))))
    say(f"sweep {out_dir}: {len(entries)} configurations on {data_dir.name} ({dataset['cell_label']}, "
        f"{dataset['n_trials']} trials x {dataset['duration_ms']} ms); {len(entries) - len(todo)} finished, "
        f"{len(todo)} to train" + (f" ({workers} in parallel, {threads} thread(s) each)" if todo and client is None
                                   else " on the Dask cluster" if todo else "")
        + (f" ({len(not_trained)} unfinished, not trained: train=False)" if not_trained else ""))
    t_start = time.monotonic()
    trained_now: list[str] = []
    order = [e.name for e in entries]

    def ordered() -> list[dict]:
        return [rows[n] for n in order if n in rows]

    _write_sweep_json(out_dir, config, dataset, ordered(), "running" if todo else
                      (f"incomplete: {len(not_trained)} not trained" if not_trained else "complete"), {})

    def on_row(row: dict) -> None:
        rows[row["name"]] = row
        trained_now.append(row["name"])
        if row.get("status") == "done":
            say(f"  [{len(trained_now)}/{len(todo)}] {row['name']}: test AUC {_fmt(row.get('spike_auc'))} "
                f"+- {_fmt(row.get('spike_auc_sd'))}, soma EV {_fmt(row.get('soma_explained_variance'), 1)}%, "
                f"val AUC {_fmt(row.get('val_spike_auc'))}, {row['train_steps']} steps in "
                f"{row['train_minutes']:.1f} min")
        else:
            say(f"  [{len(trained_now)}/{len(todo)}] {row['name']}: {row.get('status')}")
        _write_sweep_json(out_dir, config, dataset, ordered(), "running", {})

    tasks = [(str(data_dir), config.to_dict(), e.to_dict(),
              str(out_dir / "runs" / e.name), threads) for e in todo]
    try:
        if client is not None:
            _run_dask(tasks, client, on_row)
        else:
            _run_local(tasks, workers, on_row)
    finally:
        if own_client:
            client.close()
    final = ordered()
    failed = [r["name"] for r in final if r.get("status") != "done"]
    status = "complete" if not failed and not not_trained else ", ".join(
        ([f"{len(failed)} failed"] if failed else []) + ([f"{len(not_trained)} not trained"] if not_trained else []))
    if status != "complete":
        status = "incomplete: " + status
    extra = {"wall_minutes_last_call": round((time.monotonic() - t_start) / 60.0, 3),
             "selected_by_depth": [r["name"] for r in select_best(final, "depth")]}
    _write_sweep_json(out_dir, config, dataset, final, status, extra)
    if figures and any(r.get("status") == "done" for r in final):
        from neuroemu.report.sweep_report import write_sweep_figures

        write_sweep_figures(final, out_dir / "figures")
    if failed:
        say(f"sweep {out_dir}: {len(failed)} configuration(s) failed ({', '.join(failed[:5])}); rerun to retry")
    doc = read_sweep(out_dir)
    doc["trained_now"] = trained_now
    return doc


def _fmt(v: Any, nd: int = 4) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"
