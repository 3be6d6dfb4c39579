"""Paired test-AUC difference of two training runs scored on the same test trials.

    python benchmarks/paired_runs.py RUN_A RUN_B [--data DIR] [--level 0.95] [--boot 1000]

Evaluates the best checkpoint of each run on the test split of ``--data`` (default: RUN_A's own dataset) by the
published protocol, keeping its scored bins, and prints each run's AUC with its bootstrap CI over test traces
and AUC(A) - AUC(B) with its paired CI. The two runs must split the dataset alike (the same seed and split
fractions), e.g. two ``neuroemu quickstart --model ...`` runs on one dataset.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from neuroemu.dataset.reader import NeuroDataset
from neuroemu.errors import NeuroemuError
from neuroemu.evaluation.paired import auc_ci, load_predictions, paired_auc_difference, traces_to_resolve
from neuroemu.evaluation.protocol import EvaluationConfig, evaluate


def main(argv: list[str] | None = None) -> int:
    """Print the paired comparison (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--data", metavar="DIR", help="dataset (default: RUN_A's)")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--boot", type=int, default=1000)
    args = p.parse_args(argv)
    try:
        run_json = Path(args.run_a) / "run.json"
        if not run_json.is_file():
            print(f"error: {run_json}: not found (is {args.run_a!r} a training run?)", file=sys.stderr)
            return 2
        data = Path(args.data or json.loads(run_json.read_text())["dataset"]["path"])
        ds = NeuroDataset(data)
        cfg = EvaluationConfig.for_duration(int(ds.duration_ms))
        preds, metrics = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for i, run in enumerate((args.run_a, args.run_b)):
                out = Path(tmp) / f"{i}.npz"
                metrics.append(evaluate(run, ds, split="test", config=cfg, predictions_out=out))
                preds.append(load_predictions(out))
        if preds[0].trials.tolist() != preds[1].trials.tolist():
            print("error: the two runs score different test trials (different splits of the dataset)",
                  file=sys.stderr)
            return 2
        for run, pred, m in zip((args.run_a, args.run_b), preds, metrics):
            c = auc_ci(pred, args.boot, args.level)
            print(f"{run}: {m.get('model', '')} test AUC {c.value:.4f} [{c.ci_low:.4f}, {c.ci_high:.4f}], soma EV "
                  f"{m['soma_explained_variance']:.1f}%")
        d = paired_auc_difference(preds[0], preds[1], args.boot, args.level)
        print(f"A - B: {d.value:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] ({100 * args.level:g}% paired bootstrap CI "
              f"over {d.n_traces} scored test traces of {data})")
        need = traces_to_resolve(d.value, d.ci_low, d.ci_high, d.n_traces)
        if need is not None:
            print(f"the CI would just exclude 0 at ~{need} scored test traces if the difference and its spread "
                  f"stayed as measured (an estimate for planning)")
    except NeuroemuError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
