"""Pretrained emulators of the built-in cell, shipped inside the package: use an emulated L5PC without
simulating or training anything.

>>> import neuroemu.pretrained as P                                        # doctest: +SKIP
>>> P.available()                                                           # doctest: +SKIP
['builtin-ampa', 'builtin-nmda', 'builtin-nmda-small']
>>> emu = P.load("builtin-nmda")                                            # doctest: +SKIP
>>> out = emu.predict(inputs, duration_ms=6000)                             # doctest: +SKIP

Each emulator is a folder ``neuroemu/pretrained/<name>/`` laid out as a run directory: ``run.json`` (model,
training config, the dataset's facts and split; no path), ``checkpoints/best.pt`` (the weights) and ``card.json``
(what it emulates, how it was trained, on how much data, its test metrics and the command that measured them).
:func:`export` makes one from a finished run.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from neuroemu.errors import CheckpointError, ConfigError
from neuroemu.io import read_json, write_json
from neuroemu.models.checkpoint import checkpoint_path, load_checkpoint, read_run
from neuroemu.models.emulator import Emulator

__all__ = ["HOME", "available", "path", "card", "load", "export"]

#: Where the shipped emulators live.
HOME = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the shipped emulators."""
    return sorted(p.name for p in HOME.iterdir() if (p / "card.json").is_file() and (p / "run.json").is_file())


def path(name: str) -> Path:
    """The folder of emulator ``name`` (usable wherever a run directory is: ``evaluate``, ``Emulator.load``);
    an unknown name raises :class:`ConfigError` listing the available ones."""
    names = available()
    if name not in names:
        raise ConfigError(f"unknown pretrained emulator {name!r}; available: {', '.join(names) or 'none'}")
    return HOME / name


def card(name: str) -> dict[str, Any]:
    """What emulator ``name`` emulates, how it was trained and how well it does (``card.json``)."""
    return read_json(path(name) / "card.json", CheckpointError, "pretrained emulator")


def load(name: str, device: str = "cpu", precision: str = "fp32") -> Emulator:
    """The pretrained emulator ``name``, ready to :meth:`~neuroemu.models.emulator.Emulator.predict`."""
    return Emulator.load(path(name), checkpoint="best", device=device, precision=precision)


def export(run_dir: str | Path, name: str, card_info: dict[str, Any], dest: str | Path | None = None,
           max_bytes: int = 2_000_000) -> Path:
    """Copy a finished run's best weights and run.json (without machine paths) into ``dest/name`` (default: the
    package's own folder), with ``card.json`` = ``card_info`` plus the run's facts. Refuses weights over
    ``max_bytes`` (the package ships a few MB at most)."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    ck_file = checkpoint_path(run_dir, "best")
    ck = load_checkpoint(ck_file)
    if ck_file.stat().st_size > max_bytes:
        raise CheckpointError(f"{ck_file}: {ck_file.stat().st_size:,} bytes is over the {max_bytes:,} allowed for a "
                              "shipped emulator; export a smaller model")
    out = Path(dest or HOME) / name
    if out.exists():
        shutil.rmtree(out)
    (out / "checkpoints").mkdir(parents=True)
    shutil.copyfile(ck_file, out / "checkpoints" / "best.pt")
    run = {**run, "dataset": {**run["dataset"], "path": None}, "status": "pretrained"}
    write_json(out / "run.json", run)
    facts = {"name": name, "family": run.get("family", "tcn"), "architecture": run.get("name"),
             "n_parameters": run.get("n_parameters"), "flops_per_ms": run.get("flops_per_ms"),
             "checkpoint_step": ck.get("step"), "n_exc": ck.get("n_exc"), "n_inh": ck.get("n_inh"),
             "cell": run["dataset"].get("cell"), "dataset_fingerprint": run["dataset"].get("fingerprint"),
             "train_trials": len(run["split"]["train"]), "duration_ms": run["dataset"].get("duration_ms"),
             "train_hours": round(len(run["split"]["train"]) * run["dataset"]["duration_ms"] / 3.6e6, 4)}
    write_json(out / "card.json", {**facts, **card_info})
    json.loads((out / "card.json").read_text())
    return out
