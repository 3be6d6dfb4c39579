"""On-disk layout of a neuroemu dataset, its configuration and shared helpers.

A dataset is a directory::

    DIR/dataset.json            manifest: format, format_version, config (DatasetConfig), n_exc, n_inh,
                                duration_ms, segments (segment table or null), software versions,
                                shards (one entry per finished trial: file, sha256, bytes, counts, wall time)
    DIR/shards/trial_XXXXXX.h5  one HDF5 file per trial (schema below), written as ``.h5.tmp`` then renamed

Shard schema (FORMAT_VERSION 1); every dataset carries a ``sha256`` attribute of its raw array bytes::

    /                       attrs: config_json, dataset_seed, duration_ms, format ("neuroemu-trial"),
                                   format_version, n_exc, n_inh, seed, trial_index (+ import provenance)
    /inputs/exc_spikes      int32 (n, 2) (channel, time_ms), sorted by (time, channel)
    /inputs/inh_spikes      int32 (m, 2)
    /inputs/exc_transmitted bool (n,)  only when release failures were simulated
    /inputs/inh_transmitted bool (m,)
    /soma_v_1ms             float32 (T,)  mV at t = 0, 1, ..., T-1 ms
    /nexus_v_1ms            float32 (T,)
    /spike_times_ms         float64 (k,)
    /dend_v_1ms             float16 (n_segments, T)  only with ``record_dendrites``
    /generator              attrs: params_json (scalars); datasets: array parameters (e.g. exc_per_100ms)

Shards hold nothing that depends on the wall clock, the worker or the host: the same config and seed give the
same bytes (``track_times=False``, attributes written in sorted order, fixed chunking and gzip level).
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroemu.cells.config import CellConfig
from neuroemu.config import Config
from neuroemu.errors import ConfigError
from neuroemu.inputs.generator import InputGeneratorConfig, default_preset_name, preset
from neuroemu.simulation.solver import SolverConfig

FORMAT_NAME = "neuroemu-dataset"
SHARD_FORMAT_NAME = "neuroemu-trial"
FORMAT_VERSION = 1
MANIFEST_NAME = "dataset.json"
SHARDS_DIR = "shards"
SHARD_RE = re.compile(r"^trial_(\d{6,})\.h5$")
TMP_SUFFIX = ".tmp"

REQUIRED_DATASETS = ("inputs/exc_spikes", "inputs/inh_spikes", "soma_v_1ms", "nexus_v_1ms", "spike_times_ms")
OPTIONAL_DATASETS = ("inputs/exc_transmitted", "inputs/inh_transmitted", "dend_v_1ms")


def shard_name(index: int) -> str:
    """File name of trial ``index``'s shard: ``trial_000042.h5``."""
    return f"trial_{int(index):06d}.h5"


def shard_relpath(index: int) -> str:
    """Path of a shard relative to the dataset directory."""
    return f"{SHARDS_DIR}/{shard_name(index)}"


def shard_index(name: str) -> int | None:
    """Trial index encoded in a shard file name, or ``None`` if the name is not a shard's."""
    m = SHARD_RE.match(name)
    return int(m.group(1)) if m else None


@dataclass
class DatasetConfig(Config):
    """Everything that determines a dataset's content.

    cell: the cell (:class:`~neuroemu.cells.config.CellConfig`; a dict such as ``{"kind": "iaf"}`` is converted).
    generator: input generator settings; ``None`` picks the cell's default preset (imported datasets keep None).
    n_trials, duration_ms: number and length of trials. seed: dataset seed; trial i uses
    ``SeedSequence([seed, i])``. release_probability: ``None`` = every event transmitted (the published
    model as built, reference 4.1), else a Bernoulli transmission probability. record_dendrites: store all
    segment voltages (float16). source: provenance of imported datasets (``None`` for simulated ones).
    solver: NEURON solver settings (:class:`~neuroemu.simulation.solver.SolverConfig`; filled with the
    defaults for simulated L5PC datasets so the dataset records how it was integrated).

    Every path that makes a dataset stores :meth:`resolved` (the morphology's hash filled in), so a dataset
    made by ``neuroemu simulate``, the quickstart or a study can be extended by any of them.
    """

    cell: CellConfig = field(default_factory=CellConfig)
    generator: InputGeneratorConfig | None = None
    n_trials: int = 1
    duration_ms: int = 6000
    seed: int = 0
    release_probability: float | None = None
    record_dendrites: bool = False
    source: dict[str, Any] | None = None
    solver: SolverConfig | None = None

    def __post_init__(self) -> None:
        for name, cls in (("generator", InputGeneratorConfig), ("cell", CellConfig), ("solver", SolverConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):  # a dict given directly (from_dict converts nested configs itself)
                setattr(self, name, cls.from_dict(value, _where=f"DatasetConfig.{name}"))
        if self.solver is None and self.source is None and self.cell.kind == "l5pc":
            self.solver = SolverConfig()
        if self.generator is None and self.source is None:
            self.generator = preset(default_preset_name(self.cell.kind, self.cell.variant))
        self.validate()

    def validate(self) -> "DatasetConfig":
        """Check the values; raise :class:`ConfigError` naming the field at fault."""
        if not isinstance(self.n_trials, int) or self.n_trials < 0:
            raise ConfigError(f"DatasetConfig.n_trials must be an integer >= 0, got {self.n_trials!r}")
        if not isinstance(self.duration_ms, int) or self.duration_ms <= 0:
            raise ConfigError(f"DatasetConfig.duration_ms must be an integer > 0, got {self.duration_ms!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"DatasetConfig.seed must be an integer >= 0, got {self.seed!r}")
        p = self.release_probability
        if p is not None and not (0.0 <= float(p) <= 1.0):
            raise ConfigError(f"DatasetConfig.release_probability must be in [0, 1] or null, got {p!r}")
        if self.generator is not None:
            self.generator.validate()
        return self

    def resolved(self) -> "DatasetConfig":
        """This config with its provenance complete: the sha256 of the morphology (a file's bytes, or the
        built-in cell's generated geometry) recorded in ``cell.morphology_sha256``."""
        return self.replace(cell=self.cell.with_morphology_hash())

    def simulator_spec(self) -> dict[str, Any]:
        """The cell dict handed to the simulator factory, with the NEURON solver settings under ``"solver"``."""
        spec = self.cell.to_dict()
        if self.solver is not None:
            spec["solver"] = self.solver.to_dict()
        return spec

    def trial_invariant_dict(self) -> dict[str, Any]:
        """The config without ``n_trials`` (stored in every shard; a dataset may be extended later)."""
        d = self.to_dict()
        d.pop("n_trials", None)
        return d

    def trial_config_json(self) -> str:
        """Canonical JSON of :meth:`trial_invariant_dict` (sorted keys, no whitespace variation)."""
        return json.dumps(self.trial_invariant_dict(), sort_keys=True, separators=(",", ":"))


def trial_seeds(dataset_seed: int, index: int) -> tuple[np.random.Generator, int]:
    """Random streams of trial ``index``: (input generator RNG, simulator seed).

    Both derive from ``SeedSequence([dataset_seed, index])``: its first spawned child seeds the inputs, the
    second gives the simulator's 32-bit seed (used for release draws). Independent of workers and order.
    """
    ss = np.random.SeedSequence([int(dataset_seed), int(index)])
    child_inputs, child_sim = ss.spawn(2)
    return np.random.default_rng(child_inputs), int(child_sim.generate_state(1, np.uint32)[0])


def array_sha256(arr: np.ndarray) -> str:
    """sha256 of an array's raw C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of Python, neuroemu and the packages that shape a dataset's bytes and content."""
    from importlib import metadata

    import h5py

    out = {"python": platform.python_version(), "platform": platform.platform(),
           "hdf5": h5py.version.hdf5_version}
    for pkg in ("neuroemu", "numpy", "scipy", "h5py", "neuron"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
