"""``neuroemu train`` / ``evaluate`` / ``predict``: train, score and use emulators from the command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from neuroemu.cli._args import int_list
from neuroemu.errors import ConfigError

__all__ = ["register"]




def register(subparsers) -> None:
    """Add the ``train``, ``evaluate`` and ``predict`` subcommands."""
    p = subparsers.add_parser(
        "train", help="train an emulator (any model family) on a dataset",
        description="Train an emulator on a dataset made by 'neuroemu simulate' (split by trial, recorded in "
                    "RUN/run.json): a TCN (default), an ELM or Branch-ELM neuron, or an LSTM. CPU with all cores by "
                    "default, CUDA (mixed precision) when present. Checkpoints every few minutes; validation keeps "
                    "the best model and can stop early (--patience); Ctrl-C stops cleanly; --resume RUN continues "
                    "exactly.")
    p.add_argument("--data", metavar="DIR", help="dataset directory")
    p.add_argument("--out", metavar="RUN", help="run directory to create")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    p.add_argument("--model", default="tcn", metavar="FAMILY",
                   help="model family: tcn (default), elm, branch-elm, lstm; or a model spec FAMILY:SIZE such as "
                        "tcn:7x128, branch-elm:15, lstm:50")
    g = p.add_argument_group("TCN options (--model tcn)")
    g.add_argument("--depth", type=int, help="number of layers (default 3; published best: 7)")
    g.add_argument("--width", type=int, help="units per layer (default 64; published best: 128)")
    g.add_argument("--kernels", type=int_list, metavar="K1,K2,...",
                   help="kernel length per layer in ms (default: 43 for depth 1, else 39 then 20s)")
    g.add_argument("--first-layer", choices=["auto", "sparse", "dense", "factorized"], default=None,
                   help="first layer computed event-driven (sparse) or dense (default auto: sparse on CPU); "
                        "'factorized': a morphology-aware first layer built from a few shared temporal profiles "
                        "per dendritic region (see docs/models.md)")
    g.add_argument("--profiles", type=int, metavar="P", help="temporal profiles per channel group of the factorized "
                                                             "first layer (default 4)")
    g = p.add_argument_group("ELM options (--model elm or branch-elm)")
    g.add_argument("--memory-units", type=int, metavar="M", help="memory units d_m (default: elm 20, branch-elm 15)")
    g.add_argument("--branches", type=int, metavar="B", help="branch-elm: dendritic branches (default 45)")
    g.add_argument("--branch-size", type=int, metavar="S", help="branch-elm: synapses per branch (default 100)")
    g = p.add_argument_group("LSTM options (--model lstm)")
    g.add_argument("--hidden", type=int, metavar="H", help="hidden units (default 50)")
    p.add_argument("--dvt-components", type=int, default=0, metavar="N",
                   help="also predict N whitened PCs of the dendritic voltages as an auxiliary target (any family; "
                        "needs a dataset made with --record dendrites)")
    p.add_argument("--dvt-weight", type=float, metavar="W", help="loss weight of the dendritic target "
                                                                 "(default: the preset's, 1e-3 in modern)")
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
    p.add_argument("--patience", type=int, metavar="K",
                   help="stop after K validations without a better validation AUC (default: never)")
    p.add_argument("--weight-decay", type=float, metavar="W", help="AdamW weight decay (modern default 0.01)")
    p.add_argument("--input-dropout", type=float, metavar="P",
                   help="drop each input spike with probability P during training (default 0)")
    p.add_argument("--checkpoint-minutes", type=float, metavar="M", help="checkpoint every M minutes (default 5)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser(
        "evaluate", help="score an emulator by the published protocol",
        description="Published evaluation (reference 9): overlapping 400-ms windows, first 500 ms dropped, traces "
                    "with 0-24 spikes, pooled 1-ms ROC AUC, TP at 0.1%%/0.25%% FP, soma RMSE/MAE/explained "
                    "variance after global calibration, SDs from 12 random 67%% subsets.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RUN", help="run directory")
    src.add_argument("--pretrained", metavar="NAME", help="a shipped emulator ('neuroemu pretrained list')")
    p.add_argument("--data", metavar="DIR", help="dataset (default: the run's own, its test split; needed with "
                                                 "--pretrained)")
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
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RUN", help="run directory (or checkpoint file)")
    src.add_argument("--pretrained", metavar="NAME", help="a shipped emulator ('neuroemu pretrained list')")
    p.add_argument("--inputs", required=True, metavar="IN.npz", help="input spikes")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="output file")
    p.add_argument("--duration-ms", type=int, help="trace length (default: last input spike + 1)")
    p.add_argument("--checkpoint", default="best", help="best (default), last, or a checkpoint file")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="inference precision: fp32 (default) or bf16 (about 2x faster on CPUs with AVX512-BF16)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.set_defaults(func=_cmd_predict)

    p = subparsers.add_parser(
        "pretrained", help="the emulators of the built-in cell shipped with neuroemu",
        description="List the shipped emulators, or show one's card: what it emulates, how it was trained, on how "
                    "much data, and its test metrics. Use them with 'predict --pretrained NAME', 'evaluate "
                    "--pretrained NAME --data DIR' or neuroemu.pretrained.load(NAME).")
    p.add_argument("action", choices=["list", "info"], help="list the names, or show one card (info NAME)")
    p.add_argument("name", nargs="?", help="emulator name (for info)")
    p.set_defaults(func=_cmd_pretrained)


#: The options of each model family (argparse dest -> config field).
FAMILY_OPTIONS = {"tcn": {"depth": "depth", "width": "width", "kernels": "kernels", "profiles": "profiles"},
                  "elm": {"memory_units": "memory_units"},
                  "branch-elm": {"memory_units": "memory_units", "branches": "branches", "branch_size": "branch_size"},
                  "lstm": {"hidden": "hidden"}}


def model_config(args):
    """The architecture of ``train``: the family (or model spec) of ``--model`` with its own options. An option
    of another family is an error naming it."""
    from neuroemu.models.registry import config_class, family_names, parse_model_spec

    family = args.model.partition(":")[0]
    if family not in family_names():
        raise ConfigError(f"--model {args.model}: unknown model family {family!r}; choose one of {family_names()}")
    own = FAMILY_OPTIONS.get(family, {})
    for dest in sorted({d for opts in FAMILY_OPTIONS.values() for d in opts}):
        if getattr(args, dest, None) is not None and dest not in own:
            owners = [f for f, opts in FAMILY_OPTIONS.items() if dest in opts]
            raise ConfigError(f"--{dest.replace('_', '-')} belongs to the {' / '.join(owners)} model family, "
                              f"not to --model {family}")
    if args.first_layer is not None and family != "tcn":
        raise ConfigError(f"--first-layer belongs to the tcn model family, not to --model {family}")
    if args.profiles is not None and args.first_layer != "factorized":
        raise ConfigError("--profiles applies to the factorized first layer: add --first-layer factorized")
    cfg = parse_model_spec(args.model, "--model") if ":" in args.model else config_class(family)()
    if family == "tcn" and ":" not in args.model:
        cfg = cfg.replace(depth=3, width=64, kernels=None)
    fields = {field: getattr(args, dest) for dest, field in own.items() if getattr(args, dest) is not None}
    if family == "tcn":
        if "depth" in fields and "kernels" not in fields:
            fields["kernels"] = None  # the default kernels of the new depth
        if args.first_layer == "factorized":
            fields["first_layer_type"] = "factorized"
        elif args.first_layer is not None:
            fields["first_layer"] = args.first_layer
    return cfg.replace(n_dendritic_components=args.dvt_components, **fields)


def _training_config(args):
    from neuroemu.training.config import TrainingConfig

    cfg = TrainingConfig.from_file(args.config) if args.config else TrainingConfig.from_preset(args.preset)
    changes = {}
    for arg, field in (("inputs", "inputs"), ("max_steps", "max_steps"), ("max_minutes", "max_minutes"),
                       ("batch_size", "batch_size"), ("window_ms", "window_ms"), ("lr", "lr"), ("seed", "seed"),
                       ("val_every", "val_every_steps"), ("checkpoint_minutes", "checkpoint_every_minutes"),
                       ("device", "device"), ("threads", "threads"), ("patience", "patience"),
                       ("weight_decay", "weight_decay"), ("input_dropout", "input_dropout")):
        v = getattr(args, arg)
        if v is not None:
            changes[field] = v
    if args.dvt_weight is not None:
        changes["loss_weights"] = [cfg.loss_weights[0], cfg.loss_weights[1], float(args.dvt_weight)]
    where = f"{args.config}: " if args.config else ""
    try:
        return cfg.replace(**changes) if changes else cfg
    except ConfigError as e:
        raise ConfigError(f"{where}{e} (from the command-line options)") from None


def _cmd_train(args) -> int:
    from neuroemu.dataset.reader import open_dataset
    from neuroemu.training.loop import fit_model_config, train

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
        mcfg = model_config(args)
        tcfg = _training_config(args)
        ds = open_dataset(args.data)
        mcfg = fit_model_config(mcfg.replace(n_inputs=int(ds.n_channels)), ds)
        print(f"{mcfg.name}: {mcfg.n_parameters:,} parameters, {mcfg.flops_per_ms / 1e3:,.1f} kFLOP per ms; "
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


def _run_source(args) -> str:
    """The run directory of ``--run`` or of ``--pretrained NAME``."""
    if getattr(args, "pretrained", None):
        from neuroemu.pretrained import path

        return str(path(args.pretrained))
    return args.run


def _cmd_pretrained(args) -> int:
    from neuroemu import pretrained

    if args.action == "list":
        names = pretrained.available()
        for n in names:
            c = pretrained.card(n)
            test = c.get("test", {})
            ci = test.get("spike_auc_ci")
            print(f"{n:<20} {c.get('architecture')} ({c.get('n_parameters'):,} params), "
                  f"{c.get('cell', {}).get('variant')} cell, {c.get('train_hours')} h of training data, test AUC "
                  f"{_round(test.get('spike_auc'))}" + (f" [{_round(ci[0])}, {_round(ci[1])}]" if ci else "")
                  + f" on {test.get('n_test_traces')} traces")
        if not names:
            print("no pretrained emulators in this installation", file=sys.stderr)
        return 0
    if not args.name:
        raise ConfigError("pretrained info needs a NAME ('neuroemu pretrained list')")
    print(json.dumps(pretrained.card(args.name), indent=1))
    return 0


def _cmd_evaluate(args) -> int:
    from neuroemu.evaluation.protocol import EvaluationConfig, evaluate

    _set_threads(args.threads)
    if args.pretrained and not args.data:
        raise ConfigError("--pretrained needs --data DIR: the dataset to score the emulator on")
    if len(args.spike_range) != 2:
        raise ConfigError(f"--spike-range needs MIN,MAX, got {args.spike_range}")
    cfg = EvaluationConfig(mode="one_pass" if args.one_pass else "windows", spike_range=args.spike_range,
                           drop_first_ms=args.drop_first_ms, precision=args.precision)
    res = evaluate(_run_source(args), dataset=args.data, split=args.split, out=args.out, checkpoint=args.checkpoint,
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
    emu = Emulator.load(_run_source(args), checkpoint=args.checkpoint, device=args.device, precision=args.precision)
    inputs = InputSpikes.load_npz(args.inputs)
    out = emu.predict(inputs, duration_ms=args.duration_ms, source=str(args.inputs))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, spike_prob=out["spike_prob"], soma_v_pred_mv=out["soma_v_pred_mv"])
    n = out["spike_prob"].shape[0]
    print(f"{n} ms predicted ({emu.config.name}); expected spikes {float(out['spike_prob'].sum()):.1f}; "
          f"written to {args.out}")
    return 0


def _round(v, nd: int = 4):
    return round(v, nd) if isinstance(v, float) else v
