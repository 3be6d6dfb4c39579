"""Exceptions raised by neuroemu. Each names the file, field or value at fault."""


class NeuroemuError(Exception):
    """Base class of all neuroemu errors (the CLI prints these without a traceback)."""


class MorphologyError(NeuroemuError):
    """A morphology file is missing, empty, malformed or unusable."""


class MechanismError(NeuroemuError):
    """NMODL mechanisms could not be compiled or loaded."""


class InputSpikesError(NeuroemuError, ValueError):
    """Input spike trains are malformed (shape, channel range, times)."""


class ConfigError(NeuroemuError, ValueError):
    """A configuration value is impossible or unknown."""


class SimulationError(NeuroemuError):
    """A simulation failed (for example the voltage became NaN)."""


class DatasetError(NeuroemuError):
    """A dataset or one of its shards is missing, corrupt, truncated or incompatible."""


class CheckpointError(NeuroemuError):
    """A training run or checkpoint is missing, corrupt or incompatible."""


class TrainingError(NeuroemuError):
    """Training could not continue (for example a NaN loss)."""
