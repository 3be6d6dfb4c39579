"""Running a sweep: every configuration trained and evaluated on one dataset, resumably, in parallel.

Every configuration is trained in its own run directory ``SWEEP/runs/<name>/`` with the same seed, split and
training budget, then evaluated by the published protocol (reference 9) on the validation trials
(``eval_val.json``, used to select) and on the test trials (``eval_test.json``, reported). A configuration is
finished when its ``result.json`` exists; a rerun keeps finished configurations, resumes interrupted training
from its last checkpoint and retries failed ones. The sweep writes ``SWEEP/sweep.json`` (config, dataset,
rows) and ``SWEEP/sweep.csv`` (one row per configuration), and the accuracy-vs-complexity figures of
reference 9.7 as PNGs under ``SWEEP/figures/``.

Parallelism: ``workers`` local processes (each training process uses ``cores // workers`` torch threads) or a
Dask cluster (``client`` / ``scheduler``; workers must see the dataset and the sweep directory on a shared file
system, and run one task per worker thread).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from neuroemu.dataset.reader import open_dataset
from neuroemu.dataset.split import nested_subsets, split_trials
from neuroemu.errors import ConfigError
from neuroemu.parallel import cpu_count, dask_client, run_tasks
from neuroemu.report.sweep_report import write_sweep_figures
from neuroemu.results.rows import SweepRow
from neuroemu.results.selection import select_best
from neuroemu.results.status import State, Status
from neuroemu.study.findings import paired_depth_gain
from neuroemu.study.sweep.config import SweepConfig, evaluation_config_for, training_config_for
from neuroemu.study.sweep.grid import SweepEntry, sweep_entries
from neuroemu.study.sweep.store import check_compatible, dataset_summary, read_sweep, write_sweep_json
from neuroemu.study.sweep.worker import TrainJob, finished_row, safe_run_job

__all__ = ["run_sweep", "sweep_jobs", "default_workers", "fmt"]


def fmt(v: Any, nd: int = 4) -> str:
    """A number with ``nd`` decimals, or ``n/a``."""
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def default_workers(n_jobs: int, client: Any = None) -> int:
    """One training process per core -- one per GPU where CUDA is available -- and at most one per job."""
    if client is not None:
        return 1
    import torch

    per_device = torch.cuda.device_count() if torch.cuda.is_available() else cpu_count()
    return max(1, min(n_jobs, per_device))


def _identity(entry: SweepEntry, cell: str) -> dict[str, Any]:
    size = entry.spec.partition("@")[0].partition(":")[2] if entry.spec else ""
    return {"name": entry.name, "cell": cell, "variant": entry.label or ("model" if entry.spec else "grid"),
            "depth": entry.depth, "width": entry.width, "receptive_field": entry.receptive_field,
            "kernels": list(entry.kernels) if entry.kernels else None, "family": entry.family,
            "model_spec": entry.spec, "size": int(size) if size.isdigit() else None, "replicate": entry.replicate}


def sweep_split(ds, config: SweepConfig) -> dict[str, list[int]]:
    """The split every configuration of the sweep trains on: the dataset's trials split by ``config.split``,
    the training part cut to the nested subset of ``train_fraction`` (:class:`ConfigError` when none is left)."""
    split = split_trials(ds, config.split, config.split_fractions, config.seed)
    if not split["train"]:
        raise ConfigError(f"{getattr(ds, 'path', 'the dataset')}: the split {config.split_fractions} of "
                          f"{ds.n_trials} trials leaves no training trial")
    if config.train_fraction < 1.0:
        try:
            split["train"] = nested_subsets(split["train"], [config.train_fraction],
                                            config.seed)[config.train_fraction]
        except ConfigError as e:
            raise ConfigError(f"{getattr(ds, 'path', 'the dataset')}: {e}") from None
    return split


def sweep_jobs(data_dir: Path, config: SweepConfig, out_dir: Path, entries: list[SweepEntry], cell: str,
               threads: int | None, test_data_dir: Path | None = None) -> list[TrainJob]:
    """The training jobs of ``entries`` (one split of ``data_dir`` shared by all)."""
    ds = open_dataset(data_dir)
    split = sweep_split(ds, config)
    data_facts = {"fraction": config.train_fraction, "train_trials": len(split["train"]),
                  "train_hours": round(len(split["train"]) * int(ds.duration_ms) / 3.6e6, 6)}
    tcfg = training_config_for(config, int(ds.duration_ms), threads).to_dict()
    ecfg = evaluation_config_for(config, int(ds.duration_ms)).to_dict()
    jobs = []
    for e in entries:
        mcfg = e.model_config(int(ds.n_channels), config.model)
        seed = int(config.seed) + int(e.replicate)
        jobs.append(TrainJob(data_dir=str(data_dir), run_dir=str(out_dir / "runs" / e.name), family=mcfg.family,
                             model=mcfg.to_dict(), training={**tcfg, "seed": seed}, evaluation=ecfg, split=split,
                             row={**_identity(e, cell), **data_facts, "train_seed": seed}, entry=e.to_dict(),
                             checkpoint=config.checkpoint,
                             test_data_dir=str(test_data_dir) if test_data_dir else None, threads=threads))
    return jobs


def run_sweep(data_dir: str | Path, config: SweepConfig, out_dir: str | Path, *, workers: int | None = None,
              threads: int | None = None, client: Any = None, scheduler: str | None = None, figures: bool = True,
              log: Callable[[str], None] | None = None, train: bool = True,
              test_data: str | Path | None = None) -> dict[str, Any]:
    """Train and evaluate every configuration of ``config`` on ``data_dir``; write ``out_dir`` (module doc).

    workers: parallel local training processes (default :func:`default_workers`; ``workers=1`` trains in this
    process). threads: torch threads per training process (default ``cores // workers``). client / scheduler:
    run on a Dask cluster instead (one thread per task; shared file system needed). figures: write the
    accuracy-vs-complexity PNGs. test_data: a separate test dataset (all its trials are the test set).
    ``sweep.json`` also holds ``paired_depth_gain``: the validation-selected best network against the best
    one-layer network on the same test traces, with a 95% bootstrap CI over traces (None when the test set is
    too small for it, :func:`neuroemu.evaluation.paired.traces_needed`).
    ``train=False`` trains nothing: it tabulates the finished configurations (status ``incomplete`` while any
    is missing), e.g. for a report while another process is still training.
    Returns the ``sweep.json`` dict plus ``trained_now`` (names of the configurations trained by this call).
    """
    config.validate()
    data_dir = Path(data_dir).resolve()
    test_dir = Path(test_data).resolve() if test_data else None
    out_dir = Path(out_dir)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dataset = dataset_summary(data_dir)
    sweep_split(open_dataset(data_dir), config)  # a fraction that leaves no training trial: refused before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    check_compatible(out_dir, config, dataset)
    entries = sweep_entries(config)
    rows: dict[str, SweepRow] = {}
    todo = []
    for e in entries:
        done = finished_row(out_dir / "runs" / e.name, e.to_dict())
        if done is not None:
            rows[e.name] = done
        else:
            todo.append(e)
    not_trained = [] if train else [e.name for e in todo]
    if not train:
        todo = []
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    order = [e.name for e in entries]

    def ordered() -> list[SweepRow]:
        return [rows[n] for n in order if n in rows]

    t_start = time.monotonic()
    trained_now: list[str] = []
    with dask_client(client, scheduler) as cl:
        workers = workers or default_workers(len(todo), cl)
        if threads is None:
            threads = 1 if cl is not None else max(1, cpu_count() // max(1, min(workers, max(1, len(todo)))))
        say(f"sweep {out_dir}: {len(entries)} configurations on {data_dir.name} ({dataset['cell_label']}, "
            f"{dataset['n_trials']} trials x {dataset['duration_ms']} ms); "
            f"{len(entries) - len(todo) - len(not_trained)} finished, "
            f"{len(todo)} to train" + (f" ({workers} in parallel, {threads} thread(s) each)" if todo and cl is None
                                       else " on the Dask cluster" if todo else "")
            + (f" ({len(not_trained)} unfinished, not trained: train=False)" if not_trained else ""))
        status = Status(State.RUNNING) if todo else Status.of_parts(n_not_trained=len(not_trained))
        write_sweep_json(out_dir, config, dataset, ordered(), status)
        jobs = sweep_jobs(data_dir, config, out_dir, todo, dataset["cell_label"], threads, test_dir) if todo else []
        for _, res, _ in run_tasks(safe_run_job, [(asdict(j),) for j in jobs], workers=workers, client=cl):
            row = SweepRow.from_dict(res)
            rows[row.name] = row
            trained_now.append(row.name)
            if row.done:
                say(f"  [{len(trained_now)}/{len(todo)}] {row.name}: test AUC {fmt(row.spike_auc)} "
                    f"+- {fmt(row.spike_auc_sd)}, soma EV {fmt(row.soma_explained_variance, 1)}%, "
                    f"val AUC {fmt(row.val_spike_auc)}, {row.train_steps} steps in {row.train_minutes:.1f} min")
            else:
                say(f"  [{len(trained_now)}/{len(todo)}] {row.name}: {row.status}")
            write_sweep_json(out_dir, config, dataset, ordered(), Status(State.RUNNING))
    final = ordered()
    failed = [r.name for r in final if not r.done]
    status = Status.of_parts(n_failed=len(failed), n_not_trained=len(not_trained))
    extra = {"wall_minutes_last_call": round((time.monotonic() - t_start) / 60.0, 3),
             "selected_by_depth": [r.name for r in select_best(final, "depth")],
             "paired_depth_gain": paired_depth_gain(final, seed=config.seed)}
    write_sweep_json(out_dir, config, dataset, final, status, extra)
    if figures and any(r.done for r in final):
        write_sweep_figures([r.to_dict() for r in final], out_dir / "figures")
    if failed:
        say(f"sweep {out_dir}: {len(failed)} configuration(s) failed ({', '.join(failed[:5])}); rerun to retry")
    doc = read_sweep(out_dir)
    doc["trained_now"] = trained_now
    return doc
