: SKv3_1 -- fast non-inactivating Kv3-like K+ current (Hay et al. 2011 kinetics), written for
: neuroemu from the equations of reference-system.md section 3.
:   i = g * m * (v - ek),  g = gSKv3_1bar
:   m_inf = 1 / (1 + exp((v - 18.7) / (-9.7)))
:   tau_m = 4 / (1 + exp((v + 46.56) / (-44.14)))   (no temperature factor)
: The gate starts at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_SKv3_1 = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gSKv3_1 so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX SKv3_1
    USEION k READ ek WRITE ik
    RANGE gSKv3_1bar, gSKv3_1, ik
    RANGE mInf, mTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gSKv3_1bar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gSKv3_1 (S/cm2)
    mInf
    mTau (ms)
}

STATE {
    m
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    CONDUCTANCE gSKv3_1 USEION k
    gSKv3_1 = gSKv3_1bar * m
    ik = gSKv3_1 * (v - ek)
}

INITIAL {
    rates(v)
    m = mInf
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
}

PROCEDURE rates(vm (mV)) {
    : rates(v) is tabulated: evaluated once on a 0.05-mV grid (odd multiples of 0.025 mV, never a
    : removable 0/0 point), then interpolated linearly; usetable_SKv3_1 = 0 evaluates it directly
    TABLE mInf, mTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    mInf = 1 / (1 + exp((vm - 18.7) / (-9.7)))
    mTau = 4 / (1 + exp((vm + 46.56) / (-44.14)))
    UNITSON
}
