"""The fast default solver: fidelity to the published settings, determinism, dendrites recorded in
CoreNEURON, the solver fingerprint and the dataset writer's refusal to mix numerics.

No timing assertions (speed is measured by ``benchmarks/bench_simulation.py``, see docs/simulation.md).
The NEURON checks run in a fresh process, so that the direct-evaluation CoreNEURON build is the first
mechanism library loaded (it is compiled once into the cache, one to two minutes).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neuroemu.dataset.format import DatasetConfig
from neuroemu.dataset.writer import DatasetWriter, solver_fingerprint
from neuroemu.errors import DatasetError
from neuroemu.simulation.solver import SolverConfig

# ---------------------------------------------------------------- fingerprint (no NEURON needed)


def test_fingerprint_tells_numerics_apart():
    new, old, pub = SolverConfig(), SolverConfig.old_default(), SolverConfig.published()
    assert new.use_tables is False and old.use_tables is True
    assert old == SolverConfig(use_tables=True)
    prints = {new.fingerprint(), old.fingerprint(), pub.fingerprint(), SolverConfig(dt_ms=0.04).fingerprint(),
              SolverConfig(coreneuron=False).fingerprint()}
    assert len(prints) == 5
    assert all(p.startswith("solver-") and len(p) == len("solver-") + 12 for p in prints)
    assert SolverConfig().fingerprint() == new.fingerprint()  # stable
    assert SolverConfig.from_dict(new.to_dict()).fingerprint() == new.fingerprint()
    # recording more does not change the numbers of a CoreNEURON run ...
    assert new.numerics()["engine"] == "coreneuron" and new.uses_coreneuron(record_dendrites=True)
    # ... but recording every segment at every step (published) forces classic NEURON
    assert not pub.uses_coreneuron() and pub.numerics()["engine"] == "neuron"


def _l5pc_config(**solver) -> DatasetConfig:
    return DatasetConfig(cell={"kind": "l5pc", "variant": "nmda", "morphology": None}, n_trials=2,
                         duration_ms=100, seed=3, solver=SolverConfig(**solver).to_dict() if solver else None)


def test_dataset_of_the_old_default_is_not_extended_with_the_new(tmp_path):
    old = _l5pc_config(use_tables=True)
    DatasetWriter(tmp_path, old, n_exc=10, n_inh=10).prepare()
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    assert manifest["solver_fingerprint"] == SolverConfig.old_default().fingerprint()

    new = _l5pc_config()  # the current default solver
    assert new.solver == SolverConfig()
    with pytest.raises(DatasetError) as info:
        DatasetWriter(tmp_path, new, n_exc=10, n_inh=10).prepare()
    msg = str(info.value)
    assert "solver.use_tables" in msg
    assert SolverConfig.old_default().fingerprint() in msg and SolverConfig().fingerprint() in msg
    assert "--out" in msg and "old_default" in msg and '"use_tables": true' in msg
    # the dataset is untouched, and its own settings still extend it
    assert json.loads((tmp_path / "dataset.json").read_text())["config"]["solver"]["use_tables"] is True
    more = DatasetConfig.from_dict({**old.to_dict(), "n_trials": 3})
    assert DatasetWriter(tmp_path, more, n_exc=10, n_inh=10).prepare() == [0, 1, 2]


def test_other_config_differences_keep_their_message(tmp_path):
    DatasetWriter(tmp_path, _l5pc_config(), n_exc=10, n_inh=10).prepare()
    other = DatasetConfig.from_dict({**_l5pc_config().to_dict(), "seed": 4})
    with pytest.raises(DatasetError, match="differs in seed"):
        DatasetWriter(tmp_path, other, n_exc=10, n_inh=10).prepare()


def test_solver_fingerprint_of_dicts():
    assert solver_fingerprint(None) is None
    assert solver_fingerprint(SolverConfig().to_dict()) == SolverConfig().fingerprint()
    assert solver_fingerprint({"no_such_field": 1}) == "unknown"


# ---------------------------------------------------------------- NEURON: one fresh process

_CHECKS = textwrap.dedent("""
    import json
    import numpy as np
    from neuroemu.cells.config import CellConfig
    from neuroemu.cells import mechanisms
    from neuroemu.inputs.generator import default_preset_name, generate_inputs, preset
    from neuroemu.simulation import make_simulator
    from neuroemu.simulation.solver import SolverConfig

    T = 600  # three CHUNK_MS pieces when dendrites are recorded in CoreNEURON
    sim = make_simulator(CellConfig(), SolverConfig())  # first to load mechanisms: the direct build
    tab = sim.segment_table()
    inputs, _ = generate_inputs(preset(default_preset_name("l5pc", "nmda")), tab.column("seg_length_um"),
                                tab.column("type"), T, np.random.default_rng(0))
    nexus = [k for k, seg in enumerate(sim.cell.segments)
             if seg.sec == sim.cell.nexus_segment.sec and abs(seg.x - sim.cell.nexus_segment.x) < 1e-9]

    def f16_ulps(a, b):  # difference in float16 steps
        a, b = np.asarray(a, np.float16), np.asarray(b, np.float16)
        return int(np.max(np.abs(a.view(np.int16).astype(int) - b.view(np.int16).astype(int))))

    out = {"tables_loaded": mechanisms.tables_loaded(), "nexus": nexus}
    a = sim.run(inputs, T, seed=0)
    b = sim.run(inputs, T, seed=0)
    d = sim.run(inputs, T, seed=0, record_dendrites=True)
    out["engines"] = [r.config["engine"] for r in (a, b, d)]
    out["repeat_same_bytes"] = a.soma_v_1ms.tobytes() == b.soma_v_1ms.tobytes() and \\
        a.spike_times_ms.tobytes() == b.spike_times_ms.tobytes()
    out["dend_same_soma"] = a.soma_v_1ms.tobytes() == d.soma_v_1ms.tobytes() and \\
        a.spike_times_ms.tobytes() == d.spike_times_ms.tobytes() and a.nexus_v_1ms.tobytes() == d.nexus_v_1ms.tobytes()
    out["dend_shape"] = list(d.dend_v_1ms.shape)
    out["dend_dtype"] = str(d.dend_v_1ms.dtype)
    out["dend_vs_nexus_ulps"] = f16_ulps(d.dend_v_1ms[nexus[0]], d.nexus_v_1ms)
    out["soma_range"] = float(np.ptp(a.soma_v_1ms))
    sim.solver = SolverConfig(coreneuron=False)  # classic NEURON records at 1 ms itself
    c = sim.run(inputs, T, seed=0, record_dendrites=True)
    out["classic_engine"] = c.config["engine"]
    out["dend_vs_classic_ulps"] = f16_ulps(d.dend_v_1ms, c.dend_v_1ms)
    out["soma_vs_classic_mv"] = float(np.max(np.abs(a.soma_v_1ms - c.soma_v_1ms)))
    sim.solver = SolverConfig(dt_ms=1 / 30)  # 1-ms grid between steps: interpolated, like the soma
    n = sim.run(inputs, T, seed=0, record_dendrites=True)
    out["offgrid_engine"] = n.config["engine"]
    out["offgrid_dend_vs_nexus_ulps"] = f16_ulps(n.dend_v_1ms[nexus[0]], n.nexus_v_1ms)
    sim.solver = SolverConfig.published()
    p = sim.run(inputs, T, seed=0)
    out["published_engine"] = p.config["engine"]
    out["spikes"] = a.spike_times_ms.tolist()
    out["published_spikes"] = p.spike_times_ms.tolist()
    clip = lambda v: np.minimum(np.asarray(v, float), -55.0)
    out["rmse_subthreshold_mv"] = float(np.sqrt(np.mean((clip(a.soma_v_1ms) - clip(p.soma_v_1ms)) ** 2)))
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    env = dict(os.environ, NEURON_MODULE_OPTIONS="-nogui")
    proc = subprocess.run([sys.executable, "-c", _CHECKS], cwd=tmp_path_factory.mktemp("sim"), env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_default_runs_the_direct_build_in_coreneuron(checks):
    assert checks["tables_loaded"] is False
    assert checks["engines"] == ["coreneuron"] * 3  # dendrites no longer leave the fast path
    assert checks["offgrid_engine"] == "coreneuron"
    assert checks["classic_engine"] == "neuron" and checks["published_engine"] == "neuron"


def test_same_inputs_same_bytes(checks):
    assert checks["repeat_same_bytes"]


def test_recording_dendrites_changes_nothing_else(checks):
    assert checks["dend_same_soma"]  # soma, nexus and spikes: the same bytes as soma-only
    assert checks["dend_shape"] == [629, 600] and checks["dend_dtype"] == "float16"
    assert checks["nexus"] and checks["dend_vs_nexus_ulps"] <= 1  # the nexus segment's row is the nexus trace
    assert checks["offgrid_dend_vs_nexus_ulps"] <= 1
    # CoreNEURON's step-by-step samples kept at 1 ms = classic NEURON's own 1-ms recording
    assert checks["dend_vs_classic_ulps"] <= 1
    assert checks["soma_vs_classic_mv"] < 1e-4


def test_default_is_faithful_to_the_published_settings(checks):
    ref, got = np.array(checks["published_spikes"]), np.array(checks["spikes"])
    assert len(ref) >= 3 and checks["soma_range"] > 20  # the trial has output spikes to compare
    assert len(got) == len(ref)  # no missing and no extra spikes
    assert np.max(np.abs(got - ref)) <= 1.0
    assert checks["rmse_subthreshold_mv"] < 1.0
