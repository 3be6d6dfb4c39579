"""``neuroemu quickstart``: simulate, train, evaluate and report in about a quarter of an hour on 2 cores.

With the built-in cell (default: the L5PC with AMPA+NMDA synapses) it

1. simulates a small dataset into ``OUT/data`` -- a first batch of one trial per worker measures the
   simulation speed, then the dataset is extended with as many trials as fit in ``sim_minutes``;
2. trains a Branch-ELM neuron with 15 memory units (:data:`QUICKSTART_MODEL`; a 3 x 32 TCN for the I&F) into
   ``OUT/run`` on a spike-stratified split of the trials (:mod:`neuroemu.dataset.split`; most short trials are
   silent), stopping at its best validation AUC -- two short first
   stretches measure the steady training speed, then the step budget (and the cosine learning-rate decay
   over it) is set to fill ``train_minutes``, which also caps the wall time;
3. evaluates it on the test trials by the published protocol (``OUT/run/eval_test.json``);
4. writes the HTML report of the run (``OUT/run/report/index.html``).

It prints each step and, at the end, where the report is. Rerunning continues where it stopped (finished
stages are kept). ``OUT/quickstart.json`` records what was done and how long each stage took.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from neuroemu.cells.config import CellConfig
from neuroemu.cells.config import VARIANTS
from neuroemu.dataset.format import DatasetConfig
from neuroemu.dataset.reader import NeuroDataset
from neuroemu.dataset.runner import build_dataset
from neuroemu.dataset.split import StratifiedDataset
from neuroemu.errors import ConfigError
from neuroemu.evaluation.protocol import EvaluationConfig, evaluate
from neuroemu.inputs.generator import preset
from neuroemu.io import atomic_write_text
from neuroemu.models.registry import parse_model_spec
from neuroemu.report import make_report
from neuroemu.training.config import TrainingConfig
from neuroemu.training.loop import resume, train

__all__ = ["run_quickstart", "QUICKSTART_MODEL"]

#: The quickstart's emulator (a model spec, :func:`neuroemu.models.registry.parse_model_spec`), measured on the
#: quickstart's own data and budget (190 nmda trials of 2 s, 47 test traces): Branch-ELM 15 test AUC 0.938 and
#: soma EV 85% in 50 s of training, the 3 x 32 TCN 0.893 and 59%, paired +0.045 [+0.024, +0.069]; both stop
#: early within a minute, hence the budget's weight on simulation (docs/training-notes.md, "The quickstart").
QUICKSTART_MODEL = "branch-elm:15"
QUICKSTART_IAF_MODEL = "tcn:3x32x80"
#: Validation period and patience: training stops when QUICKSTART_PATIENCE validations in a row (every
#: QUICKSTART_VAL_EVERY steps) did not beat the best, and the best checkpoint is what is evaluated.
QUICKSTART_VAL_EVERY, QUICKSTART_PATIENCE = 100, 4
#: Train / validation / test fractions: a validation and two test trials even from 6 trials.
QUICKSTART_SPLIT = (0.6, 0.15, 0.25)


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "dataset.json").read_text())
    except (OSError, ValueError):
        return None


def _simulate(cell: str, data_dir: Path, sim_minutes: float, duration_ms: int, min_trials: int, max_trials: int,
              workers: int, seed: int, inputs_preset: str | None, say: Callable[[str], None]) -> dict[str, Any]:

    cell_cfg = CellConfig(kind="iaf") if cell == "iaf" else CellConfig(kind="l5pc", variant=cell)
    gen = preset(inputs_preset) if inputs_preset else None  # None: the cell's default inputs
    base = DatasetConfig(cell=cell_cfg, generator=gen, n_trials=1, duration_ms=int(duration_ms), seed=int(seed))
    m = _manifest(data_dir)
    if m is not None and m.get("complete") and int(m["config"].get("n_trials", 0)) >= min_trials:
        n = int(m["config"]["n_trials"])
        say(f"      dataset already there: {n} trials x {duration_ms} ms in {data_dir}")
        return {"n_trials": n, "wall_s": 0.0, "reused": True}
    budget_s = sim_minutes * 60.0
    t0 = time.monotonic()
    first = max(min(workers, max_trials), int((m or {}).get("config", {}).get("n_trials", 0)))
    say(f"      first {first} trial(s) of {duration_ms} ms to measure the simulation speed ...")
    build_dataset(base.replace(n_trials=first), data_dir, workers=workers, progress=True)
    spent = time.monotonic() - t0
    rounds_done = math.ceil(first / workers)
    walls = [float(e.get("wall_time_s") or 0.0) for e in (_manifest(data_dir) or {}).get("shards", [])]
    per_round = max(walls) if walls and max(walls) > 0 else spent / rounds_done
    setup = max(0.0, spent - rounds_done * per_round)  # process start and cell set-up, paid again when extending
    left = budget_s - spent
    n = first
    if left > 0:
        extra_rounds = int(max(0.0, 0.9 * left - setup) / per_round)
        n = min(max_trials, first + extra_rounds * workers)
    n = max(n, min_trials)
    say(f"      measured {per_round:.1f} s per round of {workers} trial(s) and {setup:.0f} s of set-up; "
        f"extending to {n} trials to fill ~{sim_minutes:g} min")
    if n > first:
        build_dataset(base.replace(n_trials=n), data_dir, workers=workers, progress=True)
    return {"n_trials": n, "wall_s": round(time.monotonic() - t0, 1), "reused": False,
            "s_per_round_first_batch": round(per_round, 2)}


def _train(data_dir: Path, run_dir: Path, train_minutes: float, duration_ms: int, seed: int, threads: int | None,
           model: str, say: Callable[[str], None]) -> dict[str, Any]:

    t0 = time.monotonic()
    budget_s = train_minutes * 60.0
    probe = 20
    if (run_dir / "run.json").is_file() and (run_dir / "checkpoints" / "last.pt").is_file():
        run = json.loads((run_dir / "run.json").read_text())
        if run.get("status") in ("completed", "early stopping"):
            say(f"      training already finished in {run_dir}")
            return {"steps": None, "wall_s": 0.0, "reused": True}
        res = resume(run_dir, max_minutes=train_minutes)
    else:
        tcfg = TrainingConfig.from_preset("modern", max_steps=probe, max_minutes=train_minutes, seed=seed,
                                          split_fractions=list(QUICKSTART_SPLIT), val_every_steps=QUICKSTART_VAL_EVERY,
                                          patience=QUICKSTART_PATIENCE, log_every_steps=20, warmup_steps=probe,
                                          min_end_ms=min(500, duration_ms // 2), tensorboard=False,
                                          checkpoint_every_minutes=1.0, threads=threads)
        mcfg = parse_model_spec(model, "quickstart model")
        say(f"      2 x {probe} steps to measure the training speed ...")

        # spiking trials in every part (most short trials are silent); includes loading and caching the trials
        first = train(StratifiedDataset(data_dir), mcfg, tcfg, run_dir)
        res = resume(run_dir, max_steps=2 * probe, max_minutes=train_minutes)
        rate = max(res.steps - first.steps, 1) / max(res.elapsed_s - first.elapsed_s, 1e-6)  # steady state
        left = budget_s - (time.monotonic() - t0)
        total = max(res.steps, int(0.9 * rate * left) + res.steps)
        say(f"      {rate:.1f} steps/s; training {total} steps in all (budget {train_minutes:g} min) ...")
        res = resume(run_dir, max_steps=total, max_minutes=train_minutes, progress=True)
        left = budget_s - (time.monotonic() - t0)
        if res.stop_reason == "max_steps" and left > max(30.0, 0.15 * budget_s):
            # the machine got faster than measured: re-measure and use the rest of the budget (the cosine
            # decay is stretched to the new end, a warm restart of the learning rate)
            rate = max(res.steps - first.steps, 1) / max(res.elapsed_s - first.elapsed_s, 1e-6)
            total = res.steps + int(0.9 * rate * left)
            say(f"      {left:.0f} s of the budget left at {rate:.1f} steps/s: continuing to {total} steps ...")
            res = resume(run_dir, max_steps=total, max_minutes=train_minutes, progress=True)
    say(f"      stopped after {res.steps} steps ({res.stop_reason}); best validation AUC "
        f"{res.best_val_auc if res.best_val_auc is None else round(res.best_val_auc, 4)}")
    return {"steps": res.steps, "wall_s": round(time.monotonic() - t0, 1), "stop_reason": res.stop_reason,
            "best_val_auc": res.best_val_auc, "reused": False}


def run_quickstart(out_dir: str | Path = "quickstart_out", *, cell: str = "nmda", sim_minutes: float = 9.0,
                   train_minutes: float = 3.0, duration_ms: int = 2000, min_trials: int = 6, max_trials: int = 200,
                   inputs_preset: str | None = None, workers: int | None = None, threads: int | None = None,
                   seed: int = 0, model: str | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Simulate a small dataset, train a small emulator, evaluate it and write its report (module docstring).

    cell: ``nmda``, ``ampa``, ``ampa_sk`` (L5PC variants) or ``iaf``. inputs_preset: input generator preset
    (default: the cell's, :func:`neuroemu.inputs.generator.default_preset_name`). sim_minutes /
    train_minutes: wall-clock budgets of the two long stages. workers: simulation processes (default: all
    cores). threads: torch threads for training (default: all cores). model: the emulator's model spec
    (default :data:`QUICKSTART_MODEL`, or :data:`QUICKSTART_IAF_MODEL` for the I&F). Returns a dict with
    the paths (``report``, ``run``, ``data``), the test metrics and the time spent per stage.
    """

    if cell != "iaf" and cell not in VARIANTS:
        raise ConfigError(f"quickstart: cell {cell!r} is unknown; choose 'iaf' or one of {sorted(VARIANTS)}")
    if sim_minutes <= 0 or train_minutes <= 0:
        raise ConfigError(f"quickstart: budgets must be > 0 minutes (sim {sim_minutes}, train {train_minutes})")
    if min_trials < 3 or max_trials < min_trials:
        raise ConfigError(f"quickstart: need 3 <= min_trials <= max_trials, got {min_trials}, {max_trials}")
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir, run_dir = out / "data", out / "run"
    workers = int(workers or os.cpu_count() or 1)
    t_all = time.monotonic()
    what = "integrate-and-fire neuron" if cell == "iaf" else f"L5 pyramidal cell ({cell} synapses)"
    timings: dict[str, float] = {}
    say(f"neuroemu quickstart -> {out.resolve()}")
    say(f"[1/4] simulating the {what}: trials of {duration_ms} ms for ~{sim_minutes:g} min on {workers} "
        f"process(es) into {data_dir}")
    sim = _simulate(cell, data_dir, sim_minutes, duration_ms, min_trials, max_trials, workers, seed, inputs_preset,
                    say)
    timings["simulate"] = round(time.monotonic() - t_all, 1)

    ds = NeuroDataset(data_dir)
    n_spikes = sum(len(ds.spike_times(i)) for i in ds.trial_indices)
    rate = n_spikes / (ds.n_trials * ds.duration_ms / 1000.0)
    say(f"      dataset: {ds.n_trials} trials, {ds.n_channels} input channels, {n_spikes} output spikes "
        f"({rate:.2f} Hz)")
    if n_spikes == 0:
        say("      warning: the cell never fired, so spike prediction cannot be scored (AUC will be n/a)")
    t = time.monotonic()
    model = model or (QUICKSTART_IAF_MODEL if cell == "iaf" else QUICKSTART_MODEL)
    mcfg = parse_model_spec(model, "quickstart model")
    say(f"[2/4] training {mcfg.name} ({model}) for at most ~{train_minutes:g} min into {run_dir}, stopping at its "
        f"best validation AUC")
    tr = _train(data_dir, run_dir, train_minutes, int(ds.duration_ms), seed, threads, model, say)
    timings["train"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    say("[3/4] evaluating on the test trials (published protocol, docs/reference.md section 9)")

    metrics = evaluate(run_dir, ds, split="test", out=run_dir / "eval_test.json",
                       config=EvaluationConfig.for_duration(int(ds.duration_ms)))
    timings["evaluate"] = round(time.monotonic() - t, 1)
    ev = metrics.get("soma_explained_variance")
    say(f"      spike AUC {_fmt(metrics.get('spike_auc'))} +- {_fmt(metrics.get('spike_auc_sd'))}, "
        f"TP at 0.25% FP {_fmt(metrics.get('tp_at_fp_0.0025'), 3)}, soma explained variance "
        f"{_fmt(ev, 1)}% ({metrics.get('n_traces')} test traces, {metrics.get('n_spikes')} spikes)")
    t = time.monotonic()
    say("[4/4] writing the report")

    index = make_report(run_dir)
    timings["report"] = round(time.monotonic() - t, 1)
    timings["total"] = round(time.monotonic() - t_all, 1)
    summary = {"cell": cell, "model": model, "data": str(data_dir), "run": str(run_dir), "report": str(index),
               "dataset": {"n_trials": ds.n_trials, "duration_ms": ds.duration_ms, "output_spikes": n_spikes,
                           "output_rate_hz": round(rate, 4)},
               "simulation": sim, "training": tr,
               "metrics": {k: metrics.get(k) for k in ("spike_auc", "spike_auc_sd", "tp_at_fp_0.001",
                                                       "tp_at_fp_0.0025", "soma_rmse_mv", "soma_mae_mv",
                                                       "soma_explained_variance", "n_traces", "n_spikes")},
               "timings_s": timings}

    atomic_write_text(out / "quickstart.json", json.dumps(summary, indent=1))
    say(f"done in {timings['total'] / 60:.1f} min (simulate {timings['simulate']:.0f} s, train "
        f"{timings['train']:.0f} s, evaluate {timings['evaluate']:.0f} s, report {timings['report']:.0f} s)")
    say(f"report: {index.resolve()}")
    return summary


def _fmt(v: Any, nd: int = 4) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"
