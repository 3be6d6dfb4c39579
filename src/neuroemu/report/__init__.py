"""Figures (matplotlib, PNG) and self-contained HTML reports of runs, sweeps and studies.

- :mod:`neuroemu.report.figures` -- one function per figure, NumPy arrays in, Figure out.
- :mod:`neuroemu.report.html` -- :func:`~neuroemu.report.html.build_html` / ``write_report``.
- :func:`make_report` -- detect a run / sweep / study directory and write its report.

Importing this package does not import matplotlib, torch or NEURON.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from neuroemu.errors import ConfigError

__all__ = ["make_report", "detect_kind"]

#: marker file -> (kind, module, function) of the report writer for that kind of directory
_KINDS = {
    "run.json": ("run", "neuroemu.report.run_report", "report_run"),
    "sweep.json": ("sweep", "neuroemu.report.sweep_report", "report_sweep"),
    "study.json": ("study", "neuroemu.report.study_report", "report_study"),
    "learning_curve.json": ("learning-curve", "neuroemu.report.curve_report", "report_learning_curve"),
}


def detect_kind(path: str | Path) -> str:
    """'run', 'sweep' or 'study' for a directory holding run.json, sweep.json or study.json."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"report: {p} is not a directory")
    for marker, (kind, _, _) in _KINDS.items():
        if (p / marker).is_file():
            return kind
    raise ConfigError(f"report: {p} is not a run, sweep or study directory "
                      f"(none of {', '.join(_KINDS)} is there)")


def make_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a RUN, SWEEP or STUDY directory; return the path of its ``index.html``.

    ``out`` is the report folder (default ``<path>/report``).
    """
    kind = detect_kind(path)
    _, module, func = next(v for v in _KINDS.values() if v[0] == kind)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise NotImplementedError(f"report: {kind} reports are not available yet ({module} is missing); "
                                  f"use neuroemu.report.figures.complexity / study_summary directly") from None
    writer = getattr(mod, func, None)
    if writer is None:
        raise NotImplementedError(f"report: {module} has no {func}() yet")
    return writer(Path(path), out_dir=out)
