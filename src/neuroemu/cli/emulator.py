"""``neuroemu train`` / ``evaluate`` / ``predict``: train, score and use emulators from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuroemu.cli._args import int_list
from neuroemu.errors import ConfigError

__all__ = ["register"]




def register(subparsers) -> None:
    """Add the ``train``, ``evaluate`` and ``predict`` subcommands."""
    p = subparsers.add_parser(
        "train", help="train an emulator (TCN) on a dataset",
        description="Train a TCN emulator on a dataset made by 'neuroemu simulate' (split by trial, recorded in "
                    "RUN/run.json). CPU with all cores by default, CUDA (mixed precision) when present. "
                    "Checkpoints every few minutes; Ctrl-C stops cleanly; --resume RUN continues exactly.")
    p.add_argument("--data", metavar="DIR", help="dataset directory")
    p.add_argument("--out", metavar="RUN", help="run directory to create")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    p.add_argument("--model", choices=["tcn"], default="tcn", help="model family (default: tcn)")
    p.add_argument("--depth", type=int, default=3, help="number of layers (default 3; published best: 7)")
    p.add_argument("--width", type=int, default=64, help="units per layer (default 64; published best: 128)")
    p.add_argument("--kernels", type=int_list, metavar="K1,K2,...",
                   help="kernel length per layer in ms (default: 43 for depth 1, else 39 then 20s)")
    p.add_argument("--dvt-components", type=int, default=0, metavar="N",
                   help="also predict N whitened PCs of the dendritic voltages (needs them in the dataset)")
    p.add_argument("--first-layer", choices=["auto", "sparse", "dense"], default="auto",
                   help="event-driven (sparse) or dense first layer (default auto: sparse on CPU)")
    p.add_argument("--preset", choices=["modern", "published"], default="modern",
                   help="training preset: modern (AdamW, warm-up, cosine; default) or published (5-stage Nadam)")
    p.add_argument("--config", metavar="FILE", help="TrainingConfig as YAML/JSON (overrides --preset)")
    p.add_argument("--inputs", choices=["presynaptic", "transmitted"], default=None,
                   help="train on presynaptic input spikes (default, as published) or on transmitted ones")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimiser steps in total")
    p.add_argument("--max-minutes", type=float, metavar="M", help="stop after M minutes of training in total")
    p.add_argument("--batch-size", type=int, help="windows per batch (default 8)")
    p.add_argument("--window-ms", type=int, help="window length in ms (default 400)")
    p.add_argument("--lr", type=float, help="peak learning rate (modern preset)")
    p.add_argument("--seed", type=int, help="seed of the split, initialisation and sampling (default 0)")
    p.add_argument("--val-every", type=int, metavar="N", help="validate every N steps (default 500)")
    p.add_argument("--checkpoint-minutes", type=float, metavar="M", help="checkpoint every M minutes (default 5)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser(
        "evaluate", help="score an emulator by the published protocol",
        description="Published evaluation (spec 9): overlapping 400-ms windows, first 500 ms dropped, traces "
                    "with 0-24 spikes, pooled 1-ms ROC AUC, TP at 0.1%%/0.25%% FP, soma RMSE/MAE/explained "
                    "variance after global calibration, SDs from 12 random 67%% subsets.")
    p.add_argument("--run", required=True, metavar="RUN", help="run directory")
    p.add_argument("--data", metavar="DIR", help="dataset (default: the run's own, its test split)")
    p.add_argument("--out", required=True, metavar="METRICS.json", help="where to write the metrics")
    p.add_argument("--split", choices=["test", "val", "train", "all"], default="test",
                   help="trials to score (default test; a different dataset is scored entirely)")
    p.add_argument("--checkpoint", default="best", help="best (default), last, or a checkpoint file")
    p.add_argument("--one-pass", action="store_true",
                   help="run each trace in one pass instead of overlapping windows (same numbers, faster)")
    p.add_argument("--spike-range", type=int_list, default=[0, 24], metavar="MIN,MAX",
                   help="keep traces with MIN..MAX spikes after the dropped start (default 0,24)")
    p.add_argument("--drop-first-ms", type=int, default=500, help="ms dropped at the start of each trace")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="inference precision: fp32 (default) or bf16 (about 2x faster on CPUs with AVX512-BF16)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)

    p = subparsers.add_parser(
        "predict", help="predict spike probability and soma voltage for input spikes",
        description="Read IN.npz (keys exc_spikes, inh_spikes: int arrays (n, 2) of (channel, time ms), the "
                    "'neuroemu replay' format) and write OUT.npz with spike_prob and soma_v_pred_mv "
                    "(float32 per ms, mV).")
    p.add_argument("--run", required=True, metavar="RUN", help="run directory (or checkpoint file)")
    p.add_argument("--inputs", required=True, metavar="IN.npz", help="input spikes")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="output file")
    p.add_argument("--duration-ms", type=int, help="trace length (default: last input spike + 1)")
    p.add_argument("--checkpoint", default="best", help="best (default), last, or a checkpoint file")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="inference precision: fp32 (default) or bf16 (about 2x faster on CPUs with AVX512-BF16)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.set_defaults(func=_cmd_predict)


def _training_config(args):
    from neuroemu.training.config import TrainingConfig

    cfg = TrainingConfig.from_file(args.config) if args.config else TrainingConfig.from_preset(args.preset)
    changes = {}
    for arg, field in (("inputs", "inputs"), ("max_steps", "max_steps"), ("max_minutes", "max_minutes"),
                       ("batch_size", "batch_size"), ("window_ms", "window_ms"), ("lr", "lr"), ("seed", "seed"),
                       ("val_every", "val_every_steps"), ("checkpoint_minutes", "checkpoint_every_minutes"),
                       ("device", "device"), ("threads", "threads")):
        v = getattr(args, arg)
        if v is not None:
            changes[field] = v
    return cfg.replace(**changes) if changes else cfg


def _cmd_train(args) -> int:
    from neuroemu.models.tcn import TCNConfig
    from neuroemu.training.loop import train
    from neuroemu.dataset.reader import open_dataset

    progress = not args.no_progress
    if args.resume:
        budget = {k: v for k, v in (("max_steps", args.max_steps), ("max_minutes", args.max_minutes)) if v is not None}
        ds = open_dataset(args.data) if args.data else None
        print(f"resuming {args.resume}", file=sys.stderr)
        res = train(ds, None, budget or None, args.resume, resume=True, progress=progress)
        run_dir = args.resume
    else:
        if not args.data or not args.out:
            raise ConfigError("train needs --data DIR and --out RUN (or --resume RUN)")
        ds = open_dataset(args.data)
        mcfg = TCNConfig(n_inputs=ds.n_channels, depth=args.depth, width=args.width, kernels=args.kernels,
                         n_dendritic_components=args.dvt_components, first_layer=args.first_layer)
        tcfg = _training_config(args)
        print(f"{mcfg.name}: {mcfg.n_parameters:,} parameters, receptive field {mcfg.receptive_field} ms; "
              f"{ds.n_trials} trials x {ds.duration_ms} ms, {ds.n_channels} channels; preset {tcfg.preset}",
              file=sys.stderr)
        res = train(ds, mcfg, tcfg, args.out, progress=progress)
        run_dir = args.out
    best = f"{res.best_val_auc:.4f} at step {res.best_step}" if res.best_val_auc is not None else "n/a"
    print(f"{res.stop_reason}: {res.steps} steps in {res.elapsed_s / 60:.1f} min; best validation AUC {best}; "
          f"run in {run_dir}")
    if res.stop_reason == "interrupted":
        print(f"continue with: neuroemu train --resume {run_dir}")
    return 0


def _set_threads(n):
    from neuroemu.training.loop import set_threads

    set_threads(n)


def _cmd_evaluate(args) -> int:
    from neuroemu.evaluation.protocol import EvaluationConfig, evaluate

    _set_threads(args.threads)
    if len(args.spike_range) != 2:
        raise ConfigError(f"--spike-range needs MIN,MAX, got {args.spike_range}")
    cfg = EvaluationConfig(mode="one_pass" if args.one_pass else "windows", spike_range=args.spike_range,
                           drop_first_ms=args.drop_first_ms, precision=args.precision)
    res = evaluate(args.run, dataset=args.data, split=args.split, out=args.out, checkpoint=args.checkpoint,
                   config=cfg, device=args.device, progress=not args.no_progress)
    keys = ["spike_auc", "spike_auc_sd", "tp_at_fp_0.001", "tp_at_fp_0.0025", "soma_rmse_mv", "soma_mae_mv",
            "soma_explained_variance", "n_traces", "n_spikes"]
    print(json.dumps({k: res.get(k) for k in keys}, indent=1))
    print(f"metrics written to {args.out}", file=sys.stderr)
    return 0


def _cmd_predict(args) -> int:
    import numpy as np

    from neuroemu.inputs.spikes import InputSpikes
    from neuroemu.models.emulator import Emulator

    _set_threads(args.threads)
    emu = Emulator.load(args.run, checkpoint=args.checkpoint, device=args.device, precision=args.precision)
    inputs = InputSpikes.load_npz(args.inputs)
    out = emu.predict(inputs, duration_ms=args.duration_ms, source=str(args.inputs))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, spike_prob=out["spike_prob"], soma_v_pred_mv=out["soma_v_pred_mv"])
    n = out["spike_prob"].shape[0]
    print(f"{n} ms predicted ({emu.config.name}); expected spikes {float(out['spike_prob'].sum()):.1f}; "
          f"written to {args.out}")
    return 0
