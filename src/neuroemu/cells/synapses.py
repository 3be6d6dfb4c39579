"""Synapses of the published model (reference-system.md section 4): one excitatory and one GABA_A
synapse at the centre of every dendritic segment.

Mechanisms (see :mod:`neuroemu.cells.mechanisms`): ``AmpaNmdaSyn`` for AMPA+NMDA excitation (one
event drives both components), ``DualExpSyn`` for AMPA-only excitation and for GABA_A. All are
dual-exponential conductances normalised so that one event of NetCon weight 1 gives a conductance
peak of exactly gmax.

Faithfulness: transmission is deterministic. The published synapse mods, as normally compiled,
released on every event (their random draw read an uninitialised value that GCC -O2 makes 0.0),
except that a synapse whose first event comes at t = 0 stayed silent for the trial. Both that
quirk and any optional stochastic release are applied by the simulation stage in Python (by not
delivering the events concerned), so the mechanisms here transmit every event they receive.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from neuroemu.config import Config
from neuroemu.errors import ConfigError

EXCITATORY_TYPES = ("ampa_nmda", "ampa")
SCALE_KEYS = ("ampa", "nmda", "gaba_a")

_VARIANT_EXCITATORY = {"nmda": "ampa_nmda", "ampa": "ampa", "ampa_sk": "ampa"}


@dataclasses.dataclass
class SynapseConfig(Config):
    """Synaptic kinetics (ms), peak conductances (nS), reversal potentials (mV) and the NMDA Mg block.

    ``gmax_scale`` multiplies the gmax of a synapse type (keys ``ampa``, ``nmda``, ``gaba_a``).
    The Mg block is ``1 / (1 + exp(-nmda_gamma * v) * mg_mM / mg_scale_mM)``.
    """

    ampa_tau_rise: float = 0.3
    ampa_tau_decay: float = 3.0
    ampa_gmax_ns: float = 0.4
    nmda_tau_rise: float = 2.0
    nmda_tau_decay: float = 70.0
    nmda_gmax_ns: float = 0.4
    exc_e_rev: float = 0.0
    mg_mM: float = 1.0
    mg_scale_mM: float = 3.57
    nmda_gamma: float = 0.08
    gaba_a_tau_rise: float = 0.2
    gaba_a_tau_decay: float = 8.0
    gaba_a_gmax_ns: float = 1.0
    gaba_a_e_rev: float = -80.0
    gmax_scale: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field at fault."""
        for kind in ("ampa", "nmda", "gaba_a"):
            rise, decay = getattr(self, f"{kind}_tau_rise"), getattr(self, f"{kind}_tau_decay")
            if not (0 < rise < decay and math.isfinite(decay)):
                raise ConfigError(
                    f"SynapseConfig.{kind}_tau_rise/{kind}_tau_decay: need 0 < rise < decay, got {rise}, {decay}")
            gmax = getattr(self, f"{kind}_gmax_ns")
            if not (math.isfinite(gmax) and gmax >= 0):
                raise ConfigError(f"SynapseConfig.{kind}_gmax_ns: must be >= 0, got {gmax}")
        for key, factor in self.gmax_scale.items():
            if key not in SCALE_KEYS:
                raise ConfigError(f"SynapseConfig.gmax_scale: unknown synapse type {key!r}; known: {list(SCALE_KEYS)}")
            if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0):
                raise ConfigError(f"SynapseConfig.gmax_scale.{key}: factor must be >= 0, got {factor!r}")
        if self.mg_mM < 0 or self.mg_scale_mM <= 0:
            raise ConfigError(
                f"SynapseConfig.mg_mM/mg_scale_mM: need mg >= 0 and scale > 0, got {self.mg_mM}, {self.mg_scale_mM}")

    def gmax_us(self, kind: str) -> float:
        """Peak conductance of ``kind`` (ampa, nmda, gaba_a) in uS, scaling included."""
        if kind not in SCALE_KEYS:
            raise ConfigError(f"synapse type {kind!r} is unknown; known: {list(SCALE_KEYS)}")
        return getattr(self, f"{kind}_gmax_ns") * 1e-3 * float(self.gmax_scale.get(kind, 1.0))


def variant_excitatory_type(variant: str) -> str:
    """Excitatory synapse type of a published cell variant: nmda -> ampa_nmda, ampa/ampa_sk -> ampa."""
    if variant not in _VARIANT_EXCITATORY:
        raise ConfigError(f"cell variant {variant!r} is unknown; known: {list(_VARIANT_EXCITATORY)}")
    return _VARIANT_EXCITATORY[variant]


def peak_time(tau_rise: float, tau_decay: float) -> float:
    """Time to peak (ms) of a dual exponential: tr*td/(td-tr) * ln(td/tr)."""
    return tau_rise * tau_decay / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)


def mg_block(v_mV: float, config: SynapseConfig | None = None) -> float:
    """NMDA Mg block at a voltage, as the mechanism computes it."""
    c = config or SynapseConfig()
    return 1.0 / (1.0 + math.exp(-c.nmda_gamma * v_mV) * c.mg_mM / c.mg_scale_mM)


def _make_excitatory(seg: Any, excitatory: str, c: SynapseConfig) -> Any:
    from neuron import h

    if excitatory == "ampa_nmda":
        syn = h.AmpaNmdaSyn(seg)
        syn.tau_r_AMPA, syn.tau_d_AMPA = c.ampa_tau_rise, c.ampa_tau_decay
        syn.tau_r_NMDA, syn.tau_d_NMDA = c.nmda_tau_rise, c.nmda_tau_decay
        syn.gmax_AMPA, syn.gmax_NMDA = c.gmax_us("ampa"), c.gmax_us("nmda")
        syn.e = c.exc_e_rev
        syn.mg, syn.mg_scale, syn.gamma_NMDA = c.mg_mM, c.mg_scale_mM, c.nmda_gamma
        return syn
    syn = h.DualExpSyn(seg)
    syn.tau_r, syn.tau_d = c.ampa_tau_rise, c.ampa_tau_decay
    syn.gmax, syn.e = c.gmax_us("ampa"), c.exc_e_rev
    return syn


def _make_gaba_a(seg: Any, c: SynapseConfig) -> Any:
    from neuron import h

    syn = h.DualExpSyn(seg)
    syn.tau_r, syn.tau_d = c.gaba_a_tau_rise, c.gaba_a_tau_decay
    syn.gmax, syn.e = c.gmax_us("gaba_a"), c.gaba_a_e_rev
    return syn


def place_synapses(segments: Sequence[Any], excitatory: str = "ampa_nmda",
                   config: SynapseConfig | None = None) -> tuple[list[Any], list[Any]]:
    """Put one excitatory and one GABA_A synapse at each segment's centre.

    ``segments`` are NEURON segments in channel order (excitatory channel k and inhibitory channel
    n + k sit on ``segments[k]``); ``excitatory`` is ``"ampa_nmda"`` (AmpaNmdaSyn) or ``"ampa"``
    (DualExpSyn with AMPA kinetics). Returns ``(exc_syns, inh_syns)``, lists of point processes the
    caller must keep referenced. Drive them with ``NetCon(None, syn)``, weight 1.
    """
    if excitatory not in EXCITATORY_TYPES:
        raise ConfigError(f"place_synapses: excitatory={excitatory!r} is unknown; known: {list(EXCITATORY_TYPES)}")
    c = config if config is not None else SynapseConfig()
    c.validate()
    from neuroemu.cells.mechanisms import load_mechanisms

    load_mechanisms()
    exc_syns: list[Any] = []
    inh_syns: list[Any] = []
    for seg in segments:
        centre = seg.sec(seg.x)
        exc_syns.append(_make_excitatory(centre, excitatory, c))
        inh_syns.append(_make_gaba_a(centre, c))
    return exc_syns, inh_syns


__all__ = [
    "EXCITATORY_TYPES", "SCALE_KEYS", "SynapseConfig", "mg_block", "peak_time", "place_synapses",
    "variant_excitatory_type",
]
