"""neuroemu: how much computation does a single neuron do?

Simulate a detailed L5 pyramidal cell (NEURON), build datasets of its input/output behaviour,
train deep emulators (PyTorch) and measure how deep and wide a network must be to emulate it.

The main entry points are imported lazily so that ``import neuroemu`` stays fast:

- :func:`neuroemu.simulate` -- replay input spike trains through a cell and get its response.
- :class:`neuroemu.InputSpikes` -- sparse input spike trains.
"""
from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# NEURON without its GUI (no "no DISPLAY" warning on headless machines); set before any stage imports neuron
_os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

_LAZY = {
    "simulate": ("neuroemu.simulation", "simulate"),
    "InputSpikes": ("neuroemu.inputs.spikes", "InputSpikes"),
    "SimulationResult": ("neuroemu.simulation.result", "SimulationResult"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'neuroemu' has no attribute {name!r}")


__all__ = list(_LAZY) + ["__version__"]
