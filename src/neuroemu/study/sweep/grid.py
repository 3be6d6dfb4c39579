"""The configurations of a sweep: the TCN depth x width (x receptive field) grid, extra TCNs, and networks of
other families given as model specs. Smallest first; each has a run directory name."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from neuroemu.models.base import ModelConfig
from neuroemu.models.registry import parse_model_spec, spec_name
from neuroemu.models.tcn import TCNConfig, default_kernels, kernels_for
from neuroemu.study.sweep.config import SweepConfig

__all__ = ["SweepEntry", "sweep_entries", "kernels_for"]


@dataclass
class SweepEntry:
    """One configuration: a TCN of the grid (or an extra one with its own model fields and ``label``), or a
    network of any family given by its model ``spec`` (``branch-elm:15``); ``replicate`` k >= 1: the k-th extra
    training run of the same configuration (its own training seed)."""

    depth: int | None = None
    width: int | None = None
    kernels: list[int] | None = None
    model: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    spec: str | None = None
    replicate: int = 0

    @property
    def family(self) -> str:
        """The model family."""
        return self.spec.partition("@")[0].partition(":")[0] if self.spec else "tcn"

    @property
    def receptive_field(self) -> int | None:
        """A TCN's T = sum(K - 1) + 1 (ms); None for other families."""
        return sum(k - 1 for k in self.kernels) + 1 if self.kernels else None

    @property
    def name(self) -> str:
        """Run directory name: ``<D>x<W>x<T>`` (the published DxWxT naming), ``_<label>`` for extras; a spec's
        name with ``_`` for ``:`` (``branch-elm_15``); ``_s<k>`` appended for replicate k >= 1."""
        return self.config_name + (f"_s{self.replicate}" if self.replicate else "")

    @property
    def config_name(self) -> str:
        """The configuration's name, the same for all its replicates."""
        if self.spec:
            return spec_name(self.spec)
        base = f"{self.depth}x{self.width}x{self.receptive_field}"
        return f"{base}_{self.label}" if self.label else base

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (task argument of the worker processes; stored in ``result.json``)."""
        rep = {"replicate": self.replicate} if self.replicate else {}
        if self.spec:
            return {"spec": self.spec, "model": dict(self.model), "label": self.label, **rep}
        return {"depth": self.depth, "width": self.width, "kernels": list(self.kernels or []),
                "model": dict(self.model), "label": self.label, **rep}

    def model_config(self, n_inputs: int, grid_model: dict[str, Any] | None = None) -> ModelConfig:
        """The architecture of this configuration (``grid_model``: the sweep's extra TCN fields)."""
        if self.spec:
            return parse_model_spec(self.spec).replace(n_inputs=int(n_inputs), **self.model)
        return TCNConfig(n_inputs=int(n_inputs), depth=self.depth, width=self.width, kernels=list(self.kernels),
                         **{**(grid_model or {}), **self.model})


def sweep_entries(config: SweepConfig) -> list[SweepEntry]:
    """All configurations: the grid smallest first (depth, then width, then receptive field), the extras, then
    the other families' model specs in the order given; then, for ``train_seeds`` > 1, replicate 1 of every
    configuration in the same order, replicate 2, ..."""
    out: dict[str, SweepEntry] = {}
    for d in sorted(set(config.depths)):
        for w in sorted(set(config.widths)):
            if config.receptive_fields is None:
                e = SweepEntry(d, w, default_kernels(d))
                out.setdefault(e.name, e)
            else:
                for t in sorted(set(config.receptive_fields)):
                    e = SweepEntry(d, w, kernels_for(d, t, config.first_kernel_fraction))
                    out.setdefault(e.name, e)
    for x in config.extra:
        x = dict(x)
        e = SweepEntry(int(x.pop("depth")), int(x.pop("width")), [int(k) for k in x.pop("kernels")],
                       label=str(x.pop("label")), model=x)
        out.setdefault(e.name, e)
    for spec in config.models:
        e = SweepEntry(spec=spec)
        out.setdefault(e.name, e)
    first = list(out.values())
    return first + [replace(e, replicate=k) for k in range(1, int(config.train_seeds)) for e in first]
