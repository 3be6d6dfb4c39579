: NaTa_t -- transient Na+ current of the axon (Hay et al. 2011 kinetics), written for neuroemu
: from the equations of reference-system.md section 3.
:   i = g * m^3 * h * (v - ena),  g = gNaTa_tbar
:   am = 0.182 (v+38) / (1 - exp(-(v+38)/6))     bm = 0.124 (-v-38) / (1 - exp(-(-v-38)/6))
:   ah = -0.015 (v+66) / (1 - exp((v+66)/6))     bh = -0.015 (-v-66) / (1 - exp((-v-66)/6))
:   x_inf = a/(a+b), tau_x = 1/(a+b)/qt with qt = 2.3^((34-21)/10)
: Removable 0/0 points: v is shifted by +1e-4 mV when it equals -38 (before m) or -66 (before h)
: exactly; the shifted value is used for the rest of the evaluation. Gates start at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_NaTa_t = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gNaTa_t so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX NaTa_t
    USEION na READ ena WRITE ina
    RANGE gNaTa_tbar, gNaTa_t, ina
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gNaTa_tbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    gNaTa_t (S/cm2)
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
    CONDUCTANCE gNaTa_t USEION na
    gNaTa_t = gNaTa_tbar * m * m * m * h
    ina = gNaTa_t * (v - ena)
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
    LOCAL qt, u, am, bm, ah, bh
    : rates(v) is tabulated: evaluated once on a 0.05-mV grid (odd multiples of 0.025 mV, never a
    : removable 0/0 point), then interpolated linearly; usetable_NaTa_t = 0 evaluates it directly
    TABLE mInf, mTau, hInf, hTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    u = vm
    if (u == -38) {
        u = u + 0.0001
    }
    am = 0.182 * (u + 38) / (1 - exp(-(u + 38) / 6))
    bm = 0.124 * (-u - 38) / (1 - exp(-(-u - 38) / 6))
    mInf = am / (am + bm)
    mTau = (1 / (am + bm)) / qt
    if (u == -66) {
        u = u + 0.0001
    }
    ah = -0.015 * (u + 66) / (1 - exp((u + 66) / 6))
    bh = -0.015 * (-u - 66) / (1 - exp((-u - 66) / 6))
    hInf = ah / (ah + bh)
    hTau = (1 / (ah + bh)) / qt
    UNITSON
}
