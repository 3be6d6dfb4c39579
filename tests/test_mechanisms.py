"""Tests of the NMODL mechanisms (kinetics against the published equations, docs/reference.md section 3, synapses) and the compile cache."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from neuroemu.cells import mechanisms as mech
from neuroemu.cells.mechanisms import build_mechanisms, load_mechanisms, mechanism_names
from neuroemu.errors import MechanismError

QT = 2.3 ** ((34 - 21) / 10)


# ---------------------------------------------------------------- analytic kinetics (reference section 3)
def _shift(v: float, *singular: float) -> float:
    for s in singular:
        if v == s:
            v = v + 1e-4
    return v


def _ab(a: float, b: float, q: float = 1.0) -> tuple[float, float]:
    return a / (a + b), 1.0 / (a + b) / q


def _na_m(v: float, half: float) -> tuple[float, float, float]:
    am = 0.182 * (v + half) / (1 - math.exp(-(v + half) / 6))
    bm = 0.124 * (-v - half) / (1 - math.exp(-(-v - half) / 6))
    return am, bm, 1.0


def analytic(name: str, v: float) -> dict[str, tuple[float, float]]:
    """{gate: (x_inf, tau_ms)} from the published equations (docs/reference.md section 3), written independently of the mods."""
    if name in ("NaTa_t", "NaTs2_t"):
        hm, hh = (38, 66) if name == "NaTa_t" else (32, 60)
        u = _shift(v, -hm)
        am, bm, _ = _na_m(u, hm)
        u = _shift(u, -hh)
        ah = -0.015 * (u + hh) / (1 - math.exp((u + hh) / 6))
        bh = -0.015 * (-u - hh) / (1 - math.exp((-u - hh) / 6))
        return {"m": _ab(am, bm, QT), "h": _ab(ah, bh, QT)}
    if name == "Nap_Et2":
        u = _shift(v, -38)
        am, bm, _ = _na_m(u, 38)
        m = (1 / (1 + math.exp(-(u + 52.6) / 4.6)), 6 / (am + bm) / QT)
        u = _shift(_shift(u, -17), -64.4)
        ah = -2.88e-6 * (u + 17) / (1 - math.exp((u + 17) / 4.63))
        bh = 6.94e-6 * (u + 64.4) / (1 - math.exp(-(u + 64.4) / 2.63))
        return {"m": m, "h": (1 / (1 + math.exp((u + 48.8) / 10)), 1 / (ah + bh) / QT)}
    if name == "K_Tst":
        u = v + 10
        return {"m": (1 / (1 + math.exp(-u / 19)), (0.34 + 0.92 * math.exp(-(((u + 71) / 59) ** 2))) / QT),
                "h": (1 / (1 + math.exp((u + 66) / 10)), (8 + 49 * math.exp(-(((u + 73) / 23) ** 2))) / QT)}
    if name == "K_Pst":
        u = v + 10
        tm = (1.25 + 175.03 * math.exp(0.026 * u)) if u < -50 else (1.25 + 13 * math.exp(-0.026 * u))
        th = 360 + (1010 + 24 * (u + 55)) * math.exp(-(((u + 75) / 48) ** 2))
        return {"m": (1 / (1 + math.exp(-(u + 1) / 12)), tm / QT),
                "h": (1 / (1 + math.exp((u + 54) / 11)), th / QT)}
    if name == "SKv3_1":
        return {"m": (1 / (1 + math.exp((v - 18.7) / -9.7)), 4 / (1 + math.exp((v + 46.56) / -44.14)))}
    if name == "Im":
        a, b = 3.3e-3 * math.exp(0.1 * (v + 35)), 3.3e-3 * math.exp(-0.1 * (v + 35))
        return {"m": _ab(a, b, QT)}
    if name == "Ih":
        u = _shift(v, -154.9)
        a = 6.43e-3 * (u + 154.9) / (math.exp((u + 154.9) / 11.9) - 1)
        b = 0.193 * math.exp(u / 33.1)
        return {"m": _ab(a, b)}
    if name == "Ca_HVA":
        u = _shift(v, -27)
        am = 0.055 * (-27 - u) / (math.exp((-27 - u) / 3.8) - 1)
        bm = 0.94 * math.exp((-75 - u) / 17)
        ah = 4.57e-4 * math.exp((-13 - u) / 50)
        bh = 0.0065 / (math.exp((-u - 15) / 28) + 1)
        return {"m": _ab(am, bm), "h": _ab(ah, bh)}
    if name == "Ca_LVAst":
        u = v + 10
        return {"m": (1 / (1 + math.exp(-(u + 30) / 6)), (5 + 20 / (1 + math.exp((u + 25) / 5))) / QT),
                "h": (1 / (1 + math.exp((u + 80) / 6.4)), (20 + 50 / (1 + math.exp((u + 40) / 7))) / QT)}
    raise KeyError(name)


VOLTAGE_GATED = ("NaTa_t", "NaTs2_t", "Nap_Et2", "K_Tst", "K_Pst", "SKv3_1", "Im", "Ih", "Ca_HVA", "Ca_LVAst")
# ordinary voltages plus every removable 0/0 point of the published equations (the +1e-4 mV shift must be applied)
VOLTAGES = (-154.9, -120.0, -90.0, -76.0, -66.0, -64.4, -60.0, -55.5, -45.0, -38.0, -32.0, -27.0, -17.0,
            -5.0, 0.0, 20.0, 40.0)


@pytest.fixture(scope="module")
def h():
    """NEURON with the mechanisms loaded and their lookup tables OFF: the exact checks below compare
    the direct evaluation with the published equations at 1e-9 (the tables are checked in ``test_tables_*``)."""
    load_mechanisms()
    from neuron import h as hoc

    hoc.load_file("stdrun.hoc")
    hoc.CVode().active(0)  # fixed step and plain memory layout, whatever an earlier CoreNEURON run left behind
    hoc.CVode().cache_efficient(0)
    hoc.secondorder = 0
    mech.set_use_tables(False)
    yield hoc
    if mech.tables_loaded():  # the direct-evaluation build (loaded first by another module) has none
        mech.set_use_tables(True)


def _compartment(h, mechs):
    sec = h.Section(name="compartment")
    sec.L = sec.diam = 10.0
    for name in mechs:
        sec.insert(name)
    return sec


def test_mechanism_names_cover_the_spec():
    names = mechanism_names()
    for name in VOLTAGE_GATED + ("SK_E2", "CaDynamics_E2", "AmpaNmdaSyn", "DualExpSyn"):
        assert name in names
    for path in mech.mod_files():
        text = path.read_text()
        assert "THREADSAFE" in text and "VERBATIM" not in text and "POINTER" not in text, path.name


def test_steady_state_gates_match_spec(h):
    sec = _compartment(h, VOLTAGE_GATED)
    try:
        seg = sec(0.5)
        for v in VOLTAGES:
            h.finitialize(v)
            assert seg.v == v
            for name in VOLTAGE_GATED:
                m = getattr(seg, name)
                for gate, (x_inf, tau) in analytic(name, v).items():
                    state = getattr(m, gate)
                    assert state == pytest.approx(x_inf, rel=1e-9, abs=1e-15), (name, gate, v)
                    tau_mod = getattr(m, f"{gate}Tau")
                    assert tau_mod == pytest.approx(tau, rel=1e-9), (name, gate, v)
                    assert math.isfinite(state) and math.isfinite(tau_mod)
    finally:
        h.delete_section(sec=sec)


def _gate_values(h, seg, names, v):
    h.finitialize(v)
    return {(name, gate): (getattr(getattr(seg, name), gate), getattr(getattr(seg, name), f"{gate}Tau"))
            for name in names for gate in analytic(name, v)}


def test_tables_match_direct_evaluation(h):
    """With tables on, x_inf and tau stay within 1e-4 (relative) of the direct evaluation on a fine sweep."""
    assert set(mech.table_mechanisms()) == set(VOLTAGE_GATED) | {"SK_E2"}
    sec = _compartment(h, VOLTAGE_GATED)
    # the tables span -150..100 mV (the cell stays within about -90..+50 mV); beyond, the end values are used
    sweep = sorted(set(np.round(np.arange(-149.9, 99.9, 0.0731), 4).tolist()) | {v for v in VOLTAGES if v > -150})
    try:
        seg = sec(0.5)
        exact = {v: _gate_values(h, seg, VOLTAGE_GATED, v) for v in sweep}
        mech.set_use_tables(True)
        worst = 0.0
        for v in sweep:
            for key, (x_tab, tau_tab) in _gate_values(h, seg, VOLTAGE_GATED, v).items():
                x, tau = exact[v][key]
                assert x_tab == pytest.approx(x, rel=1e-4, abs=1e-12), (key, v)
                assert tau_tab == pytest.approx(tau, rel=1e-4), (key, v)
                worst = max(worst, abs(x_tab - x) / max(abs(x), 1e-12), abs(tau_tab / tau - 1))
        assert worst > 0  # the tables really were used
    finally:
        mech.set_use_tables(False)
        h.delete_section(sec=sec)


def test_sk_e2_table_matches_direct_evaluation(h):
    sec = _compartment(h, ("SK_E2", "CaDynamics_E2"))  # CaDynamics_E2 writes cai, so finitialize sets cai0
    cai = np.concatenate([np.geomspace(1e-4, 9.9e-3, 157), [2e-2]])  # CaDynamics_E2 keeps cai >= minCai 1e-4
    try:
        seg = sec(0.5)
        values = {}
        for use in (False, True):
            mech.set_use_tables(use)
            for c in cai:
                h.cai0_ca_ion = float(c)
                h.finitialize(-76)
                values[use, float(c)] = seg.SK_E2.z
        for c in cai:
            exact = 1 / (1 + (0.00043 / c) ** 4.8)
            assert values[False, float(c)] == pytest.approx(exact, rel=1e-12)
            assert values[True, float(c)] == pytest.approx(exact, rel=1e-4, abs=1e-6), c
    finally:
        mech.set_use_tables(False)
        h.cai0_ca_ion = 5e-5
        h.delete_section(sec=sec)


def test_sk_e2_and_calcium_initialisation(h):
    sec = _compartment(h, ("SK_E2", "CaDynamics_E2", "Ca_HVA"))
    try:
        h.celsius = 6.3
        h.finitialize(-76)
        seg = sec(0.5)
        # no INITIAL in CaDynamics_E2: cai stays at NEURON's cai0 = 5e-5 mM
        assert seg.cai == pytest.approx(5e-5, rel=1e-12)
        assert seg.SK_E2.z == pytest.approx(1 / (1 + (0.00043 / 5e-5) ** 4.8), rel=1e-9)
        r, f = 8.314462618, 96485.33212
        eca = 1e3 * r * (273.15 + 6.3) / (2 * f) * math.log(2.0 / 5e-5)
        assert seg.eca == pytest.approx(eca, abs=0.05)
        assert 119 < seg.eca < 128
        # below 1e-7 mM the mod adds 1e-7 before computing z_inf
        h.cai0_ca_ion = 5e-8
        h.finitialize(-76)
        assert seg.SK_E2.z == pytest.approx(1 / (1 + (0.00043 / 1.5e-7) ** 4.8), rel=1e-9)
    finally:
        h.cai0_ca_ion = 5e-5
        h.delete_section(sec=sec)


def test_cadynamics_relaxes_to_mincai(h):
    sec = _compartment(h, ("CaDynamics_E2",))
    try:
        seg = sec(0.5)
        seg.CaDynamics_E2.decay = 20.0
        h.dt = 0.025
        h.finitialize(-76)
        h.continuerun(40.0)
        expected = 1e-4 + (5e-5 - 1e-4) * math.exp(-40.0 / 20.0)
        assert seg.cai == pytest.approx(expected, rel=1e-4)
    finally:
        h.delete_section(sec=sec)


@pytest.mark.parametrize("name,gate,v_step", [("Im", "m", -20.0), ("Ca_LVAst", "h", -20.0), ("Ih", "m", -110.0)])
def test_gate_relaxes_with_analytic_tau(h, name, gate, v_step):
    sec = _compartment(h, (name,))
    clamp = h.SEClamp(sec(0.5))
    clamp.rs = 1e-4
    clamp.dur1, clamp.amp1 = 2.0, -76.0
    clamp.dur2, clamp.amp2 = 1e3, v_step
    t, x = h.Vector(), h.Vector()
    t.record(h._ref_t)
    x.record(getattr(sec(0.5), f"_ref_{gate}_{name}"))
    try:
        h.dt = 0.005
        h.finitialize(-76.0)
        h.continuerun(2.0 + 30.0)
        t_arr, x_arr = np.array(t), np.array(x)
        x0 = analytic(name, -76.0)[gate][0]
        x_inf, tau = analytic(name, v_step)[gate]
        after = t_arr > 2.0 + 0.5
        pred = x_inf + (x0 - x_inf) * np.exp(-(t_arr[after] - 2.0) / tau)
        err = np.max(np.abs(x_arr[after] - pred)) / abs(x0 - x_inf)
        assert err < 0.01, (name, gate, err)
        assert abs(x0 - x_inf) > 0.01  # the step really moves the gate
    finally:
        clamp = None
        h.delete_section(sec=sec)


# ---------------------------------------------------------------- synapses (reference section 4)
def _peak(tr, td):
    return tr * td / (td - tr) * math.log(td / tr)


def _run_synapse(h, syn, refs, v_hold, t_event=1.0, t_stop=None, dt=0.0025):
    sec = syn.get_segment().sec
    clamp = h.SEClamp(sec(0.5))
    clamp.rs = 1e-4
    clamp.dur1, clamp.amp1 = 1e9, v_hold
    nc = h.NetCon(None, syn)
    nc.weight[0] = 1.0
    fih = h.FInitializeHandler(lambda: nc.event(t_event))
    t = h.Vector().record(h._ref_t)
    recs = [h.Vector().record(r) for r in refs]
    v = h.Vector().record(sec(0.5)._ref_v)
    h.dt = dt
    h.finitialize(v_hold)
    h.continuerun(t_stop)
    out = np.array(t), [np.array(r) for r in recs], np.array(v)
    del fih, nc, clamp
    return out


def test_dual_exp_synapse_peaks_at_gmax(h):
    sec = _compartment(h, ("pas",))
    try:
        for tr, td, gmax, e in ((0.3, 3.0, 0.0004, 0.0), (0.2, 8.0, 0.001, -80.0)):
            syn = h.DualExpSyn(sec(0.5))
            syn.tau_r, syn.tau_d, syn.gmax, syn.e = tr, td, gmax, e
            t, (g, i), v = _run_synapse(h, syn, [syn._ref_g, syn._ref_i], -60.0, t_stop=1.0 + 4 * td)
            k = int(np.argmax(g))
            assert g[k] == pytest.approx(gmax, rel=0.01)
            assert t[k] - 1.0 == pytest.approx(_peak(tr, td), abs=0.01)
            assert i[k] == pytest.approx(g[k] * (v[k] - e), rel=1e-3)
            assert g[t < 1.0].max() == 0.0
            del syn
    finally:
        h.delete_section(sec=sec)


def test_ampa_nmda_synapse_peaks_and_mg_block(h):
    sec = _compartment(h, ("pas",))
    try:
        syn = h.AmpaNmdaSyn(sec(0.5))
        assert syn.gmax_AMPA == pytest.approx(0.0004) and syn.gmax_NMDA == pytest.approx(0.0004)
        t, (ga, gn, blk), v = _run_synapse(h, syn, [syn._ref_g_AMPA, syn._ref_g_NMDA, syn._ref_mgblock],
                                           -40.0, t_stop=60.0, dt=0.005)
        expected_block = 1 / (1 + math.exp(-0.08 * v[-1]) * 1.0 / 3.57)
        assert blk[-1] == pytest.approx(expected_block, rel=1e-6)
        assert blk[-1] == pytest.approx(0.127, abs=0.002)  # reference 4: 0.127 at -40 mV
        ka = int(np.argmax(ga))
        assert ga[ka] == pytest.approx(0.0004, rel=0.01)
        assert t[ka] - 1.0 == pytest.approx(0.7675, abs=0.01)
        unblocked = gn / blk
        kn = int(np.argmax(unblocked))
        assert unblocked[kn] == pytest.approx(0.0004, rel=0.01)
        assert t[kn] - 1.0 == pytest.approx(7.320, abs=0.02)
        # di/dv given to NEURON (CONDUCTANCE didv) = the derivative of the current, Mg block included
        def current(vv):
            return ga[-1] * (vv - 0.0) + unblocked[-1] / (1 + math.exp(-0.08 * vv) / 3.57) * (vv - 0.0)
        numeric = (current(v[-1] + 1e-4) - current(v[-1] - 1e-4)) / 2e-4
        assert syn.didv == pytest.approx(numeric, rel=1e-6)
        assert syn.didv < 0 < ga[-1] + gn[-1]  # unblocking with depolarisation: negative slope at -40 mV
        assert syn.factor_AMPA == pytest.approx(1.4351, abs=1e-4)
        assert syn.factor_NMDA == pytest.approx(1.1429, abs=1e-4)
        del syn
    finally:
        h.delete_section(sec=sec)


def test_every_event_is_transmitted(h):
    sec = _compartment(h, ("pas",))
    try:
        syn = h.DualExpSyn(sec(0.5))
        syn.tau_r, syn.tau_d = 0.2, 1.0
        nc = h.NetCon(None, syn)
        nc.weight[0] = 1.0
        times = [1.0, 5.0, 9.0, 13.0, 17.0]
        fih = h.FInitializeHandler(lambda: [nc.event(tt) for tt in times])
        g = h.Vector().record(syn._ref_g)
        h.dt = 0.0025
        h.finitialize(-70)
        h.continuerun(20.0)
        g = np.array(g)
        peaks = [i for i in range(1, len(g) - 1) if g[i] > g[i - 1] and g[i] >= g[i + 1] and g[i] > 1e-5]
        assert len(peaks) == len(times)
        del fih, nc, syn
    finally:
        h.delete_section(sec=sec)


# ---------------------------------------------------------------- compile cache
def test_second_load_reuses_the_build():
    first = load_mechanisms()
    stamp = (first / "build.json").stat().st_mtime_ns
    second = load_mechanisms()
    assert (first / "build.json").stat().st_mtime_ns == stamp  # nothing compiled or rewritten again
    assert first == second and first.is_dir()
    assert (first / "build.json").is_file()
    assert Path(os.getcwd()) not in first.parents  # never built in the working directory
    assert not list(Path(os.getcwd()).glob("x86_64"))


def test_cache_key_depends_on_contents_and_flag(tmp_path):
    src = mech.MOD_DIR / "DualExpSyn.mod"
    copy = tmp_path / "DualExpSyn.mod"
    copy.write_text(src.read_text())
    k1 = mech.cache_key(False, [copy])
    assert k1 == mech.cache_key(False, [src])
    assert k1 != mech.cache_key(True, [copy])
    copy.write_text(src.read_text() + "\n: changed\n")
    assert mech.cache_key(False, [copy]) != k1


_WORKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import neuron
    from neuron import h
    from neuroemu.cells import mechanisms as m
    path = m.build_mechanisms(paths=[Path(sys.argv[1])])
    neuron.load_mechanisms(str(path), warn_if_already_loaded=False)
    print(json.dumps({"path": str(path), "compiled": m.last_build_compiled, "loaded": hasattr(h, "DualExpSyn")}))
""")


def test_concurrent_build_compiles_once(tmp_path):
    env = dict(os.environ, NEUROEMU_CACHE=str(tmp_path / "cache"), NEURON_MODULE_OPTIONS="-nogui")
    mod = mech.MOD_DIR / "DualExpSyn.mod"
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(mod)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["path"] == results[1]["path"]
    assert sorted(r["compiled"] for r in results) == [False, True]
    assert all(r["loaded"] for r in results)
    builds = [p for p in (tmp_path / "cache" / "mechanisms").iterdir() if p.is_dir()]
    assert len(builds) == 1 and builds[0].name == Path(results[0]["path"]).name  # no temp dirs left
    assert not (tmp_path / "x86_64").exists()


def test_missing_compiler_raises_mechanism_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-gcc"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    root = tmp_path / "cache"
    with pytest.raises(MechanismError) as info:
        build_mechanisms(paths=[mech.MOD_DIR / "DualExpSyn.mod"], root=root)
    msg = str(info.value)
    assert "compiler" in msg and "gcc" in msg and "no-such-g++" in msg
    leftovers = [p for p in (root / "mechanisms").iterdir() if p.is_dir()]
    assert leftovers == []


def test_missing_nrnivmodl_raises_mechanism_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROEMU_NRNIVMODL", str(tmp_path / "nrnivmodl"))
    with pytest.raises(MechanismError, match="NEUROEMU_NRNIVMODL"):
        build_mechanisms(paths=[mech.MOD_DIR / "DualExpSyn.mod"], root=tmp_path / "cache")


_CORENEURON_CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    from neuron import h, coreneuron
    from neuroemu.cells.mechanisms import load_mechanisms
    load_mechanisms(coreneuron=True)
    h.load_file("stdrun.hoc")
    s = h.Section(name="soma"); s.L = s.diam = 20
    for m in ("pas", "NaTs2_t", "SKv3_1", "SK_E2", "Ca_HVA", "Ca_LVAst", "CaDynamics_E2", "Ih", "Im"):
        s.insert(m)
    s.gNaTs2_tbar_NaTs2_t = 1.0; s.gSKv3_1bar_SKv3_1 = 0.3; s.ena = 50; s.ek = -85
    syn = h.AmpaNmdaSyn(s(0.5)); syn.gmax_AMPA = syn.gmax_NMDA = 0.05
    nc = h.NetCon(None, syn); nc.weight[0] = 1
    fih = h.FInitializeHandler(lambda: nc.event(5.0))
    v = h.Vector().record(s(0.5)._ref_v)
    h.cvode.cache_efficient(1)
    pc = h.ParallelContext(); pc.set_maxstep(10)
    out = {}
    for flag in (False, True):
        coreneuron.enable = flag
        h.finitialize(-76); pc.psolve(40.0)
        out[str(flag)] = np.array(v).tolist()
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_coreneuron_build_matches_neuron(tmp_path):
    env = dict(os.environ, NEURON_MODULE_OPTIONS="-nogui")
    proc = subprocess.run([sys.executable, "-c", _CORENEURON_CHECK], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    a, b = np.array(out["False"]), np.array(out["True"])
    assert a.max() > 0  # the synapse made the compartment spike
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_coreneuron_builds_get_vectorising_flags(monkeypatch):
    monkeypatch.setattr(mech, "_cpu_flags", lambda: {"avx2", "fma", "sse2"})
    monkeypatch.setattr(mech.platform, "machine", lambda: "x86_64")
    flags = mech.coreneuron_compile_flags()
    assert flags[-2:] == ["-mavx2", "-mfma"] and "-D__FAST_MATH__" in flags
    assert "-ffast-math" not in flags  # it would drop the NaN checks of the table lookups
    cmd = mech._nrnivmodl_command(Path("nrnivmodl"), True)
    assert cmd[-3:] == ["-coreneuron", "-incflags", " ".join(flags)]
    assert "-incflags" not in mech._nrnivmodl_command(Path("nrnivmodl"), False)
    key = mech.cache_key(True)
    monkeypatch.setattr(mech, "_cpu_flags", lambda: {"sse2"})
    assert "-mavx2" not in mech.coreneuron_compile_flags()
    assert mech.cache_key(True) != key  # a build made for other CPU flags is never reused
    assert mech.cache_key(False) == mech.cache_key(False, mech.mod_files())


_SIMULATOR_ENGINES = textwrap.dedent("""
    import json
    import numpy as np
    from neuroemu.cells.config import CellConfig
    from neuroemu.inputs.spikes import InputSpikes
    from neuroemu.simulation import make_simulator
    from neuroemu.simulation.solver import SolverConfig
    sim = make_simulator(CellConfig(), SolverConfig())  # first to load mechanisms: the CoreNEURON build
    rng = np.random.default_rng(3)
    n, T = sim.n_exc, 300
    exc = np.stack([rng.integers(0, n, 6000), rng.integers(0, T, 6000)], 1)
    inh = np.stack([rng.integers(0, n, 2000), rng.integers(0, T, 2000)], 1)
    inputs = InputSpikes(exc[np.argsort(exc[:, 1])].astype(np.int32), inh[np.argsort(inh[:, 1])].astype(np.int32))
    out = {}
    for name, solver in (("core", None), ("classic", SolverConfig(coreneuron=False))):
        if solver is not None:
            sim.solver = solver
        res = sim.run(inputs, T, seed=0)
        out[name] = {"engine": res.config["engine"], "soma": res.soma_v_1ms.tolist(),
                     "spikes": res.spike_times_ms.tolist()}
    from neuroemu.errors import SimulationError
    sim.solver = SolverConfig()
    sim.cell.sections.soma.ena = float("nan")
    try:
        sim.run(inputs, T, seed=0)
    except SimulationError as exc:
        out["nan_error"] = str(exc)
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_simulator_coreneuron_matches_neuron(tmp_path):
    """The default solver runs in CoreNEURON when it can, with NEURON's results (compiles the build once)."""
    env = dict(os.environ, NEURON_MODULE_OPTIONS="-nogui")
    proc = subprocess.run([sys.executable, "-c", _SIMULATOR_ENGINES], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["core"]["engine"] == "coreneuron" and out["classic"]["engine"] == "neuron"
    a, b = np.array(out["core"]["soma"]), np.array(out["classic"]["soma"])
    assert a.max() - a.min() > 5  # the inputs moved the soma
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert out["core"]["spikes"] == out["classic"]["spikes"]
    assert "NaN" in out["nan_error"]  # a NaN voltage is an error in CoreNEURON too, not a crash
