"""Shipped emulators: export a run, list, load, predict and evaluate it, and the errors of unknown names."""
from __future__ import annotations

import json

import numpy as np
import pytest

import neuroemu.pretrained as P
from neuroemu.cli import main
from neuroemu.dataset.memory import make_toy_dataset
from neuroemu.errors import CheckpointError, ConfigError
from neuroemu.models.registry import parse_model_spec
from neuroemu.training.config import TrainingConfig
from neuroemu.training.loop import train


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pre")
    ds = make_toy_dataset(n_trials=8, n_exc=6, n_inh=6, duration_ms=500, seed=0)
    train(ds, parse_model_spec("branch-elm:2@branch_size=4,branches=3"), TrainingConfig.from_preset(
        "modern", max_steps=3, window_ms=300, min_end_ms=300, val_every_steps=2, threads=1, tensorboard=False),
        tmp / "run")
    home = tmp / "home"
    out = P.export(tmp / "run", "toy-belm", {"test": {"spike_auc": 0.5}, "command": "test"}, dest=home)
    return home, out


def test_export_writes_a_run_directory_without_machine_paths(exported):
    home, out = exported
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"]["path"] is None and (out / "checkpoints" / "best.pt").is_file()
    card = json.loads((out / "card.json").read_text())
    assert card["family"] == "branch-elm" and card["test"]["spike_auc"] == 0.5 and card["train_trials"] >= 1


def test_load_and_predict_a_pretrained_emulator(exported, monkeypatch):
    home, _ = exported
    monkeypatch.setattr(P, "HOME", home)
    assert P.available() == ["toy-belm"]
    emu = P.load("toy-belm")
    from neuroemu.inputs.spikes import InputSpikes

    out = emu.predict(InputSpikes(np.array([[0, 3], [2, 9]]), np.zeros((0, 2), int)), duration_ms=20)
    assert out["spike_prob"].shape == (20,) and np.all((out["spike_prob"] >= 0) & (out["spike_prob"] <= 1))


def test_an_unknown_name_lists_the_available_ones(exported, monkeypatch, capsys):
    home, _ = exported
    monkeypatch.setattr(P, "HOME", home)
    with pytest.raises(ConfigError, match="available: toy-belm"):
        P.load("builtin-gru")
    assert main(["predict", "--pretrained", "nope", "--inputs", "x.npz", "--out", "y.npz"]) == 2
    assert "available: toy-belm" in capsys.readouterr().err


def test_export_refuses_weights_over_the_size_limit(exported, tmp_path):
    home, out = exported
    with pytest.raises(CheckpointError, match="over the"):
        P.export(out, "big", {}, dest=tmp_path, max_bytes=10)


def test_the_shipped_emulators_load_and_describe_themselves():
    for name in P.available():
        card = P.card(name)
        assert {"family", "n_parameters", "test", "train_hours", "command"} <= set(card), name
        emu = P.load(name)
        assert emu.n_channels == card["n_exc"] + card["n_inh"]


def test_the_builtin_cell_emulators_ship_and_respond_to_their_inputs():
    """builtin-nmda and builtin-ampa are in the package, on the built-in cell's 629 + 629 inputs, and behave like
    a neuron: stronger excitation raises the predicted firing, stronger inhibition lowers it."""
    from neuroemu import InputSpikes

    assert {"builtin-nmda", "builtin-ampa"} <= set(P.available())
    rng = np.random.default_rng(0)

    def inputs(exc_hz: float, inh_hz: float) -> InputSpikes:
        def draw(rate: float) -> np.ndarray:
            n = rng.poisson(rate * 629 * 2.0)  # 2 s
            return np.stack([rng.integers(0, 629, n), rng.integers(0, 2000, n)], 1)
        return InputSpikes(exc=draw(exc_hz), inh=draw(inh_hz))

    for name in ("builtin-nmda", "builtin-ampa"):
        card = P.card(name)
        assert card["n_exc"] == card["n_inh"] == 629 and card["cell"]["variant"] == name.split("-")[1]
        assert 0.5 < card["test"]["spike_auc"] <= 1.0 and card["test"]["n_test_traces"] >= 40
        emu = P.load(name)
        rates = {}
        for label, (e, i) in {"low": (5.0, 10.0), "base": (10.0, 10.0), "high": (15.0, 10.0),
                              "inhibited": (10.0, 25.0)}.items():
            p = emu.predict(inputs(e, i), duration_ms=2000)["spike_prob"][500:]
            assert np.isfinite(p).all() and ((0 <= p) & (p <= 1)).all()
            rates[label] = float(p.mean())
        assert rates["low"] < rates["base"] < rates["high"], (name, rates)
        assert rates["inhibited"] < rates["base"], (name, rates)
