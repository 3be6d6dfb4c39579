"""The paired gain from depth at each data size of one or more learning curves, as the study computes it.

    python benchmarks/lc_depth_gain.py LC [LC ...] [--level 0.95] [--boot 1000] [--json OUT.json]

Reads the TCN rows of every fraction of the learning-curve directories (``LC/fractions/f*/sweep.json``; curves
scored on the same test set may be combined) and applies :func:`neuroemu.study.findings.data_axis`: at each
number of training trials, the validation-selected deep TCN (depth > 1) minus the validation-selected one-layer
TCN, on the same test traces, with its bootstrap CI; with training replicates (``train_seeds``) the mean over
seeds, the CI resampling seeds as well as traces. Prints one line per data size and the fit against log10(hours).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuroemu.errors import NeuroemuError
from neuroemu.study.findings import data_axis


def _rows(lc: Path) -> list[dict]:
    sweeps = sorted((lc / "fractions").glob("f*/sweep.json"))
    if not sweeps:
        raise SystemExit(f"error: {lc}: no fractions/f*/sweep.json (is it a learning-curve directory?)")
    return [r for s in sweeps for r in json.loads(s.read_text())["rows"]]


def main(argv: list[str] | None = None) -> int:
    """Print the depth gain by data (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("lc", nargs="+", metavar="LC")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--boot", type=int, default=1000)
    p.add_argument("--json", metavar="OUT", help="also write the data-axis dict as JSON")
    a = p.parse_args(argv)
    rows = [r for lc in a.lc for r in _rows(Path(lc))]
    try:
        axis = data_axis(rows, a.boot, a.level, seed=0)
    except NeuroemuError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    gains = axis.get("depth_gain_by_data") or []
    if not gains:
        print(axis.get("ci_note") or "no data size holds both a deep and a one-layer TCN with test predictions")
        return 1
    print(f"| train trials | hours | deep (AUC: mean over seeds) | one layer (AUC: mean over seeds) | gain (paired) [{100 * a.level:g}% CI] | seeds | per seed |")
    print("|---|---|---|---|---|---|---|")
    for g in gains:
        per = ", ".join(f"{v:+.4f}" for v in g.get("delta_auc_by_seed") or [g["delta_auc"]])
        print(f"| {g['train_trials']} | {g['train_hours']:.3f} | {g['deep']} ({g['deep_auc']:.4f}) | "
              f"{g['shallow']} ({g['shallow_auc']:.4f}) | {g['delta_auc']:+.4f} [{g['ci_low']:+.4f}, "
              f"{g['ci_high']:+.4f}] | {g['n_seeds']} | {per} |")
    fit = axis.get("depth_gain_fit")
    if fit:
        lo, hi = fit["slope_ci"]
        print(f"\nfit: {fit['slope_per_decade']:+.4f} AUC per decade of hours [{lo:+.4f}, {hi:+.4f}], "
              f"{gains[0]['n_traces']} scored test traces, {fit['n_boot']} replicates")
    if a.json:
        Path(a.json).write_text(json.dumps(axis, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
