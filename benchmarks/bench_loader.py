"""How many 400-ms dense input windows per second the dataset reader serves (batch 8 and 64).

Usage::

    python benchmarks/bench_loader.py                     # builds a temporary L5PC-shaped dataset (no NEURON)
    python benchmarks/bench_loader.py --dataset DIR       # measures an existing dataset

The temporary dataset has the published input statistics on 639 + 639 channels (cell1 segment lengths from
shared/data when present) and a flat soma trace: only the reader is measured. Windows are drawn as in the
published training (reference 8.7): random trials, end times in [500, duration), window [t - 400, t).
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from neuroemu.dataset.format import DatasetConfig
from neuroemu.dataset.reader import NeuroDataset
from neuroemu.dataset.runner import build_dataset
from neuroemu.simulation.result import SimulationResult

CSV = [Path(__file__).resolve().parents[2] / "shared" / "data" / "L5PC_cell1_segments.csv",
       Path("/work/shared/data/L5PC_cell1_segments.csv")]


def _segments() -> dict:
    for p in CSV:
        if p.is_file():
            rows = list(csv.DictReader(p.open()))
            return {"columns": ["seg_length_um", "type"],
                    "data": [[float(r["seg_length_um"]), r["type"]] for r in rows]}
    rng = np.random.default_rng(0)
    return {"columns": ["seg_length_um", "type"],
            "data": [[float(x), "basal" if i < 262 else "apical"] for i, x in enumerate(rng.uniform(2, 40, 639))]}


class InputsOnlySimulator:
    """Stands in for the L5PC when only the input side of a dataset matters (flat -70 mV, no spikes)."""

    def __init__(self) -> None:
        self._table = _segments()
        self.n_exc = self.n_inh = len(self._table["data"])

    def segment_table(self) -> dict:
        return self._table

    def run(self, inputs, duration_ms, seed=0, release_probability=None, record_dendrites=False):
        v = np.full(duration_ms, -70.0, dtype=np.float32)
        return SimulationResult(soma_v_1ms=v, nexus_v_1ms=v.copy(), spike_times_ms=np.zeros(0))


def inputs_only_factory(cell: dict) -> InputsOnlySimulator:
    return InputsOnlySimulator()


def measure(ds: NeuroDataset, batch: int, seconds: float, rng: np.random.Generator) -> float:
    out = np.zeros((batch, 400, ds.n_channels), dtype=np.uint8)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        trials = rng.choice(ds.trial_indices, batch)
        ends = rng.integers(500, ds.duration_ms, batch)
        ds.batch_inputs(trials, ends - 400, 400, out=out)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", help="existing dataset directory (default: build a temporary one)")
    ap.add_argument("--trials", type=int, default=8, help="trials of the temporary dataset")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per batch size")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.dataset
        if path is None:
            path = Path(tmp) / "bench"
            t0 = time.perf_counter()
            cfg = DatasetConfig(cell={"kind": "l5pc"}, n_trials=args.trials, duration_ms=6000, seed=0)
            build_dataset(cfg, path, workers=1, simulator_factory=inputs_only_factory, progress=False)
            print(f"built {args.trials} x 6 s L5PC-shaped trials in {time.perf_counter() - t0:.1f} s")
        ds = NeuroDataset(path)
        t0 = time.perf_counter()
        ds.preload()
        print(f"{ds!r}: loaded into the cache in {time.perf_counter() - t0:.2f} s")
        rng = np.random.default_rng(0)
        for batch in (8, 64):
            rate = measure(ds, batch, args.seconds, rng)
            print(f"batch {batch:3d}: {rate:8.0f} windows/s of 400 ms x {ds.n_channels} channels "
                  f"({rate * 400 / 1000:.0f} simulated s per s)")


if __name__ == "__main__":
    main()
