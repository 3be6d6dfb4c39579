"""The published doubly-stochastic input generator (reference reference section 5.1) and its IAF variant (section 7).

Per trial, for each "tree" (basal and apical on the L5PC; a single group ``"all"`` on the
integrate-and-fire neuron):

1. a rate-change interval T_c is drawn from ``interval_options_ms`` plus the jitter ``int(2J*U - J)``;
2. a smoothing width sigma is drawn from ``sigma_options_ms`` with the same jitter;
3. for each of the n = ceil(duration / T_c) intervals: N_exc ~ U(exc range) spikes per 100 ms on the tree and
   N_inh ~ U(max(0, N_exc + diff_lo), N_exc + diff_hi) (negative draws become ``negative_inh_value``);
4. the totals become a density per unit weight, N / (100 * sum of the tree's channel weights), where a channel's
   weight is its segment length + ``min_seg_length_um`` (``weighting="length"``) or 1 (``weighting="count"``);
5. every channel of the tree gets that density times an independent U(spatial range) factor per interval;
6. times its own weight;
7. each interval's value is held for T_c ms and the result is cropped to the duration;
8. every channel is convolved along time (zero padded, numpy ``mode='same'`` alignment) with a Gaussian window
   of ``1 + 7 sigma`` samples, standard deviation sigma, normalised to sum 1;
9. per 1-ms bin and channel: p ~ Exponential(mean = smoothed rate), and a spike if U < p.

Excitatory and inhibitory channels are sampled independently but share the tree-level totals. The generator
uses a :class:`numpy.random.Generator`, so a trial is reproducible from its seed (not bit-compatible with the
original script's legacy ``np.random`` stream, which cannot be matched draw for draw anyway).

Range settings can be a mixture (reference 5.5): ``range_mixture`` lists several settings and one is chosen per
trial, with probability proportional to its ``weight``, from the trial's own random stream.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from neuroemu.config import Config
from neuroemu.errors import ConfigError
from neuroemu.inputs.spikes import InputSpikes

L5PC_INTERVAL_OPTIONS_MS = [25, 30, 35, 40, 45, 55, 60, 65, 70, 75, 80, 85, 90, 100, 150, 200, 300, 450]
L5PC_SIGMA_OPTIONS_MS = [25, 30, 35, 40, 50, 60, 80, 100, 150, 200, 300, 400, 500, 600]
# reference 7 writes "{25, ..., 100}": taken as the L5PC list cut at 100 ms (same scheme, same elisions)
IAF_INTERVAL_OPTIONS_MS = [x for x in L5PC_INTERVAL_OPTIONS_MS if x <= 100]
IAF_SIGMA_OPTIONS_MS = [40, 60, 80, 100]


@dataclass
class RangeSetting(Config):
    """One input-range setting: per tree, the excitatory total range and the inhibitory-minus-excitatory range.

    Units: spikes per 100 ms on the whole tree. ``exc`` and ``inh_diff`` map a tree name (``"basal"``,
    ``"apical"``, or ``"all"`` for the IAF) to ``[low, high]``. ``weight`` is the relative probability of this
    setting within a mixture.
    """

    name: str = "script_default"
    exc: dict[str, list[float]] = field(default_factory=lambda: {"basal": [0.0, 800.0], "apical": [0.0, 800.0]})
    inh_diff: dict[str, list[float]] = field(
        default_factory=lambda: {"basal": [-600.0, 200.0], "apical": [-600.0, 200.0]})
    weight: float = 1.0

    def validate(self, where: str = "RangeSetting") -> "RangeSetting":
        """Check the ranges; raise :class:`ConfigError` naming the field at fault."""
        if set(self.exc) != set(self.inh_diff):
            raise ConfigError(f"{where} '{self.name}': exc trees {sorted(self.exc)} differ from "
                              f"inh_diff trees {sorted(self.inh_diff)}")
        for key, ranges in (("exc", self.exc), ("inh_diff", self.inh_diff)):
            for tree, r in ranges.items():
                if len(r) != 2 or not all(math.isfinite(float(x)) for x in r) or float(r[0]) > float(r[1]):
                    raise ConfigError(f"{where} '{self.name}': {key}[{tree!r}] must be [low, high] with "
                                      f"low <= high, got {r}")
            if key == "exc" and any(float(r[0]) < 0 for r in ranges.values()):
                raise ConfigError(f"{where} '{self.name}': exc ranges must be >= 0, got {ranges}")
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise ConfigError(f"{where} '{self.name}': weight must be > 0, got {self.weight}")
        return self


def _l5pc_setting(name: str, basal_exc, basal_diff, apical_exc, apical_diff, weight: float = 1.0) -> RangeSetting:
    return RangeSetting(name=name,
                        exc={"basal": [float(x) for x in basal_exc], "apical": [float(x) for x in apical_exc]},
                        inh_diff={"basal": [float(x) for x in basal_diff], "apical": [float(x) for x in apical_diff]},
                        weight=weight)


@dataclass
class InputGeneratorConfig(Config):
    """Settings of the doubly-stochastic input generator (see the module docstring for the algorithm).

    weighting: ``"length"`` (L5PC: channel weight = segment length + ``min_seg_length_um``) or ``"count"``
    (IAF: every channel weighs 1, so rates are normalised per synapse count).
    """

    interval_options_ms: list[int] = field(default_factory=lambda: list(L5PC_INTERVAL_OPTIONS_MS))
    sigma_options_ms: list[int] = field(default_factory=lambda: list(L5PC_SIGMA_OPTIONS_MS))
    jitter_ms: int = 20
    range_mixture: list[RangeSetting] = field(default_factory=lambda: [RangeSetting()])
    spatial_factor_range: list[float] = field(default_factory=lambda: [0.5, 1.5])
    min_seg_length_um: float = 10.0
    weighting: str = "length"
    negative_inh_value: float = 1e-4
    gaussian_window_sigmas: float = 7.0

    def __post_init__(self) -> None:
        self.range_mixture = [RangeSetting.from_dict(r) if isinstance(r, dict) else r for r in self.range_mixture]

    # ---- presets -------------------------------------------------------------------------------------------
    @classmethod
    def nmda(cls) -> "InputGeneratorConfig":
        """The released script's defaults (reference 5.3 "NMDA"): exc [0, 800], inh - exc [-600, 200] on both trees."""
        return cls(range_mixture=[_l5pc_setting("nmda_script_default", (0, 800), (-600, 200), (0, 800), (-600, 200))])

    @classmethod
    def ampa(cls) -> "InputGeneratorConfig":
        """The AMPA dataset's ranges (reference 5.3)."""
        return cls(range_mixture=[_l5pc_setting("ampa", (0, 1900), (-1650, 150), (0, 2000), (-1650, 150))])

    @classmethod
    def ampa_sk(cls) -> "InputGeneratorConfig":
        """The AMPA_SK (gSK_E2 x 0.1) dataset's ranges (reference 5.3)."""
        return cls(range_mixture=[_l5pc_setting("ampa_sk", (0, 1900), (-1500, 300), (0, 2000), (-1500, 300))])

    @classmethod
    def nmda_mixed(cls) -> "InputGeneratorConfig":
        """The default NMDA dataset inputs: a mixture of two range settings of the published data (reference 5.5).

        Two trials in three use the released script's default ranges (exc [0, 800], inh - exc [-600, 200]),
        one in three the wider setting seen in the published ``L5PC_NMDA_valid_mixed`` file names (exc
        [0, 1000], inh - exc [-800, 200]). On the built-in cell (7 trials of 3 s each, same input seeds) the
        script default gave 1.2 Hz with 4 of 7 trials silent and the wider setting 3.1 Hz, so the 2 : 1
        mixture is expected near 1.8 Hz, inside the published 0.7-2 Hz band (dataset rates in README).
        """
        return cls(range_mixture=[
            _l5pc_setting("nmda_script_default", (0, 800), (-600, 200), (0, 800), (-600, 200), weight=2.0),
            _l5pc_setting("exBas_0_1000_inhBasDiff_-800_200", (0, 1000), (-800, 200), (0, 1000), (-800, 200),
                          weight=1.0),
        ])

    @classmethod
    def iaf(cls) -> "InputGeneratorConfig":
        """The integrate-and-fire inputs of reference section 7 (80 exc + 20 inh, rates per synapse count)."""
        return cls(interval_options_ms=list(IAF_INTERVAL_OPTIONS_MS), sigma_options_ms=list(IAF_SIGMA_OPTIONS_MS),
                   jitter_ms=20, weighting="count",
                   range_mixture=[RangeSetting(name="iaf", exc={"all": [0.0, 50.0]}, inh_diff={"all": [-50.0, -15.0]})])

    def validate(self) -> "InputGeneratorConfig":
        """Check every field; raise :class:`ConfigError` naming the field and value at fault."""
        where = "InputGeneratorConfig"
        for name in ("interval_options_ms", "sigma_options_ms"):
            opts = getattr(self, name)
            if not opts:
                raise ConfigError(f"{where}.{name} must not be empty")
            if min(opts) - (self.jitter_ms - 1) < 1:
                raise ConfigError(f"{where}.{name}: min option {min(opts)} minus jitter {self.jitter_ms - 1} "
                                  "must be >= 1 ms")
        if self.jitter_ms < 0:
            raise ConfigError(f"{where}.jitter_ms must be >= 0, got {self.jitter_ms}")
        if not self.range_mixture:
            raise ConfigError(f"{where}.range_mixture must hold at least one RangeSetting")
        for i, r in enumerate(self.range_mixture):
            r.validate(f"{where}.range_mixture[{i}]")
        sf = [float(x) for x in self.spatial_factor_range]
        if len(sf) != 2 or sf[0] < 0 or sf[1] < sf[0]:
            raise ConfigError(f"{where}.spatial_factor_range must be [low, high] with 0 <= low <= high, "
                              f"got {self.spatial_factor_range}")
        if self.weighting not in ("length", "count"):
            raise ConfigError(f"{where}.weighting must be 'length' or 'count', got {self.weighting!r}")
        if self.min_seg_length_um < 0:
            raise ConfigError(f"{where}.min_seg_length_um must be >= 0, got {self.min_seg_length_um}")
        if self.gaussian_window_sigmas <= 0:
            raise ConfigError(f"{where}.gaussian_window_sigmas must be > 0, got {self.gaussian_window_sigmas}")
        return self


PRESETS = {
    "nmda": InputGeneratorConfig.nmda,
    "nmda_mixed": InputGeneratorConfig.nmda_mixed,
    "ampa": InputGeneratorConfig.ampa,
    "ampa_sk": InputGeneratorConfig.ampa_sk,
    "iaf": InputGeneratorConfig.iaf,
}


def preset(name: str) -> InputGeneratorConfig:
    """Return a named preset (``nmda``, ``nmda_mixed``, ``ampa``, ``ampa_sk``, ``iaf``)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown inputs preset {name!r}; known presets: {sorted(PRESETS)}") from None


def default_preset_name(cell_kind: str, variant: str | None = None) -> str:
    """The preset a dataset uses when none is given.

    ``iaf`` for the IAF cell; ``nmda_mixed`` for the NMDA cell (the script default ``nmda`` leaves the cell
    nearly silent, reference 5.5); the variant's own published ranges for ``ampa`` and ``ampa_sk``.
    """
    if cell_kind == "iaf":
        return "iaf"
    return {"nmda": "nmda_mixed", "ampa": "ampa", "ampa_sk": "ampa_sk"}.get(variant or "nmda", "nmda_mixed")


# ---- the algorithm ---------------------------------------------------------------------------------------------

def gaussian_window(sigma: float, n_sigmas: float = 7.0) -> np.ndarray:
    """Gaussian window of ``int(1 + n_sigmas*sigma)`` samples, std ``sigma`` samples, centred, normalised to sum 1."""
    m = int(1 + n_sigmas * sigma)
    n = np.arange(m, dtype=np.float64) - (m - 1) / 2.0
    w = np.exp(-0.5 * (n / float(sigma)) ** 2)
    return w / w.sum()


def smooth_same(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Convolve every column of ``x`` (time, channels) with ``window``, zero padded, aligned like numpy 'same'.

    The output has x's length: samples ``(M-1)//2 ... (M-1)//2 + T - 1`` of the full convolution, which equals
    ``np.convolve(col, window, 'same')`` whenever T >= M. Computed with FFTs (deterministic, pocketfft).
    """
    from scipy.signal import fftconvolve

    t, m = x.shape[0], window.shape[0]
    k0 = (m - 1) // 2
    lo, hi = max(0, k0 - (t - 1)), min(m, k0 + t)  # taps beyond these never reach the output
    window, k0 = window[lo:hi], k0 - lo
    full = fftconvolve(x, window[:, None], mode="full", axes=0)
    out = full[k0:k0 + t]
    np.maximum(out, 0.0, out=out)  # FFT round-off can give -1e-18 where the rate is zero
    return out


def smooth_piecewise_constant(coarse: np.ndarray, interval_ms: int, duration_ms: int,
                              window: np.ndarray) -> np.ndarray:
    """Same result as ``smooth_same(np.repeat(coarse, interval_ms, 0)[:duration_ms], window)``, computed exactly.

    Each interval's value is held for ``interval_ms`` bins, so the smoothed trace is ``K @ coarse`` where
    column j of K is interval j's indicator convolved with the window, a difference of the window's cumulative
    sums (non-negative by construction). Faster than FFTs when there are few intervals.
    """
    n_int, m = coarse.shape[0], window.shape[0]
    interval_ms, duration_ms = int(interval_ms), int(duration_ms)
    k0 = (m - 1) // 2
    cum = np.concatenate([[0.0], np.cumsum(window)])
    # every full interval has the same response g(t - a_j); K[t, j] = g[t - j*interval + u0] (a strided view)
    u0 = (n_int - 1) * interval_ms
    u = np.arange(-u0, duration_ms)
    g = cum[np.clip(u + k0 + 1, 0, m)] - cum[np.clip(u + k0 + 1 - interval_ms, 0, m)]
    step = g.strides[0]
    kmat = np.array(np.lib.stride_tricks.as_strided(g[u0:], shape=(duration_ms, n_int),
                                                    strides=(step, -interval_ms * step), writeable=False))
    t = np.arange(duration_ms)  # the last interval is cropped at the trial's end
    kmat[:, -1] = cum[np.clip(t + k0 - u0 + 1, 0, m)] - cum[np.clip(t + k0 - duration_ms + 1, 0, m)]
    return kmat @ coarse


#: above this many intervals per trial the FFT path is faster than the interval-kernel product
_MAX_INTERVALS_FOR_KERNEL = 256


def _jittered_choice(options: Sequence[int], jitter: int, rng: np.random.Generator) -> int:
    base = int(options[int(rng.integers(len(options)))])
    return base + int(2 * jitter * rng.random() - jitter)  # int() truncates toward zero, as in the script


def _choose_setting(config: InputGeneratorConfig, rng: np.random.Generator) -> int:
    if len(config.range_mixture) == 1:
        return 0
    w = np.array([r.weight for r in config.range_mixture], dtype=np.float64)
    return int(rng.choice(len(w), p=w / w.sum()))


def _sample_channels(rate_per_ms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per bin and channel p ~ Exp(mean = rate), spike if U < p; returns (channel, time) events sorted by time."""
    p = rng.exponential(1.0, size=rate_per_ms.shape)
    p *= rate_per_ms
    spikes = rng.random(rate_per_ms.shape) < p
    t, c = np.nonzero(spikes)  # time-major: sorted by (time, channel)
    return np.stack([c, t], axis=1).astype(np.int32)


def generate_channels(config: InputGeneratorConfig, exc_tree: Sequence[str], inh_tree: Sequence[str],
                      exc_weight: np.ndarray, inh_weight: np.ndarray, duration_ms: int,
                      rng: np.random.Generator) -> tuple[InputSpikes, dict[str, Any]]:
    """Core of the generator: channels described by their tree label and weight (see module docstring).

    Returns the input spikes and a parameter dict: ``range_index``, ``range_name``, ``interval_ms``,
    ``sigma_ms``, ``trees`` (list of tree names), ``exc_per_100ms`` / ``inh_per_100ms`` (float arrays
    (n_intervals, n_trees) of the drawn tree totals).
    """
    config.validate()
    duration_ms = int(duration_ms)
    if duration_ms <= 0:
        raise ConfigError(f"duration_ms must be > 0, got {duration_ms}")
    exc_tree = np.asarray(exc_tree).astype(str)
    inh_tree = np.asarray(inh_tree).astype(str)
    exc_weight = np.asarray(exc_weight, dtype=np.float64)
    inh_weight = np.asarray(inh_weight, dtype=np.float64)
    k = _choose_setting(config, rng)
    setting = config.range_mixture[k]
    trees = list(setting.exc)
    missing = sorted((set(exc_tree) | set(inh_tree)) - set(trees))
    if missing:
        raise ConfigError(f"range setting '{setting.name}' has no ranges for tree(s) {missing}; "
                          f"it defines {trees}")

    interval = _jittered_choice(config.interval_options_ms, config.jitter_ms, rng)
    sigma = _jittered_choice(config.sigma_options_ms, config.jitter_ms, rng)
    n_int = int(math.ceil(duration_ms / interval))

    exc_tot = np.empty((n_int, len(trees)))
    inh_tot = np.empty((n_int, len(trees)))
    for j, tree in enumerate(trees):
        e_lo, e_hi = (float(x) for x in setting.exc[tree])
        d_lo, d_hi = (float(x) for x in setting.inh_diff[tree])
        ne = e_lo + (e_hi - e_lo) * rng.random(n_int)
        lo = np.maximum(0.0, ne + d_lo)
        hi = ne + d_hi
        ni = lo + (hi - lo) * rng.random(n_int)
        ni[ni < 0] = config.negative_inh_value
        exc_tot[:, j] = ne
        inh_tot[:, j] = ni

    window = gaussian_window(sigma, config.gaussian_window_sigmas)
    f_lo, f_hi = (float(x) for x in config.spatial_factor_range)
    events = []
    for labels, weight, totals in ((exc_tree, exc_weight, exc_tot), (inh_tree, inh_weight, inh_tot)):
        n_ch = labels.shape[0]
        coarse = np.zeros((n_int, n_ch))
        for j, tree in enumerate(trees):
            sel = labels == tree
            if not sel.any():
                continue
            density = totals[:, j] / (100.0 * weight[sel].sum())  # per unit weight per ms
            coarse[:, sel] = density[:, None]
        factor = f_lo + (f_hi - f_lo) * rng.random((n_int, n_ch))
        coarse *= factor
        coarse *= weight[None, :]
        if n_int <= _MAX_INTERVALS_FOR_KERNEL:
            rate = smooth_piecewise_constant(coarse, interval, duration_ms, window)
        else:
            rate = smooth_same(np.repeat(coarse, interval, axis=0)[:duration_ms], window)
        events.append(_sample_channels(rate, rng))
        del rate, coarse, factor
    params = {
        "range_index": k,
        "range_name": setting.name,
        "interval_ms": int(interval),
        "sigma_ms": int(sigma),
        "trees": trees,
        "exc_per_100ms": exc_tot,
        "inh_per_100ms": inh_tot,
    }
    return InputSpikes(events[0], events[1]), params


def generate_inputs(config: InputGeneratorConfig, segment_lengths_um: Sequence[float],
                    segment_tree: Sequence[str], duration_ms: int,
                    rng: np.random.Generator) -> tuple[InputSpikes, dict[str, Any]]:
    """Generate one trial of L5PC inputs (reference 5.1): one exc and one inh channel per segment.

    ``segment_lengths_um`` and ``segment_tree`` (``"basal"``/``"apical"``) describe the segments in channel
    order. With ``config.weighting == "length"`` a channel's weight is its length + ``min_seg_length_um``.
    """
    lengths = np.asarray(segment_lengths_um, dtype=np.float64)
    tree = np.asarray(segment_tree).astype(str)
    if lengths.ndim != 1 or tree.shape != lengths.shape:
        raise ConfigError(f"segment_lengths_um (shape {lengths.shape}) and segment_tree (shape {tree.shape}) "
                          "must be 1-D and of equal length")
    if config.weighting == "length":
        if np.any(~np.isfinite(lengths)) or np.any(lengths < 0):
            raise ConfigError("segment_lengths_um must be finite and >= 0")
        weight = lengths + config.min_seg_length_um
        if np.any(weight <= 0):
            raise ConfigError("segment weights (length + min_seg_length_um) must be > 0")
    else:
        weight = np.ones_like(lengths)
    return generate_channels(config, tree, tree, weight, weight, duration_ms, rng)


def generate_iaf_inputs(config: InputGeneratorConfig, duration_ms: int, rng: np.random.Generator,
                        n_exc: int = 80, n_inh: int = 20) -> tuple[InputSpikes, dict[str, Any]]:
    """Generate one trial of integrate-and-fire inputs (reference 7): tree ``"all"``, every synapse weighs 1."""
    if config.weighting != "count":
        raise ConfigError("IAF inputs need InputGeneratorConfig.weighting='count' (use the 'iaf' preset)")
    return generate_channels(config, ["all"] * n_exc, ["all"] * n_inh, np.ones(n_exc), np.ones(n_inh),
                             duration_ms, rng)


def expected_channel_rates_hz(config: InputGeneratorConfig, exc_weight: np.ndarray, exc_tree: Sequence[str],
                              inh_weight: np.ndarray | None = None, inh_tree: Sequence[str] | None = None,
                              setting_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Analytic mean rate (Hz) of every exc and inh channel for one range setting, ignoring edge attenuation.

    Channel weights are as in :func:`generate_channels` (inh defaults to the exc description). E[N_inh] is
    computed for the clipped uniform, including the ``negative_inh_value`` floor, by averaging over N_exc.
    """
    setting = config.range_mixture[setting_index]
    exc_weight = np.asarray(exc_weight, dtype=np.float64)
    exc_tree = np.asarray(exc_tree).astype(str)
    inh_weight = exc_weight if inh_weight is None else np.asarray(inh_weight, dtype=np.float64)
    inh_tree = exc_tree if inh_tree is None else np.asarray(inh_tree).astype(str)
    exc_hz = np.zeros_like(exc_weight)
    inh_hz = np.zeros_like(inh_weight)
    for t in setting.exc:
        e_lo, e_hi = (float(x) for x in setting.exc[t])
        d_lo, d_hi = (float(x) for x in setting.inh_diff[t])
        ne = np.linspace(e_lo, e_hi, 200001)
        lo, hi = np.maximum(0.0, ne + d_lo), ne + d_hi
        # hi < 0: draws fall in (hi, 0] and become negative_inh_value; otherwise U(lo, hi) with lo <= hi
        mean_inh = float(np.where(hi < 0, config.negative_inh_value, (lo + hi) / 2.0).mean())
        for weight, tree, hz, total in ((exc_weight, exc_tree, exc_hz, (e_lo + e_hi) / 2.0),
                                        (inh_weight, inh_tree, inh_hz, mean_inh)):
            sel = tree == t
            if sel.any():
                hz[sel] = total * 10.0 * weight[sel] / weight[sel].sum()  # per 100 ms -> per s
    return exc_hz, inh_hz
