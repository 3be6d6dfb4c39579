"""Metrics of the published evaluation (reference 9.2, 9.4), computed on pooled 1-ms bins.

Spike prediction: ROC AUC (``sklearn.metrics.roc_curve`` with its defaults + ``auc``), d' = sqrt(2) *
Phi^-1(AUC), and the TP rate at the ROC point whose FP rate is nearest x. As in the published code, that
point is the first one (highest threshold) on ties and never sklearn's artificial (0, 0) starting point
(index 0 is replaced by index 1). The normalised partial AUC up to x: the ROC interpolated on 20,000
FP rates linearly spaced over [0, 1], averaged over the grid points below x (the published rule; about
200 points for x = 1%). Soma voltage: RMSE, MAE and explained variance (percent,
``explained_variance_score * 100``) after the global calibration of 9.2.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["PUBLISHED_FP_RATES", "roc_points", "roc_auc", "d_prime", "tp_at_fp", "auc_at_fp",
           "calibrate_global", "soma_metrics", "spike_metrics", "subset_variability"]

PUBLISHED_FP_RATES = (0.0001, 0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1)


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels have {y.size} bins but scores have {s.size}")
    return (y > 0).astype(np.int8), s


def roc_points(y_true, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) from ``sklearn.metrics.roc_curve`` with its default arguments."""
    from sklearn.metrics import roc_curve

    y, s = _check(y_true, score)
    return roc_curve(y, s)


def _single_class(y: np.ndarray) -> bool:
    return y.size == 0 or y.min() == y.max()


def roc_auc(y_true, score) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    from sklearn.metrics import auc

    y, s = _check(y_true, score)
    if _single_class(y):
        return float("nan")
    fpr, tpr, _ = roc_points(y, s)
    return float(auc(fpr, tpr))


def d_prime(auc_value: float) -> float:
    """Discriminability ``sqrt(2) * Phi^-1(AUC)`` (infinite at AUC 1)."""
    from scipy.stats import norm

    if not math.isfinite(auc_value):
        return float("nan")
    return float(math.sqrt(2.0) * norm.ppf(auc_value))


def tp_at_fp(y_true, score, fp_rates: Sequence[float] = PUBLISHED_FP_RATES,
             roc: tuple | None = None) -> dict[float, float]:
    """TP rate at the ROC point whose FP rate is nearest each x in ``fp_rates`` (published rule: first
    point on ties, index 0 -- the (0, 0) start -- replaced by index 1)."""
    y, s = _check(y_true, score)
    if _single_class(y):
        return {float(x): float("nan") for x in fp_rates}
    fpr, tpr, _ = roc if roc is not None else roc_points(y, s)
    out = {}
    for x in fp_rates:
        i = int(np.argmin(np.abs(fpr - x)))
        out[float(x)] = float(tpr[max(i, 1) if fpr.size > 1 else i])
    return out


def auc_at_fp(y_true, score, max_fp: float = 0.01, n_points: int = 20000, roc: tuple | None = None) -> float:
    """Normalised partial AUC up to ``max_fp``: the ROC interpolated on ``n_points`` FP rates spaced
    linearly over [0, 1], averaged over the first k points, k = the index nearest ``max_fp`` (at least 1)."""
    y, s = _check(y_true, score)
    if _single_class(y):
        return float("nan")
    fpr, tpr, _ = roc if roc is not None else roc_points(y, s)
    grid = np.linspace(0.0, 1.0, n_points)
    tpr_grid = np.interp(grid, fpr, tpr)
    k = min(max(1, int(np.argmin(np.abs(grid - max_fp)))), n_points - 1)
    return float(np.mean(tpr_grid[:k]))


def calibrate_global(pred, true) -> np.ndarray:
    """z-score ``pred`` over all bins and rescale to ``true``'s global mean and SD (reference 9.2)."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    sd = p.std()
    if sd == 0 or not np.isfinite(sd):
        return np.full_like(p, t.mean())
    return (p - p.mean()) / sd * t.std() + t.mean()


def soma_metrics(true, pred, calibrate: bool = True) -> dict[str, float]:
    """RMSE (mV), MAE (mV) and explained variance (percent) of ``pred`` against ``true``, after the
    global calibration unless ``calibrate=False``."""
    from sklearn.metrics import explained_variance_score

    t = np.asarray(true, dtype=np.float64).ravel()
    p = np.asarray(pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"true soma has {t.size} bins but prediction has {p.size}")
    if t.size == 0:
        return {"soma_rmse_mv": float("nan"), "soma_mae_mv": float("nan"), "soma_explained_variance": float("nan")}
    if calibrate:
        p = calibrate_global(p, t)
    err = p - t
    return {"soma_rmse_mv": float(np.sqrt(np.mean(err ** 2))), "soma_mae_mv": float(np.mean(np.abs(err))),
            "soma_explained_variance": float(100.0 * explained_variance_score(t, p))}


def spike_metrics(y_true, score, fp_rates: Sequence[float] = PUBLISHED_FP_RATES) -> dict[str, float]:
    """AUC, d', TP at each FP rate (keys ``tp_at_fp_<x>``) and ``auc_at_fp_0.01``."""
    y, s = _check(y_true, score)
    if _single_class(y):
        nan = float("nan")
        out = {"spike_auc": nan, "d_prime": nan, "auc_at_fp_0.01": nan}
        out.update({f"tp_at_fp_{x:g}": nan for x in fp_rates})
        return out
    from sklearn.metrics import auc

    roc = roc_points(y, s)
    a = float(auc(roc[0], roc[1]))
    out = {"spike_auc": a, "d_prime": d_prime(a), "auc_at_fp_0.01": auc_at_fp(y, s, roc=roc)}
    out.update({f"tp_at_fp_{x:g}": v for x, v in tp_at_fp(y, s, fp_rates, roc=roc).items()})
    return out


def subset_variability(spikes: list[np.ndarray], scores: list[np.ndarray], soma_true: list[np.ndarray],
                       soma_pred: list[np.ndarray], n_subsets: int = 12, fraction: float = 0.67,
                       seed: int = 0) -> dict[str, float]:
    """Mean and SD over ``n_subsets`` random subsets holding ``fraction`` of the traces (reference 9.4) of
    the spike AUC and the soma explained variance (each subset calibrated on its own)."""
    n = len(spikes)
    k = int(fraction * n)
    nan = float("nan")
    if n == 0 or k == 0:
        return {"spike_auc_mean": nan, "spike_auc_sd": nan, "soma_explained_variance_mean": nan,
                "soma_explained_variance_sd": nan, "n_subsets": n_subsets, "subset_size": k}
    rng = np.random.default_rng(seed)
    aucs, evs = [], []
    for _ in range(n_subsets):
        idx = rng.choice(n, size=k, replace=False)
        aucs.append(roc_auc(np.concatenate([spikes[i] for i in idx]), np.concatenate([scores[i] for i in idx])))
        evs.append(soma_metrics(np.concatenate([soma_true[i] for i in idx]),
                                np.concatenate([soma_pred[i] for i in idx]))["soma_explained_variance"])
    aucs_a, evs_a = np.asarray(aucs), np.asarray(evs)
    return {"spike_auc_mean": float(np.nanmean(aucs_a)) if np.isfinite(aucs_a).any() else nan,
            "spike_auc_sd": float(np.nanstd(aucs_a)) if np.isfinite(aucs_a).any() else nan,
            "soma_explained_variance_mean": float(np.mean(evs_a)), "soma_explained_variance_sd": float(np.std(evs_a)),
            "n_subsets": n_subsets, "subset_size": k}
