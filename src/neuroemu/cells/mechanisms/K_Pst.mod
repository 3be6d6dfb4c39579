: K_Pst -- slow inactivating (persistent) K+ current of the axon (Hay et al. 2011 kinetics),
: written for neuroemu from the equations of reference-system.md section 3.
:   i = g * m^2 * h * (v - ek),  g = gK_Pstbar
:   with u = v + 10 mV:
:   m_inf = 1 / (1 + exp(-(u+1)/12))
:   tau_m = (1.25 + 175.03 exp(0.026 u)) / qt  if u < -50,  else (1.25 + 13 exp(-0.026 u)) / qt
:   h_inf = 1 / (1 + exp((u+54)/11))
:   tau_h = (360 + (1010 + 24 (u+55)) exp(-((u+75)/48)^2)) / qt
:   qt = 2.3^((34-21)/10).  Gates start at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_K_Pst = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gK_Pst so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX K_Pst
    USEION k READ ek WRITE ik
    RANGE gK_Pstbar, gK_Pst, ik
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gK_Pstbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gK_Pst (S/cm2)
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
    CONDUCTANCE gK_Pst USEION k
    gK_Pst = gK_Pstbar * m * m * h
    ik = gK_Pst * (v - ek)
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
    : rates(v) is tabulated: evaluated once on a 0.05-mV grid (multiples of 0.05 mV, so a grid point
    : sits on the kink of mTau at v = -60 mV), then interpolated linearly; usetable_K_Pst = 0
    : evaluates it directly
    TABLE mInf, mTau, hInf, hTau FROM -150 TO 100 WITH 5000
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    u = vm + 10
    mInf = 1 / (1 + exp(-(u + 1) / 12))
    if (u < -50) {
        mTau = (1.25 + 175.03 * exp(0.026 * u)) / qt
    } else {
        mTau = (1.25 + 13 * exp(-0.026 * u)) / qt
    }
    hInf = 1 / (1 + exp((u + 54) / 11))
    hTau = (360 + (1010 + 24 * (u + 55)) * exp(-((u + 75) / 48)^2)) / qt
    UNITSON
}
