"""Training: learning a toy cell, exact resume, NaN handling, determinism, presets, sampling, the CLI."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from neuroemu.errors import CheckpointError, ConfigError, DatasetError, InputSpikesError, TrainingError
from neuroemu.models.checkpoint import load_checkpoint
from neuroemu.models.emulator import Emulator
from neuroemu.models.tcn import TCNConfig
from neuroemu.training.config import PUBLISHED_STEPS_PER_EPOCH, Stage, TrainingConfig
from neuroemu.dataset.targets import TargetCache
from neuroemu.training.batches import WindowSampler, make_batch
from neuroemu.training.loop import resume, train
from neuroemu.dataset.memory import InMemoryDataset, make_toy_dataset
from neuroemu.dataset.targets import DendriticPCA, soma_target

torch.set_num_threads(1)

SMALL = TCNConfig(depth=1, width=4, kernels=[30])


def cfg(**kw) -> TrainingConfig:
    base = dict(window_ms=200, min_end_ms=200, threads=1, tensorboard=False, val_every_steps=50,
                log_every_steps=10, val_trials=6)
    base.update(kw)
    preset = base.pop("preset", "modern")
    return TrainingConfig.from_preset(preset, **base)


@pytest.fixture(scope="module")
def toy():
    return make_toy_dataset(n_trials=30, n_exc=12, n_inh=4, duration_ms=1000, seed=0)


def params(run_dir, which="last"):
    return load_checkpoint(run_dir / "checkpoints" / f"{which}.pt")["model"]


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------- learning
def test_one_layer_model_learns_toy_cell(toy, tmp_path):
    before = train(toy, SMALL, cfg(max_steps=0), tmp_path / "r0")
    res = train(toy, SMALL, cfg(max_steps=150, lr=5e-3), tmp_path / "r1")
    assert res.steps == 150 and res.stop_reason == "max_steps"
    assert before.best_val_auc < 0.8
    assert res.best_val_auc > 0.9
    run = json.loads((tmp_path / "r1" / "run.json").read_text())
    assert run["status"] == "completed" and run["n_channels"] == 16
    assert run["soma_target"] == {"clip_mv": -55.0, "offset_mv": 67.7}
    assert run["model"]["n_inputs"] == 16 and run["receptive_field_ms"] == 30
    split = run["split"]
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(30))
    assert run["n_parameters"] == TCNConfig(n_inputs=16, depth=1, width=4, kernels=[30]).n_parameters
    with open(tmp_path / "r1" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(10, 151, 10))
    assert rows[-1]["val_auc"] and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (tmp_path / "r1" / "checkpoints" / "best.pt").is_file()


def test_head_biases_start_at_the_training_data(toy, tmp_path):
    train(toy, SMALL, cfg(max_steps=0), tmp_path / "modern")
    run = json.loads((tmp_path / "modern" / "run.json").read_text())
    tr = run["split"]["train"]
    n_spikes = sum(int(toy.spike_train(i).sum()) for i in tr)
    rate = n_spikes / (len(tr) * toy.duration_ms)
    soma = np.mean([soma_target(toy.soma_v(i)).mean() for i in tr])
    p = params(tmp_path / "modern")
    assert float(p["spike_head.bias"]) == pytest.approx(math.log(rate / (1 - rate)), rel=1e-5)
    assert float(p["soma_head.bias"]) == pytest.approx(soma, rel=1e-4)
    assert run["head_bias_init"]["spike_rate_per_ms"] == pytest.approx(rate)
    # resuming keeps the recorded initial biases; the published preset keeps the published constant
    resume(tmp_path / "modern", toy, max_steps=3)
    assert json.loads((tmp_path / "modern" / "run.json").read_text())["head_bias_init"] == run["head_bias_init"]
    train(toy, SMALL, cfg(max_steps=0, preset="published"), tmp_path / "published")
    assert float(params(tmp_path / "published")["spike_head.bias"]) == pytest.approx(-2.0)
    assert json.loads((tmp_path / "published" / "run.json").read_text())["head_bias_init"] is None
    assert TrainingConfig.from_preset("published").head_bias_from_data is False


def test_same_seed_same_run_and_different_seed_differs(toy, tmp_path):
    train(toy, SMALL, cfg(max_steps=12), tmp_path / "a")
    train(toy, SMALL, cfg(max_steps=12), tmp_path / "b")
    train(toy, SMALL, cfg(max_steps=12, seed=1), tmp_path / "c")
    assert_same_params(params(tmp_path / "a"), params(tmp_path / "b"))
    assert not torch.equal(params(tmp_path / "a")["first.weight"], params(tmp_path / "c")["first.weight"])


@pytest.mark.parametrize("preset", ["modern", "published"])
def test_resume_is_bit_for_bit(toy, tmp_path, preset):
    n = 8
    if preset == "published":  # stage change and optimiser reset inside the resumed part
        extra = dict(optimizer_reset_steps=3, stages=[Stage(10, 1e-3, [1.0, 0.02, 0.0]), Stage(50, 3e-4, [2.0, 0.01, 0.0])])
    else:  # warm-up and cosine decay over the 2n steps
        extra = dict(warmup_steps=3, schedule_steps=2 * n)
    train(toy, SMALL, cfg(preset=preset, max_steps=2 * n, **extra), tmp_path / "full")
    train(toy, SMALL, cfg(preset=preset, max_steps=n, **extra), tmp_path / "part")
    res = train(toy, None, {"max_steps": 2 * n}, tmp_path / "part", resume=True)
    assert res.steps == 2 * n
    assert_same_params(params(tmp_path / "full"), params(tmp_path / "part"))
    a, b = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt"), \
        load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")
    for (ka, va), (kb, vb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        for name in va:
            assert torch.equal(torch.as_tensor(va[name]), torch.as_tensor(vb[name])), name


def test_resume_after_a_kill_between_checkpoints(toy, tmp_path):
    class Killed(Exception):
        pass

    def kill_at_7(row):
        if row["step"] == 7:
            raise Killed

    c = cfg(max_steps=12, log_every_steps=1, checkpoint_every_steps=5, warmup_steps=2)
    train(toy, SMALL, c, tmp_path / "full")
    with pytest.raises(Killed):
        train(toy, SMALL, c, tmp_path / "killed", callback=kill_at_7)
    assert load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["step"] == 5
    train(toy, None, None, tmp_path / "killed", resume=True)
    assert_same_params(params(tmp_path / "full"), params(tmp_path / "killed"))
    with open(tmp_path / "full" / "metrics.csv") as f:
        full_rows = list(csv.DictReader(f))
    with open(tmp_path / "killed" / "metrics.csv") as f:
        killed_rows = list(csv.DictReader(f))
    assert [r["step"] for r in killed_rows] == [r["step"] for r in full_rows]  # no duplicated steps 6, 7
    assert [r["loss"] for r in killed_rows] == [r["loss"] for r in full_rows]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(toy, tmp_path):
    c = cfg(max_steps=40, checkpoint_every_steps=4)
    train_idx = toy.split(tuple(c.split_fractions), c.seed)[0]
    sampler = WindowSampler(train_idx, toy.duration_ms, c.batch_size, c.seed, c.sampling, c.min_end_ms)
    seen_before = set()
    bad, bad_step = None, None
    for step in range(40):  # a trial that first appears at step >= 6
        trials = set(int(t) for t in sampler.batch(step)[0])
        new = trials - seen_before
        if step >= 6 and new:
            bad, bad_step = min(new), step
            break
        seen_before |= trials
    assert bad is not None

    class NaNSoma(InMemoryDataset):
        def soma_v(self, i):
            v = super().soma_v(i).copy()
            if i == bad:
                v[:] = np.nan
            return v

    ds = NaNSoma(toy.trials, toy.n_exc, toy.n_inh, toy.duration_ms, toy.config)
    with pytest.raises(TrainingError, match=rf"NaN loss at step {bad_step + 1}; last good checkpoint kept at .*last.pt"):
        train(ds, SMALL, c, tmp_path / "nan")
    ck = load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.pt")
    assert ck["step"] == (bad_step // 4) * 4
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    run = json.loads((tmp_path / "nan" / "run.json").read_text())
    assert run["status"].startswith("failed")


def test_budget_by_minutes(toy, tmp_path):
    res = train(toy, SMALL, cfg(max_minutes=0.002), tmp_path / "m")
    assert res.stop_reason == "max_minutes" and res.elapsed_s >= 0.12 and res.steps >= 1


@pytest.fixture()
def small_run(toy, tmp_path):
    train(toy, SMALL, cfg(max_steps=2), tmp_path / "r")
    return tmp_path / "r"


def test_a_run_directory_is_not_overwritten(toy, small_run):
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(toy, SMALL, cfg(max_steps=2), small_run)


def test_resume_needs_the_same_dataset(small_run):
    other = make_toy_dataset(n_trials=30, n_exc=12, n_inh=4, duration_ms=1000, seed=5, rate_per_ms=0.03)
    with pytest.raises(DatasetError, match="fingerprint"):
        train(other, None, None, small_run, resume=True)


def test_resume_of_a_missing_or_empty_run_directory(toy, tmp_path):
    with pytest.raises(CheckpointError, match="run directory not found"):
        train(toy, None, None, tmp_path / "nowhere", resume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="run.json is missing"):
        train(toy, None, None, tmp_path / "empty", resume=True)


def test_resume_of_a_corrupt_checkpoint(toy, small_run):
    (small_run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        train(toy, None, None, small_run, resume=True)


def test_only_the_budget_changes_on_resume(toy, small_run):
    with pytest.raises(ConfigError, match="budget"):
        train(toy, None, {"lr": 1.0}, small_run, resume=True)


def test_dendritic_pca_head(tmp_path):
    ds = make_toy_dataset(n_trials=12, n_exc=8, n_inh=2, duration_ms=800, seed=1, with_dendrites=True)
    pca = DendriticPCA.fit([ds.trial(i).dend_v_1ms for i in range(12)], 3, clip_sd=1e9)
    z = np.concatenate([pca.transform(ds.trial(i).dend_v_1ms) for i in range(12)])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(z.std(0), 1, rtol=1e-3)  # whitened
    clipped = DendriticPCA.fit([ds.trial(0).dend_v_1ms], 2).transform(ds.trial(0).dend_v_1ms)
    assert np.abs(clipped).max() <= 3.0
    m = TCNConfig(depth=1, width=4, kernels=[20], n_dendritic_components=3)
    train(ds, m, cfg(max_steps=10, loss_weights=[1.0, 0.02, 0.5]), tmp_path / "dvt")
    with open(tmp_path / "dvt" / "metrics.csv") as f:
        assert float(list(csv.DictReader(f))[-1]["loss_dvt"]) > 0
    assert load_checkpoint(tmp_path / "dvt" / "checkpoints" / "last.pt")["dvt_pca"]["components"]
    with pytest.raises(DatasetError, match="dendritic"):
        train(make_toy_dataset(n_trials=5, duration_ms=800), m, cfg(max_steps=1), tmp_path / "nodvt")


# --------------------------------------------------------------------------- data plumbing
def test_batches_targets_and_transmitted_inputs():
    ds = make_toy_dataset(n_trials=4, n_exc=6, n_inh=2, duration_ms=600, seed=2, release_probability=0.5)
    tc = TargetCache(ds, -55.0, 67.7)
    b = make_batch(ds, tc, [1, 2], [400, 150], 200, "presynaptic")
    assert b["x"].shape == (2, 200, 8) and b["x"].dtype == np.uint8
    np.testing.assert_array_equal(b["x"][0], ds.dense_inputs(1, 200, 400))
    np.testing.assert_array_equal(b["x"][1, :50], 0)  # window [-50, 150): zero history before t = 0
    np.testing.assert_array_equal(b["spikes"][0], ds.spike_train(1)[200:400])
    np.testing.assert_allclose(b["soma"][0], np.minimum(ds.soma_v(1)[200:400], -55.0) + 67.7, rtol=1e-6)
    assert b["soma"].max() <= 12.7 + 1e-5
    bt = make_batch(ds, tc, [1], [400], 200, "transmitted")
    assert 0 < bt["x"].sum() < b["x"][0].sum()
    assert soma_target(np.array([-80.0, -50.0]))[1] == pytest.approx(12.7)


def test_published_window_sampling():
    s = WindowSampler(list(range(1000)), 6000, 8, seed=0, mode="published")
    groups = [set(), set()]
    for step in range(96):
        trials, ends = s.batch(step)
        assert len(set(ends.tolist())) == 8 and ends.min() >= 500 and ends.max() < 6000
        groups[step // 48] |= set(trials.tolist())
    assert len(groups[0]) <= 128 and len(groups[1]) <= 128 and groups[0] != groups[1]
    t1, e1 = s.batch(17)
    t2, e2 = WindowSampler(list(range(1000)), 6000, 8, seed=0, mode="published").batch(17)
    assert np.array_equal(t1, t2) and np.array_equal(e1, e2)
    with pytest.raises(ConfigError, match="min_end_ms"):
        WindowSampler([0], 400, 8, seed=0, min_end_ms=500)


def test_training_presets():
    pub = TrainingConfig.from_preset("published")
    e = PUBLISHED_STEPS_PER_EPOCH
    assert pub.optimizer == "nadam" and pub.batch_size == 8 and pub.window_ms == 400 and pub.l2_kernel == 1e-8
    assert pub.schedule_length == 250 * e == 720_000
    assert pub.schedule_at(0) == (1e-4, [1.0, 0.02, 5e-6], (0, 0))
    assert pub.schedule_at(e)[2] == (0, 1)  # optimiser re-created every schedule epoch
    assert pub.schedule_at(40 * e)[:2] == (3e-5, [2.0, 0.01, 3e-6])
    assert pub.schedule_at(160 * e)[:2] == (1e-6, [9.0, 0.003, 1e-9])
    comp = pub.replace(compress_schedule=True, max_steps=2500)
    assert comp.schedule_length == 2500  # stages of 400, 400, 400, 400, 900 steps
    frozen = comp.frozen()
    assert [st.steps for st in frozen.stages] == [400] * 4 + [900] and frozen.optimizer_reset_steps == 10
    assert frozen.replace(max_steps=10_000).schedule_at(1000) == comp.schedule_at(1000)
    assert TrainingConfig.from_preset("modern", max_steps=300).frozen().schedule_steps == 300
    assert comp.schedule_at(399)[0] == 1e-4 and comp.schedule_at(500)[0] == 3e-5 and comp.schedule_at(1000)[0] == 1e-5
    mod = TrainingConfig.from_preset("modern", max_steps=1000)
    lrs = [mod.schedule_at(s)[0] for s in (0, 199, 600, 999)]
    assert lrs[0] == pytest.approx(1e-3 / 200) and lrs[1] == pytest.approx(1e-3)
    assert lrs[1] > lrs[2] > lrs[3] >= 1e-5 - 1e-12
    assert TrainingConfig.from_dict(pub.to_dict()) == pub
    with pytest.raises(ConfigError, match="preset"):
        TrainingConfig.from_preset("fast")
    with pytest.raises(ConfigError, match="inputs"):
        TrainingConfig(inputs="released")


# --------------------------------------------------------------------------- CLI + real dataset
def test_cli_on_iaf_dataset(tmp_path, capsys):
    from neuroemu.cli import main
    from neuroemu.dataset.format import DatasetConfig
    from neuroemu.dataset.runner import build_dataset

    data = tmp_path / "iaf"
    build_dataset(DatasetConfig(cell={"kind": "iaf"}, n_trials=10, duration_ms=1000, seed=4), data, workers=1,
                  progress=False)
    run = tmp_path / "run"
    rc = main(["train", "--data", str(data), "--out", str(run), "--depth", "1", "--width", "1", "--kernels", "80",
               "--max-steps", "6", "--val-every", "3", "--window-ms", "300", "--threads", "1", "--no-progress"])
    assert rc == 0
    r = json.loads((run / "run.json").read_text())
    assert r["dataset"]["path"] == str(data.resolve()) and r["dataset"]["n_channels"] == 100
    assert any((run / "tb").iterdir())
    rc = main(["train", "--resume", str(run), "--max-steps", "8", "--no-progress", "--threads", "1"])
    assert rc == 0 and load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 8
    rc = main(["evaluate", "--run", str(run), "--out", str(tmp_path / "m.json"), "--no-progress",
               "--drop-first-ms", "100", "--split", "all", "--threads", "1"])
    assert rc == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["n_traces_total"] == 10 and "spike_auc" in m and m["protocol"]["overlap_ms"] == 150
    # predict on a file in the 'neuroemu replay' format
    from neuroemu.inputs.spikes import InputSpikes

    inp = tmp_path / "in.npz"
    InputSpikes(np.array([[0, 5], [79, 50], [3, 299]]), np.array([[19, 20]])).save_npz(inp)
    rc = main(["predict", "--run", str(run), "--inputs", str(inp), "--out", str(tmp_path / "out.npz"), "--threads", "1"])
    assert rc == 0
    with np.load(tmp_path / "out.npz") as z:
        assert z["spike_prob"].shape == (300,) and z["spike_prob"].dtype == np.float32
        assert z["soma_v_pred_mv"].dtype == np.float32
        direct = Emulator.load(run).predict(InputSpikes.load_npz(inp))
        np.testing.assert_array_equal(z["spike_prob"], direct["spike_prob"])
    rc = main(["predict", "--run", str(run), "--inputs", str(inp), "--out", str(tmp_path / "out16.npz"),
               "--threads", "1", "--precision", "bf16"])
    assert rc == 0
    with np.load(tmp_path / "out16.npz") as z:  # bf16 inference: float32 outputs, close to fp32
        assert z["spike_prob"].dtype == np.float32
        np.testing.assert_allclose(z["spike_prob"], direct["spike_prob"], atol=0.02)
    # bad input file: channel out of range, wrong shape
    InputSpikes(np.array([[80, 5]]), np.zeros((0, 2))).save_npz(tmp_path / "bad.npz")
    assert main(["predict", "--run", str(run), "--inputs", str(tmp_path / "bad.npz"),
                 "--out", str(tmp_path / "o.npz")]) == 2
    np.savez(tmp_path / "bad2.npz", exc_spikes=np.zeros((3, 3), int), inh_spikes=np.zeros((0, 2), int))
    assert main(["predict", "--run", str(run), "--inputs", str(tmp_path / "bad2.npz"),
                 "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "channel 80" in err and "shape (n, 2)" in err
    assert main(["evaluate", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "x.json")]) == 2
    with pytest.raises(InputSpikesError):
        Emulator.load(run).predict(InputSpikes.load_npz(tmp_path / "bad.npz"))
