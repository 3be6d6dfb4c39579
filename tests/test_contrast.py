"""Comparing two cells' gains from depth, each paired on its own (independent) test set."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from neuroemu.evaluation.paired import independent_difference
from neuroemu.study.findings import depth_gain_contrast


def test_independent_difference_is_the_normal_interval_for_symmetric_cis():
    z = 1.959964
    d, lo, hi = independent_difference(0.010, [0.010 - z * 0.003, 0.010 + z * 0.003],
                                       0.002, [0.002 - z * 0.004, 0.002 + z * 0.004])
    assert d == pytest.approx(0.008)
    assert (lo, hi) == pytest.approx((0.008 - z * 0.005, 0.008 + z * 0.005))  # sqrt(3^2 + 4^2) = 5


def test_independent_difference_covers_at_its_level_by_simulation():
    rng = np.random.default_rng(0)
    z, hits = 1.959964, 0
    for _ in range(2000):
        a, b = rng.normal(0.3, 0.1), rng.normal(0.1, 0.2)
        _, lo, hi = independent_difference(a, [a - z * 0.1, a + z * 0.1], b, [b - z * 0.2, b + z * 0.2])
        hits += lo <= 0.2 <= hi
    assert 0.93 < hits / 2000 < 0.97


def test_independent_difference_keeps_asymmetric_tails_apart():
    d, lo, hi = independent_difference(0.0, [-0.01, 0.03], 0.0, [-0.02, 0.005])
    assert lo == pytest.approx(-math.hypot(0.01, 0.005)) and hi == pytest.approx(math.hypot(0.03, 0.02))
    assert independent_difference(0.01, [None, None], 0.0, [-0.01, 0.01]) == (0.01, None, None)
    with pytest.raises(ValueError, match="must hold its estimate"):
        independent_difference(0.05, [0.0, 0.01], 0.0, [-0.01, 0.01])


def _cell(gains, slope=None):
    out = {"depth_gain_by_data": [{"train_hours": h, "fraction": f, "delta_auc": d, "ci_low": lo, "ci_high": hi}
                                  for h, f, d, lo, hi in gains]}
    if slope is not None:
        s, slo, shi = slope
        out["depth_gain_fit"] = {"slope_per_decade": s, "slope_ci": [slo, shi],
                                 "extrapolation": {"train_hours": 20.0, "delta_auc": 2 * s, "ci": [2 * slo, 2 * shi]}}
    return out


def test_contrast_compares_equal_hours_only_and_says_which_way():
    nmda = _cell([(0.135, 0.125, -0.011, -0.026, -0.001), (1.08, 1.0, 0.020, 0.014, 0.026)], (0.03, 0.02, 0.04))
    ampa = _cell([(1.08, 1.0, 0.002, -0.001, 0.005), (0.30, 1.0, 0.008, 0.005, 0.011)], (0.0, -0.005, 0.004))
    c = depth_gain_contrast(nmda, ampa)
    assert [g["train_hours"] for g in c["gain_difference"]] == [1.08]  # 0.135 and 0.30 h: one cell each
    g = c["gain_difference"][0]
    assert g["difference"] == pytest.approx(0.018) and g["ci"][0] > 0
    assert c["larger_for_nmda"] is True and c["grows_faster_for_nmda"] is True
    assert c["slope_difference"]["value"] == pytest.approx(0.03)
    assert "larger for nmda" in c["summary"] and "grows faster" in c["summary"]
    json.dumps(c)  # stored in study.json


def test_contrast_with_overlapping_gains_is_undecided_and_without_gains_absent():
    nmda = _cell([(1.08, 1.0, 0.008, 0.002, 0.013)])
    ampa = _cell([(1.08, 1.0, 0.012, 0.007, 0.017)])
    c = depth_gain_contrast(nmda, ampa)
    assert c["gain_difference"][0]["ci"][0] < 0 < c["gain_difference"][0]["ci"][1]
    assert c["larger_for_nmda"] is None and "grows_faster_for_nmda" not in c
    assert "not detectably different" in c["summary"]
    assert depth_gain_contrast(nmda, {"depth_gain_by_data": []}) is None


def test_contrast_block_renders_from_two_exported_studies(tmp_path, study_tables):
    for name, cell, f in (("a", "nmda", _cell([(1.08, 1.0, 0.020, 0.014, 0.026)], (0.03, 0.02, 0.04))),
                          ("b", "ampa", _cell([(1.08, 1.0, 0.002, -0.001, 0.005)], (0.0, -0.005, 0.004)))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "study.json").write_text(json.dumps({"config": {"cells": [cell]},
                                                                "findings": {"cells": {cell: f}}}))
    block = study_tables.render_contrast(tmp_path / "a", tmp_path / "b")
    assert block.startswith("<!-- study-tables:begin contrast:a+b -->")
    assert "+0.0180 [+0.0113, +0.0247]" in block  # 0.018 -/+ hypot(0.006, 0.003)
    assert "larger for nmda" in block
    doc = tmp_path / "doc.md"
    doc.write_text("x\n<!-- study-tables:begin contrast:a+b -->\nold\n<!-- study-tables:end contrast:a+b -->\ny\n")
    assert study_tables.refresh(doc, tmp_path) == ["contrast:a+b"]
    assert doc.read_text() == "x\n" + block + "\ny\n"


def test_a_study_of_both_l5pc_variants_ends_its_data_verdict_with_their_contrast():
    from neuroemu.results.findings import CellFindings
    from neuroemu.study.study import data_findings

    fit = {"slope_per_decade": 0.02, "slope_ci": [0.01, 0.03], "grows_with_data": True,
           "extrapolation": {"train_hours": 20.0, "delta_auc": 0.03, "ci": [0.02, 0.04]}}
    gains = [{"train_hours": 1.08, "fraction": 1.0, "delta_auc": 0.01, "ci_low": 0.005, "ci_high": 0.015}]
    cells = {c: CellFindings(depth_gain_by_data=gains, depth_gain_fit=fit) for c in ("nmda", "ampa", "iaf")}
    out = data_findings(cells)
    assert out["contrast"]["cells"] == ["nmda", "ampa"] and out["contrast"]["slope_difference"]["value"] == 0.0
    assert out["data_verdict"].startswith("nmda: gain from depth grows") and out["data_verdict"].endswith(
        out["contrast"]["summary"])
    assert "contrast" not in data_findings({"nmda": cells["nmda"], "iaf": cells["iaf"]})
