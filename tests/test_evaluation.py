"""The published evaluation protocol: metrics on hand-checkable cases, windowing, filtering, evaluate()."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from neuroemu.errors import DatasetError
from neuroemu.evaluation.metrics import (auc_at_fp, calibrate_global, d_prime, roc_auc, soma_metrics, spike_metrics,
                                         subset_variability, tp_at_fp)
from neuroemu.evaluation.protocol import (EvaluationConfig, evaluate, evaluate_predictions, overlap_ms,
                                          predict_windows, window_plan, window_starts)
from neuroemu.models.emulator import forward_long
from neuroemu.models.tcn import TCN, TCNConfig
from neuroemu.training.config import TrainingConfig
from neuroemu.training.loop import train
from neuroemu.dataset.memory import make_toy_dataset

torch.set_num_threads(1)


# --------------------------------------------------------------------------- metrics
def test_auc_perfect_reversed_and_small_example():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0
    # classic example: pairs (pos, neg) ranked right: 3 of 4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # ties count one half
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert math.isnan(roc_auc([0, 0, 0], [1, 2, 3]))


def test_d_prime_and_partial_auc():
    assert d_prime(0.5) == pytest.approx(0.0)
    assert d_prime(0.9) == pytest.approx(math.sqrt(2) * 1.2815515655, rel=1e-6)
    y = np.array([0] * 50 + [1] * 5)
    s = np.arange(55, dtype=float)
    assert auc_at_fp(y, s) == pytest.approx(1.0)
    assert auc_at_fp(y, -s) == pytest.approx(0.0)


def test_tp_at_fp_constructed_example():
    # 1000 negatives scored 0..999; positives: 1 above all, 1 just under the top negative, 1 under the
    # 3rd negative, 7 below every negative.
    neg = np.arange(1000, dtype=float)
    pos = np.array([1000.5, 998.5, 996.5] + [-1.0] * 7)
    y = np.r_[np.zeros(1000), np.ones(10)]
    s = np.r_[neg, pos]
    res = tp_at_fp(y, s, [0.0, 0.001, 0.0025, 0.0014, 0.4, 0.6])
    # ROC points: (0, 0) (0, .1) (.001, .1) (.001, .2) (.003, .2) (.003, .3) (1, .3) (1, 1); nearest FP rate,
    # first point on ties (the highest threshold), never the artificial (0, 0) start
    assert res[0.0] == pytest.approx(0.1)
    assert res[0.001] == pytest.approx(0.1)
    assert res[0.0014] == pytest.approx(0.1)
    assert res[0.0025] == pytest.approx(0.2)    # 0.003 is nearer than 0.001
    assert res[0.4] == pytest.approx(0.2)       # (0.003, 0.2) is nearer than (1, 0.3)
    assert res[0.6] == pytest.approx(0.3)
    m = spike_metrics(y, s)
    assert m["tp_at_fp_0.001"] == pytest.approx(0.1) and m["tp_at_fp_0.0025"] == pytest.approx(0.2)
    assert m["spike_auc"] == pytest.approx(roc_auc(y, s))


def test_soma_metrics_by_hand_and_calibration_invariance():
    true = np.array([0.0, 0.0, 2.0, 2.0])   # mean 1, sd 1
    pred = np.array([0.0, 1.0, 0.0, 1.0])   # calibrated to [0, 2, 0, 2]
    np.testing.assert_allclose(calibrate_global(pred, true), [0, 2, 0, 2])
    m = soma_metrics(true, pred)
    assert m["soma_rmse_mv"] == pytest.approx(math.sqrt(2))
    assert m["soma_mae_mv"] == pytest.approx(1.0)
    assert m["soma_explained_variance"] == pytest.approx(-100.0)  # 1 - var(err)/var(true) = 1 - 2/1
    rng = np.random.default_rng(0)
    t = rng.normal(size=500)
    p = t + 0.3 * rng.normal(size=500)
    base = soma_metrics(t, p)
    for a, b in ((2.0, 5.0), (0.01, -70.0), (300.0, 1.0)):
        other = soma_metrics(t, a * p + b)
        for k in base:
            assert other[k] == pytest.approx(base[k], rel=1e-9, abs=1e-12)
    perfect = soma_metrics(t, 3 * t - 1)
    assert perfect["soma_rmse_mv"] == pytest.approx(0, abs=1e-9)
    assert perfect["soma_explained_variance"] == pytest.approx(100.0)
    uncal = soma_metrics(t, t + 1.0, calibrate=False)
    assert uncal["soma_rmse_mv"] == pytest.approx(1.0) and uncal["soma_mae_mv"] == pytest.approx(1.0)


def test_subset_variability_perfect_predictor_has_zero_sd():
    rng = np.random.default_rng(1)
    spikes = [(rng.random(100) < 0.05).astype(int) for _ in range(30)]
    for s in spikes:
        s[0] = 1
    scores = [s.astype(float) for s in spikes]
    soma = [rng.normal(size=100) for _ in range(30)]
    v = subset_variability(spikes, scores, soma, [2 * x + 1 for x in soma])
    assert v["spike_auc_mean"] == 1.0 and v["spike_auc_sd"] == 0.0
    assert v["soma_explained_variance_sd"] == pytest.approx(0.0, abs=1e-9)
    assert v["n_subsets"] == 12 and v["subset_size"] == int(0.67 * 30)
    noisy = subset_variability(spikes, [s + rng.normal(size=100) for s in scores], soma, soma)
    assert noisy["spike_auc_sd"] > 0


# --------------------------------------------------------------------------- windows
@pytest.mark.parametrize("t,o", [(153, 154), (149, 150), (1, 150), (43, 150), (150, 151), (239, 240), (257, 250)])
def test_overlap_rule(t, o):
    assert overlap_ms(t) == o


def test_window_starts_published_case():
    starts = window_starts(6000, 400, overlap_ms(153))
    assert len(starts) == 24 and starts[1] == 246 and starts[-1] + 400 >= 6000 and starts[-2] + 400 < 6000


@pytest.mark.parametrize("rf", [1, 43, 100, 149, 153, 200, 239, 249])
@pytest.mark.parametrize("duration", [400, 1000, 6000, 777])
def test_every_scored_ms_has_full_history(rf, duration):
    plan = window_plan(duration, rf)
    covered = np.zeros(duration, int)
    for k, (start, keep) in enumerate(plan):
        if k == 0:
            assert start == 0 and keep == 0
        for p in range(keep, 400):
            t = start + p
            if t >= duration:
                break
            covered[t] += 1
            # the first window starts with the trial itself; in the others each scored point sees rf ms
            assert start == 0 or p >= rf - 1 + 1  # p >= O >= T + 1 > T - 1
    assert np.all(covered == 1)


def test_windowed_prediction_equals_one_pass():
    torch.manual_seed(0)
    tcn = TCN(TCNConfig(n_inputs=10, depth=2, width=4, kernels=[40, 30], kernel_init_std=0.3)).eval()
    x = (np.random.default_rng(0).random((1500, 10)) < 0.05).astype(np.uint8)
    lw, sw = predict_windows(tcn, x)
    lo, so = forward_long(tcn, x)
    np.testing.assert_allclose(lw, lo[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sw, so[0], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- filtering
def test_filtering_drops_first_500_ms_and_spiky_traces():
    n_t, dur = 6, 1000
    spikes, logits, soma_t, soma_p = [], [], [], []
    rng = np.random.default_rng(2)
    for i in range(n_t):
        y = np.zeros(dur, int)
        y[[600, 700, 800]] = 1
        s = y.astype(float) * 5
        if i == 0:  # 30 spikes after 500 ms: excluded, and scored worst possible
            y[520:980:15] = 1
            s = -y.astype(float)
        y[[10, 20, 30]] = 1  # spikes in the dropped part: not counted, not scored
        s[:500] = -10 * y[:500]
        v = rng.normal(size=dur)
        spikes.append(y), logits.append(s), soma_t.append(v), soma_p.append(v)
    res = evaluate_predictions(spikes, logits, soma_t, soma_p)
    assert res["n_traces"] == 5 and res["n_traces_total"] == 6 and res["n_traces_excluded"] == 1
    assert res["n_spikes"] == 15 and res["n_bins"] == 5 * 500
    assert res["spike_auc"] == 1.0 and res["tp_at_fp_0.001"] == 1.0
    assert res["soma_explained_variance"] == pytest.approx(100.0)
    assert res["by_spike_range"]["[0,90]"]["n_traces"] == 6
    assert res["by_spike_range"]["[0,90]"]["spike_auc"] < 1.0
    assert res["by_spike_range"]["[1,24]"]["n_traces"] == 5
    wide = evaluate_predictions(spikes, logits, soma_t, soma_p, EvaluationConfig(spike_range=[0, 100]))
    assert wide["n_traces"] == 6 and wide["spike_auc"] < 1.0


# --------------------------------------------------------------------------- evaluate()
@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    ds = make_toy_dataset(n_trials=20, n_exc=10, n_inh=4, duration_ms=1200, seed=3)
    run = tmp_path_factory.mktemp("eval") / "run"
    tcfg = TrainingConfig.from_preset("modern", max_steps=60, val_every_steps=30, window_ms=200, min_end_ms=200,
                                      threads=1, tensorboard=False, lr=5e-3, split_fractions=[0.5, 0.2, 0.3])
    train(ds, TCNConfig(depth=1, width=2, kernels=[30]), tcfg, run)
    return ds, run


def test_evaluate_writes_metrics_json(toy_run, tmp_path):
    ds, run = toy_run
    out = tmp_path / "metrics.json"
    res = evaluate(run, dataset=ds, out=out)
    saved = json.loads(out.read_text())
    for key in ("spike_auc", "spike_auc_sd", "tp_at_fp_0.001", "tp_at_fp_0.0025", "soma_rmse_mv", "soma_mae_mv",
                "soma_explained_variance", "n_traces", "n_spikes"):
        assert key in saved, key
    assert saved["spike_auc"] == pytest.approx(res["spike_auc"])
    test_idx = json.loads((run / "run.json").read_text())["split"]["test"]
    assert saved["n_traces_total"] == len(test_idx) == 6 and saved["split"] == "test"
    assert 0.8 < saved["spike_auc"] <= 1.0
    assert saved["protocol"]["overlap_ms"] == 150 and saved["receptive_field_ms"] == 30
    one = evaluate(run, dataset=ds, config=EvaluationConfig(mode="one_pass"))
    for k in ("spike_auc", "tp_at_fp_0.001", "soma_rmse_mv", "soma_explained_variance"):
        assert one[k] == pytest.approx(res[k], rel=1e-4, abs=1e-6)
    everything = evaluate(run, dataset=ds, split="all")
    assert everything["n_traces_total"] == 20


def test_evaluate_rejects_incompatible_dataset(toy_run):
    _, run = toy_run
    other = make_toy_dataset(n_trials=3, n_exc=11, n_inh=4, duration_ms=1200)
    with pytest.raises(DatasetError, match="incompatible cell"):
        evaluate(run, dataset=other)
    with pytest.raises(DatasetError, match="no dataset path"):
        evaluate(run)  # trained in memory: the dataset must be given
    # same channels, different dataset: every trial is scored
    fresh = make_toy_dataset(n_trials=4, n_exc=10, n_inh=4, duration_ms=1200, seed=99)
    res = evaluate(run, dataset=fresh)
    assert res["n_traces_total"] == 4 and res["split"].startswith("all")
