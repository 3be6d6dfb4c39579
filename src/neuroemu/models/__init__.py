"""Emulator models: the published TCN (dense or event-driven first layer) and the trained-emulator API."""
from neuroemu.models.emulator import Emulator, EmulatorModule
from neuroemu.models.sparse_conv import SparseCausalConv1d, sparse_causal_conv1d
from neuroemu.models.tcn import TCN, TCNConfig, TCNOutput, default_kernels

__all__ = ["TCN", "TCNConfig", "TCNOutput", "default_kernels", "SparseCausalConv1d", "sparse_causal_conv1d",
           "Emulator", "EmulatorModule"]
