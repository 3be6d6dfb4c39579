"""`neuroemu cell-info`: the segment table printed by the CLI."""
from __future__ import annotations

import csv
import io
import json

import pytest

from neuroemu.cli import main

from conftest import SHARED_DATA as SHARED  # noqa: E402


def _run(capsys, *argv: str) -> str:
    rc = main(["cell-info", *argv])
    out = capsys.readouterr().out
    assert rc == 0
    return out


def test_cell_info_matches_published_table(capsys):
    asc, ref_csv = SHARED / "cell1.asc", SHARED / "L5PC_cell1_segments.csv"
    if not (asc.is_file() and ref_csv.is_file()):
        pytest.skip("shared/data/cell1.asc not available")
    rows = list(csv.DictReader(io.StringIO(_run(capsys, "--morphology", str(asc)))))
    ref = list(csv.DictReader(ref_csv.open()))
    assert len(rows) == len(ref) == 639
    for ours, theirs in zip(rows, ref):
        assert int(ours["channel_exc"]) == int(theirs["channel_exc"])
        assert int(ours["channel_inh"]) == int(theirs["channel_inh"])
        assert ours["type"] == theirs["type"]
        assert ours["section"] == theirs["section"]
        assert float(ours["x"]) == pytest.approx(float(theirs["x"]), abs=1e-5)
        assert float(ours["seg_length_um"]) == pytest.approx(float(theirs["seg_length_um"]), abs=1e-3)
        assert float(ours["diam_um"]) == pytest.approx(float(theirs["diam_um"]), abs=1e-3)
        assert float(ours["path_dist_from_soma_center_um"]) == pytest.approx(
            float(theirs["path_dist_from_soma_center_um"]), abs=0.01)


def test_cell_info_default_cell_json_and_swc_export(capsys, tmp_path):
    swc = tmp_path / "default.swc"
    data = json.loads(_run(capsys, "--format", "json", "--export-swc", str(swc)))
    cols = data["columns"]
    for name in ("channel_exc", "channel_inh", "type", "section", "x", "seg_length_um", "diam_um",
                 "path_dist_from_soma_center_um"):
        assert name in cols
    n = len(data["data"])
    assert 550 <= n <= 720
    types = [row[cols.index("type")] for row in data["data"]]
    assert types == sorted(types, key=lambda t: t != "basal")  # basal rows first, then apical
    assert swc.is_file() and swc.stat().st_size > 1000
    # the exported SWC reloads to the same table
    rows = list(csv.DictReader(io.StringIO(_run(capsys, "--morphology", str(swc)))))
    assert len(rows) == n


def test_cell_info_bad_morphology(capsys, tmp_path):
    empty = tmp_path / "empty.swc"
    empty.write_text("")
    assert main(["cell-info", "--morphology", str(empty)]) == 2
    assert "empty.swc" in capsys.readouterr().err
