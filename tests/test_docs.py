"""The numbers the README quotes about the built-in cell are the ones the code produces."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SENTENCE = re.compile(
    r"(\d+) basal / (\d+) apical sections, (\d+) \+ (\d+) = (\d+) segments \((\d+) inputs\), basal\s+(\d+) um and "
    r"apical (\d+) um of dendrite, longest apical path ([\d.]+) um,.*?(\d+) segments in the Ca hot zone", re.S)


@pytest.fixture(scope="module")
def quoted():
    m = SENTENCE.search(README.read_text())
    assert m, "README no longer describes the built-in cell in the form this test reads"
    return [float(g) for g in m.groups()]


def test_readme_counts_of_the_built_in_cell(quoted):
    from neuroemu.cells.default_morphology import default_l5pc_morphology

    s = default_l5pc_morphology().summary()
    n_bsec, n_asec, n_bseg, n_aseg, n_seg, n_in, basal_um, apical_um, path_um, _ = quoted
    assert (n_bsec, n_asec) == (s["n_basal_sections"], s["n_apical_sections"])
    assert (n_bseg, n_aseg, n_seg, n_in) == (s["n_basal_segments"], s["n_apical_segments"], s["n_segments"],
                                             s["n_inputs"])
    assert n_bseg + n_aseg == n_seg and 2 * n_seg == n_in
    assert round(s["total_basal_length_um"]) == basal_um and round(s["total_apical_length_um"]) == apical_um
    assert round(s["max_apical_path_um"], 1) == path_um


def test_readme_hot_zone_segments_of_the_built_in_cell(quoted):
    from neuroemu.cells.l5pc import L5PC
    from neuroemu.cells.config import CellConfig

    table = L5PC(CellConfig()).segment_table()
    dist, kind = table.column("path_dist_from_soma_center_um"), table.column("type")
    assert int(np.sum((kind == "apical") & (dist >= 685.0) & (dist <= 885.0))) == quoted[-1]


RESULTS = README.parent / "docs" / "results"
STUDY_RECORD = README.parent / "docs" / "study.md"


@pytest.mark.parametrize("exported", sorted(p.parent.name for p in RESULTS.glob("*/intervals.json")) or ["none"])
def test_study_tables_are_the_committed_study_files(exported, study_tables):
    """README's study tables are regenerated from the study files committed under docs/results/ (study.json and
    the bootstrap intervals of its runs), so no number there can drift from what the study measured."""
    if exported == "none":
        pytest.skip("no exported study under docs/results")
    block = study_tables.render(RESULTS / exported)
    docs = {p.name: p.read_text() for p in (README, STUDY_RECORD)}
    assert any(block in text for text in docs.values()), (
        f"neither README.md nor docs/study.md holds `python benchmarks/study_tables.py render "
        f"docs/results/{exported}` verbatim")


def test_contrast_blocks_are_rendered_from_the_committed_study_files(study_tables):
    """A block comparing two cells' depth gains (``study_tables.py contrast A B``) is the render of the two
    exported studies it names."""
    for doc in (README, STUDY_RECORD):
        text = doc.read_text()
        for name in re.findall(r"<!-- study-tables:begin (contrast:\S+) -->", text):
            a, b = name.removeprefix("contrast:").split("+")
            assert study_tables.render_contrast(RESULTS / a, RESULTS / b) in text, (
                f"{doc.name}: the block {name} is not `python benchmarks/study_tables.py contrast docs/results/{a} "
                f"docs/results/{b}` verbatim")


def test_readme_and_the_study_record_link_to_files_that_exist():
    """The study record moved out of the README: its relative links (figures, results) must still resolve."""
    for doc in (README, STUDY_RECORD):
        prose = re.sub(r"`[^`]*`", "", doc.read_text())  # code spans are not links
        for target in re.findall(r"\]\(([^)#:]+)\)", prose):
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which does not exist"
