"""Somatic spike detection, the published rule (reference reference 2.4).

A sample is a spike when it is greater than the previous sample, greater than the next sample and above the
threshold (-25 mV); the spike time is that sample's grid time. The published code ran this on the 0.125-ms
soma trace. The first and the last sample are never spikes (they lack a neighbour).
"""
from __future__ import annotations

import numpy as np


def detect_spikes(v: np.ndarray, t: np.ndarray, threshold: float = -25.0,
                  allow_plateaus: bool = False) -> np.ndarray:
    """Return the float64 times ``t[i]`` of the local maxima of ``v`` above ``threshold`` (reference 2.4 rule).

    ``allow_plateaus=False`` is the exact published rule (strictly greater than both neighbours). With
    ``allow_plateaus=True`` a run of equal samples counts as one sample, and the peak time is the run's first
    sample: use it on quantised traces (for example float16 recordings), where the top of a spike can span two
    equal samples and the strict rule would miss it.
    """
    v = np.asarray(v, dtype=np.float64).ravel()
    t = np.asarray(t, dtype=np.float64).ravel()
    if v.shape != t.shape:
        raise ValueError(f"detect_spikes: v has {v.shape[0]} samples but t has {t.shape[0]}")
    if v.shape[0] < 3:
        return np.zeros(0, dtype=np.float64)
    if not allow_plateaus:
        mid = v[1:-1]
        idx = np.flatnonzero((mid > v[:-2]) & (mid > v[2:]) & (mid > threshold)) + 1
        return t[idx].astype(np.float64)
    # collapse runs of equal values, keep each run's first index
    starts = np.concatenate([[0], np.flatnonzero(np.diff(v) != 0) + 1])
    vr = v[starts]
    if vr.shape[0] < 3:
        return np.zeros(0, dtype=np.float64)
    mid = vr[1:-1]
    keep = np.flatnonzero((mid > vr[:-2]) & (mid > vr[2:]) & (mid > threshold)) + 1
    return t[starts[keep]].astype(np.float64)
