"""Dataset format: writer/reader round trip, determinism across workers, resume, corruption, Dask, NeuronIO."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuroemu.simulation.iaf import IAFSimulator
from neuroemu.dataset.format import MANIFEST_NAME, DatasetConfig, shard_relpath
from neuroemu.dataset.info import dataset_info
from neuroemu.dataset.neuronio import import_neuronio
from neuroemu.dataset.reader import NeuroDataset, read_shard
from neuroemu.dataset.runner import build_dataset, default_simulator_factory, make_trial_inputs, recycle_after_trials
from neuroemu.dataset.verify import verify_dataset
from neuroemu.errors import ConfigError, DatasetError
from neuroemu.simulation.solver import SolverConfig
from neuroemu.simulation.detection import detect_spikes


def small_config(**kw) -> DatasetConfig:
    base = dict(cell={"kind": "iaf"}, n_trials=4, duration_ms=1500, seed=7, release_probability=0.8)
    base.update(kw)
    return DatasetConfig(**base)


def shard_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((d / "shards").glob("*.h5"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ds"
    build_dataset(small_config(), out, workers=1, progress=False)
    return out


# ---- round trip --------------------------------------------------------------------------------------------

def test_round_trip_matches_direct_simulation(reference):
    ds = NeuroDataset(reference)
    assert (ds.n_trials, ds.n_exc, ds.n_inh, ds.n_channels, ds.duration_ms) == (4, 80, 20, 100, 1500)
    assert ds.trial_indices == [0, 1, 2, 3] and ds.complete and ds.segments is None
    assert ds.config["seed"] == 7 and ds.config["cell"]["kind"] == "iaf"
    cfg = small_config()
    sim = IAFSimulator()
    for i in (0, 3):
        inputs, params, sim_seed = make_trial_inputs(cfg, i, 80, 20)
        res = sim.run(inputs, 1500, seed=sim_seed, release_probability=0.8)
        tr = ds.trial(i)
        assert tr.index == i and tr.seed == sim_seed
        assert np.array_equal(tr.inputs.exc, inputs.exc) and np.array_equal(tr.inputs.inh, inputs.inh)
        assert np.array_equal(tr.exc_transmitted, res.exc_transmitted)
        assert tr.soma_v_1ms.dtype == np.float32 and np.array_equal(tr.soma_v_1ms, res.soma_v_1ms)
        assert tr.spike_times_ms.dtype == np.float64 and np.array_equal(tr.spike_times_ms, res.spike_times_ms)
        assert tr.generator_params["interval_ms"] == params["interval_ms"]
        assert np.array_equal(tr.generator_params["exc_per_100ms"], params["exc_per_100ms"])
        assert np.array_equal(ds.spike_train(i), res.spike_train())
        assert np.array_equal(ds.soma_v(i), res.soma_v_1ms)
        # dense windows, exc columns first, presynaptic vs transmitted
        x = ds.dense_inputs(i, 300, 700)
        assert x.dtype == np.uint8 and x.shape == (400, 100)
        assert np.array_equal(x, inputs.dense(80, 300, 700, n_inh=20))
        xt = ds.dense_inputs(i, 300, 700, inputs="transmitted")
        assert np.array_equal(xt, tr.transmitted_inputs().dense(80, 300, 700, n_inh=20))
        assert xt.sum() < x.sum()
    # windows reaching outside the trial are zero padded; batches equal single windows
    w = ds.dense_inputs(1, -100, 300)
    assert not w[:100].any() and np.array_equal(w[100:], ds.dense_inputs(1, 0, 300))
    b = ds.batch_inputs([0, 2], [100, 900], 400)
    assert b.shape == (2, 400, 100) and np.array_equal(b[1], ds.dense_inputs(2, 900, 1300))


def test_split_is_by_trial_and_deterministic(reference):
    ds = NeuroDataset(reference)
    a = ds.split((0.5, 0.25, 0.25), seed=3)
    assert sorted(sum(a, [])) == [0, 1, 2, 3] and [len(x) for x in a] == [2, 1, 1]
    assert a == ds.split((0.5, 0.25, 0.25), seed=3)


def test_info_numbers(reference):
    info = dataset_info(reference)
    ds = NeuroDataset(reference)
    spikes = sum(ds.spike_times(i).size for i in ds.trial_indices)
    assert info["n_trials"] == 4 and info["hours"] == pytest.approx(4 * 1.5 / 3600)
    assert info["output_rate_hz"] == pytest.approx(spikes / 6.0)
    n_exc = sum(ds.trial(i).inputs.exc.shape[0] for i in ds.trial_indices)
    assert info["exc_rate_hz"] == pytest.approx(n_exc / (6.0 * 80))
    assert info["exc_transmitted_rate_hz"] < info["exc_rate_hz"]


# ---- determinism -------------------------------------------------------------------------------------------

def test_shards_byte_identical_for_one_and_two_workers(reference, tmp_path):
    out = tmp_path / "two"
    build_dataset(small_config(), out, workers=2, progress=False)
    assert shard_bytes(out) == shard_bytes(reference)
    m1 = json.loads((reference / MANIFEST_NAME).read_text())
    m2 = json.loads((out / MANIFEST_NAME).read_text())
    assert [e["sha256"] for e in m1["shards"]] == [e["sha256"] for e in m2["shards"]]


class PidRecordingFactory:
    """The default simulator factory that leaves a file named after each process that builds a simulator."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = str(log_dir)

    def __call__(self, cell: dict):
        (Path(self.log_dir) / str(os.getpid())).touch()
        return default_simulator_factory(cell)


def test_workers_are_replaced_by_fresh_processes_and_the_bytes_stay(reference, tmp_path):
    """CoreNEURON keeps memory per trial, so long jobs run in groups on fresh workers; a trial's bytes do not
    depend on the process that simulated it. One worker with recycling still runs in a worker process."""
    pids = tmp_path / "pids"
    pids.mkdir()
    one = tmp_path / "one"
    build_dataset(small_config(), one, workers=1, progress=False, recycle_after=1,
                  simulator_factory=PidRecordingFactory(pids))
    built = {p.name for p in pids.iterdir()}
    assert len(built) == 4 and str(os.getpid()) not in built  # one fresh process per trial
    assert shard_bytes(one) == shard_bytes(reference)
    two = tmp_path / "two"
    build_dataset(small_config(), two, workers=2, progress=False, recycle_after=1)
    assert shard_bytes(two) == shard_bytes(reference)


def test_only_coreneuron_trials_recycle_their_workers():
    l5pc = DatasetConfig(n_trials=10, duration_ms=6000)
    assert recycle_after_trials(l5pc) == 50  # 300 simulated seconds
    assert recycle_after_trials(l5pc.replace(duration_ms=1000000)) == 1
    assert recycle_after_trials(l5pc.replace(solver=SolverConfig.published())) is None  # classic NEURON
    assert recycle_after_trials(small_config()) is None  # the NumPy I&F keeps nothing


def test_dask_local_cluster_gives_identical_shards(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        build_dataset(small_config(), tmp_path / "dask", client=client, progress=False)
    assert shard_bytes(tmp_path / "dask") == shard_bytes(reference)


def test_extending_a_dataset_keeps_earlier_shards(reference, tmp_path):
    out = tmp_path / "grow"
    build_dataset(small_config(n_trials=2), out, workers=1, progress=False)
    build_dataset(small_config(n_trials=4), out, workers=1, progress=False)
    assert shard_bytes(out) == shard_bytes(reference)


# ---- resume ------------------------------------------------------------------------------------------------

class _Interrupt:
    """Simulator that is 'killed' (KeyboardInterrupt) on its n-th run."""

    def __init__(self, n):
        self.sim, self.n, self.calls = IAFSimulator(), n, 0
        self.n_exc, self.n_inh = 80, 20

    def segment_table(self):
        return None

    def run(self, *a, **k):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.sim.run(*a, **k)


def interrupting_factory(cell):
    return _Interrupt(3)


def test_resume_after_interruption_and_kill_leftovers(reference, tmp_path):
    out = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        build_dataset(small_config(), out, workers=1, progress=False, simulator_factory=interrupting_factory)
    m = json.loads((out / MANIFEST_NAME).read_text())
    assert [e["index"] for e in m["shards"]] == [0, 1] and not m["complete"]
    assert NeuroDataset(out).trial_indices == [0, 1]
    # what a SIGKILL can leave: a half-written .tmp, a finished shard the manifest never recorded
    (out / "shards" / "trial_000002.h5.tmp").write_bytes(b"\x89HDF partial")
    shutil.copy(reference / shard_relpath(3), out / shard_relpath(3))
    info = verify_dataset(out)
    assert info.passed and info.missing == [2, 3] and len(info.leftovers) == 1 and len(info.unlisted) == 1
    build_dataset(small_config(), out, workers=1, progress=False)
    assert shard_bytes(out) == shard_bytes(reference)
    assert not list((out / "shards").glob("*.tmp"))
    m = json.loads((out / MANIFEST_NAME).read_text())
    assert [e["index"] for e in m["shards"]] == [0, 1, 2, 3] and m["complete"]
    rep = verify_dataset(out)
    assert rep.passed and rep.complete and rep.ok == [0, 1, 2, 3]


class _FailSecond(_Interrupt):
    def run(self, *a, **k):
        self.calls += 1
        if self.calls == 2:
            from neuroemu.errors import SimulationError

            raise SimulationError("voltage became NaN")
        return self.sim.run(*a, **k)


def failing_factory(cell):
    return _FailSecond(0)


def test_failed_trial_is_reported_and_retried(reference, tmp_path):
    out = tmp_path / "fail"
    with pytest.raises(DatasetError, match=r"1 trial\(s\) failed \(trial 1: voltage became NaN"):
        build_dataset(small_config(), out, workers=1, progress=False, simulator_factory=failing_factory)
    assert NeuroDataset(out).trial_indices == [0, 2, 3]
    build_dataset(small_config(), out, workers=1, progress=False)
    assert shard_bytes(out) == shard_bytes(reference)


def test_unlisted_corrupt_shard_is_redone(reference, tmp_path):
    out = tmp_path / "redo"
    build_dataset(small_config(n_trials=4), out, workers=1, progress=False)
    m = json.loads((out / MANIFEST_NAME).read_text())
    m["shards"] = [e for e in m["shards"] if e["index"] != 1]
    (out / MANIFEST_NAME).write_text(json.dumps(m))
    p = out / shard_relpath(1)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])          # truncated and not recorded
    with pytest.warns(UserWarning, match="not adopted"):
        build_dataset(small_config(), out, workers=1, progress=False)
    assert shard_bytes(out) == shard_bytes(reference)


def test_resume_refuses_a_different_config(reference, tmp_path):
    out = tmp_path / "cfg"
    shutil.copytree(reference, out)
    with pytest.raises(DatasetError, match="differs in seed"):
        build_dataset(small_config(seed=8), out, workers=1, progress=False)
    with pytest.raises(DatasetError, match="at least"):
        build_dataset(small_config(n_trials=2), out, workers=1, progress=False)


# ---- corruption ----------------------------------------------------------------------------------------------

def _flip_soma_bytes(path: Path) -> None:
    with h5py.File(path, "r") as f:
        offset = f["soma_v_1ms"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset + 40: offset + 48] = bytes(8)
    path.write_bytes(bytes(data))


def test_corrupt_and_truncated_shards_are_named(reference, tmp_path):
    out = tmp_path / "bad"
    shutil.copytree(reference, out)
    corrupt, truncated = out / shard_relpath(1), out / shard_relpath(2)
    _flip_soma_bytes(corrupt)
    truncated.write_bytes(truncated.read_bytes()[:3000])
    rep = verify_dataset(out)
    assert not rep.passed and rep.ok == [0, 3]
    assert {Path(p).name for p, _ in rep.bad} == {"trial_000001.h5", "trial_000002.h5"}
    ds = NeuroDataset(out)
    with pytest.raises(DatasetError, match=r"trial_000001\.h5.*corrupt"):
        ds.soma_v(1)
    with pytest.raises(DatasetError, match=r"trial_000002\.h5"):
        ds.dense_inputs(2, 0, 400)
    with pytest.raises(DatasetError, match=r"trial_000002\.h5"):
        read_shard(truncated)

    from neuroemu.cli import main

    assert main(["dataset", "verify", str(out), "--no-progress"]) == 2


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no dataset manifest"):
        NeuroDataset(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable manifest"):
        NeuroDataset(tmp_path)


def test_preset_that_does_not_fit_the_cell_is_refused(tmp_path):
    from neuroemu.inputs.generator import InputGeneratorConfig

    with pytest.raises(ConfigError, match="iaf"):
        build_dataset(small_config(generator=InputGeneratorConfig.nmda()), tmp_path / "x", workers=1,
                      progress=False)
    assert not (tmp_path / "x" / MANIFEST_NAME).exists()


def test_config_validation():
    with pytest.raises(ConfigError, match="generator"):
        DatasetConfig.from_dict({"cell": {"kind": "iaf"}, "generator": {"bogus": 1}})
    with pytest.raises(ConfigError, match="release_probability"):
        small_config(release_probability=2.0)
    with pytest.raises(ConfigError, match="cell"):
        DatasetConfig(cell={"kind": "pyramid"})
    cfg = small_config()
    assert DatasetConfig.from_json(cfg.to_json()) == cfg
    assert cfg.generator.weighting == "count"  # the IAF's default preset


# ---- CLI -----------------------------------------------------------------------------------------------------

def test_cli_simulate_info_and_overrides(tmp_path, capsys):
    from neuroemu.cli import main

    over = tmp_path / "gen.yaml"
    over.write_text("sigma_options_ms: [50]\njitter_ms: 0\n")
    out = tmp_path / "cli"
    args = ["simulate", "--cell", "iaf", "--trials", "2", "--duration-ms", "800", "--seed", "1", "--workers", "1",
            "--config", str(over), "--no-progress", "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 0  # rerun: nothing to do, nothing duplicated
    ds = NeuroDataset(out)
    assert ds.n_trials == 2 and ds.config["generator"]["sigma_options_ms"] == [50]
    assert all(ds.trial(i).generator_params["sigma_ms"] == 50 for i in ds.trial_indices)
    capsys.readouterr()
    assert main(["dataset", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_trials"] == 2 and info["duration_ms"] == 800
    bad = tmp_path / "bad.yaml"
    bad.write_text("sigmas: [1]\n")
    bad_args = ["simulate", "--cell", "iaf", "--trials", "1", "--duration-ms", "100", "--workers", "1",
                "--no-progress", "--config", str(bad), "--out", str(tmp_path / "other")]
    assert main(bad_args) == 2
    assert "sigmas" in capsys.readouterr().err


# ---- spike detection and NeuronIO import ---------------------------------------------------------------------

def test_detect_spikes_rule():
    t = np.arange(10) * 0.125
    v = np.array([-70, -30, -20, -30, -70, -26, -24, -24, -60, -10], dtype=np.float64)
    assert list(detect_spikes(v, t)) == [0.25]                    # strict: the flat top at 0.75 is missed
    assert list(detect_spikes(v, t, allow_plateaus=True)) == [0.25, 0.75]
    assert list(detect_spikes(v, t, threshold=-15.0)) == []       # must exceed the threshold; edges never count


def _fake_neuronio(path: Path, seed: int, n_sims: int, n_seg: int = 5, t_ms: int = 2200):
    """A tiny file in the published layout (reference 6): protocol-2 pickle, float16 traces, dict spike times."""
    rng = np.random.default_rng(seed)
    sims, truth = [], []
    t_hi = np.arange(t_ms * 8, dtype=np.float32) / 8
    for k in range(n_sims):
        v = np.full(t_ms * 8, -70.0)
        peaks = [150.375 + k, 2101.375]                            # 2101.375 is 2102 in float16
        for p in peaks:
            i = int(p * 8)
            v[i - 3:i + 4] = [-60, -40, 0, 30.0, 0, -40, -60]
        ex = {int(s): sorted(int(x) for x in rng.choice(t_ms, 4, replace=False)) for s in range(n_seg) if s != 2}
        inh = {1: [0, 5, 2199]}
        sims.append({
            "recordingTimeHighRes": t_hi, "somaVoltageHighRes": v.astype(np.float16),
            "nexusVoltageHighRes": (v - 5).astype(np.float16),
            "recordingTimeLowRes": np.arange(t_ms, dtype=np.float32),
            "somaVoltageLowRes": v[::8].astype(np.float16), "nexusVoltageLowRes": (v[::8] - 5).astype(np.float16),
            "dendriticVoltagesLowRes": rng.normal(-65, 3, (n_seg, t_ms)).astype(np.float16),
            "exInputSpikeTimes": ex, "inhInputSpikeTimes": inh,
            "outputSpikeTimes": np.array(peaks, dtype=np.float16),
        })
        truth.append((peaks, ex, inh))
    params = {"randomSeed": seed, "numSimulations": n_sims, "totalSimDurationInSec": t_ms / 1000,
              "numSamplesPerMS_HighRes": 8, "allSegmentsType": ["basal"] * 2 + ["apical"] * (n_seg - 2),
              "allSegmentsLength": [10.0 + s for s in range(n_seg)],
              "allSegments_DistFromSoma": [20.0 * s for s in range(n_seg)]}
    with open(path, "wb") as f:
        pickle.dump({"Params": params, "Results": {"listOfSingleSimulationDicts": sims}}, f, protocol=2)
    return truth


def test_import_neuronio(tmp_path):
    files = [tmp_path / "sim__saved_InputSpikes_DVTs__4_outSpikes__2_simulationRuns__randomSeed_100512.p",
             tmp_path / "sim__randomSeed_100519.p"]
    truth = _fake_neuronio(files[0], 100512, 2) + _fake_neuronio(files[1], 100519, 1)
    out = import_neuronio(files, tmp_path / "imported", progress=False)
    ds = NeuroDataset(out)
    assert (ds.n_trials, ds.n_exc, ds.n_inh, ds.duration_ms) == (3, 5, 5, 2200)
    assert ds.config["source"]["kind"] == "neuronio" and ds.config["generator"] is None
    assert ds.segments["columns"][:3] == ["segment_index", "type", "seg_length_um"]
    for i, (peaks, ex, inh) in enumerate(truth):
        tr = ds.trial(i)
        assert tr.spike_times_ms.dtype == np.float64
        assert list(tr.spike_times_ms) == peaks                   # re-detected on the float32 0.125 ms grid
        assert tr.attrs["spike_times_source"] == "redetected_from_somaVoltageHighRes"
        assert tr.dend_v_1ms.dtype == np.float16 and tr.dend_v_1ms.shape == (5, 2200)
        exc = tr.inputs.exc
        got = {int(c): sorted(exc[exc[:, 0] == c, 1].tolist()) for c in np.unique(exc[:, 0])}
        assert got == ex
        assert tr.inputs.inh.tolist() == [[1, 0], [1, 5], [1, 2199]]
        assert tr.soma_v_1ms.dtype == np.float32
    assert ds.trial(2).seed == 100519 and ds.trial(2).attrs["source_file"] == files[1].name
    assert verify_dataset(out).passed
    with pytest.raises(DatasetError, match="already holds a dataset"):
        import_neuronio(files, out, progress=False)
    (tmp_path / "junk.p").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=r"junk\.p"):
        import_neuronio([tmp_path / "junk.p"], tmp_path / "x", progress=False)


_STALLING_RUN = """
import sys, time
from neuroemu.dataset.format import DatasetConfig
from neuroemu.dataset.runner import build_dataset
from neuroemu.simulation.iaf import IAFSimulator

class Stalling:  # simulates 3 trials, then hangs until killed
    n_exc, n_inh = 80, 20
    def __init__(self):
        self.sim, self.calls = IAFSimulator(), 0
    def segment_table(self):
        return None
    def run(self, *a, **k):
        self.calls += 1
        if self.calls > 3:
            time.sleep(3600)
        return self.sim.run(*a, **k)

build_dataset(DatasetConfig(cell={"kind": "iaf"}, n_trials=12, duration_ms=3000, seed=11), sys.argv[1], workers=1,
              progress=False, simulator_factory=lambda cell: Stalling())
"""


@pytest.mark.e2e
def test_sigkill_mid_run_then_rerun_completes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _STALLING_RUN, str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list((out / "shards").glob("*.h5"))) < 3:
        time.sleep(0.02)
    assert proc.poll() is None, "the stalling run ended before it could be killed"
    time.sleep(0.2)  # the 4th trial hangs for an hour: nothing else is written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list((out / "shards").glob("*.h5"))) == 3
    args = [sys.executable, "-c", "import sys; from neuroemu.cli import main; sys.exit(main(sys.argv[1:]))",
            "simulate", "--cell", "iaf", "--trials", "12", "--duration-ms", "3000", "--seed", "11", "--workers", "1",
            "--no-progress", "--out", str(out)]
    assert subprocess.run(args, capture_output=True).returncode == 0
    clean = tmp_path / "clean"
    build_dataset(DatasetConfig(cell={"kind": "iaf"}, n_trials=12, duration_ms=3000, seed=11), clean, workers=1,
                  progress=False)
    assert shard_bytes(out) == shard_bytes(clean) and len(shard_bytes(out)) == 12
    assert verify_dataset(out).passed and NeuroDataset(out).n_trials == 12


def test_every_path_records_the_same_complete_config(tmp_path):
    """A dataset made from Python (as the quickstart does) records the built-in morphology's hash, so the CLI
    can extend it: the provenance is completed by build_dataset, not by one caller."""
    from neuroemu.cells.config import CellConfig
    from neuroemu.cli import main

    out = tmp_path / "ds"
    build_dataset(DatasetConfig(cell=CellConfig(kind="l5pc", variant="nmda"), n_trials=1, duration_ms=50, seed=0),
                  out, workers=1, progress=False)
    m = json.loads((out / MANIFEST_NAME).read_text())
    assert m["config"]["cell"]["morphology_sha256"].startswith("builtin:")
    assert main(["simulate", "--variant", "nmda", "--trials", "2", "--duration-ms", "50", "--seed", "0",
                 "--workers", "1", "--no-progress", "--out", str(out)]) == 0
    assert NeuroDataset(out).n_trials == 2
