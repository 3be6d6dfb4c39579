"""One trial on disk: the shard file ``shards/trial_XXXXXX.h5`` (schema in :mod:`neuroemu.dataset.format`).

:func:`write_shard` writes a trial as ``trial_XXXXXX.h5.tmp`` and renames it into place, so a shard with its
final name is always complete; :func:`read_shard` reads one back (checking every array's hash);
:func:`check_trial` checks a trial's shapes against its dataset. Any process may call these.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neuroemu.dataset.format import (FORMAT_VERSION, REQUIRED_DATASETS, SHARD_FORMAT_NAME, TMP_SUFFIX, array_sha256,
                                     file_sha256, shard_relpath)
from neuroemu.dataset.trial import Trial
from neuroemu.errors import DatasetError
from neuroemu.inputs.spikes import InputSpikes

__all__ = ["write_shard", "read_shard", "check_trial", "shard_summary"]

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
    return {"index": int(trial.index), "file": shard_relpath(trial.index), **shard_summary(final, trial)}


def shard_summary(path: Path, trial: Trial, sha256: str | None = None) -> dict[str, Any]:
    """A shard's manifest facts: file hash (``sha256`` when already known) and size, output spikes, input and
    transmitted event counts."""
    return {
        "sha256": sha256 or file_sha256(path),
        "bytes": path.stat().st_size,
        "n_output_spikes": int(np.asarray(trial.spike_times_ms).size),
        "n_exc_events": int(trial.inputs.exc.shape[0]),
        "n_inh_events": int(trial.inputs.inh.shape[0]),
        "n_exc_transmitted": int(trial.inputs.exc.shape[0] if trial.exc_transmitted is None
                                 else np.count_nonzero(trial.exc_transmitted)),
        "n_inh_transmitted": int(trial.inputs.inh.shape[0] if trial.inh_transmitted is None
                                 else np.count_nonzero(trial.inh_transmitted)),
    }


def _read(f: h5py.File, name: str, path: Path, check: bool) -> np.ndarray:
    ds = f[name]
    arr = ds[()]
    if check:
        want = ds.attrs.get("sha256")
        if want is None:
            raise DatasetError(f"{path}: dataset '{name}' lacks its sha256 attribute")
        if array_sha256(arr) != want:
            raise DatasetError(f"{path}: dataset '{name}' is corrupt (content hash mismatch)")
    return arr


def read_shard(path: str | Path, *, dend: bool = True, check: bool = True) -> Trial:
    """Read one shard into a :class:`Trial`.

    dend: also load the dendritic voltages (if stored). check: verify every array against its stored hash.
    A missing, truncated or corrupt shard raises :class:`DatasetError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: shard file is missing")
    try:
        with h5py.File(path, "r") as f:
            a = dict(f.attrs)
            if a.get("format") != SHARD_FORMAT_NAME:
                raise DatasetError(f"{path}: not a neuroemu trial shard (format {a.get('format')!r})")
            for name in REQUIRED_DATASETS:
                if name not in f:
                    raise DatasetError(f"{path}: shard lacks dataset '{name}' (truncated or incomplete)")
            exc = _read(f, "inputs/exc_spikes", path, check)
            inh = _read(f, "inputs/inh_spikes", path, check)
            exc_tx = _read(f, "inputs/exc_transmitted", path, check) if "inputs/exc_transmitted" in f else None
            inh_tx = _read(f, "inputs/inh_transmitted", path, check) if "inputs/inh_transmitted" in f else None
            soma = _read(f, "soma_v_1ms", path, check)
            nexus = _read(f, "nexus_v_1ms", path, check)
            spikes = _read(f, "spike_times_ms", path, check)
            dv = _read(f, "dend_v_1ms", path, check) if dend and "dend_v_1ms" in f else None
            params: dict[str, Any] = {}
            if "generator" in f:
                g = f["generator"]
                params.update(json.loads(g.attrs.get("params_json", "{}")))
                for k in g:
                    params[k] = _read(g, k, path, check)
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise DatasetError(f"{path}: corrupt or truncated shard ({e})") from None
    known = {"format", "format_version", "trial_index", "seed", "dataset_seed", "duration_ms", "n_exc", "n_inh",
             "config_json"}
    extra = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in a.items() if k not in known}
    extra.update({k: int(a[k]) for k in ("dataset_seed", "n_exc", "n_inh") if k in a})
    extra["config_json"] = a.get("config_json", "")
    try:
        trial = Trial(index=int(a["trial_index"]), seed=int(a["seed"]), inputs=InputSpikes(exc, inh),
                      soma_v_1ms=soma, nexus_v_1ms=nexus, spike_times_ms=spikes, exc_transmitted=exc_tx,
                      inh_transmitted=inh_tx, dend_v_1ms=dv, generator_params=params, attrs=extra)
    except (KeyError, ValueError) as e:
        raise DatasetError(f"{path}: malformed shard ({e})") from None
    if soma.shape != (int(a.get("duration_ms", -1)),):
        raise DatasetError(f"{path}: soma_v_1ms has {soma.shape} samples, attribute duration_ms says "
                           f"{a.get('duration_ms')}")
    return trial
