"""Training emulators: configuration and presets, the loop (checkpoints, exact resume), in-memory datasets."""
from neuroemu.training.config import Stage, TrainingConfig
from neuroemu.training.loop import TrainResult, resume, train
from neuroemu.training.memory_dataset import InMemoryDataset, make_toy_dataset

__all__ = ["TrainingConfig", "Stage", "train", "resume", "TrainResult", "InMemoryDataset", "make_toy_dataset"]
