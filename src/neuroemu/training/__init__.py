"""Training emulators of every family: configuration and presets, the loop (checkpoints, exact resume, early
stopping), batches and validation."""
from neuroemu.dataset.memory import InMemoryDataset, make_toy_dataset
from neuroemu.training.config import Stage, TrainingConfig
from neuroemu.training.loop import TrainResult, Trainer, resume, train

__all__ = ["TrainingConfig", "Stage", "train", "resume", "Trainer", "TrainResult", "InMemoryDataset",
           "make_toy_dataset"]
