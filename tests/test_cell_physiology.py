"""The assembled L5 pyramidal cell shows the behaviours the Hay et al. (2011) model was built for.

Each behaviour is checked on the built-in cell and on the reconstruction ``cell1.asc`` (skipped
when the shared data are absent), with physiological bounds rather than fitted values:

- somatic step currents: an f-I curve with a rheobase of a few tenths of a nA and rates of 5-40 Hz
  around 1 nA, increasing with the current;
- a somatic action potential backpropagates into the apical trunk and attenuates with distance;
- BAC firing: a somatic spike paired with a distal EPSC-shaped current triggers a dendritic Ca
  spike and a burst, while neither stimulus alone gives a Ca spike;
- clustered input on a thin basal branch gives an NMDA plateau that the ``ampa`` variant lacks.

The protocols are :mod:`neuroemu.cells.protocols`; measured values are listed in the README.
"""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

from neuroemu.cells import protocols as P  # noqa: E402
from neuroemu.cells.config import CellConfig  # noqa: E402
from neuroemu.errors import ConfigError, MorphologyError  # noqa: E402

from conftest import SHARED_DATA as DATA  # noqa: E402
CELL1 = DATA / "cell1.asc"
MORPHOLOGIES = {"default": None, "cell1": CELL1}


def _morphology(name: str) -> str | None:
    path = MORPHOLOGIES[name]
    if path is not None and not path.is_file():
        pytest.skip(f"shared data file {path} not available")
    return None if path is None else str(path)


def _build(name: str, variant: str = "nmda"):
    from neuroemu.cells.l5pc import L5PC

    return L5PC(CellConfig(morphology=_morphology(name), variant=variant))


def _drop(cell) -> None:
    cell.sections.delete()
    gc.collect()


@pytest.fixture(scope="module", params=list(MORPHOLOGIES))
def cell_name(request) -> str:
    """Which morphology: the built-in cell or cell1.asc."""
    return request.param


@pytest.fixture(scope="module")
def cell(cell_name):
    """One NMDA-variant cell per morphology, shared by the tests of this module."""
    c = _build(cell_name)
    yield c
    _drop(c)


# ------------------------------------------------------------------------------------------- f-I
def test_fi_curve(cell):
    """300-ms somatic steps (CVode): silent at 0.3 nA, firing from a rheobase of at most 1 nA, rates
    that grow with the current and stay in the physiological range of L5b cells."""
    fi = P.fi_curve(cell, [0.3, 0.6, 1.0, 1.5], duration_ms=300.0, method="cvode")
    assert fi.spike_counts[0] == 0, f"fires at 0.3 nA: {fi}"
    assert fi.rheobase_nA is not None and 0.3 < fi.rheobase_nA <= 1.0, fi
    assert np.all(np.diff(fi.rates_hz) >= 0), f"rate falls with current: {fi.rates_hz}"
    assert fi.rate_at(1.5) > fi.rate_at(0.6)
    assert 5.0 <= fi.rate_at(1.0) <= 40.0, fi.rates_hz
    assert 8.0 <= fi.rate_at(1.5) <= 60.0, fi.rates_hz
    # regular firing, not a burst at onset followed by silence (depolarisation block)
    assert fi.spike_counts[-1] >= 3 and fi.first_spike_latency_ms[-1] < 100.0


# ------------------------------------------------------------------------------------------- bAP
def test_bap_backpropagates_and_attenuates(cell):
    bap = P.bap_attenuation(cell, method="fixed")
    d, a = bap.distances_um, bap.amplitudes_mV
    assert bap.n_somatic_spikes >= 1 and bap.soma_amplitude_mV > 80.0
    assert d[0] == 0.0 and d[-1] == pytest.approx(cell.nexus.distance_um, abs=1.0)
    # an active spike invades the proximal trunk with a delay ...
    i150 = int(np.argmin(np.abs(d - 150.0)))
    assert a[i150] > 30.0 and bap.peak_times_ms[i150] > 0.2
    # ... and attenuates along it: never growing by more than 2 mV from one site to the next,
    # at most half the somatic amplitude at 600 um, yet still a clear depolarisation there
    assert np.all(np.diff(a) < 2.0), f"bAP amplitude grows along the trunk: {np.round(a, 1)}"
    assert bap.attenuation(600.0) >= 2.0, bap.attenuation(600.0)
    assert bap.amplitude_at(600.0) > 5.0


def test_bap_fixed_step_and_cvode_agree(cell):
    fixed = P.bap_attenuation(cell, method="fixed", window_ms=15.0)
    cvode = P.bap_attenuation(cell, method="cvode", window_ms=15.0)
    assert cvode.soma_amplitude_mV == pytest.approx(fixed.soma_amplitude_mV, abs=3.0)
    assert cvode.amplitude_at(300.0) == pytest.approx(fixed.amplitude_at(300.0), abs=5.0)


# ------------------------------------------------------------------------------------------- BAC
def test_bac_firing(cell):
    """Larkum 1999 / Hay 2011: a somatic action potential, then 5 ms later an EPSC-shaped current
    (0.5/5 ms) at the nexus. The somatic pulse is brief (4 nA, 2 ms) so that it evokes a single
    spike; the EPSC peak (0.6 nA) sits between the pairing threshold (0.40-0.45 nA on cell1) and
    the threshold of a Ca spike by the EPSC alone (0.6-1.0 nA)."""
    r = P.bac_firing(cell, soma_amp_nA=4.0, soma_dur_ms=2.0, dend_amp_nA=0.6, method="fixed")
    s, d, c = r.soma_only, r.dend_only, r.combined
    assert r.site_distance_um == pytest.approx(cell.nexus.distance_um, abs=1.0)
    # the distal EPSC alone: a subthreshold dendritic EPSP, no spike anywhere
    assert d.n_somatic_spikes == 0 and not d.ca_spike and d.dend_peak_mV < -40.0, r.summary()
    # the somatic pulse alone: one spike, whose backpropagation stays well below Ca-spike threshold
    assert s.n_somatic_spikes == 1 and not s.ca_spike and s.dend_peak_mV < -30.0, r.summary()
    # both: a Ca spike (> -10 mV for >= 10 ms at the nexus, overshooting 0 mV) and a burst
    assert c.ca_spike and c.dend_peak_mV > 0.0 and c.ca_duration_ms >= 10.0, r.summary()
    assert c.n_somatic_spikes >= 2, r.summary()
    assert r.bac_firing


# ------------------------------------------------------------------------------------------- NMDA
def test_nmda_plateau_in_basal_branch(cell, cell_name):
    """30 activations within 5 ms at the middle of the thin basal branch with the highest input
    resistance: a plateau above -40 mV for >= 25 ms with NMDA, a brief EPSP with AMPA only."""
    branch = P.thin_basal_branch(cell)
    nmda = P.nmda_plateau(cell, branch=branch, n_synapses=30, window_ms=120.0)
    ampa_cell = _build(cell_name, variant="ampa")
    try:
        ampa = P.nmda_plateau(ampa_cell, branch=branch, n_synapses=30, window_ms=120.0)
    finally:
        _drop(ampa_cell)
    assert nmda.branch == ampa.branch
    assert nmda.plateau_ms >= 25.0, f"no NMDA plateau: {nmda}"
    assert ampa.plateau_ms < 20.0, f"AMPA-only input should not plateau: {ampa}"
    assert nmda.plateau_ms > 2.0 * ampa.plateau_ms
    # long after the input the NMDA branch is still depolarised, the AMPA one back near rest
    late = 20.0 + 40.0
    assert np.interp(late, nmda.t, nmda.dend_v) > np.interp(late, ampa.t, ampa.dend_v) + 10.0


# ------------------------------------------------------------------------------------------- plumbing
def test_protocol_arguments_are_checked(cell):
    with pytest.raises(ConfigError, match="amps_nA"):
        P.fi_curve(cell, [])
    with pytest.raises(ConfigError, match="method 'rk4'"):
        P.fi_curve(cell, [0.1], method="rk4")
    with pytest.raises(ConfigError, match=r"no basal section named 'dend\[99999\]'"):
        P.nmda_plateau(cell, branch="dend[99999]")
    with pytest.raises(ConfigError, match="branch index -1"):
        P.nmda_plateau(cell, branch=-1)
    with pytest.raises(ConfigError, match="tau_rise"):
        P.bac_firing(cell, tau_rise_ms=5.0, tau_decay_ms=1.0)


def test_spike_and_plateau_measures():
    t = np.arange(0.0, 10.0, 0.5)
    v = np.full_like(t, -70.0)
    v[4:7] = [-30.0, 10.0, -30.0]  # one spike, crossing -20 between t = 2.0 and 2.5
    v[12:18] = -5.0  # 2.5 ms above -10 (t = 6.0 .. 8.5)
    times = P.spike_times(t, v)
    assert len(times) == 2 and times[0] == pytest.approx(2.0 + 0.5 * 10.0 / 40.0)
    assert P.longest_time_above(t, v, -10.0) == pytest.approx(2.5)
    assert P.longest_time_above(t, v, 50.0) == 0.0


def test_missing_empty_or_malformed_morphology_raises(tmp_path):
    from neuroemu.cells.l5pc import L5PC

    with pytest.raises(MorphologyError, match="not found"):
        L5PC(CellConfig(morphology=str(tmp_path / "none.asc")))
    empty = tmp_path / "empty.swc"
    empty.write_text("")
    with pytest.raises(MorphologyError, match=f"{empty}: morphology file is empty"):
        L5PC(CellConfig(morphology=str(empty)))
    bad = tmp_path / "bad.swc"
    bad.write_text("1 1 0 0 0 5 -1\n2 3 0 -5 0 1 7\n")
    with pytest.raises(MorphologyError, match=f"{bad}: line 2"):
        L5PC(CellConfig(morphology=str(bad)))
    with pytest.raises(ConfigError, match="variant 'nmda2' is unknown"):
        CellConfig(variant="nmda2")
