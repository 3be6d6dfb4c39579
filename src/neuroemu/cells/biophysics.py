"""Hay et al. (2011) "5b" biophysics (``L5PCbiophys5b.hoc``), applied to NEURON sections.

Values are those of reference-system.md section 2.3; :class:`BiophysicsConfig` holds them all so a
user can change any of them, and :func:`apply_biophysics` inserts the mechanisms on the soma,
axon, basal and apical section lists of any morphology.

Faithfulness choices (each reproduces the published model as it actually ran):

- **Temperature.** ``celsius`` is 6.3 degC, NEURON's default, which the published script never
  changed. No channel reads celsius (their time constants carry a hard-coded 21->34 degC factor or
  none), so the only effect is the Nernst potential eca = RT/2F ln(cao/cai): 127.6 mV at the initial
  cai of 5e-5 mM, 119.2 mV at 1e-4 mM. :func:`apply_biophysics` sets ``h.celsius``.
- **Calcium.** CaDynamics_E2 has no INITIAL block, so cai starts at NEURON's cai0 (5e-5 mM) and
  relaxes towards minCai (1e-4 mM); eca follows cai.
- **v_init** is -76 mV (``h.finitialize(-76)`` in the script); the simulation stage uses
  ``config.v_init``.
- **Distances** are path distances from ``soma(0.5)``; the published code measured from
  ``apic[0](0)``, which sits at ``soma(0.5)``. ``max_length_um`` (for the Ih rule) defaults to the
  longest apical path distance to a section end, computed from the cell.
- **Which distance sets each apical segment's value.** The published loop visits x = 0, every
  segment centre, then x = 1 of each apical section, so every segment carries the density at its
  centre except the last segment of each section, which carries the density at the section's far
  end (distance(1)). ``apical_last_segment_uses_far_end=True`` reproduces this.
- **Rounding.** Distributed densities went through text with 10 decimals: rounded to 1e-10 S/cm2.
- **SK variant.** ``conductance_scale`` multiplies a mechanism's ``g<Name>bar`` everywhere after
  the densities are set, as the script's ``SKE2_mult_factor`` did (``{"SK_E2": 0.1}`` for
  ``ampa_sk``, see :func:`variant_conductance_scale`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Sequence

from neuroemu.config import Config
from neuroemu.errors import ConfigError

CHANNELS = (
    "NaTa_t", "NaTs2_t", "Nap_Et2", "K_Tst", "K_Pst", "SKv3_1", "SK_E2", "Im", "Ih",
    "Ca_HVA", "Ca_LVAst",
)
"""Channel mechanisms with a ``g<Name>bar`` density (S/cm2)."""

DENSITY_KEYS = ("pas",) + CHANNELS
"""Keys allowed in the per-region density dicts (``pas`` sets ``g_pas``)."""

REGIONS = ("axon", "soma", "apical", "basal")
VARIANTS = ("nmda", "ampa", "ampa_sk")

_VARIANT_SCALE = {"nmda": {}, "ampa": {}, "ampa_sk": {"SK_E2": 0.1}}

DistanceFn = Callable[[Any, float], float]


def _axon() -> dict[str, float]:
    return {
        "pas": 3e-5, "Ih": 0.0001 / 2, "NaTa_t": 3.89618, "Nap_Et2": 0.005834, "K_Pst": 0.188851,
        "K_Tst": 0.077274, "SKv3_1": 0.473799, "SK_E2": 0.000047, "Im": 0.013322,
        "Ca_HVA": 0.000222, "Ca_LVAst": 0.000813,
    }


def _soma() -> dict[str, float]:
    return {
        "pas": 3e-5, "Ih": 0.0001 * 0.75, "NaTs2_t": 0.998912, "SKv3_1": 0.338029,
        "SK_E2": 0.09965, "Im": 0.000008, "Ca_HVA": 0.000644, "Ca_LVAst": 0.000557,
    }


def _apical() -> dict[str, float]:
    return {
        "pas": 6e-5, "NaTs2_t": 0.021489, "SKv3_1": 0.001808, "SK_E2": 0.000002, "Im": 0.00099,
        "Ca_HVA": 0.000701,
    }


def _basal() -> dict[str, float]:
    return {"pas": 6e-5, "Ih": 0.0001 / 2}


def _ca_dynamics() -> dict[str, dict[str, float]]:
    return {
        "axon": {"decay": 277.300774, "gamma": 0.000525},
        "soma": {"decay": 294.679571, "gamma": 0.000509},
        "apical": {"decay": 35.725651, "gamma": 0.000637},
    }


@dataclasses.dataclass
class BiophysicsConfig(Config):
    """Hay "5b" passive properties and channel densities (S/cm2 unless noted).

    The per-region dicts map a mechanism name (or ``pas`` for ``g_pas``) to its uniform density;
    a mechanism is inserted in a region iff it has a key there. In the apical tree Ih and
    Ca_LVAst follow the distance rules below instead. ``ca_dynamics`` maps a region to
    CaDynamics_E2's ``decay`` (ms) and ``gamma`` (and optionally ``depth`` um, ``minCai`` mM);
    regions without an entry get no calcium dynamics.
    """

    celsius: float = 6.3
    v_init: float = -76.0
    ra: float = 100.0
    cm_soma_axon: float = 1.0
    cm_dendrites: float = 2.0
    e_pas: float = -90.0
    ek: float = -85.0
    ena: float = 50.0
    axon: dict[str, float] = dataclasses.field(default_factory=_axon)
    soma: dict[str, float] = dataclasses.field(default_factory=_soma)
    apical: dict[str, float] = dataclasses.field(default_factory=_apical)
    basal: dict[str, float] = dataclasses.field(default_factory=_basal)
    ca_dynamics: dict[str, dict[str, float]] = dataclasses.field(default_factory=_ca_dynamics)
    # Apical Ih, "exponential then constant": g = base * (offset + amp * exp(rate * min(d/maxLength, cap)))
    apical_ih_base: float = 0.0001
    apical_ih_offset: float = -0.8696
    apical_ih_amp: float = 2.0870
    apical_ih_rate: float = 3.6161
    apical_ih_cap: float = 0.65
    max_length_um: float | None = None
    # Apical Ca_LVAst step ("hot zone", both bounds strict): hot inside, hot * cold_fraction outside
    apical_ca_lvast_hot: float = 0.141954 * 1.6
    apical_ca_lvast_cold_fraction: float = 0.01
    hot_zone_start_um: float = 685.0
    hot_zone_end_um: float = 885.0
    apical_last_segment_uses_far_end: bool = True
    density_decimals: int | None = 10
    ih_vshift: float = 0.0
    conductance_scale: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field at fault."""
        for region in REGIONS:
            for key, value in getattr(self, region).items():
                if key not in DENSITY_KEYS:
                    raise ConfigError(
                        f"BiophysicsConfig.{region}: unknown mechanism {key!r}; known: {list(DENSITY_KEYS)}")
                if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                    raise ConfigError(f"BiophysicsConfig.{region}.{key}: density must be >= 0, got {value!r}")
        for region, params in self.ca_dynamics.items():
            if region not in REGIONS:
                raise ConfigError(f"BiophysicsConfig.ca_dynamics: unknown region {region!r}; known: {list(REGIONS)}")
            for key in params:
                if key not in ("decay", "gamma", "depth", "minCai"):
                    raise ConfigError(f"BiophysicsConfig.ca_dynamics.{region}: unknown parameter {key!r}")
        for name, factor in self.conductance_scale.items():
            if name not in DENSITY_KEYS:
                raise ConfigError(
                    f"BiophysicsConfig.conductance_scale: unknown mechanism {name!r}; "
                    f"known: {list(DENSITY_KEYS)}")
            if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0):
                raise ConfigError(f"BiophysicsConfig.conductance_scale.{name}: factor must be >= 0, got {factor!r}")
        if not 0 < self.apical_ih_cap:
            raise ConfigError(f"BiophysicsConfig.apical_ih_cap: must be > 0, got {self.apical_ih_cap}")
        if self.max_length_um is not None and not self.max_length_um > 0:
            raise ConfigError(f"BiophysicsConfig.max_length_um: must be > 0, got {self.max_length_um}")
        if not self.hot_zone_start_um < self.hot_zone_end_um:
            raise ConfigError(
                f"BiophysicsConfig.hot_zone_start_um ({self.hot_zone_start_um}) must be < "
                f"hot_zone_end_um ({self.hot_zone_end_um})")
        if self.ra <= 0 or self.cm_soma_axon <= 0 or self.cm_dendrites <= 0:
            raise ConfigError("BiophysicsConfig: ra, cm_soma_axon and cm_dendrites must be > 0")

    def apical_ih(self, distance_um: float, max_length_um: float) -> float:
        """Apical gIhbar (S/cm2) at a path distance, before rounding."""
        x = min(distance_um / max_length_um, self.apical_ih_cap)
        return self.apical_ih_base * (self.apical_ih_offset + self.apical_ih_amp * math.exp(self.apical_ih_rate * x))

    def apical_ca_lvast(self, distance_um: float) -> float:
        """Apical gCa_LVAstbar (S/cm2) at a path distance: the step hot zone, bounds strict."""
        hot = self.hot_zone_start_um < distance_um < self.hot_zone_end_um
        return self.apical_ca_lvast_hot * (1.0 if hot else self.apical_ca_lvast_cold_fraction)

    def round_density(self, value: float) -> float:
        """Round as the published hoc did (text with ``density_decimals`` decimals)."""
        if self.density_decimals is None:
            return value
        return float(f"{value:.{self.density_decimals}f}")

    def scale(self, name: str) -> float:
        """The conductance_scale factor of a mechanism (1.0 if absent)."""
        return float(self.conductance_scale.get(name, 1.0))


def variant_conductance_scale(variant: str) -> dict[str, float]:
    """``conductance_scale`` of a published cell variant: nmda/ampa -> {}, ampa_sk -> {"SK_E2": 0.1}."""
    if variant not in _VARIANT_SCALE:
        raise ConfigError(f"cell variant {variant!r} is unknown; known: {list(VARIANTS)}")
    return dict(_VARIANT_SCALE[variant])


def _as_list(secs: Any) -> list:
    if secs is None:
        return []
    if hasattr(secs, "hname") and hasattr(secs, "nseg"):  # a single Section
        return [secs]
    return list(secs)


def _default_distance_fn(origin_seg: Any) -> DistanceFn:
    from neuron import h

    def distance(sec: Any, x: float) -> float:
        return float(h.distance(origin_seg, sec(x)))

    return distance


def apical_max_length(apical: Sequence, distance_fn: DistanceFn) -> float:
    """Longest path distance from the origin to the far end of an apical section (maxLength)."""
    if not apical:
        raise ConfigError("apply_biophysics: no apical sections, cannot compute maxLength for the Ih gradient")
    return max(distance_fn(sec, 1.0) for sec in apical)


def _segment_xs(sec: Any) -> list[float]:
    return [seg.x for seg in sec]


def _insert_uniform(secs: Iterable, densities: dict[str, float], cm: float, config: BiophysicsConfig) -> None:
    for sec in secs:
        sec.Ra = config.ra
        sec.cm = cm
        for name in densities:
            sec.insert(name)
        for seg in sec:
            for name, value in densities.items():
                if name == "pas":
                    seg.pas.g = value
                    seg.pas.e = config.e_pas
                else:
                    setattr(getattr(seg, name), f"g{name}bar", value)


def _insert_ca_dynamics(secs: Iterable, params: dict[str, float] | None) -> None:
    if params is None:
        return
    for sec in secs:
        sec.insert("CaDynamics_E2")
        for seg in sec:
            for key, value in params.items():
                setattr(seg.CaDynamics_E2, key, value)


def _apical_distributions(apical: Sequence, config: BiophysicsConfig, distance_fn: DistanceFn,
                          max_length: float) -> dict[str, int]:
    n_hot = 0
    n_seg = 0
    for sec in apical:
        sec.insert("Ih")
        sec.insert("Ca_LVAst")
        xs = _segment_xs(sec)
        for i, seg in enumerate(sec):
            last = i == len(xs) - 1
            x_eval = 1.0 if (last and config.apical_last_segment_uses_far_end) else xs[i]
            d = distance_fn(sec, x_eval)
            seg.Ih.gIhbar = config.round_density(config.apical_ih(d, max_length))
            ca = config.round_density(config.apical_ca_lvast(d))
            seg.Ca_LVAst.gCa_LVAstbar = ca
            n_hot += int(config.hot_zone_start_um < d < config.hot_zone_end_um)
            n_seg += 1
    return {"n_apical_segments": n_seg, "n_ca_hot_zone_segments": n_hot}


def _set_reversals_and_shift(secs: Iterable, config: BiophysicsConfig) -> None:
    from neuron import h

    for sec in secs:
        if h.ismembrane("k_ion", sec=sec):
            sec.ek = config.ek
        if h.ismembrane("na_ion", sec=sec):
            sec.ena = config.ena
        if h.ismembrane("Ih", sec=sec):
            for seg in sec:
                seg.Ih.vshift = config.ih_vshift


def _apply_scale(secs: Iterable, config: BiophysicsConfig) -> None:
    from neuron import h

    for name, factor in config.conductance_scale.items():
        if factor == 1.0:
            continue
        for sec in secs:
            if not h.ismembrane(name, sec=sec):
                continue
            for seg in sec:
                if name == "pas":
                    seg.pas.g = seg.pas.g * factor
                else:
                    mech = getattr(seg, name)
                    attr = f"g{name}bar"
                    setattr(mech, attr, getattr(mech, attr) * factor)


def apply_biophysics(soma: Any, axon: Any = None, basal: Any = None, apical: Any = None,
                     config: BiophysicsConfig | None = None,
                     distance_fn: DistanceFn | None = None) -> dict[str, Any]:
    """Insert the Hay 5b mechanisms on NEURON sections and set every density.

    ``soma`` is the soma Section (or a list whose first element is the soma); ``axon``, ``basal``
    and ``apical`` are lists of Sections. An object with ``soma``/``axon``/``basal``/``apical``
    attributes may be passed as the first argument instead, optionally followed by the config
    (``apply_biophysics(cell_sections, config)``). ``distance_fn(sec, x)`` returns the path distance
    in um used by the apical rules; default ``h.distance(soma(0.5), sec(x))``. Loads the
    mechanisms (:func:`neuroemu.cells.mechanisms.load_mechanisms`) and sets ``h.celsius``.

    Returns a summary dict: ``max_length_um``, ``n_apical_segments``, ``n_ca_hot_zone_segments``.
    """
    if isinstance(axon, BiophysicsConfig) and config is None:
        config, axon = axon, None
    if hasattr(soma, "soma") and hasattr(soma, "apical"):
        cell = soma
        soma, axon, basal, apical = cell.soma, getattr(cell, "axon", None), getattr(cell, "basal", None), cell.apical
    config = config if config is not None else BiophysicsConfig()
    config.validate()
    somas, axon, basal, apical = _as_list(soma), _as_list(axon), _as_list(basal), _as_list(apical)
    if not somas:
        raise ConfigError("apply_biophysics: no soma section given")

    from neuron import h

    from neuroemu.cells.mechanisms import load_mechanisms

    load_mechanisms()
    h.celsius = config.celsius
    if distance_fn is None:
        distance_fn = _default_distance_fn(somas[0](0.5))

    _insert_uniform(axon, config.axon, config.cm_soma_axon, config)
    _insert_uniform(somas, config.soma, config.cm_soma_axon, config)
    _insert_uniform(basal, config.basal, config.cm_dendrites, config)
    _insert_uniform(apical, config.apical, config.cm_dendrites, config)
    for region, secs in (("axon", axon), ("soma", somas), ("basal", basal), ("apical", apical)):
        _insert_ca_dynamics(secs, config.ca_dynamics.get(region))

    summary: dict[str, Any] = {"max_length_um": None, "n_apical_segments": 0, "n_ca_hot_zone_segments": 0}
    if apical:
        max_length = config.max_length_um or apical_max_length(apical, distance_fn)
        summary["max_length_um"] = max_length
        summary.update(_apical_distributions(apical, config, distance_fn, max_length))

    every = axon + somas + basal + apical
    _set_reversals_and_shift(every, config)
    _apply_scale(every, config)
    return summary


__all__ = [
    "BiophysicsConfig", "CHANNELS", "DENSITY_KEYS", "REGIONS", "VARIANTS", "apical_max_length",
    "apply_biophysics", "variant_conductance_scale",
]
