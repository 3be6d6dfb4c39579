"""Simulation speed: wall seconds per simulated second, published settings vs faster faithful ones.

One process (one core). All 1278 inputs are driven at the published input statistics (the input
generator of the dataset stage). The reference is the published pipeline's settings: CVode with
default tolerances, every segment recorded at every step. Each candidate is scored by its speed-up
and by how many of the reference's output spikes it reproduces within 1 ms.

    python benchmarks/bench_simulation.py                 # default cell, 6 s trial
    python benchmarks/bench_simulation.py --morphology ../shared/data/cell1.asc
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

CANDIDATES = {
    "published: cvode, record all segments": dict(method="cvode", record_all_segments=True),
    "cvode, soma+nexus only": dict(method="cvode"),
    "fixed dt=0.025": dict(method="fixed", dt_ms=0.025),
    "fixed dt=0.05": dict(method="fixed", dt_ms=0.05),
    "fixed dt=0.05 Crank-Nicolson": dict(method="fixed", dt_ms=0.05, secondorder=2),
    "fixed dt=0.1 Crank-Nicolson": dict(method="fixed", dt_ms=0.1, secondorder=2),
}


def spike_match(ref: np.ndarray, other: np.ndarray, tol_ms: float = 1.0) -> float:
    """Fraction of reference spikes with a spike of ``other`` within ``tol_ms`` (1.0 if no reference spikes)."""
    if len(ref) == 0:
        return 1.0 if len(other) == 0 else 0.0
    if len(other) == 0:
        return 0.0
    d = np.abs(ref[:, None] - other[None, :]).min(axis=1)
    return float(np.mean(d <= tol_ms))


def main() -> None:
    from neuroemu.cells.config import CellConfig
    from neuroemu.inputs.generator import generate_inputs, preset
    from neuroemu.simulation import make_simulator
    from neuroemu.simulation.solver import SolverConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--morphology", default=None)
    ap.add_argument("--variant", default="nmda")
    ap.add_argument("--duration-ms", type=int, default=6000)
    ap.add_argument("--seeds", default="0", help="comma-separated input seeds (one trial each)")
    ap.add_argument("--preset", default=None, help="input generator preset (default: the dataset default)")
    ap.add_argument("--only", default=None, help="comma-separated candidate names to run")
    ap.add_argument("--json", default=None, help="also write results to this JSON file")
    args = ap.parse_args()

    from neuroemu.inputs.generator import default_preset_name

    cell = CellConfig(variant=args.variant, morphology=args.morphology)
    gen = preset(args.preset or default_preset_name("l5pc", args.variant))
    names = list(CANDIDATES) if not args.only else [n for n in CANDIDATES if any(o in n for o in args.only.split(","))]
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {n: {"wall_s": 0.0, "spikes": [], "match": []} for n in names}
    sim_s = 0.0
    for seed in seeds:
        ref_spikes = None
        for name in names:
            sim = make_simulator(cell, SolverConfig(**CANDIDATES[name]))
            tab = sim.segment_table()
            inputs, _ = generate_inputs(gen, tab.column("seg_length_um"), tab.column("type"), args.duration_ms,
                                        np.random.default_rng(seed))
            t0 = time.perf_counter()
            res = sim.run(inputs, args.duration_ms, seed=seed)
            wall = time.perf_counter() - t0
            del sim
            if ref_spikes is None:
                ref_spikes = res.spike_times_ms
            results[name]["wall_s"] += wall
            results[name]["spikes"].append(len(res.spike_times_ms))
            results[name]["match"].append((spike_match(ref_spikes, res.spike_times_ms), len(ref_spikes)))
        sim_s += args.duration_ms / 1000.0
    ref_name = names[0]
    ref_rate = results[ref_name]["wall_s"] / sim_s
    print(f"cell: {args.morphology or 'built-in default'} ({args.variant}), {len(seeds)} trial(s) of "
          f"{args.duration_ms} ms, {sum(results[ref_name]['spikes'])} reference spikes")
    print(f"{'settings':42s} {'s/sim-s':>8s} {'speed-up':>9s} {'spikes':>7s} {'within 1 ms':>12s}")
    table = []
    for name in names:
        r = results[name]
        rate = r["wall_s"] / sim_s
        n_ref = sum(n for _, n in r["match"])
        matched = sum(f * n for f, n in r["match"])
        frac = matched / n_ref if n_ref else 1.0
        print(f"{name:42s} {rate:8.2f} {ref_rate / rate:8.2f}x {sum(r['spikes']):7d} {100 * frac:11.1f}%")
        table.append({"settings": name, "s_per_sim_s": rate, "speedup": ref_rate / rate,
                      "spikes": sum(r["spikes"]), "within_1ms": frac, "solver": CANDIDATES[name]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)


if __name__ == "__main__":
    main()
