"""Typed configuration objects that round-trip to JSON and YAML.

Every configuration in neuroemu is a dataclass inheriting :class:`Config`. A config is
stored inside every dataset and checkpoint, so that any artefact says how it was made.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

from neuroemu.errors import ConfigError

T = TypeVar("T", bound="Config")

__all__ = ["Config", "ConfigError", "reject_nonfinite", "read_config_file"]

_SCALARS = (bool, int, float, str)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def _from_plain(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        return None
    if isinstance(tp, type) and issubclass(tp, Config):
        return tp.from_dict(value, _where=where)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        for cand in non_none:
            try:
                return _from_plain(cand, value, where)
            except (TypeError, ValueError):
                continue
        return value
    if origin in (list, tuple):
        inner = args[0] if args else Any
        items = [_from_plain(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        inner = args[1] if len(args) == 2 else Any
        return {k: _from_plain(inner, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in _SCALARS and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {'a number' if tp is float else 'an integer' if tp is int else tp.__name__}"
                          f", got {value!r}")
    return value


def read_config_file(path: str | Path, what: str = "configuration") -> dict[str, Any]:
    """The mapping in a ``.json``, ``.yaml`` or ``.yml`` file (an empty file is ``{}``). A missing file, a syntax
    error or a file that is not a mapping raises :class:`ConfigError` starting with the file's path."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not a readable {what} file ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {what} fields, got {type(data).__name__}")
    return data


def reject_nonfinite(config: "Config") -> None:
    """Raise :class:`ConfigError` naming the field if any float field (or float in a list field) of ``config``
    is NaN or infinite."""
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        vals = v if isinstance(v, (list, tuple)) else [v]
        for x in vals:
            if isinstance(x, float) and not math.isfinite(x):
                raise ConfigError(f"{type(config).__name__}.{f.name} must be a finite number, got {v!r}")


@dataclasses.dataclass
class Config:
    """Base class: ``to_dict``/``from_dict``, JSON and YAML round trips, ``replace``."""

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable dict of this config (nested configs included)."""
        return _to_plain(self)

    @classmethod
    def preset_defaults(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The defaults that ``data`` starts from: a class with presets returns the defaults of the preset
        ``data`` names (so a file saying ``preset: modern`` gets the modern defaults, overridden by the file's
        other keys); the base class returns ``{}`` (the dataclass defaults)."""
        return {}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any] | None, _where: str | None = None) -> T:
        """Build a config from a dict (on top of :meth:`preset_defaults`); unknown keys, values of the wrong
        type and impossible values raise :class:`ConfigError` (a ``ValueError``) naming the field."""
        where = _where or cls.__name__
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
        data = dict(data or {})
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(names)}")
        data = {**cls.preset_defaults(data), **data}
        kwargs = {k: _from_plain(hints.get(k, Any), v, f"{where}.{k}") for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ConfigError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(where) or _where is None else f"{where}: {msg}") from None
        except TypeError as e:  # a missing required field
            raise ConfigError(f"{where}: {e}") from None

    def to_json(self, indent: int | None = 2) -> str:
        """Serialise to a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        """Parse a JSON string produced by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_yaml(self) -> str:
        """Serialise to YAML."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @classmethod
    def from_yaml(cls: type[T], text: str) -> T:
        """Parse YAML produced by :meth:`to_yaml` (or written by hand)."""
        import yaml

        return cls.from_dict(yaml.safe_load(text) or {})

    @classmethod
    def from_file(cls: type[T], path: str | Path) -> T:
        """Load a config from a ``.json``, ``.yaml`` or ``.yml`` file. Every problem (missing file, syntax,
        unknown field, bad value) raises :class:`ConfigError` as ``FILE: field ...``."""
        data = read_config_file(path, cls.__name__)
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def save(self, path: str | Path) -> None:
        """Write this config to ``path`` (JSON or YAML by suffix)."""
        path = Path(path)
        text = self.to_yaml() if path.suffix.lower() in (".yaml", ".yml") else self.to_json()
        path.write_text(text)

    def replace(self: T, **changes: Any) -> T:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)
