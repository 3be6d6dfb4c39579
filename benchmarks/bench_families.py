"""Micro-benchmark of the emulator families on this CPU: parameters, FLOPs per ms, inference speed
(simulated ms per wall second) and training throughput.

    python benchmarks/bench_families.py            # every family at its default / published size
    python benchmarks/bench_families.py --ab       # also: TorchScript / eager loops (default: native kernel), loop_threads 0
    python benchmarks/bench_families.py --quick    # smaller sizes (a smoke run)
    python benchmarks/bench_families.py --device cuda --precision bf16 --json gpu_families.json   # on a GPU

Inputs: random binary spikes, 1% of the (ms, channel) bins (about the published data's occupancy), 1278
channels (the published layout; the factorized TCN groups them by E/I x region from
``shared/data/L5PC_cell1_segments.csv`` when present, else by E/I). Inference: ``model.infer`` in eval mode
under ``torch.no_grad``, from uint8 dense input ("dense": the model's ``auto`` input mode, which finds the
events itself on CPU) or from prebuilt :class:`SparseEvents` ("events"). Training: forward + backward of
0.5 BCE + 0.5 MSE on dense float windows at batch 8 x 500 ms (no optimizer step). Each figure is the best
of ``--repeats`` runs after one warm-up run (the machine is shared; the best run is the least disturbed).
On ``--device cuda`` every input and model lives on the GPU and each timing synchronises the device; the
(Branch-)ELM's compiled kernel is CPU-only, so there it runs its TorchScript loops.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
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


DEVICE = torch.device("cpu")


def spikes(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, t, N_EXC + N_INH, generator=g) < DENSITY).to(torch.uint8).to(DEVICE)


def events(x: torch.Tensor) -> SparseEvents:
    b, t, c = torch.nonzero(x, as_tuple=True)
    return SparseEvents.from_indices(b, t, c, x.shape[0], x.shape[1], x.shape[2])


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def best_time(fn, repeats: int) -> float:
    fn()
    _sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return best


def infer_speed(model, x, repeats: int, precision: str = "fp32") -> float:
    b, t = (x.batch, x.time) if isinstance(x, SparseEvents) else x.shape[:2]
    with torch.no_grad():
        dt = best_time(lambda: model.infer(x, precision=precision), repeats)
    return b * t / dt


def train_speed(model, repeats: int, precision: str = "fp32") -> tuple[float, float]:
    x = spikes(8, 500, seed=1).float()
    spike_t = torch.zeros(8, 500, device=DEVICE)
    soma_t = torch.zeros(8, 500, device=DEVICE)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        # as the training loop: mixed precision on CUDA only
        with torch.autocast(device_type=DEVICE.type, dtype=torch.bfloat16,
                            enabled=precision == "bf16" and DEVICE.type == "cuda"):
            out = model(x)
        loss = 0.5 * F.binary_cross_entropy_with_logits(out.spike_logits.float(), spike_t) + \
            0.5 * F.mse_loss(out.soma.float(), soma_t)
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
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="inference precision (bf16: bfloat16 autocast); training too on CUDA, as the training loop")
    ap.add_argument("--json", help="also write the table to this file")
    args = ap.parse_args()
    global DEVICE
    try:
        DEVICE = torch.device(args.device)
    except RuntimeError:
        DEVICE = None
    if DEVICE is None or DEVICE.type not in ("cpu", "cuda"):
        sys.exit(f"error: --device {args.device}: expected cpu or cuda")
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"error: --device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    if DEVICE.type == "cuda":
        elm_mod.LOOP_BACKEND = "script"
    sim = None
    if args.with_simulation:
        from bench_emulator import bench_simulation  # same folder

        sim = bench_simulation(args.sim_ms)
        print(f"simulation (default solver, one core): {sim['ms_per_cpu_s']:,.0f} simulated ms per CPU s "
              f"({sim['output_spikes']} output spikes in {args.sim_ms} ms)")
    table = []
    torch.set_num_threads(args.threads)
    gpu = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; input density {DENSITY}; device {gpu or 'cpu'}, "
          f"{args.precision}")
    x1 = spikes(1, 2000)
    ev1 = events(x1)
    large_inputs: dict[tuple[int, int], tuple[torch.Tensor, SparseEvents]] = {}
    for label, cfg, opts in families(args.quick):
        if args.only and args.only not in label:
            continue
        torch.manual_seed(0)
        model = cfg.build().to(DEVICE).eval()
        lb, lt = opts["large"]
        if (lb, lt) not in large_inputs:
            xl = spikes(lb, lt, seed=2)
            large_inputs[(lb, lt)] = (xl, events(xl))
        xl, evl = large_inputs[(lb, lt)]
        print(f"\n{label}: {cfg.name}, {cfg.n_parameters:,} parameters, {cfg.flops_per_ms / 1e3:,.1f} kFLOP/ms, "
              f"history {model.history_ms} ms")
        r, prec = args.repeats, args.precision
        s1d = infer_speed(model, x1, r, prec)
        s1e = infer_speed(model, ev1, r, prec)
        print(f"  inference batch 1 x 2000 ms:        dense {s1d:>12,.0f}  events {s1e:>12,.0f}  ms/s")
        sle = infer_speed(model, evl, max(1, r - 1), prec)
        print(f"  inference batch {lb} x {lt} ms:     events {sle:>12,.0f}  ms/s")
        wps, dt = train_speed(model, r, prec)
        print(f"  training batch 8 x 500 ms (fwd+bwd): {wps:,.1f} windows/s ({dt * 1e3:.0f} ms per step)")
        table.append((label, cfg.n_parameters, cfg.flops_per_ms, s1d, s1e, lb, lt, sle, wps))
        if args.ab and cfg.family in ("elm", "branch-elm") and DEVICE.type == "cpu":
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
    if args.json:
        rows = [dict(model=label, n_params=n, flops_per_ms=f, batch1_dense_ms_per_s=s1d, batch1_events_ms_per_s=s1e,
                     large_batch=lb, large_ms=lt, large_events_ms_per_s=sle, train_windows_per_s=wps,
                     x_simulation_large=(sle / sim["ms_per_cpu_s"]) if sim else None)
                for label, n, f, s1d, s1e, lb, lt, sle, wps in table]
        meta = dict(torch=torch.__version__, device=gpu or "cpu", precision=args.precision, threads=args.threads,
                    cpus=os.cpu_count(), density=DENSITY, simulation=sim)
        Path(args.json).write_text(json.dumps({"machine": meta, "families": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
