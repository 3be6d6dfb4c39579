"""Where the time of one trial goes: ``perf record`` one simulation, then group the samples.

    taskset -c 1 python benchmarks/profile_trial.py --duration-ms 2000 [--solver '{"use_tables": true}']

Runs a trial of the built-in cell (nmda inputs at the dataset defaults) under ``perf record -F 999``
(cpu-clock: works without hardware counters, e.g. in a VM) and prints the share of the samples
per group of functions: the vectorised and scalar exp/log/pow of the mechanisms, their state
updates (nrn_state_*) and currents (nrn_cur_*, ions included), CoreNEURON's matrix solve and set-up,
its per-step bookkeeping (mechanism-name lookups and string building), event delivery, and
everything in Python (set-up, input generation, event queuing, resampling). Needs ``perf``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict

GROUPS = [
    ("exp/log/pow, vectorised (libmvec)", re.compile(r"_ZGV")),
    ("exp/log/pow, scalar (libm)", re.compile(r"__ieee754|^exp@|^log@|^pow@|^exp$|^log$|@plt")),
    ("mechanism state updates (nrn_state_*, rates)", re.compile(r"nrn_state_|rates_|shifted_rates")),
    ("mechanism currents (nrn_cur_*, ions, capacitance)", re.compile(r"nrn_cur_|second_order_cur|nrn_jacob")),
    ("matrix solve and set-up", re.compile(r"nrn_solve|setup_tree_matrix|::update\b|nonvint|nrn_fixed_step")),
    ("per-step bookkeeping (mechanism names, strings, malloc)",
     re.compile(r"nrn_get_mechname|_Rb_tree|strlen|strcmp|malloc|_int_free|free$|memmove|memset|_M_append|"
                r"basic_string|cfree")),
    ("event delivery (NetCvode, queue)", re.compile(r"NetCvode|deliver|net_receive|TQueue|SelfEvent|NetCon|"
                                                    r"update_net_receive_buffer|net_buf|splay|spike")),
    ("Python (set-up, inputs, queuing, resampling)", re.compile(r"Py|_Py|python|gc_|numpy|_generator|unicode")),
]

CHILD = """
import os, sys, json, time
import numpy as np
from neuroemu.cells.config import CellConfig
from neuroemu.simulation import make_simulator
from neuroemu.simulation.solver import SolverConfig
from neuroemu.inputs.generator import default_preset_name, generate_inputs, preset
dur = int(sys.argv[1]); solver = json.loads(sys.argv[2]); rec = sys.argv[3] == "1"
sim = make_simulator(CellConfig(), SolverConfig(**solver))
tab = sim.segment_table()
inputs, _ = generate_inputs(preset(default_preset_name("l5pc", "nmda")), tab.column("seg_length_um"),
                            tab.column("type"), dur, np.random.default_rng(0))
c = time.process_time()
r = sim.run(inputs, dur, seed=0, record_dendrites=rec)
print(json.dumps({"cpu_s": time.process_time() - c, "engine": r.config["engine"], "spikes": len(r.spike_times_ms)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration-ms", type=int, default=2000)
    ap.add_argument("--solver", default="{}", help="SolverConfig fields as JSON (default: the default solver)")
    ap.add_argument("--record-dendrites", action="store_true")
    ap.add_argument("--top", type=int, default=15, help="also list this many top functions")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        cmd = ["perf", "record", "-q", "-F", "999", "-o", data, sys.executable, "-c", CHILD,
               str(args.duration_ms), args.solver, "1" if args.record_dendrites else "0"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(run.stderr[-2000:])
        trial = json.loads(run.stdout.strip().splitlines()[-1])
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio",
                              "-g", "none"], capture_output=True, text=True).stdout
    print_profile(rep, trial, args)


def group_report(rep: str) -> tuple[list[tuple[float, str]], dict[str, float]]:
    """(rows (percent, symbol), percent per group) of a ``perf report --stdio`` text."""
    rows = []
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[[.k]\]\s+(\S.*)$", line)
        if m:
            rows.append((float(m.group(1)), re.split(r"\s{2,}", m.group(2).strip())[0]))
    groups: dict[str, float] = defaultdict(float)
    for pct, sym in rows:
        name = sym.replace("coreneuron::", "")
        for label, rx in GROUPS:
            if rx.search(name):
                groups[label] += pct
                break
        else:
            groups["other"] += pct
    return rows, groups


def print_profile(rep: str, trial: dict, args: argparse.Namespace) -> None:
    rows, groups = group_report(rep)
    print(f"trial: {args.duration_ms} ms, solver {args.solver}, {trial['engine']}, {trial['spikes']} spikes, "
          f"{trial['cpu_s'] / (args.duration_ms / 1000):.2f} CPU s per simulated s (under perf; whole process "
          "sampled, including imports and cell building)")
    print("| where | share of samples |\n|---|---|")
    for label, _ in GROUPS + [("other", None)]:
        if groups.get(label):
            print(f"| {label} | {groups[label]:.1f}% |")
    print(f"\ntop {args.top} functions:")
    for pct, sym in rows[:args.top]:
        print(f"  {pct:5.2f}%  {sym}")


if __name__ == "__main__":
    main()
