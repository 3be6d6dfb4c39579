"""Train and evaluate one network: a :class:`TrainJob`, run in a worker process (local or Dask).

A job is finished when ``RUN/result.json`` exists: it holds the table row, the job's definition (``entry``;
a rerun that defines the same name differently is refused), training facts and the evaluation protocol. An
interrupted job resumes its training from ``checkpoints/last.pt``. Sweeps and learning curves make jobs;
nothing here knows which.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neuroemu.dataset.reader import open_dataset
from neuroemu.errors import ConfigError, NeuroemuError
from neuroemu.evaluation.protocol import EvaluationConfig, evaluate
from neuroemu.io import write_json
from neuroemu.models.registry import model_config_from_dict
from neuroemu.results.rows import SweepRow
from neuroemu.training.config import TrainingConfig
from neuroemu.training.loop import resume, set_threads, train

__all__ = ["TrainJob", "run_job", "safe_run_job", "finished_row", "RESULT_NAME"]

RESULT_NAME = "result.json"


@dataclass
class TrainJob:
    """Everything one worker needs, as plain data (picklable, JSON-able).

    ``model``/``family``: the architecture; ``training``/``evaluation``: the configs' dicts; ``split``: the
    ``train``/``val``/``test`` trial lists of ``data_dir``; ``test_data_dir``: a separate test dataset (all
    its trials are scored as the test set; then ``split['test']`` is unused); ``row``: identity columns of the
    result row; ``entry``: what defines the job (compared on resume).
    """

    data_dir: str
    run_dir: str
    family: str
    model: dict[str, Any]
    training: dict[str, Any]
    evaluation: dict[str, Any]
    split: dict[str, list[int]]
    row: dict[str, Any]
    entry: dict[str, Any]
    checkpoint: str = "best"
    test_data_dir: str | None = None
    threads: int | None = None
    save_test_predictions: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The row name."""
        return str(self.row["name"])


def finished_row(run_dir: Path, entry: dict[str, Any]) -> SweepRow | None:
    """The finished row stored in ``run_dir/result.json``, or None (missing, unreadable or not done). A job
    stored there under another definition raises :class:`ConfigError`."""
    path = Path(run_dir) / RESULT_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        row = SweepRow.from_dict(doc["row"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    stored = doc.get("entry")
    if stored is not None and stored != entry:
        raise ConfigError(f"{run_dir} was trained as {stored}, but it is now defined as {entry}; remove {run_dir} "
                          "or give the configuration another name or label")
    return row if row.done else None


def run_job(job: TrainJob | dict[str, Any]) -> dict[str, Any]:
    """Train (or resume) and evaluate one job; write ``result.json``; return the row's JSON form."""
    job = job if isinstance(job, TrainJob) else TrainJob(**job)
    if job.threads:
        set_threads(job.threads)
    out = Path(job.run_dir)
    ds = open_dataset(job.data_dir)
    tcfg = TrainingConfig.from_dict(job.training)
    resumable = (out / "run.json").is_file() and (out / "checkpoints" / "last.pt").is_file()
    if out.exists() and not resumable:
        shutil.rmtree(out)
    if resumable:
        res = resume(out, ds, max_steps=tcfg.max_steps, max_minutes=tcfg.max_minutes)
    else:
        mcfg = model_config_from_dict(job.family, job.model, f"job {job.name}")
        res = train(ds, mcfg, tcfg, out, split=job.split)
    run = json.loads((out / "run.json").read_text())
    train_info = {"steps": int(res.steps), "elapsed_s": float(res.elapsed_s), "stop_reason": res.stop_reason,
                  "best_step": res.best_step}
    ecfg = EvaluationConfig.from_dict(job.evaluation)
    t0 = time.monotonic()
    val = evaluate(out, ds, split="val", out=out / "eval_val.json", checkpoint=job.checkpoint, config=ecfg,
                   device="auto") if job.split.get("val") else {}
    test_ds = open_dataset(job.test_data_dir) if job.test_data_dir else ds
    test = evaluate(out, test_ds, split="all" if job.test_data_dir else "test", out=out / "eval_test.json",
                    checkpoint=job.checkpoint, config=ecfg, device="auto",
                    predictions_out=out / "test_predictions.npz" if job.save_test_predictions else None)
    arch = {}
    if job.family == "tcn" and job.row.get("depth") is None:  # a TCN given as a model spec
        kernels = list(run["model"]["kernels"])
        arch = {"depth": len(kernels), "width": run["model"]["width"], "kernels": kernels,
                "receptive_field": sum(k - 1 for k in kernels) + 1}
    row = SweepRow(**{**job.row, **arch, "architecture": run.get("name"), "n_parameters": int(run["n_parameters"]),
                      "family": run.get("family", job.family), "flops_per_ms": run.get("flops_per_ms"),
                      "train_steps": train_info["steps"], "train_minutes": round(train_info["elapsed_s"] / 60.0, 4),
                      "eval_minutes": round((time.monotonic() - t0) / 60.0, 4),
                      "stop_reason": train_info["stop_reason"], "best_step": res.best_step, "run_dir": str(out)})
    row.with_metrics(test, val)
    write_json(out / RESULT_NAME, {"row": row.to_dict(), "entry": job.entry, "train": train_info,
                                   "evaluation": ecfg.to_dict(), "job": {k: v for k, v in asdict(job).items()
                                                                         if k not in ("split", "row", "entry")}})
    return row.to_dict()


def safe_run_job(job: TrainJob | dict[str, Any]) -> dict[str, Any]:
    """:func:`run_job`, turning a neuroemu error or a runtime failure (e.g. out of memory) into a row with
    ``status = failed: ...`` so that the other jobs go on."""
    try:
        return run_job(job)
    except (NeuroemuError, RuntimeError, MemoryError) as e:
        job = job if isinstance(job, TrainJob) else TrainJob(**job)
        return SweepRow.failed(job.name, f"{type(e).__name__}: {e}",
                               **{k: v for k, v in job.row.items() if k != "name"},
                               run_dir=job.run_dir).to_dict()
