"""The manifest ``dataset.json``: reading it with errors that name the file, and comparing configs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neuroemu.dataset.format import FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME
from neuroemu.errors import DatasetError

__all__ = ["load_manifest", "diff_keys"]


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read ``DIR/dataset.json`` (or the file itself); raise :class:`DatasetError` naming it on any problem."""
    path = Path(path)
    mpath = path / MANIFEST_NAME if path.is_dir() else path
    if not mpath.is_file():
        raise DatasetError(f"{mpath}: no dataset manifest here (is {path} a neuroemu dataset directory?)")
    try:
        m = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{mpath}: unreadable manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise DatasetError(f"{mpath}: not a neuroemu dataset manifest (format {m.get('format')!r})"
                           if isinstance(m, dict) else f"{mpath}: not a neuroemu dataset manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{mpath}: format_version {m.get('format_version')!r} is not supported "
                           f"(this neuroemu reads version {FORMAT_VERSION})")
    for key in ("config", "n_exc", "n_inh", "duration_ms", "shards"):
        if key not in m:
            raise DatasetError(f"{mpath}: manifest lacks the key {key!r}")
    return m


def diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the keys whose values differ between two nested dicts (e.g. ``cell.variant``)."""
    out = []
    for k in sorted(set(a) | set(b)):
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += diff_keys(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k) or (k in a) != (k in b):
            out.append(f"{prefix}{k}")
    return out
