"""The published complexity comparison, end to end: datasets, sweeps, summary, findings, report.

``run_study(scale, out_dir)`` builds one dataset per cell under ``STUDY/data/<cell>/`` -- the L5PC with
AMPA+NMDA synapses (``nmda``), the AMPA-only L5PC (``ampa``), each with its published input ranges
(reference 5.3), and the integrate-and-fire neuron (``iaf``, reference 7) -- runs the same complexity sweep on each
(``STUDY/sweeps/<cell>/``, :mod:`neuroemu.study.sweep`), and writes:

- ``study.json``: the config, per-cell dataset facts (trials, firing rate, simulation time), every sweep row,
  the findings and the smallest network reaching ``target_auc`` per cell, timings;
- ``study.csv``: all sweep rows of all cells (columns of :data:`neuroemu.study.sweep.TABLE_COLUMNS`);
- ``figures/summary.png`` (test AUC and explained variance vs depth, one curve per cell, best network per
  depth as in the published figure; star: the smallest network whose test AUC reaches the target) and
  ``figures/complexity_panels.png`` (reference 9.7);
- ``report/index.html`` (:func:`neuroemu.report.study_report.report_study`).

Everything is resumable: finished trials and finished configurations are kept, so rerunning the same command
continues where it stopped.

Findings (per cell; validation selects, test reports): the depth-1 network with the best validation AUC is
compared with the network of any depth with the best validation AUC, both scored on the test trials. Depth
is "needed" when the best network's test AUC exceeds the depth-1 network's by more than both ``auc_margin``
and 2 combined SDs (the SDs over 12 random 67% subsets of the test traces, reference 9.4). The published result
(reference 9.6) is: needed for ``nmda``, not for ``ampa`` and ``iaf``; for ``iaf`` a single unit (width 1, depth 1)
should also come within ``auc_margin`` (or 2 SDs) of the best network.

Scales (times measured or extrapolated on the 2-core development machine; see :data:`SCALES`):

- ``tiny``: CI-sized (a few minutes): 10 L5PC trials of 1 s per variant, 120 I&F trials of 2 s, depths 1-3,
  widths 4 and 16 (and 1 for the I&F), 100 training steps. Its numbers are a smoke test, not a result.
- ``small``: a few hours on 2 cores: 96 L5PC trials of 6 s per variant (~16 min per variant with 2 simulation
  processes at ~3.3 s per simulated second per core), 400 I&F trials of 6 s, depths 1, 2, 3, 5, 7, widths 16
  and 64 (and 1, 4 for the I&F), T = 80 ms, 2000 training steps per configuration (~2 h on 2 cores, minutes on
  one GPU).
- ``paper``: the published scale, documented (it runs, but belongs on a cluster and GPUs): ~10,000 L5PC trials
  of 6 s per variant (60,000 simulated seconds: ~55 core-hours per variant at the ~3.3 s per simulated second
  of the default solver here; spread over a Dask cluster with ``--scheduler``), 12,000 + 1,000 I&F
  trials, depths 1-8, widths 16-256, receptive fields 25-240 ms (240 configurations per L5PC variant), the
  published 5-stage schedule (720,000 steps per configuration; ~15 days per 7x128 network on 2 CPU cores
  here, an estimated 2-4 GPU-hours on one current GPU -- not measured).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import neuroemu
from neuroemu.cells.config import CellConfig
from neuroemu.dataset.format import DatasetConfig
from neuroemu.dataset.reader import NeuroDataset
from neuroemu.dataset.runner import build_dataset
from neuroemu.errors import ConfigError
from neuroemu.inputs.generator import default_preset_name, preset
from neuroemu.io import read_json, write_json
from neuroemu.report import figures as F
from neuroemu.report.study_report import report_study
from neuroemu.report.sweep_report import done_rows, plot_rows
from neuroemu.results.rows import write_table
from neuroemu.results.selection import smallest_reaching as _smallest_reaching
from neuroemu.study.findings import EV_MARGIN, EXPECTED_DEPTH_NEEDED, findings
from neuroemu.study.sweep import SweepConfig, SweepSettings, run_sweep, sweep_entries

__all__ = ["StudyConfig", "SCALES", "CELLS", "EXPECTED_DEPTH_NEEDED", "EV_MARGIN", "study_plan", "run_study",
           "findings", "smallest_reaching", "dataset_config_for", "read_study", "write_study_figures"]

#: The cells of the published comparison: name -> (cell kind, L5PC variant).
CELLS: dict[str, tuple[str, str]] = {"nmda": ("l5pc", "nmda"), "ampa": ("l5pc", "ampa"), "iaf": ("iaf", "nmda")}


def smallest_reaching(rows: list[dict], target_auc: float) -> dict | None:
    """The finished row with the fewest parameters whose test AUC reaches ``target_auc`` (ties: the shallower,
    then the higher-AUC network; :func:`neuroemu.results.selection.smallest_reaching`), as a dict."""
    r = _smallest_reaching(rows, target_auc)
    return r.to_dict() if r is not None else None

#: Measured here (2-core development machine, NEURON 9, the default solver: fixed step 0.025 ms, Crank-Nicolson,
#: rate tables, CoreNEURON; two simulation processes): wall seconds of simulation per simulated second of the
#: L5PC per process (``neuroemu study --scale small``: 96 six-second trials in ~16 min); used only for the time
#: estimates of :func:`study_plan`.
L5PC_SIM_S_PER_SIM_S = 3.3


@dataclass
class StudyConfig(SweepSettings):
    """A complexity study at one scale. Build one with :meth:`for_scale` (``tiny``, ``small``, ``paper``).

    cells: which of ``nmda``, ``ampa``, ``iaf`` to include. l5pc_trials / l5pc_duration_ms, iaf_trials /
    iaf_duration_ms: dataset sizes. inputs_presets: input-generator preset per cell (default: the cell's
    published ranges, :func:`neuroemu.inputs.generator.default_preset_name`). depths, widths, iaf_widths,
    receptive_fields, models, budget_steps, budget_minutes, preset, training, split_fractions, split, seed: the
    sweep of every cell (the fields of :class:`neuroemu.study.sweep.SweepSettings`, here with the tiny scale's
    defaults; ``iaf_widths`` replaces ``widths`` for the I&F). target_auc: AUC the "smallest network" must reach.
    auc_margin: the smallest AUC difference counted as a real gain from depth. min_test_spikes: fewer test
    spikes than this leave a cell uncompared (inconclusive). iaf_published_unit: also train, on the I&F, the
    published single-unit network (one linear unit with a T-ms filter; BatchNorm, which folds into the unit at
    inference, kept for training stability) as the extra configuration ``1x1xT_linear``. l5pc_linear_unit: the
    same single linear unit on the L5PC variants: the simplest one-layer network, a baseline every depth must
    beat (on ``small`` and ``paper`` scales).
    """

    scale: str = "tiny"
    cells: list[str] = field(default_factory=lambda: ["nmda", "ampa", "iaf"])
    l5pc_trials: int = 10
    l5pc_duration_ms: int = 1000
    iaf_trials: int = 120
    iaf_duration_ms: int = 2000
    inputs_presets: dict[str, str] = field(default_factory=dict)
    release_probability: float | None = None
    # the shared sweep settings, with the tiny scale's defaults
    depths: list[int] = field(default_factory=lambda: [1, 2, 3])
    widths: list[int] = field(default_factory=lambda: [4, 16])
    receptive_fields: list[int] = field(default_factory=lambda: [40])
    budget_steps: int | None = 100
    split_fractions: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    split: str = "stratified"
    iaf_widths: list[int] = field(default_factory=lambda: [1, 4, 16])
    target_auc: float = 0.9
    auc_margin: float = 0.005
    min_test_spikes: int = 20
    iaf_published_unit: bool = True
    l5pc_linear_unit: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "StudyConfig":
        """Check the fields; raise :class:`ConfigError` naming the field and value at fault."""
        if not self.cells or any(c not in CELLS for c in self.cells):
            raise ConfigError(f"StudyConfig.cells must be a non-empty subset of {sorted(CELLS)}, got {self.cells}")
        for name in ("l5pc_trials", "iaf_trials"):
            if getattr(self, name) < 3:
                raise ConfigError(f"StudyConfig.{name} must be >= 3 (train, validation, test), "
                                  f"got {getattr(self, name)}")
        for name in ("l5pc_duration_ms", "iaf_duration_ms"):
            if getattr(self, name) < 100:
                raise ConfigError(f"StudyConfig.{name} must be >= 100 ms, got {getattr(self, name)}")
        for cell in self.inputs_presets:
            if cell not in CELLS:
                raise ConfigError(f"StudyConfig.inputs_presets: unknown cell {cell!r}; cells are {sorted(CELLS)}")
        if not 0.5 < self.target_auc <= 1.0:
            raise ConfigError(f"StudyConfig.target_auc must be in (0.5, 1], got {self.target_auc}")
        if self.auc_margin < 0:
            raise ConfigError(f"StudyConfig.auc_margin must be >= 0, got {self.auc_margin}")
        super().validate()
        self.sweep_config("iaf")
        return self

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> "StudyConfig":
        """The study of a named scale (``tiny``, ``small``, ``paper``), with fields overridden."""
        if scale not in SCALES:
            raise ConfigError(f"unknown study scale {scale!r}; choose one of {sorted(SCALES)}")
        return cls.from_dict({**SCALES[scale], **overrides, "scale": scale})

    def sweep_config(self, cell: str) -> SweepConfig:
        """The :class:`~neuroemu.study.sweep.SweepConfig` used for ``cell``: the shared settings, the I&F's own
        widths, and the single linear unit as an extra configuration where asked."""
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
        return SweepConfig.from_dict({**settings, "extra": extra}, _where=f"StudyConfig (sweep of {cell})")


#: The named scales (fields of :class:`StudyConfig`). Times are for the 2-core development machine.
SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        l5pc_trials=10, l5pc_duration_ms=1000, iaf_trials=120, iaf_duration_ms=2000,
        depths=[1, 2, 3], widths=[4, 16], iaf_widths=[1, 4, 16], receptive_fields=[40], budget_steps=100,
        split_fractions=[0.6, 0.2, 0.2], target_auc=0.9,
        description="CI smoke test (a few minutes on 2 cores): too little data and training for the numbers to "
                    "mean anything; it checks that every stage runs and connects."),
    "small": dict(
        l5pc_trials=96, l5pc_duration_ms=6000, iaf_trials=400, iaf_duration_ms=6000,
        depths=[1, 2, 3, 5, 7], widths=[16, 64], iaf_widths=[1, 4, 16], receptive_fields=[80],
        budget_steps=2000, split_fractions=[0.75, 0.125, 0.125], target_auc=0.97, l5pc_linear_unit=True,
        description="A few hours on 2 cores (~35 min simulating the two L5PC datasets, ~2 h training 40 networks;"
                    " minutes on one GPU). Far less data than published (9.6 min per L5PC variant instead of "
                    "~17 h): expect lower AUCs, "
                    "and a depth effect only where it is large."),
    "paper": dict(
        l5pc_trials=10000, l5pc_duration_ms=6000, iaf_trials=13000, iaf_duration_ms=6000,
        depths=[1, 2, 3, 4, 5, 6, 7, 8], widths=[16, 32, 64, 128, 256], iaf_widths=[1, 4, 16, 64],
        receptive_fields=[25, 45, 80, 120, 153, 240], budget_steps=720000, preset="published",
        split_fractions=[0.8, 0.1, 0.1], split="random", target_auc=0.99, l5pc_linear_unit=True,
        description="The published scale: ~10,000 six-second L5PC trials per variant (~55 core-hours of "
                    "simulation per variant here with the default solver; use a Dask cluster), "
                    "12,000 + 1,000 I&F trials, "
                    "240 configurations per L5PC variant trained for the published 720,000 steps (~15 days per "
                    "7x128 network on 2 CPU cores here; an estimated 2-4 GPU-hours each on one current GPU, "
                    "i.e. roughly 1,000-2,000 GPU-hours for the study -- estimates, not measured)."),
}


def study_plan(config: StudyConfig) -> dict[str, Any]:
    """What the study will do and a rough cost: datasets, configurations, simulated seconds, training steps,
    and estimated L5PC simulation core-hours (at :data:`L5PC_SIM_S_PER_SIM_S`)."""
    plan: dict[str, Any] = {"scale": config.scale, "description": config.description, "cells": {}}
    sim_core_h = 0.0
    steps = 0
    for cell in config.cells:
        n, dur = (config.iaf_trials, config.iaf_duration_ms) if cell == "iaf" else \
            (config.l5pc_trials, config.l5pc_duration_ms)
        entries = sweep_entries(config.sweep_config(cell))
        sim_s = n * dur / 1000.0
        core_h = 0.0 if cell == "iaf" else sim_s * L5PC_SIM_S_PER_SIM_S / 3600.0
        sim_core_h += core_h
        steps += len(entries) * (config.budget_steps or 0)
        plan["cells"][cell] = {"trials": n, "duration_ms": dur, "simulated_s": sim_s,
                               "simulation_core_hours_est": round(core_h, 2), "configurations": len(entries),
                               "names": [e.name for e in entries]}
    plan["simulation_core_hours_est"] = round(sim_core_h, 2)
    plan["training_steps_total"] = steps
    return plan


# ---------------------------------------------------------------------------------------------- datasets
def dataset_config_for(config: StudyConfig, cell: str):
    """The :class:`~neuroemu.dataset.format.DatasetConfig` of ``cell`` in this study."""
    kind, variant = CELLS[cell]
    preset_name = config.inputs_presets.get(cell) or default_preset_name(kind, variant)
    cell_cfg = CellConfig(kind=kind) if kind == "iaf" else CellConfig(kind=kind, variant=variant)
    n, dur = (config.iaf_trials, config.iaf_duration_ms) if kind == "iaf" else \
        (config.l5pc_trials, config.l5pc_duration_ms)
    return DatasetConfig(cell=cell_cfg, generator=preset(preset_name), n_trials=int(n), duration_ms=int(dur),
                         seed=int(config.seed), release_probability=config.release_probability)


def _dataset_facts(path: Path, preset_name: str) -> dict[str, Any]:
    ds = NeuroDataset(path)
    counts = [int(len(ds.spike_times(i))) for i in ds.trial_indices]
    total_s = ds.n_trials * ds.duration_ms / 1000.0
    sim_wall = sum(float(e.get("wall_time_s") or 0.0) for e in ds.manifest.get("shards", []))
    return {"path": str(path), "n_trials": ds.n_trials, "duration_ms": ds.duration_ms, "n_channels": ds.n_channels,
            "inputs_preset": preset_name, "output_spikes": int(sum(counts)),
            "output_rate_hz": round(sum(counts) / total_s, 4) if total_s else None,
            "silent_trials": int(sum(c == 0 for c in counts)),
            "simulation_wall_s_sum": round(sim_wall, 1),
            "simulation_s_per_simulated_s": round(sim_wall / total_s, 3) if total_s else None}


def _build(config: StudyConfig, cell: str, out: Path, workers: int | None, client: Any, scheduler: str | None,
           say: Callable[[str], None]) -> dict[str, Any]:
    dcfg = dataset_config_for(config, cell)
    kind, variant = CELLS[cell]
    preset_name = config.inputs_presets.get(cell) or default_preset_name(kind, variant)
    manifest = out / "dataset.json"
    done = False
    if manifest.is_file():
        try:
            m = json.loads(manifest.read_text())
            done = bool(m.get("complete")) and int(m["config"].get("n_trials", -1)) == dcfg.n_trials
        except (OSError, ValueError, KeyError):
            done = False
    t0 = time.monotonic()
    if done:
        say(f"dataset {cell}: complete ({dcfg.n_trials} trials x {dcfg.duration_ms} ms) at {out}")
    else:
        say(f"dataset {cell}: simulating {dcfg.n_trials} trials x {dcfg.duration_ms} ms "
            f"({'L5PC ' + variant if kind == 'l5pc' else 'integrate-and-fire'}, inputs '{preset_name}') into {out}")
        build_dataset(dcfg, out, workers=workers, client=client, scheduler=scheduler, progress=True)
    facts = _dataset_facts(out, preset_name)
    facts["build_wall_s_this_call"] = round(time.monotonic() - t0, 1)
    say(f"dataset {cell}: {facts['n_trials']} trials, {facts['output_spikes']} output spikes "
        f"({facts['output_rate_hz']} Hz, {facts['silent_trials']} silent trials)")
    return facts


# ---------------------------------------------------------------------------------------------- the study
def _write(out_dir: Path, doc: dict[str, Any]) -> None:
    write_json(out_dir / "study.json", doc)
    write_table(doc.get("rows", []), out_dir / "study.csv")


def read_study(study_dir: str | Path) -> dict[str, Any]:
    """Load ``STUDY/study.json``; raise :class:`ConfigError` naming the file if missing or unreadable."""
    return read_json(Path(study_dir) / "study.json", ConfigError, "study directory")


def write_study_figures(rows: list[dict], target_auc: float, fig_dir: Path) -> list[Path]:
    """``summary.png`` (study summary) and ``complexity_panels.png`` (reference 9.7) under ``fig_dir``."""
    done = done_rows(rows)
    if not done:
        return []
    paths = [F.save_figure(F.study_summary(plot_rows(done), target_auc=target_auc),
                           fig_dir / "summary.png")]
    rf = (10, 260) if any(10 <= (r.get("receptive_field") or 0) <= 260 for r in done) else None
    paths.append(F.save_figure(F.complexity_panels(plot_rows(done), group="cell", rf_range=rf),
                               fig_dir / "complexity_panels.png"))
    return paths


def run_study(scale: str = "tiny", out_dir: str | Path = "study_out", *, config: StudyConfig | None = None,
              workers: int | None = None, threads: int | None = None, sim_workers: int | None = None,
              client: Any = None, scheduler: str | None = None, report: bool = True,
              log: Callable[[str], None] | None = None, train: bool = True) -> dict[str, Any]:
    """Run the whole comparison at ``scale`` (or ``config``) into ``out_dir``; return the ``study.json`` dict.

    workers / threads: parallel training processes per sweep and torch threads each (default: one process
    per core, ``cores // workers`` threads; see :func:`~neuroemu.study.sweep.run_sweep`); sim_workers: simulation
    processes (default: all cores). client / scheduler: a Dask cluster for both simulation and training
    (shared file system needed). A rerun with the same config resumes; a different config raises
    :class:`ConfigError` (use another ``out_dir``). ``train=False`` simulates what is missing but trains
    nothing: findings, figures and report of the configurations finished so far.
    """
    cfg = config if config is not None else StudyConfig.for_scale(scale)
    cfg.validate()
    out = Path(out_dir)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "study.json").is_file():
        old = read_study(out).get("config") or {}
        if old and old != cfg.to_dict():
            diff = sorted(k for k in set(old) | set(cfg.to_dict()) if old.get(k) != cfg.to_dict().get(k))
            raise ConfigError(f"{out} holds a study with a different config (fields {diff}); use another --out "
                              f"directory or the same scale and settings to resume it")
    t_start = time.monotonic()
    doc: dict[str, Any] = {"format": "neuroemu-study", "format_version": 1, "status": "running",
                           "scale": cfg.scale, "config": cfg.to_dict(), "plan": study_plan(cfg), "datasets": {},
                           "sweeps": {}, "rows": [], "timings_s": {}, "neuroemu": neuroemu.__version__}
    _write(out, doc)
    say(f"study ({cfg.scale}) in {out}: cells {', '.join(cfg.cells)}; {cfg.description}")
    for cell in cfg.cells:
        t0 = time.monotonic()
        doc["datasets"][cell] = _build(cfg, cell, out / "data" / cell, sim_workers, client, scheduler, say)
        doc["timings_s"][f"dataset_{cell}"] = round(time.monotonic() - t0, 1)
        _write(out, doc)
    for cell in cfg.cells:
        t0 = time.monotonic()
        sw = run_sweep(out / "data" / cell, cfg.sweep_config(cell), out / "sweeps" / cell, workers=workers,
                       threads=threads, client=client, scheduler=scheduler, log=say, train=train)
        rows = [{**r, "cell": cell} for r in sw["rows"]]
        doc["rows"] = [r for r in doc["rows"] if r.get("cell") != cell] + rows
        doc["sweeps"][cell] = {"path": str(out / "sweeps" / cell), "status": sw["status"],
                               "configurations": len(rows), "trained_now": len(sw.get("trained_now", []))}
        doc["timings_s"][f"sweep_{cell}"] = round(time.monotonic() - t0, 1)
        _write(out, doc)
    doc["findings"] = findings(doc["rows"], cfg.target_auc, cfg.auc_margin, cells=list(cfg.cells),
                               min_test_spikes=cfg.min_test_spikes)
    incomplete = [c for c, s in doc["sweeps"].items() if s["status"] != "complete"]
    doc["status"] = "complete" if not incomplete else \
        f"incomplete: sweeps {incomplete} have failed or untrained configurations"
    doc["timings_s"]["total_this_call"] = round(time.monotonic() - t_start, 1)
    _write(out, doc)
    write_study_figures(doc["rows"], cfg.target_auc, out / "figures")
    for cell, f in doc["findings"]["cells"].items():
        say("  " + f["summary"])
    say(f"published finding {doc['findings']['verdict']}")
    if report:
        index = report_study(out)
        doc["report"] = str(index)
        _write(out, doc)
        say(f"report: {index}")
    return doc
