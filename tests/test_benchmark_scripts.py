"""The prepared benchmark scripts run: the shell scripts a GPU session executes parse, and the family benchmark
writes its table (a tiny CPU run) and refuses a device it cannot use with a one-line error."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path):
    subprocess.run(["bash", "-n", str(script)], check=True)


def _bench(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / "bench_families.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_bench_families_writes_its_table(tmp_path):
    out = tmp_path / "fam.json"
    r = _bench("--quick", "--only", "d_m=1 ", "--repeats", "1", "--threads", "1", "--json", str(out),
               tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["machine"]["device"] == "cpu"
    (row,) = doc["families"]
    assert row["model"].startswith("Branch-ELM d_m=1 ")
    assert row["n_params"] > 0 and row["flops_per_ms"] > 0
    for key in ("batch1_dense_ms_per_s", "batch1_events_ms_per_s", "large_events_ms_per_s", "train_windows_per_s"):
        assert row[key] > 0, key
    assert "| Branch-ELM d_m=1 (published) |" in r.stdout


def test_bench_families_refuses_an_unusable_device(tmp_path):
    r = _bench("--device", "tpu", tmp_path=tmp_path)
    assert r.returncode != 0
    assert "--device tpu" in r.stderr and "Traceback" not in r.stderr
