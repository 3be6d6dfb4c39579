"""The model families, by name: the one place a new emulator family is plugged in.

A family is a :class:`~neuroemu.models.base.ModelConfig` subclass and an
:class:`~neuroemu.models.base.EmulatorModel` subclass sharing a ``family`` name. Everything else
(training, evaluation, sweeps, learning curves, reports, checkpoints, the CLI) looks families up here.
"""
from __future__ import annotations

import importlib
from typing import Any

from neuroemu.errors import CheckpointError, ConfigError
from neuroemu.models.base import EmulatorModel, ModelConfig

__all__ = ["FAMILIES", "family_names", "config_class", "model_class", "model_config_from_dict", "build_model",
           "parse_model_spec"]

#: family name -> (module, config class, model class). Modules are imported on first use.
FAMILIES: dict[str, tuple[str, str, str]] = {
    "tcn": ("neuroemu.models.tcn", "TCNConfig", "TCN"),
}


def family_names() -> list[str]:
    """The registered family names."""
    return list(FAMILIES)


def _entry(family: str, what: int) -> Any:
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; choose one of {family_names()}")
    module, *names = FAMILIES[family]
    return getattr(importlib.import_module(module), names[what])


def config_class(family: str) -> type[ModelConfig]:
    """The config class of ``family``."""
    return _entry(family, 0)


def model_class(family: str) -> type[EmulatorModel]:
    """The module class of ``family``."""
    return _entry(family, 1)


def model_config_from_dict(family: str | None, data: dict[str, Any], where: str = "model") -> ModelConfig:
    """A family's config from its dict form (run.json ``model``, a checkpoint's ``model_config``);
    ``family`` None means ``tcn`` (runs written before the families existed). Unknown or ill-typed fields
    raise :class:`CheckpointError` naming ``where``."""
    cls = config_class(family or "tcn")
    try:
        return cls.from_dict(data, _where=where)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: {family or 'tcn'} model configuration unreadable ({e})") from e


def build_model(config: ModelConfig) -> EmulatorModel:
    """A freshly initialised model for ``config``."""
    return model_class(config.family)(config)


def parse_model_spec(spec: str, where: str = "model") -> ModelConfig:
    """The config of a model spec ``FAMILY[:SIZE]``: ``tcn:7x128``, ``tcn:3x16x80``, ``branch-elm:15``,
    ``lstm:50``; a bare family name takes the family's default size. Errors name the spec and ``where``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"{where}: a model spec must be FAMILY or FAMILY:SIZE, got {spec!r}")
    family, _, size = spec.strip().partition(":")
    if family not in FAMILIES:
        raise ConfigError(f"{where}: unknown model family {family!r} in {spec!r}; choose one of {family_names()}")
    try:
        return config_class(family).from_spec(size.strip())
    except ConfigError as e:
        raise ConfigError(f"{where}: {spec!r}: {e}") from None
