"""Learning curves: how much data each kind of emulator needs.

``run_learning_curve(data, config, out)`` trains every model of ``config.models`` (model specs such as
``tcn:7x128``, ``branch-elm:15``, ``lstm:50``) on nested fractions of the training trials (the trials of a smaller
fraction are among those of every larger one; the validation and test trials are the same for all), early-stops
each on its validation AUC, scores it on the test trials by the published protocol and writes::

    LC/learning_curve.json    config, dataset, rows (one per model and fraction), status
    LC/learning_curve.csv     the rows (LEARNING_CURVE_COLUMNS)
    LC/figures/learning_curve.png   test AUC against hours of training data (log axis), one curve per model
                                    (further training replicates, ``train_seeds`` > 1: open markers)
    LC/fractions/f<F>/        one sweep per fraction (sweep.json, runs/<model>/ ...)

Each fraction is a sweep (:func:`neuroemu.study.sweep.run_sweep`), so everything is resumable and parallel as
sweeps are. A separate test dataset (``test_data``) makes every trial of it a test trace.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from neuroemu import __version__
from neuroemu.dataset.reader import open_dataset
from neuroemu.dataset.split import nested_subsets, split_trials
from neuroemu.errors import ConfigError
from neuroemu.io import read_json, write_json
from neuroemu.report.figures import learning_curve as learning_curve_figure
from neuroemu.report._style import save_figure
from neuroemu.results.rows import SweepRow
from neuroemu.results.status import Status
from neuroemu.study.sweep import SweepConfig, run_sweep
from neuroemu.study.sweep.store import dataset_summary

__all__ = ["LearningCurveConfig", "LEARNING_CURVE_COLUMNS", "run_learning_curve", "curve_row", "read_learning_curve"]

#: Columns of ``learning_curve.csv`` and keys of its JSON rows.
LEARNING_CURVE_COLUMNS = ["model", "family", "architecture", "n_params", "flops_per_ms", "fraction", "train_trials",
                          "train_hours", "spike_auc", "spike_auc_sd", "tp_at_fp_0.0025", "soma_rmse_mv",
                          "soma_explained_variance", "val_spike_auc", "steps", "best_step", "train_minutes",
                          "stop_reason", "n_test_traces", "n_test_spikes", "status", "run_dir", "replicate",
                          "train_seed"]


@dataclass
class LearningCurveConfig(SweepConfig):
    """A learning curve: :class:`~neuroemu.study.sweep.SweepConfig` settings for every model of ``models`` at
    each of ``fractions`` of the training trials (no depth x width grid unless ``depths``/``widths`` are given).
    ``patience``: early stopping after that many validations without improvement (the best checkpoint is
    scored either way)."""

    depths: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: ["tcn:1x128", "tcn:7x128", "branch-elm:15"])
    fractions: list[float] = field(default_factory=lambda: [0.125, 0.25, 0.5, 1.0])
    patience: int | None = 5

    def validate(self) -> "LearningCurveConfig":
        """Check the fields; raise :class:`ConfigError` naming the field at fault."""
        if not self.models and not (self.depths and self.widths):
            raise ConfigError("LearningCurveConfig.models must name at least one model (e.g. tcn:7x128)")
        if not self.fractions:
            raise ConfigError("LearningCurveConfig.fractions must hold at least one fraction in (0, 1]")
        for f in self.fractions:
            if not isinstance(f, (int, float)) or not 0.0 < float(f) <= 1.0:
                raise ConfigError(f"LearningCurveConfig.fractions: {f!r} is outside (0, 1]")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"LearningCurveConfig.patience must be >= 1 or null, got {self.patience}")
        super().validate()
        return self

    def sweep_for(self, fraction: float) -> SweepConfig:
        """The sweep that trains every model on ``fraction`` of the training trials."""
        d = {k: v for k, v in self.to_dict().items() if k not in ("fractions", "patience")}
        training = dict(d["training"])
        if self.patience is not None:
            training.setdefault("patience", self.patience)
        return SweepConfig.from_dict({**d, "training": training, "train_fraction": float(fraction)})


def curve_row(r: SweepRow) -> dict[str, Any]:
    """A learning-curve row (:data:`LEARNING_CURVE_COLUMNS`) of a sweep row."""
    d = r.to_dict()
    return {"model": r.model_spec or r.name, "family": r.family, "architecture": r.architecture,
            "n_params": r.n_parameters, "flops_per_ms": r.flops_per_ms, "fraction": r.fraction,
            "train_trials": r.train_trials, "train_hours": r.train_hours, "spike_auc": r.spike_auc,
            "spike_auc_sd": r.spike_auc_sd, "tp_at_fp_0.0025": d["tp_at_fp_0.0025"], "soma_rmse_mv": r.soma_rmse_mv,
            "soma_explained_variance": r.soma_explained_variance, "val_spike_auc": r.val_spike_auc,
            "steps": r.train_steps, "best_step": r.best_step, "train_minutes": r.train_minutes,
            "stop_reason": r.stop_reason, "n_test_traces": r.n_test_traces, "n_test_spikes": r.n_test_spikes,
            "status": str(r.status), "run_dir": r.run_dir, "replicate": r.replicate, "train_seed": r.train_seed}


def _fraction_dir(out: Path, f: float) -> Path:
    return out / "fractions" / f"f{float(f):.4g}"


def _check_fractions(data_dir: Path, config: LearningCurveConfig) -> dict[float, int]:
    ds = open_dataset(data_dir)
    split = split_trials(ds, config.split, config.split_fractions, config.seed)
    try:
        subsets = nested_subsets(split["train"], config.fractions, config.seed)
    except ConfigError as e:
        raise ConfigError(f"{data_dir}: {e}") from None
    return {f: len(t) for f, t in subsets.items()}


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv
    import io

    from neuroemu.io import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LEARNING_CURVE_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in LEARNING_CURVE_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def read_learning_curve(lc_dir: str | Path) -> dict[str, Any]:
    """Load ``LC/learning_curve.json``; :class:`ConfigError` naming the file if missing or unreadable."""
    return read_json(Path(lc_dir) / "learning_curve.json", ConfigError, "learning-curve directory")


def run_learning_curve(data_dir: str | Path, config: LearningCurveConfig, out_dir: str | Path, *,
                       test_data: str | Path | None = None, workers: int | None = None, threads: int | None = None,
                       client: Any = None, scheduler: str | None = None, log: Callable[[str], None] | None = None,
                       train: bool = True) -> dict[str, Any]:
    """Train and score every model at every fraction (module docstring); return the ``learning_curve.json``
    dict. Refuses fractions that leave no training trial and a directory made with another protocol (before
    anything is trained or written)."""
    config.validate()
    data_dir, out = Path(data_dir).resolve(), Path(out_dir)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    counts = _check_fractions(data_dir, config)
    dataset = dataset_summary(data_dir)
    old_path = out / "learning_curve.json"
    if old_path.is_file():
        old = read_learning_curve(out)
        old_cfg = LearningCurveConfig.from_dict(old.get("config") or {})
        grid = ("models", "fractions", "depths", "widths", "extra", "train_seeds")
        diff = sorted(k for k, v in config.to_dict().items() if k not in grid and old_cfg.to_dict().get(k) != v)
        if diff:
            raise ConfigError(f"{out} holds a learning curve made with other settings (differs in {', '.join(diff)}); "
                              "use another --out directory or the same settings")
    out.mkdir(parents=True, exist_ok=True)
    say(f"learning curve {out}: {len(config.models)} model(s) x {len(config.fractions)} fraction(s) of "
        f"{max(counts.values())} training trials ({', '.join(f'{f:g}: {n}' for f, n in counts.items())})")
    rows: list[SweepRow] = []
    statuses = []
    for f in sorted(config.fractions):
        doc = run_sweep(data_dir, config.sweep_for(f), _fraction_dir(out, f), workers=workers, threads=threads,
                        client=client, scheduler=scheduler, figures=False, log=say, train=train,
                        test_data=test_data)
        rows += [SweepRow.from_dict(r) for r in doc["rows"]]
        statuses.append(Status.parse(doc["status"]))
    n_bad = sum(1 for s in statuses if not s.ok)
    status = Status.of_parts(n_failed=n_bad) if n_bad else Status.of_parts()
    table = [curve_row(r) for r in rows]
    result = {"format": "neuroemu-learning-curve", "format_version": 1, "status": str(status),
              "config": config.to_dict(), "dataset": dataset, "test_data": str(test_data) if test_data else None,
              "train_trials_by_fraction": {f"{f:g}": n for f, n in counts.items()}, "columns": LEARNING_CURVE_COLUMNS,
              "rows": table, "neuroemu": __version__}
    write_json(out / "learning_curve.json", result)
    _write_table(out / "learning_curve.csv", table)
    done = [r for r in table if r["status"] == "done"]
    if done:
        save_figure(learning_curve_figure(done), out / "figures" / "learning_curve.png")
    return result
