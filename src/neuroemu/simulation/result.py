"""What one simulated trial returns, whatever the cell (L5PC in NEURON, or integrate-and-fire)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SimulationResult:
    """Response of a cell to one trial of input.

    soma_v_1ms, nexus_v_1ms: float32 (T,), the voltage at t = 0, 1, ..., T-1 ms (mV).
    spike_times_ms: float64 somatic spike times (ms).
    dend_v_1ms: optional float16 (n_segments, T) dendritic voltages.
    exc_transmitted / inh_transmitted: optional bool per input event (in the order of the
    InputSpikes arrays given), present when stochastic release was applied.
    """

    soma_v_1ms: np.ndarray
    nexus_v_1ms: np.ndarray
    spike_times_ms: np.ndarray
    dend_v_1ms: np.ndarray | None = None
    exc_transmitted: np.ndarray | None = None
    inh_transmitted: np.ndarray | None = None
    config: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def duration_ms(self) -> int:
        """Number of 1-ms samples."""
        return int(self.soma_v_1ms.shape[0])

    def spike_train(self) -> np.ndarray:
        """Binary output spike train per ms (uint8, length T): a spike at t ms marks bin floor(t)."""
        return spike_times_to_train(self.spike_times_ms, self.duration_ms)


def spike_times_to_train(spike_times_ms: np.ndarray, duration_ms: int) -> np.ndarray:
    """Binary per-ms train (uint8): spike at time t (ms) sets bin floor(t), if inside [0, duration)."""
    y = np.zeros(duration_ms, dtype=np.uint8)
    idx = np.floor(np.asarray(spike_times_ms, dtype=np.float64)).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < duration_ms)]
    y[idx] = 1
    return y
