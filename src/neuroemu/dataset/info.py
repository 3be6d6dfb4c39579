"""Dataset summaries: trials, hours, output firing rate, ISI CV, input rates and config."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neuroemu.dataset.format import shard_relpath
from neuroemu.dataset.manifest import load_manifest
from neuroemu.errors import DatasetError


def _spike_times(path: Path) -> np.ndarray:
    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f["spike_times_ms"][()], dtype=np.float64)
    except (OSError, KeyError) as e:
        raise DatasetError(f"{path}: corrupt or truncated shard ({e})") from None


def dataset_info(path: str | Path, isi: bool = True) -> dict[str, Any]:
    """Summarise a dataset from its manifest (and, for ISI statistics, each shard's spike times).

    Returns a dict: n_trials (finished), n_trials_target, hours, output_rate_hz, isi_cv (pooled within-trial
    inter-spike intervals; None with fewer than 2 ISIs), silent_trials, trials_over_24_spikes (excluded by
    the published evaluation), spikes_per_trial (min / median / max), exc_rate_hz / inh_rate_hz (mean per
    channel, presynaptic), exc/inh_transmitted_rate_hz, n_exc, n_inh, duration_ms, bytes, config, software.
    """
    path = Path(path)
    m = load_manifest(path)
    entries = sorted(m["shards"], key=lambda e: int(e["index"]))
    n = len(entries)
    t_s = int(m["duration_ms"]) / 1000.0
    n_exc, n_inh = int(m["n_exc"]), int(m["n_inh"])
    spikes = np.array([int(e.get("n_output_spikes", 0)) for e in entries], dtype=np.int64)
    total_s = n * t_s

    def rate(key: str, n_ch: int) -> float | None:
        if n == 0 or n_ch == 0:
            return None
        return float(sum(int(e.get(key, 0)) for e in entries) / (total_s * n_ch))

    cv = None
    if isi and n:
        isis = []
        for e in entries:
            st = _spike_times(path / e.get("file", shard_relpath(int(e["index"]))))
            if st.size > 1:
                isis.append(np.diff(np.sort(st)))
        if isis:
            allisi = np.concatenate(isis)
            if allisi.size > 1 and allisi.mean() > 0:
                cv = float(allisi.std() / allisi.mean())
    return {
        "path": str(path),
        "n_trials": n,
        "n_trials_target": int(m["config"].get("n_trials", n)),
        "complete": bool(m.get("complete", n == int(m["config"].get("n_trials", n)))),
        "duration_ms": int(m["duration_ms"]),
        "hours": total_s / 3600.0,
        "n_exc": n_exc,
        "n_inh": n_inh,
        "output_rate_hz": float(spikes.sum() / total_s) if n else None,
        "isi_cv": cv,
        "total_output_spikes": int(spikes.sum()),
        "silent_trials": int((spikes == 0).sum()),
        "trials_over_24_spikes": int((spikes > 24).sum()),
        "spikes_per_trial": ({"min": int(spikes.min()), "median": float(np.median(spikes)), "max": int(spikes.max())}
                             if n else None),
        "exc_rate_hz": rate("n_exc_events", n_exc),
        "inh_rate_hz": rate("n_inh_events", n_inh),
        "exc_transmitted_rate_hz": rate("n_exc_transmitted", n_exc),
        "inh_transmitted_rate_hz": rate("n_inh_transmitted", n_inh),
        "bytes": int(sum(int(e.get("bytes", 0)) for e in entries)),
        "sim_wall_time_s": float(sum(float(e.get("wall_time_s", 0.0)) for e in entries)),
        "config": m["config"],
        "software": m.get("software", {}),
    }


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def format_info(info: dict[str, Any], show_config: bool = True) -> str:
    """Human-readable text of :func:`dataset_info`'s result."""
    import yaml

    cell = info["config"].get("cell", {})
    lines = [
        f"dataset        {info['path']}",
        f"cell           {cell.get('kind')}" + (f" ({cell.get('variant')})" if cell.get("kind") == "l5pc" else ""),
        f"trials         {info['n_trials']} of {info['n_trials_target']}"
        + ("" if info["complete"] else "  (unfinished: rerun the simulate command to resume)"),
        f"duration       {info['duration_ms']} ms per trial, {info['hours']:.3f} h in all",
        f"channels       {info['n_exc']} exc + {info['n_inh']} inh",
        f"output rate    {_fmt(info['output_rate_hz'])} Hz ({info['total_output_spikes']} spikes; "
        f"silent trials {info['silent_trials']}; trials with > 24 spikes {info['trials_over_24_spikes']})",
        f"ISI CV         {_fmt(info['isi_cv'])}",
        f"input rates    exc {_fmt(info['exc_rate_hz'])} Hz, inh {_fmt(info['inh_rate_hz'])} Hz per channel "
        f"(transmitted: exc {_fmt(info['exc_transmitted_rate_hz'])}, inh {_fmt(info['inh_transmitted_rate_hz'])})",
        f"size           {info['bytes'] / 1e6:.1f} MB; simulation wall time {info['sim_wall_time_s'] / 3600:.2f} h",
    ]
    if show_config:
        lines.append("config:")
        lines += ["  " + ln for ln in yaml.safe_dump(info["config"], sort_keys=True).rstrip().splitlines()]
        if info.get("software"):
            lines.append("software: " + ", ".join(f"{k} {v}" for k, v in sorted(info["software"].items())
                                                  if k != "platform"))
    return "\n".join(lines)
