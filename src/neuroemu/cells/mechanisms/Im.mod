: Im -- muscarinic (M-type) K+ current (Hay et al. 2011 kinetics), written for neuroemu from the
: equations of reference-system.md section 3.
:   i = g * m * (v - ek),  g = gImbar
:   am = 3.3e-3 exp(0.1 (v+35))    bm = 3.3e-3 exp(-0.1 (v+35))
:   m_inf = am / (am + bm),  tau_m = 1 / (am + bm) / qt,  qt = 2.3^((34-21)/10)
: The gate starts at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_Im = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gIm so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX Im
    USEION k READ ek WRITE ik
    RANGE gImbar, gIm, ik
    RANGE mInf, mTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gImbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gIm (S/cm2)
    mInf
    mTau (ms)
}

STATE {
    m
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    CONDUCTANCE gIm USEION k
    gIm = gImbar * m
    ik = gIm * (v - ek)
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
    LOCAL qt, am, bm
    : rates(v) is tabulated: evaluated once on a 0.05-mV grid (odd multiples of 0.025 mV, never a
    : removable 0/0 point), then interpolated linearly; usetable_Im = 0 evaluates it directly
    TABLE mInf, mTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    am = 3.3e-3 * exp(0.1 * (vm + 35))
    bm = 3.3e-3 * exp(-0.1 * (vm + 35))
    mInf = am / (am + bm)
    mTau = (1 / (am + bm)) / qt
    UNITSON
}
