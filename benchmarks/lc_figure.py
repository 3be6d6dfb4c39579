"""One learning-curve figure from several learning curves (the same pool and test set, trained in pieces).

    python benchmarks/lc_figure.py OUT.png LC_OR_JSON [LC_OR_JSON ...] [--title TEXT] [--models SPEC,SPEC,...]

Each argument is a ``neuroemu learning-curve`` directory or its ``learning_curve.json`` (for instance a copy under
``docs/results``); the finished rows of all are drawn as in ``LC/figures/learning_curve.png`` (test AUC against
hours of training data, one curve per model). Curves on different test sets do not belong in one figure: the
script refuses inputs whose test data differ.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _doc(arg: str) -> dict:
    p = Path(arg)
    p = p / "learning_curve.json" if p.is_dir() else p
    if not p.is_file():
        raise SystemExit(f"error: {arg}: no learning_curve.json there")
    return json.loads(p.read_text())


def main(argv: list[str] | None = None) -> int:
    """Write the merged figure (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", metavar="OUT.png")
    ap.add_argument("curves", nargs="+", metavar="LC_OR_JSON")
    ap.add_argument("--title")
    ap.add_argument("--models", help="only these model specs (comma-separated)")
    a = ap.parse_args(argv)
    from neuroemu.report._style import save_figure
    from neuroemu.report.figures import learning_curve

    docs = [_doc(c) for c in a.curves]
    tests = {Path(d["test_data"]).name if d.get("test_data") else None for d in docs}
    if len(tests) > 1:
        raise SystemExit(f"error: the curves were scored on different test data ({sorted(map(str, tests))})")
    keep = set(a.models.split(",")) if a.models else None
    rows = [r for d in docs for r in d["rows"] if r.get("status") == "done" and (keep is None or r["model"] in keep)]
    if not rows:
        raise SystemExit("error: no finished rows to draw")
    save_figure(learning_curve(rows, title=a.title), a.out)
    print(f"{a.out}: {len(rows)} runs of {len({r['model'] for r in rows})} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
