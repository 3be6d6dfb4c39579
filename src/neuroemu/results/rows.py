"""One trained and evaluated network: :class:`SweepRow`, the row of ``sweep.csv``, ``study.csv`` and the learning
curves; its JSON form (``to_dict``) and CSV form (``csv_values``) both come from the dataclass fields."""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from neuroemu.io import atomic_write_text
from neuroemu.results.status import State, Status

__all__ = ["SweepRow", "TABLE_COLUMNS", "write_table", "read_rows", "finite"]


def finite(v: Any) -> bool:
    """True for a finite int or float (not bool, not None, not NaN)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _metric(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


@dataclass
class SweepRow:
    """A network trained on one dataset and scored on its validation and test trials (reference 9).

    Identity: ``name`` (run directory name), ``cell``, ``variant`` (``grid`` or an extra configuration's
    label), ``family`` and its architecture (``depth``/``width``/``receptive_field``/``kernels`` for TCNs;
    ``size``: the family's size parameter, e.g. Branch-ELM memory units). Test metrics (published protocol),
    validation metrics (``val_*``, used to select), training facts (steps, minutes, the amount of training data
    ``train_trials`` / ``train_hours`` and the ``fraction`` of the training pool), ``status``, ``run_dir``;
    ``replicate`` (0 for the first training run of a configuration, k for the k-th extra one, run
    ``<name>_s<k>``) and its ``train_seed``.
    """

    name: str
    cell: str | None = None
    variant: str = "grid"
    depth: int | None = None
    width: int | None = None
    receptive_field: int | None = None
    kernels: list[int] | None = None
    architecture: str | None = None
    n_parameters: int | None = None
    spike_auc: float | None = None
    spike_auc_sd: float | None = None
    tp_at_fp_0_0025: float | None = field(default=None, metadata={"column": "tp_at_fp_0.0025"})
    tp_at_fp_0_001: float | None = field(default=None, metadata={"column": "tp_at_fp_0.001"})
    soma_explained_variance: float | None = None
    soma_explained_variance_sd: float | None = None
    soma_rmse_mv: float | None = None
    soma_mae_mv: float | None = None
    n_test_traces: int | None = None
    n_test_spikes: int | None = None
    val_spike_auc: float | None = None
    val_spike_auc_sd: float | None = None
    val_tp_at_fp_0_0025: float | None = field(default=None, metadata={"column": "val_tp_at_fp_0.0025"})
    val_soma_explained_variance: float | None = None
    val_soma_explained_variance_sd: float | None = None
    n_val_traces: int | None = None
    n_val_spikes: int | None = None
    train_steps: int | None = None
    train_minutes: float | None = None
    eval_minutes: float | None = None
    stop_reason: str | None = None
    status: Status = field(default_factory=Status.done)
    run_dir: str | None = None
    # added with the model families and the data axis (after the original columns, so old readers keep working)
    family: str = "tcn"
    model_spec: str | None = None
    size: int | None = None
    flops_per_ms: float | None = None
    best_step: int | None = None
    fraction: float | None = None
    train_trials: int | None = None
    train_hours: float | None = None
    # added with training replicates: replicate k of a configuration trains with seed ``train_seed``
    replicate: int = 0
    train_seed: int | None = None

    # ------------------------------------------------------------------ forms
    @staticmethod
    def column(f: dataclasses.Field) -> str:
        """The column / JSON key of a field (``tp_at_fp_0.0025`` for ``tp_at_fp_0_0025``)."""
        return f.metadata.get("column", f.name)

    def get(self, key: str, default: Any = None) -> Any:
        """A value by its column name (as from the JSON dict)."""
        return self.to_dict().get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every column, status as text, NaN as None."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[self.column(f)] = str(v) if isinstance(v, Status) else _metric(v)
        return out

    def csv_values(self) -> dict[str, Any]:
        """The CSV form: lists joined with ``-``, missing values empty."""
        out = {}
        for k, v in self.to_dict().items():
            out[k] = "-".join(str(x) for x in v) if isinstance(v, (list, tuple)) else ("" if v is None else v)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepRow":
        """A row from its JSON form (keys it does not know are ignored; missing ones are None)."""
        by_col = {cls.column(f): f.name for f in dataclasses.fields(cls)}
        kw = {by_col[k]: v for k, v in d.items() if k in by_col}
        kw.setdefault("name", str(d.get("name", "")))
        if "status" in kw:
            kw["status"] = Status.parse(kw["status"])
        if kw.get("variant") is None:
            kw["variant"] = "grid"
        if kw.get("family") is None:
            kw["family"] = "tcn"
        if kw.get("replicate") is None:
            kw["replicate"] = 0
        return cls(**kw)

    @classmethod
    def failed(cls, name: str, detail: str, **identity: Any) -> "SweepRow":
        """The row of a configuration whose training or evaluation failed."""
        return cls(name=name, status=Status.failed(detail), **identity)

    @property
    def done(self) -> bool:
        """Trained and evaluated."""
        return self.status.state == State.DONE

    def with_metrics(self, test: dict[str, Any], val: dict[str, Any]) -> "SweepRow":
        """This row with the test and validation metrics of two evaluation results (reference 9.4 keys)."""
        for k in ("spike_auc", "spike_auc_sd", "soma_explained_variance", "soma_explained_variance_sd",
                  "soma_rmse_mv", "soma_mae_mv"):
            setattr(self, k, _metric(test.get(k)))
        self.tp_at_fp_0_0025 = _metric(test.get("tp_at_fp_0.0025"))
        self.tp_at_fp_0_001 = _metric(test.get("tp_at_fp_0.001"))
        self.n_test_traces, self.n_test_spikes = test.get("n_traces"), test.get("n_spikes")
        for k in ("spike_auc", "spike_auc_sd", "soma_explained_variance", "soma_explained_variance_sd"):
            setattr(self, f"val_{k}", _metric(val.get(k)))
        self.val_tp_at_fp_0_0025 = _metric(val.get("tp_at_fp_0.0025"))
        self.n_val_traces, self.n_val_spikes = val.get("n_traces"), val.get("n_spikes")
        return self


#: Columns of ``sweep.csv`` (and keys of every row in ``sweep.json``), in order.
TABLE_COLUMNS = [SweepRow.column(f) for f in dataclasses.fields(SweepRow)]


def _as_row(r: "SweepRow | dict[str, Any]") -> SweepRow:
    return r if isinstance(r, SweepRow) else SweepRow.from_dict(r)


def read_rows(rows: Iterable["SweepRow | dict[str, Any]"]) -> list[SweepRow]:
    """Typed rows from JSON dicts (or rows)."""
    return [_as_row(r) for r in rows]


def write_table(rows: Iterable["SweepRow | dict[str, Any]"], csv_path: str | Path) -> None:
    """Write rows as CSV with :data:`TABLE_COLUMNS`, atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(_as_row(r).csv_values())
    atomic_write_text(csv_path, buf.getvalue())
