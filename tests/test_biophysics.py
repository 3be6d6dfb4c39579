"""Tests of the Hay 5b biophysics (densities, distance rules, variants) and synapse placement."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from neuroemu.cells.biophysics import BiophysicsConfig, apply_biophysics, variant_conductance_scale
from neuroemu.cells.mechanisms import load_mechanisms
from neuroemu.cells.synapses import (SynapseConfig, mg_block, peak_time, place_synapses,
                                     variant_excitatory_type)
from neuroemu.errors import ConfigError

# toy apical chain: apic0 0..400 um, apic1 400..690 um, apic2 690..1300 um (longest leaf), apic3 side branch
APICAL = (("apic0", 400.0, None), ("apic1", 290.0, "apic0"), ("apic2", 610.0, "apic1"), ("apic3", 100.0, "apic0"))
START = {"apic0": 0.0, "apic1": 400.0, "apic2": 690.0, "apic3": 400.0}
MAX_LENGTH = 1300.0


def _nseg(length: float) -> int:
    return 1 + 2 * int(length / 40)


@pytest.fixture(scope="module")
def h():
    load_mechanisms()
    from neuron import h as hoc

    hoc.load_file("stdrun.hoc")
    return hoc


@pytest.fixture
def toy(h):
    """soma + 2 axon stubs + 1 basal + apical chain of 1300 um; deleted after the test."""
    soma = h.Section(name="soma")
    soma.L = soma.diam = 20.0
    axon = [h.Section(name="axon0"), h.Section(name="axon1")]
    for a in axon:
        a.L, a.diam = 30.0, 1.0
    axon[0].connect(soma(0.5))
    axon[1].connect(axon[0](1))
    basal = [h.Section(name="dend0")]
    basal[0].L, basal[0].diam, basal[0].nseg = 200.0, 1.0, _nseg(200.0)
    basal[0].connect(soma(0.5))
    apical = {}
    for name, length, parent in APICAL:
        sec = h.Section(name=name)
        sec.L, sec.diam, sec.nseg = length, 2.0, _nseg(length)
        sec.connect(apical[parent](1) if parent else soma(0.5))
        apical[name] = sec
    cell = {"soma": soma, "axon": axon, "basal": basal, "apical": list(apical.values())}
    yield cell
    for sec in cell["apical"] + cell["basal"] + cell["axon"] + [soma]:
        h.delete_section(sec=sec)


def _expected_ih(d: float) -> float:
    x = min(d / MAX_LENGTH, 0.65)
    return float(f"{1e-4 * (-0.8696 + 2.0870 * math.exp(3.6161 * x)):.10f}")


def _expected_ca(d: float) -> float:
    return 0.2271264 if 685.0 < d < 885.0 else 0.002271264


def _rule_distance(sec, i: int) -> float:
    """The published rule (reference 2.3): segment centre, except the last segment of a section uses its far end."""
    x = 1.0 if i == sec.nseg - 1 else (i + 0.5) / sec.nseg
    return START[sec.name()] + sec.L * x


def test_apical_ih_gradient_and_hot_zone(toy):
    summary = apply_biophysics(toy["soma"], toy["axon"], toy["basal"], toy["apical"], BiophysicsConfig())
    assert summary["max_length_um"] == pytest.approx(MAX_LENGTH, abs=1e-9)
    n_hot = 0
    for sec in toy["apical"]:
        for i, seg in enumerate(sec):
            d = _rule_distance(sec, i)
            assert seg.Ih.gIhbar == pytest.approx(_expected_ih(d), abs=1e-16), (sec.name(), i)
            assert seg.Ca_LVAst.gCa_LVAstbar == pytest.approx(_expected_ca(d), abs=1e-16), (sec.name(), i)
            n_hot += _expected_ca(d) > 0.1
    assert summary["n_ca_hot_zone_segments"] == n_hot > 0
    apic0, apic1, apic2 = toy["apical"][:3]
    # known values: proximal end, far end of apic0 (last segment uses distance(1) = 400 um), plateau
    assert apic0(0.01).Ih.gIhbar == pytest.approx(_expected_ih(400.0 / 42), abs=1e-16)
    assert apic0(0.99).Ih.gIhbar == pytest.approx(_expected_ih(400.0), abs=1e-16)
    assert apic0(0.99).Ih.gIhbar > _expected_ih(400.0 * 41 / 42)
    assert apic2(0.99).Ih.gIhbar == pytest.approx(0.0021023962, abs=1e-16)  # plateau beyond 0.65 * 1300 um
    assert apic2(0.5).Ih.gIhbar == pytest.approx(0.0021023962, abs=1e-16)
    # last segment of apic1: centre 680.3 um (outside the zone) but far end 690 um -> hot (like apic[50])
    assert 400 + 290 * (14.5 / 15) < 685
    assert apic1(0.99).Ca_LVAst.gCa_LVAstbar == pytest.approx(0.2271264, abs=1e-16)
    assert apic1(0.9).Ca_LVAst.gCa_LVAstbar == pytest.approx(0.002271264, abs=1e-16)
    assert apic2(0.02).Ca_LVAst.gCa_LVAstbar == pytest.approx(0.2271264, abs=1e-16)  # 699.8 um
    assert apic2(0.5).Ca_LVAst.gCa_LVAstbar == pytest.approx(0.002271264, abs=1e-16)  # 995 um


def test_uniform_densities_passive_and_reversals(toy, h):
    cfg = BiophysicsConfig()
    apply_biophysics(toy["soma"], toy["axon"], toy["basal"], toy["apical"], cfg)
    soma, basal, apic = toy["soma"], toy["basal"][0], toy["apical"][1]
    axon = toy["axon"][0]
    assert h.celsius == 6.3
    for sec, cm, gpas in ((soma, 1, 3e-5), (axon, 1, 3e-5), (basal, 2, 6e-5), (apic, 2, 6e-5)):
        assert sec.Ra == 100 and sec(0.5).cm == cm
        assert sec(0.5).pas.g == gpas and sec(0.5).pas.e == -90
    assert soma(0.5).NaTs2_t.gNaTs2_tbar == 0.998912 and soma(0.5).Ih.gIhbar == pytest.approx(7.5e-5)
    assert axon(0.5).NaTa_t.gNaTa_tbar == 3.89618 and axon(0.5).Nap_Et2.gNap_Et2bar == 0.005834
    assert axon(0.5).Ih.gIhbar == pytest.approx(5e-5) and axon(0.5).K_Pst.gK_Pstbar == 0.188851
    assert apic(0.5).SKv3_1.gSKv3_1bar == 0.001808 and apic(0.5).Ca_HVA.gCa_HVAbar == 0.000701
    assert basal(0.5).Ih.gIhbar == pytest.approx(5e-5)
    assert not h.ismembrane("na_ion", sec=basal) and not h.ismembrane("CaDynamics_E2", sec=basal)
    assert not h.ismembrane("NaTa_t", sec=soma) and not h.ismembrane("NaTs2_t", sec=axon)
    assert soma(0.5).ek == -85 and soma(0.5).ena == 50 and apic(0.5).ek == -85
    assert soma(0.5).CaDynamics_E2.decay == 294.679571 and soma(0.5).CaDynamics_E2.gamma == 0.000509
    assert apic(0.5).CaDynamics_E2.decay == 35.725651 and axon(0.5).CaDynamics_E2.gamma == 0.000525
    assert apic(0.5).Ih.vshift == 0.0
    h.finitialize(cfg.v_init)
    assert soma(0.5).v == -76.0
    assert soma(0.5).cai == pytest.approx(5e-5)
    # eca (Nernst at 6.3 degC, cao 2 mM) ~119-128 mV, following cai
    assert 119.0 < soma(0.5).eca < 128.0 and soma(0.5).eca == pytest.approx(127.6, abs=0.1)


def test_resting_cell_is_stable(toy, h):
    apply_biophysics(toy["soma"], toy["axon"], toy["basal"], toy["apical"], BiophysicsConfig())
    h.dt = 0.025
    h.finitialize(-76.0)
    h.continuerun(200.0)
    v = toy["soma"](0.5).v
    assert math.isfinite(v) and -95 < v < -60  # no spontaneous firing, no blow-up
    cai = toy["soma"](0.5).cai
    assert 5e-5 < cai < 1.2e-4  # relaxing from cai0 towards minCai


def test_conductance_scale_and_variants(toy):
    cfg = BiophysicsConfig(conductance_scale=variant_conductance_scale("ampa_sk"))
    assert cfg.conductance_scale == {"SK_E2": 0.1}
    apply_biophysics(toy["soma"], toy["axon"], toy["basal"], toy["apical"], cfg)
    assert toy["soma"](0.5).SK_E2.gSK_E2bar == pytest.approx(0.009965, rel=1e-12)
    assert toy["axon"][0](0.5).SK_E2.gSK_E2bar == pytest.approx(4.7e-6, rel=1e-12)
    assert toy["apical"][2](0.5).SK_E2.gSK_E2bar == pytest.approx(2e-7, rel=1e-12)
    assert toy["soma"](0.5).NaTs2_t.gNaTs2_tbar == 0.998912  # others untouched
    assert variant_conductance_scale("nmda") == {} and variant_conductance_scale("ampa") == {}
    with pytest.raises(ConfigError, match="variant"):
        variant_conductance_scale("gaba")


def test_conductance_scale_applies_to_distributed_channels(toy):
    cfg = BiophysicsConfig(conductance_scale={"Ih": 2.0, "Ca_LVAst": 0.0})
    apply_biophysics(toy["soma"], toy["axon"], toy["basal"], toy["apical"], cfg)
    apic2 = toy["apical"][2]
    assert apic2(0.5).Ih.gIhbar == pytest.approx(2 * 0.0021023962, rel=1e-12)
    assert apic2(0.02).Ca_LVAst.gCa_LVAstbar == 0.0
    assert toy["basal"][0](0.5).Ih.gIhbar == pytest.approx(1e-4)


def test_config_validation_and_round_trip():
    with pytest.raises(ConfigError, match="conductance_scale.*NaT_wrong"):
        BiophysicsConfig(conductance_scale={"NaT_wrong": 0.5})
    with pytest.raises(ConfigError, match="SK_E2"):
        BiophysicsConfig(conductance_scale={"SK_E2": -1.0})
    with pytest.raises(ConfigError, match="soma"):
        BiophysicsConfig(soma={"Kv9": 1.0})
    with pytest.raises(ValueError):
        BiophysicsConfig.from_dict({"conductance_scale": {"bogus": 1.0}})
    cfg = BiophysicsConfig(conductance_scale={"SK_E2": 0.1}, max_length_um=1200.0)
    assert BiophysicsConfig.from_json(cfg.to_json()) == cfg
    assert BiophysicsConfig.from_yaml(cfg.to_yaml()) == cfg


def test_custom_distance_and_object_form(toy):
    class Cell:
        soma, axon, basal, apical = toy["soma"], toy["axon"], toy["basal"], toy["apical"]

    cfg = BiophysicsConfig(max_length_um=1000.0)
    apply_biophysics(Cell(), cfg, distance_fn=lambda sec, x: 700.0)
    for sec in toy["apical"]:
        for seg in sec:
            assert seg.Ca_LVAst.gCa_LVAstbar == pytest.approx(0.2271264, abs=1e-16)
            assert seg.Ih.gIhbar == pytest.approx(_expected_ih(700.0 * MAX_LENGTH / 1000.0), abs=1e-16)


# ---------------------------------------------------------------- synapses
def test_place_synapses(toy, h):
    segs = [seg for sec in toy["basal"] + toy["apical"] for seg in sec]
    exc, inh = place_synapses(segs, "ampa_nmda", SynapseConfig(gmax_scale={"nmda": 2.0}))
    assert len(exc) == len(inh) == len(segs)
    for seg, e, i in zip(segs, exc, inh):
        loc = e.get_segment()
        assert loc.sec == seg.sec and loc.x == seg.x and i.get_segment().x == seg.x
        assert e.hname().startswith("AmpaNmdaSyn") and i.hname().startswith("DualExpSyn")
    assert exc[0].gmax_AMPA == pytest.approx(0.0004) and exc[0].gmax_NMDA == pytest.approx(0.0008)
    assert exc[0].gamma_NMDA == 0.08 and exc[0].mg == 1.0 and exc[0].e == 0.0
    assert inh[0].gmax == pytest.approx(0.001) and inh[0].e == -80.0
    assert (inh[0].tau_r, inh[0].tau_d) == (0.2, 8.0)
    exc2, _ = place_synapses(segs[:3], "ampa")
    assert exc2[0].hname().startswith("DualExpSyn")
    assert (exc2[0].tau_r, exc2[0].tau_d, exc2[0].gmax, exc2[0].e) == (0.3, 3.0, pytest.approx(0.0004), 0.0)
    with pytest.raises(ConfigError, match="excitatory"):
        place_synapses(segs[:1], "nmda_only")
    del exc, inh, exc2


def test_synapse_config_helpers():
    assert peak_time(0.3, 3.0) == pytest.approx(0.7675, abs=1e-4)
    assert peak_time(2.0, 70.0) == pytest.approx(7.320, abs=1e-3)
    assert mg_block(-70.0) == pytest.approx(0.013, abs=5e-4)
    assert mg_block(0.0) == pytest.approx(0.78, abs=5e-3)
    assert variant_excitatory_type("nmda") == "ampa_nmda" and variant_excitatory_type("ampa_sk") == "ampa"
    with pytest.raises(ConfigError, match="gaba_a_tau"):
        SynapseConfig(gaba_a_tau_rise=9.0)
    with pytest.raises(ConfigError, match="gmax_scale"):
        SynapseConfig(gmax_scale={"gaba_b": 1.0})
    cfg = SynapseConfig(gmax_scale={"ampa": 0.5})
    assert SynapseConfig.from_json(cfg.to_json()) == cfg and cfg.gmax_us("ampa") == pytest.approx(0.0002)


# ---------------------------------------------------------------- the real morphology (reference 2.2-2.3)
def test_cell1_densities_match_published_table(h, shared_data, cell1_segments_csv):
    """All 639 Ih and 377 Ca_LVAst densities of cell1.asc equal the instantiated published values."""
    data = shared_data
    h.load_file("import3d.hoc")
    reader = h.Import3d_Neurolucida3()
    reader.quiet = 1
    reader.input(str(data / "cell1.asc"))
    h.Import3d_GUI(reader, 0).instantiate(None)
    soma, basal, apical = h.soma[0], list(h.dend), list(h.apic)
    for sec in list(h.axon):
        h.delete_section(sec=sec)
    axon = [h.Section(name="stub0"), h.Section(name="stub1")]
    for a in axon:
        a.L, a.diam = 30.0, 1.0
    axon[0].connect(soma(0.5))
    axon[1].connect(axon[0](1))
    for sec in [soma] + basal + apical:
        sec.nseg = 1 + 2 * int(sec.L / 40)
    try:
        summary = apply_biophysics(soma, axon, basal, apical, BiophysicsConfig())
        assert summary["max_length_um"] == pytest.approx(1300.534, abs=1e-3)
        assert summary["n_ca_hot_zone_segments"] == 29
        rows = list(csv.DictReader(open(data / "L5PC_cell1_segments.csv")))
        segs = [seg for sec in basal + apical for seg in sec]
        assert len(segs) == len(rows) == 639
        for seg, row in zip(segs, rows):
            # the table shows the instantiated values with 7 significant digits
            assert float(f"{seg.Ih.gIhbar:.7g}") == float(row["gIhbar_S_cm2"]), row["section"]
            if row["type"] == "apical":
                assert seg.Ca_LVAst.gCa_LVAstbar == pytest.approx(float(row["gCa_LVAstbar_S_cm2"]), abs=1e-16)
        assert np.isclose(h.distance(soma(0.5), h.apic[50](0.9)), 678.393, atol=1e-3)
    finally:
        for sec in axon + basal + apical + [soma]:
            h.delete_section(sec=sec)
