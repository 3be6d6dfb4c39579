: SK_E2 -- small-conductance Ca2+-activated K+ current (Hay et al. 2011 kinetics), written for
: neuroemu from the equations of reference-system.md section 3.
:   i = g * z * (v - ek),  g = gSK_E2bar
:   z_inf = 1 / (1 + (0.00043 / cai)^4.8)   (cai in mM; 1e-7 mM is added when cai < 1e-7 mM)
:   tau_z = 1 ms
: The gate starts at steady state for the initial cai.
: Speed (see neuroemu/cells/mechanisms/__init__.py): z_inf is a lookup table over cai (linear
: interpolation, error < 1e-4 relative for cai >= 1e-4 mM, the minimum CaDynamics_E2 relaxes to;
: h.usetable_SK_E2 = 0 restores direct evaluation, which costs a pow() per segment and step), and
: the CONDUCTANCE statement gives NEURON di/dv = gSK_E2 so the current is computed once per step.

NEURON {
    THREADSAFE
    SUFFIX SK_E2
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gSK_E2bar, gSK_E2, ik
    RANGE zInf, zTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
    (mM) = (milli/liter)
}

PARAMETER {
    gSK_E2bar = 0.000001 (S/cm2)
    zTau = 1 (ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    cai (mM)
    ik (mA/cm2)
    gSK_E2 (S/cm2)
    zInf
}

STATE {
    z
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    CONDUCTANCE gSK_E2 USEION k
    gSK_E2 = gSK_E2bar * z
    ik = gSK_E2 * (v - ek)
}

INITIAL {
    rates(cai)
    z = zInf
}

DERIVATIVE states {
    rates(cai)
    z' = (zInf - z) / zTau
}

PROCEDURE rates(ca (mM)) {
    LOCAL c
    : tabulated over cai: evaluated once on a 5e-7-mM grid from 0 to 0.01 mM (above: the end value,
    : within 3e-7 of 1), then interpolated linearly; usetable_SK_E2 = 0 evaluates it directly
    TABLE zInf FROM 0 TO 0.01 WITH 20000
    UNITSOFF
    c = ca
    if (c < 1e-7) {
        c = c + 1e-7
    }
    zInf = 1 / (1 + (0.00043 / c)^4.8)
    UNITSON
}
