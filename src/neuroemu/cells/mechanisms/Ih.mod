: Ih -- hyperpolarisation-activated cation current (Hay et al. 2011 kinetics), written for
: neuroemu from the equations of reference-system.md section 3.
:   i = g * m * (v - ehcn),  g = gIhbar, ehcn = -45 mV (a non-specific current, no ion)
:   am = 6.43e-3 (v - vh) / (exp((v - vh)/11.9) - 1),  vh = -154.9 + vshift
:   bm = 0.193 exp((v - vshift)/33.1)
:   m_inf = am / (am + bm),  tau_m = 1 / (am + bm)   (no temperature factor)
: Removable 0/0 point: v is shifted by +1e-4 mV when it equals vh exactly.
: The gate starts at steady state. vshift = 0 in the published model.
: Speed (see neuroemu/cells/mechanisms/__init__.py): the rates are a lookup table over v - vshift
: (linear interpolation, relative error < 1e-4; h.usetable_Ih = 0 restores direct evaluation), and
: the CONDUCTANCE statement gives NEURON di/dv = gIh so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX Ih
    NONSPECIFIC_CURRENT ihcn
    RANGE gIhbar, gIh, ihcn, ehcn, vshift
    RANGE mInf, mTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gIhbar = 0.00001 (S/cm2)
    ehcn = -45.0 (mV)
    vshift = 0 (mV)
}

ASSIGNED {
    v (mV)
    ihcn (mA/cm2)
    gIh (S/cm2)
    mInf
    mTau (ms)
}

STATE {
    m
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    CONDUCTANCE gIh
    gIh = gIhbar * m
    ihcn = gIh * (v - ehcn)
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
    : both rates depend on v only through w = v - vshift, so the table is over w (and stays valid
    : whatever vshift each segment has)
    shifted_rates(vm - vshift)
}

PROCEDURE shifted_rates(w (mV)) {
    LOCAL am, bm
    : tabulated: evaluated once on a 0.05-mV grid (odd multiples of 0.025 mV, never the removable
    : 0/0 point), then interpolated linearly; usetable_Ih = 0 evaluates it directly
    TABLE mInf, mTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    if (w == -154.9) {
        w = w + 0.0001
    }
    am = 6.43e-3 * (w + 154.9) / (exp((w + 154.9) / 11.9) - 1)
    bm = 0.193 * exp(w / 33.1)
    mInf = am / (am + bm)
    mTau = 1 / (am + bm)
    UNITSON
}
