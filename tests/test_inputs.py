"""Input generator (reference 5.1, 5.3, 5.4, 7): statistics, determinism, config handling."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from neuroemu.errors import ConfigError
from neuroemu.inputs.generator import (PRESETS, InputGeneratorConfig, RangeSetting, _jittered_choice,
                                       expected_channel_rates_hz, gaussian_window, generate_channels,
                                       generate_iaf_inputs, generate_inputs, preset, smooth_same)

from conftest import SHARED_DATA  # noqa: E402

CSV = SHARED_DATA / "L5PC_cell1_segments.csv"


def cell1_segments() -> tuple[np.ndarray, np.ndarray]:
    """Published cell1 segment lengths and types, or a synthetic table with the same adjusted totals."""
    if CSV.is_file():
        rows = list(csv.DictReader(CSV.open()))
        return (np.array([float(r["seg_length_um"]) for r in rows]), np.array([r["type"] for r in rows]))
    rng = np.random.default_rng(0)
    lengths, types = [], []
    for tree, n, total in (("basal", 262, 5133.492), ("apical", 377, 7440.906)):
        x = rng.uniform(2, 40, n)
        lengths.append(x * total / x.sum())
        types += [tree] * n
    return np.concatenate(lengths), np.array(types)


def test_adjusted_lengths_match_reference_totals():
    lengths, types = cell1_segments()
    w = lengths + 10.0
    assert (types == "basal").sum() == 262 and (types == "apical").sum() == 377
    assert w[types == "basal"].sum() == pytest.approx(7753.5, abs=0.5)
    assert w[types == "apical"].sum() == pytest.approx(11210.9, abs=0.5)


def test_analytic_rates_match_reference_5_4():
    lengths, types = cell1_segments()
    exc, inh = expected_channel_rates_hz(InputGeneratorConfig.nmda(), lengths + 10.0, types)
    b, a = types == "basal", types == "apical"
    assert exc[b].mean() == pytest.approx(15.3, abs=0.05)
    assert inh[b].mean() == pytest.approx(11.9, abs=0.05)
    assert exc[a].mean() == pytest.approx(10.6, abs=0.05)
    assert inh[a].mean() == pytest.approx(8.3, abs=0.05)


def test_sampled_rates_match_reference_5_4_and_scale_with_length():
    lengths, types = cell1_segments()
    cfg = InputGeneratorConfig.nmda()
    n, t_ms = 8, 6000
    ce, ci = np.zeros(639), np.zeros(639)
    for s in range(n):
        sp, params = generate_inputs(cfg, lengths, types, t_ms, np.random.default_rng(100 + s))
        ce += np.bincount(sp.exc[:, 0], minlength=639)
        ci += np.bincount(sp.inh[:, 0], minlength=639)
    hz_e, hz_i = ce / (n * t_ms / 1000), ci / (n * t_ms / 1000)
    b, a = types == "basal", types == "apical"
    # the zero-padded 'same' smoothing attenuates the trial edges by a few percent
    assert hz_e[b].mean() == pytest.approx(15.3, rel=0.12)
    assert hz_i[b].mean() == pytest.approx(11.9, rel=0.15)
    assert hz_e[a].mean() == pytest.approx(10.6, rel=0.12)
    assert hz_i[a].mean() == pytest.approx(8.3, rel=0.15)
    # rate proportional to adjusted length within a tree
    for sel in (b, a):
        assert np.corrcoef(hz_e[sel], lengths[sel] + 10)[0, 1] > 0.8


def test_iaf_rates_per_synapse():
    cfg = InputGeneratorConfig.iaf()
    n_e = n_i = 0
    n = 30
    for s in range(n):
        sp, params = generate_iaf_inputs(cfg, 6000, np.random.default_rng(s))
        assert sp.exc[:, 0].max() < 80 and sp.inh[:, 0].max() < 20
        n_e += sp.exc.shape[0]
        n_i += sp.inh.shape[0]
    exp_e, exp_i = expected_channel_rates_hz(cfg, np.ones(80), ["all"] * 80, np.ones(20), ["all"] * 20)
    assert exp_e.mean() == pytest.approx(25 * 10 / 80)           # U(0, 50) per 100 ms over 80 synapses
    assert exp_i.mean() == pytest.approx(35 ** 2 / 4 / 50 * 10 / 20, rel=1e-3)  # U(0, ex-15), 0 below ex=15
    assert n_e / (n * 6 * 80) == pytest.approx(exp_e.mean(), rel=0.1)
    assert n_i / (n * 6 * 20) == pytest.approx(exp_i.mean(), rel=0.15)


def test_deterministic_and_seed_dependent():
    lengths, types = cell1_segments()
    cfg = InputGeneratorConfig.nmda()
    a, pa = generate_inputs(cfg, lengths, types, 1000, np.random.default_rng(7))
    b, pb = generate_inputs(cfg, lengths, types, 1000, np.random.default_rng(7))
    c, _ = generate_inputs(cfg, lengths, types, 1000, np.random.default_rng(8))
    assert np.array_equal(a.exc, b.exc) and np.array_equal(a.inh, b.inh)
    assert np.array_equal(pa["exc_per_100ms"], pb["exc_per_100ms"]) and pa["sigma_ms"] == pb["sigma_ms"]
    assert not (a.exc.shape == c.exc.shape and np.array_equal(a.exc, c.exc))


def test_events_valid_and_sorted_by_time():
    lengths, types = cell1_segments()
    sp, params = generate_inputs(InputGeneratorConfig.nmda(), lengths, types, 700, np.random.default_rng(3))
    sp.validate(639, 700)
    for ev in (sp.exc, sp.inh):
        assert ev.dtype == np.int32
        order = np.lexsort((ev[:, 0], ev[:, 1]))
        assert np.array_equal(order, np.arange(ev.shape[0]))
    n_int = params["exc_per_100ms"].shape[0]
    assert n_int == int(np.ceil(700 / params["interval_ms"]))
    assert params["trees"] == ["basal", "apical"]


def test_gaussian_window_and_same_alignment():
    for sigma in (6, 25, 31):
        w = gaussian_window(sigma)
        assert w.shape == (int(1 + 7 * sigma),)
        assert w.sum() == pytest.approx(1.0)
        assert np.allclose(w, w[::-1])
    rng = np.random.default_rng(0)
    x = rng.random((300, 3))
    for sigma in (6, 25):  # odd and even window lengths
        w = gaussian_window(sigma)
        ref = np.stack([np.convolve(x[:, k], w, mode="same") for k in range(3)], 1)
        assert np.allclose(smooth_same(x, w), ref, atol=1e-12)


def test_jitter_distribution():
    rng = np.random.default_rng(1)
    vals = np.array([_jittered_choice([100], 20, rng) for _ in range(40000)])
    assert vals.min() == 81 and vals.max() == 119
    counts = np.bincount(vals - 81)
    # int() truncation: 0 collects (-1, 1), twice the width of any other value
    assert counts[19] / counts[[17, 18, 20, 21]].mean() == pytest.approx(2.0, rel=0.15)


def test_inhibition_rule_and_negative_floor():
    fixed = RangeSetting(name="fixed", exc={"all": [100.0, 100.0]}, inh_diff={"all": [-50.0, 50.0]})
    cfg = InputGeneratorConfig.iaf().replace(range_mixture=[fixed])
    _, p = generate_iaf_inputs(cfg, 6000, np.random.default_rng(0))
    inh = p["inh_per_100ms"]
    assert np.all(p["exc_per_100ms"] == 100.0)
    assert inh.min() >= 50.0 and inh.max() <= 150.0
    low = RangeSetting(name="low", exc={"all": [0.0, 10.0]}, inh_diff={"all": [-50.0, -15.0]})
    _, p = generate_iaf_inputs(cfg.replace(range_mixture=[low]), 6000, np.random.default_rng(0))
    assert np.all(p["inh_per_100ms"] == pytest.approx(1e-4))


def test_range_mixture_chosen_per_trial():
    cfg = InputGeneratorConfig.nmda_mixed()
    lengths, types = cell1_segments()
    picks = [generate_inputs(cfg, lengths, types, 50, np.random.default_rng(s))[1]["range_index"]
             for s in range(60)]
    assert set(picks) == {0, 1}
    assert 0.15 < np.mean(picks) < 0.5  # weights 2 : 1
    again = [generate_inputs(cfg, lengths, types, 50, np.random.default_rng(s))[1]["range_index"]
             for s in range(60)]
    assert picks == again
    heavy = cfg.replace(range_mixture=[r.replace(weight=w) for r, w in zip(cfg.range_mixture, (1.0, 1e-6))])
    assert all(generate_inputs(heavy, lengths, types, 50, np.random.default_rng(s))[1]["range_index"] == 0
               for s in range(10))


def test_presets_match_reference_5_3():
    assert PRESETS.keys() >= {"nmda", "ampa", "ampa_sk", "iaf"}
    n = preset("nmda").range_mixture[0]
    assert n.exc == {"basal": [0, 800], "apical": [0, 800]}
    assert n.inh_diff == {"basal": [-600, 200], "apical": [-600, 200]}
    a = preset("ampa").range_mixture[0]
    assert a.exc == {"basal": [0, 1900], "apical": [0, 2000]} and a.inh_diff["apical"] == [-1650, 150]
    s = preset("ampa_sk").range_mixture[0]
    assert s.inh_diff == {"basal": [-1500, 300], "apical": [-1500, 300]}
    iaf = preset("iaf")
    assert iaf.sigma_options_ms == [40, 60, 80, 100] and iaf.weighting == "count"
    assert min(iaf.interval_options_ms) == 25 and max(iaf.interval_options_ms) == 100
    assert InputGeneratorConfig.nmda().interval_options_ms[-1] == 450
    with pytest.raises(ConfigError, match="unknown inputs preset"):
        preset("nope")


def test_config_roundtrip_and_validation():
    cfg = InputGeneratorConfig.nmda_mixed()
    back = InputGeneratorConfig.from_yaml(cfg.to_yaml())
    assert back == cfg
    with pytest.raises(ValueError, match="bogus"):
        InputGeneratorConfig.from_dict({"bogus": 1})
    bad = cfg.replace(range_mixture=[RangeSetting(exc={"basal": [10.0, 5.0], "apical": [0.0, 1.0]})])
    with pytest.raises(ConfigError, match=r"exc\['basal'\]"):
        bad.validate()
    with pytest.raises(ConfigError, match="interval_options_ms"):
        cfg.replace(interval_options_ms=[10]).validate()
    with pytest.raises(ConfigError, match="no ranges for tree"):
        generate_channels(InputGeneratorConfig.iaf(), ["basal"] * 3, ["basal"] * 3, np.ones(3), np.ones(3), 100,
                          np.random.default_rng(0))


def test_interval_kernel_smoothing_equals_fft_path():
    from neuroemu.inputs.generator import smooth_piecewise_constant

    rng = np.random.default_rng(2)
    for interval, sigma, t_ms in ((25, 600, 6000), (450, 25, 6000), (6, 6, 500), (40, 100, 90)):
        n_int = int(np.ceil(t_ms / interval))
        coarse = rng.random((n_int, 4))
        w = gaussian_window(sigma)
        ref = smooth_same(np.repeat(coarse, interval, axis=0)[:t_ms], w)
        got = smooth_piecewise_constant(coarse, interval, t_ms, w)
        assert got.shape == (t_ms, 4) and got.min() >= 0
        assert np.allclose(got, ref, atol=1e-12)
