"""Statistics over test traces: bootstrap confidence intervals of spike AUCs, of paired AUC differences between
emulators scored on the same traces, and of the functional complexity index (reference 12.6).

The unit of resampling is the test trace (a trace's ms bins are not independent). Every emulator's predictions
come from :func:`neuroemu.evaluation.protocol.save_predictions` (``test_predictions.npz`` in a run directory).
The scored bins are those of the published protocol: the first ``drop_first_ms`` of each trace dropped, traces
with a spike count in ``spike_range`` kept (reference 9.3); the AUC over their pooled bins (ties count half,
exactly as ``sklearn.metrics.roc_auc_score``) is the evaluation's ``spike_auc``.

A replicate resamples the traces with replacement, the same resample for every emulator compared (paired).
Where each emulator was trained several times (training seeds), :func:`replicated_differences` averages the
paired difference over the seeds and each replicate also resamples the seeds (a two-level bootstrap: test
traces and training runs), so the interval holds the training-seed variance as well as the test-set noise.
The interval is the percentile interval of the replicates at ``level``. With ``n`` traces the percentile
bootstrap cannot place a tail of (1 - level) / 2 finer than one trace's weight, so a CI needs at least
``2 / (1 - level)`` traces (:func:`traces_needed`; 40 for 95%).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from neuroemu.errors import ConfigError, DatasetError

__all__ = ["TracePredictions", "load_predictions", "traces_needed", "check_ci_traces", "bootstrap_aucs",
           "auc_ci", "paired_auc_difference", "fci", "fci_ci", "BootstrapResult", "seed_weights",
           "ReplicatedDifferences", "replicated_differences", "percentile_interval", "traces_to_resolve",
           "independent_difference"]


def traces_needed(level: float) -> int:
    """Scored traces a percentile bootstrap CI at ``level`` needs: ``ceil(2 / (1 - level))``."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"CI level must be in (0, 1), got {level}")
    return int(math.ceil(2.0 / (1.0 - level) - 1e-9))


def check_ci_traces(n_traces: int, level: float, what: str) -> None:
    """Raise :class:`ConfigError` when ``n_traces`` scored traces are too few for a CI at ``level``."""
    need = traces_needed(level)
    if n_traces < need:
        raise ConfigError(f"{what}: {n_traces} scored test traces are too few for a {100 * level:g}% confidence "
                          f"interval over traces; it needs at least {need} (simulate more test trials)")


@dataclass
class TracePredictions:
    """One emulator's scored test bins: ``scores`` (spike logits) and ``labels`` per bin, ``trace`` (the trace
    number of each bin, 0..n_traces-1), ``trials`` (dataset trial of each kept trace)."""

    scores: np.ndarray
    labels: np.ndarray
    trace: np.ndarray
    trials: np.ndarray
    source: str = ""

    @property
    def n_traces(self) -> int:
        """Number of scored traces."""
        return int(self.trials.size)


def load_predictions(path: str | Path, drop_first_ms: int | None = None,
                     spike_range: Sequence[int] | None = None) -> TracePredictions:
    """Read ``test_predictions.npz`` and keep the protocol's bins (its own ``drop_first_ms`` and ``spike_range``
    unless given). A missing or unreadable file raises :class:`DatasetError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: predictions not found (evaluate the run with predictions_out)")
    try:
        with np.load(path) as z:
            logits, spikes, trials = z["logits"], z["spikes"], z["trials"]
            cfg = json.loads(str(z["config_json"]))
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable predictions ({e})") from None
    d = int(cfg.get("drop_first_ms", 500) if drop_first_ms is None else drop_first_ms)
    lo, hi = (spike_range if spike_range is not None else cfg.get("spike_range", [0, 24]))
    sp = spikes[:, d:].astype(np.int8)
    keep = np.flatnonzero((sp.sum(1) >= lo) & (sp.sum(1) <= hi))
    n_bins = sp.shape[1]
    return TracePredictions(scores=logits[keep, d:].astype(np.float64).ravel(), labels=sp[keep].ravel(),
                            trace=np.repeat(np.arange(keep.size), n_bins), trials=trials[keep], source=str(path))


class _RankedAUC:
    """The AUC of the pooled bins for any weighting of the traces, from one pass over the data.

    With trace weights w, AUC(w) = w' C w / ((w' P) (w' N)), where C[k, l] counts the pairs (positive bin of
    trace k, negative bin of trace l) ranked correctly (ties half), P and N the positives and negatives per
    trace: a replicate then costs one small matrix product."""

    def __init__(self, p: TracePredictions) -> None:
        n = p.n_traces
        pos = p.labels > 0
        self.P = np.bincount(p.trace[pos], minlength=n).astype(np.float64)
        self.N = np.bincount(p.trace[~pos], minlength=n).astype(np.float64)
        pos_s, pos_k = p.scores[pos], p.trace[pos]
        self.C = np.zeros((n, n))
        for l in range(n):
            negs = np.sort(p.scores[(p.trace == l) & ~pos])
            left = np.searchsorted(negs, pos_s, "left")
            right = np.searchsorted(negs, pos_s, "right")
            self.C[:, l] = np.bincount(pos_k, left + 0.5 * (right - left), minlength=n)

    def __call__(self, trace_weights: np.ndarray) -> float:
        w = np.asarray(trace_weights, dtype=np.float64)
        n_pos, n_neg = float(w @ self.P), float(w @ self.N)
        if n_pos <= 0 or n_neg <= 0:
            return float("nan")
        return float(w @ self.C @ w / (n_pos * n_neg))


def _check_same_traces(preds: Sequence[TracePredictions]) -> None:
    ref = preds[0]
    for p in preds[1:]:
        if not np.array_equal(p.trials, ref.trials) or not np.array_equal(p.labels, ref.labels):
            raise DatasetError(f"{p.source} and {ref.source} were not scored on the same test traces: a paired "
                               "comparison needs both emulators evaluated on the same test set")


def _replicate_weights(n_traces: int, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([int(seed), 11])
    return np.stack([np.bincount(rng.integers(0, n_traces, n_traces), minlength=n_traces).astype(np.float64)
                     for _ in range(n_boot)])


def bootstrap_aucs(preds: Sequence[TracePredictions], n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """(AUC of each emulator on all scored traces (k,), AUCs of each replicate (n_boot, k)); every replicate
    resamples the traces once for all emulators (paired)."""
    preds = list(preds)
    _check_same_traces(preds)
    ranked = [_RankedAUC(p) for p in preds]
    n = preds[0].n_traces
    full = np.array([r(np.ones(n)) for r in ranked])
    reps = np.array([[r(w) for r in ranked] for w in _replicate_weights(n, n_boot, seed)])
    return full, reps


@dataclass
class BootstrapResult:
    """A statistic on all scored traces with its percentile CI; ``n_traces`` scored traces, ``n_boot``
    replicates."""

    value: float
    ci_low: float
    ci_high: float
    n_traces: int
    n_boot: int
    level: float

    def to_dict(self) -> dict:
        """JSON form."""
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n_traces": self.n_traces,
                "n_boot": self.n_boot, "level": self.level}


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of the finite ``values`` at ``level`` (NaN, NaN when none is finite)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan")
    a = 100.0 * (1.0 - level) / 2.0
    return float(np.percentile(v, a)), float(np.percentile(v, 100.0 - a))


def auc_ci(pred: TracePredictions, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> BootstrapResult:
    """The spike AUC of one emulator with its bootstrap CI over test traces."""
    check_ci_traces(pred.n_traces, level, pred.source or "AUC")
    full, reps = bootstrap_aucs([pred], n_boot, seed)
    lo, hi = percentile_interval(reps[:, 0], level)
    return BootstrapResult(float(full[0]), lo, hi, pred.n_traces, n_boot, level)


def paired_auc_difference(a: TracePredictions, b: TracePredictions, n_boot: int = 1000, level: float = 0.95,
                          seed: int = 0) -> BootstrapResult:
    """AUC(a) - AUC(b) on the same test traces, with its paired bootstrap CI."""
    check_ci_traces(a.n_traces, level, a.source or "paired difference")
    full, reps = bootstrap_aucs([a, b], n_boot, seed)
    lo, hi = percentile_interval(reps[:, 0] - reps[:, 1], level)
    return BootstrapResult(float(full[0] - full[1]), lo, hi, a.n_traces, n_boot, level)


def traces_to_resolve(delta: float, ci_low: float | None, ci_high: float | None, n_traces: int) -> int | None:
    """Scored test traces at which a paired difference's CI would just exclude zero, if the difference and the
    per-trace spread stay as measured on ``n_traces``: the distance from ``delta`` to the CI's bound on the side
    of zero shrinks as 1 / sqrt(traces). Fewer than ``n_traces`` where the CI already excludes zero; None where
    ``delta`` is zero or the CI is missing. A planning estimate, not a measurement: the effect itself may move,
    and training-seed variance counts only where the CI held it."""
    if ci_low is None or ci_high is None or not n_traces or not math.isfinite(delta) or delta == 0.0:
        return None
    reach = delta - ci_low if delta > 0 else ci_high - delta
    return max(1, int(math.ceil(n_traces * (max(reach, 0.0) / abs(delta)) ** 2 - 1e-9)))


def independent_difference(a: float, a_ci: Sequence[float | None], b: float,
                           b_ci: Sequence[float | None]) -> tuple[float, float | None, float | None]:
    """``a - b`` with a CI, for two estimates measured on *independent* data (e.g. two cells' depth gains, each
    on its own test set), from their CIs at the same level: the MOVER interval (Zou & Donner 2008), exact for
    normal estimates and honouring asymmetric (percentile) intervals,
    ``[d - sqrt((a - a_lo)^2 + (b_hi - b)^2), d + sqrt((a_hi - a)^2 + (b - b_lo)^2)]``. The bounds are None
    where either CI is missing. Not for paired estimates (same test traces): their covariance is ignored."""
    d = float(a) - float(b)
    if None in (*a_ci, *b_ci) or len(a_ci) != 2 or len(b_ci) != 2:
        return d, None, None
    al, ah = map(float, a_ci)
    bl, bh = map(float, b_ci)
    if not (al <= a <= ah and bl <= b <= bh):
        raise ValueError(f"a CI must hold its estimate: {a} in [{al}, {ah}], {b} in [{bl}, {bh}]")
    return d, d - math.hypot(a - al, bh - b), d + math.hypot(ah - a, b - bl)


def fci(auc: float) -> float:
    """Functional complexity index ``log10(1000 (1 - AUC)) / log10(100)`` (AUC 0.9 -> 1, 0.999 -> 0)."""
    if not (isinstance(auc, float) or isinstance(auc, int)) or not math.isfinite(auc) or auc >= 1.0:
        return float("nan") if not (isinstance(auc, (int, float)) and auc >= 1.0) else float("-inf")
    return math.log10(1000.0 * (1.0 - auc)) / 2.0


def fci_ci(pred: TracePredictions, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> BootstrapResult:
    """The FCI of an emulator's test AUC with its bootstrap CI (the AUC interval mapped through :func:`fci`;
    a higher AUC is a lower FCI, so the bounds swap)."""
    r = auc_ci(pred, n_boot, level, seed)
    return BootstrapResult(fci(r.value), fci(r.ci_high), fci(r.ci_low), r.n_traces, n_boot, level)


def seed_weights(n_seeds: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n_seeds) multiplicities of the training seeds in each bootstrap replicate (seeds drawn with
    replacement); all ones for a single seed, so that one seed gives exactly the trace-only bootstrap."""
    if n_seeds <= 1:
        return np.ones((n_boot, max(1, n_seeds)))
    rng = np.random.default_rng([int(seed), 13])
    return np.stack([np.bincount(rng.integers(0, n_seeds, n_seeds), minlength=n_seeds).astype(np.float64)
                     for _ in range(n_boot)])


@dataclass
class ReplicatedDifferences:
    """Paired AUC differences per group (e.g. per data size), each the mean over training seeds.

    ``full``: (n_groups,) the mean difference on all scored traces; ``boot``: (n_boot, n_groups) its
    replicates (traces and seeds resampled, the same draws for every group); ``by_seed``: per group, the
    difference of each seed on all traces; ``extra_full`` / ``extra_boot``: the AUCs of the ``extra``
    emulators on the same trace resamples (seeds not resampled)."""

    full: np.ndarray
    boot: np.ndarray
    by_seed: list[list[float]]
    extra_full: np.ndarray
    extra_boot: np.ndarray
    n_traces: int


def replicated_differences(groups: Sequence[Sequence[tuple[int, TracePredictions, TracePredictions]]],
                           n_boot: int = 1000, seed: int = 0,
                           extra: Sequence[TracePredictions] = ()) -> ReplicatedDifferences:
    """AUC(a) - AUC(b) of each group's ``(training seed, a, b)`` pairs, averaged over the seeds, with a
    two-level bootstrap: every replicate resamples the test traces (once for all emulators) and the training
    seeds (once for all groups, so a seed's pairs move together); a group's replicate is the seed-weighted
    mean of its pairs' differences. With one seed this is :func:`paired_auc_difference` per group."""
    preds = [p for g in groups for (_, a, b) in g for p in (a, b)] + list(extra)
    if not preds:
        raise ConfigError("replicated_differences: no predictions given")
    full, reps = bootstrap_aucs(preds, n_boot, seed)
    seed_ids = sorted({int(r) for g in groups for (r, _, _) in g})
    col = {r: j for j, r in enumerate(seed_ids)}
    w_all = seed_weights(len(seed_ids), reps.shape[0], seed)
    k, g_full, g_boot, by_seed = 0, [], [], []
    for g in groups:
        d_full = [float(full[k + 2 * i] - full[k + 2 * i + 1]) for i in range(len(g))]
        d_boot = np.stack([reps[:, k + 2 * i] - reps[:, k + 2 * i + 1] for i in range(len(g))], 1)
        w = np.stack([w_all[:, col[int(r)]] for (r, _, _) in g], 1)
        sw = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            g_boot.append(np.where(sw > 0, (w * d_boot).sum(1) / np.where(sw > 0, sw, 1.0), np.nan))
        g_full.append(float(np.mean(d_full)))
        by_seed.append(d_full)
        k += 2 * len(g)
    n_extra = len(extra)
    return ReplicatedDifferences(np.array(g_full), np.stack(g_boot, 1) if g_boot else np.zeros((reps.shape[0], 0)),
                                 by_seed, full[k:k + n_extra], reps[:, k:k + n_extra], preds[0].n_traces)
