: Ca_LVAst -- low-voltage-activated (T-type) Ca2+ current (Hay et al. 2011 kinetics), written
: for neuroemu from the equations of reference-system.md section 3.
:   i = g * m^2 * h * (v - eca),  g = gCa_LVAstbar; eca is read from the ca ion (Nernst, follows cai)
:   with u = v + 10 mV:
:   m_inf = 1 / (1 + exp(-(u+30)/6))      tau_m = (5 + 20 / (1 + exp((u+25)/5))) / qt
:   h_inf = 1 / (1 + exp((u+80)/6.4))     tau_h = (20 + 50 / (1 + exp((u+40)/7))) / qt
:   qt = 2.3^((34-21)/10).  Gates start at steady state.
: Speed (see neuroemu/cells/mechanisms/__init__.py): rates() is a lookup table over v (linear
: interpolation, relative error < 1e-4; h.usetable_Ca_LVAst = 0 restores direct evaluation), and the
: CONDUCTANCE statement gives NEURON di/dv = gCa_LVAst so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX Ca_LVAst
    USEION ca READ eca WRITE ica
    RANGE gCa_LVAstbar, gCa_LVAst, ica
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gCa_LVAstbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    gCa_LVAst (S/cm2)
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
    CONDUCTANCE gCa_LVAst USEION ca
    gCa_LVAst = gCa_LVAstbar * m * m * h
    ica = gCa_LVAst * (v - eca)
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
    : removable 0/0 point), then interpolated linearly; usetable_Ca_LVAst = 0 evaluates it directly
    TABLE mInf, mTau, hInf, hTau FROM -150.025 TO 99.975 WITH 5000
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    u = vm + 10
    mInf = 1 / (1 + exp(-(u + 30) / 6))
    mTau = (5 + 20 / (1 + exp((u + 25) / 5))) / qt
    hInf = 1 / (1 + exp((u + 80) / 6.4))
    hTau = (20 + 50 / (1 + exp((u + 40) / 7))) / qt
    UNITSON
}
