"""CLI of the cell and simulation stages: ``neuroemu cell-info`` and ``neuroemu replay``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuroemu.cells.config import VARIANTS
from neuroemu.errors import ConfigError


def parse_scales(items: list[str] | None) -> dict[str, float]:
    """Parse ``NAME=FACTOR`` strings (``--scale SK_E2=0.1``) into a dict."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise ConfigError(f"--scale {item!r}: expected NAME=FACTOR, e.g. SK_E2=0.1") from None
    return out


def _cell_info(args: argparse.Namespace) -> int:
    from neuroemu.cells.config import CellConfig
    from neuroemu.cells.l5pc import load_cell_morphology
    from neuroemu.cells.morphology import instantiate
    from neuroemu.cells.segments import nexus_site, segment_table

    cfg = CellConfig(morphology=args.morphology, nexus_distance_um=args.nexus_distance_um)
    morph = load_cell_morphology(cfg)
    if args.export_swc:
        morph.to_swc(args.export_swc)
        print(f"wrote {args.export_swc}", file=sys.stderr)
    sections = instantiate(morph)
    nexus = nexus_site(sections, distance_um=cfg.nexus_distance_um)
    table = segment_table(sections, nexus=nexus)
    if args.format == "json":
        print(table.to_json())
    else:
        table.to_csv(sys.stdout)
    sections.delete()
    return 0


def _replay(args: argparse.Namespace) -> int:
    import numpy as np

    from neuroemu.cells.config import CellConfig
    from neuroemu.inputs.spikes import InputSpikes
    from neuroemu.simulation import simulate
    from neuroemu.simulation.solver import SolverConfig

    inputs = InputSpikes.load_npz(args.inputs)
    cell = CellConfig(variant=args.variant, morphology=args.morphology,
                      conductance_scale=parse_scales(args.scale)).with_morphology_hash()
    solver = SolverConfig(method=args.solver, dt_ms=args.dt)
    print(f"replaying {inputs.exc.shape[0]} excitatory and {inputs.inh.shape[0]} inhibitory events "
          f"through the {args.variant} cell for {args.duration_ms} ms ...", file=sys.stderr)
    res = simulate(inputs, cell=cell, duration_ms=args.duration_ms, seed=args.seed,
                   release_probability=args.release_probability, t0_quirk=args.t0_quirk,
                   record_dendrites=args.record == "dendrites", solver=solver)
    out = {
        "soma_v_1ms": res.soma_v_1ms.astype(np.float32),
        "nexus_v_1ms": res.nexus_v_1ms.astype(np.float32),
        "spike_times_ms": res.spike_times_ms.astype(np.float64),
        "config": np.array(json.dumps(res.config, sort_keys=True)),
    }
    if res.dend_v_1ms is not None:
        out["dend_v_1ms"] = res.dend_v_1ms
    if res.exc_transmitted is not None:
        out["exc_transmitted"] = res.exc_transmitted
        out["inh_transmitted"] = res.inh_transmitted
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **out)
    rate = len(res.spike_times_ms) / (args.duration_ms / 1000.0)
    print(f"{len(res.spike_times_ms)} output spikes ({rate:.2f} Hz); simulated in {res.wall_time_s:.1f} s; "
          f"wrote {args.out}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cell-info`` and ``replay`` to the CLI."""
    p = sub.add_parser("cell-info", help="print the cell's dendritic segment table (synapse-channel order)",
                       description="Print one row per basal and apical segment, in synapse-channel order "
                                   "(basal sections in order, then apical, each by x).")
    p.add_argument("--morphology", metavar="PATH", help="Neurolucida .asc or .swc file (default: built-in cell)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--export-swc", metavar="PATH", help="also write the morphology as SWC")
    p.add_argument("--nexus-distance-um", type=float, default=678.4,
                   help="path distance of the nexus site on the main apical trunk (default 678.4)")
    p.set_defaults(func=_cell_info)

    p = sub.add_parser("replay", help="drive the cell with given input spike trains and record its response",
                       description="Replay input spike trains (IN.npz with exc_spikes and inh_spikes, int arrays "
                                   "(n, 2) of (channel, time ms)) through the L5PC; every event is transmitted "
                                   "unless --release-probability is given.")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="nmda")
    p.add_argument("--morphology", metavar="PATH", help="Neurolucida .asc or .swc file (default: built-in cell)")
    p.add_argument("--inputs", required=True, metavar="IN.npz")
    p.add_argument("--out", required=True, metavar="OUT.npz")
    p.add_argument("--duration-ms", type=int, default=6000)
    p.add_argument("--release-probability", type=float, default=None, metavar="P",
                   help="per-event release probability (seeded by --seed); default: every event transmitted")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--t0-quirk", action="store_true",
                   help="reproduce the published silent-synapse effect of an event at t = 0 (reference 4.2)")
    p.add_argument("--record", choices=["soma", "dendrites"], default="soma",
                   help="'dendrites' also records every segment's voltage at 1 ms (float16)")
    p.add_argument("--scale", action="append", metavar="NAME=FACTOR",
                   help="scale a mechanism's conductance (e.g. SK_E2=0.1, Ih=0, NMDA=0.5); repeatable")
    p.add_argument("--solver", choices=["fixed", "cvode"], default="fixed")
    p.add_argument("--dt", type=float, default=0.025, help="fixed time step in ms (default 0.025)")
    p.set_defaults(func=_replay)
