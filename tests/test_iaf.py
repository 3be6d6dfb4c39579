"""Integrate-and-fire neuron of reference section 7: exact subthreshold sum and reset rule."""
from __future__ import annotations

import numpy as np
import pytest

from neuroemu.simulation.iaf import IAFConfig, IAFSimulator, iaf_voltage
from neuroemu.errors import ConfigError, InputSpikesError
from neuroemu.inputs.generator import InputGeneratorConfig, generate_iaf_inputs
from neuroemu.inputs.spikes import InputSpikes


def _inputs(exc_events=(), inh_events=()):
    return InputSpikes(np.array(exc_events, dtype=np.int64).reshape(-1, 2),
                       np.array(inh_events, dtype=np.int64).reshape(-1, 2))


def _reference(drive, cfg=IAFConfig()):
    """Literal reading of reference 7, one time step at a time."""
    k = np.exp(-np.arange(141) / 20.0)
    n = len(drive)
    v = np.full(n, -75.0)
    for i, d in enumerate(drive):
        if d:
            m = min(141, n - i)
            v[i:i + m] += 2.0 * d * k[:m]
    spikes = []
    for t in range(n):
        if v[t] > -55.0:
            spikes.append(t)
            if t + 1 < n:
                m = min(141, n - t - 1)
                v[t + 1:t + 1 + m] -= (v[t + 1] + 75.0) * k[:m]
    return v, spikes


def test_kernel():
    k = IAFConfig().kernel()
    assert k.shape == (141,)
    assert k[0] == 1.0 and k[20] == pytest.approx(np.exp(-1.0)) and k[140] == pytest.approx(np.exp(-7.0))


def test_single_input_psp_by_hand():
    sim = IAFSimulator()
    r = sim.run(_inputs([(3, 10)]), 400, seed=0)
    v = r.soma_v_1ms.astype(np.float64)
    assert np.all(v[:10] == -75.0)
    assert v[10] == pytest.approx(-73.0)                       # 2 mV at once
    assert v[30] == pytest.approx(-75 + 2 * np.exp(-1.0))      # decays with tau 20 ms
    assert np.all(v[151:] == -75.0)                            # kernel is 141 samples long
    assert r.spike_times_ms.size == 0
    r = sim.run(_inputs(inh_events=[(19, 3)]), 50, seed=0)
    assert r.soma_v_1ms[3] == pytest.approx(-77.0)


def test_threshold_is_strict():
    sim = IAFSimulator()
    ten = [(c, 5) for c in range(10)]                          # -75 + 20 = -55: not above threshold
    assert sim.run(_inputs(ten), 100, 0).spike_times_ms.size == 0
    eleven = [(c, 5) for c in range(11)]                       # -53 mV
    r = sim.run(_inputs(eleven), 300, 0)
    assert list(r.spike_times_ms) == [5.0]
    assert r.spike_times_ms.dtype == np.float64
    v = r.soma_v_1ms.astype(np.float64)
    assert v[5] == pytest.approx(-53.0)                        # the spike sample keeps its value
    assert np.allclose(v[6:146], -75.0, atol=1e-5)             # reset with the kernel's memory: flat at rest
    # the reset kernel (V[6:147]) outlasts the PSP (V[5:146]) by one sample
    assert v[146] == pytest.approx(-75.0 - 22.0 * np.exp(-1 / 20) * np.exp(-140 / 20), rel=1e-6)
    assert np.all(v[147:] == -75.0)


def test_reset_also_wipes_the_next_ms_input_and_no_refractory_period():
    sim = IAFSimulator()
    ev = [(c, 5) for c in range(11)] + [(c, 6) for c in range(3)]
    v = sim.run(_inputs(ev), 60, 0).soma_v_1ms.astype(np.float64)
    assert v[6] == pytest.approx(-75.0, abs=1e-5)              # (V(t+1) - V_reset) includes t+1's input
    ev = [(c, 5) for c in range(11)] + [(c, 6) for c in range(11)]
    assert list(sim.run(_inputs(ev), 60, 0).spike_times_ms) == [5.0]  # the input at t+1 is reset away
    ev = [(c, 5) for c in range(11)] + [(c, 7) for c in range(11)]
    assert list(sim.run(_inputs(ev), 60, 0).spike_times_ms) == [5.0, 7.0]  # no refractory period


def test_matches_literal_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    drive = rng.poisson(1.2, 3000) - rng.poisson(0.3, 3000)
    v, spikes = iaf_voltage(drive, IAFConfig())
    v_ref, spikes_ref = _reference(drive)
    assert len(spikes_ref) > 10
    assert list(spikes) == spikes_ref
    assert np.allclose(v, v_ref, atol=1e-9)


def test_release_probability_and_interface():
    sim = IAFSimulator()
    assert (sim.n_exc, sim.n_inh) == (80, 20) and sim.segment_table() is None
    inputs, _ = generate_iaf_inputs(InputGeneratorConfig.iaf(), 2000, np.random.default_rng(4))
    full = sim.run(inputs, 2000, seed=1, record_dendrites=True)
    assert full.exc_transmitted is None and full.dend_v_1ms is None
    assert np.array_equal(full.nexus_v_1ms, full.soma_v_1ms)
    assert full.soma_v_1ms.dtype == np.float32 and full.soma_v_1ms.shape == (2000,)
    one = sim.run(inputs, 2000, seed=1, release_probability=1.0)
    assert one.exc_transmitted.all() and np.array_equal(one.soma_v_1ms, full.soma_v_1ms)
    none = sim.run(inputs, 2000, seed=1, release_probability=0.0)
    assert not none.exc_transmitted.any() and np.all(none.soma_v_1ms == -75.0)
    a = sim.run(inputs, 2000, seed=5, release_probability=0.5)
    b = sim.run(inputs, 2000, seed=5, release_probability=0.5)
    c = sim.run(inputs, 2000, seed=6, release_probability=0.5)
    assert np.array_equal(a.exc_transmitted, b.exc_transmitted) and np.array_equal(a.soma_v_1ms, b.soma_v_1ms)
    assert not np.array_equal(a.exc_transmitted, c.exc_transmitted)
    assert 0.4 < a.exc_transmitted.mean() < 0.6
    assert a.exc_transmitted.shape == (inputs.exc.shape[0],)


def test_bad_input_and_config():
    sim = IAFSimulator()
    with pytest.raises(InputSpikesError, match="channel 80"):
        sim.run(_inputs([(80, 3)]), 100, 0)
    with pytest.raises(InputSpikesError, match="beyond the trial duration"):
        sim.run(_inputs([(1, 100)]), 100, 0)
    with pytest.raises(ConfigError, match="release_probability"):
        sim.run(_inputs(), 100, 0, release_probability=1.5)
    with pytest.raises(ConfigError, match="threshold"):
        IAFConfig(v_threshold_mv=-80.0)
    assert IAFSimulator({"tau_ms": 10.0}).config.kernel_length == 141
