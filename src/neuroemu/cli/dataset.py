"""CLI of the dataset stage: ``neuroemu simulate`` and ``neuroemu dataset info|verify|import-neuronio``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from neuroemu.errors import ConfigError, DatasetError


def _load_overrides(path: str) -> dict[str, Any]:
    from neuroemu.config import read_config_file

    p = Path(path)
    data = read_config_file(p, "input-generator")
    sub = data.get("generator", data)
    if not isinstance(sub, dict):
        raise ConfigError(f"--config {p}: 'generator' must be a mapping of input-generator fields")
    return sub


def generator_config(cell_kind: str, variant: str, preset_name: str | None, config_file: str | None):
    """The generator config of ``simulate``: a preset, with the fields of ``config_file`` (if any) on top."""
    from neuroemu.inputs.generator import InputGeneratorConfig, default_preset_name, preset

    base = preset(preset_name or default_preset_name(cell_kind, variant)).to_dict()
    if config_file:
        base.update(_load_overrides(config_file))
    try:
        return InputGeneratorConfig.from_dict(base).validate()
    except ValueError as e:
        raise ConfigError(f"{config_file}: {e}" if config_file else str(e)) from None


def solver_config(name: str | None):
    """The :class:`SolverConfig` of ``--solver`` (None: the default)."""
    from neuroemu.simulation.solver import SolverConfig

    named = {None: SolverConfig, "default": SolverConfig, "old-default": SolverConfig.old_default,
             "published": SolverConfig.published}
    if name in named:
        return named[name]()
    return SolverConfig.from_file(name)


def _simulate(args: argparse.Namespace) -> int:
    from neuroemu.cells.config import CellConfig
    from neuroemu.dataset.format import DatasetConfig
    from neuroemu.dataset.runner import build_dataset

    scale = {}
    if args.scale:
        from neuroemu.cli.cell import parse_scales

        scale = parse_scales(args.scale)
    morphology = str(Path(args.morphology).resolve()) if args.morphology else None
    if morphology and not Path(morphology).is_file():
        raise ConfigError(f"--morphology {args.morphology}: file not found")
    cell = CellConfig(kind=args.cell, variant=args.variant, morphology=morphology, conductance_scale=scale)
    gen = generator_config(args.cell, args.variant, args.inputs_preset, args.config)
    cfg = DatasetConfig(cell=cell, generator=gen, solver=solver_config(args.solver) if args.cell == "l5pc" else None,
                        n_trials=args.trials, duration_ms=args.duration_ms,
                        seed=args.seed, release_probability=args.release_probability,
                        record_dendrites="dendrites" in (args.record or []))
    out = build_dataset(cfg, args.out, workers=args.workers, scheduler=args.scheduler,
                        progress=not args.no_progress)
    from neuroemu.dataset.info import dataset_info

    info = dataset_info(out, isi=False)
    rate = info["output_rate_hz"]
    print(f"dataset ready: {out} ({info['n_trials']} trials, {info['hours']:.3f} h, output rate "
          f"{'n/a' if rate is None else f'{rate:.3f}'} Hz)", file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    from neuroemu.dataset.info import dataset_info, format_info

    info = dataset_info(args.dir, isi=not args.no_isi)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(format_info(info, show_config=not args.no_config))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from neuroemu.dataset.verify import verify_dataset

    rep = verify_dataset(args.dir, progress=not args.no_progress)
    print(rep.summary())
    if not rep.passed:
        names = ", ".join(p for p, _ in rep.bad[:5]) + (" ..." if len(rep.bad) > 5 else "")
        raise DatasetError(f"{len(rep.bad)} corrupt shard(s): {names}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from neuroemu.dataset.neuronio import import_neuronio

    out = import_neuronio(args.paths, args.out, variant=args.variant, dendrites=not args.no_dendrites,
                          overwrite=args.overwrite, progress=not args.no_progress)
    print(f"imported into {out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulate`` and the ``dataset`` command group to the ``neuroemu`` parser."""
    from neuroemu.inputs.generator import PRESETS

    p = subparsers.add_parser(
        "simulate", help="simulate a dataset of trials (resumable; local processes or a Dask cluster)",
        description="Simulate N trials of the published doubly-stochastic inputs through a cell and write a "
                    "sharded HDF5 dataset. Running the same command again on the same --out resumes it.")
    p.add_argument("--cell", choices=["l5pc", "iaf"], default="l5pc", help="cell model (default l5pc)")
    p.add_argument("--variant", choices=["nmda", "ampa", "ampa_sk"], default="nmda",
                   help="L5PC variant (default nmda)")
    p.add_argument("--morphology", metavar="PATH", help="morphology file (.asc/.swc); default: built-in cell")
    p.add_argument("--scale", action="append", metavar="NAME=FACTOR",
                   help="extra conductance scaling, e.g. SK_E2=0.1 (repeatable)")
    p.add_argument("--trials", type=int, required=True, metavar="N", help="number of trials")
    p.add_argument("--duration-ms", type=int, default=6000, help="trial length in ms (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, metavar="K", help="local worker processes (default: CPU count)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory")
    p.add_argument("--record", action="append", choices=["dendrites"],
                   help="also record all dendritic segment voltages (float16)")
    p.add_argument("--release-probability", type=float, metavar="P",
                   help="transmit each input event with probability P (default: every event, as published)")
    p.add_argument("--inputs-preset", choices=sorted(PRESETS),
                   help="input generator preset (default: the variant's, 'iaf' for the IAF cell)")
    p.add_argument("--config", metavar="FILE", help="YAML/JSON of input-generator fields overriding the preset")
    p.add_argument("--solver", metavar="NAME|FILE",
                   help="NEURON solver: 'default', 'old-default' (the tables build of neuroemu before the "
                        "sim-speed change, to extend such a dataset), 'published' (CVode, the published settings; "
                        "slow), or a YAML/JSON file of SolverConfig fields")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate)

    d = subparsers.add_parser("dataset", help="inspect, verify or import datasets")
    dsub = d.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    d.set_defaults(func=lambda a: (d.print_help(), 1)[1])

    pi = dsub.add_parser("info", help="summarise a dataset (trials, hours, rates, ISI CV, config)")
    pi.add_argument("dir", metavar="DIR")
    pi.add_argument("--json", action="store_true", help="print JSON")
    pi.add_argument("--no-isi", action="store_true", help="skip ISI statistics (do not open the shards)")
    pi.add_argument("--no-config", action="store_true", help="do not print the config")
    pi.set_defaults(func=_info)

    pv = dsub.add_parser("verify", help="check every shard's integrity (exit status 2 on corruption)")
    pv.add_argument("dir", metavar="DIR")
    pv.add_argument("--no-progress", action="store_true", help="no progress bar")
    pv.set_defaults(func=_verify)

    pn = dsub.add_parser("import-neuronio", help="convert the published NeuronIO pickle files")
    pn.add_argument("paths", nargs="+", metavar="PATH", help="pickle files (*.p)")
    pn.add_argument("--out", required=True, metavar="DIR", help="output dataset directory")
    pn.add_argument("--variant", choices=["nmda", "ampa", "ampa_sk"], default="nmda",
                    help="cell variant the files were simulated with (recorded in the config)")
    pn.add_argument("--no-dendrites", action="store_true", help="drop the dendritic voltage traces")
    pn.add_argument("--overwrite", action="store_true", help="replace a dataset already in DIR")
    pn.add_argument("--no-progress", action="store_true", help="no progress bar")
    pn.set_defaults(func=_import)
