"""Datasets: HDF5 shards, writer, reader (:class:`NeuroDataset`), verify/info, parallel and Dask runner, import.

See ``docs/dataset-format.md`` for the layout. Main entry points (imported lazily):

- :class:`neuroemu.dataset.reader.NeuroDataset` -- read trials and dense input windows;
- :func:`neuroemu.dataset.runner.build_dataset` -- simulate a dataset (resumable);
- :class:`neuroemu.dataset.format.DatasetConfig`;
- :func:`neuroemu.dataset.verify.verify_dataset`, :func:`neuroemu.dataset.info.dataset_info`;
- :func:`neuroemu.dataset.neuronio.import_neuronio`.
"""
from __future__ import annotations

_LAZY = {
    "NeuroDataset": "neuroemu.dataset.reader",
    "read_shard": "neuroemu.dataset.shard",
    "Trial": "neuroemu.dataset.trial",
    "DatasetConfig": "neuroemu.dataset.format",
    "build_dataset": "neuroemu.dataset.runner",
    "verify_dataset": "neuroemu.dataset.verify",
    "dataset_info": "neuroemu.dataset.info",
    "import_neuronio": "neuroemu.dataset.neuronio",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neuroemu.dataset' has no attribute {name!r}")


__all__ = list(_LAZY)
