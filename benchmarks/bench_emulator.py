"""Emulator speed: inference (simulated ms per wall second) and training (windows per second), dense vs
event-driven (sparse) first layer.

Usage::

    python benchmarks/bench_emulator.py                  # all models, all threads
    python benchmarks/bench_emulator.py --threads 1 --quick
    python benchmarks/bench_emulator.py --json out.json

Input: 1278 channels (the L5PC's 639 + 639) of Bernoulli spikes at the published occupancy (1.1% of
channel-ms bins). Models: the published 7x128x153 TCN (kernels [39] + [20] * 6), the 1x128x43 FCN and a
small 2x32 TCN. Inference runs whole 6-s traces in one pass (batch of ``--traces``), and, for comparison,
the published protocol of 400-ms overlapping windows. Training: forward + backward + optimiser step at
batch 8 x 400 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from neuroemu.evaluation.protocol import predict_windows
from neuroemu.models.emulator import forward_long
from neuroemu.models.tcn import TCN, TCNConfig

MODELS = {
    "TCN_7x128x153": dict(depth=7, width=128, kernels=[39] + [20] * 6),
    "FCN_1x128x43": dict(depth=1, width=128, kernels=[43]),
    "TCN_2x32x59": dict(depth=2, width=32, kernels=[40, 20]),
}


def _timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _inputs(shape, density, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(torch.uint8)


def bench_inference(name, arch, n_in, density, traces, duration, repeats, windows=True) -> dict:
    torch.manual_seed(0)
    model = TCN(TCNConfig(n_inputs=n_in, **arch)).eval()
    x = _inputs((traces, duration, n_in), density)
    res = {"model": name, "n_parameters": model.config.n_parameters, "traces": traces, "duration_ms": duration}
    for mode in ("dense", "sparse"):
        model.set_first_layer(mode)
        t = _timeit(lambda: forward_long(model, x), repeats)
        res[f"one_pass_{mode}_ms_per_s"] = traces * duration / t
    res["one_pass_sparse_over_dense"] = res["one_pass_sparse_ms_per_s"] / res["one_pass_dense_ms_per_s"]
    if windows:
        model.set_first_layer("sparse")
        xn = x[0].numpy()
        t = _timeit(lambda: predict_windows(model, xn, batch_size=32), repeats)
        res["windows_sparse_ms_per_s"] = duration / t
    return res


def bench_training(name, arch, n_in, density, batch, window, repeats) -> dict:
    res = {"model": name, "batch": batch, "window_ms": window}
    for mode in ("dense", "sparse"):
        torch.manual_seed(0)
        model = TCN(TCNConfig(n_inputs=n_in, first_layer=mode, **arch)).train()
        opt = torch.optim.NAdam(model.parameters(), lr=1e-4)
        x = _inputs((batch, window, n_in), density, seed=1)
        y = (torch.rand(batch, window) < 0.005).float()
        v = torch.randn(batch, window)

        def step():
            out = model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out.spike_logits, y) + \
                0.02 * torch.nn.functional.mse_loss(out.soma, v)
            opt.zero_grad()
            loss.backward()
            opt.step()

        t = _timeit(step, repeats)
        res[f"{mode}_windows_per_s"] = batch / t
        res[f"{mode}_step_s"] = t
    res["sparse_over_dense"] = res["sparse_windows_per_s"] / res["dense_windows_per_s"]
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--density", type=float, default=0.011, help="fraction of channel-ms bins with a spike")
    p.add_argument("--channels", type=int, default=1278)
    p.add_argument("--traces", type=int, default=2, help="6-s traces per inference batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 repeat, 1 trace of 3 s")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    traces, duration = (1, 3000) if args.quick else (args.traces, 6000)
    names = [m for m in args.models.split(",") if m]
    out = {"machine": {"threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "python": sys.version.split()[0]},
           "density": args.density, "channels": args.channels, "inference": [], "training": []}
    print(f"threads={torch.get_num_threads()} density={args.density} channels={args.channels}")
    print("inference (simulated ms per wall second)")
    print(f"{'model':16s} {'params':>10s} {'dense 1-pass':>13s} {'sparse 1-pass':>14s} {'ratio':>6s} "
          f"{'sparse windows':>15s}")
    for name in names:
        r = bench_inference(name, MODELS[name], args.channels, args.density, traces, duration, repeats)
        out["inference"].append(r)
        print(f"{name:16s} {r['n_parameters']:10,d} {r['one_pass_dense_ms_per_s']:13,.0f} "
              f"{r['one_pass_sparse_ms_per_s']:14,.0f} {r['one_pass_sparse_over_dense']:6.2f} "
              f"{r['windows_sparse_ms_per_s']:15,.0f}", flush=True)
    print("training (400-ms windows per second, batch 8, NAdam step)")
    print(f"{'model':16s} {'dense':>9s} {'sparse':>9s} {'ratio':>6s}")
    for name in names:
        if name == "TCN_2x32x59" and args.quick:
            continue
        r = bench_training(name, MODELS[name], args.channels, args.density, 8, 400, repeats)
        out["training"].append(r)
        print(f"{name:16s} {r['dense_windows_per_s']:9.1f} {r['sparse_windows_per_s']:9.1f} "
              f"{r['sparse_over_dense']:6.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
