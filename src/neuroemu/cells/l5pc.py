"""The assembled layer-5 pyramidal cell: morphology + Hay "5b" biophysics + 1278 synapses.

``L5PC(CellConfig())`` builds the built-in default cell; ``CellConfig(morphology="cell1.asc")``
builds a reconstruction. Construction follows the published model (reference sections 2-4):
axon replaced by a 60-um stub, ``nseg = 1 + 2*int(L/40)``, one excitatory and one inhibitory
synapse at the centre of every basal and apical segment, in channel order (basal sections in
order, then apical, each by x).
"""
from __future__ import annotations

from typing import Any

from neuroemu.cells.biophysics import BiophysicsConfig, apply_biophysics
from neuroemu.cells.config import SYNAPSE_SCALE_KEYS, CellConfig
from neuroemu.cells.synapses import SynapseConfig, place_synapses


def split_conductance_scale(scale: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Split a combined scale dict into (channel scales, synapse gmax scales with lowercase keys)."""
    channels, synapses = {}, {}
    for name, value in scale.items():
        if name.upper() in SYNAPSE_SCALE_KEYS:
            synapses[name.lower()] = float(value)
        else:
            channels[name] = float(value)
    return channels, synapses


def load_cell_morphology(config: CellConfig):
    """The morphology a cell config names: a file, or the built-in default cell."""
    if config.morphology is None:
        from neuroemu.cells.default_morphology import default_l5pc_morphology

        return default_l5pc_morphology()
    from neuroemu.cells.morphology import load_morphology

    return load_morphology(config.morphology)


class L5PC:
    """A NEURON L5 pyramidal cell ready to be driven by input spike trains.

    Attributes: ``sections`` (CellSections), ``segments`` (dendritic NEURON segments in channel
    order), ``exc_synapses`` / ``inh_synapses`` (one per segment), ``soma_segment``,
    ``nexus_segment``, ``biophysics`` (BiophysicsConfig), ``synapse_config``, ``n_segments``.
    """

    def __init__(self, config: CellConfig | None = None, biophysics: BiophysicsConfig | None = None,
                 synapses: SynapseConfig | None = None) -> None:
        from neuroemu.cells.morphology import instantiate
        from neuroemu.cells.segments import nexus_site, segment_table

        self.config = config or CellConfig()
        channel_scale, synapse_scale = split_conductance_scale(self.config.effective_conductance_scale())
        base = biophysics or BiophysicsConfig()
        self.biophysics = base.replace(conductance_scale={**base.conductance_scale, **channel_scale})
        syn = synapses or SynapseConfig()
        self.synapse_config = syn.replace(gmax_scale={**syn.gmax_scale, **synapse_scale})

        self.morphology = load_cell_morphology(self.config)
        self.sections = instantiate(self.morphology)
        self.biophysics_summary = apply_biophysics(self.sections, self.biophysics)
        self.segments = [seg for sec in self.sections.dendritic for seg in sec]
        self.exc_synapses, self.inh_synapses = place_synapses(
            self.segments, excitatory=self.config.excitatory_synapse, config=self.synapse_config)
        self.soma_segment = self.sections.soma(0.5)
        self.nexus = nexus_site(self.sections, distance_um=self.config.nexus_distance_um)
        self.nexus_segment = self.nexus.segment(self.sections)
        self._table = segment_table(self.sections, nexus=self.nexus)

    @property
    def n_segments(self) -> int:
        """Number of dendritic segments (= excitatory channels = inhibitory channels)."""
        return len(self.segments)

    def segment_table(self):
        """The segment table (one row per dendritic segment, channel order)."""
        return self._table

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary of the cell (config, morphology summary, biophysics summary)."""
        return {
            "config": self.config.to_dict(),
            "morphology": self.morphology.summary(),
            "biophysics": self.biophysics_summary,
            "n_segments": self.n_segments,
            "nexus": f"{self.nexus.section}({self.nexus.x:.4f}), {self.nexus.distance_um:.1f} um",
        }
