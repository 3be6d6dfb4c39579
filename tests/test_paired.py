"""Bootstrap statistics over test traces: exact AUCs, paired differences, the FCI, and CI size checks."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from neuroemu.errors import ConfigError, DatasetError
from neuroemu.evaluation.paired import (TracePredictions, auc_ci, bootstrap_aucs, fci, fci_ci, paired_auc_difference,
                                        traces_needed, traces_to_resolve)


def _preds(n=60, t=800, shift=2.0, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    y = labels if labels is not None else (rng.random((n, t)) < 0.01).astype(np.int8)
    s = np.round(rng.normal(size=(n, t)) + shift * y, 1)  # rounding makes ties
    return TracePredictions(s.ravel(), y.ravel(), np.repeat(np.arange(n), t), np.arange(n), f"seed{seed}"), y


def test_auc_of_all_traces_is_sklearns():
    p, y = _preds()
    full, _ = bootstrap_aucs([p], n_boot=2)
    assert full[0] == pytest.approx(roc_auc_score(p.labels, p.scores), abs=1e-12)


def test_a_replicate_is_the_auc_of_the_resampled_traces():
    p, _ = _preds(n=12, t=300)
    w = np.array([2, 0, 1, 1, 0, 3, 1, 0, 1, 2, 0, 1], float)
    idx = np.concatenate([np.flatnonzero(p.trace == k) for k in range(12) for _ in range(int(w[k]))])
    from neuroemu.evaluation.paired import _RankedAUC

    assert _RankedAUC(p)(w) == pytest.approx(roc_auc_score(p.labels[idx], p.scores[idx]), abs=1e-12)


def test_paired_difference_sees_a_real_gain_and_not_a_null_one():
    a, y = _preds(shift=2.5, seed=1)
    b, _ = _preds(shift=1.5, seed=2, labels=y)
    gain = paired_auc_difference(a, b, n_boot=300)
    assert gain.value > 0 and gain.ci_low > 0 and gain.ci_low < gain.value < gain.ci_high
    same = paired_auc_difference(a, a, n_boot=50)
    assert same.value == 0 and same.ci_low == same.ci_high == 0


def test_pairing_needs_the_same_traces():
    a, _ = _preds(seed=1)
    b, _ = _preds(seed=2)
    with pytest.raises(DatasetError, match="same test traces"):
        paired_auc_difference(a, b, n_boot=10)


def test_too_few_traces_for_the_ci_say_how_many_are_needed():
    assert traces_needed(0.95) == 40 and traces_needed(0.9) == 20
    p, _ = _preds(n=30)
    with pytest.raises(ConfigError, match="needs at least 40"):
        auc_ci(p, level=0.95)
    assert auc_ci(p, n_boot=50, level=0.9).n_traces == 30


def test_traces_to_resolve_scales_the_ci_bound_on_the_side_of_zero():
    assert traces_to_resolve(0.006, -0.001, 0.012, 62) == 85  # ceil(62 * (7 / 6)^2) = ceil(84.4)
    assert traces_to_resolve(-0.006, -0.012, 0.001, 62) == 85
    assert traces_to_resolve(0.008, 0.002, 0.013, 62) < 62  # already excludes 0
    assert traces_to_resolve(0.0, -0.01, 0.01, 62) is None and traces_to_resolve(0.01, None, None, 62) is None


def test_traces_to_resolve_predicts_the_interval_of_more_traces():
    """The estimate made on n traces agrees with the one made on the same traces repeated 4 times (the
    bootstrap treats copies as new traces, so the CI shrinks as 1 / sqrt(traces) and the estimate holds)."""
    a, y = _preds(n=60, shift=2.05, seed=3)
    b, _ = _preds(n=60, shift=2.0, seed=4, labels=y)
    d = paired_auc_difference(a, b, n_boot=400)
    need = traces_to_resolve(d.value, d.ci_low, d.ci_high, 60)
    assert need is not None and need > 60  # a small gain, not resolved by 60 traces

    def rep(p, k):
        n = len(p.trials)
        return TracePredictions(np.tile(p.scores, k), np.tile(p.labels, k),
                                np.concatenate([p.trace + j * n for j in range(k)]), np.arange(k * n), p.source)

    d4 = paired_auc_difference(rep(a, 4), rep(b, 4), n_boot=400)
    assert d4.value == pytest.approx(d.value, abs=1e-12)
    assert traces_to_resolve(d4.value, d4.ci_low, d4.ci_high, 240) == pytest.approx(need, rel=0.3)


def test_fci_definition_and_interval():
    assert fci(0.9) == pytest.approx(1.0) and fci(0.999) == pytest.approx(0.0)
    p, _ = _preds()
    r = fci_ci(p, n_boot=200)
    assert r.ci_low <= r.value <= r.ci_high


def test_one_training_seed_gives_exactly_the_paired_difference():
    from neuroemu.evaluation.paired import replicated_differences

    a, y = _preds(shift=2.5, seed=1)
    b, _ = _preds(shift=1.5, seed=2, labels=y)
    one = paired_auc_difference(a, b, n_boot=200, level=0.9)
    res = replicated_differences([[(0, a, b)]], n_boot=200)
    assert res.full[0] == pytest.approx(one.value, abs=1e-12)
    lo, hi = np.percentile(res.boot[:, 0], [5, 95])
    assert (lo, hi) == pytest.approx((one.ci_low, one.ci_high), abs=1e-12)


def test_training_seeds_are_averaged_and_their_spread_widens_the_interval():
    """Two seeds of the deep network, one good and one poor: the gain is their mean, and the CI, which now
    resamples the seeds, is wider than the trace-only CI of either seed."""
    from neuroemu.evaluation.paired import replicated_differences, seed_weights

    a_good, y = _preds(shift=3.0, seed=1)
    a_poor, _ = _preds(shift=1.6, seed=3, labels=y)
    b, _ = _preds(shift=1.5, seed=2, labels=y)
    b2, _ = _preds(shift=1.5, seed=4, labels=y)
    res = replicated_differences([[(0, a_good, b), (1, a_poor, b2)]], n_boot=400)
    d0, d1 = res.by_seed[0]
    assert res.full[0] == pytest.approx((d0 + d1) / 2) and d0 > d1
    width = np.ptp(np.percentile(res.boot[:, 0], [2.5, 97.5]))
    for a, bb in ((a_good, b), (a_poor, b2)):
        one = paired_auc_difference(a, bb, n_boot=400)
        assert width > one.ci_high - one.ci_low
    w = seed_weights(3, 50, seed=0)
    assert w.shape == (50, 3) and np.all(w.sum(1) == 3) and np.array_equal(w, seed_weights(3, 50, seed=0))
    assert np.all(seed_weights(1, 5) == 1)
