: DualExpSyn -- deterministic dual-exponential conductance synapse, written for neuroemu from
: reference-system.md section 4. Used for AMPA-only excitation (tau 0.3/3 ms, 0.4 nS, 0 mV; the
: defaults) and for GABA_A inhibition (tau 0.2/8 ms, 1 nS, -80 mV; set by neuroemu.cells.synapses).
:   g = gmax * (B - A),  A decays with tau_r, B with tau_d
:   an event of weight w adds w * factor to A and B, factor = 1 / (exp(-tp/tau_d) - exp(-tp/tau_r)),
:   tp = tau_r tau_d / (tau_d - tau_r) ln(tau_d / tau_r)   (requires tau_r < tau_d)
:   so one event gives a conductance peak of w * gmax at time tp;  i = g (v - e)
: Every received event is transmitted; stochastic release and the t = 0 silent-synapse effect are
: applied by neuroemu's simulation stage in Python, so this mechanism contains no randomness.

NEURON {
    THREADSAFE
    POINT_PROCESS DualExpSyn
    RANGE tau_r, tau_d, gmax, e
    RANGE i, g, factor
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau_r = 0.3 (ms)
    tau_d = 3.0 (ms)
    gmax = 0.0004 (uS)
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor (1)
}

STATE {
    A (1)
    B (1)
}

INITIAL {
    LOCAL tp
    tp = (tau_r * tau_d) / (tau_d - tau_r) * log(tau_d / tau_r)
    factor = 1 / (exp(-tp / tau_d) - exp(-tp / tau_r))
    A = 0
    B = 0
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    : di/dv = g: NEURON computes the current once per step instead of twice
    CONDUCTANCE g
    g = gmax * (B - A)
    i = g * (v - e)
}

DERIVATIVE states {
    A' = -A / tau_r
    B' = -B / tau_d
}

NET_RECEIVE (weight) {
    A = A + weight * factor
    B = B + weight * factor
}
