"""Shared test fixtures. The published morphology and its tables live in ``../shared/data`` (beside the
repository; ``NEUROEMU_SHARED_DATA`` overrides the folder): tests that need them skip cleanly without them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

#: Where the shared data would be (it may not exist).
SHARED_DATA = Path(os.environ.get("NEUROEMU_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_file(name: str) -> Path:
    """The path of a shared data file; skips the calling test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"shared data file {path} not available")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder with the published morphology (skips when absent)."""
    shared_file("cell1.asc")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cell1_asc() -> Path:
    """The published morphology ``cell1.asc`` (skips when absent)."""
    return shared_file("cell1.asc")


@pytest.fixture(scope="session")
def cell1_segments_csv() -> Path:
    """The published cell1 segment table (skips when absent)."""
    return shared_file("L5PC_cell1_segments.csv")


@pytest.fixture(scope="session")
def study_tables():
    """``benchmarks/study_tables.py`` as a module (a script, not part of the package)."""
    return _benchmark_script("study_tables")


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script(NAME)``: ``benchmarks/NAME.py`` as a module."""
    return _benchmark_script


def _benchmark_script(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
