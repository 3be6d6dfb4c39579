"""Emulator speed: inference (simulated ms per wall second) and training (windows per second), dense vs
event-driven (sparse) first layer.

Usage::

    python benchmarks/bench_emulator.py --with-simulation   # all models, all threads, vs the simulation
    python benchmarks/bench_emulator.py --threads 1 --quick
    python benchmarks/bench_emulator.py --device cuda --traces 64 --json gpu.json

Input: 1278 channels (the L5PC's 639 + 639) of Bernoulli spikes at the published occupancy (1.1% of
channel-ms bins). Models: the published 7x128x153 TCN (kernels [39] + [20] * 6), the 1x128x43 FCN, a
small 2x32 TCN and three networks of the `small` study sweep (T = 80 ms). Inference runs whole 6-s traces in
one pass (batch of ``--traces``) from a dense array (dense or event-driven first layer) and from spike lists
(``forward_events``, as ``Emulator.predict`` does), and, for comparison, the published protocol of 400-ms
overlapping windows. Training: forward + backward + optimiser step at
batch 8 x 400 ms (bf16 autocast on CUDA, as the trainer does).

``--with-simulation`` also times, in the same run, the NEURON simulation of the default cell (default solver,
one process, ``nmda`` inputs, CPU time of ``Simulator.run`` only) and prints every emulator's speed as a multiple
of it: the emulator's reason to exist.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from neuroemu.evaluation.protocol import predict_windows
from neuroemu.models.emulator import forward_events, forward_long
from neuroemu.models.tcn import TCN, TCNConfig

MODELS = {
    "TCN_7x128x153": dict(depth=7, width=128, kernels=[39] + [20] * 6),
    "FCN_1x128x43": dict(depth=1, width=128, kernels=[43]),
    "TCN_2x32x59": dict(depth=2, width=32, kernels=[40, 20]),
    # networks of the `small` study sweep (T = 80 ms): its best on the nmda cell and two small ones within its noise
    "TCN_7x64x80": dict(depth=7, width=64, kernels=[27, 10, 10, 10, 10, 10, 9]),
    "TCN_7x16x80": dict(depth=7, width=16, kernels=[27, 10, 10, 10, 10, 10, 9]),
    "TCN_2x16x80": dict(depth=2, width=16, kernels=[41, 40]),
    "TCN_3x16x80": dict(depth=3, width=16, kernels=[28, 27, 27]),
    "FCN_1x16x80": dict(depth=1, width=16, kernels=[80]),
    # the single linear unit (the published I&F network; the study's one-layer baseline on the L5PC)
    "FCN_1x1x80_linear": dict(depth=1, width=1, kernels=[80], activation="linear"),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timeit(fn, repeats: int, device: torch.device = torch.device("cpu")) -> float:
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _inputs(shape, density, seed=0, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(torch.uint8).to(device)


def bench_inference(name, arch, n_in, density, traces, duration, repeats, windows=True,
                    device: torch.device = torch.device("cpu"), precision: str = "fp32") -> dict:
    torch.manual_seed(0)
    model = TCN(TCNConfig(n_inputs=n_in, **arch)).to(device).eval()
    x = _inputs((traces, duration, n_in), density, device=device)
    res = {"model": name, "n_parameters": model.config.n_parameters, "traces": traces, "duration_ms": duration,
           "precision": precision}
    for mode in ("dense", "sparse"):
        model.set_first_layer(mode)
        t = _timeit(lambda: forward_long(model, x, device=device, precision=precision), repeats, device)
        res[f"one_pass_{mode}_ms_per_s"] = traces * duration / t
    res["one_pass_sparse_over_dense"] = res["one_pass_sparse_ms_per_s"] / res["one_pass_dense_ms_per_s"]
    if device.type == "cpu":  # spike lists in, as from a network simulation or a dataset shard
        model.set_first_layer("sparse")
        bi, ti, ci = (a.numpy() for a in torch.nonzero(x.cpu(), as_tuple=True))
        t = _timeit(lambda: forward_events(model, ti, ci, duration, batch_index=bi, batch=traces,
                                           precision=precision), repeats)
        res["events_ms_per_s"] = traces * duration / t
    if windows and device.type == "cpu":
        model.set_first_layer("sparse")
        xn = x[0].cpu().numpy()
        t = _timeit(lambda: predict_windows(model, xn, batch_size=32, precision=precision), repeats)
        res["windows_sparse_ms_per_s"] = duration / t
    return res


def bench_training(name, arch, n_in, density, batch, window, repeats,
                   device: torch.device = torch.device("cpu")) -> dict:
    res = {"model": name, "batch": batch, "window_ms": window}
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    for mode in ("dense", "sparse"):
        torch.manual_seed(0)
        model = TCN(TCNConfig(n_inputs=n_in, first_layer=mode, **arch)).to(device).train()
        opt = torch.optim.NAdam(model.parameters(), lr=1e-4)
        x = _inputs((batch, window, n_in), density, seed=1, device=device)
        y = (torch.rand(batch, window) < 0.005).float().to(device)
        v = torch.randn(batch, window).to(device)

        def step():
            with amp:
                out = model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out.spike_logits.float(), y) + \
                0.02 * torch.nn.functional.mse_loss(out.soma.float(), v)
            opt.zero_grad()
            loss.backward()
            opt.step()

        t = _timeit(step, repeats, device)
        res[f"{mode}_windows_per_s"] = batch / t
        res[f"{mode}_step_s"] = t
    res["sparse_over_dense"] = res["sparse_windows_per_s"] / res["dense_windows_per_s"]
    return res


def bench_simulation(duration_ms: int, seed: int = 0) -> dict:
    """CPU seconds of the default cell's NEURON simulation (default solver, ``nmda`` inputs) per simulated
    second, around ``Simulator.run`` only (building and compiling excluded)."""
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    from neuroemu.cells.config import CellConfig
    from neuroemu.inputs.generator import default_preset_name, generate_inputs, preset
    from neuroemu.simulation import make_simulator

    sim = make_simulator(CellConfig(variant="nmda"))
    gen = preset(default_preset_name("l5pc", "nmda"))
    tab = sim.segment_table()

    def make(ms):
        return generate_inputs(gen, tab.column("seg_length_um"), tab.column("type"), ms,
                               np.random.default_rng(seed))[0]

    sim.run(make(200), 200, seed=seed)  # warm-up: first-run set-up costs are not the steady state
    inputs = make(duration_ms)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    res = sim.run(inputs, duration_ms, seed=seed)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"duration_ms": duration_ms, "cpu_s": cpu, "wall_s": wall, "output_spikes": int(len(res.spike_times_ms)),
            "ms_per_cpu_s": duration_ms / cpu}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--density", type=float, default=0.011, help="fraction of channel-ms bins with a spike")
    p.add_argument("--channels", type=int, default=1278)
    p.add_argument("--traces", type=int, default=2, help="6-s traces per inference batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 repeat, 1 trace of 3 s")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--precisions", default="fp32,bf16", help="inference precisions to time (fp32, bf16)")
    p.add_argument("--with-simulation", action="store_true",
                   help="also time the default cell's NEURON simulation and print emulator / simulation ratios")
    p.add_argument("--sim-ms", type=int, default=3000, help="simulated ms for --with-simulation")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = 1 if args.quick else args.repeats
    traces, duration = (1, 3000) if args.quick else (args.traces, 6000)
    names = [m for m in args.models.split(",") if m]
    out = {"machine": {"threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "python": sys.version.split()[0]},
           "density": args.density, "channels": args.channels, "inference": [], "training": []}
    if device.type == "cuda":
        out["machine"]["gpu"] = torch.cuda.get_device_name(device)
    print(f"device={device} threads={torch.get_num_threads()} density={args.density} channels={args.channels}")
    sim_rate = None
    if args.with_simulation:
        sim = bench_simulation(args.sim_ms)
        out["simulation"] = sim
        sim_rate = sim["ms_per_cpu_s"]
        print(f"simulation (default cell, default solver, one core): {sim['duration_ms']} ms in "
              f"{sim['cpu_s']:.2f} CPU s = {sim_rate:,.0f} simulated ms per CPU second "
              f"({sim['output_spikes']} output spikes)", flush=True)
    print("inference (simulated ms per wall second)" + (" and multiple of the simulation" if sim_rate else ""))
    print(f"{'model':16s} {'prec':4s} {'params':>10s} {'dense 1-pass':>13s} {'sparse 1-pass':>14s} {'ratio':>6s} "
          f"{'events 1-pass':>14s} {'sparse windows':>15s}" + (f" {'best / sim':>10s}" if sim_rate else ""))
    for name, precision in [(n, pr) for n in names for pr in args.precisions.split(",") if pr]:
        r = bench_inference(name, MODELS[name], args.channels, args.density, traces, duration, repeats,
                            device=device, precision=precision)
        best = max(r["one_pass_dense_ms_per_s"], r["one_pass_sparse_ms_per_s"], r.get("events_ms_per_s", 0.0))
        if sim_rate:
            r["best_over_simulation"] = best / sim_rate
        out["inference"].append(r)
        print(f"{name:16s} {precision:4s} {r['n_parameters']:10,d} {r['one_pass_dense_ms_per_s']:13,.0f} "
              f"{r['one_pass_sparse_ms_per_s']:14,.0f} {r['one_pass_sparse_over_dense']:6.2f} "
              f"{r.get('events_ms_per_s', float('nan')):14,.0f} "
              f"{r.get('windows_sparse_ms_per_s', float('nan')):15,.0f}"
              + (f" {r['best_over_simulation']:9,.0f}x" if sim_rate else ""), flush=True)
    print("training (400-ms windows per second, batch 8, NAdam step)")
    print(f"{'model':16s} {'dense':>9s} {'sparse':>9s} {'ratio':>6s}")
    for name in names:
        if name == "TCN_2x32x59" and args.quick:
            continue
        r = bench_training(name, MODELS[name], args.channels, args.density, 8, 400, repeats, device=device)
        out["training"].append(r)
        print(f"{name:16s} {r['dense_windows_per_s']:9.1f} {r['sparse_windows_per_s']:9.1f} "
              f"{r['sparse_over_dense']:6.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
