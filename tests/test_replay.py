"""``neuroemu replay``: output format, determinism, stochastic release, the t = 0 quirk and bad input.

All replays use the built-in cell, CVode and 150-ms trials so the file stays fast; the simulator is
cached per process, so the cell is built once for the whole module.
"""
from __future__ import annotations

import gc
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

from neuroemu.cells.config import CellConfig  # noqa: E402
from neuroemu.cli import main  # noqa: E402
from neuroemu.errors import SimulationError  # noqa: E402
from neuroemu.inputs.spikes import InputSpikes  # noqa: E402

T = 150
SOLVER = ["--solver", "cvode"]
N_CH = 200  # channels used by the test inputs (the built-in cell has ~635 segments)


@pytest.fixture(scope="module", autouse=True)
def _free_cached_cell():
    """Free the module's cached NEURON cell afterwards, so later test files do not simulate it too."""
    yield
    import neuroemu.simulation as simulation

    simulation._CACHE.clear()
    gc.collect()


def _events(rng: np.random.Generator, n: int, t_lo: int = 1) -> np.ndarray:
    return np.stack([rng.integers(0, N_CH, n), rng.integers(t_lo, T, n)], axis=1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, InputSpikes]:
    """A 150-ms input with a few hundred events (none at t = 0), rows in no particular order."""
    rng = np.random.default_rng(7)
    spikes = InputSpikes(_events(rng, 300), _events(rng, 100))
    path = tmp_path_factory.mktemp("replay") / "in.npz"
    spikes.save_npz(path)
    return path, spikes


def _replay(tmp_path: Path, inputs: Path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.npz"
    rc = main(["replay", "--inputs", str(inputs), "--out", str(out), "--duration-ms", str(T), *SOLVER, *extra])
    assert rc == 0
    with np.load(out, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def plain(inputs, tmp_path_factory) -> dict:
    return _replay(tmp_path_factory.mktemp("plain"), inputs[0], "out")


def test_replay_writes_the_documented_arrays(plain, inputs):
    assert plain["soma_v_1ms"].dtype == np.float32 and plain["soma_v_1ms"].shape == (T,)
    assert plain["nexus_v_1ms"].dtype == np.float32 and plain["nexus_v_1ms"].shape == (T,)
    assert plain["spike_times_ms"].dtype == np.float64 and plain["spike_times_ms"].ndim == 1
    assert np.all(np.isfinite(plain["soma_v_1ms"])) and np.all(np.isfinite(plain["nexus_v_1ms"]))
    assert "exc_transmitted" not in plain  # deterministic release: no masks
    config = json.loads(str(plain["config"]))
    assert config["duration_ms"] == T and config["cell"]["variant"] == "nmda"
    assert config["solver"]["method"] == "cvode" and config["release_probability"] is None
    assert plain["soma_v_1ms"][0] == pytest.approx(config["biophysics"]["v_init"], abs=0.01)
    assert -95.0 < plain["soma_v_1ms"].min() and plain["soma_v_1ms"].max() < 60.0


def test_replay_is_deterministic_and_row_order_does_not_matter(plain, inputs, tmp_path):
    again = _replay(tmp_path, inputs[0], "again")
    for key in ("soma_v_1ms", "nexus_v_1ms", "spike_times_ms"):
        np.testing.assert_array_equal(again[key], plain[key])
    # unsorted vs sorted events: the same trial
    spikes = inputs[1]
    order = np.random.default_rng(1).permutation(spikes.exc.shape[0])
    shuffled = tmp_path / "shuffled.npz"
    InputSpikes(spikes.exc[order][::-1], spikes.inh).save_npz(shuffled)
    a = _replay(tmp_path, shuffled, "shuffled")
    np.testing.assert_allclose(a["soma_v_1ms"], plain["soma_v_1ms"], atol=1e-3)
    np.testing.assert_array_equal(a["spike_times_ms"], plain["spike_times_ms"])


def test_release_probability_transmits_about_half_reproducibly(plain, inputs, tmp_path):
    args = ("--release-probability", "0.5", "--seed", "1")
    a = _replay(tmp_path, inputs[0], "p_a", *args)
    b = _replay(tmp_path, inputs[0], "p_b", *args)
    spikes = inputs[1]
    assert a["exc_transmitted"].shape == (spikes.exc.shape[0],) and a["exc_transmitted"].dtype == bool
    assert a["inh_transmitted"].shape == (spikes.inh.shape[0],)
    frac = np.concatenate([a["exc_transmitted"], a["inh_transmitted"]]).mean()
    assert 0.4 < frac < 0.6  # 400 Bernoulli(0.5) draws: 3 sigma = 0.075
    for key in ("exc_transmitted", "inh_transmitted", "soma_v_1ms", "nexus_v_1ms", "spike_times_ms"):
        np.testing.assert_array_equal(a[key], b[key])
    assert json.loads(str(a["config"]))["release_probability"] == 0.5
    # fewer inputs arrive, so the trace differs from full transmission
    assert np.abs(a["soma_v_1ms"] - plain["soma_v_1ms"]).max() > 0.1
    # another seed draws other events
    c = _replay(tmp_path, inputs[0], "p_c", "--release-probability", "0.5", "--seed", "2")
    assert not np.array_equal(c["exc_transmitted"], a["exc_transmitted"])


def test_t0_quirk_silences_a_synapse_with_an_event_at_t0(plain, inputs, tmp_path):
    """Events on 5 extra channels, each starting at t = 0: with the quirk they are all dropped, so the
    trial is exactly the plain one."""
    spikes = inputs[1]
    silent = np.arange(N_CH, N_CH + 5)
    extra = np.array([[c, t] for c in silent for t in range(0, T, 10)])
    path = tmp_path / "t0.npz"
    InputSpikes(np.concatenate([spikes.exc, extra]), spikes.inh).save_npz(path)
    quirk = _replay(tmp_path, path, "quirk", "--t0-quirk")
    mask = quirk["exc_transmitted"]
    on_silent = np.isin(np.concatenate([spikes.exc, extra])[:, 0], silent)
    assert not mask[on_silent].any() and mask[~on_silent].all() and quirk["inh_transmitted"].all()
    np.testing.assert_array_equal(quirk["soma_v_1ms"], plain["soma_v_1ms"])
    # without the quirk the extra events do arrive and change the trace
    normal = _replay(tmp_path, path, "noquirk")
    assert not np.array_equal(normal["soma_v_1ms"], plain["soma_v_1ms"])


# ---------------------------------------------------------------------------------------------- bad input
def _save(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _good_inh() -> np.ndarray:
    return np.array([[1, 5]])


@pytest.mark.parametrize("name, arrays, expected", [
    ("channel", dict(exc_spikes=np.array([[3, 10], [100000, 20]]), inh_spikes=_good_inh()),
     r"exc_spikes' row 1 has channel 100000, outside 0\.\.\d+"),
    ("inh_channel", dict(exc_spikes=np.array([[3, 10]]), inh_spikes=np.array([[-1, 10]])),
     r"inh_spikes' row 0 has channel -1"),
    ("negative", dict(exc_spikes=np.array([[3, 10], [4, -5]]), inh_spikes=_good_inh()),
     r"exc_spikes' row 1 has negative time -5"),
    ("beyond", dict(exc_spikes=np.array([[3, 10]]), inh_spikes=np.array([[1, 5], [2, T]])),
     rf"inh_spikes' row 1 has time {T} ms, beyond the trial duration {T} ms"),
    ("shape", dict(exc_spikes=np.array([[3, 10, 1]]), inh_spikes=_good_inh()),
     r"exc_spikes' must have shape \(n, 2\)"),
    ("missing_key", dict(exc_spikes=np.array([[3, 10]])), r"missing key\(s\) \['inh_spikes'\]"),
    ("fractional", dict(exc_spikes=np.array([[3.0, 10.5]]), inh_spikes=_good_inh()), r"integer"),
    ("nan", dict(exc_spikes=np.array([[3.0, np.nan]]), inh_spikes=_good_inh()), r"NaN"),
])
def test_bad_inputs_exit_2_naming_the_problem(name, arrays, expected, tmp_path, capsys):
    path = _save(tmp_path / f"{name}.npz", **arrays)
    rc = main(["replay", "--inputs", str(path), "--out", str(tmp_path / "o.npz"), "--duration-ms", str(T), *SOLVER])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert re.search("^error: .*" + expected, err, flags=re.M), err
    assert not (tmp_path / "o.npz").exists()


def test_missing_or_unreadable_input_file(tmp_path, capsys):
    rc = main(["replay", "--inputs", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o.npz")])
    assert rc == 2 and "input file not found" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    rc = main(["replay", "--inputs", str(junk), "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and str(junk) in err and "not a readable .npz" in err


def test_unknown_variant_is_rejected(inputs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["replay", "--variant", "gaba", "--inputs", str(inputs[0]), "--out", str(tmp_path / "o.npz")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--variant" in err and "gaba" in err


@pytest.mark.parametrize("kind, content, expected", [
    ("missing", None, "morphology file not found"),
    ("empty", "", "morphology file is empty"),
    ("blank", "  \n\n", "morphology file is empty"),
    ("unbalanced", '("CellBody"\n  (Color Red)\n  (CellBody)\n  (0 0 0 10)\n', "unbalanced parentheses"),
    ("no_soma", "((Dendrite)\n  (0 0 0 1)\n  (10 0 0 1)\n)\n", "no soma contour"),
    ("wrong_ext", "whatever", "unknown morphology extension"),
])
def test_bad_morphology_exits_2_naming_the_file(kind, content, expected, inputs, tmp_path, capsys):
    path = tmp_path / (f"{kind}.txt" if kind == "wrong_ext" else f"{kind}.asc")
    if content is not None:
        path.write_text(content)
    rc = main(["replay", "--morphology", str(path), "--inputs", str(inputs[0]),
               "--out", str(tmp_path / "o.npz"), "--duration-ms", str(T), *SOLVER])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert re.search(f"^error: {re.escape(str(path))}: .*{expected}", err, flags=re.M), err


def test_bad_swc_names_the_line(inputs, tmp_path, capsys):
    path = tmp_path / "bad.swc"
    path.write_text("1 1 0 0 0 5 -1\n2 3 0 -5 0 1 1\n3 3 0 -20 0 abc 2\n")
    rc = main(["replay", "--morphology", str(path), "--inputs", str(inputs[0]),
               "--out", str(tmp_path / "o.npz"), "--duration-ms", str(T), *SOLVER])
    err = capsys.readouterr().err
    assert rc == 2 and str(path) in err and "line 3" in err, err


def test_bad_scale_and_duration(inputs, tmp_path, capsys):
    rc = main(["replay", "--scale", "SK_E2", "--inputs", str(inputs[0]), "--out", str(tmp_path / "o.npz")])
    assert rc == 2 and "--scale 'SK_E2'" in capsys.readouterr().err
    rc = main(["replay", "--scale", "SK_E2=-1", "--inputs", str(inputs[0]), "--out", str(tmp_path / "o.npz")])
    assert rc == 2 and "SK_E2" in capsys.readouterr().err
    rc = main(["replay", "--release-probability", "1.5", "--inputs", str(inputs[0]),
               "--out", str(tmp_path / "o.npz"), "--duration-ms", str(T), *SOLVER])
    assert rc == 2 and "release_probability = 1.5" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["fixed", "cvode"])
def test_nan_voltage_is_a_clear_error(method):
    """A NaN in the voltage (here from a NaN reversal potential) raises SimulationError, with either solver."""
    from neuroemu.simulation import make_simulator
    from neuroemu.simulation.solver import SolverConfig

    sim = make_simulator(CellConfig(), SolverConfig(method=method))
    sim.cell.sections.soma.ena = float("nan")
    with pytest.raises(SimulationError, match=r"NaN|nan"):
        sim.run(InputSpikes(np.array([[0, 2]]), np.zeros((0, 2))), duration_ms=10)
    del sim
    gc.collect()


def test_dropping_a_simulator_frees_its_cell():
    """Replacing the cached simulator must remove the old cell from NEURON (else every later run
    would keep simulating it)."""
    from neuron import h

    import neuroemu.simulation as simulation

    before = sum(1 for _ in h.allsec())
    sim = simulation.make_simulator(CellConfig())
    assert sum(1 for _ in h.allsec()) > before
    del sim
    gc.collect()
    assert sum(1 for _ in h.allsec()) == before
