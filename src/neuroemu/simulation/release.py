"""Which input events reach the synapses: stochastic release and the published t = 0 quirk.

The published model, as normally compiled, transmits every input event (reference section 4.1), so by
default every event is delivered. ``release_probability`` draws one seeded Bernoulli decision per
event (an AMPA+NMDA synapse releases both components together, since both live in one point
process). ``t0_quirk`` reproduces section 4.2: a synapse that receives an event at exactly t = 0
is silent for the whole trial.
"""
from __future__ import annotations

import numpy as np

from neuroemu.errors import ConfigError


def transmitted_mask(events: np.ndarray, rng: np.random.Generator | None,
                     release_probability: float | None, t0_quirk: bool) -> np.ndarray:
    """Boolean mask over ``events`` (n, 2) of (channel, time_ms): True where the event is transmitted."""
    n = events.shape[0]
    mask = np.ones(n, dtype=bool)
    if release_probability is not None:
        p = float(release_probability)
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"release_probability = {release_probability}: must be within [0, 1]")
        if rng is None:
            raise ConfigError("release_probability needs a seeded random generator")
        mask &= rng.random(n) < p
    if t0_quirk and n:
        silenced = np.unique(events[events[:, 1] == 0, 0])
        if silenced.size:
            mask &= ~np.isin(events[:, 0], silenced)
    return mask


def release_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for excitatory and inhibitory release, derived from ``seed``."""
    ss = np.random.SeedSequence([int(seed), 0x5E1EA5E])
    a, b = ss.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)
