"""Simulation speed: seconds per simulated second, published settings vs faster faithful ones.

One process per trial and setting, run one after another (one core each). All 1278 inputs of the
default cell are driven at the published input statistics (the input generator of the dataset
stage); every setting replays the same input spikes. The reference, the first row, is the published
pipeline's settings: CVode with default tolerances, every segment recorded at every step, rate
functions evaluated directly (no lookup tables). Each setting is scored by its speed-up and by the
fraction of the reference's output spikes it reproduces within 1 ms (and the largest shift seen).

Times: CPU seconds of the simulating process (``time.process_time``, robust on a shared machine)
and wall seconds, both around ``Simulator.run`` only (cell building and compiling excluded; input
delivery, recording and resampling included).

Fidelity, against the reference row: the fraction of its output spikes matched one-to-one by a
spike within 1 ms, the spikes left unmatched ("extra", as a fraction of the reference's), the
largest matched shift, and the RMSE of the 1-ms soma voltage with both traces clipped at -55 mV
(the published soma target, reference 8.4). ``new default + record dendrites`` records all segments
at 1 ms (float16); its CPU time over the soma-only row is the dendrite recording's cost.

    taskset -c 1 python benchmarks/bench_simulation.py --seeds 0,1,2 --json out.json   # built-in cell, nmda
    taskset -c 1 python benchmarks/bench_simulation.py --morphology ../shared/data/cell1.asc --variant ampa
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

# name -> (SolverConfig fields, record_dendrites). The first row is the reference; the rest keep the
# defaults of the fields they do not name. "old default" is the default before the sim-speed change.
CANDIDATES = {
    "published: cvode, all segments, no tables": (dict(method="cvode", secondorder=0, record_all_segments=True,
                                                       use_tables=False, coreneuron=False), False),
    "old default: 0.025 C-N, tables, CoreNEURON": (dict(use_tables=True), False),
    "new default: 0.025 C-N, direct, CoreNEURON": (dict(), False),
    "new default + record dendrites": (dict(), True),
    "0.025 C-N, direct, classic NEURON": (dict(coreneuron=False), False),
    "fixed 0.03125 C-N, direct, CoreNEURON": (dict(dt_ms=1 / 32), False),
    "fixed 0.0333 C-N, direct, CoreNEURON": (dict(dt_ms=1 / 30), False),
    "fixed 0.04 C-N, direct, CoreNEURON": (dict(dt_ms=0.04), False),
    "cvode, soma+nexus only, no tables": (dict(method="cvode", secondorder=0, use_tables=False, coreneuron=False),
                                          False),
}
DEFAULT_ROWS = "old default,new default,0.03125,0.0333,0.04"


def spike_match(ref: np.ndarray, other: np.ndarray, tol_ms: float = 1.0) -> tuple[int, int, float]:
    """One-to-one matching of ``other``'s spikes to ``ref``'s within ``tol_ms`` (each used once, in time order).

    Returns (reference spikes matched, spikes of ``other`` left unmatched = extra, largest matched shift).
    """
    ref, other = np.asarray(ref, float), np.asarray(other, float)
    used = np.zeros(len(other), bool)
    matched, shift = 0, 0.0
    for t in ref:
        d = np.abs(other - t)
        d[used] = np.inf
        if len(d) and d.min() <= tol_ms:
            j = int(d.argmin())
            used[j] = True
            matched += 1
            shift = max(shift, float(d[j]))
    return matched, int(len(other) - used.sum()), shift


def subthreshold_sq_err(ref_v: np.ndarray, other_v: np.ndarray, clip_mv: float = -55.0) -> tuple[float, int]:
    """(sum of squared differences, samples) of two 1-ms soma traces clipped at ``clip_mv`` (spikes removed
    as in the published targets, reference 8.4)."""
    a = np.minimum(np.asarray(ref_v, float), clip_mv)
    b = np.minimum(np.asarray(other_v, float), clip_mv)
    return float(np.sum((a - b) ** 2)), int(len(a))


def worker(args: argparse.Namespace) -> None:
    """Run one trial with one setting in this (fresh) process and print a JSON line."""
    from neuroemu.cells.config import CellConfig
    from neuroemu.inputs.spikes import InputSpikes
    from neuroemu.simulation import make_simulator
    from neuroemu.simulation.solver import SolverConfig

    fields, record_dendrites = CANDIDATES[args.worker]
    sim = make_simulator(CellConfig(variant=args.variant, morphology=args.morphology), SolverConfig(**fields))
    inputs = InputSpikes.load_npz(args.inputs)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    res = sim.run(inputs, args.duration_ms, seed=args.seed, record_dendrites=record_dendrites)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "spikes": res.spike_times_ms.tolist(),
                      "soma": res.soma_v_1ms.tolist(), "engine": res.config.get("engine", "neuron"),
                      "fingerprint": SolverConfig(**fields).fingerprint()}))


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
                    f"(the reference always runs; default {DEFAULT_ROWS!r}; 'all' runs every row)")
    ap.add_argument("--json", default=None, help="also write results to this JSON file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--inputs", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    names = list(CANDIDATES)
    only = args.only if args.only is not None else DEFAULT_ROWS
    if only != "all":
        names = [names[0]] + [n for n in names[1:] if any(o in n for o in only.split(","))]
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {n: {"cpu_s": 0.0, "wall_s": 0.0, "spikes": 0, "matched": 0, "extra": 0, "max_shift": 0.0,
                   "sq_err": 0.0, "samples": 0, "engine": set(), "fingerprint": None} for n in names}
    n_ref = 0
    t_start = time.perf_counter()
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
                    ref = out
                    n_ref += len(spikes)
                matched, extra, shift = spike_match(ref["spikes"], spikes)
                sq, n = subthreshold_sq_err(ref["soma"], out["soma"])
                r = results[name]
                r["cpu_s"] += out["cpu_s"]
                r["wall_s"] += out["wall_s"]
                r["spikes"] += len(spikes)
                r["matched"] += matched
                r["extra"] += extra
                r["max_shift"] = max(r["max_shift"], shift)
                r["sq_err"] += sq
                r["samples"] += n
                r["engine"].add(out["engine"])
                r["fingerprint"] = out["fingerprint"]
                print(f"seed {seed} ({n_events} input events): {name}: {out['cpu_s']:.1f} s CPU, "
                      f"{len(spikes)} spikes, {matched}/{len(ref['spikes'])} reference spikes within 1 ms, "
                      f"{extra} extra", file=sys.stderr, flush=True)
    sim_s = len(seeds) * args.duration_ms / 1000.0
    ref_r = results[names[0]]
    cell = args.morphology or "built-in default"
    print(f"cell: {cell} ({args.variant}), preset {args.preset or 'default'}, seeds {args.seeds}: {len(seeds)} "
          f"trial(s) of {args.duration_ms} ms, {n_ref} reference spikes; {platform.processor() or platform.machine()}, "
          f"one process per run; benchmark took {time.perf_counter() - t_start:.0f} s")
    print(f"| settings | CPU s/sim s | wall s/sim s | speed-up (CPU) | spikes | within 1 ms | extra | max shift ms "
          f"| subthr. RMSE mV | engine |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    table = []
    for name in names:
        r = results[name]
        cpu, wall = r["cpu_s"] / sim_s, r["wall_s"] / sim_s
        frac = r["matched"] / n_ref if n_ref else 1.0
        extra = r["extra"] / n_ref if n_ref else 0.0
        rmse = (r["sq_err"] / r["samples"]) ** 0.5 if r["samples"] else 0.0
        speedup = ref_r["cpu_s"] / r["cpu_s"]
        engine = "+".join(sorted(r["engine"]))
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {speedup:.2f}x | {r['spikes']} | {100 * frac:.1f}% | "
              f"{100 * extra:.1f}% | {r['max_shift']:.2f} | {rmse:.3f} | {engine} |")
        table.append({"settings": name, "cpu_s_per_sim_s": cpu, "wall_s_per_sim_s": wall, "speedup_cpu": speedup,
                      "speedup_wall": ref_r["wall_s"] / r["wall_s"], "spikes": r["spikes"],
                      "reference_spikes": n_ref, "within_1ms": frac, "extra_spikes": extra,
                      "max_shift_ms": r["max_shift"], "subthreshold_rmse_mv": rmse, "engine": engine,
                      "solver": CANDIDATES[name][0], "record_dendrites": CANDIDATES[name][1],
                      "fingerprint": r["fingerprint"]})
    by_name = {t["settings"]: t for t in table}
    dend, soma = by_name.get("new default + record dendrites"), by_name.get("new default: 0.025 C-N, direct, CoreNEURON")
    if dend and soma:
        print(f"record dendrites / soma only (new default): {dend['cpu_s_per_sim_s'] / soma['cpu_s_per_sim_s']:.3f}x CPU")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": " ".join(sys.argv), "cell": cell, "variant": args.variant, "seeds": seeds,
                       "duration_ms": args.duration_ms, "seconds": time.perf_counter() - t_start,
                       "table": table}, f, indent=2)


if __name__ == "__main__":
    main()
