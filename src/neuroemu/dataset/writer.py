"""Keeping the manifest (``dataset.json``) of a dataset being built up to date, with resume.

Shards are written by :func:`neuroemu.dataset.shard.write_shard` (any process: workers write their own).
:class:`DatasetWriter` owns the manifest: it is the only writer of ``dataset.json`` (atomic replace), and on
opening an existing directory it removes ``.tmp`` leftovers, keeps the shards the manifest lists, verifies and
adopts complete shards that a killed run wrote but never recorded, and reports which trials remain to do.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
import warnings
from pathlib import Path
from typing import Any

from neuroemu.dataset.format import (FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, SHARDS_DIR, TMP_SUFFIX,
                                     DatasetConfig, shard_index, shard_relpath, software_versions)
from neuroemu.dataset.manifest import diff_keys, load_manifest
from neuroemu.dataset.shard import write_shard
from neuroemu.dataset.trial import Trial
from neuroemu.dataset.verify import verify_shard
from neuroemu.errors import DatasetError
from neuroemu.io import write_json
from neuroemu.simulation.solver import SolverConfig

__all__ = ["DatasetWriter"]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def solver_fingerprint(solver: "SolverConfig | dict | None") -> str | None:
    """:meth:`SolverConfig.fingerprint` of a config's solver (a :class:`SolverConfig` or its dict form; None:
    no solver; "unknown": unreadable)."""
    if solver is None:
        return None
    if isinstance(solver, SolverConfig):
        return solver.fingerprint()
    try:
        return SolverConfig.from_dict(dict(solver)).fingerprint()
    except (ValueError, TypeError):
        return "unknown"


def _solver_refusal(out_dir: Path, old: dict | None, new: dict | None, diff: list[str]) -> str:
    """Why a dataset is not extended with trials of other solver numerics, and what to do instead."""
    return (f"{out_dir}: holds a dataset simulated with other solver settings (differs in {', '.join(diff)}; "
            f"solver fingerprint of the dataset {solver_fingerprint(old)}, of this run {solver_fingerprint(new)}). "
            "Adding trials would mix two numerics in one dataset, so it is not extended. Either write to another "
            "output directory (--out), or extend it with its own solver settings: 'neuroemu simulate ... --solver "
            f"FILE' with FILE holding {json.dumps(old, sort_keys=True)} ('--solver old-default' for a dataset of the "
            "default before the sim-speed change, use_tables=true), or DatasetConfig(..., solver=...) from Python "
            "(SolverConfig.old_default() for that one)")


class DatasetWriter:
    """Owner of a dataset directory's manifest during a build (simulation or import).

    Use :meth:`prepare` once (returns the trial indices still to do), then :meth:`write` (in this process) or
    :meth:`record` (a shard a worker wrote) per finished trial, and :meth:`close` at the end. The manifest is
    rewritten atomically at most every ``flush_interval_s`` seconds and on close.
    """

    def __init__(self, out_dir: str | Path, config: DatasetConfig, *, n_exc: int, n_inh: int,
                 segments: Any = None, flush_interval_s: float = 2.0) -> None:
        self.out_dir = Path(out_dir)
        self.config = config
        self.n_exc, self.n_inh = int(n_exc), int(n_inh)
        self.segments = segments
        self.flush_interval_s = flush_interval_s
        self.config_json = config.trial_config_json()
        self.entries: dict[int, dict[str, Any]] = {}
        self.created = _now()
        self._last_flush = 0.0
        self._dirty = False

    # ---- opening / resuming ---------------------------------------------------------------------------------
    def prepare(self) -> list[int]:
        """Create or resume the directory; return the sorted trial indices that still need to be written."""
        shards = self.out_dir / SHARDS_DIR
        shards.mkdir(parents=True, exist_ok=True)
        leftovers = list(shards.glob("*" + TMP_SUFFIX)) + list(self.out_dir.glob(MANIFEST_NAME + ".*" + TMP_SUFFIX))
        for p in leftovers + [self.out_dir / (MANIFEST_NAME + TMP_SUFFIX)]:
            if p.exists():
                p.unlink()
        mpath = self.out_dir / MANIFEST_NAME
        if mpath.exists():
            old = load_manifest(mpath)
            new_cfg = self.config.trial_invariant_dict()
            old_cfg = dict(old["config"])
            old_n = int(old_cfg.pop("n_trials", 0))
            diff = diff_keys(old_cfg, new_cfg)
            if any(d == "solver" or d.startswith("solver.") for d in diff):
                raise DatasetError(_solver_refusal(self.out_dir, old_cfg.get("solver"), new_cfg.get("solver"), diff))
            if diff:
                raise DatasetError(f"{self.out_dir}: holds a dataset made with a different config (differs in "
                                   f"{', '.join(diff)}); use another output directory")
            if (int(old["n_exc"]), int(old["n_inh"])) != (self.n_exc, self.n_inh):
                raise DatasetError(f"{self.out_dir}: dataset has {old['n_exc']} exc / {old['n_inh']} inh channels, "
                                   f"this cell has {self.n_exc} / {self.n_inh}")
            if self.config.n_trials < old_n:
                raise DatasetError(f"{self.out_dir}: dataset targets {old_n} trials; ask for at least that many "
                                   f"(got {self.config.n_trials}) to resume it")
            self.created = old.get("created", self.created)
            for e in old["shards"]:
                self.entries[int(e["index"])] = e
        self._scan(shards)
        self.flush(force=True)
        return [i for i in range(self.config.n_trials) if i not in self.entries]

    def _scan(self, shards: Path) -> None:
        on_disk = {}
        for p in shards.iterdir():
            idx = shard_index(p.name)
            if idx is not None:
                on_disk[idx] = p
        for idx in [i for i in self.entries if i not in on_disk or i >= self.config.n_trials]:
            del self.entries[idx]
        for idx, p in sorted(on_disk.items()):
            if idx >= self.config.n_trials:
                continue
            e = self.entries.get(idx)
            if e is not None and p.stat().st_size == int(e.get("bytes", -1)):
                continue  # listed, complete (written atomically); `verify` checks the hash
            try:  # a shard the manifest does not list (run killed before recording it), or changed since
                info = verify_shard(p, expected_config_json=self.config_json, expected_index=idx,
                                    n_exc=self.n_exc, n_inh=self.n_inh)
            except DatasetError as err:
                warnings.warn(f"{p}: not adopted, will be simulated again ({err})", stacklevel=2)
                self.entries.pop(idx, None)
                continue
            self.entries[idx] = {**info, "index": idx, "file": shard_relpath(idx)}

    # ---- recording --------------------------------------------------------------------------------------------
    def write(self, trial: Trial, wall_time_s: float | None = None,
              cpu_time_s: float | None = None) -> dict[str, Any]:
        """Write a trial's shard from this process and record it (with the trial's wall and CPU seconds)."""
        entry = write_shard(self.out_dir, trial, n_exc=self.n_exc, n_inh=self.n_inh,
                            dataset_seed=self.config.seed, config_json=self.config_json)
        if wall_time_s is not None:
            entry["wall_time_s"] = round(float(wall_time_s), 3)
        if cpu_time_s is not None:
            entry["cpu_time_s"] = round(float(cpu_time_s), 3)
        self.record(entry)
        return entry

    def record(self, entry: dict[str, Any]) -> None:
        """Record a finished shard (an entry returned by :func:`write_shard`)."""
        self.entries[int(entry["index"])] = dict(entry)
        self._dirty = True
        self.flush()

    @property
    def n_done(self) -> int:
        """Number of trials (below n_trials) with a finished shard."""
        return sum(1 for i in self.entries if i < self.config.n_trials)

    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "solver_fingerprint": solver_fingerprint(self.config.solver),
            "n_exc": self.n_exc,
            "n_inh": self.n_inh,
            "duration_ms": int(self.config.duration_ms),
            "segments": self.segments,
            "software": software_versions(),
            "created": self.created,
            "updated": _now(),
            "complete": self.n_done == self.config.n_trials,
            "shards": [self.entries[i] for i in sorted(self.entries)],
        }

    def flush(self, force: bool = False) -> None:
        """Rewrite ``dataset.json`` atomically (throttled unless ``force``)."""
        now = time.monotonic()
        if not force and (not self._dirty or now - self._last_flush < self.flush_interval_s):
            return
        write_json(self.out_dir / MANIFEST_NAME, self.manifest(), sort_keys=True)
        self._last_flush = now
        self._dirty = False

    def close(self) -> None:
        """Write the final manifest."""
        self.flush(force=True)
