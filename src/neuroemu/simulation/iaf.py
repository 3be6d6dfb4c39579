"""The integrate-and-fire neuron of the published Fig. 1 comparison (reference reference section 7), in NumPy.

100 inputs: 80 excitatory (weight +1) and 20 inhibitory (weight -1). Each input spike adds a current jump
that decays with tau = 20 ms: the causal kernel is ``exp(-n / tau)`` for n = 0 .. int(7 tau) (141 taps), so a
spike at ms t already counts at t. The membrane potential is

    V(t) = V_reset + 2 mV * sum_i w_i (s_i * kernel)(t),   V_rest = V_reset = -75 mV.

Whenever V(t) > -55 mV a spike is recorded at t (ms) and ``(V(t+1) - V_reset) * kernel`` is subtracted from
V[t+1 : t+142]: V(t+1) becomes V_reset and the reset decays with the input kernel's memory. There is no
refractory period. Simulated exactly on the 1-ms grid, without NEURON.

The IAF has no dendrites and no nexus: ``nexus_v_1ms`` is a copy of the soma voltage and ``dend_v_1ms`` is
always ``None``; :meth:`IAFSimulator.segment_table` returns ``None``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroemu.config import Config
from neuroemu.errors import ConfigError, SimulationError
from neuroemu.inputs.spikes import InputSpikes
from neuroemu.simulation.result import SimulationResult


@dataclass
class IAFConfig(Config):
    """Parameters of the integrate-and-fire neuron (defaults: the values the published figure used)."""

    n_exc: int = 80
    n_inh: int = 20
    exc_weight: float = 1.0
    inh_weight: float = -1.0
    v_reset_mv: float = -75.0
    v_threshold_mv: float = -55.0
    mv_per_unit: float = 2.0
    tau_ms: float = 20.0
    kernel_length: int = 141

    def __post_init__(self) -> None:
        if self.n_exc < 1 or self.n_inh < 0:
            raise ConfigError(f"IAFConfig: n_exc must be >= 1 and n_inh >= 0, got {self.n_exc}, {self.n_inh}")
        if self.tau_ms <= 0:
            raise ConfigError(f"IAFConfig.tau_ms must be > 0, got {self.tau_ms}")
        if self.kernel_length < 1:
            raise ConfigError(f"IAFConfig.kernel_length must be >= 1, got {self.kernel_length}")
        if self.v_threshold_mv <= self.v_reset_mv:
            raise ConfigError(f"IAFConfig: threshold {self.v_threshold_mv} mV must exceed reset "
                              f"{self.v_reset_mv} mV")

    def kernel(self) -> np.ndarray:
        """The causal exponential kernel ``exp(-n / tau)``, n = 0 .. kernel_length - 1 (float64)."""
        return np.exp(-np.arange(self.kernel_length, dtype=np.float64) / self.tau_ms)


def iaf_voltage(drive: np.ndarray, config: IAFConfig) -> tuple[np.ndarray, np.ndarray]:
    """Run the IAF on a per-ms weighted input sum ``drive`` (T,) -> (voltage float64 (T,), spike ms int64).

    ``drive[t]`` is sum_i w_i s_i(t). The subthreshold trace is one convolution; the reset rule is applied
    spike by spike (the only sequential part, one vectorised update per output spike).
    """
    drive = np.asarray(drive, dtype=np.float64)
    n = drive.shape[0]
    kernel = config.kernel()
    v = config.v_reset_mv + config.mv_per_unit * np.convolve(drive, kernel)[:n]
    spikes = []
    t = 0
    while t < n:
        above = np.flatnonzero(v[t:] > config.v_threshold_mv)
        if above.size == 0:
            break
        s = t + int(above[0])
        spikes.append(s)
        if s + 1 < n:
            m = min(config.kernel_length, n - s - 1)
            v[s + 1:s + 1 + m] -= (v[s + 1] - config.v_reset_mv) * kernel[:m]
        t = s + 1
    return v, np.asarray(spikes, dtype=np.int64)


class IAFSimulator:
    """Integrate-and-fire cell with the interface of the NEURON simulator (``make_simulator`` dispatches here).

    ``run`` accepts :class:`InputSpikes` on ``n_exc`` excitatory and ``n_inh`` inhibitory channels.
    """

    kind = "iaf"

    def __init__(self, config: IAFConfig | dict | None = None) -> None:
        if config is None:
            config = IAFConfig()
        elif isinstance(config, dict):
            config = IAFConfig.from_dict(config)
        self.config = config

    @property
    def n_exc(self) -> int:
        """Number of excitatory input channels (80)."""
        return self.config.n_exc

    @property
    def n_inh(self) -> int:
        """Number of inhibitory input channels (20)."""
        return self.config.n_inh

    def segment_table(self) -> None:
        """The IAF has no dendritic segments: always ``None``."""
        return None

    def run(self, inputs: InputSpikes, duration_ms: int, seed: int | None = 0,
            release_probability: float | None = None, record_dendrites: bool = False) -> SimulationResult:
        """Simulate one trial.

        release_probability: ``None`` transmits every event; otherwise each event is transmitted with that
        probability (Bernoulli draws from ``numpy.random.default_rng(seed)``, excitatory events first) and the
        masks are returned. ``record_dendrites`` is accepted for interface compatibility; the IAF has no
        dendrites, so ``dend_v_1ms`` is ``None``.
        """
        t0 = time.perf_counter()
        duration_ms = int(duration_ms)
        if duration_ms <= 0:
            raise ConfigError(f"duration_ms must be > 0, got {duration_ms}")
        inputs.validate(self.n_exc, duration_ms, source="IAF inputs", n_inh=self.n_inh)
        exc_tx = inh_tx = None
        exc_t, inh_t = inputs.exc[:, 1], inputs.inh[:, 1]
        if release_probability is not None:
            p = float(release_probability)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"release_probability must be in [0, 1], got {release_probability}")
            rng = np.random.default_rng(0 if seed is None else int(seed))
            exc_tx = rng.random(exc_t.shape[0]) < p
            inh_tx = rng.random(inh_t.shape[0]) < p
            exc_t, inh_t = exc_t[exc_tx], inh_t[inh_tx]
        drive = (self.config.exc_weight * np.bincount(exc_t, minlength=duration_ms)
                 + self.config.inh_weight * np.bincount(inh_t, minlength=duration_ms))
        v, spikes = iaf_voltage(drive, self.config)
        if not np.all(np.isfinite(v)):
            raise SimulationError("IAF voltage became non-finite (check the IAFConfig values)")
        soma = v.astype(np.float32)
        cfg: dict[str, Any] = {"kind": "iaf", **self.config.to_dict()}
        return SimulationResult(
            soma_v_1ms=soma, nexus_v_1ms=soma.copy(), spike_times_ms=spikes.astype(np.float64),
            dend_v_1ms=None, exc_transmitted=exc_tx, inh_transmitted=inh_tx, config=cfg,
            wall_time_s=time.perf_counter() - t0)
