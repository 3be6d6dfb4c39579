"""Building a dataset: run N trials locally (K processes) or on a Dask cluster, resumably.

Every trial is a pure function of (dataset config, trial index): its inputs come from
``SeedSequence([seed, index])`` (see :func:`neuroemu.dataset.format.trial_seeds`), so the shards are
byte-identical whatever the number or kind of workers and whatever order trials finish in.

Each worker builds its simulator once (``simulator_factory(cell_dict)``, cached per process) and runs many
trials. Local workers write their shards themselves (atomically) and send back a small manifest entry; Dask
workers send the trial back and the client writes it, so no shared file system is needed. Only this process
writes ``dataset.json``. Memory stays bounded: a few trials are in flight at a time, never the dataset.

Dask on a SLURM cluster (dask-jobqueue)::

    from dask_jobqueue import SLURMCluster
    from distributed import Client
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="04:00:00")
    cluster.scale(jobs=64)
    build_dataset(config, "data/nmda", client=Client(cluster))

or start the cluster separately and pass ``--scheduler tcp://host:8786`` to ``neuroemu simulate``.
NEURON is not thread-safe: give Dask workers one thread each (``--nthreads 1``); this module also
serialises the runs of one simulator within a process.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuroemu.dataset.format import DatasetConfig, trial_seeds
from neuroemu.dataset.trial import Trial
from neuroemu.dataset.shard import write_shard
from neuroemu.dataset.writer import DatasetWriter
from neuroemu.errors import ConfigError, DatasetError, NeuroemuError
from neuroemu.inputs.generator import generate_channels, generate_inputs
from neuroemu.parallel import cpu_count, dask_client, dask_worker_count, process_pool, run_tasks

SimulatorFactory = Callable[[dict], Any]


def default_simulator_factory(cell: dict) -> Any:
    """Build the simulator of a cell dict via :func:`neuroemu.simulation.make_simulator` (imported lazily).

    An optional ``"solver"`` key (see :meth:`DatasetConfig.simulator_spec`) holds the NEURON solver settings.
    """
    from neuroemu.simulation import make_simulator

    cell = dict(cell)
    solver = cell.pop("solver", None)
    return make_simulator(cell, solver)


# ---- describing a simulator's inputs ---------------------------------------------------------------------

def segment_columns(table: Any) -> tuple[dict[str, Any] | None, np.ndarray | None, np.ndarray | None]:
    """(JSON-able table, segment lengths um, segment types) of a segment table, or (None, None, None).

    Accepts a :class:`neuroemu.cells.segments.SegmentTable` or its ``to_dict()`` form.
    """
    if table is None:
        return None, None, None
    if hasattr(table, "to_dict") and hasattr(table, "column"):
        return table.to_dict(), table.column("seg_length_um").astype(np.float64), table.column("type").astype(str)
    if isinstance(table, dict) and "columns" in table and "data" in table:
        cols = list(table["columns"])
        try:
            li, ti = cols.index("seg_length_um"), cols.index("type")
        except ValueError:
            raise ConfigError(f"segment table lacks 'seg_length_um' or 'type' (columns: {cols})") from None
        rows = table["data"]
        return table, np.array([r[li] for r in rows], np.float64), np.array([r[ti] for r in rows]).astype(str)
    raise ConfigError(f"unsupported segment table of type {type(table).__name__}")


@dataclass
class _SimEntry:
    sim: Any
    lock: threading.Lock
    n_exc: int
    n_inh: int
    segments: dict[str, Any] | None
    lengths: np.ndarray | None
    tree: np.ndarray | None

    def describe(self) -> dict[str, Any]:
        return {"n_exc": self.n_exc, "n_inh": self.n_inh, "segments": self.segments}


_SIMS: dict[tuple[str, str], _SimEntry] = {}
_SIMS_LOCK = threading.Lock()
_CONFIGS: dict[str, DatasetConfig] = {}


def _factory_key(factory: SimulatorFactory) -> str:
    return f"{getattr(factory, '__module__', '')}.{getattr(factory, '__qualname__', repr(factory))}"


def _simulator(factory: SimulatorFactory, cell: dict) -> _SimEntry:
    """This process's simulator for ``cell`` (built on first use, then reused)."""
    key = (_factory_key(factory), json.dumps(cell, sort_keys=True))
    with _SIMS_LOCK:
        entry = _SIMS.get(key)
        if entry is None:
            sim = factory(dict(cell))
            segs, lengths, tree = segment_columns(sim.segment_table())
            entry = _SimEntry(sim, threading.Lock(), int(sim.n_exc), int(sim.n_inh), segs, lengths, tree)
            _SIMS[key] = entry
    return entry


def _config(config_dict: dict) -> DatasetConfig:
    key = json.dumps(config_dict, sort_keys=True)
    cfg = _CONFIGS.get(key)
    if cfg is None:
        cfg = _CONFIGS[key] = DatasetConfig.from_dict(config_dict)
    return cfg


def _describe_task(factory: SimulatorFactory, cell: dict) -> dict[str, Any]:
    return _simulator(factory, cell).describe()


# ---- one trial ---------------------------------------------------------------------------------------------

def make_trial_inputs(config: DatasetConfig, index: int, n_exc: int, n_inh: int,
                      lengths: np.ndarray | None = None, tree: np.ndarray | None = None):
    """Inputs, generator parameters and simulator seed of trial ``index`` (deterministic).

    With a segment table (``lengths`` and ``tree`` per segment) the L5PC generator is used (one exc and one inh
    channel per segment); without one, every channel belongs to the single tree ``"all"`` with weight 1 (IAF).
    """
    gen = config.generator
    if gen is None:
        raise ConfigError("DatasetConfig.generator is None: this dataset was imported and cannot be simulated")
    rng, sim_seed = trial_seeds(config.seed, index)
    if lengths is None:
        if gen.weighting != "count":
            raise ConfigError("the cell has no segment table, so inputs need weighting='count' "
                              "(for the IAF use the 'iaf' inputs preset)")
        inputs, params = generate_channels(gen, ["all"] * n_exc, ["all"] * n_inh, np.ones(n_exc), np.ones(n_inh),
                                           config.duration_ms, rng)
    else:
        if not (len(lengths) == n_exc == n_inh):
            raise ConfigError(f"segment table has {len(lengths)} rows but the cell has {n_exc} exc / {n_inh} inh "
                              "channels")
        inputs, params = generate_inputs(gen, lengths, tree, config.duration_ms, rng)
    return inputs, params, sim_seed


def run_trial(config: DatasetConfig, index: int, entry: _SimEntry) -> tuple[Trial, float]:
    """Generate and simulate trial ``index`` with a process's simulator; return (trial, wall seconds)."""
    t0 = time.perf_counter()
    inputs, params, sim_seed = make_trial_inputs(config, index, entry.n_exc, entry.n_inh, entry.lengths, entry.tree)
    with entry.lock:
        result = entry.sim.run(inputs, config.duration_ms, seed=sim_seed,
                               release_probability=config.release_probability,
                               record_dendrites=config.record_dendrites)
    if result.duration_ms != config.duration_ms:
        raise DatasetError(f"trial {index}: the simulator returned {result.duration_ms} ms, expected "
                           f"{config.duration_ms}")
    trial = Trial.from_result(index, sim_seed, inputs, result, params, record_dendrites=config.record_dendrites)
    return trial, time.perf_counter() - t0


def _trial_task(factory: SimulatorFactory, config_dict: dict, index: int, out_dir: str | None):
    """Worker entry point: run one trial; write it (``out_dir``) and return its entry, or return
    (trial, wall seconds, CPU seconds).

    The CPU time is this process's (``time.process_time``) for the whole task: input generation, simulation,
    and (with ``out_dir``) writing the shard; the progress bar divides simulated time by it.
    """
    cpu0 = time.process_time()
    cfg = _config(config_dict)
    entry = _simulator(factory, cfg.simulator_spec())
    trial, wall = run_trial(cfg, index, entry)
    if out_dir is None:
        return trial, wall, time.process_time() - cpu0
    e = write_shard(out_dir, trial, n_exc=entry.n_exc, n_inh=entry.n_inh, dataset_seed=cfg.seed,
                    config_json=cfg.trial_config_json())
    e["wall_time_s"] = round(wall, 3)
    e["cpu_time_s"] = round(time.process_time() - cpu0, 3)
    return e


def check_generator_fits(config: DatasetConfig, desc: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` early when the generator settings cannot drive the described cell."""
    gen = config.generator
    if desc.get("segments") is None:
        trees = {"all"}
        if gen.weighting != "count":
            raise ConfigError("the cell has no segment table (IAF), so the inputs need weighting='count': use "
                              "the 'iaf' inputs preset")
    else:
        _, _, tree = segment_columns(desc["segments"])
        trees = set(tree.tolist())
    for r in gen.range_mixture:
        missing = sorted(trees - set(r.exc))
        if missing:
            raise ConfigError(f"input range setting '{r.name}' has no ranges for tree(s) {missing} of this cell "
                              f"(it defines {sorted(r.exc)}); pick an inputs preset made for this cell")


#: Simulated seconds after which a local worker process running CoreNEURON is replaced by a fresh one: a
#: process running CoreNEURON's in-memory ``psolve`` grows and does not give the memory back (measured: 126 ->
#: 208 MB over 10 six-second trials in one process, classic NEURON flat; the medium study's workers reached
#: 2 GB each after ~90 trials, docs/simulation.md). A
#: fresh worker re-imports and rebuilds the cell (0.7 s measured), and the group's slowest trial leaves the
#: other workers idle for part of a trial: ~1% of the time at 50 trials per worker. The trials' bytes do not
#: depend on the process (each is seeded by its index).
RECYCLE_AFTER_SIM_S = 300.0


def recycle_after_trials(config: DatasetConfig) -> int | None:
    """Trials a local worker simulates before it is replaced (None: never, for simulators that keep nothing)."""
    solver = config.solver
    if config.cell.kind != "l5pc" or solver is None or not solver.uses_coreneuron(config.record_dendrites):
        return None
    return max(1, int(RECYCLE_AFTER_SIM_S * 1000.0 // max(config.duration_ms, 1)))


class _WorkerPool:
    """Local worker processes that can be replaced by fresh ones (:meth:`renew`) between groups of trials."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = process_pool(workers)

    def renew(self) -> None:
        self.executor.shutdown(wait=True)
        self.executor = process_pool(self.workers)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _generations(todo: list[int], factory: SimulatorFactory, config_dict: dict, target: str | None,
                 pool: _WorkerPool | None, client: Any, max_in_flight: int | None, n_local: int,
                 recycle: int | None):
    """Run the trials ``todo``, yielding ``(part, k, result, error)`` for trial ``part[k]``; with a local pool
    and ``recycle``, in groups of ``n_local * recycle`` trials, each group on fresh worker processes
    (a pool's ``max_tasks_per_child`` would do it per worker, but can deadlock on Python 3.11-3.13)."""
    size = n_local * recycle if (pool is not None and recycle) else max(len(todo), 1)
    for g0 in range(0, len(todo), size):
        part = todo[g0:g0 + size]
        if g0 > 0:
            pool.renew()
        tasks = [(factory, config_dict, i, target) for i in part]
        for k, res, err in run_tasks(_trial_task, tasks, pool=None if pool is None else pool.executor,
                                     client=client, max_in_flight=max_in_flight, catch=(NeuroemuError,)):
            yield part, k, res, err


def build_dataset(config: DatasetConfig, out_dir: str | Path, *, workers: int | None = None,
                  client: Any = None, scheduler: str | None = None,
                  simulator_factory: SimulatorFactory = default_simulator_factory,
                  progress: bool = True, max_in_flight: int | None = None,
                  recycle_after: int | None = -1) -> Path:
    """Simulate ``config.n_trials`` trials into ``out_dir`` (created, or resumed when it holds the same config).

    The stored config is ``config.resolved()`` (provenance complete), whoever calls. workers: local processes
    (default: the CPU count; 1 runs in this process). client / scheduler: a ``distributed.Client`` or a
    scheduler address to run on a Dask cluster instead. simulator_factory: a picklable callable
    ``cell_dict -> simulator``. Trials already finished are kept; unfinished ones are redone. A trial whose
    simulation fails is reported at the end (DatasetError) after all others are written; rerunning retries it.
    recycle_after: trials after which a local worker is replaced by a fresh process (default -1: from
    :func:`recycle_after_trials`; None: never); with it, even ``workers=1`` runs a long job in one worker
    process rather than in this one, so that memory stays bounded. Returns ``out_dir``.
    """
    config.validate()
    if config.generator is None:
        raise ConfigError("DatasetConfig.generator must be set to simulate a dataset")
    config = config.resolved()
    out_dir = Path(out_dir)
    workers = cpu_count() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    config_dict = config.to_dict()
    spec = config.simulator_spec()
    bar = None
    writer = None
    failures: list[tuple[int, str]] = []
    n_local = min(workers, config.n_trials)
    recycle = recycle_after_trials(config) if recycle_after == -1 else recycle_after
    with dask_client(client, scheduler) as cl:
        local_pool = n_local > 1 or (recycle is not None and config.n_trials > recycle)
        pool = _WorkerPool(n_local) if cl is None and local_pool else None
        try:
            if cl is not None:
                max_in_flight = max_in_flight or max(4, 2 * dask_worker_count(cl))
                desc = cl.submit(_describe_task, simulator_factory, spec, pure=False).result()
            elif pool is not None:
                max_in_flight = max_in_flight or 2 * n_local
                desc = pool.executor.submit(_describe_task, simulator_factory, spec).result()
            else:
                desc = _describe_task(simulator_factory, spec)
            check_generator_fits(config, desc)
            new_writer = DatasetWriter(out_dir, config, n_exc=desc["n_exc"], n_inh=desc["n_inh"],
                                       segments=desc["segments"])
            todo = new_writer.prepare()
            writer = new_writer  # only a writer that accepted the directory may rewrite its manifest
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=config.n_trials, initial=writer.n_done, unit="trial", desc="simulate",
                           file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
            if not todo:
                return out_dir
            t_start = time.perf_counter()
            done_now = 0
            cpu_now = 0.0  # CPU seconds of the finished trials' tasks (all workers together)
            # local workers write their shards themselves; Dask workers send the trial back (no shared disk)
            target = None if cl is not None else str(out_dir)
            for part, k, res, err in _generations(todo, simulator_factory, config_dict, target, pool, cl,
                                                  max_in_flight, n_local, recycle):
                i = part[k]
                if err is not None:
                    failures.append((i, str(err)))
                    if bar is not None:
                        bar.write(f"trial {i} failed: {err}")
                    continue
                if cl is not None:
                    trial, wall, cpu = res
                    writer.write(trial, wall_time_s=wall, cpu_time_s=cpu)
                else:
                    writer.record(res)
                    cpu = float(res.get("cpu_time_s") or 0.0)
                done_now += 1
                cpu_now += cpu
                if bar is not None:
                    elapsed = time.perf_counter() - t_start
                    sim_s = done_now * config.duration_ms / 1000.0
                    bar.set_postfix_str(f"{sim_s / max(cpu_now, 1e-9):.3g} sim s/CPU s, "
                                        f"{sim_s / max(elapsed, 1e-9):.3g} sim s/wall s", refresh=False)
                    bar.update(1)
        finally:
            if writer is not None:
                writer.close()
            if bar is not None:
                bar.close()
            if pool is not None:
                pool.shutdown()
    if failures:
        shown = "; ".join(f"trial {i}: {m}" for i, m in failures[:5])
        raise DatasetError(f"{out_dir}: {len(failures)} trial(s) failed ({shown}); the others are saved -- "
                           "rerun the same command to retry")
    return out_dir
