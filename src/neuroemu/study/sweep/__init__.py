"""Complexity sweeps: train and evaluate every network of a grid (and of other model families) on one dataset.

- :mod:`~neuroemu.study.sweep.config`: :class:`SweepConfig` (and the settings a study shares with it);
- :mod:`~neuroemu.study.sweep.grid`: the configurations (:class:`SweepEntry`, :func:`kernels_for`);
- :mod:`~neuroemu.study.sweep.worker`: one training job, run in a worker process;
- :mod:`~neuroemu.study.sweep.store`: ``sweep.json`` / ``sweep.csv`` and resume checks;
- :mod:`~neuroemu.study.sweep.run`: :func:`run_sweep`, the fan-out.
"""
from neuroemu.results.rows import TABLE_COLUMNS, write_table
from neuroemu.results.selection import select_best
from neuroemu.study.sweep.config import GRID_FIELDS, SweepConfig, SweepSettings
from neuroemu.study.sweep.grid import SweepEntry, kernels_for, sweep_entries
from neuroemu.study.sweep.run import run_sweep
from neuroemu.study.sweep.store import SWEEP_FORMAT_VERSION, read_sweep
from neuroemu.study.sweep.worker import RESULT_NAME, TrainJob, run_job

__all__ = ["SweepConfig", "SweepSettings", "SweepEntry", "kernels_for", "sweep_entries", "run_sweep", "read_sweep",
           "select_best", "write_table", "run_job", "TrainJob", "TABLE_COLUMNS", "SWEEP_FORMAT_VERSION",
           "GRID_FIELDS", "RESULT_NAME"]
