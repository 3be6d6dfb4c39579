"""Which cell to simulate: :class:`CellConfig` and the published variants.

Variants (reference section 4.4):

- ``nmda``: AMPA+NMDA excitation, SK_E2 x1 (the main cell of the published study);
- ``ampa``: AMPA-only excitation, SK_E2 x1;
- ``ampa_sk``: AMPA-only excitation, gSK_E2bar x0.1 ("AMPA synapses w/o SK_E2").

``conductance_scale`` multiplies any mechanism's maximal conductance on top of the variant, so
users can run their own ablations: channel names (``"Ih"``, ``"SK_E2"``, ``"Ca_LVAst"``, ...) scale
``g<name>bar`` everywhere; ``"AMPA"``, ``"NMDA"`` and ``"GABA_A"`` scale the synaptic peak
conductances.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from neuroemu.config import Config
from neuroemu.errors import ConfigError

VARIANTS: dict[str, dict] = {
    "nmda": {"excitatory": "ampa_nmda", "conductance_scale": {}},
    "ampa": {"excitatory": "ampa", "conductance_scale": {}},
    "ampa_sk": {"excitatory": "ampa", "conductance_scale": {"SK_E2": 0.1}},
}
CELL_KINDS = ("l5pc", "iaf")
SYNAPSE_SCALE_KEYS = ("AMPA", "NMDA", "GABA_A")


@dataclass
class CellConfig(Config):
    """The cell to simulate.

    kind: ``"l5pc"`` (the NEURON L5 pyramidal cell) or ``"iaf"`` (integrate-and-fire, NumPy).
    variant: ``"nmda"``, ``"ampa"`` or ``"ampa_sk"`` (L5PC only).
    morphology: path to a Neurolucida .asc or .swc file; ``None`` = the built-in default cell.
    conductance_scale: extra multipliers, e.g. ``{"Ih": 0.0, "NMDA": 0.5}``.
    nexus_distance_um: path distance of the "nexus" recording site on the main apical trunk.
    """

    kind: str = "l5pc"
    variant: str = "nmda"
    morphology: str | None = None
    morphology_sha256: str | None = None
    conductance_scale: dict[str, float] = field(default_factory=dict)
    nexus_distance_um: float = 678.4

    def __post_init__(self) -> None:
        if self.kind not in CELL_KINDS:
            raise ConfigError(f"cell kind {self.kind!r} is unknown; choose one of {list(CELL_KINDS)}")
        if self.kind == "l5pc" and self.variant not in VARIANTS:
            raise ConfigError(f"variant {self.variant!r} is unknown; choose one of {sorted(VARIANTS)}")
        for name, value in self.conductance_scale.items():
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise ConfigError(f"conductance_scale[{name!r}] = {value!r}: must be a number >= 0")
        if self.morphology is not None:
            self.morphology = str(self.morphology)

    @property
    def excitatory_synapse(self) -> str:
        """``"ampa_nmda"`` or ``"ampa"``, from the variant."""
        return VARIANTS[self.variant]["excitatory"]

    def effective_conductance_scale(self) -> dict[str, float]:
        """The variant's scaling combined (multiplied) with the user's ``conductance_scale``."""
        scale = dict(VARIANTS[self.variant]["conductance_scale"]) if self.kind == "l5pc" else {}
        for name, value in self.conductance_scale.items():
            scale[name] = scale.get(name, 1.0) * float(value)
        return scale

    def with_morphology_hash(self) -> "CellConfig":
        """Return a copy that records the sha256 of the morphology (for provenance).

        For a file, the hash of its bytes; for the built-in cell (``morphology=None``), the hash of the
        generated morphology's canonical JSON, so datasets say which version of the built-in cell made them.
        """
        if self.kind != "l5pc":
            return self.replace(morphology_sha256=None)
        if self.morphology is None:
            import json

            from neuroemu.cells.default_morphology import default_l5pc_morphology

            text = json.dumps(default_l5pc_morphology().to_dict(), sort_keys=True, default=str)
            return self.replace(morphology_sha256="builtin:" + hashlib.sha256(text.encode()).hexdigest())
        path = Path(self.morphology)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        return self.replace(morphology_sha256=digest)
