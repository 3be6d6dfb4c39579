: Nap_Et2 -- persistent Na+ current of the axon (Hay et al. 2011 kinetics), written for neuroemu
: from the equations of reference-system.md section 3.
:   i = g * m^3 * h * (v - ena),  g = gNap_Et2bar
:   m_inf = 1 / (1 + exp(-(v+52.6)/4.6))
:   tau_m = 6 / (am + bm) / qt with NaTa_t's am, bm (0/0 point at v = -38)
:   h_inf = 1 / (1 + exp((v+48.8)/10))
:   ah = -2.88e-6 (v+17) / (1 - exp((v+17)/4.63))   bh = 6.94e-6 (v+64.4) / (1 - exp(-(v+64.4)/2.63))
:   tau_h = 1 / (ah + bh) / qt,  qt = 2.3^((34-21)/10)
: Removable 0/0 points: v is shifted by +1e-4 mV when it equals -38 (before m), -17 or -64.4
: (before h) exactly; the shifted value is used for the rest of the evaluation.
: Gates start at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_Nap_Et2 = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gNap_Et2 so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX Nap_Et2
    USEION na READ ena WRITE ina
    RANGE gNap_Et2bar, gNap_Et2, ina
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gNap_Et2bar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    gNap_Et2 (S/cm2)
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
    CONDUCTANCE gNap_Et2 USEION na
    gNap_Et2 = gNap_Et2bar * m * m * m * h
    ina = gNap_Et2 * (v - ena)
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
    : removable 0/0 point), then interpolated linearly; usetable_Nap_Et2 = 0 evaluates it directly
    TABLE mInf, mTau, hInf, hTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    u = vm
    if (u == -38) {
        u = u + 0.0001
    }
    mInf = 1 / (1 + exp(-(u + 52.6) / 4.6))
    am = 0.182 * (u + 38) / (1 - exp(-(u + 38) / 6))
    bm = 0.124 * (-u - 38) / (1 - exp(-(-u - 38) / 6))
    mTau = 6 * (1 / (am + bm)) / qt
    if (u == -17) {
        u = u + 0.0001
    }
    if (u == -64.4) {
        u = u + 0.0001
    }
    hInf = 1 / (1 + exp((u + 48.8) / 10))
    ah = -2.88e-6 * (u + 17) / (1 - exp((u + 17) / 4.63))
    bh = 6.94e-6 * (u + 64.4) / (1 - exp(-(u + 64.4) / 2.63))
    hTau = (1 / (ah + bh)) / qt
    UNITSON
}
