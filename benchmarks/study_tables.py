"""README tables of a study, computed from the study's own files, and a small committed copy of those files.

    python benchmarks/study_tables.py export STUDY DEST   # copy study.json, study.csv, figures; add intervals.json
    python benchmarks/study_tables.py render DEST         # print the README block (markdown) made from DEST
    python benchmarks/study_tables.py contrast DEST_A DEST_B   # print the block comparing two cells' depth gains
    python benchmarks/study_tables.py refresh README.md docs/study.md   # re-render every block in place

``export`` reads every run's ``test_predictions.npz`` (tens of MB, not committed) once and stores what the
tables need beside the copied ``study.json``: each run's test AUC with its bootstrap CI over test traces, and
at each data size the paired difference between the Branch-ELM and the validation-selected best TCN. ``render``
uses only DEST, so the README block can be regenerated and checked from the committed files
(tests/test_docs.py does: README must contain ``render(docs/results/<study>)`` verbatim).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from neuroemu.evaluation.paired import traces_to_resolve
from neuroemu.results.selection import finished, pick_best
from neuroemu.study.findings import PUBLISHED_TRAIN_HOURS, depth_gain_contrast

BEGIN, END = "<!-- study-tables:begin {name} -->", "<!-- study-tables:end {name} -->"


def _runs(study: dict, cell: str) -> list:
    return [r for r in finished(study["rows"]) if r.cell == cell]


def export(study_dir: Path, dest: Path) -> Path:
    """Copy the study's small files to ``dest`` and write ``dest/intervals.json``; return ``dest``."""
    from neuroemu.evaluation.paired import auc_ci, load_predictions, paired_auc_difference, traces_needed

    study = json.loads((study_dir / "study.json").read_text())
    cfg = study["config"]
    n_boot, level, seed = int(cfg.get("n_boot", 1000)), float(cfg.get("ci_level", 0.95)), int(cfg.get("seed", 0))
    out: dict[str, Any] = {"n_boot": n_boot, "level": level, "over": "test traces (bootstrap)", "runs": {},
                           "belm_minus_best_tcn": {}}
    for cell in cfg["cells"]:
        rows = _runs(study, cell)
        preds = {}  # each run's scored test bins, read once; runs without a CI's worth of traces left out
        for r in rows:
            path = Path(r.run_dir or "") / "test_predictions.npz"
            p = load_predictions(path) if path.is_file() else None
            if p is not None and p.n_traces < traces_needed(level):
                print(f"note: {path}: {p.n_traces} scored test traces, a CI needs {traces_needed(level)}",
                      file=sys.stderr)
            elif p is not None:
                preds[id(r)] = p
                ci = auc_ci(p, n_boot, level, seed)
                out["runs"][f"{cell}/{r.fraction}/{r.name}"] = {"auc": ci.value, "ci": [ci.ci_low, ci.ci_high],
                                                                "n_traces": ci.n_traces}
        for f in sorted({r.fraction for r in rows}):
            at = [r for r in rows if r.fraction == f]
            tcn, _ = pick_best([r for r in at if r.family == "tcn"])
            for belm in (r for r in at if r.family == "branch-elm"):
                if tcn is not None and id(belm) in preds and id(tcn) in preds:
                    d = paired_auc_difference(preds[id(belm)], preds[id(tcn)], n_boot, level, seed)
                    out["belm_minus_best_tcn"][f"{cell}/{f}/{belm.name}"] = {
                        "delta_auc": d.value, "ci": [d.ci_low, d.ci_high], "tcn": tcn.name, "n_traces": d.n_traces}
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("study.json", "study.csv"):
        if (study_dir / name).is_file():
            shutil.copy2(study_dir / name, dest / name)
    if (study_dir / "figures").is_dir():
        shutil.copytree(study_dir / "figures", dest / "figures", dirs_exist_ok=True)
    (dest / "intervals.json").write_text(json.dumps(out, indent=1) + "\n")
    return dest


def _ci(c: list | None, nd: int = 3, sign: bool = False) -> str:
    if not c or c[0] is None:
        return "[n/a]"
    f = f"{{:+.{nd}f}}" if sign else f"{{:.{nd}f}}"
    return "[" + f.format(c[0]) + ", " + f.format(c[1]) + "]"


def _label(r) -> str:
    if r.family == "branch-elm":
        return f"Branch-ELM, d_m = {r.size}"
    if r.variant == "linear":
        return f"{r.depth} x {r.width} x {r.receptive_field}, linear (the single unit)"
    return f"{r.depth} x {r.width} x {r.receptive_field} TCN"


def _params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k" if n >= 1e4 else f"{n / 1e3:.1f} k"


def render(dest: Path) -> str:
    """The README block of the exported study in ``dest`` (markdown, between begin / end markers)."""
    study = json.loads((dest / "study.json").read_text())
    iv = json.loads((dest / "intervals.json").read_text())
    cells = study["config"]["cells"]
    runs = {c: _runs(study, c) for c in cells}
    fracs = sorted({r.fraction for c in cells for r in runs[c]})
    hours = {(c, f): next(r.train_hours for r in runs[c] if r.fraction == f) for c in cells for f in fracs}
    name = dest.name
    lines = [BEGIN.format(name=name), ""]
    head = " | ".join(f"`{c}`, {hours[c, f]:.3f} h" for c in cells for f in fracs)
    lines += [f"| network | {head} |", "|---|" + "---|" * (len(cells) * len(fracs))]
    order = {}
    for c in cells:
        for r in runs[c]:
            key = (r.family != "tcn", r.variant != "linear", r.width or 0, r.depth or 0, r.size or 0)
            order.setdefault(r.name, (key, r))
    for nm, (_, proto) in sorted(order.items(), key=lambda kv: kv[1][0]):
        cols = []
        for c in cells:
            for f in fracs:
                r = next((x for x in runs[c] if x.name == nm and x.fraction == f), None)
                v = iv["runs"].get(f"{c}/{f}/{nm}")
                if r is None or r.spike_auc is None:
                    cols.append("-")
                    continue
                auc = f"{v['auc']:.3f} {_ci(v['ci'])}" if v is not None else f"{r.spike_auc:.3f}"
                ev = r.soma_explained_variance
                cols.append(f"{auc} / {ev:.1f}%" if ev is not None else auc)
        lines.append(f"| {_label(proto)} ({_params(proto.n_parameters)} params) | " + " | ".join(cols) + " |")
    lines += ["", "| | " + " | ".join(f"`{c}`" for c in cells) + " |", "|---|" + "---|" * len(cells)]
    fc = study["findings"]["cells"]
    for f in fracs:
        cols = []
        for c in cells:
            g = next((x for x in fc[c].get("depth_gain_by_data") or [] if x["fraction"] == f), None)
            cols.append("-" if g is None else f"{g['delta_auc']:+.4f} {_ci([g['ci_low'], g['ci_high']], 4, True)} "
                        f"({g['deep']} vs {g['shallow']})")
        lines.append(f"| gain from depth at {f:g} of the pool (paired, deep minus one-layer TCN) | " + " | ".join(cols)
                     + " |")
    for f in fracs:
        cols = []
        for c in cells:
            g = next((x for x in fc[c].get("depth_gain_by_data") or [] if x["fraction"] == f), None)
            need = None if g is None else traces_to_resolve(g["delta_auc"], g["ci_low"], g["ci_high"], g["n_traces"])
            cols.append("-" if need is None else f"its CI excludes 0 with {g['n_traces']}" if need <= g["n_traces"]
                        else f"~{need} (of {g['n_traces']} now)")
        lines.append(f"| test traces for the gain at {f:g} of the pool to have a CI excluding 0 "
                     "(estimate: same gain and spread) | " + " | ".join(cols) + " |")
    cols = []
    for c in cells:
        fit = fc[c].get("depth_gain_fit")
        cols.append("-" if not fit else f"{fit['slope_per_decade']:+.4f} {_ci(fit['slope_ci'], 4, True)}")
    lines.append("| slope of the depth gain per decade of training hours [95% CI] | " + " | ".join(cols) + " |")
    extrapolations = [(fc[c].get("depth_gain_fit") or {}).get("extrapolation") for c in cells]
    to_hours = next((ex["train_hours"] for ex in extrapolations if ex), PUBLISHED_TRAIN_HOURS)
    cols = ["-" if not ex else f"{ex['delta_auc']:+.3f} {_ci(ex['ci'], 3, True)}" for ex in extrapolations]
    lines.append(f"| depth gain **extrapolated** to {to_hours:g} h (an extrapolation, not a measurement) | "
                 + " | ".join(cols) + " |")
    for f in fracs:
        cols = []
        for c in cells:
            ks = [k for k in iv["belm_minus_best_tcn"] if k.startswith(f"{c}/{f}/")]
            cols.append(", ".join(f"{iv['belm_minus_best_tcn'][k]['delta_auc']:+.3f} "
                                  f"{_ci(iv['belm_minus_best_tcn'][k]['ci'], 3, True)} (vs "
                                  f"{iv['belm_minus_best_tcn'][k]['tcn']})" for k in ks) or "-")
        lines.append(f"| Branch-ELM minus the validation-selected TCN at {f:g} of the pool (paired) | "
                     + " | ".join(cols) + " |")
    cols = []
    for c in cells:
        b = fc[c].get("best_emulator") or {}
        cols.append(f"{fc[c]['fci']:.2f} {_ci(fc[c]['fci_ci'], 2)} ({b.get('name')}, {b.get('spike_auc', float('nan')):.3f})"
                    if fc[c].get("fci") is not None else "-")
    lines.append("| FCI of the validation-selected best emulator, whole pool [95% CI] | " + " | ".join(cols) + " |")
    costs = study.get("costs") or {}
    ds = study.get("datasets") or {}
    tests = ", ".join(f"`{c}` {fc[c].get('paired_n_traces') or '?'} scored of {ds.get(c + '_test', {}).get('n_trials', '?')}"
                      for c in cells)
    lines += ["", f"Test traces (0-24-spike filter): {tests}. Cost: {costs.get('simulation_core_hours', '?')} "
                  f"core-hours of simulation, {costs.get('training_process_hours', '?')} process-hours of training. "
                  f"Verdict in `study.json` (`findings.data_verdict`): {study['findings'].get('data_verdict', '')}",
              "", END.format(name=name)]
    return "\n".join(lines)


def _cell_of(dest: Path) -> tuple[str, dict]:
    study = json.loads((dest / "study.json").read_text())
    cells = study["config"]["cells"]
    if len(cells) != 1:
        raise SystemExit(f"error: {dest}: a contrast compares one-cell exports, this one holds {cells}")
    return cells[0], study["findings"]["cells"][cells[0]]


def _span(hours: list[float]) -> str:
    return f"{min(hours):g}-{max(hours):g} h"


def render_contrast(dest_a: Path, dest_b: Path) -> str:
    """The README block comparing the depth gains of the cells of two exported one-cell studies (each paired on
    its own test set; the difference gets the MOVER interval of the two CIs: :func:`depth_gain_contrast`)."""
    (a, fa), (b, fb) = _cell_of(dest_a), _cell_of(dest_b)
    c = depth_gain_contrast(fa, fb, a, b)
    name = f"contrast:{dest_a.name}+{dest_b.name}"
    lines = [BEGIN.format(name=name), ""]
    if c is None:
        return "\n".join(lines + [f"No paired depth gain for `{a}` or `{b}`.", "", END.format(name=name)])
    ga = {round(g["train_hours"], 3): g for g in fa["depth_gain_by_data"]}
    gb = {round(g["train_hours"], 3): g for g in fb["depth_gain_by_data"]}
    lines += [f"| `{a}` minus `{b}` | `{a}` | `{b}` | difference [95% CI] |", "|---|---|---|---|"]
    for d in c["gain_difference"]:
        x, y = ga[round(d["train_hours"], 3)], gb[round(d["train_hours"], 3)]
        lines.append(f"| gain from depth at {d['train_hours']:g} h of training data (paired within each cell) | "
                     f"{x['delta_auc']:+.4f} {_ci([x['ci_low'], x['ci_high']], 4, True)} | "
                     f"{y['delta_auc']:+.4f} {_ci([y['ci_low'], y['ci_high']], 4, True)} | "
                     f"{d['difference']:+.4f} {_ci(d['ci'], 4, True)} |")
    if "slope_difference" in c:
        s, fit_a, fit_b = c["slope_difference"], fa["depth_gain_fit"], fb["depth_gain_fit"]
        lines.append(f"| slope of the depth gain per decade of training hours (fits over {_span(c['hours_' + a])} / "
                     f"{_span(c['hours_' + b])}) | {fit_a['slope_per_decade']:+.4f} {_ci(fit_a['slope_ci'], 4, True)} | "
                     f"{fit_b['slope_per_decade']:+.4f} {_ci(fit_b['slope_ci'], 4, True)} | "
                     f"{s['value']:+.4f} {_ci(s['ci'], 4, True)} |")
    if "extrapolation_difference" in c:
        e, ea, eb = c["extrapolation_difference"], fa["depth_gain_fit"]["extrapolation"], fb["depth_gain_fit"]["extrapolation"]
        lines.append(f"| depth gain **extrapolated** to {e['train_hours']:g} h (an extrapolation, not a measurement) | "
                     f"{ea['delta_auc']:+.3f} {_ci(ea['ci'], 3, True)} | {eb['delta_auc']:+.3f} {_ci(eb['ci'], 3, True)} | "
                     f"{e['value']:+.3f} {_ci(e['ci'], 3, True)} |")
    lines += ["", f"In words (`neuroemu.study.findings.depth_gain_contrast`): {c['summary']}.", "",
              END.format(name=name)]
    return "\n".join(lines)


def _render_named(name: str, results: Path) -> str:
    if name.startswith("contrast:"):
        a, b = name.removeprefix("contrast:").split("+")
        return render_contrast(results / a, results / b)
    return render(results / name)


def refresh(doc: Path, results: Path) -> list[str]:
    """Replace every block between study-tables markers in ``doc`` by the render of ``results/<name>``; return
    the names refreshed."""
    import re

    text = doc.read_text()
    names = re.findall(r"<!-- study-tables:begin (\S+) -->", text)
    for name in names:
        begin, end = BEGIN.format(name=name), END.format(name=name)
        i, j = text.index(begin), text.index(end) + len(end)
        text = text[:i] + _render_named(name, results) + text[j:]
    doc.write_text(text)
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="copy a study's small files and its intervals to DEST")
    e.add_argument("study", type=Path)
    e.add_argument("dest", type=Path)
    r = sub.add_parser("render", help="print the README block of an exported study")
    r.add_argument("dest", type=Path)
    c = sub.add_parser("contrast", help="print the block comparing the depth gains of two exported one-cell studies")
    c.add_argument("dest_a", type=Path)
    c.add_argument("dest_b", type=Path)
    f = sub.add_parser("refresh", help="re-render, in place, every study block of markdown files")
    f.add_argument("docs", type=Path, nargs="+")
    f.add_argument("--results", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results")
    args = ap.parse_args(argv)
    if args.cmd == "refresh":
        for doc in args.docs:
            print(f"{doc}: {', '.join(refresh(doc, args.results)) or 'no study blocks'}", file=sys.stderr)
        return 0
    if args.cmd == "contrast":
        for d in (args.dest_a, args.dest_b):
            if not (d / "study.json").is_file():
                print(f"error: {d}: no study.json", file=sys.stderr)
                return 2
        print(render_contrast(args.dest_a, args.dest_b))
        return 0
    src = args.study if args.cmd == "export" else args.dest
    if not (src / "study.json").is_file():
        print(f"error: {src}: no study.json", file=sys.stderr)
        return 2
    if args.cmd == "export":
        export(args.study, args.dest)
        print(f"exported to {args.dest}", file=sys.stderr)
    print(render(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
