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

__all__ = ["FAMILIES", "family_names", "config_class", "model_class", "model_config_from_dict", "build_model"]

#: family name -> (module, config class, model class). Modules are imported on first use.
FAMILIES: dict[str, tuple[str, str, str]] = {
    "tcn": ("neuroemu.models.tcn", "TCNConfig", "TCN"),
    "elm": ("neuroemu.models.elm", "ELMConfig", "ELM"),
    "branch-elm": ("neuroemu.models.elm", "BranchELMConfig", "BranchELM"),
    "lstm": ("neuroemu.models.lstm", "LSTMConfig", "LSTMEmulator"),
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
