: Ca_HVA -- high-voltage-activated Ca2+ current (Hay et al. 2011 kinetics), written for neuroemu
: from the equations of reference-system.md section 3.
:   i = g * m^2 * h * (v - eca),  g = gCa_HVAbar; eca is read from the ca ion (Nernst, follows cai)
:   am = 0.055 (-27 - v) / (exp((-27 - v)/3.8) - 1)    bm = 0.94 exp((-75 - v)/17)
:   ah = 4.57e-4 exp((-13 - v)/50)                     bh = 0.0065 / (exp((-v - 15)/28) + 1)
:   x_inf = a / (a + b),  tau_x = 1 / (a + b)   (no temperature factor)
: Removable 0/0 point: v is shifted by +1e-4 mV when it equals -27 exactly.
: Gates start at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_Ca_HVA = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gCa_HVA so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX Ca_HVA
    USEION ca READ eca WRITE ica
    RANGE gCa_HVAbar, gCa_HVA, ica
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gCa_HVAbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    gCa_HVA (S/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}

STATE {
    m
    h
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    CONDUCTANCE gCa_HVA USEION ca
    gCa_HVA = gCa_HVAbar * m * m * h
    ica = gCa_HVA * (v - eca)
}

INITIAL {
    rates(v)
    m = mInf
    h = hInf
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
    h' = (hInf - h) / hTau
}

PROCEDURE rates(vm (mV)) {
    LOCAL u, am, bm, ah, bh
    : rates(v) is tabulated: evaluated once on a 0.05-mV grid (odd multiples of 0.025 mV, never a
    : removable 0/0 point), then interpolated linearly; usetable_Ca_HVA = 0 evaluates it directly
    TABLE mInf, mTau, hInf, hTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    u = vm
    if (u == -27) {
        u = u + 0.0001
    }
    am = 0.055 * (-27 - u) / (exp((-27 - u) / 3.8) - 1)
    bm = 0.94 * exp((-75 - u) / 17)
    mInf = am / (am + bm)
    mTau = 1 / (am + bm)
    ah = 4.57e-4 * exp((-13 - u) / 50)
    bh = 0.0065 / (exp((-u - 15) / 28) + 1)
    hInf = ah / (ah + bh)
    hTau = 1 / (ah + bh)
    UNITSON
}
