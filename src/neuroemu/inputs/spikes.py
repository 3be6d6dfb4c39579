"""Sparse input spike trains: the currency between input generation, simulation and emulation.

Spikes are stored as integer arrays of shape (n, 2) holding (channel, time in ms). Excitatory
channel k and inhibitory channel k both target dendritic segment k. Dense emulator input has
``2 * n_segments`` columns: excitatory channels first, then inhibitory ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroemu.errors import InputSpikesError


def _as_events(arr, name: str, source: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int32)
    if a.ndim != 2 or a.shape[1] != 2:
        raise InputSpikesError(f"{source}: '{name}' must have shape (n, 2) = (channel, time_ms), got {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise InputSpikesError(f"{source}: '{name}' must be numeric, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise InputSpikesError(f"{source}: '{name}' contains NaN or infinite values")
        if not np.all(a == np.round(a)):
            raise InputSpikesError(f"{source}: '{name}' must hold integer channels and integer ms times")
    return a.astype(np.int64).astype(np.int32)


@dataclass
class InputSpikes:
    """Excitatory and inhibitory input events, each an int32 array (n, 2) of (channel, time_ms)."""

    exc: np.ndarray
    inh: np.ndarray

    def __post_init__(self) -> None:
        self.exc = _as_events(self.exc, "exc_spikes", "InputSpikes")
        self.inh = _as_events(self.inh, "inh_spikes", "InputSpikes")

    def validate(self, n_exc: int, duration_ms: int | None = None, source: str = "inputs",
                 n_inh: int | None = None) -> "InputSpikes":
        """Check channel range, non-negative times and (if given) times < duration; raise naming the problem.

        ``n_exc`` / ``n_inh`` are the numbers of excitatory / inhibitory channels (both equal the
        number of dendritic segments on the L5PC; ``n_inh`` defaults to ``n_exc``).
        """
        n_inh = n_exc if n_inh is None else n_inh
        for name, ev, n_segments in (("exc_spikes", self.exc, n_exc), ("inh_spikes", self.inh, n_inh)):
            if ev.shape[0] == 0:
                continue
            ch, t = ev[:, 0], ev[:, 1]
            bad = np.flatnonzero((ch < 0) | (ch >= n_segments))
            if bad.size:
                i = bad[0]
                raise InputSpikesError(
                    f"{source}: '{name}' row {i} has channel {ch[i]}, outside 0..{n_segments - 1} "
                    f"(the cell has {n_segments} such channels)")
            bad = np.flatnonzero(t < 0)
            if bad.size:
                i = bad[0]
                raise InputSpikesError(f"{source}: '{name}' row {i} has negative time {t[i]} ms")
            if duration_ms is not None:
                bad = np.flatnonzero(t >= duration_ms)
                if bad.size:
                    i = bad[0]
                    raise InputSpikesError(
                        f"{source}: '{name}' row {i} has time {t[i]} ms, beyond the trial duration {duration_ms} ms")
        return self

    @property
    def n_events(self) -> int:
        """Total number of events (excitatory + inhibitory)."""
        return int(self.exc.shape[0] + self.inh.shape[0])

    def sorted(self) -> "InputSpikes":
        """Return a copy with events sorted by (time, channel)."""
        def srt(ev):
            if ev.shape[0] == 0:
                return ev.copy()
            return ev[np.lexsort((ev[:, 0], ev[:, 1]))]
        return InputSpikes(srt(self.exc), srt(self.inh))

    def dense(self, n_exc: int, start_ms: int = 0, stop_ms: int | None = None,
              dtype=np.uint8, n_inh: int | None = None) -> np.ndarray:
        """Dense (time, n_exc + n_inh) array for [start_ms, stop_ms): excitatory columns first.

        Several events on one channel in one ms add up (counts), which binary data never has.
        """
        if stop_ms is None:
            tmax = max([int(ev[:, 1].max()) + 1 for ev in (self.exc, self.inh) if ev.shape[0]] or [0])
            stop_ms = tmax
        n_inh = n_exc if n_inh is None else n_inh
        out = np.zeros((stop_ms - start_ms, n_exc + n_inh), dtype=dtype)
        for offset, ev in ((0, self.exc), (n_exc, self.inh)):
            if ev.shape[0] == 0:
                continue
            sel = (ev[:, 1] >= start_ms) & (ev[:, 1] < stop_ms)
            np.add.at(out, (ev[sel, 1] - start_ms, ev[sel, 0] + offset), 1)
        return out

    @classmethod
    def from_dense(cls, dense: np.ndarray, n_exc: int | None = None) -> "InputSpikes":
        """Inverse of :meth:`dense` for binary arrays (time, n_exc + n_inh); n_exc defaults to half."""
        dense = np.asarray(dense)
        n_seg = n_exc or dense.shape[1] // 2
        t, c = np.nonzero(dense)
        exc = c < n_seg
        return cls(np.stack([c[exc], t[exc]], 1), np.stack([c[~exc] - n_seg, t[~exc]], 1))

    def save_npz(self, path: str | Path) -> None:
        """Write ``exc_spikes`` and ``inh_spikes`` to an .npz file (the ``neuroemu replay`` input format)."""
        np.savez(path, exc_spikes=self.exc, inh_spikes=self.inh)

    @classmethod
    def load_npz(cls, path: str | Path) -> "InputSpikes":
        """Read an input file with keys ``exc_spikes`` and ``inh_spikes``; errors name the file and key."""
        path = Path(path)
        if not path.is_file():
            raise InputSpikesError(f"input file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("exc_spikes", "inh_spikes") if k not in z.files]
                if missing:
                    raise InputSpikesError(f"{path}: missing key(s) {missing}; found {sorted(z.files)}")
                exc, inh = z["exc_spikes"], z["inh_spikes"]
        except InputSpikesError:
            raise
        except Exception as e:  # zipfile / pickle errors
            raise InputSpikesError(f"{path}: not a readable .npz file ({e})") from e
        try:
            return cls(exc, inh)
        except InputSpikesError as e:
            raise InputSpikesError(str(e).replace("InputSpikes", str(path))) from None
