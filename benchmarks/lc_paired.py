"""Paired test-AUC differences between two models of learning curves scored on the same test set.

    python benchmarks/lc_paired.py LC_A:MODEL_A LC_B:MODEL_B [--level 0.95] [--boot 1000] [--trials-a N --trials-b M]

``LC_A`` / ``LC_B`` are ``neuroemu learning-curve`` directories (the same directory twice compares two of its
models); ``MODEL`` is a model spec as written in ``learning_curve.csv`` (``branch-elm:15``). At each number of
training trials that both curves hold, prints AUC(A) - AUC(B) on the same test traces with its paired bootstrap
CI over traces (:func:`neuroemu.evaluation.paired.paired_auc_difference`), and each side's AUC with its CI.
``--trials-a N --trials-b M`` compares A trained on N trials with B trained on M instead (e.g. a model on a
quarter of the data against another on all of it).
Both curves must score the same test trials (the same ``--test-data``, or the same dataset split).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from neuroemu.errors import NeuroemuError
from neuroemu.evaluation.paired import auc_ci, load_predictions, paired_auc_difference


def _curve(arg: str) -> tuple[str, dict[int, Path]]:
    lc, sep, model = arg.partition(":")
    if not sep or not model:
        raise SystemExit(f"error: {arg!r}: expected LC_DIR:MODEL_SPEC (e.g. lc:branch-elm:15)")
    table = Path(lc) / "learning_curve.csv"
    if not table.is_file():
        raise SystemExit(f"error: {table}: not found (is {lc!r} a learning-curve directory?)")
    runs = {int(r["train_trials"]): Path(r["run_dir"]) for r in csv.DictReader(table.open())
            if r["model"] == model and r.get("status") == "done" and int(r.get("replicate") or 0) == 0}
    if not runs:
        raise SystemExit(f"error: {table}: no finished run of model {model!r}")
    return model, runs


def _ci(r) -> str:
    return f"{r.value:.4f} [{r.ci_low:.4f}, {r.ci_high:.4f}]"


def main(argv: list[str] | None = None) -> int:
    """Print the paired differences (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", metavar="LC_A:MODEL_A")
    p.add_argument("b", metavar="LC_B:MODEL_B")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--boot", type=int, default=1000)
    p.add_argument("--trials-a", type=int, metavar="N", help="compare A trained on N trials ...")
    p.add_argument("--trials-b", type=int, metavar="M", help="... with B trained on M trials")
    args = p.parse_args(argv)
    (ma, ra), (mb, rb) = _curve(args.a), _curve(args.b)
    if (args.trials_a is None) != (args.trials_b is None):
        raise SystemExit("error: give both --trials-a and --trials-b, or neither")
    if args.trials_a is not None:
        for n, runs, name in ((args.trials_a, ra, ma), (args.trials_b, rb, mb)):
            if n not in runs:
                raise SystemExit(f"error: {name} has no run on {n} training trials (it has {sorted(runs)})")
        pairs = [(args.trials_a, args.trials_b)]
    else:
        pairs = [(n, n) for n in sorted(set(ra) & set(rb))]
        if not pairs:
            raise SystemExit(f"error: the two curves share no training-set size ({sorted(ra)} vs {sorted(rb)})")
    level = f"{100 * args.level:g}%"
    print(f"| train trials (A / B) | A: {ma} | B: {mb} | A - B, paired [{level} CI] | scored test traces |")
    print("|---|---|---|---|---|")
    try:
        for na, nb in pairs:
            a, b = (load_predictions(runs[n] / "test_predictions.npz") for runs, n in ((ra, na), (rb, nb)))
            if a.trials.tolist() != b.trials.tolist():
                raise SystemExit(f"error: the runs on {na} / {nb} training trials scored different test traces")
            ca, cb = auc_ci(a, args.boot, args.level), auc_ci(b, args.boot, args.level)
            d = paired_auc_difference(a, b, args.boot, args.level)
            size = str(na) if na == nb else f"{na} / {nb}"
            print(f"| {size} | {_ci(ca)} | {_ci(cb)} | {d.value:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] "
                  f"| {d.n_traces} |")
    except NeuroemuError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
