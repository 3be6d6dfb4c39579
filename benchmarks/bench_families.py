"""Micro-benchmark of the emulator families on this CPU: parameters, FLOPs per ms, inference speed
(simulated ms per wall second) and training throughput.

    python benchmarks/bench_families.py            # every family at its default / published size
    python benchmarks/bench_families.py --ab       # also: TorchScript / eager loops (default: native kernel), loop_threads 0
    python benchmarks/bench_families.py --quick    # smaller sizes (a smoke run)

Inputs: random binary spikes, 1% of the (ms, channel) bins (about the published data's occupancy), 1278
channels (the published layout; the factorized TCN groups them by E/I x region from
``shared/data/L5PC_cell1_segments.csv`` when present, else by E/I). Inference: ``model.infer`` in eval mode
under ``torch.no_grad``, from uint8 dense input ("dense": the model's ``auto`` input mode, which finds the
events itself on CPU) or from prebuilt :class:`SparseEvents` ("events"). Training: forward + backward of
0.5 BCE + 0.5 MSE on dense float windows at batch 8 x 500 ms (no optimizer step). Each figure is the best
of ``--repeats`` runs after one warm-up run (the machine is shared; the best run is the least disturbed).
"""
from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import neuroemu.models.elm as elm_mod
from neuroemu.models.elm import BranchELMConfig, ELMConfig
from neuroemu.models.lstm import LSTMConfig
from neuroemu.models.sparse_conv import SparseEvents
from neuroemu.models.tcn import TCNConfig, kernels_for

N_EXC = N_INH = 639
DENSITY = 0.01
SEGMENTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "L5PC_cell1_segments.csv"


def segment_table() -> dict | None:
    for p in (SEGMENTS, Path("/work/shared/data/L5PC_cell1_segments.csv")):
        if p.is_file():
            rows = list(csv.reader(p.open()))
            return {"columns": rows[0], "rows": rows[1:]}
    return None


def spikes(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, t, N_EXC + N_INH, generator=g) < DENSITY).to(torch.uint8)


def events(x: torch.Tensor) -> SparseEvents:
    b, t, c = torch.nonzero(x, as_tuple=True)
    return SparseEvents.from_indices(b, t, c, x.shape[0], x.shape[1], x.shape[2])


def best_time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def infer_speed(model, x, repeats: int) -> float:
    b, t = (x.batch, x.time) if isinstance(x, SparseEvents) else x.shape[:2]
    with torch.no_grad():
        dt = best_time(lambda: model.infer(x), repeats)
    return b * t / dt


def train_speed(model, repeats: int) -> tuple[float, float]:
    x = spikes(8, 500, seed=1).float()
    spike_t = torch.zeros(8, 500)
    soma_t = torch.zeros(8, 500)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        out = model(x)
        loss = 0.5 * F.binary_cross_entropy_with_logits(out.spike_logits, spike_t) + \
            0.5 * F.mse_loss(out.soma, soma_t)
        loss.backward()

    dt = best_time(step, repeats)
    model.eval()
    return 8 / dt, dt


def families(quick: bool) -> list[tuple[str, object, dict]]:
    seg = segment_table()
    facts = {"n_exc": N_EXC, "n_inh": N_INH, "segments": seg}
    fact_group = "region" if seg is not None else "ei"
    big = (64, 1000) if quick else (256, 2000)
    mid = (16, 500) if quick else (32, 1000)
    out = [
        ("Branch-ELM d_m=15 (default, published)", BranchELMConfig(), {"large": big}),
        ("Branch-ELM d_m=1 (published)", BranchELMConfig(memory_units=1), {"large": big}),
        ("Branch-ELM d_m=30 (builtin-nmda)", BranchELMConfig(memory_units=30), {"large": big}),
        ("Branch-ELM d_m=45", BranchELMConfig(memory_units=45), {"large": big}),
        ("Branch-ELM d_m=75 (released)", BranchELMConfig(memory_units=75), {"large": big}),
        ("ELM d_m=20 (default, published)", ELMConfig(), {"large": big}),
        ("LSTM hidden 50 (default, published)", LSTMConfig(), {"large": mid}),
        ("TCN 7x128x153 free (published)", TCNConfig(), {"large": mid}),
        ("TCN 1x128x43 free (published FCN)", TCNConfig(depth=1, width=128), {"large": mid}),
        ("TCN 3x32x80 free (the study's width)", TCNConfig(depth=3, width=32, kernels=kernels_for(3, 80)), {"large": mid}),
        ("TCN 1x1x80 linear (the study's single unit)",
         TCNConfig(depth=1, width=1, kernels=[80], activation="linear"), {"large": mid}),
        (f"TCN 7x128x153 factorized P=4 ({fact_group})",
         TCNConfig(first_layer_type="factorized", profiles=4, group_by=fact_group), {"large": mid}),
    ]
    return [(label, cfg.with_inputs(N_EXC + N_INH, **facts), opts) for label, cfg, opts in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ab", action="store_true", help="also the TorchScript and eager loops (vs the default: the "
                    "native kernel for inference, TorchScript for training), and loop_threads 0 (vs 1)")
    ap.add_argument("--only", default="", help="run the families whose label contains this text")
    ap.add_argument("--with-simulation", action="store_true",
                    help="also time the NEURON simulation of the default cell in this run (default solver, nmda "
                         "inputs, one core) and print every speed as a multiple of it")
    ap.add_argument("--sim-ms", type=int, default=6000, help="simulated ms for --with-simulation")
    args = ap.parse_args()
    sim = None
    if args.with_simulation:
        from bench_emulator import bench_simulation  # same folder

        sim = bench_simulation(args.sim_ms)
        print(f"simulation (default solver, one core): {sim['ms_per_cpu_s']:,.0f} simulated ms per CPU s "
              f"({sim['output_spikes']} output spikes in {args.sim_ms} ms)")
    table = []
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; input density {DENSITY}")
    x1 = spikes(1, 2000)
    ev1 = events(x1)
    large_inputs: dict[tuple[int, int], tuple[torch.Tensor, SparseEvents]] = {}
    for label, cfg, opts in families(args.quick):
        if args.only and args.only not in label:
            continue
        torch.manual_seed(0)
        model = cfg.build().eval()
        lb, lt = opts["large"]
        if (lb, lt) not in large_inputs:
            xl = spikes(lb, lt, seed=2)
            large_inputs[(lb, lt)] = (xl, events(xl))
        xl, evl = large_inputs[(lb, lt)]
        print(f"\n{label}: {cfg.name}, {cfg.n_parameters:,} parameters, {cfg.flops_per_ms / 1e3:,.1f} kFLOP/ms, "
              f"history {model.history_ms} ms")
        r = args.repeats
        s1d = infer_speed(model, x1, r)
        s1e = infer_speed(model, ev1, r)
        print(f"  inference batch 1 x 2000 ms:        dense {s1d:>12,.0f}  events {s1e:>12,.0f}  ms/s")
        sle = infer_speed(model, evl, max(1, r - 1))
        print(f"  inference batch {lb} x {lt} ms:     events {sle:>12,.0f}  ms/s")
        wps, dt = train_speed(model, r)
        print(f"  training batch 8 x 500 ms (fwd+bwd): {wps:,.1f} windows/s ({dt * 1e3:.0f} ms per step)")
        table.append((label, cfg.n_parameters, cfg.flops_per_ms, s1d, s1e, lb, lt, sle, wps))
        if args.ab and cfg.family in ("elm", "branch-elm"):
            for backend in ("script", "eager"):
                elm_mod.LOOP_BACKEND = backend
                print(f"  [{backend} loops] batch 1: {infer_speed(model, ev1, r):,.0f} ms/s; batch {lb}: "
                      f"{infer_speed(model, evl, max(1, r - 1)):,.0f} ms/s; training {train_speed(model, r)[0]:,.1f} "
                      f"windows/s")
                elm_mod.LOOP_BACKEND = "native"
            model.config.loop_threads = 0
            print(f"  [loop_threads=0, i.e. {args.threads} threads everywhere] batch 1: {infer_speed(model, ev1, r):,.0f} "
                  f"ms/s; batch {lb}: {infer_speed(model, evl, max(1, r - 1)):,.0f} ms/s; training "
                  f"{train_speed(model, r)[0]:,.1f} windows/s")
            model.config.loop_threads = 1
    print("\n| model | params | FLOP/ms | batch 1, dense / events (sim ms/s) | large batch, events (sim ms/s) | "
          + ("x simulation (batch 1 / large) | " if sim else "") + "training windows/s |")
    print("|---|---|---|---|---|" + ("---|" if sim else "") + "---|")
    for label, n, f, s1d, s1e, lb, lt, sle, wps in table:
        ratio = f" {max(s1d, s1e) / sim['ms_per_cpu_s']:,.0f}x / {sle / sim['ms_per_cpu_s']:,.0f}x |" if sim else ""
        print(f"| {label} | {n:,} | {f:,.0f} | {s1d:,.0f} / {s1e:,.0f} | {sle:,.0f} ({lb} x {lt} ms) |{ratio} "
              f"{wps:,.1f} |")


if __name__ == "__main__":
    main()
