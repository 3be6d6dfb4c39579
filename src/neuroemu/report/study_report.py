"""The report of a complexity study (``STUDY/study.json``): the result, the summary figure, per-cell sweeps.

:func:`report_study` writes ``STUDY/report/index.html`` (self-contained) and the PNGs beside it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from neuroemu.errors import ConfigError
from neuroemu.report.html import Section, write_report
from neuroemu.results.selection import select_best

__all__ = ["study_sections", "report_study"]


def _num(v: Any, nd: int = 4) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else "n/a"


def _pm(r: dict | None, key: str, nd: int = 4) -> str:
    if not r:
        return "n/a"
    return f"{_num(r.get(key), nd)} +- {_num(r.get(key + '_sd'), nd)}"


def findings_table(find: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cell: depth-1 vs best network, the gain from depth, and the published expectation."""
    out = []
    for cell, f in (find.get("cells") or {}).items():
        d1, b = f.get("depth1"), f.get("best")
        sm = f.get("smallest_reaching_target")
        out.append({
            "cell": cell,
            "best depth-1 network": (d1 or {}).get("name"),
            "its test AUC": _pm(d1, "spike_auc"),
            "best network": (b or {}).get("name"),
            "its test AUC ": _pm(b, "spike_auc"),
            "AUC gain from depth": f"{_num(f.get('auc_gain_from_depth'))} +- {_num(f.get('auc_gain_sd'))}",
            "depth needed (measured)": f.get("depth_needed"),
            "published": f.get("published_depth_needed"),
            "matches": f.get("matches_published"),
            "soma EV depth-1 / best (%)": f"{_pm(d1, 'soma_explained_variance', 1)} / "
                                          f"{_pm(b, 'soma_explained_variance', 1)}",
            f"smallest network with test AUC >= {find.get('target_auc')}": (
                f"{sm['name']} ({sm['n_parameters']} params, AUC {_num(sm.get('spike_auc'))})" if sm else "none"),
            "min depth reaching it (validation-selected)": f.get("min_depth_reaching_target"),
        })
    return out


def _ci(v: Any, nd: int = 4) -> str:
    return f"[{_num(v[0], nd)}, {_num(v[1], nd)}]" if isinstance(v, (list, tuple)) and len(v) == 2 else "n/a"


def data_axis_section(doc: dict[str, Any]) -> Section | None:
    """The data axis of a study: accuracy against training data, the paired gain from depth at each data size
    with its CI, the fit and its extrapolation (labelled as such), the FCI of each cell's best emulator."""
    from neuroemu.report import figures as F

    find = doc.get("findings") or {}
    cells = find.get("cells") or {}
    gains = {c: f["depth_gain_by_data"] for c, f in cells.items() if f.get("depth_gain_by_data")}
    scaling = [{**r, "model": f"{c}: {r['model'] if r.get('family') != 'tcn' else 'depth ' + str(r.get('depth'))}"}
               for c, f in cells.items() for r in f.get("data_scaling") or []]
    if not gains and not scaling:
        return None
    figs = []
    if len({r["fraction"] for r in scaling}) > 1:
        figs.append((F.learning_curve(scaling, title="test AUC against training data"),
                     "Best network per depth (validation-selected) and every other family's network at each "
                     "amount of training data; error bars: SD over test subsets."))
    fits = {c: f.get("depth_gain_fit") for c, f in cells.items() if f.get("depth_gain_fit")}
    if gains:
        figs.append((F.depth_gain_by_data(gains, fits, 20.0),
                     "Paired gain from depth: the validation-selected deep TCN minus the validation-selected "
                     "one-layer TCN, both scored on the same test traces (with several training seeds: the mean "
                     "of each seed's pair); bars: bootstrap CI over test traces (and over seeds). "
                     "Dashed: least-squares fit against log10(hours); dotted: its extrapolation to the published "
                     "~20 h, not a measurement."))
    table = [{"cell": c, "train hours": g["train_hours"], "fraction": g["fraction"], "deep": g["deep"],
              "one layer": g["shallow"], "gain (paired)": _num(g["delta_auc"]), "CI": _ci([g["ci_low"], g["ci_high"]]),
              "test traces": g["n_traces"],
              "traces for a CI excluding 0 (estimate)": g.get("traces_to_resolve") or "-",
              "training seeds": g.get("n_seeds", 1),
              "gain per seed": ", ".join(_num(v) for v in g.get("delta_auc_by_seed") or []) or "-"}
             for c, rows in gains.items() for g in rows]
    fit_rows = [{"cell": c, "slope per decade of hours": _num(f["slope_per_decade"]), "slope CI": _ci(f["slope_ci"]),
                 "grows with data": f["grows_with_data"], "extrapolated gain at 20 h (extrapolation)":
                     f"{_num(f['extrapolation']['delta_auc'])} {_ci(f['extrapolation']['ci'])}"}
                for c, f in fits.items()]
    fci_rows = [{"cell": c, "best emulator": (f.get("best_emulator") or {}).get("name"),
                 "family": (f.get("best_emulator") or {}).get("family"),
                 "test AUC": _num((f.get("best_emulator") or {}).get("spike_auc")),
                 "FCI": _num(f.get("fci"), 3), "FCI CI": _ci(f.get("fci_ci"), 3)}
                for c, f in cells.items() if f.get("fci") is not None]
    con = find.get("contrast") or {}
    a, b = (con.get("cells") or ["", ""])[:2]
    con_rows = [{"": f"gain at {g['train_hours']:g} h", a: _num(g[f"delta_auc_{a}"]), b: _num(g[f"delta_auc_{b}"]),
                 f"{a} minus {b}": _num(g["difference"]), "CI (MOVER)": _ci(g["ci"])}
                for g in con.get("gain_difference") or []]
    if con.get("slope_difference"):
        sd = con["slope_difference"]
        con_rows.append({"": "slope per decade", a: _num(sd[f"slope_{a}"]), b: _num(sd[f"slope_{b}"]),
                         f"{a} minus {b}": _num(sd["value"]), "CI (MOVER)": _ci(sd["ci"])})
    tables = [t for t in (("paired gain from depth at each data size", table), ("fit of the gain against data",
              fit_rows), ("functional complexity index of the best emulator (largest data size)", fci_rows),
              (f"{a} against {b}: independent test sets, the difference's CI combines theirs (MOVER)", con_rows))
              if t[1]]
    return Section("The data axis: does the gain from depth grow with data?", find.get("data_verdict", ""),
                   figures=figs, tables=tables)


def _dataset_table(datasets: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("n_trials", "duration_ms", "n_channels", "inputs_preset", "output_spikes", "output_rate_hz",
            "silent_trials", "simulation_s_per_simulated_s", "simulation_cpu_s_per_simulated_s")
    return [{"cell": c, **{k: d.get(k) for k in keys}} for c, d in datasets.items()]


def study_sections(doc: dict[str, Any], study_dir: Path | None = None) -> list[Section]:
    """Report sections of a study document (the content of ``study.json``)."""
    from neuroemu.report import figures as F
    from neuroemu.report.sweep_report import done_rows, plot_rows, sweep_figures

    cfg = doc.get("config") or {}
    all_fractions = list(doc.get("rows") or [])
    rows = [r for r in all_fractions if r.get("fraction") in (None, 1.0)]  # the whole training pool
    done = [r for r in done_rows(rows) if (r.get("family") or "tcn") == "tcn"]
    find = doc.get("findings") or {}
    target = float(cfg.get("target_auc", 0.99))
    lines = [f.get("summary", "") for f in (find.get("cells") or {}).values()]
    verdict = ("The published finding (the NMDA cell needs depth; the AMPA-only cell and the integrate-and-fire "
               f"neuron are emulated by one layer, the latter by a single unit) at this scale: "
               f"{find.get('verdict', 'n/a').upper().split(':')[0]} -- {find.get('verdict', '')}") if find else \
        "The study has not finished: no findings yet."
    text = "\n\n".join([f"Scale '{doc.get('scale')}': {cfg.get('description', '')}", verdict, *lines,
                        "Selection: for each cell the depth-1 network and the best network overall are chosen on "
                        "the validation AUC and reported on the test trials. Depth counts as needed when the gain "
                        f"exceeds {cfg.get('auc_margin')} AUC and twice the combined SD (SD over 12 random 67% "
                        "subsets of the test traces, as published). Error bars everywhere are those SDs."])
    secs = [Section("Result", text, tables=[("findings per cell", findings_table(find))] if find else [])]
    if done:
        summ = F.study_summary(plot_rows(done), target_auc=target)
        secs.append(Section("Summary: accuracy vs depth per cell", "",
                            figures=[(summ, "Best test AUC and soma explained variance per depth for each cell over "
                                            "all widths and receptive fields, as in the published figure (error "
                                            "bars: SD over 12 random 67% subsets of the test traces). Star: the "
                                            f"smallest network (parameters) whose test AUC reaches {target:g}. "
                                            "The verdict above uses validation-selected networks instead.")]))
        plot = plot_rows(done)
        rf = (10, 260) if any(10 <= (r.get("receptive_field") or 0) <= 260 for r in done) else None
        secs.append(Section("Accuracy vs complexity (section 9.7)", "",
                            figures=[(F.complexity_panels(plot, group="cell", rf_range=rf),
                                      "Cumulative best over all configurations, pruned as in section 9.7.")]))
    axis = data_axis_section(doc)
    if axis is not None:
        secs.append(axis)
    if doc.get("datasets"):
        secs.append(Section("Datasets", "One dataset per cell, simulated for this study.",
                            tables=[_dataset_table(doc["datasets"])]))
    for cell in cfg.get("cells", []):
        cr = [r for r in done if r.get("cell") == cell]
        if not cr:
            continue
        shown = ("name", "depth", "width", "receptive_field", "n_parameters", "spike_auc", "spike_auc_sd",
                 "tp_at_fp_0.0025", "soma_explained_variance", "soma_explained_variance_sd", "val_spike_auc",
                 "train_minutes")
        best = [{k: r.get(k) for k in shown} for r in select_best(cr, "depth")]
        figs = [(fig, cap) for stem, fig, cap in sweep_figures(cr) if stem == "auc_vs_depth"]
        sw = (doc.get("sweeps") or {}).get(cell, {})
        secs.append(Section(f"Sweep: {cell}", f"Sweep directory: {sw.get('path')} (status {sw.get('status')}); "
                                              f"its own report: neuroemu report {sw.get('path')}",
                            figures=figs, tables=[("best network per depth (validation-selected)", best)]))
    if rows:
        all_rows = [{k: r.get(k) for k in ("cell", "name", "n_parameters", "spike_auc", "spike_auc_sd",
                                           "tp_at_fp_0.0025", "soma_explained_variance", "val_spike_auc",
                                           "train_steps", "train_minutes", "status")} for r in rows]
        secs.append(Section("All configurations", "Also in study.csv and study.json.", tables=[all_rows]))
    tim = doc.get("timings_s") or {}
    if tim:
        secs.append(Section("Timings", "Wall-clock seconds of the last call, per stage.",
                            tables=[[{"stage": k, "seconds": v} for k, v in tim.items()]]))
    return secs


def report_study(study_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the HTML report of a study directory (default ``<study_dir>/report``); return ``index.html``."""
    study_dir = Path(study_dir)
    path = study_dir / "study.json"
    if not path.is_file():
        raise ConfigError(f"{study_dir} is not a study directory: study.json is missing")
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise ConfigError(f"{path} is corrupt ({e})") from None
    out = Path(out_dir) if out_dir is not None else study_dir / "report"
    return write_report(out, f"Complexity study ({doc.get('scale')})", study_sections(doc, study_dir),
                        subtitle="How deep must a network be to emulate each neuron? (Beniaguev, Segev & London "
                                 "2021, re-measured)", footer=f"neuroemu {doc.get('neuroemu', '')} -- {path}")
