"""A sweep directory on disk: ``sweep.json`` (config, dataset, rows, status) and ``sweep.csv``, and the check
that a rerun uses the same protocol and dataset."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import neuroemu
from neuroemu.dataset.reader import open_dataset
from neuroemu.dataset.source import describe_dataset
from neuroemu.errors import ConfigError, DatasetError
from neuroemu.io import read_json, write_json
from neuroemu.results.rows import TABLE_COLUMNS, SweepRow, write_table
from neuroemu.results.status import Status
from neuroemu.study.sweep.config import SweepConfig

__all__ = ["SWEEP_FORMAT_VERSION", "cell_label", "dataset_summary", "check_compatible", "write_sweep_json",
           "read_sweep"]

SWEEP_FORMAT_VERSION = 1


def cell_label(ds_config: dict) -> str:
    """``iaf`` or the L5PC variant of a dataset config dict."""
    cell = (ds_config or {}).get("cell") or {}
    if cell.get("kind") == "iaf":
        return "iaf"
    return str(cell.get("variant") or cell.get("kind") or "unknown")


def dataset_summary(data_dir: Path, min_trials: int = 3) -> dict[str, Any]:
    """The run facts of a dataset plus its ``cell_label``; refuse datasets with fewer than ``min_trials``."""
    ds = open_dataset(data_dir)
    if ds.n_trials < min_trials:
        raise DatasetError(f"{data_dir}: a sweep needs at least {min_trials} trials (train, validation, test); "
                           f"the dataset holds {ds.n_trials}")
    info = describe_dataset(ds)
    info["cell_label"] = cell_label(ds.config)
    return info


def check_compatible(out_dir: Path, config: SweepConfig, dataset: dict[str, Any]) -> None:
    """Refuse to continue a sweep in ``out_dir`` made with another protocol (naming the differing fields) or
    on another dataset."""
    path = out_dir / "sweep.json"
    if not path.is_file():
        return
    old = read_json(path, ConfigError, "sweep directory", "remove it to start the sweep afresh")
    old_proto = SweepConfig.from_dict(old.get("config", {})).protocol_dict()
    diff = sorted(k for k, v in config.protocol_dict().items() if old_proto.get(k) != v)
    if diff:
        raise ConfigError(f"{out_dir} holds a sweep trained with different settings ({', '.join(diff)}: "
                          f"{ {k: old_proto.get(k) for k in diff} }); use another --out directory or the same "
                          "settings (only depths, widths, receptive fields, extras and models may change)")
    od = old.get("dataset", {})
    if (od.get("fingerprint"), od.get("n_trials")) != (dataset["fingerprint"], dataset["n_trials"]):
        raise DatasetError(f"{out_dir} holds a sweep on another dataset (fingerprint {od.get('fingerprint')}, "
                           f"{od.get('n_trials')} trials) than {dataset['path']} (fingerprint "
                           f"{dataset['fingerprint']}, {dataset['n_trials']} trials); use another --out directory")


def write_sweep_json(out_dir: Path, config: SweepConfig, dataset: dict, rows: list[SweepRow], status: Status,
                     extra: dict[str, Any] | None = None) -> None:
    """Write ``sweep.json`` and ``sweep.csv`` (atomically)."""
    doc = {"format": "neuroemu-sweep", "format_version": SWEEP_FORMAT_VERSION, "status": str(status),
           "cell": dataset.get("cell_label"), "config": config.to_dict(), "dataset": dataset,
           "columns": TABLE_COLUMNS, "rows": [r.to_dict() for r in rows], "neuroemu": neuroemu.__version__,
           **(extra or {})}
    write_json(out_dir / "sweep.json", doc)
    write_table(rows, out_dir / "sweep.csv")


def read_sweep(sweep_dir: str | Path) -> dict[str, Any]:
    """Load ``SWEEP/sweep.json``; raise :class:`ConfigError` naming the file if it is missing or unreadable."""
    return read_json(Path(sweep_dir) / "sweep.json", ConfigError, "sweep directory")
