"""Every user mistake on the command line is ``error: ...`` naming the file, field or value, with exit status 2."""
from __future__ import annotations

import numpy as np

from neuroemu.cli import main
from neuroemu.dataset.memory import make_toy_dataset
from neuroemu.models.tcn import TCNConfig
from neuroemu.training.config import TrainingConfig
from neuroemu.training.loop import train


def _error(capsys, *argv: str) -> str:
    rc = main(list(argv))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_train_with_a_missing_config_file(capsys, tmp_path):
    err = _error(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--config",
                 str(tmp_path / "missing.yaml"))
    assert "missing.yaml: config file not found" in err


def test_train_config_file_with_an_unknown_key(capsys, tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("preset: modern\nlrr: 0.001\n")
    err = _error(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--config", str(f))
    assert f"{f}: TrainingConfig: unknown field(s) ['lrr']" in err


def test_train_config_file_with_a_value_of_the_wrong_type(capsys, tmp_path):
    f = tmp_path / "t.json"
    f.write_text('{"preset": "modern", "lr": "fast"}')
    err = _error(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--config", str(f))
    assert f"{f}: TrainingConfig.lr: expected a number, got 'fast'" in err


def test_train_with_a_nan_learning_rate(capsys, tmp_path):
    err = _error(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--lr", "nan")
    assert "TrainingConfig.lr must be a finite number" in err


def test_train_with_an_option_of_another_family(capsys, tmp_path):
    err = _error(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--hidden", "10")
    assert "--hidden belongs to the lstm model family, not to --model tcn" in err


def test_train_with_an_unknown_family(capsys, tmp_path):
    err = _error(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--model", "gru")
    assert "unknown model family 'gru'" in err


def test_preset_in_a_config_file_sets_its_defaults(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("preset: modern\nmax_steps: 7\n")
    cfg = TrainingConfig.from_file(f)
    assert cfg == TrainingConfig.from_preset("modern", max_steps=7)
    assert cfg.optimizer == "adamw" and cfg.lr_schedule == "cosine"


def test_predict_names_a_negative_input_time(capsys, tmp_path):
    ds = make_toy_dataset(n_trials=6, n_exc=6, n_inh=2, duration_ms=400, seed=0)
    train(ds, TCNConfig(depth=1, width=2, kernels=[10]), TrainingConfig.from_preset(
        "modern", max_steps=1, window_ms=100, min_end_ms=100, threads=1, tensorboard=False), tmp_path / "run")
    inputs = tmp_path / "in.npz"
    np.savez(inputs, exc_spikes=np.array([[1, -5]]), inh_spikes=np.zeros((0, 2), int))
    err = _error(capsys, "predict", "--run", str(tmp_path / "run"), "--inputs", str(inputs), "--out",
                 str(tmp_path / "out.npz"))
    assert "negative time -5 ms" in err and "in.npz" in err
