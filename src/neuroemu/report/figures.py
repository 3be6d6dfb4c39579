"""All report figures, one function per figure (NumPy arrays / plain dicts in, matplotlib Figure out).

Nothing here imports NEURON or torch. Figures are Agg-rendered :class:`matplotlib.figure.Figure`
objects; save them with :func:`save_figure` (PNG, 110 dpi).

- :func:`input_raster`, :func:`traces`, :func:`roc`, :func:`spike_cross_correlation`,
  :func:`voltage_scatter` -- emulator input/output (sections 9.4, 9.5, 10)
- :func:`morphology`, :func:`first_layer_filters`, :func:`iaf_weights` -- cell and learned filters
- :func:`complexity`, :func:`complexity_panels`, :func:`study_summary` -- sweeps and studies (9.7)
- :func:`learning_curve`, :func:`depth_gain_by_data` -- the data axis (learning curves, the study's depth gain)
"""
from __future__ import annotations

from neuroemu.report._style import save_figure
from neuroemu.report.fig_cell import (
    first_layer_filters, iaf_weights, morphology, prepare_kernels, region_key, select_unit,
)
from neuroemu.report.fig_data import depth_gain_by_data, learning_curve
from neuroemu.report.fig_io import (
    input_raster, recall_curve, roc, spike_cross_correlation, spike_onsets, traces, voltage_scatter,
)
from neuroemu.report.fig_sweep import (
    architecture_name, complexity, complexity_curve, complexity_panels, smallest_reaching, study_summary,
)

__all__ = [
    "save_figure",
    "input_raster", "traces", "roc", "spike_cross_correlation", "voltage_scatter", "recall_curve", "spike_onsets",
    "morphology", "first_layer_filters", "iaf_weights", "prepare_kernels", "region_key", "select_unit",
    "complexity", "complexity_panels", "complexity_curve", "study_summary", "smallest_reaching",
    "architecture_name", "learning_curve", "depth_gain_by_data",
]
