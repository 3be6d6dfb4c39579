"""Files every stage writes and reads: atomic writes and JSON documents.

A file written here is either its old version or its complete new version, never a mix: the bytes go
to a temporary file in the same folder, are flushed to disk, and replace the target with ``os.replace``.
Readers of JSON documents raise the caller's error class naming the file, never a bare ``ValueError``.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from neuroemu.errors import NeuroemuError

__all__ = ["atomic_write", "atomic_write_text", "write_json", "read_json", "json_safe", "cache_root"]


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it onto ``path``.
    The temporary file is removed if ``write`` fails; the folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode()))


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` (JSON has no NaN), recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | Path, doc: Any, indent: int | None = 1, sort_keys: bool = False) -> None:
    """Write ``doc`` as JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(doc, indent=indent, sort_keys=sort_keys))


def read_json(path: str | Path, error: type[NeuroemuError], what: str = "file",
              hint: str = "") -> Any:
    """Parse the JSON file ``path``; a missing or unreadable file raises ``error`` naming it
    (``what``: what the file should be, e.g. "sweep directory"; ``hint``: appended advice)."""
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        raise error(f"{path}: not found (is {path.parent} a {what}?){tail}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise error(f"{path}: unreadable ({e}){tail}") from None


def cache_root() -> Path:
    """Root of neuroemu's caches (compiled NMODL mechanisms, native kernels): ``$NEUROEMU_CACHE``, else
    ``$XDG_CACHE_HOME/neuroemu`` or ``~/.cache/neuroemu``."""
    env = os.environ.get("NEUROEMU_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "neuroemu").resolve()
