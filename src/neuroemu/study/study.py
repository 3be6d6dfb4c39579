"""The complexity study, end to end: datasets, sweeps along a data axis, paired statistics, findings, report.

``run_study(scale, out_dir)`` builds, per cell -- the L5PC with AMPA+NMDA synapses (``nmda``), the AMPA-only
L5PC (``ampa``), each with its published input ranges (reference 5.3), and the integrate-and-fire neuron
(``iaf``, reference 7) -- a training pool ``STUDY/data/<cell>/`` (training and validation trials) and, at every
scale but ``tiny``'s smoke test size, a separate fixed test set ``STUDY/data/<cell>_test/`` (its own seed, so
the pool can grow without touching it). It then trains the same sweep (:mod:`neuroemu.study.sweep`: the TCN
depth x width grid, the single linear unit, the other model families of ``models``) on nested fractions of the
training trials -- ``STUDY/sweeps/<cell>/`` for the whole pool, ``STUDY/sweeps/<cell>@<fraction>/`` for the
others -- every network validated on the same validation trials and scored on the same test traces, and writes:

- ``study.json``: config, plan, per-cell dataset facts, every row (with its ``fraction`` and ``train_hours``),
  the findings (:mod:`neuroemu.study.findings`: depth needed? paired gain from depth with its bootstrap CI,
  the data-scaling curves, the paired gain at each data size with a fit and its extrapolation to the published
  ~20 h, the FCI of the best emulator), costs (simulation and training core-hours), timings;
- ``study.csv``: all rows; ``figures/summary.png``, ``figures/complexity_panels.png``,
  ``figures/data_scaling.png``, ``figures/depth_gain_by_data.png``; ``report/index.html``.

``train_seeds`` > 1 trains every network that many times (seeds ``seed``, ``seed + 1``, ...; runs
``<name>_s<k>``): the paired gains from depth then average each seed's own pair and their CIs resample seeds as
well as test traces, so the training-seed variance is in the error bar; a later sitting may add seeds.

Everything is resumable: rerunning continues the simulations and sweeps where they stopped (a study directory
made with another config is refused, naming the field). :func:`study_status` says what is done and left, with
an estimate of the time left.

Scales (:data:`SCALES`; times for this project's 2-core development machine):

- ``tiny``: a CI smoke test (minutes); its numbers mean nothing.
- ``small``: 96 L5PC trials of 6 s per variant (0.16 h), the grid of the first published comparison on it.
- ``medium``: the study built for statistical power here: >= 1 h of neuron time in the training pool of each
  L5PC variant (720 six-second trials: 648 training, 72 validation), 80 separate six-second test traces per
  variant, the data axis 1/8, 1/4, 1/2 and all of the training trials, depths 1-7 at width 32, the linear unit
  and the Branch-ELM; several sittings of simulation and training (``neuroemu study --scale medium --status``).
- ``paper``: the published scale (~10,000 trials per variant, 240 configurations, 720,000 steps each): a
  cluster and GPUs.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuroemu import __version__
from neuroemu.cells.config import CellConfig
from neuroemu.dataset.format import DatasetConfig
from neuroemu.dataset.manifest import load_manifest
from neuroemu.dataset.reader import NeuroDataset
from neuroemu.dataset.runner import build_dataset
from neuroemu.errors import ConfigError, DatasetError
from neuroemu.evaluation.paired import traces_needed
from neuroemu.evaluation.protocol import drop_first_ms_for
from neuroemu.inputs.generator import default_preset_name, preset
from neuroemu.io import read_json, write_json
from neuroemu.report import figures as F
from neuroemu.report.study_report import report_study
from neuroemu.report.sweep_report import done_rows, plot_rows
from neuroemu.results.findings import CellFindings
from neuroemu.results.rows import SweepRow, write_table
from neuroemu.results.selection import smallest_reaching as _smallest_reaching
from neuroemu.results.status import State, Status
from neuroemu.simulation.solver import SolverConfig
from neuroemu.study.findings import (EV_MARGIN, EXPECTED_DEPTH_NEEDED, PUBLISHED_TRAIN_HOURS, data_axis,
                                     depth_gain_contrast, paired_depth_gain, study_findings)
from neuroemu.study.findings import findings as findings  # noqa: PLC0414 - re-exported
from neuroemu.study.sweep import SweepConfig, SweepSettings, run_sweep, sweep_entries
from neuroemu.study.sweep.worker import RESULT_NAME

__all__ = ["StudyConfig", "SCALES", "CELLS", "EXPECTED_DEPTH_NEEDED", "EV_MARGIN", "study_plan", "run_study",
           "findings", "smallest_reaching", "dataset_config_for", "read_study", "write_study_figures",
           "study_status", "format_status", "sweep_dir_for", "data_findings"]

#: The cells of the published comparison: name -> (cell kind, L5PC variant).
CELLS: dict[str, tuple[str, str]] = {"nmda": ("l5pc", "nmda"), "ampa": ("l5pc", "ampa"), "iaf": ("iaf", "nmda")}

#: CPU seconds per simulated second of the L5PC per process with the default solver, measured here
#: (``benchmarks/bench_simulation.py``, docs/simulation.md: 3.11-3.42 on the two cells and input types); only for
#: the estimates of :func:`study_plan` before any trial exists.
L5PC_SIM_S_PER_SIM_S = 3.2

#: Offset of the test sets' dataset seed from the study's seed (separate random streams).
TEST_SEED_OFFSET = 1_000_003


def smallest_reaching(rows: list[dict], target_auc: float) -> dict | None:
    """The finished row with the fewest parameters whose test AUC reaches ``target_auc`` (ties: the shallower,
    then the higher-AUC network; :func:`neuroemu.results.selection.smallest_reaching`), as a dict."""
    r = _smallest_reaching(rows, target_auc)
    return r.to_dict() if r is not None else None


@dataclass
class StudyConfig(SweepSettings):
    """A complexity study at one scale. Build one with :meth:`for_scale` (``tiny``, ``small``, ``medium``,
    ``paper``).

    cells: which of ``nmda``, ``ampa``, ``iaf`` to include. l5pc_trials / l5pc_duration_ms, iaf_trials /
    iaf_duration_ms: the training pools (training + validation trials). test_trials / iaf_test_trials: the fixed,
    separate test sets (0: the pool's own test split, ``split_fractions[2]``). fractions: the data axis, nested
    fractions of the training trials. inputs_presets: input-generator preset per cell (default: the cell's
    published ranges, :func:`neuroemu.inputs.generator.default_preset_name`). depths, widths, receptive_fields,
    models (other families on the complexity axis; ``iaf_models`` for the I&F, whose 80/20 inputs need
    ``routing=sequential`` for a Branch-ELM), budget_steps, budget_minutes, preset, training, split_fractions,
    split, seed: the sweep of every cell (the fields of :class:`neuroemu.study.sweep.SweepSettings`;
    ``iaf_widths`` replaces ``widths`` for the I&F). target_auc: AUC the "smallest network" must reach.
    auc_margin: the smallest AUC difference counted as a real gain from depth. min_test_spikes: fewer test spikes
    than this leave a cell uncompared. ci_level / n_boot: the bootstrap over test traces (a test set with fewer
    scored traces than :func:`neuroemu.evaluation.paired.traces_needed` is refused). solver: how the L5PC
    datasets are integrated (None: the default of the neuroemu that starts the study; it is then written into
    ``study.json``, so a study keeps its solver across neuroemu versions and sittings). dataset_seeds /
    test_seeds: per-cell dataset seeds overriding ``seed`` (pool) and ``seed + TEST_SEED_OFFSET`` (test set), so a
    study can adopt and extend datasets simulated before it (copy them to ``STUDY/data/<cell>`` and
    ``STUDY/data/<cell>_test``; their configs must otherwise match). record_dendrites: the L5PC cells whose
    training pools also store the dendritic voltages (test sets store the soma only). iaf_published_unit /
    l5pc_linear_unit: also train the published single linear unit (``1x1xT_linear``).
    """

    scale: str = "tiny"
    cells: list[str] = field(default_factory=lambda: ["nmda", "ampa", "iaf"])
    l5pc_trials: int = 10
    l5pc_duration_ms: int = 1000
    iaf_trials: int = 120
    iaf_duration_ms: int = 2000
    test_trials: int = 0
    iaf_test_trials: int = 0
    fractions: list[float] = field(default_factory=lambda: [1.0])
    inputs_presets: dict[str, str] = field(default_factory=dict)
    release_probability: float | None = None
    solver: SolverConfig | None = None
    dataset_seeds: dict[str, int] = field(default_factory=dict)
    test_seeds: dict[str, int] = field(default_factory=dict)
    record_dendrites: list[str] = field(default_factory=list)
    # the shared sweep settings, with the tiny scale's defaults
    depths: list[int] = field(default_factory=lambda: [1, 2, 3])
    widths: list[int] = field(default_factory=lambda: [4, 16])
    receptive_fields: list[int] = field(default_factory=lambda: [40])
    budget_steps: int | None = 100
    split_fractions: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    split: str = "stratified"
    iaf_widths: list[int] = field(default_factory=lambda: [1, 4, 16])
    iaf_models: list[str] = field(default_factory=list)
    target_auc: float = 0.9
    auc_margin: float = 0.005
    min_test_spikes: int = 20
    ci_level: float = 0.95
    n_boot: int = 1000
    iaf_published_unit: bool = True
    l5pc_linear_unit: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "StudyConfig":
        """Check the fields; raise :class:`ConfigError` naming the field and value at fault."""
        if self.scale not in SCALES:
            raise ConfigError(f"StudyConfig.scale {self.scale!r} is unknown; choose one of {list(SCALES)}")
        if not self.cells or any(c not in CELLS for c in self.cells):
            raise ConfigError(f"StudyConfig.cells must be a non-empty subset of {sorted(CELLS)}, got {self.cells}")
        for name in ("l5pc_trials", "iaf_trials"):
            if getattr(self, name) < 3:
                raise ConfigError(f"StudyConfig.{name} must be >= 3 (train, validation, test), "
                                  f"got {getattr(self, name)}")
        for name in ("test_trials", "iaf_test_trials"):
            if getattr(self, name) < 0:
                raise ConfigError(f"StudyConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("l5pc_duration_ms", "iaf_duration_ms"):
            if getattr(self, name) < 100:
                raise ConfigError(f"StudyConfig.{name} must be >= 100 ms, got {getattr(self, name)}")
        if not self.fractions or any(not 0.0 < float(f) <= 1.0 for f in self.fractions):
            raise ConfigError(f"StudyConfig.fractions must be fractions in (0, 1], got {self.fractions}")
        for name in ("inputs_presets", "dataset_seeds", "test_seeds"):
            for cell in getattr(self, name):
                if cell not in CELLS:
                    raise ConfigError(f"StudyConfig.{name}: unknown cell {cell!r}; cells are {sorted(CELLS)}")
        for cell in self.record_dendrites:
            if cell not in CELLS or CELLS[cell][0] != "l5pc":
                raise ConfigError(f"StudyConfig.record_dendrites: {cell!r} is not an L5PC cell of "
                                  f"{sorted(c for c in CELLS if CELLS[c][0] == 'l5pc')}")
        for name in ("dataset_seeds", "test_seeds"):
            for cell, seed in getattr(self, name).items():
                if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                    raise ConfigError(f"StudyConfig.{name}.{cell} must be an integer >= 0, got {seed!r}")
        for cell in CELLS:
            if self.n_test(cell) and self.pool_seed(cell) == self.test_seed(cell):
                raise ConfigError(f"StudyConfig: the training pool and the test set of {cell} would share seed "
                                  f"{self.pool_seed(cell)} (the same trials); give test_seeds.{cell} another one")
        if not 0.5 < self.target_auc <= 1.0:
            raise ConfigError(f"StudyConfig.target_auc must be in (0.5, 1], got {self.target_auc}")
        if self.auc_margin < 0:
            raise ConfigError(f"StudyConfig.auc_margin must be >= 0, got {self.auc_margin}")
        if not 0.0 < self.ci_level < 1.0 or self.n_boot < 10:
            raise ConfigError(f"StudyConfig: ci_level must be in (0, 1) and n_boot >= 10, got {self.ci_level}, "
                              f"{self.n_boot}")
        super().validate()
        for cell in self.cells:
            self.sweep_config(cell, 1.0)
        return self

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> "StudyConfig":
        """The study of a named scale, with fields overridden."""
        if scale not in SCALES:
            raise ConfigError(f"unknown study scale {scale!r}; choose one of {list(SCALES)}")
        config = cls.from_dict({**SCALES[scale], **overrides, "scale": scale})
        if "description" in overrides:
            return config
        preset = cls.from_dict({**SCALES[scale], "scale": scale}).to_dict()
        changed = {k: v for k, v in config.to_dict().items() if k != "cells" and preset.get(k) != v}
        if not changed:
            return config
        said = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
        return config.replace(description=f"{config.description} Changed from the '{scale}' preset: {said}.")

    def pool_seed(self, cell: str) -> int:
        """The dataset seed of ``cell``'s training pool."""
        return int(self.dataset_seeds.get(cell, self.seed))

    def test_seed(self, cell: str) -> int:
        """The dataset seed of ``cell``'s separate test set."""
        return int(self.test_seeds.get(cell, int(self.seed) + TEST_SEED_OFFSET))

    def n_test(self, cell: str) -> int:
        """Trials of ``cell``'s separate test set (0: none)."""
        return self.iaf_test_trials if cell == "iaf" else self.test_trials

    def sweep_config(self, cell: str, fraction: float = 1.0) -> SweepConfig:
        """The :class:`~neuroemu.study.sweep.SweepConfig` of ``cell`` at ``fraction`` of its training trials:
        the shared settings, the I&F's own widths and models, the single linear unit as an extra configuration
        where asked, and no test split of the pool when the cell has a separate test set."""
        extra = []
        if (self.iaf_published_unit if cell == "iaf" else self.l5pc_linear_unit):
            # the published I&F network: one linear unit (on the L5PC: the simplest one-layer baseline).
            # BatchNorm is kept: at inference it is an affine map folded into the unit, so the function class
            # is the published one, and it keeps the unit centred. Initialisation: the sweep's (kernel SD
            # 0.002); the published SD of 0.25 needs the published ~70k steps to be unlearnt.
            extra = [{"label": "linear", "depth": 1, "width": 1, "kernels": [int(t)], "activation": "linear"}
                     for t in sorted(set(self.receptive_fields))]
        settings = self.settings()
        if cell == "iaf":
            settings["widths"] = list(self.iaf_widths)
            settings["models"] = list(self.iaf_models)
        if self.n_test(cell):
            tr, va, _ = self.split_fractions
            settings["split_fractions"] = [tr / (tr + va), va / (tr + va), 0.0]
        return SweepConfig.from_dict({**settings, "extra": extra, "train_fraction": float(fraction)},
                                     _where=f"StudyConfig (sweep of {cell})")


#: The named scales (fields of :class:`StudyConfig`). Times are for the 2-core development machine.
SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        l5pc_trials=10, l5pc_duration_ms=1000, iaf_trials=120, iaf_duration_ms=2000, test_trials=0,
        iaf_test_trials=0, fractions=[0.5, 1.0], depths=[1, 2, 3], widths=[4, 16], iaf_widths=[1, 4, 16],
        receptive_fields=[40], budget_steps=100, split_fractions=[0.6, 0.2, 0.2], target_auc=0.9, ci_level=0.5,
        n_boot=200, models=["branch-elm:2"], iaf_models=["branch-elm:2@routing=sequential"],
        description="CI smoke test (a few minutes on 2 cores): too little data and training for the numbers to "
                    "mean anything; it checks that every stage runs and connects."),
    "small": dict(
        l5pc_trials=96, l5pc_duration_ms=6000, iaf_trials=400, iaf_duration_ms=6000, test_trials=0,
        depths=[1, 2, 3, 5, 7], widths=[16, 64], iaf_widths=[1, 4, 16], receptive_fields=[80],
        budget_steps=2000, split_fractions=[0.75, 0.125, 0.125], target_auc=0.97, l5pc_linear_unit=True,
        description="A few hours on 2 cores (~35 min simulating the two L5PC datasets, ~2 h training 40 networks;"
                    " minutes on one GPU). Far less data than published (9.6 min per L5PC variant instead of "
                    "~17 h): expect lower AUCs, and a depth effect only where it is large."),
    "medium": dict(
        l5pc_trials=720, l5pc_duration_ms=6000, iaf_trials=400, iaf_duration_ms=6000, test_trials=80,
        iaf_test_trials=80, fractions=[0.125, 0.25, 0.5, 1.0], depths=[1, 2, 3, 5, 7], widths=[32],
        iaf_widths=[1, 4], receptive_fields=[80], budget_steps=8000, training={"patience": 4},
        models=["branch-elm:15"], iaf_models=["branch-elm:15@routing=sequential"],
        split_fractions=[0.9, 0.1, 0.0], split="stratified", target_auc=0.97, l5pc_linear_unit=True,
        description="Built for statistical power on this machine, over several sittings: 720 six-second L5PC "
                    "trials per variant (1.08 h of training data, 0.12 h of validation) and 80 separate "
                    "six-second test traces, the data axis 1/8..1 of the training trials, depths 1-7 at width 32, "
                    "the linear unit and the Branch-ELM, each trained for at most 8,000 steps (early stopping on "
                    "validation, validation every 800 steps, patience 4); paired bootstrap CIs over the test traces."),
    "paper": dict(
        l5pc_trials=10000, l5pc_duration_ms=6000, iaf_trials=13000, iaf_duration_ms=6000, test_trials=600,
        iaf_test_trials=1000, fractions=[0.01, 0.1, 1.0],
        depths=[1, 2, 3, 4, 5, 6, 7, 8], widths=[16, 32, 64, 128, 256], iaf_widths=[1, 4, 16, 64],
        receptive_fields=[25, 45, 80, 120, 153, 240], budget_steps=720000, preset="published",
        models=["branch-elm:15", "branch-elm:100"], split_fractions=[0.9, 0.1, 0.0], split="random",
        target_auc=0.99, l5pc_linear_unit=True,
        description="The published scale: ~10,000 six-second L5PC trials per variant (use a Dask cluster), "
                    "12,000 + 1,000 I&F trials, 240 configurations per L5PC variant and fraction trained for the "
                    "published 720,000 steps (an estimated 2-4 GPU-hours each on one current GPU -- not "
                    "measured)."),
}


def sweep_order(config: StudyConfig) -> list[tuple[float, str]]:
    """The order a study trains its sweeps in, as ``(fraction, cell)``: the whole pool of every cell first (the
    main comparison), then the smallest fraction (the widest span of the data axis), then the others from the
    largest down; cells in config order within a fraction. A study stopped part way has its most telling
    comparisons done."""
    fr = sorted({float(f) for f in config.fractions}, reverse=True)
    order = fr[:1] + fr[-1:] + fr[1:-1] if len(fr) > 1 else fr
    return [(f, cell) for f in order for cell in config.cells]


def sweep_dir_for(out: Path, cell: str, fraction: float) -> Path:
    """The sweep directory of ``cell`` at ``fraction``: ``sweeps/<cell>`` for the whole pool, else
    ``sweeps/<cell>@<fraction>``."""
    return out / "sweeps" / (cell if float(fraction) == 1.0 else f"{cell}@{float(fraction):g}")


def _cells_of(config: StudyConfig) -> list[tuple[str, int, int, int]]:
    return [(c, *((config.iaf_trials, config.iaf_duration_ms) if c == "iaf" else
                  (config.l5pc_trials, config.l5pc_duration_ms)), config.n_test(c)) for c in config.cells]


def study_plan(config: StudyConfig) -> dict[str, Any]:
    """What the study will do and a rough cost: datasets, configurations, simulated seconds, training runs and
    steps, and estimated L5PC simulation core-hours (at :data:`L5PC_SIM_S_PER_SIM_S`)."""
    plan: dict[str, Any] = {"scale": config.scale, "description": config.description, "cells": {},
                            "fractions": list(config.fractions)}
    sim_core_h, steps, runs = 0.0, 0, 0
    for cell, n, dur, n_test in _cells_of(config):
        entries = sweep_entries(config.sweep_config(cell))
        sim_s = (n + n_test) * dur / 1000.0
        core_h = 0.0 if cell == "iaf" else sim_s * L5PC_SIM_S_PER_SIM_S / 3600.0
        sim_core_h += core_h
        runs += len(entries) * len(config.fractions)
        steps += len(entries) * len(config.fractions) * (config.budget_steps or 0)
        plan["cells"][cell] = {"trials": n, "test_trials": n_test, "duration_ms": dur, "simulated_s": sim_s,
                               "simulation_core_hours_est": round(core_h, 2), "configurations": len(entries),
                               "training_runs": len(entries) * len(config.fractions),
                               "names": [e.name for e in entries]}
    plan["simulation_core_hours_est"] = round(sim_core_h, 2)
    plan["training_runs"] = runs
    plan["training_steps_total"] = steps
    return plan


# ---------------------------------------------------------------------------------------------- datasets
def dataset_config_for(config: StudyConfig, cell: str, test: bool = False) -> DatasetConfig:
    """The :class:`~neuroemu.dataset.format.DatasetConfig` of ``cell``'s training pool (or, ``test=True``, of its
    separate test set: the same cell and inputs, its own seed)."""
    kind, variant = CELLS[cell]
    preset_name = config.inputs_presets.get(cell) or default_preset_name(kind, variant)
    cell_cfg = CellConfig(kind=kind) if kind == "iaf" else CellConfig(kind=kind, variant=variant)
    _, n, dur, n_test = next(c for c in _cells_of(config) if c[0] == cell)
    return DatasetConfig(cell=cell_cfg, generator=preset(preset_name), n_trials=int(n_test if test else n),
                         duration_ms=int(dur), seed=config.test_seed(cell) if test else config.pool_seed(cell),
                         release_probability=config.release_probability,
                         record_dendrites=bool(cell in config.record_dendrites and kind == "l5pc" and not test),
                         solver=config.solver if kind == "l5pc" else None)


def _dataset_facts(path: Path, preset_name: str) -> dict[str, Any]:
    ds = NeuroDataset(path)
    counts = [int(len(ds.spike_times(i))) for i in ds.trial_indices]
    total_s = ds.n_trials * ds.duration_ms / 1000.0
    sim_wall = sum(float(e.get("wall_time_s") or 0.0) for e in ds.manifest.get("shards", []))
    sim_cpu = sum(float(e.get("cpu_time_s") or 0.0) for e in ds.manifest.get("shards", []))
    return {"path": str(path), "n_trials": ds.n_trials, "duration_ms": ds.duration_ms, "n_channels": ds.n_channels,
            "hours": round(total_s / 3600.0, 4), "inputs_preset": preset_name, "output_spikes": int(sum(counts)),
            "output_rate_hz": round(sum(counts) / total_s, 4) if total_s else None,
            "silent_trials": int(sum(c == 0 for c in counts)),
            "simulation_wall_s_sum": round(sim_wall, 1), "simulation_cpu_s_sum": round(sim_cpu, 1),
            "simulation_s_per_simulated_s": round(sim_wall / total_s, 3) if total_s else None,
            "simulation_cpu_s_per_simulated_s": round(sim_cpu / total_s, 3) if total_s and sim_cpu else None}


def _manifest_done(path: Path, n_trials: int) -> bool:
    try:
        m = load_manifest(path)
    except DatasetError:
        return False
    return bool(m.get("complete")) and int(m["config"].get("n_trials", -1)) == n_trials


def _build(config: StudyConfig, cell: str, out: Path, test: bool, workers: int | None, client: Any,
           scheduler: str | None, say: Callable[[str], None]) -> dict[str, Any]:
    dcfg = dataset_config_for(config, cell, test)
    kind, variant = CELLS[cell]
    preset_name = config.inputs_presets.get(cell) or default_preset_name(kind, variant)
    what = f"{cell} {'test set' if test else 'training pool'}"
    t0 = time.monotonic()
    if _manifest_done(out, dcfg.n_trials):
        say(f"dataset {what}: complete ({dcfg.n_trials} trials x {dcfg.duration_ms} ms) at {out}")
    else:
        say(f"dataset {what}: simulating {dcfg.n_trials} trials x {dcfg.duration_ms} ms "
            f"({'L5PC ' + variant if kind == 'l5pc' else 'integrate-and-fire'}, inputs '{preset_name}') into {out}")
        build_dataset(dcfg, out, workers=workers, client=client, scheduler=scheduler, progress=True)
    facts = _dataset_facts(out, preset_name)
    facts["build_wall_s_this_call"] = round(time.monotonic() - t0, 1)
    say(f"dataset {what}: {facts['n_trials']} trials, {facts['output_spikes']} output spikes "
        f"({facts['output_rate_hz']} Hz, {facts['silent_trials']} silent trials)")
    return facts


def check_test_set(config: StudyConfig, cell: str, path: Path) -> dict[str, int]:
    """Count the test traces the protocol scores (spike filter after the burn-in) and refuse a test set too
    small for the study's CI (:class:`ConfigError` saying how many traces are needed)."""
    ds = NeuroDataset(path)
    skip = drop_first_ms_for(ds.duration_ms)
    counts = [int(np.sum(np.asarray(ds.spike_times(i)) >= skip)) for i in ds.trial_indices]
    scored = [c for c in counts if 0 <= c <= 24]
    need = traces_needed(config.ci_level)
    if len(scored) < need:
        raise ConfigError(
            f"{path}: the test set of {cell} has {len(scored)} traces that the protocol scores (0-24 spikes after "
            f"the first {skip} ms) of {len(counts)}; a {100 * config.ci_level:g}% CI over traces needs at least "
            f"{need}: raise StudyConfig.{'iaf_test_trials' if cell == 'iaf' else 'test_trials'} (e.g. to "
            f"{math.ceil(need * len(counts) / max(len(scored), 1)) + 5}) or lower ci_level")
    return {"scored_traces": len(scored), "scored_spikes": int(sum(scored)), "traces": len(counts)}


# ---------------------------------------------------------------------------------------------- the study
def _write(out_dir: Path, doc: dict[str, Any]) -> None:
    write_json(out_dir / "study.json", doc)
    write_table(doc.get("rows", []), out_dir / "study.csv")


def read_study(study_dir: str | Path) -> dict[str, Any]:
    """Load ``STUDY/study.json``; raise :class:`ConfigError` naming the file if missing or unreadable."""
    return read_json(Path(study_dir) / "study.json", ConfigError, "study directory")


def write_study_figures(rows: list[dict], target_auc: float, fig_dir: Path,
                        findings_doc: dict[str, Any] | None = None) -> list[Path]:
    """``summary.png`` and ``complexity_panels.png`` (reference 9.7) of the whole-pool rows; with several data
    sizes also ``data_scaling.png`` (accuracy against training data per cell and model) and
    ``depth_gain_by_data.png`` (the paired gain from depth with its CI and fit)."""
    main = [r for r in rows if (r.get("fraction") in (None, 1.0))]
    done = done_rows(main)
    if not done:
        return []
    tcn = [r for r in done if (r.get("family") or "tcn") == "tcn"]
    paths = [F.save_figure(F.study_summary(plot_rows(tcn), target_auc=target_auc), fig_dir / "summary.png")]
    rf = (10, 260) if any(10 <= (r.get("receptive_field") or 0) <= 260 for r in tcn) else None
    paths.append(F.save_figure(F.complexity_panels(plot_rows(tcn), group="cell", rf_range=rf),
                               fig_dir / "complexity_panels.png"))
    cells = (findings_doc or {}).get("cells") or {}
    scaling = [{**r, "model": f"{c}: {r['model'] if r.get('family') != 'tcn' else 'depth ' + str(r.get('depth'))}"}
               for c, f in cells.items() for r in f.get("data_scaling") or []]
    if len({r["fraction"] for r in scaling}) > 1:
        paths.append(F.save_figure(F.learning_curve(scaling, title="test AUC against training data (best network "
                                                                   "per depth, validation-selected)"),
                                   fig_dir / "data_scaling.png"))
    gains = {c: f["depth_gain_by_data"] for c, f in cells.items() if f.get("depth_gain_by_data")}
    if gains:
        fits = {c: f.get("depth_gain_fit") for c, f in cells.items() if f.get("depth_gain_fit")}
        paths.append(F.save_figure(F.depth_gain_by_data(gains, fits, PUBLISHED_TRAIN_HOURS),
                                   fig_dir / "depth_gain_by_data.png"))
    return paths


def _with_solver(out: Path, cfg: StudyConfig) -> StudyConfig:
    """``cfg`` with its solver fixed: the one the study directory was started with, else today's default."""
    if cfg.solver is not None:
        return cfg
    stored = (read_study(out).get("config") or {}).get("solver") if (out / "study.json").is_file() else None
    return cfg.replace(solver=SolverConfig.from_dict(stored) if stored else SolverConfig())


def _check_config(out: Path, cfg: StudyConfig) -> None:
    if not (out / "study.json").is_file():
        return
    old = dict(read_study(out).get("config") or {})
    new = cfg.to_dict()
    for k in ("cells", "description"):  # cells may be added or run one at a time (each has its own datasets and
        old.pop(k, None)                 # sweeps); the description is prose, it decides no number
        new.pop(k, None)
    old_f, new_f = old.pop("fractions", None), new.pop("fractions", None)
    if old_f is not None and not set(map(float, old_f)) <= set(map(float, new_f)):
        raise ConfigError(f"{out} holds a study with fractions {old_f}; the data axis may grow in a later sitting "
                          f"(each fraction has its own sweeps) but not lose points: got {new_f}. Use another --out "
                          "directory, or include the fractions run before")
    old_s, new_s = int(old.pop("train_seeds", 1) or 1), int(new.pop("train_seeds", 1) or 1)
    if new_s < old_s:
        raise ConfigError(f"{out} holds a study with train_seeds {old_s}; later sittings may add training "
                          f"replicates but not drop them: got {new_s}. Use another --out directory, or "
                          f"--train-seeds {old_s} or more")
    if "solver" not in old:  # a study started before the solver was recorded: its datasets record theirs
        new.pop("solver", None)
    if old:  # a field added to neuroemu after the study started matches where it keeps its default
        defaults = StudyConfig.for_scale(cfg.scale).to_dict()
        for k in [k for k in new if k not in old and new[k] == defaults.get(k)]:
            new.pop(k)
    if old and old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ConfigError(f"{out} holds a study with a different config (differs in {', '.join(diff)}: "
                          f"{ {k: old.get(k) for k in diff} } there); use another --out directory or the same "
                          f"scale and settings to resume it")


def _costs(doc: dict[str, Any]) -> dict[str, Any]:
    sim = sum(float(d.get("simulation_cpu_s_sum") or d.get("simulation_wall_s_sum") or 0.0)
              for d in doc["datasets"].values()) / 3600.0
    train = sum(float(r.get("train_minutes") or 0.0) for r in doc["rows"]) / 60.0
    return {"simulation_core_hours": round(sim, 3), "training_process_hours": round(train, 3),
            "note": "simulation: the CPU seconds of the trials (their wall seconds where no CPU time was recorded), "
                    "one core each; training: the sum of the runs' training wall times, one process each"}


def _cell_findings(cfg: StudyConfig, cell: str, rows: list[SweepRow], base: CellFindings) -> CellFindings:
    main = [r for r in rows if r.fraction in (None, 1.0)]
    paired = paired_depth_gain(main, cfg.n_boot, cfg.ci_level, cfg.seed)
    if paired is not None:
        base.paired_delta_auc, base.paired_ci, base.paired_n_traces = (paired["delta_auc"], paired["ci"],
                                                                       paired["n_traces"])
    axis = data_axis(rows, cfg.n_boot, cfg.ci_level, cfg.seed)
    for k in ("data_scaling", "depth_gain_by_data", "depth_gain_fit", "fci", "fci_ci"):
        if k in axis:
            setattr(base, k, axis[k])
    if "best_emulator" in axis:
        base.best_emulator = axis["best_emulator"]
    return base


def _data_verdict(cells: dict[str, CellFindings]) -> str:
    parts = []
    for c, f in cells.items():
        fit = f.depth_gain_fit
        if not fit:
            parts.append(f"{c}: no depth-gain fit (needs paired predictions at >= 2 data sizes)")
            continue
        lo, hi = fit["slope_ci"]
        ex = fit["extrapolation"]
        parts.append(f"{c}: gain from depth {'grows' if fit['grows_with_data'] else 'does not grow detectably'} with "
                     f"data ({fit['slope_per_decade']:+.4f} AUC per decade of hours, CI [{lo:+.4f}, {hi:+.4f}]; "
                     f"extrapolated to {ex['train_hours']:g} h: {ex['delta_auc']:+.4f}, CI [{ex['ci'][0]:+.4f}, "
                     f"{ex['ci'][1]:+.4f}] -- an extrapolation)")
    return "; ".join(parts)


def data_findings(cells: dict[str, CellFindings]) -> dict[str, Any]:
    """The study-wide findings of the data axis: ``data_verdict`` (each cell's fit in words) and, where both L5PC
    variants have paired depth gains, ``contrast`` (nmda minus ampa: :func:`~neuroemu.study.findings.
    depth_gain_contrast`), whose summary the verdict ends with."""
    out: dict[str, Any] = {"data_verdict": _data_verdict(cells)}
    contrast = depth_gain_contrast(cells["nmda"], cells["ampa"]) if {"nmda", "ampa"} <= set(cells) else None
    if contrast is not None:
        out["contrast"] = contrast
        out["data_verdict"] += "; " + contrast["summary"]
    return out


def run_study(scale: str = "tiny", out_dir: str | Path = "study_out", *, config: StudyConfig | None = None,
              workers: int | None = None, threads: int | None = None, sim_workers: int | None = None,
              client: Any = None, scheduler: str | None = None, report: bool = True,
              log: Callable[[str], None] | None = None, train: bool = True) -> dict[str, Any]:
    """Run the whole comparison at ``scale`` (or ``config``) into ``out_dir``; return the ``study.json`` dict.

    workers / threads: parallel training processes per sweep and torch threads each (default: one process
    per core, ``cores // workers`` threads; see :func:`~neuroemu.study.sweep.run_sweep`); sim_workers: simulation
    processes (default: all cores). client / scheduler: a Dask cluster for both simulation and training
    (shared file system needed). A rerun with the same config resumes; a different config raises
    :class:`ConfigError` naming the differing fields (use another ``out_dir``). ``train=False`` simulates what is
    missing but trains nothing: findings, figures and report of the configurations finished so far.
    """
    cfg = config if config is not None else StudyConfig.for_scale(scale)
    cfg.validate()
    out = Path(out_dir)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg = _with_solver(out, cfg)
    _check_config(out, cfg)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    previous = read_study(out) if (out / "study.json").is_file() else {}
    doc: dict[str, Any] = {"format": "neuroemu-study", "format_version": 2, "status": "running",
                           "scale": cfg.scale, "config": cfg.to_dict(), "plan": study_plan(cfg), "datasets": {},
                           "test_sets": {}, "sweeps": {}, "rows": [], "timings_s": {}, "neuroemu": __version__}
    for key in ("datasets", "test_sets", "sweeps"):  # cells run earlier (one at a time) stay in the record
        doc[key].update({k: v for k, v in (previous.get(key) or {}).items()
                         if k.split("@")[0].removesuffix("_test") not in cfg.cells})
    doc["rows"] = [r for r in previous.get("rows", []) if r.get("cell") not in cfg.cells]
    _write(out, doc)
    say(f"study ({cfg.scale}) in {out}: cells {', '.join(cfg.cells)}; {cfg.description}")
    for cell in cfg.cells:
        t0 = time.monotonic()
        doc["datasets"][cell] = _build(cfg, cell, out / "data" / cell, False, sim_workers, client, scheduler, say)
        if cfg.n_test(cell):
            test_dir = out / "data" / f"{cell}_test"
            doc["datasets"][f"{cell}_test"] = _build(cfg, cell, test_dir, True, sim_workers, client, scheduler, say)
            doc["test_sets"][cell] = {"path": str(test_dir), **check_test_set(cfg, cell, test_dir)}
        doc["timings_s"][f"dataset_{cell}"] = round(time.monotonic() - t0, 1)
        _write(out, doc)
    statuses = []
    for f, cell in sweep_order(cfg):
        test_data = out / "data" / f"{cell}_test" if cfg.n_test(cell) else None
        t0 = time.monotonic()
        key = cell if f == 1.0 else f"{cell}@{f:g}"
        sw = run_sweep(out / "data" / cell, cfg.sweep_config(cell, f), sweep_dir_for(out, cell, f),
                       workers=workers, threads=threads, client=client, scheduler=scheduler, log=say,
                       train=train, test_data=test_data)
        rows = [{**r, "cell": cell} for r in sw["rows"]]
        doc["rows"] = [r for r in doc["rows"] if not (r.get("cell") == cell and r.get("fraction") == f)] + rows
        doc["sweeps"][key] = {"path": str(sweep_dir_for(out, cell, f)), "status": sw["status"], "fraction": f,
                              "configurations": len(rows), "trained_now": len(sw.get("trained_now", []))}
        statuses.append(Status.parse(sw["status"]))
        doc["timings_s"][f"sweep_{key}"] = round(time.monotonic() - t0, 1)
        _write(out, doc)
    typed = [SweepRow.from_dict(r) for r in doc["rows"]]
    main = [r for r in typed if r.fraction in (None, 1.0)]
    cells = [c for c in CELLS if c in cfg.cells or any(r.cell == c for r in typed)]
    fnd = study_findings(main, cfg.target_auc, cfg.auc_margin, cells=cells, min_test_spikes=cfg.min_test_spikes)
    for cell in cells:
        fnd.cells[cell] = _cell_findings(cfg, cell, [r for r in typed if r.cell == cell], fnd.cells[cell])
    doc["findings"] = fnd.to_dict()
    doc["findings"].update(data_findings(fnd.cells))
    incomplete = [k for k, s in doc["sweeps"].items() if Status.parse(s["status"]).state != State.COMPLETE]
    doc["status"] = "complete" if not incomplete else \
        f"incomplete: sweeps {incomplete} have failed or untrained configurations"
    doc["costs"] = _costs(doc)
    doc["timings_s"]["total_this_call"] = round(time.monotonic() - t_start, 1)
    _write(out, doc)
    write_study_figures(doc["rows"], cfg.target_auc, out / "figures", doc["findings"])
    for cell, f in doc["findings"]["cells"].items():
        say("  " + f["summary"])
    say(f"published finding {doc['findings']['verdict']}")
    say(f"data axis: {doc['findings']['data_verdict']}")
    if report:
        index = report_study(out)
        doc["report"] = str(index)
        _write(out, doc)
        say(f"report: {index}")
    return doc


# ---------------------------------------------------------------------------------------------- status
def study_status(config: StudyConfig, out_dir: str | Path) -> dict[str, Any]:
    """What a study directory holds and what is left, read from the files alone (nothing is run): per dataset
    the trials done and the simulation time left at its measured speed, per sweep the configurations done and
    the training time left at the measured mean per run, and the totals."""
    out = Path(out_dir)
    status: dict[str, Any] = {"study": str(out), "scale": config.scale, "datasets": {}, "sweeps": {}}
    sim_left = train_left = 0.0
    progress = {}  # dataset name -> (cell, duration, target, trials done, their CPU time)
    for cell, n, dur, n_test in _cells_of(config):
        for name, target in ((cell, n), (f"{cell}_test", n_test)):
            if not target:
                continue
            done, cpu = 0, 0.0
            try:
                shards = [e for e in load_manifest(out / "data" / name)["shards"] if int(e["index"]) < target]
                done, cpu = len(shards), sum(_trial_cpu_s(e) for e in shards)
            except DatasetError:
                pass
            progress[name] = (cell, dur, target, done, cpu)
    # L5PC datasets not started yet are estimated at the speed measured on the others (else the nominal one)
    measured_sim = [cpu / done / (dur / 1000.0) for cell, dur, _, done, cpu in progress.values()
                    if done and cell != "iaf"]
    l5pc_speed = float(np.mean(measured_sim)) if measured_sim else L5PC_SIM_S_PER_SIM_S
    for name, (cell, dur, target, done, cpu) in progress.items():
        per_trial = cpu / done if done else (0.0 if cell == "iaf" else dur / 1000.0 * l5pc_speed)
        left = (target - done) * per_trial
        sim_left += left
        status["datasets"][name] = {"trials_done": done, "trials": target,
                                    "simulation_s_left_one_core": round(left, 1)}
    unmeasured_min = min(10.0, float(config.budget_minutes)) if config.budget_minutes else 10.0
    for f, cell in sweep_order(config):  # in training order
        entries = sweep_entries(config.sweep_config(cell, f))
        sdir = sweep_dir_for(out, cell, f)
        done_min = [json_min for json_min in (_run_minutes(sdir / "runs" / e.name) for e in entries)
                    if json_min is not None]
        status["sweeps"][sdir.name] = {"configurations_done": len(done_min), "configurations": len(entries),
                                       "mean_train_minutes": round(float(np.mean(done_min)), 2) if done_min
                                       else None}
        left = len(entries) - len(done_min)
        mean = float(np.mean(done_min)) if done_min else unmeasured_min
        train_left += left * mean * 60.0
    status["simulation_s_per_simulated_s_measured"] = round(float(np.mean(measured_sim)), 3) if measured_sim else None
    status["estimate"] = {"simulation_core_hours_left": round(sim_left / 3600.0, 2),
                          "training_process_hours_left": round(train_left / 3600.0, 2),
                          "note": f"at the speeds measured so far (unmeasured: {l5pc_speed:.1f} CPU s per simulated s "
                                  f"and {unmeasured_min:g} min per training run); divide by the processes that run "
                                  "in parallel"}
    return status


def _trial_cpu_s(entry: dict) -> float:
    """One shard's simulation cost in CPU seconds: its ``cpu_time_s`` (a worker's process time, which a paused or
    shared worker does not inflate), else, in manifests older than that field, its ``wall_time_s``."""
    return float(entry.get("cpu_time_s") or entry.get("wall_time_s") or 0.0)


def _run_minutes(run_dir: Path) -> float | None:
    path = run_dir / RESULT_NAME
    if not path.is_file():
        return None
    try:
        row = SweepRow.from_dict(read_json(path, ConfigError)["row"])
    except (ConfigError, KeyError, TypeError):
        return None
    return float(row.train_minutes or 0.0) if row.done else None


def format_status(status: dict[str, Any]) -> str:
    """The status as text for the terminal."""
    lines = [f"study {status['study']} (scale {status['scale']})", "datasets:"]
    for name, d in status["datasets"].items():
        lines.append(f"  {name:<14} {d['trials_done']:>6} / {d['trials']:<6} trials"
                     + (f"   ~{d['simulation_s_left_one_core'] / 3600:.2f} core-h left" if d['trials_done'] < d['trials']
                        else "   done"))
    lines.append("sweeps:")
    for name, s in status["sweeps"].items():
        mean = f", {s['mean_train_minutes']} min per run" if s["mean_train_minutes"] is not None else ""
        lines.append(f"  {name:<14} {s['configurations_done']:>3} / {s['configurations']:<3} configurations{mean}")
    e = status["estimate"]
    lines.append(f"left: ~{e['simulation_core_hours_left']} core-hours of simulation, ~{e['training_process_hours_left']}"
                 f" process-hours of training ({e['note']})")
    return "\n".join(lines)
