"""Every run prepared in ``benchmarks/*.yaml`` loads as the config its command reads, so a typo in a prepared
learning curve or study shows here, not hours into a session."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from neuroemu.config import read_config_file
from neuroemu.models.registry import parse_model_spec
from neuroemu.study.learning_curve import LearningCurveConfig
from neuroemu.study.study import StudyConfig

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CURVES = sorted(BENCHMARKS.glob("lc_*.yaml"))
STUDIES = sorted(BENCHMARKS.glob("study_*.yaml"))


def test_there_are_prepared_runs():
    assert CURVES and STUDIES


@pytest.mark.parametrize("path", CURVES, ids=lambda p: p.name)
def test_learning_curve_config_loads(path: Path):
    cfg = LearningCurveConfig.from_dict(read_config_file(path, "LearningCurveConfig")).validate()
    for spec in cfg.models:
        parse_model_spec(spec, where=f"{path.name} models")
    assert re.search(rf"--config benchmarks/{re.escape(path.name)}", path.read_text()), \
        f"{path.name}: its header does not give the command that runs it"


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_study_config_loads(path: Path):
    overrides = read_config_file(path, "StudyConfig")
    overrides.pop("scale", None)
    match = re.search(rf"neuroemu study --scale (\w+) --config benchmarks/{re.escape(path.name)}", path.read_text())
    assert match, f"{path.name}: its header does not give the command that runs it"
    cfg = StudyConfig.for_scale(match.group(1), **overrides)
    assert cfg.l5pc_trials > 0 and cfg.cells
