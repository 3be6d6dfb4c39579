: AmpaNmdaSyn -- deterministic AMPA + NMDA synapse, written for neuroemu from reference-system.md
: section 4. Both components are dual-exponential conductances normalised so that one event of
: weight w gives a conductance peak of w * gmax:
:   g_X = gmax_X * (B_X - A_X),  A_X decays with tau_r_X, B_X with tau_d_X
:   an event adds w * factor_X to A_X and B_X, factor_X = 1 / (exp(-tp/tau_d) - exp(-tp/tau_r)),
:   tp = tau_r tau_d / (tau_d - tau_r) ln(tau_d / tau_r)   (requires tau_r < tau_d)
:   i = g_AMPA (v - e) + g_NMDA mgblock(v) (v - e)
:   mgblock(v) = 1 / (1 + exp(-gamma_NMDA v) mg / mg_scale)   (Jahr & Stevens form)
: Every received event is transmitted to both components together (release probability 1 in the
: published model as built, section 4.1). Stochastic release and the silent-synapse effect of an
: event at t = 0 (section 4.2) are applied by neuroemu's simulation stage in Python, by not
: delivering the events concerned, so this mechanism contains no randomness.

NEURON {
    THREADSAFE
    POINT_PROCESS AmpaNmdaSyn
    RANGE tau_r_AMPA, tau_d_AMPA, tau_r_NMDA, tau_d_NMDA
    RANGE gmax_AMPA, gmax_NMDA, e, mg, mg_scale, gamma_NMDA
    RANGE i, i_AMPA, i_NMDA, g_AMPA, g_NMDA, mgblock
    RANGE factor_AMPA, factor_NMDA, didv
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau_r_AMPA = 0.3 (ms)
    tau_d_AMPA = 3.0 (ms)
    tau_r_NMDA = 2.0 (ms)
    tau_d_NMDA = 70.0 (ms)
    gmax_AMPA = 0.0004 (uS)
    gmax_NMDA = 0.0004 (uS)
    e = 0 (mV)
    mg = 1 (mM)
    mg_scale = 3.57 (mM)
    gamma_NMDA = 0.08 (/mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    i_AMPA (nA)
    i_NMDA (nA)
    g_AMPA (uS)
    g_NMDA (uS)
    mgblock (1)
    didv (uS)
    factor_AMPA (1)
    factor_NMDA (1)
}

STATE {
    A_AMPA (1)
    B_AMPA (1)
    A_NMDA (1)
    B_NMDA (1)
}

INITIAL {
    factor_AMPA = peak_factor(tau_r_AMPA, tau_d_AMPA)
    factor_NMDA = peak_factor(tau_r_NMDA, tau_d_NMDA)
    A_AMPA = 0
    B_AMPA = 0
    A_NMDA = 0
    B_NMDA = 0
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    : NEURON takes di/dv from didv (below) and computes the current once per step
    CONDUCTANCE didv
    mgblock = 1 / (1 + exp(-gamma_NMDA * v) * mg / mg_scale)
    g_AMPA = gmax_AMPA * (B_AMPA - A_AMPA)
    g_NMDA = gmax_NMDA * (B_NMDA - A_NMDA) * mgblock
    i_AMPA = g_AMPA * (v - e)
    i_NMDA = g_NMDA * (v - e)
    i = i_AMPA + i_NMDA
    : di/dv, including the voltage dependence of the Mg block (d mgblock/dv = gamma mgblock (1 - mgblock))
    didv = g_AMPA + g_NMDA + gmax_NMDA * (B_NMDA - A_NMDA) * (v - e) * gamma_NMDA * mgblock * (1 - mgblock)
}

DERIVATIVE states {
    A_AMPA' = -A_AMPA / tau_r_AMPA
    B_AMPA' = -B_AMPA / tau_d_AMPA
    A_NMDA' = -A_NMDA / tau_r_NMDA
    B_NMDA' = -B_NMDA / tau_d_NMDA
}

FUNCTION peak_factor(tr (ms), td (ms)) (1) {
    LOCAL tp
    tp = (tr * td) / (td - tr) * log(td / tr)
    peak_factor = 1 / (exp(-tp / td) - exp(-tp / tr))
}

NET_RECEIVE (weight) {
    A_AMPA = A_AMPA + weight * factor_AMPA
    B_AMPA = B_AMPA + weight * factor_AMPA
    A_NMDA = A_NMDA + weight * factor_NMDA
    B_NMDA = B_NMDA + weight * factor_NMDA
}
