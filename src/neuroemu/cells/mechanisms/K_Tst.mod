: K_Tst -- fast inactivating (transient) K+ current of the axon (Hay et al. 2011 kinetics),
: written for neuroemu from the equations of reference-system.md section 3.
:   i = g * m^4 * h * (v - ek),  g = gK_Tstbar
:   with u = v + 10 mV:
:   m_inf = 1 / (1 + exp(-u/19))        tau_m = (0.34 + 0.92 exp(-((u+71)/59)^2)) / qt
:   h_inf = 1 / (1 + exp((u+66)/10))    tau_h = (8 + 49 exp(-((u+73)/23)^2)) / qt
:   qt = 2.3^((34-21)/10).  Gates start at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_K_Tst = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gK_Tst so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX K_Tst
    USEION k READ ek WRITE ik
    RANGE gK_Tstbar, gK_Tst, ik
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gK_Tstbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gK_Tst (S/cm2)
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
    CONDUCTANCE gK_Tst USEION k
    gK_Tst = gK_Tstbar * m * m * m * m * h
    ik = gK_Tst * (v - ek)
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
    LOCAL qt, u
    : rates(v) is tabulated: evaluated once on a 0.05-mV grid (odd multiples of 0.025 mV, never a
    : removable 0/0 point), then interpolated linearly; usetable_K_Tst = 0 evaluates it directly
    TABLE mInf, mTau, hInf, hTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    u = vm + 10
    mInf = 1 / (1 + exp(-(u + 0) / 19))
    mTau = (0.34 + 0.92 * exp(-((u + 71) / 59)^2)) / qt
    hInf = 1 / (1 + exp((u + 66) / 10))
    hTau = (8 + 49 * exp(-((u + 73) / 23)^2)) / qt
    UNITSON
}
