: NaTs2_t -- transient Na+ current of soma and apical dendrites (Hay et al. 2011 kinetics), written for neuroemu
: from the equations of reference-system.md section 3 (NaTa_t shifted by +6 mV).
:   i = g * m^3 * h * (v - ena),  g = gNaTs2_tbar
:   am = 0.182 (v+32) / (1 - exp(-(v+32)/6))     bm = 0.124 (-v-32) / (1 - exp(-(-v-32)/6))
:   ah = -0.015 (v+60) / (1 - exp((v+60)/6))     bh = -0.015 (-v-60) / (1 - exp((-v-60)/6))
:   x_inf = a/(a+b), tau_x = 1/(a+b)/qt with qt = 2.3^((34-21)/10)
: Removable 0/0 points: v is shifted by +1e-4 mV when it equals -32 (before m) or -60 (before h)
: exactly; the shifted value is used for the rest of the evaluation. Gates start at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_NaTs2_t = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gNaTs2_t so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX NaTs2_t
    USEION na READ ena WRITE ina
    RANGE gNaTs2_tbar, gNaTs2_t, ina
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gNaTs2_tbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    gNaTs2_t (S/cm2)
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
    CONDUCTANCE gNaTs2_t USEION na
    gNaTs2_t = gNaTs2_tbar * m * m * m * h
    ina = gNaTs2_t * (v - ena)
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
    : removable 0/0 point), then interpolated linearly; usetable_NaTs2_t = 0 evaluates it directly
    TABLE mInf, mTau, hInf, hTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    u = vm
    if (u == -32) {
        u = u + 0.0001
    }
    am = 0.182 * (u + 32) / (1 - exp(-(u + 32) / 6))
    bm = 0.124 * (-u - 32) / (1 - exp(-(-u - 32) / 6))
    mInf = am / (am + bm)
    mTau = (1 / (am + bm)) / qt
    if (u == -60) {
        u = u + 0.0001
    }
    ah = -0.015 * (u + 60) / (1 - exp((u + 60) / 6))
    bh = -0.015 * (-u - 60) / (1 - exp((-u - 60) / 6))
    hInf = ah / (ah + bh)
    hTau = (1 / (ah + bh)) / qt
    UNITSON
}
