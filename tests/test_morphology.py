"""Morphology loading, the built-in synthetic L5PC, instantiation rules and the segment table."""
from __future__ import annotations

import csv
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

from neuroemu.cells.default_morphology import default_l5pc_morphology  # noqa: E402
from neuroemu.cells.morphology import (  # noqa: E402
    Morphology,
    MorphSection,
    instantiate,
    load_morphology,
    nseg_for_length,
)
from neuroemu.cells.segments import COLUMNS, SegmentTable, nexus_site, segment_table  # noqa: E402
from neuroemu.errors import MorphologyError  # noqa: E402

from conftest import SHARED_DATA as DATA  # noqa: E402
CELL1 = DATA / "cell1.asc"
PUBLISHED_CSV = DATA / "L5PC_cell1_segments.csv"
PUBLISHED_SUMMARY = DATA / "L5PC_cell1_summary.json"
HOT_ZONE = (685.0, 885.0)


def _need(*paths: Path) -> None:
    for p in paths:
        if not p.is_file():
            pytest.skip(f"shared data file {p} not available")


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cell1():
    _need(CELL1)
    morph = load_morphology(CELL1)
    cell = instantiate(morph)
    yield morph, cell, segment_table(cell)
    cell.delete()


@pytest.fixture(scope="module")
def default_cell():
    morph = default_l5pc_morphology()
    cell = instantiate(morph)
    yield morph, cell, segment_table(cell)
    cell.delete()


def _published_rows() -> list[dict[str, str]]:
    _need(PUBLISHED_CSV)
    with PUBLISHED_CSV.open() as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------
# cell1.asc against the published table
# ---------------------------------------------------------------------------------------------


def test_cell1_segment_table_matches_published(cell1):
    _, _, table = cell1
    rows = _published_rows()
    assert len(table) == len(rows) == 639
    cols = table.columns()
    assert [r["section"] for r in rows] == list(cols["section"])
    np.testing.assert_array_equal([int(r["channel_exc"]) for r in rows], cols["channel_exc"])
    np.testing.assert_array_equal([int(r["channel_inh"]) for r in rows], cols["channel_inh"])
    assert [r["type"] for r in rows] == list(cols["type"])
    for name, col, tol in (
        ("x", "x", 1e-5),
        ("seg_length_um", "seg_length_um", 1e-3),
        ("diam_um", "diam_um", 1e-3),
        ("area_um2", "area_um2", 1e-2),
        ("path_dist_from_soma_center_um", "path_dist_from_soma_center_um", 0.01),
    ):
        np.testing.assert_allclose(cols[col], [float(r[name]) for r in rows], atol=tol, rtol=0, err_msg=name)
    np.testing.assert_array_equal(cols["nseg"], [int(r["nseg"]) for r in rows])


def test_cell1_summary_matches_published(cell1):
    _need(PUBLISHED_SUMMARY)
    morph, cell, table = cell1
    ref = json.loads(PUBLISHED_SUMMARY.read_text())
    s = morph.summary()
    for key in ("n_basal_sections", "n_apical_sections", "n_basal_segments", "n_apical_segments", "n_segments"):
        assert s[key] == ref[key], key
    assert s["n_axon_sections"] == ref["morphology_axon_sections_before_replacement"]
    assert s["total_basal_length_um"] == pytest.approx(ref["total_basal_length_um"], abs=0.01)
    assert s["total_apical_length_um"] == pytest.approx(ref["total_apical_length_um"], abs=0.01)
    assert s["max_apical_path_um"] == pytest.approx(ref["apical_maxLength_um_from_apic0"], abs=0.01)
    assert cell.soma.L == pytest.approx(ref["soma_L_um"], abs=1e-3)
    assert cell.soma.diam == pytest.approx(ref["soma_diam_um"], abs=1e-3)
    assert cell.soma.nseg == ref["soma_nseg"]
    assert table.n_inputs == 1278


def test_cell1_nexus_is_apic50_near_0p9(cell1):
    _need(PUBLISHED_SUMMARY)
    _, cell, table = cell1
    ref = json.loads(PUBLISHED_SUMMARY.read_text())
    site = nexus_site(cell)
    assert site.section == "apic[50]"
    nseg = cell.apical[50].nseg
    assert abs(site.x - 0.9) < 0.5 / nseg  # same segment as the published apic[50](0.9)
    assert site.distance_um == pytest.approx(ref["nexus_apic50_x0p9_path_dist_um"], abs=0.01)
    assert table.nexus == site
    assert site.segment(cell).x == pytest.approx(site.x)


def test_cell1_regions(cell1):
    _, cell, branch = cell1
    published = segment_table(cell, tuft_rule="published")
    tuft = published.indices(region="tuft")
    np.testing.assert_array_equal(tuft, np.arange(366, 559))  # the published split, reference 2.2
    assert len(published.indices(region="basal")) == 262
    tuft_b = branch.indices(region="tuft")
    np.testing.assert_array_equal(tuft_b, np.arange(379, 559))  # daughters of the main bifurcation
    trunk = sorted({r.section for r in branch if r.region == "trunk"}, key=lambda s: int(s[5:-1]))
    assert trunk == [f"apic[{i}]" for i in (0, 1, 2, 3, 4, 14, 20, 26, 34, 36)]
    d = branch.column("path_dist_from_soma_center_um")
    hot = (d > HOT_ZONE[0]) & (d < HOT_ZONE[1]) & (branch.column("type") == "apical")
    assert hot.sum() == 28  # segment centres; the biophysics' far-end rule adds apic[50]'s last one
    with pytest.raises(ValueError, match="tuft_rule"):
        segment_table(cell, tuft_rule="nope")


# ---------------------------------------------------------------------------------------------
# instantiation rules
# ---------------------------------------------------------------------------------------------


def test_instantiate_published_rules(default_cell):
    from neuron import h

    morph, cell, _ = default_cell
    assert len(cell.axon) == 2
    for ax in cell.axon:
        assert (ax.L, ax.diam, ax.nseg) == (30.0, 1.0, 1)
    assert cell.axon[0].parentseg().sec == cell.soma and cell.axon[0].parentseg().x == 0.5
    assert cell.axon[1].parentseg().sec == cell.axon[0] and cell.axon[1].parentseg().x == 1.0
    assert cell.axon[0].orientation() == 0.0
    for sec in cell.all:
        assert sec.nseg == nseg_for_length(sec.L) == 1 + 2 * int(sec.L / 40)
    assert len(cell.basal) == len(morph.basal) and len(cell.apical) == len(morph.apical)
    assert [cell.section_name(s) for s in cell.basal[:2]] == ["dend[0]", "dend[1]"]
    assert cell.section_name(cell.apical[3]) == "apic[3]"
    assert len(cell.all) == 1 + len(cell.basal) + len(cell.apical) + 2
    roots = [s for s in cell.dendritic if s.parentseg().sec == cell.soma]
    assert roots and all(s.parentseg().x == 0.5 for s in roots)
    assert h.distance(cell.soma(0.5), roots[0](0)) == pytest.approx(0.0)


def test_two_instantiations_do_not_clash(default_cell):
    from neuron import h

    morph, first, table = default_cell
    before = sum(1 for _ in h.allsec())
    a, b = instantiate(morph), instantiate(morph, name="second_cell")
    assert sum(1 for _ in h.allsec()) == before + 2 * len(first.all)
    assert a.soma.name() != b.soma.name() != first.soma.name()
    assert b.soma.name() == "second_cell.soma"
    assert segment_table(b).rows == table.rows
    a.delete()
    assert sum(1 for _ in h.allsec()) == before + len(first.all)
    assert segment_table(b).rows == table.rows  # unaffected by deleting the other cell
    b.delete()
    assert sum(1 for _ in h.allsec()) == before


def test_zero_diameter_set_to_one_with_warning():
    morph = default_l5pc_morphology()
    secs = list(morph.sections)
    k = morph.position("dend[1]")
    pts = secs[k].points.copy()
    pts[:, 3] = 0.0
    s = secs[k]
    secs[k] = MorphSection(s.type, s.index, s.parent, s.parent_x, pts, s.connection_point)
    broken = Morphology(tuple(secs), source="zero-diam test")
    with pytest.warns(RuntimeWarning, match=r"zero-diam test: section dend\[1\] has zero diameter"):
        cell = instantiate(broken)
    try:
        assert all(seg.diam == pytest.approx(1.0) for seg in cell.basal[1])
    finally:
        cell.delete()


# ---------------------------------------------------------------------------------------------
# the built-in synthetic morphology
# ---------------------------------------------------------------------------------------------


def test_default_morphology_is_deterministic():
    fresh = default_l5pc_morphology.__wrapped__  # bypass the cache
    a, b = fresh(0), fresh(0)
    assert a == b
    assert fresh(1) != a
    assert "synthetic" in a.source
    assert all(not s.points.flags.writeable for s in a.sections)


def test_default_morphology_resembles_published(default_cell):
    morph, _, table = default_cell
    s = morph.summary()
    assert s["n_basal_sections"] == 84 and s["n_apical_sections"] == 109
    assert s["soma_L_um"] == pytest.approx(23.17, abs=0.01)
    assert s["soma_diam_um"] == pytest.approx(13.47, abs=0.01)
    for key, ref in (
        ("total_basal_length_um", 5133.5),
        ("total_apical_length_um", 7440.9),
        ("n_basal_segments", 262),
        ("n_apical_segments", 377),
        ("n_segments", 639),
    ):
        assert abs(s[key] - ref) <= 0.15 * ref, (key, s[key])
    assert 1200.0 <= s["max_apical_path_um"] <= 1400.0
    assert 240.0 <= s["max_basal_path_um"] <= 300.0
    assert table.n_segments == s["n_segments"] and table.n_inputs == 2 * s["n_segments"]
    d = table.column("path_dist_from_soma_center_um")
    hot = (d > HOT_ZONE[0]) & (d < HOT_ZONE[1]) & (table.column("type") == "apical")
    assert 20 <= hot.sum() <= 40
    assert abs(table.nexus.distance_um - 678.4) < 15.0
    counts = table.counts()
    assert counts["basal"] == s["n_basal_segments"]
    assert all(counts[f"region_{r}"] > 0 for r in ("basal", "oblique", "trunk", "tuft"))
    diam = table.column("diam_um")
    region = table.column("region")
    assert np.median(diam[region == "trunk"]) > 2.0
    assert 0.3 < np.median(diam[region == "basal"]) < 1.0
    assert 0.2 < np.percentile(diam[region == "basal"], 10) < 0.35  # thin basal tips, as cell1's (~0.29 um)
    assert diam.min() > 0.2


@pytest.mark.parametrize("seed", [1, 2])
def test_default_morphology_other_seeds_stay_close(seed):
    s = default_l5pc_morphology(seed).summary()
    assert abs(s["n_segments"] - 639) <= 0.15 * 639
    assert 1200.0 <= s["max_apical_path_um"] <= 1400.0


def test_default_swc_round_trip_is_exact(default_cell, tmp_path):
    morph, _, table = default_cell
    path = tmp_path / "default.swc"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the synthetic cell is exactly representable
        morph.to_swc(path)
    loaded = load_morphology(path)
    assert [s.name for s in loaded.sections] == [s.name for s in morph.sections]
    cell = instantiate(loaded)
    try:
        again = segment_table(cell)
    finally:
        cell.delete()
    assert again.rows == table.rows
    assert again.nexus == table.nexus


def test_cell1_swc_round_trip(cell1, tmp_path):
    morph, _, table = cell1
    path = tmp_path / "cell1.swc"
    with pytest.warns(UserWarning, match="100 child sections start with a diameter"):
        morph.to_swc(path)
    cell = instantiate(load_morphology(path))
    try:
        again = segment_table(cell)
    finally:
        cell.delete()
    a, b = table.columns(), again.columns()
    for col in ("section", "x", "nseg", "seg_length_um", "path_dist_from_soma_center_um", "x0", "y1"):
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    # SWC shares branch points, so only the first segment of a child section may change diameter
    changed = np.flatnonzero(np.abs(a["diam_um"] - b["diam_um"]) > 1e-9)
    assert changed.size > 0 and np.all(a["seg_index_in_section"][changed] == 0)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

_SWC_OK = (
    "# soma of 3 points; dendrites hang from the middle one (Import3d: soma(0.5))\n"
    "1 1 0 -5 0 5 -1\n2 1 0 0 0 5 1\n3 1 0 5 0 5 2\n"
    "4 3 2 -4 0 1 2\n5 3 2 -29 0 1 4\n"
    "6 4 0 8 0 1 2\n7 4 0 60 0 1 6\n"
)


def _retype(text: str, old: int, new: int) -> str:
    """SWC text with structure type ``old`` replaced by ``new``."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) == 7 and f[1] == str(old):
            f[1] = str(new)
        out.append(" ".join(f))
    return "\n".join(out) + "\n"


_ASC_OK = (
    '("CellBody"\n  (Color Red)\n  (CellBody)\n  (0 0 0 1)\n  (5 0 0 1)\n  (5 5 0 1)\n  (0 5 0 1)\n)\n'
    "( (Color Blue)\n  (Dendrite)\n  (0 -3 0 1)\n  (0 -40 0 1)\n)\n"
    "( (Color Green)\n  (Apical)\n  (0 8 0 2)\n  (0 80 0 2)\n)\n"
)

BAD_INPUTS = {
    "empty.swc": ("", "empty"),
    "comments_only.swc": ("# nothing here\n\n", "no SWC data lines"),
    "shape.txt": ("1 1 0 0 0 5 -1\n", "unknown morphology extension"),
    "columns.swc": (_SWC_OK.replace("5 3 2 -29 0 1 4", "5 3 2 -29 0 1"), "line 6: expected 7 columns"),
    "text.swc": (_SWC_OK.replace("5 3 2 -29 0 1 4", "5 3 2 -29 zero 1 4"), "line 6: non-numeric"),
    "parent.swc": (_SWC_OK.replace("5 3 2 -29 0 1 4", "5 3 2 -29 0 1 9"), "line 6: parent id 9"),
    "radius.swc": (_SWC_OK.replace("7 4 0 60 0 1 6", "7 4 0 60 0 -1 6"), "line 8: negative radius"),
    "nosoma.swc": (_SWC_OK.replace("1 1 0 -5", "1 3 0 -5"), "line 2: the root point must be soma"),
    "duplicate.swc": (_SWC_OK + "7 4 0 90 0 1 7\n", "line 9: duplicate id 7"),
    "type.swc": (_SWC_OK + "8 5 0 90 0 1 7\n", "line 9: unsupported SWC type 5"),
    "noapical.swc": (_retype(_SWC_OK, 4, 3), "no apical dendrite"),
    "nobasal.swc": (_retype(_SWC_OK, 3, 4), "no basal dendrite"),
    "empty.asc": ("   \n", "empty"),
    "nosoma.asc": (_ASC_OK.replace('"CellBody"', '"Body"').replace("(CellBody)", "(Closed)"), "no soma contour"),
    "extra.asc": (_ASC_OK.replace("(0 -40 0 1)\n)", "(0 -40 0 1)\n))"), "unmatched ')'"),
    "missing.asc": (_ASC_OK.rstrip().rstrip(")"), "line 14: unbalanced parentheses"),
    "noapical.asc": (_ASC_OK.replace("(Apical)", "(Dendrite)"), "no apical dendrite"),
    "nobasal.asc": (_ASC_OK.replace("(Dendrite)", "(Apical)"), "no basal dendrite"),
    "quote.asc": (_ASC_OK.replace('"CellBody"', '"CellBody'), "line 1: string without a closing"),
    "negative.asc": (_ASC_OK.replace("(0 80 0 2)", "(0 80 0 -2)"), "line 17: negative diameter"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_raises_morphology_error(tmp_path, name):
    text, message = BAD_INPUTS[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MorphologyError) as info:
        load_morphology(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(MorphologyError, match="not found") as info:
        load_morphology(tmp_path / "absent.asc")
    assert "absent.asc" in str(info.value)
    (tmp_path / "dir.swc").mkdir()
    with pytest.raises(MorphologyError, match="not a regular file"):
        load_morphology(tmp_path / "dir.swc")


def test_import3d_parse_error_is_reported(tmp_path):
    path = tmp_path / "garbage.asc"
    path.write_text(_ASC_OK.replace("(5 0 0 1)", "(5 0 0 1) hello"))
    with pytest.raises(MorphologyError, match="Import3d could not parse") as info:
        load_morphology(path)
    assert str(path) in str(info.value) and "line" in str(info.value)


def test_small_valid_files_load(tmp_path):
    (tmp_path / "ok.swc").write_text(_SWC_OK)
    (tmp_path / "ok.asc").write_text(_ASC_OK)
    swc = load_morphology(tmp_path / "ok.swc")
    asc = load_morphology(tmp_path / "ok.asc")
    for m in (swc, asc):
        assert [s.name for s in m.sections] == ["soma", "dend[0]", "apic[0]"]
        assert m.sections[1].parent == 0 and m.sections[1].parent_x == 0.5
    assert swc.soma.length == pytest.approx(10.0)
    assert swc.basal[0].length == pytest.approx(25.0)  # its own points (from the soma centre, a wire)
    assert asc.apical[0].length == pytest.approx(72.0)


def test_structural_validation():
    morph = default_l5pc_morphology()
    secs = list(morph.sections)
    k = morph.position("apic[0]")
    s = secs[k]
    secs[k] = MorphSection(s.type, s.index, 1, 1.0, s.points)  # hang the apical tree off the axon
    with pytest.raises(MorphologyError, match="attached to the axon"):
        Morphology(tuple(secs), source="bad tree")
    with pytest.raises(MorphologyError, match="no apical dendrite"):
        Morphology(tuple(x for x in morph.sections if x.type != "apical"), source="no apical")
    assert Morphology.from_dict(json.loads(json.dumps(morph.to_dict()))) == morph


# ---------------------------------------------------------------------------------------------
# segment table serialisation
# ---------------------------------------------------------------------------------------------


def test_segment_table_serialisation(default_cell):
    _, _, table = default_cell
    back = SegmentTable.from_json(table.to_json())
    assert back.rows == table.rows and back.nexus == table.nexus and back.tuft_rule == table.tuft_rule
    text = table.to_csv()
    header = text.splitlines()[0].split(",")
    assert tuple(header) == COLUMNS
    for col in ("channel_exc", "channel_inh", "type", "section", "x", "seg_length_um", "diam_um",
                "path_dist_from_soma_center_um", "region", "x0", "z1"):
        assert col in header
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(table)
    n = table.n_segments
    assert parsed[-1]["channel_inh"] == str(2 * n - 1) and parsed[-1]["segment_index"] == str(n - 1)
    buf = io.StringIO()
    assert table.to_csv(buf) is None and buf.getvalue() == text
    with pytest.raises(ValueError, match="format"):
        SegmentTable.from_dict({"format": "other"})
    d = table.column("path_dist_from_soma_center_um")
    assert np.all(d[table.indices(region="tuft")] > table.nexus.distance_um - 100)
