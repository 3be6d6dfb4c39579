"""Simulation speed: seconds per simulated second, published settings vs faster faithful ones.

One process per trial and setting, run one after another (one core each). All 1278 inputs of the
default cell are driven at the published input statistics (the input generator of the dataset
stage); every setting replays the same input spikes. The reference, the first row, is the published
pipeline's settings: CVode with default tolerances, every segment recorded at every step, rate
functions evaluated directly (no lookup tables). Each setting is scored by its speed-up and by the
fraction of the reference's output spikes it reproduces within 1 ms (and the largest shift seen).

Times: CPU seconds of the simulating process (``time.process_time``, robust on a shared machine)
and wall seconds, both around ``Simulator.run`` only (cell building and compiling excluded).

    python benchmarks/bench_simulation.py --preset nmda_mixed --seeds 0,4  # default cell, 6 s trials
    python benchmarks/bench_simulation.py --morphology ../shared/data/cell1.asc --only published,CoreNEURON
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

# name -> SolverConfig fields (the rest keep their defaults). The first row is the reference.
CANDIDATES = {
    "published: cvode, all segments, no tables": dict(method="cvode", secondorder=0, record_all_segments=True,
                                                      use_tables=False, coreneuron=False),
    "cvode, soma+nexus only, no tables": dict(method="cvode", secondorder=0, use_tables=False, coreneuron=False),
    "cvode, soma+nexus only, tables": dict(method="cvode", secondorder=0, coreneuron=False),
    "fixed 0.025 Euler, no tables": dict(dt_ms=0.025, secondorder=0, use_tables=False, coreneuron=False),
    "fixed 0.025 Euler, tables": dict(dt_ms=0.025, secondorder=0, coreneuron=False),
    "fixed 0.025 C-N, tables": dict(dt_ms=0.025, secondorder=2, coreneuron=False),
    "fixed 0.025 C-N, tables, CoreNEURON (default)": dict(),
    "fixed 0.04 C-N, tables, CoreNEURON": dict(dt_ms=0.04),
    "fixed 0.05 C-N, tables, CoreNEURON": dict(dt_ms=0.05),
}


def spike_match(ref: np.ndarray, other: np.ndarray, tol_ms: float = 1.0) -> tuple[int, float]:
    """(number of ``ref`` spikes with a spike of ``other`` within ``tol_ms``, largest such distance seen)."""
    if len(ref) == 0 or len(other) == 0:
        return 0, 0.0
    d = np.abs(np.asarray(ref)[:, None] - np.asarray(other)[None, :]).min(axis=1)
    return int(np.sum(d <= tol_ms)), float(d.max())


def worker(args: argparse.Namespace) -> None:
    """Run one trial with one setting in this (fresh) process and print a JSON line."""
    from neuroemu.cells.config import CellConfig
    from neuroemu.inputs.spikes import InputSpikes
    from neuroemu.simulation import make_simulator
    from neuroemu.simulation.solver import SolverConfig

    sim = make_simulator(CellConfig(variant=args.variant, morphology=args.morphology),
                         SolverConfig(**CANDIDATES[args.worker]))
    inputs = InputSpikes.load_npz(args.inputs)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    res = sim.run(inputs, args.duration_ms, seed=args.seed)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "spikes": res.spike_times_ms.tolist(),
                      "engine": res.config.get("engine", "neuron")}))


def make_inputs(args: argparse.Namespace, seed: int, path: Path) -> int:
    """Generate the trial's input spikes for ``seed`` and save them to ``path``; return the event count."""
    from neuroemu.cells.l5pc import L5PC
    from neuroemu.cells.config import CellConfig
    from neuroemu.inputs.generator import default_preset_name, generate_inputs, preset

    tab = L5PC(CellConfig(variant=args.variant, morphology=args.morphology)).segment_table()
    gen = preset(args.preset or default_preset_name("l5pc", args.variant))
    inputs, _ = generate_inputs(gen, tab.column("seg_length_um"), tab.column("type"), args.duration_ms,
                                np.random.default_rng(seed))
    inputs.save_npz(path)
    return len(inputs.exc) + len(inputs.inh)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--morphology", default=None)
    ap.add_argument("--variant", default="nmda")
    ap.add_argument("--duration-ms", type=int, default=6000)
    ap.add_argument("--seeds", default="0", help="comma-separated input seeds (one trial each)")
    ap.add_argument("--preset", default=None, help="input generator preset (default: the dataset default)")
    ap.add_argument("--only", default=None, help="comma-separated substrings of candidate names to run "
                    "(the reference always runs)")
    ap.add_argument("--json", default=None, help="also write results to this JSON file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--inputs", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    names = list(CANDIDATES)
    if args.only:
        names = [names[0]] + [n for n in names[1:] if any(o in n for o in args.only.split(","))]
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {n: {"cpu_s": 0.0, "wall_s": 0.0, "spikes": 0, "matched": 0, "max_shift": 0.0, "engine": set()}
               for n in names}
    n_ref = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            path = Path(tmp) / f"inputs_{seed}.npz"
            n_events = make_inputs(args, seed, path)
            ref = None
            for name in names:
                cmd = [sys.executable, __file__, "--worker", name, "--inputs", str(path), "--seed", str(seed),
                       "--duration-ms", str(args.duration_ms), "--variant", args.variant]
                if args.morphology:
                    cmd += ["--morphology", args.morphology]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"{name} (seed {seed}) failed:\n{proc.stderr[-3000:]}")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                spikes = np.asarray(out["spikes"])
                if ref is None:
                    ref = spikes
                    n_ref += len(ref)
                matched, shift = spike_match(ref, spikes)
                r = results[name]
                r["cpu_s"] += out["cpu_s"]
                r["wall_s"] += out["wall_s"]
                r["spikes"] += len(spikes)
                r["matched"] += matched
                r["max_shift"] = max(r["max_shift"], shift)
                r["engine"].add(out["engine"])
                print(f"seed {seed} ({n_events} input events): {name}: {out['cpu_s']:.1f} s CPU, "
                      f"{len(spikes)} spikes, {matched}/{len(ref)} reference spikes within 1 ms",
                      file=sys.stderr, flush=True)
    sim_s = len(seeds) * args.duration_ms / 1000.0
    ref_r = results[names[0]]
    print(f"cell: {args.morphology or 'built-in default'} ({args.variant}), preset {args.preset or 'default'}, "
          f"seeds {args.seeds}: {len(seeds)} trial(s) of {args.duration_ms} ms, {n_ref} reference spikes; "
          f"{platform.processor() or platform.machine()}, one process per run")
    print(f"{'settings':46s} {'CPU s/sim-s':>11s} {'wall s/sim-s':>12s} {'speed-up':>9s} {'spikes':>6s} "
          f"{'within 1 ms':>11s} {'max shift':>9s}  engine")
    table = []
    for name in names:
        r = results[name]
        cpu, wall = r["cpu_s"] / sim_s, r["wall_s"] / sim_s
        frac = r["matched"] / n_ref if n_ref else 1.0
        speedup = ref_r["cpu_s"] / r["cpu_s"]
        engine = "+".join(sorted(r["engine"]))
        print(f"{name:46s} {cpu:11.2f} {wall:12.2f} {speedup:8.2f}x {r['spikes']:6d} {100 * frac:10.1f}% "
              f"{r['max_shift']:7.2f}ms  {engine}")
        table.append({"settings": name, "cpu_s_per_sim_s": cpu, "wall_s_per_sim_s": wall, "speedup_cpu": speedup,
                      "speedup_wall": ref_r["wall_s"] / r["wall_s"], "spikes": r["spikes"],
                      "reference_spikes": n_ref, "within_1ms": frac, "max_shift_ms": r["max_shift"],
                      "engine": engine, "solver": CANDIDATES[name]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": " ".join(sys.argv), "seeds": seeds, "duration_ms": args.duration_ms,
                       "table": table}, f, indent=2)


if __name__ == "__main__":
    main()
