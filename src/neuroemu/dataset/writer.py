"""Writing shards atomically and keeping the manifest (``dataset.json``) up to date, with resume.

:func:`write_shard` writes one trial as ``shards/trial_XXXXXX.h5.tmp`` and renames it into place, so a shard
with its final name is always complete. Any process can call it (workers write their own shards).
:class:`DatasetWriter` owns the manifest: it is the only writer of ``dataset.json`` (atomic replace), and on
opening an existing directory it removes ``.tmp`` leftovers, keeps the shards the manifest lists, verifies and
adopts complete shards that a killed run wrote but never recorded, and reports which trials remain to do.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neuroemu.dataset.format import (FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, SHARD_FORMAT_NAME, SHARDS_DIR,
                                     TMP_SUFFIX, DatasetConfig, array_sha256, atomic_write_text, file_sha256,
                                     shard_index, shard_relpath, software_versions)
from neuroemu.dataset.trial import Trial
from neuroemu.errors import DatasetError

GZIP_LEVEL = 4
MAX_CHUNK_ROWS = 1 << 16


def _put(group: h5py.Group, name: str, arr: np.ndarray, compress: bool) -> None:
    arr = np.ascontiguousarray(arr)
    kw: dict[str, Any] = {"track_times": False}
    if compress and arr.size > 0:
        if arr.ndim == 1:
            chunks = (min(arr.shape[0], MAX_CHUNK_ROWS),)
        elif name.startswith("dend"):
            chunks = (arr.shape[0], min(arr.shape[1], 1000))
        else:
            chunks = (min(arr.shape[0], MAX_CHUNK_ROWS),) + tuple(arr.shape[1:])
        kw.update(compression="gzip", compression_opts=GZIP_LEVEL, shuffle=True, chunks=chunks)
    ds = group.create_dataset(name, data=arr, **kw)
    ds.attrs["sha256"] = array_sha256(arr)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def check_trial(trial: Trial, n_exc: int, n_inh: int, duration_ms: int, where: str = "trial") -> None:
    """Check a trial's shapes against the dataset (raise :class:`DatasetError` naming the field)."""
    where = f"{where} {trial.index}"
    for name in ("soma_v_1ms", "nexus_v_1ms"):
        a = getattr(trial, name)
        if a.shape != (duration_ms,):
            raise DatasetError(f"{where}: {name} has shape {a.shape}, expected ({duration_ms},)")
    try:
        trial.inputs.validate(n_exc, duration_ms, source=where, n_inh=n_inh)
    except Exception as e:
        raise DatasetError(str(e)) from None
    for name, ev in (("exc_transmitted", trial.inputs.exc), ("inh_transmitted", trial.inputs.inh)):
        m = getattr(trial, name)
        if m is not None and np.asarray(m).shape != (ev.shape[0],):
            raise DatasetError(f"{where}: {name} has shape {np.asarray(m).shape}, expected ({ev.shape[0]},)")
    if trial.dend_v_1ms is not None and (trial.dend_v_1ms.ndim != 2 or trial.dend_v_1ms.shape[1] != duration_ms):
        raise DatasetError(f"{where}: dend_v_1ms has shape {trial.dend_v_1ms.shape}, expected (n_seg, {duration_ms})")


def write_shard(out_dir: str | Path, trial: Trial, *, n_exc: int, n_inh: int, dataset_seed: int,
                config_json: str) -> dict[str, Any]:
    """Write ``trial`` to ``out_dir/shards/trial_XXXXXX.h5`` atomically; return its manifest entry.

    The entry holds index, file, sha256, bytes and event/spike counts. Bytes depend only on the trial's
    content and ``config_json`` (no timestamps).
    """
    out_dir = Path(out_dir)
    final = out_dir / shard_relpath(trial.index)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + TMP_SUFFIX)
    check_trial(trial, n_exc, n_inh, trial.duration_ms, where=str(final))
    attrs = {"format": SHARD_FORMAT_NAME, "format_version": FORMAT_VERSION, "trial_index": int(trial.index),
             "seed": int(trial.seed), "dataset_seed": int(dataset_seed), "duration_ms": trial.duration_ms,
             "n_exc": int(n_exc), "n_inh": int(n_inh), "config_json": config_json}
    for k, v in trial.attrs.items():
        attrs.setdefault(f"attr_{k}" if k in attrs else k, v)
    try:
        with h5py.File(tmp, "w", track_order=False) as f:
            for k in sorted(attrs):
                v = attrs[k]
                f.attrs[k] = np.int64(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
            g = f.create_group("inputs", track_order=False)
            _put(g, "exc_spikes", trial.inputs.exc.astype(np.int32), compress=True)
            _put(g, "inh_spikes", trial.inputs.inh.astype(np.int32), compress=True)
            if trial.exc_transmitted is not None:
                _put(g, "exc_transmitted", np.asarray(trial.exc_transmitted, dtype=bool), compress=True)
            if trial.inh_transmitted is not None:
                _put(g, "inh_transmitted", np.asarray(trial.inh_transmitted, dtype=bool), compress=True)
            _put(f, "soma_v_1ms", np.asarray(trial.soma_v_1ms, dtype=np.float32), compress=False)
            _put(f, "nexus_v_1ms", np.asarray(trial.nexus_v_1ms, dtype=np.float32), compress=False)
            _put(f, "spike_times_ms", np.asarray(trial.spike_times_ms, dtype=np.float64).ravel(), compress=False)
            if trial.dend_v_1ms is not None:
                _put(f, "dend_v_1ms", np.asarray(trial.dend_v_1ms, dtype=np.float16), compress=True)
            gen = f.create_group("generator", track_order=False)
            scalars = {k: _plain(v) for k, v in trial.generator_params.items() if not isinstance(v, np.ndarray)}
            gen.attrs["params_json"] = json.dumps(scalars, sort_keys=True, separators=(",", ":"))
            for k in sorted(trial.generator_params):
                v = trial.generator_params[k]
                if isinstance(v, np.ndarray):
                    _put(gen, k, v, compress=False)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return {
        "index": int(trial.index),
        "file": shard_relpath(trial.index),
        "sha256": file_sha256(final),
        "bytes": final.stat().st_size,
        "n_output_spikes": int(np.asarray(trial.spike_times_ms).size),
        "n_exc_events": int(trial.inputs.exc.shape[0]),
        "n_inh_events": int(trial.inputs.inh.shape[0]),
        "n_exc_transmitted": int(trial.inputs.exc.shape[0] if trial.exc_transmitted is None
                                 else np.count_nonzero(trial.exc_transmitted)),
        "n_inh_transmitted": int(trial.inputs.inh.shape[0] if trial.inh_transmitted is None
                                 else np.count_nonzero(trial.inh_transmitted)),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read ``DIR/dataset.json`` (or the file itself); raise :class:`DatasetError` naming it on any problem."""
    path = Path(path)
    mpath = path / MANIFEST_NAME if path.is_dir() else path
    if not mpath.is_file():
        raise DatasetError(f"{mpath}: no dataset manifest here (is {path} a neuroemu dataset directory?)")
    try:
        m = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{mpath}: unreadable manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise DatasetError(f"{mpath}: not a neuroemu dataset manifest (format {m.get('format')!r})"
                           if isinstance(m, dict) else f"{mpath}: not a neuroemu dataset manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{mpath}: format_version {m.get('format_version')!r} is not supported "
                           f"(this neuroemu reads version {FORMAT_VERSION})")
    for key in ("config", "n_exc", "n_inh", "duration_ms", "shards"):
        if key not in m:
            raise DatasetError(f"{mpath}: manifest lacks the key {key!r}")
    return m


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _diff_keys(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k) or (k in a) != (k in b):
            out.append(f"{prefix}{k}")
    return out


def solver_fingerprint(solver: dict | None) -> str | None:
    """:meth:`SolverConfig.fingerprint` of a config's ``solver`` dict (None: no solver; "unknown": unreadable)."""
    if solver is None:
        return None
    from neuroemu.simulation.solver import SolverConfig

    try:
        return SolverConfig.from_dict(dict(solver)).fingerprint()
    except (ValueError, TypeError):
        return "unknown"


def _solver_refusal(out_dir: Path, old: dict | None, new: dict | None, diff: list[str]) -> str:
    """Why a dataset is not extended with trials of other solver numerics, and what to do instead."""
    return (f"{out_dir}: holds a dataset simulated with other solver settings (differs in {', '.join(diff)}; "
            f"solver fingerprint of the dataset {solver_fingerprint(old)}, of this run {solver_fingerprint(new)}). "
            "Adding trials would mix two numerics in one dataset, so it is not extended. Either write to another "
            "output directory (--out), or extend it with its own solver settings: "
            f"DatasetConfig(..., solver={json.dumps(old, sort_keys=True)}) (from Python; a dataset of the default "
            "before the sim-speed change has use_tables=true: SolverConfig.old_default())")


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
        for p in list(shards.glob("*" + TMP_SUFFIX)) + [self.out_dir / (MANIFEST_NAME + TMP_SUFFIX)]:
            if p.exists():
                p.unlink()
        mpath = self.out_dir / MANIFEST_NAME
        if mpath.exists():
            old = load_manifest(mpath)
            new_cfg = self.config.trial_invariant_dict()
            old_cfg = dict(old["config"])
            old_n = int(old_cfg.pop("n_trials", 0))
            diff = _diff_keys(old_cfg, new_cfg)
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
        from neuroemu.dataset.verify import verify_shard

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
    def write(self, trial: Trial, wall_time_s: float | None = None) -> dict[str, Any]:
        """Write a trial's shard from this process and record it."""
        entry = write_shard(self.out_dir, trial, n_exc=self.n_exc, n_inh=self.n_inh,
                            dataset_seed=self.config.seed, config_json=self.config_json)
        if wall_time_s is not None:
            entry["wall_time_s"] = round(float(wall_time_s), 3)
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
        atomic_write_text(self.out_dir / MANIFEST_NAME, json.dumps(self.manifest(), indent=1, sort_keys=True))
        self._last_flush = now
        self._dirty = False

    def close(self) -> None:
        """Write the final manifest."""
        self.flush(force=True)
