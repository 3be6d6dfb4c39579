"""Export the shipped pretrained emulators (``builtin-nmda``, ``builtin-ampa``) from a finished study.

For each L5PC variant it takes one run of the study's whole-pool sweep (default: the Branch-ELM with 15 memory
units, 6.8 k parameters, the smallest family that fits the package's few-MB budget), and writes
``src/neuroemu/pretrained/builtin-<cell>/`` with its weights, ``run.json`` and a ``card.json`` holding the
training facts, the test metrics measured by the study (published protocol, on the study's separate test set)
with a bootstrap CI over the test traces, and the commands that made it.

    python benchmarks/export_pretrained.py STUDY [--run branch-elm_15] [--cells nmda,ampa] [--config-file F] [--dest DIR]

or from a learning curve (one cell: the curve's dataset), its run of MODEL on the whole training set:

    python benchmarks/export_pretrained.py --learning-curve LC --model branch-elm:30 [--name NAME] [--config-file F] [--dest DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuroemu import __version__
import neuroemu.pretrained as P
from neuroemu.errors import ConfigError
from neuroemu.evaluation.paired import auc_ci, load_predictions
from neuroemu.inputs.generator import PRESETS, preset


def _test_metrics(row: dict, run_dir: Path, n_boot: int = 1000, level: float = 0.95) -> dict:
    """The card's test metrics: the row's, with the bootstrap CI over test traces from the run's predictions."""
    test = {k: row.get(k) for k in ("spike_auc", "spike_auc_sd", "tp_at_fp_0.0025", "soma_explained_variance",
                                    "soma_rmse_mv", "n_test_traces", "n_test_spikes", "val_spike_auc")}
    preds = run_dir / "test_predictions.npz"
    if preds.is_file():
        try:
            ci = auc_ci(load_predictions(preds), n_boot=n_boot, level=level)
            test.update(spike_auc_ci=[round(ci.ci_low, 5), round(ci.ci_high, 5)], ci_level=level,
                        ci_over="test traces (bootstrap)")
        except ConfigError as e:  # too few test traces for a CI: the card says so
            test["spike_auc_ci"] = None
            test["ci_note"] = str(e)
    return test


def _emulates(kind: str, cell: str, n_channels) -> str:
    if kind == "l5pc":
        what = (f"the built-in L5PC, variant {cell!r} (neuroemu's synthetic layer-5 pyramidal cell, Hay 5b "
                f"biophysics), from its {n_channels} synaptic inputs (excitatory then inhibitory, one per dendritic "
                "segment, ordered as 'neuroemu cell-info')")
    else:
        what = f"the {cell} neuron from its {n_channels} synaptic inputs"
    return what + ": per-ms spike probability and somatic voltage"


def _export(run_dir: Path, name: str, card: dict, dest: Path | None, row: dict) -> None:
    out = P.export(run_dir, name, card, dest=dest)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 1e3:.0f} kB; test AUC {row['spike_auc']:.4f} on {row['n_test_traces']} traces")


def _card(study: dict, cell: str, run_dir: Path, row: dict, study_dir: Path, config_file: str) -> dict:
    test_set = study.get("datasets", {}).get(f"{cell}_test", {})
    pool = study.get("datasets", {}).get(cell, {})
    cfg = study["config"]
    test = _test_metrics(row, run_dir, int(cfg.get("n_boot", 1000)), float(cfg.get("ci_level", 0.95)))
    return {
        "emulates": _emulates("l5pc", cell, pool.get("n_channels", "?")),
        "inputs_preset": pool.get("inputs_preset"),
        "training_pool": {k: pool.get(k) for k in ("n_trials", "duration_ms", "hours", "output_rate_hz")},
        "test_set": {k: test_set.get(k) for k in ("n_trials", "duration_ms", "hours", "output_spikes")},
        "training": {"steps": row.get("train_steps"), "best_step": row.get("best_step"),
                     "minutes": row.get("train_minutes"), "stop_reason": row.get("stop_reason"),
                     "budget_steps": cfg.get("budget_steps"), "budget_minutes": cfg.get("budget_minutes")},
        "test": test,
        "study": {"scale": study.get("scale"), "description": cfg.get("description"), "dir": study_dir.name,
                  "config": cfg},
        "command": (f"neuroemu study --scale {study.get('scale')} --config {config_file} --out {study_dir.name}; "
                    f"python benchmarks/export_pretrained.py {study_dir.name}"),
        "neuroemu": __version__,
    }


def _dataset_facts(path: Path) -> dict:
    m = json.loads((path / "dataset.json").read_text())
    n, dur = int(m["config"]["n_trials"]), int(m["duration_ms"])
    names = [k for k in PRESETS if preset(k).to_dict() == m["config"].get("generator")]
    return {"n_trials": n, "duration_ms": dur, "hours": round(n * dur / 3.6e6, 4),
            "inputs_preset": names[0] if names else "custom"}


def _export_learning_curve(lc: Path, model: str, config_file: str, dest: Path | None, name: str | None) -> int:
    lc_file = lc / "learning_curve.json"
    if not lc_file.is_file():
        print(f"error: {lc_file}: no learning curve here", file=sys.stderr)
        return 2
    doc = json.loads(lc_file.read_text())
    rows = [r for r in doc["rows"] if r["model"] == model and r["fraction"] == 1.0 and r["status"] == "done"]
    if not rows:
        print(f"error: {lc_file}: no finished whole-set run of {model!r}", file=sys.stderr)
        return 2
    row, run_dir = rows[0], Path(rows[0]["run_dir"])
    run = json.loads((run_dir / "run.json").read_text())
    c = run["dataset"]["cell"]
    cell = c["variant"] if c.get("kind") == "l5pc" else c["kind"]
    pool = _dataset_facts(Path(run["dataset"]["path"]))
    test_set = _dataset_facts(Path(doc["test_data"])) if doc.get("test_data") else None
    if test_set:
        test_set.pop("inputs_preset")
    cfg = doc["config"]
    card = {
        "emulates": _emulates(c.get("kind"), cell, run["n_channels"]),
        "inputs_preset": pool.pop("inputs_preset"),
        "training_pool": pool,
        "test_set": test_set,
        "training": {"steps": row.get("steps"), "best_step": row.get("best_step"), "minutes": row.get("train_minutes"),
                     "stop_reason": row.get("stop_reason"), "budget_steps": cfg.get("budget_steps"),
                     "budget_minutes": cfg.get("budget_minutes")},
        "test": _test_metrics(row, run_dir),
        "learning_curve": {"dir": lc.name, "model": model, "config": cfg},
        "command": (f"neuroemu learning-curve --data DATA --test-data TEST --config {config_file} --out {lc.name}; "
                    f"python benchmarks/export_pretrained.py --learning-curve {lc.name} --model {model}"
                    + (f" --name {name}" if name else "")),
        "neuroemu": __version__,
    }
    _export(run_dir, name or f"builtin-{cell}", card, dest, row)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", type=Path, nargs="?", help="a study directory (with study.json)")
    ap.add_argument("--learning-curve", type=Path, metavar="LC", help="export from a learning curve instead")
    ap.add_argument("--model", default="branch-elm:30", help="with --learning-curve: the model spec to export")
    ap.add_argument("--name", help="with --learning-curve: the emulator's name (default builtin-<cell>)")
    ap.add_argument("--run", default="branch-elm_15", help="run name in sweeps/<cell>/runs (default branch-elm_15)")
    ap.add_argument("--cells", default="nmda,ampa", help="cells to export (default nmda,ampa)")
    ap.add_argument("--config-file", default="CONFIG", help="the study's --config file, as the card should name it")
    ap.add_argument("--dest", type=Path, help="destination folder (default: the package's pretrained folder)")
    args = ap.parse_args(argv)
    if args.learning_curve is not None:
        return _export_learning_curve(args.learning_curve, args.model, args.config_file, args.dest, args.name)
    if args.study is None:
        ap.error("give a STUDY directory or --learning-curve LC")
    study_file = args.study / "study.json"
    if not study_file.is_file():
        print(f"error: {study_file}: no study here", file=sys.stderr)
        return 2
    study = json.loads(study_file.read_text())
    for cell in args.cells.split(","):
        run_dir = args.study / "sweeps" / cell / "runs" / args.run
        rows = [r for r in study.get("rows", []) if r.get("cell") == cell and r.get("name") == args.run
                and r.get("fraction") in (None, 1.0)]
        if not rows or not (run_dir / "result.json").is_file():
            print(f"error: {run_dir}: no finished whole-pool run {args.run!r} of {cell!r} in {study_file}",
                  file=sys.stderr)
            return 2
        _export(run_dir, f"builtin-{cell}", _card(study, cell, run_dir, rows[0], args.study, args.config_file),
                args.dest, rows[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
