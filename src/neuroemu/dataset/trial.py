"""One trial of a dataset: the inputs a cell received and how it responded."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroemu.inputs.spikes import InputSpikes
from neuroemu.simulation.result import SimulationResult, spike_times_to_train


@dataclass
class Trial:
    """A trial as stored in a shard.

    inputs: presynaptic events (every generated spike). exc_transmitted / inh_transmitted: bool per event
    (same order as ``inputs``) when release failures were simulated, else ``None`` (all transmitted).
    soma_v_1ms / nexus_v_1ms: float32 (T,). spike_times_ms: float64. dend_v_1ms: float16 (n_seg, T) or None.
    generator_params: the input generator's draws (interval, sigma, range setting, tree totals).
    attrs: extra provenance (for imported trials: source file and position).
    """

    index: int
    seed: int
    inputs: InputSpikes
    soma_v_1ms: np.ndarray
    nexus_v_1ms: np.ndarray
    spike_times_ms: np.ndarray
    exc_transmitted: np.ndarray | None = None
    inh_transmitted: np.ndarray | None = None
    dend_v_1ms: np.ndarray | None = None
    generator_params: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int:
        """Number of 1-ms samples."""
        return int(self.soma_v_1ms.shape[0])

    def spike_train(self) -> np.ndarray:
        """Binary output per ms (uint8): a spike at t ms marks bin floor(t)."""
        return spike_times_to_train(self.spike_times_ms, self.duration_ms)

    def transmitted_inputs(self) -> InputSpikes:
        """The events that reached the cell (all of them when no release failures were simulated)."""
        exc, inh = self.inputs.exc, self.inputs.inh
        if self.exc_transmitted is not None:
            exc = exc[np.asarray(self.exc_transmitted, dtype=bool)]
        if self.inh_transmitted is not None:
            inh = inh[np.asarray(self.inh_transmitted, dtype=bool)]
        return InputSpikes(exc, inh)

    @classmethod
    def from_result(cls, index: int, seed: int, inputs: InputSpikes, result: SimulationResult,
                    generator_params: dict[str, Any] | None = None,
                    record_dendrites: bool = False) -> "Trial":
        """Assemble a trial from a simulator's :class:`SimulationResult` (dtypes normalised to the format's)."""
        dend = result.dend_v_1ms if record_dendrites else None
        return cls(
            index=int(index), seed=int(seed), inputs=inputs,
            soma_v_1ms=np.asarray(result.soma_v_1ms, dtype=np.float32),
            nexus_v_1ms=np.asarray(result.nexus_v_1ms, dtype=np.float32),
            spike_times_ms=np.asarray(result.spike_times_ms, dtype=np.float64).ravel(),
            exc_transmitted=None if result.exc_transmitted is None else np.asarray(result.exc_transmitted, bool),
            inh_transmitted=None if result.inh_transmitted is None else np.asarray(result.inh_transmitted, bool),
            dend_v_1ms=None if dend is None else np.asarray(dend, dtype=np.float16),
            generator_params=dict(generator_params or {}),
        )
