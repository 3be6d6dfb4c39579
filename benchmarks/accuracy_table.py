"""Emulator accuracy vs data and depth: the README's accuracy table.

Trains a 1-layer and a 7-layer TCN (128 units) on a smaller and a larger slice of one dataset's training
trials, with the same validation and test trials (a spike-stratified split of whole trials), each for the
same wall-time budget, and scores every run on the test trials by the published protocol.

    python benchmarks/accuracy_table.py --data data/nmda --out runs/accuracy --minutes 5
    python benchmarks/accuracy_table.py --data data/nmda --out runs/acc --slices 0.25 --steps 20000 --minutes 4 &
    python benchmarks/accuracy_table.py --data data/nmda --out runs/acc --slices 1.0 --steps 20000 --minutes 4 &
    wait; python benchmarks/accuracy_table.py --data data/nmda --out runs/acc --slices 0.25,1.0 --collect

Runs whose ``eval_test.json`` exists are kept (several invocations can share one ``--out``, one per slice, to
train in parallel, e.g. on one GPU); ``--collect`` only prints the table of the finished runs.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

MODELS = {
    "1x128 (K=43)": dict(depth=1, width=128, kernels=[43]),
    "7x128 (K=39,20x6)": dict(depth=7, width=128, kernels=[39] + [20] * 6),
}


def main() -> None:
    from neuroemu.evaluation.protocol import evaluate
    from neuroemu.models.tcn import TCNConfig
    from neuroemu.dataset.split import StratifiedDataset
    from neuroemu.training.config import TrainingConfig
    from neuroemu.training.loop import train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=5.0, help="training wall-time budget per run")
    ap.add_argument("--steps", type=int, default=None, help="training step budget per run (default: none)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    ap.add_argument("--models", default="1x128,7x128", help="comma-separated subset of 1x128, 7x128")
    ap.add_argument("--val-every", type=int, default=200, help="validate (and keep the best checkpoint) every N "
                    "steps (default 200: on ~0.1 h of data the validation AUC peaks within a few hundred steps)")
    ap.add_argument("--collect", action="store_true", help="train nothing: tabulate the finished runs")
    ap.add_argument("--slices", default="0.5,1.0", help="fractions of the training trials used")
    ap.add_argument("--preset", default="modern", help="training preset: modern (default) or published (with "
                    "--steps, its 5-stage schedule is compressed to fit)")
    args = ap.parse_args()

    base = StratifiedDataset(args.data)
    train_idx, val_idx, test_idx = base.split((0.7, 0.15, 0.15), seed=0)
    out = Path(args.out)
    rows = []
    for frac in [float(f) for f in args.slices.split(",")]:
        k = max(1, round(frac * len(train_idx)))
        subset = train_idx[:: max(1, len(train_idx) // k)][:k]

        class Sliced(StratifiedDataset):
            def split(self, fractions=(0.8, 0.1, 0.1), seed=0):
                return [list(subset), list(val_idx), list(test_idx)]

        ds = Sliced(args.data)
        for name, m in MODELS.items():
            if name.split()[0] not in args.models.split(","):
                continue
            run = out / f"train{len(subset)}_{name.split()[0]}"
            if not (run / "eval_test.json").exists():
                if args.collect:
                    continue
                if not (run / "run.json").exists():
                    t0 = time.monotonic()
                    tcfg = TrainingConfig.from_preset(args.preset).replace(
                        max_minutes=args.minutes, max_steps=args.steps, device=args.device,
                        val_every_steps=args.val_every,
                        # the published 5-stage schedule, scaled to fit the step budget
                        compress_schedule=args.preset == "published" and args.steps is not None)
                    res = train(ds, TCNConfig(n_inputs=ds.n_channels, **m), tcfg, run, progress=True)
                    minutes = (time.monotonic() - t0) / 60
                    (run / "wall_minutes.txt").write_text(f"{minutes:.2f}\n")
                    (run / "steps.txt").write_text(f"{res.steps}\n")
                evaluate(run, ds, split="test", out=run / "eval_test.json", device=args.device)
            met = json.loads((run / "eval_test.json").read_text())
            hours = len(subset) * base.duration_ms / 3.6e6
            with open(run / "metrics.csv") as f:
                vals = [(float(r["val_auc"]), int(r["step"])) for r in csv.DictReader(f) if r.get("val_auc")]
            best_step = max(vals)[1] if vals else None
            rows.append({"train_trials": len(subset), "train_hours": round(hours, 3), "model": name,
                         "spike_auc": met["spike_auc"], "spike_auc_sd": met["spike_auc_sd"],
                         "tp_at_fp_0.0025": met["tp_at_fp_0.0025"], "soma_rmse_mv": met["soma_rmse_mv"],
                         "n_test_traces": met["n_traces"], "n_test_spikes": met["n_spikes"],
                         "train_minutes": float((run / "wall_minutes.txt").read_text())
                         if (run / "wall_minutes.txt").exists() else None,
                         "train_steps": int((run / "steps.txt").read_text()) if (run / "steps.txt").exists()
                         else None, "best_val_step": best_step})
    print(f"dataset {args.data}: {base.n_trials} trials of {base.duration_ms} ms; "
          f"train/val/test {len(train_idx)}/{len(val_idx)}/{len(test_idx)} trials")
    print("| train trials (h) | model | spike AUC | TP @ 0.25% FP | soma RMSE (mV) | steps | train min | "
          "best validation step |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        auc = "n/a" if r["spike_auc"] is None else f"{r['spike_auc']:.4f} ± {r['spike_auc_sd'] or 0:.4f}"
        tp = "n/a" if r["tp_at_fp_0.0025"] is None else f"{r['tp_at_fp_0.0025']:.3f}"
        rmse = "n/a" if r["soma_rmse_mv"] is None else f"{r['soma_rmse_mv']:.2f}"
        print(f"| {r['train_trials']} ({r['train_hours']:.3f} h) | {r['model']} | {auc} | {tp} | {rmse} | "
              f"{r['train_steps'] or 'n/a'} | {r['train_minutes'] or 0:.1f} | {r['best_val_step'] or 'n/a'} |")
    if rows:
        (out / "accuracy_table.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
