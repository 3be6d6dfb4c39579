: CaDynamics_E2 -- intracellular Ca2+ buffering and pump (Hay et al. 2011), written for neuroemu
: from the equation of reference-system.md section 3:
:   dcai/dt = -10000 * ica * gamma / (2 F depth) - (cai - minCai) / decay
: (ica in mA/cm2, depth in um, F in C/mol, so the first term is in mM/ms).
: Faithfulness note: like the published model this mechanism has NO INITIAL block, so cai is not
: assigned here at finitialize; it starts at NEURON's ion default cai0_ca_ion (5e-5 mM) and relaxes
: towards minCai (1e-4 mM) with time constant decay. eca, read by the Ca channels, follows cai
: through NEURON's Nernst equation (at h.celsius, 6.3 degC in the published model).
: Default gamma/decay are the somatic values of L5PCbiophys5b; biophysics sets them per region.

NEURON {
    THREADSAFE
    SUFFIX CaDynamics_E2
    USEION ca READ ica WRITE cai
    RANGE decay, gamma, minCai, depth
}

UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
    FARADAY = (faraday) (coulombs)
    (molar) = (1/liter)
    (mM) = (millimolar)
    (um) = (micron)
}

PARAMETER {
    gamma = 0.000509
    decay = 294.679571 (ms)
    depth = 0.1 (um)
    minCai = 1e-4 (mM)
}

ASSIGNED {
    ica (mA/cm2)
}

STATE {
    cai (mM)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
}

DERIVATIVE states {
    cai' = -(10000) * (ica * gamma / (2 * FARADAY * depth)) - (cai - minCai) / decay
}
