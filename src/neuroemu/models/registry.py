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
           "parse_model_spec", "spec_name"]

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


def parse_model_spec(spec: str, where: str = "model") -> ModelConfig:
    """The config of a model spec ``FAMILY[:SIZE][@FIELD=VALUE,...]``: ``tcn:7x128``, ``tcn:3x16x80``,
    ``branch-elm:15``, ``lstm:50``, ``branch-elm:15@n_dendritic_components=20``; a bare family name takes the
    family's default size; ``@`` sets further fields of the family's config (values read as YAML scalars).
    Errors name the spec and ``where``."""
    import yaml

    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"{where}: a model spec must be FAMILY or FAMILY:SIZE, got {spec!r}")
    head, _, options = spec.strip().partition("@")
    family, _, size = head.partition(":")
    if family not in FAMILIES:
        raise ConfigError(f"{where}: unknown model family {family!r} in {spec!r}; choose one of {family_names()}")
    fields = {}
    for item in filter(None, options.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{where}: {spec!r}: options after '@' must be FIELD=VALUE, got {item!r}")
        fields[key.strip()] = yaml.safe_load(value)
    try:
        cfg = config_class(family).from_spec(size.strip())
        return cfg if not fields else type(cfg).from_dict({**cfg.to_dict(), **fields}, _where=type(cfg).__name__)
    except ConfigError as e:
        raise ConfigError(f"{where}: {spec!r}: {e}") from None


def spec_name(spec: str) -> str:
    """A file-system name for a model spec (``branch-elm:15@dropout=0.1`` -> ``branch-elm_15_dropout0.1``)."""
    out = spec.strip().replace(":", "_").replace("@", "_").replace(",", "_").replace("=", "")
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in out)
