"""What a study's rows say: per cell, does the neuron need a deep network to be emulated?

Validation selects, test reports: the depth-1 network with the best validation AUC is compared with the network
of any depth with the best validation AUC (:func:`neuroemu.results.selection.pick_best`), both scored on the
test trials. Depth is "needed" when the best network's test AUC exceeds the depth-1 network's by more than both
``auc_margin`` and 2 combined SDs (the SDs over 12 random 67% subsets of the test traces, reference 9.4). The
published result (reference 9.6) is: needed for ``nmda``, not for ``ampa`` and ``iaf``; for ``iaf`` a single
unit (width 1, depth 1) should also come within ``auc_margin`` (or 2 SDs) of the best network. The same rule on
the somatic explained variance (margin :data:`EV_MARGIN` points) is reported beside it.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from neuroemu.results.findings import CellFindings, StudyFindings
from neuroemu.results.rows import SweepRow, finite, read_rows
from neuroemu.results.selection import finished, pick_best, smallest_reaching

__all__ = ["EXPECTED_DEPTH_NEEDED", "EV_MARGIN", "PUBLISHED_TRAIN_HOURS", "study_findings", "findings", "brief",
           "min_depth_reaching", "data_axis", "paired_depth_gain", "depth_gain_contrast"]

#: What the published work found (reference 9.6): does the cell need a deep network? (``ampa_sk`` follows
#: ``ampa``: the published comparison has no separate claim for it.)
EXPECTED_DEPTH_NEEDED = {"nmda": True, "ampa": False, "ampa_sk": False, "iaf": False}

#: Somatic explained-variance gain (percentage points) that counts as depth being needed for the voltage
#: (with the gain also > 2 SDs); reported beside the spike finding, which alone decides the verdict.
EV_MARGIN = 1.0

_BRIEF = ("name", "depth", "width", "receptive_field", "n_parameters", "spike_auc", "spike_auc_sd",
          "soma_explained_variance", "soma_explained_variance_sd", "tp_at_fp_0.0025", "val_spike_auc",
          "n_test_traces", "n_test_spikes")


def brief(r: SweepRow | None) -> dict[str, Any] | None:
    """The columns of a row that findings quote."""
    if r is None:
        return None
    d = r.to_dict()
    out = {k: d.get(k) for k in _BRIEF}
    if r.family != "tcn":
        out["family"] = r.family
    return out


def _sd(v: Any) -> float:
    return float(v) if finite(v) else 0.0


def min_depth_reaching(rows: Iterable[SweepRow], target_auc: float) -> int | None:
    """The smallest depth whose validation-selected network reaches ``target_auc`` on the test trials."""
    rows = [r for r in finished(rows) if r.depth is not None]
    for d in sorted({r.depth for r in rows}):
        r, _ = pick_best([x for x in rows if x.depth == d])
        if r is not None and finite(r.spike_auc) and r.spike_auc >= target_auc:
            return int(d)
    return None


def _cell(cell: str, cr: list[SweepRow], target_auc: float, auc_margin: float, min_test_spikes: int) -> CellFindings:
    tcn = [r for r in cr if r.family == "tcn"]
    d1, _ = pick_best([r for r in tcn if r.depth == 1])
    best, sel = pick_best(tcn)
    f = CellFindings(depth1=brief(d1), best=brief(best), selected_on=sel)
    n_sp = min(int((r.n_test_spikes if r is not None else 0) or 0) for r in (d1, best))
    if d1 is not None and best is not None and n_sp < min_test_spikes:
        f.too_few_test_spikes = n_sp
    elif d1 is not None and best is not None and finite(d1.spike_auc) and finite(best.spike_auc):
        gain = float(best.spike_auc) - float(d1.spike_auc)
        sd = math.hypot(_sd(best.spike_auc_sd), _sd(d1.spike_auc_sd))
        f.auc_gain_from_depth, f.auc_gain_sd = gain, sd
        f.gain_in_sd = (gain / sd) if sd > 0 else None
        f.depth_needed = bool(gain > auc_margin and gain > 2 * sd)
        if finite(d1.soma_explained_variance) and finite(best.soma_explained_variance):
            f.ev_gain_from_depth = float(best.soma_explained_variance) - float(d1.soma_explained_variance)
            f.ev_gain_sd = math.hypot(_sd(best.soma_explained_variance_sd), _sd(d1.soma_explained_variance_sd))
            f.depth_needed_for_voltage = bool(f.ev_gain_from_depth > EV_MARGIN and
                                              f.ev_gain_from_depth > 2 * f.ev_gain_sd)
        expected = EXPECTED_DEPTH_NEEDED.get(cell)
        if expected is not None:
            f.published_depth_needed = expected
            f.depth_matches_published = f.matches_published = f.depth_needed == expected
    if cell == "iaf":
        u, _ = pick_best([r for r in tcn if r.depth == 1 and r.width == 1])
        if u is not None and best is not None and finite(u.spike_auc) and finite(best.spike_auc):
            f.single_unit = brief(u)
            f.single_unit_auc_gap = float(best.spike_auc) - float(u.spike_auc)
            f.single_unit_suffices = bool(f.single_unit_auc_gap <= max(
                auc_margin, 2 * math.hypot(_sd(u.spike_auc_sd), _sd(best.spike_auc_sd))))
            if f.matches_published is not None:
                f.matches_published = f.matches_published and f.single_unit_suffices
    f.smallest_reaching_target = brief(smallest_reaching(tcn, target_auc))
    f.min_depth_reaching_target = min_depth_reaching(tcn, target_auc)
    emu, _ = pick_best(cr)
    if emu is not None and emu.family != "tcn":
        f.best_emulator = brief(emu)
    f.summary = summary_line(cell, f, target_auc)
    return f


def study_findings(rows: Iterable[SweepRow | dict], target_auc: float, auc_margin: float = 0.005,
                   cells: list[str] | None = None, min_test_spikes: int = 20) -> StudyFindings:
    """Per cell: best depth-1 network vs best network, the gain from depth with its combined SD, whether depth
    is needed, the smallest network reaching ``target_auc``, and whether this matches the published result.

    A cell is compared only when its test trials hold at least ``min_test_spikes`` spikes. ``reproduced`` is True
    when every cell of ``cells`` (default: the cells in ``rows``) could be compared and matches the published
    result, False when a compared cell contradicts it, and None (inconclusive) when some cell could not be
    compared; ``verdict`` says which in words.
    """
    rows = read_rows(rows)
    out = StudyFindings(target_auc=target_auc, auc_margin=auc_margin, min_test_spikes=min_test_spikes)
    cells = list(cells) if cells is not None else sorted({str(r.cell) for r in rows})
    matches: dict[str, bool] = {}
    for cell in cells:
        f = _cell(cell, [r for r in rows if str(r.cell) == cell], target_auc, auc_margin, min_test_spikes)
        if f.matches_published is not None:
            matches[cell] = f.matches_published
        out.cells[cell] = f
    missing = [c for c in cells if c not in matches]
    wrong = [c for c, ok in matches.items() if not ok]
    if wrong:
        out.reproduced = False
        out.verdict = "not reproduced: " + "; ".join(out.cells[c].summary for c in wrong)
    elif missing or not matches:
        out.reproduced = None
        out.verdict = (f"inconclusive: {', '.join(missing) or 'no cell'} could not be compared (no finished "
                       f"networks with a test AUC on at least {min_test_spikes} test spikes)")
    else:
        out.reproduced = True
        out.verdict = "reproduced: " + ", ".join(
            f"{c} {'needs' if out.cells[c].depth_needed else 'does not need'} depth" for c in cells)
    out.n_cells_compared = len(matches)
    out.cells_not_compared = missing
    return out


def findings(rows: Iterable[SweepRow | dict], target_auc: float, auc_margin: float = 0.005,
             cells: list[str] | None = None, min_test_spikes: int = 20) -> dict[str, Any]:
    """The JSON form of :func:`study_findings` (``study.json`` ``findings``)."""
    return study_findings(rows, target_auc, auc_margin, cells, min_test_spikes).to_dict()


def _fmt(v: Any, nd: int = 4) -> str:
    return f"{v:.{nd}f}" if finite(v) else "n/a"


def summary_line(cell: str, f: CellFindings, target: float) -> str:
    """One sentence per cell for the log and the report."""
    b = f.best
    if f.depth_needed is None:
        if f.too_few_test_spikes is not None and finite((b or {}).get("spike_auc")):
            return (f"{cell}: only {f.too_few_test_spikes} spikes in the test trials (best {b['name']} AUC "
                    f"{_fmt(b['spike_auc'])}): too few to compare depths -- simulate more or longer trials")
        if b is not None and not finite(b.get("spike_auc")):
            return (f"{cell}: no test AUC ({b.get('n_test_spikes')} spikes in its {b.get('n_test_traces')} test "
                    "traces): depths cannot be compared -- simulate more or longer trials")
        return f"{cell}: not enough finished networks to compare depths"
    d1 = f.depth1
    s = (f"{cell}: best {b['name']} test AUC {_fmt(b['spike_auc'])} +- {_fmt(b['spike_auc_sd'])} vs depth-1 "
         f"{d1['name']} {_fmt(d1['spike_auc'])} +- {_fmt(d1['spike_auc_sd'])} (gain {_fmt(f.auc_gain_from_depth)}"
         f" +- {_fmt(f.auc_gain_sd)}): depth {'needed' if f.depth_needed else 'not needed'}")
    if f.depth_matches_published is not None:
        s += f" ({'as' if f.depth_matches_published else 'unlike'} published)"
    if f.ev_gain_from_depth is not None:
        s += (f"; soma explained variance {_fmt(d1.get('soma_explained_variance'), 1)}% -> "
              f"{_fmt(b.get('soma_explained_variance'), 1)}% (gain {_fmt(f.ev_gain_from_depth, 1)} +- "
              f"{_fmt(f.ev_gain_sd, 1)} points: depth {'needed' if f.depth_needed_for_voltage else 'not needed'}"
              " for the voltage)")
    if f.single_unit_suffices is not None:
        s += (f"; best single unit {f.single_unit['name']}: AUC {_fmt(f.single_unit['spike_auc'])} +- "
              f"{_fmt(f.single_unit['spike_auc_sd'])} ("
              + ("suffices, as published" if f.single_unit_suffices else "falls short, unlike published") + ")")
    sm = f.smallest_reaching_target
    s += f"; smallest network with test AUC >= {target:g}: " + (
        f"{sm['name']} ({sm['n_parameters']} params, AUC {_fmt(sm['spike_auc'])})" if sm else "none")
    return s


# ---------------------------------------------------------------------------------------------- the data axis
#: Hours of training data of the published study, the target of the depth-gain extrapolation.
PUBLISHED_TRAIN_HOURS = 20.0


def _predictions(r: SweepRow):
    from pathlib import Path

    from neuroemu.evaluation.paired import load_predictions

    path = Path(r.run_dir or "") / "test_predictions.npz"
    return load_predictions(path) if path.is_file() else None


def _ols(x, y):
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _by_replicate(rows: Iterable[SweepRow]) -> dict[int, list[SweepRow]]:
    """The rows of each training replicate, in replicate order."""
    out: dict[int, list[SweepRow]] = {}
    for r in sorted(rows, key=lambda r: r.replicate):
        out.setdefault(r.replicate, []).append(r)
    return out


def _replicate_pairs(rows: list[SweepRow]) -> list[tuple[int, SweepRow, SweepRow]]:
    """Per training replicate, the validation-selected deep TCN (depth > 1) and one-layer TCN of ``rows``
    (both of that replicate)."""
    out = []
    for rep, at in _by_replicate(r for r in rows if r.family == "tcn").items():
        deep, _ = pick_best([r for r in at if (r.depth or 0) > 1])
        shallow, _ = pick_best([r for r in at if r.depth == 1])
        if deep is not None and shallow is not None:
            out.append((rep, deep, shallow))
    return out


def data_axis(rows: Iterable[SweepRow | dict], n_boot: int = 1000, level: float = 0.95, seed: int = 0,
              extrapolate_hours: float = PUBLISHED_TRAIN_HOURS) -> dict[str, Any]:
    """One cell's accuracy against training data, the paired gain from depth at each data size, its fit and
    extrapolation, and the FCI of the best emulator (the fields of :class:`CellFindings` of the same names).

    At each fraction of the training pool, the validation-selected deep TCN (depth > 1) and one-layer TCN are
    compared on the same test traces: ``delta_auc`` with its paired bootstrap CI (``n_boot`` replicates at
    ``level``, resampling test traces; the same replicates for every fraction). With several training
    replicates (``train_seeds``), the pair is selected within each replicate, ``delta_auc`` is the mean over
    replicates and the bootstrap resamples the replicates too (:func:`neuroemu.evaluation.paired.
    replicated_differences`), so the CI holds the training-seed variance. The fit is ordinary least squares of
    the gain on log10(hours); its slope per decade, and the gain extrapolated to ``extrapolate_hours``, get
    their CIs from the same replicates. ``grows_with_data``: the slope's CI lies above 0. The FCI (reference
    12.6) is that of the validation-selected best emulator of any family (any replicate) at the largest data
    size, with the bootstrap CI of its AUC."""
    import numpy as np

    from neuroemu.evaluation.paired import fci, replicated_differences, traces_needed, traces_to_resolve

    rows = [r for r in finished(rows) if r.fraction is not None]
    out: dict[str, Any] = {}
    fractions = sorted({float(r.fraction) for r in rows})
    if not fractions:
        return out
    scaling = []
    for f in fractions:
        at = [r for r in rows if float(r.fraction) == f]
        picks = [pick_best([r for r in at if r.family == "tcn" and r.depth == d])[0]
                 for d in sorted({r.depth for r in at if r.family == "tcn" and r.depth is not None})]
        others = {}
        for r in at:
            if r.family != "tcn":
                others.setdefault(r.model_spec or r.name, []).append(r)
        picks += [pick_best(g)[0] for g in others.values()]
        scaling += [{"train_hours": r.train_hours, "fraction": f, "train_trials": r.train_trials, "model": r.name,
                     "family": r.family, "depth": r.depth, "n_parameters": r.n_parameters, "spike_auc": r.spike_auc,
                     "spike_auc_sd": r.spike_auc_sd, "soma_explained_variance": r.soma_explained_variance,
                     "replicate": r.replicate}
                    for r in picks if r is not None]
    out["data_scaling"] = scaling
    groups, meta = [], []
    for f in fractions:
        pairs = []
        for rep, deep, shallow in _replicate_pairs([r for r in rows if float(r.fraction) == f]):
            pd, ps = _predictions(deep), _predictions(shallow)
            if pd is not None and ps is not None:
                pairs.append((rep, pd, ps, deep, shallow))
        if pairs:
            groups.append([(rep, pd, ps) for rep, pd, ps, _, _ in pairs])
            meta.append((f, [(d, s) for _, _, _, d, s in pairs]))
    best_all, _ = pick_best([r for r in rows if float(r.fraction) == fractions[-1]])
    best_pred = _predictions(best_all) if best_all is not None else None
    extra = [best_pred] if best_pred is not None else []
    if not groups and not extra:
        return out
    n_traces = (groups[0][0][1] if groups else extra[0]).n_traces
    if n_traces < traces_needed(level):
        out["ci_note"] = (f"{n_traces} scored test traces: a {100 * level:g}% CI over traces needs at least "
                          f"{traces_needed(level)}")
        return out
    res = replicated_differences(groups, n_boot, seed, extra)
    a = 100.0 * (1.0 - level) / 2.0

    def ci(v):
        v = v[np.isfinite(v)]
        return [float(np.percentile(v, a)), float(np.percentile(v, 100.0 - a))] if v.size else [None, None]

    gains = []
    for j, (f, pair_rows) in enumerate(meta):
        deep, shallow = pair_rows[0]
        lo, hi = ci(res.boot[:, j])
        g = {"train_hours": deep.train_hours, "fraction": f, "train_trials": deep.train_trials,
             "delta_auc": float(res.full[j]), "ci_low": lo, "ci_high": hi,
             "deep": deep.name, "deep_auc": float(np.mean([d.spike_auc for d, _ in pair_rows])),
             "shallow": shallow.name, "shallow_auc": float(np.mean([s.spike_auc for _, s in pair_rows])),
             "n_traces": n_traces, "n_seeds": len(pair_rows),
             "traces_to_resolve": traces_to_resolve(float(res.full[j]), lo, hi, n_traces)}
        if len(pair_rows) > 1:
            g["delta_auc_by_seed"] = res.by_seed[j]
            g["seed_sd"] = float(np.std(res.by_seed[j], ddof=1))
            g["deep_by_seed"] = [d.name for d, _ in pair_rows]
            g["shallow_by_seed"] = [s.name for _, s in pair_rows]
        gains.append(g)
    if gains:
        out["depth_gain_by_data"] = gains
    if len(gains) >= 2:
        x = np.log10([g["train_hours"] for g in gains])
        slope, intercept = _ols(x, [g["delta_auc"] for g in gains])
        boot = np.array([_ols(x, res.boot[b]) for b in range(res.boot.shape[0])])
        at_target = boot[:, 1] + boot[:, 0] * np.log10(extrapolate_hours)
        s_ci = ci(boot[:, 0])
        out["depth_gain_fit"] = {
            "model": "delta_auc = intercept + slope_per_decade * log10(train_hours) (least squares)",
            "slope_per_decade": slope, "slope_ci": s_ci, "intercept": intercept,
            "grows_with_data": bool(s_ci[0] is not None and s_ci[0] > 0),
            "extrapolation": {"train_hours": extrapolate_hours, "delta_auc": intercept + slope * np.log10(extrapolate_hours),
                              "ci": ci(at_target), "note": "an extrapolation of the fit beyond the data, not a "
                                                           "measurement"},
            "level": level, "n_boot": int(res.boot.shape[0]), "n_traces": n_traces,
            "n_seeds": max(g["n_seeds"] for g in gains)}
    if best_pred is not None:
        auc = float(res.extra_full[0])
        lo, hi = ci(res.extra_boot[:, 0])
        out["best_emulator"] = {**(brief(best_all) or {}), "family": best_all.family, "fraction": fractions[-1],
                                "train_hours": best_all.train_hours, "auc_ci": [lo, hi]}
        out["fci"] = fci(auc)
        out["fci_ci"] = [fci(hi), fci(lo)] if lo is not None else [None, None]
    return out


def paired_depth_gain(rows: Iterable[SweepRow | dict], n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> dict[str, Any] | None:
    """The validation-selected best TCN against the best one-layer TCN on the same test traces (the findings'
    main comparison, paired): ``{"delta_auc", "ci": [low, high], "n_traces", "n_seeds"}``, or None when
    predictions are missing or the test set is too small for the CI. With training replicates the pair is
    selected within each replicate and averaged, the CI resampling replicates and traces
    (:func:`neuroemu.evaluation.paired.replicated_differences`)."""
    from neuroemu.evaluation.paired import percentile_interval, replicated_differences, traces_needed

    group = []
    for rep, at in _by_replicate(r for r in finished(rows) if r.family == "tcn").items():
        best, _ = pick_best(at)
        d1, _ = pick_best([r for r in at if r.depth == 1])
        if best is None or d1 is None:
            continue
        pb, p1 = _predictions(best), _predictions(d1)
        if pb is None or p1 is None or pb.n_traces < traces_needed(level):
            continue
        group.append((rep, pb, p1))
    if not group:
        return None
    res = replicated_differences([group], n_boot, seed)
    out = {"delta_auc": float(res.full[0]), "ci": list(percentile_interval(res.boot[:, 0], level)),
           "n_traces": res.n_traces, "n_seeds": len(group)}
    if len(group) > 1:
        out["delta_auc_by_seed"] = res.by_seed[0]
    return out


def _get(f: Any, key: str) -> Any:
    return f.get(key) if isinstance(f, dict) else getattr(f, key, None)


def depth_gain_contrast(a: Any, b: Any, a_name: str = "nmda", b_name: str = "ampa") -> dict[str, Any] | None:
    """Does the gain from depth differ between two cells, and does it grow faster with data for one?

    ``a``, ``b``: the two cells' findings (:class:`CellFindings` or their JSON form, e.g. from two exported
    studies). Each cell's depth gain is paired within its own test set, but the two test sets are independent, so
    the difference ``a - b`` gets the MOVER interval of the two CIs
    (:func:`neuroemu.evaluation.paired.independent_difference`): at each fraction of the pool both cells were
    measured at with the same hours of training data, for the slope of the gain per decade of training hours and
    for its extrapolation (each fit over its own cell's data sizes: ``hours_<cell>``). None where either cell has
    no paired depth gain. ``larger_for_<a>`` / ``grows_faster_for_<a>``: the difference's CI at the largest
    shared data size / of the slopes lies above 0 (False where it lies below, None where it holds 0 or is
    missing)."""
    from neuroemu.evaluation.paired import independent_difference

    ga = {round(float(g["train_hours"]), 3): g for g in _get(a, "depth_gain_by_data") or []}
    gb = {round(float(g["train_hours"]), 3): g for g in _get(b, "depth_gain_by_data") or []}
    if not ga or not gb:
        return None

    def side(lo, hi):
        return None if lo is None or hi is None or lo <= 0.0 <= hi else bool(lo > 0.0)

    out: dict[str, Any] = {
        "cells": [a_name, b_name],
        "method": (f"{a_name} minus {b_name}; each cell's gain is paired on its own test traces, the two test sets "
                   "are independent: MOVER interval of the two bootstrap CIs (Zou & Donner 2008)"),
        f"hours_{a_name}": sorted(ga), f"hours_{b_name}": sorted(gb), "gain_difference": []}
    for h in sorted(set(ga) & set(gb)):
        x, y = ga[h], gb[h]
        d, lo, hi = independent_difference(x["delta_auc"], [x["ci_low"], x["ci_high"]],
                                           y["delta_auc"], [y["ci_low"], y["ci_high"]])
        out["gain_difference"].append({"train_hours": h, "fraction": x["fraction"],
                                       f"delta_auc_{a_name}": x["delta_auc"], f"delta_auc_{b_name}": y["delta_auc"],
                                       "difference": d, "ci": [lo, hi]})
    last = out["gain_difference"][-1] if out["gain_difference"] else None
    out[f"larger_for_{a_name}"] = side(*last["ci"]) if last else None
    fa, fb = _get(a, "depth_gain_fit"), _get(b, "depth_gain_fit")
    if fa and fb:
        d, lo, hi = independent_difference(fa["slope_per_decade"], fa["slope_ci"], fb["slope_per_decade"],
                                           fb["slope_ci"])
        out["slope_difference"] = {"value": d, "ci": [lo, hi], f"slope_{a_name}": fa["slope_per_decade"],
                                   f"slope_{b_name}": fb["slope_per_decade"]}
        out[f"grows_faster_for_{a_name}"] = side(lo, hi)
        ea, eb = fa["extrapolation"], fb["extrapolation"]
        if ea["train_hours"] == eb["train_hours"]:
            d, lo, hi = independent_difference(ea["delta_auc"], ea["ci"], eb["delta_auc"], eb["ci"])
            out["extrapolation_difference"] = {"train_hours": ea["train_hours"], "value": d, "ci": [lo, hi],
                                               "note": "an extrapolation of both fits, not a measurement"}
    out["summary"] = _contrast_summary(out, a_name, b_name)
    return out


def _contrast_summary(c: dict[str, Any], a: str, b: str) -> str:
    def iv(lo, hi):
        return "[n/a]" if lo is None else f"[{lo:+.4f}, {hi:+.4f}]"

    words = {True: "larger for", False: "smaller for", None: "not detectably different for"}
    parts = []
    if c["gain_difference"]:
        g = c["gain_difference"][-1]
        parts.append(f"at {g['train_hours']:g} h of training data the gain from depth is {words[c[f'larger_for_{a}']]} "
                     f"{a} than {b}: {g['difference']:+.4f} {iv(*g['ci'])}")
    else:
        parts.append("no data size measured for both")
    if "slope_difference" in c:
        s = c["slope_difference"]
        grows = {True: "grows faster", False: "grows slower", None: "does not grow detectably faster or slower"}
        parts.append(f"it {grows[c[f'grows_faster_for_{a}']]} with data for {a} than for {b}: slope difference "
                     f"{s['value']:+.4f} per decade {iv(*s['ci'])}")
    return f"{a} minus {b}: " + "; ".join(parts)
