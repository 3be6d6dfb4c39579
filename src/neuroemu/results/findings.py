"""What a study concludes, per cell and overall: :class:`CellFindings` and :class:`StudyFindings`.

Their JSON form (``study.json`` ``findings``) comes from the fields: a field left at ``None`` is omitted unless
it is one of those every cell reports (so "not compared" reads as a missing ``depth_needed``, as before).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CellFindings", "StudyFindings", "ALWAYS_REPORTED"]

#: Fields of :class:`CellFindings` written even when None.
ALWAYS_REPORTED = ("depth1", "best", "selected_on", "smallest_reaching_target", "min_depth_reaching_target",
                   "summary")


@dataclass
class CellFindings:
    """One cell's findings. ``depth1`` / ``best``: brief rows of the validation-selected depth-1 and overall
    networks; ``auc_gain_from_depth`` +- ``auc_gain_sd`` (combined subset SDs) and ``depth_needed`` (gain >
    margin and > 2 SDs); the paired comparison on the same test traces (``paired_delta_auc``, its bootstrap
    CI ``paired_ci``); the same on the somatic explained variance; the published expectation; for the I&F the
    single unit; the smallest network reaching the target; the FCI of the best emulator with its CI; the
    data-scaling rows and the paired depth gain at each data size (with a fit and its extrapolation)."""

    depth1: dict[str, Any] | None = None
    best: dict[str, Any] | None = None
    selected_on: str = "none"
    too_few_test_spikes: int | None = None
    auc_gain_from_depth: float | None = None
    auc_gain_sd: float | None = None
    gain_in_sd: float | None = None
    depth_needed: bool | None = None
    paired_delta_auc: float | None = None
    paired_ci: list[float] | None = None
    paired_n_traces: int | None = None
    ev_gain_from_depth: float | None = None
    ev_gain_sd: float | None = None
    depth_needed_for_voltage: bool | None = None
    published_depth_needed: bool | None = None
    depth_matches_published: bool | None = None
    matches_published: bool | None = None
    single_unit: dict[str, Any] | None = None
    single_unit_auc_gap: float | None = None
    single_unit_suffices: bool | None = None
    smallest_reaching_target: dict[str, Any] | None = None
    min_depth_reaching_target: int | None = None
    best_emulator: dict[str, Any] | None = None
    fci: float | None = None
    fci_ci: list[float] | None = None
    data_scaling: list[dict[str, Any]] | None = None
    depth_gain_by_data: list[dict[str, Any]] | None = None
    depth_gain_fit: dict[str, Any] | None = None
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None or f.name in ALWAYS_REPORTED}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellFindings":
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class StudyFindings:
    """All cells' findings and the verdict on the published result: ``reproduced`` True (every cell compared
    and as published), False (a compared cell contradicts it) or None (inconclusive), ``verdict`` in words."""

    target_auc: float
    auc_margin: float
    min_test_spikes: int
    cells: dict[str, CellFindings] = field(default_factory=dict)
    reproduced: bool | None = None
    verdict: str = ""
    n_cells_compared: int = 0
    cells_not_compared: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"target_auc": self.target_auc, "auc_margin": self.auc_margin, "min_test_spikes": self.min_test_spikes,
                "cells": {c: f.to_dict() for c, f in self.cells.items()}, "reproduced": self.reproduced,
                "verdict": self.verdict, "n_cells_compared": self.n_cells_compared,
                "cells_not_compared": list(self.cells_not_compared)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StudyFindings":
        """Inverse of :meth:`to_dict`."""
        return cls(target_auc=d["target_auc"], auc_margin=d["auc_margin"], min_test_spikes=d["min_test_spikes"],
                   cells={c: CellFindings.from_dict(f) for c, f in (d.get("cells") or {}).items()},
                   reproduced=d.get("reproduced"), verdict=d.get("verdict", ""),
                   n_cells_compared=int(d.get("n_cells_compared", 0)),
                   cells_not_compared=list(d.get("cells_not_compared", [])))
