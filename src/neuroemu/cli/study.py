"""``neuroemu sweep`` / ``study`` / ``quickstart`` / ``report``: the complexity study from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuroemu.cli._args import int_list
from neuroemu.errors import ConfigError

__all__ = ["register"]




def _config_from(cls, config_file: str | None, flags: dict, what: str):
    """``cls`` from ``config_file`` (if any) with the given command-line ``flags`` (those not None) on top;
    errors name the file."""
    from neuroemu.config import read_config_file

    base = read_config_file(config_file, what) if config_file else {}
    base.update({k: v for k, v in flags.items() if v is not None})
    try:
        return cls.from_dict(base)
    except ConfigError as e:
        raise ConfigError(f"{config_file}: {e}" if config_file else str(e)) from None


def _budget(args: argparse.Namespace, steps: str, minutes: str) -> dict:
    s, m = getattr(args, steps), getattr(args, minutes)
    return {"budget_steps": s, "budget_minutes": m} if s is not None or m is not None else {}


def _sweep_config(args: argparse.Namespace):
    from neuroemu.study.sweep import SweepConfig

    flags = {"depths": args.depths, "widths": args.widths, "receptive_fields": args.receptive_fields,
             "preset": args.preset, "seed": args.seed, "checkpoint": args.checkpoint, "models": args.models,
             "train_fraction": args.train_fraction, "train_seeds": args.train_seeds}
    cfg = _config_from(SweepConfig, args.config, flags, "SweepConfig")
    budget = _budget(args, "budget", "budget_minutes")
    return cfg.replace(**budget) if budget else cfg


def _cmd_sweep(args: argparse.Namespace) -> int:
    from neuroemu.study.sweep import run_sweep

    if not Path(args.data).is_dir():
        raise ConfigError(f"--data {args.data}: not a directory")
    cfg = _sweep_config(args)
    doc = run_sweep(args.data, cfg, args.out, workers=args.workers, threads=args.threads, scheduler=args.scheduler,
                    figures=not args.no_figures, test_data=args.test_data)
    print(f"sweep {doc['status']}: {len(doc['rows'])} configurations; table {Path(args.out) / 'sweep.csv'}",
          file=sys.stderr)
    if not args.no_report:
        from neuroemu.report import make_report

        print(f"report: {make_report(args.out)}", file=sys.stderr)
    return 0 if doc["status"] == "complete" else 2


def _cmd_study(args: argparse.Namespace) -> int:
    from neuroemu.study.study import StudyConfig, format_status, run_study, study_plan, study_status

    from neuroemu.config import read_config_file

    overrides = read_config_file(args.config, "StudyConfig") if args.config else {}
    overrides.pop("scale", None)
    try:
        from_file = StudyConfig.for_scale(args.scale, **overrides)
    except ConfigError as e:
        raise ConfigError(f"{args.config}: {e}" if args.config else str(e)) from None
    cells = [c.strip() for c in args.cells.split(",") if c.strip()] if args.cells is not None else None
    if cells is not None and (not cells or any(c not in ("nmda", "ampa", "iaf") for c in cells)):
        raise ConfigError(f"--cells {args.cells!r}: give a comma-separated list of nmda, ampa, iaf")
    flags = {k: v for k, v in (("target_auc", args.target_auc), ("budget_steps", args.budget),
                               ("train_seeds", args.train_seeds), ("cells", cells)) if v is not None}
    cfg = StudyConfig.for_scale(args.scale, **{**overrides, **flags}) if flags else from_file  # says what changed
    if args.dry_run:
        print(json.dumps({"config": cfg.to_dict(), "plan": study_plan(cfg)}, indent=2))
        return 0
    if args.status:
        if not args.out:
            raise ConfigError("--status needs --out STUDY")
        st = study_status(cfg, args.out)
        print(json.dumps(st, indent=1) if args.json else format_status(st))
        return 0
    if not args.out:
        raise ConfigError("--out STUDY is required (or use --dry-run to print the plan)")
    doc = run_study(cfg.scale, args.out, config=cfg, workers=args.workers, threads=args.threads,
                    sim_workers=args.sim_workers,
                    scheduler=args.scheduler, report=not args.no_report, train=not args.no_train)
    return 0 if doc["status"] == "complete" or args.no_train else 2


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from neuroemu.study.quickstart import run_quickstart

    run_quickstart(args.out, cell=args.cell, sim_minutes=args.sim_minutes, train_minutes=args.train_minutes,
                   duration_ms=args.duration_ms, inputs_preset=args.inputs_preset, workers=args.workers,
                   threads=args.threads, seed=args.seed, model=args.model)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from neuroemu.report import make_report

    try:
        index = make_report(args.path, out=args.out)
    except NotImplementedError as e:
        raise ConfigError(str(e)) from None
    print(f"report: {Path(index).resolve()}")
    return 0


def _add_train_seeds(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-seeds", type=int, metavar="N",
                   help="training runs per configuration, seeds SEED, SEED+1, ... (default 1); the paired depth "
                        "gains average over them and their CIs resample seeds as well as test traces")


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _str_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _learning_curve_config(args: argparse.Namespace):
    from neuroemu.study.learning_curve import LearningCurveConfig

    flags = {"models": args.models, "fractions": args.fractions, "preset": args.preset, "seed": args.seed,
             "patience": args.patience, "split": args.split, "train_seeds": args.train_seeds}
    cfg = _config_from(LearningCurveConfig, args.config, flags, "LearningCurveConfig")
    budget = _budget(args, "max_steps", "max_minutes")
    return cfg.replace(**budget) if budget else cfg


def _cmd_learning_curve(args: argparse.Namespace) -> int:
    from neuroemu.study.learning_curve import run_learning_curve

    cfg = _learning_curve_config(args)
    if not Path(args.data).is_dir():
        raise ConfigError(f"--data {args.data}: not a directory")
    doc = run_learning_curve(args.data, cfg, args.out, test_data=args.test_data, workers=args.workers,
                             threads=args.threads, scheduler=args.scheduler, train=not args.no_train)
    print(f"learning curve {doc['status']}: {len(doc['rows'])} runs; table {Path(args.out) / 'learning_curve.csv'}",
          file=sys.stderr)
    if not args.no_report:
        from neuroemu.report import make_report

        print(f"report: {make_report(args.out)}", file=sys.stderr)
    return 0 if doc["status"] == "complete" else 2


def register(subparsers) -> None:
    """Add the ``sweep``, ``study``, ``quickstart`` and ``report`` subcommands."""
    p = subparsers.add_parser(
        "sweep", help="train and evaluate every depth x width (x receptive field) network on one dataset",
        description="Train every configuration on the same budget, seed and split, evaluate each on the "
                    "validation (to select) and test trials (to report) by the published protocol, and write "
                    "OUT/sweep.csv, OUT/sweep.json, OUT/figures/*.png and OUT/report/index.html. Resumable: "
                    "finished configurations are kept. Kernels for depth D and receptive field T: [T] at D = 1, "
                    "else a first layer of round(T/3) ms (at least as long as any other) and the rest of T shared "
                    "by the other layers.")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset directory (from 'neuroemu simulate')")
    p.add_argument("--out", required=True, metavar="SWEEP", help="sweep directory (created or resumed)")
    p.add_argument("--depths", type=int_list, metavar="D1,D2,...", help="depths (default 1,2,3,4,5,7)")
    p.add_argument("--widths", type=int_list, metavar="W1,W2,...", help="widths (default 8,32,128)")
    p.add_argument("--receptive-fields", type=int_list, metavar="T1,T2,...",
                   help="receptive fields in ms (default: the published-style kernels of each depth)")
    p.add_argument("--models", type=_str_list, metavar="SPEC,SPEC,...",
                   help="networks of other families trained beside the grid, e.g. branch-elm:15,lstm:50")
    p.add_argument("--train-fraction", type=float, metavar="F",
                   help="train on this fraction of the training trials (nested subsets; default 1)")
    p.add_argument("--test-data", metavar="DIR", help="a separate test dataset (all its trials are scored)")
    p.add_argument("--budget", type=int, metavar="STEPS", help="training steps per configuration (default 2000)")
    p.add_argument("--budget-minutes", type=float, metavar="M", help="training minutes per configuration")
    p.add_argument("--preset", choices=["modern", "published"], help="training preset (default modern)")
    p.add_argument("--seed", type=int, help="seed of split, initialisation and sampling (default 0)")
    _add_train_seeds(p)
    p.add_argument("--checkpoint", choices=["best", "last"], help="checkpoint evaluated (default best)")
    p.add_argument("--config", metavar="FILE", help="SweepConfig as YAML/JSON (flags override it)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="configurations trained in parallel (default: one per core)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads per training process (default cores/N)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (shared file system needed)")
    p.add_argument("--no-figures", action="store_true", help="do not write OUT/figures")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report")
    p.set_defaults(func=_cmd_sweep)

    p = subparsers.add_parser(
        "learning-curve", help="how much data each emulator needs: accuracy against the amount of training data",
        description="Train every model (model specs: tcn:7x128, branch-elm:15, elm:20, lstm:50, a bare family name "
                    "for its default size, FAMILY:SIZE@field=value for other fields) on nested fractions of the "
                    "training trials (the same validation and test trials for all), early-stop each on its "
                    "validation AUC, score it on the test trials by the published protocol, and write "
                    "OUT/learning_curve.csv, OUT/learning_curve.json, OUT/figures/learning_curve.png and "
                    "OUT/report/index.html. Resumable and parallel like 'sweep'.")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset directory (from 'neuroemu simulate')")
    p.add_argument("--out", required=True, metavar="LC", help="learning-curve directory (created or resumed)")
    p.add_argument("--models", type=_str_list, metavar="SPEC,SPEC,...",
                   help="model specs (default tcn:1x128,tcn:7x128,branch-elm:15)")
    p.add_argument("--fractions", type=_float_list, metavar="F1,F2,...",
                   help="fractions of the training trials, each in (0, 1] (default 0.125,0.25,0.5,1)")
    p.add_argument("--max-steps", type=int, metavar="N", help="training steps per run (default 2000)")
    p.add_argument("--max-minutes", type=float, metavar="M", help="training minutes per run")
    p.add_argument("--patience", type=int, metavar="K",
                   help="stop a run after K validations without improvement (default 5)")
    p.add_argument("--test-data", metavar="DIR", help="a separate test dataset (all its trials are scored)")
    p.add_argument("--split", choices=["random", "stratified"], help="how trials are split (default random)")
    p.add_argument("--preset", choices=["modern", "published"], help="training preset (default modern)")
    p.add_argument("--seed", type=int, help="seed of split, subsets, initialisation and sampling (default 0)")
    _add_train_seeds(p)
    p.add_argument("--config", metavar="FILE", help="LearningCurveConfig as YAML/JSON (flags override it)")
    p.add_argument("--workers", type=int, metavar="N", help="runs trained in parallel (default: one per core)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads per training process (default cores/N)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (shared file system needed)")
    p.add_argument("--no-train", action="store_true", help="train nothing: tabulate what has finished")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report")
    p.set_defaults(func=_cmd_learning_curve)

    p = subparsers.add_parser(
        "study", help="the published comparison: NMDA vs AMPA L5PC vs integrate-and-fire, end to end",
        description="Simulate a training pool and a separate test set for the nmda and ampa L5PC variants and the "
                    "integrate-and-fire neuron, sweep depth x width (and other model families) on nested fractions "
                    "of each pool, and write OUT/study.json, OUT/study.csv, OUT/figures/*.png and "
                    "OUT/report/index.html with the findings: does each cell need depth, the paired gain from "
                    "depth with its bootstrap CI at each amount of data, its fit and extrapolation, the FCI. "
                    "Scales: tiny (CI, minutes), small (a few hours on 2 cores), medium (>= 1 h of data per L5PC "
                    "variant, several sittings: see --status), paper (the published scale; a cluster and GPUs). "
                    "Resumable: rerun the same command to continue.")
    p.add_argument("--scale", choices=["tiny", "small", "medium", "paper"], default="tiny",
                   help="study scale (default tiny)")
    p.add_argument("--out", metavar="STUDY", help="study directory (created or resumed)")
    p.add_argument("--target-auc", type=float, help="AUC the smallest network must reach (default per scale)")
    p.add_argument("--budget", type=int, metavar="STEPS", help="training steps per configuration (default per scale)")
    _add_train_seeds(p)
    p.add_argument("--config", metavar="FILE", help="YAML/JSON of StudyConfig fields overriding the scale's")
    p.add_argument("--cells", metavar="LIST",
                   help="comma-separated cells to run now (nmda,ampa,iaf; default: the config's); the others' "
                        "results in OUT are kept")
    p.add_argument("--workers", type=int, metavar="N",
                   help="configurations trained in parallel (default: one per core)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads per training process (default cores/N)")
    p.add_argument("--sim-workers", type=int, metavar="N", help="simulation processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler for simulation and training")
    p.add_argument("--dry-run", action="store_true", help="print the configuration and plan, run nothing")
    p.add_argument("--status", action="store_true",
                   help="print what OUT holds and what is left, with an estimate of the time left; run nothing")
    p.add_argument("--json", action="store_true", help="with --status: print JSON")
    p.add_argument("--no-train", action="store_true",
                   help="train nothing: findings, figures and report of the configurations finished so far")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report")
    p.set_defaults(func=_cmd_study)

    p = subparsers.add_parser(
        "quickstart", help="simulate, train, evaluate and report in ~15 minutes with the built-in cell",
        description="On a fresh install: simulate a small dataset of the built-in L5PC (~9 min), train a "
                    "Branch-ELM neuron (at most 3 min, stopping at its best validation AUC; a small TCN for the "
                    "I&F), evaluate it on test trials and write an HTML report, printing each step and "
                    "where the report is. Rerunning continues where it stopped.")
    p.add_argument("--out", default="quickstart_out", metavar="DIR", help="output directory (default quickstart_out)")
    p.add_argument("--cell", default="nmda", choices=["nmda", "ampa", "ampa_sk", "iaf"],
                   help="L5PC variant or the integrate-and-fire neuron (default nmda)")
    p.add_argument("--sim-minutes", type=float, default=9.0, help="simulation budget in minutes (default 9)")
    p.add_argument("--train-minutes", type=float, default=3.0, help="training budget in minutes (default 3; "
                   "training stops earlier at its best validation AUC)")
    p.add_argument("--duration-ms", type=int, default=2000, help="trial length in ms (default 2000)")
    p.add_argument("--inputs-preset", metavar="NAME",
                   help="input generator preset (default: the cell's; see 'neuroemu simulate --help')")
    p.add_argument("--workers", type=int, help="simulation processes (default: all cores)")
    p.add_argument("--threads", type=int, help="torch threads for training (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="dataset and training seed (default 0)")
    p.add_argument("--model", metavar="SPEC", help="emulator model spec (default: the one measured best on the "
                                                   "quickstart's budget, see README)")
    p.set_defaults(func=_cmd_quickstart)

    p = subparsers.add_parser(
        "report", help="write the self-contained HTML report of a RUN, SWEEP or STUDY directory",
        description="Detect what PATH holds (run.json, sweep.json or study.json) and write PATH/report/index.html "
                    "(figures as PNG beside it, embedded in the page).")
    p.add_argument("path", metavar="PATH", help="run, sweep or study directory")
    p.add_argument("--out", metavar="DIR", help="report directory (default PATH/report)")
    p.set_defaults(func=_cmd_report)
