"""The README's physiology table ("The cell behaves like the Hay model"), computed.

For each cell (the built-in synthetic cell, ``--morphology FILE``, or with ``--both`` the built-in
cell and ``../shared/data/cell1.asc``) this script runs the protocols of
:mod:`neuroemu.cells.protocols` -- the same ones, with the same parameters, that
``tests/test_cell_physiology.py`` checks against physiological bounds -- and prints the measured
values as a Markdown table with the README's rows:

- **resting potential** soma / nexus: ``steady_state_init`` (``finitialize(v_init)``, then
  backward-Euler steps of 1e9 ms until soma and nexus change by < 1e-4 mV per step); ``v`` at
  ``soma(0.5)`` and at the nexus segment.
- **rheobase, 2-s step**: ``rheobase(duration_ms=2000, lo_nA=0, hi_nA=2, tol_nA=0.001)``: bisection on
  somatic 2-s current steps (20 ms after rest) for the smallest amplitude evoking a spike (an
  upward crossing of -20 mV at the soma); the value printed is the smallest amplitude that fired,
  at most 0.001 nA above the largest that did not.
- **rate at 1.0 / 1.5 nA (2 s)**: ``fi_curve([1.0, 1.5], duration_ms=2000)``: spikes during the
  2-s step divided by 2 s (0.5 Hz resolution).
- **bAP amplitude** soma / 300 um / 600 um / nexus: ``bap_attenuation()`` with its defaults: a 4-nA,
  2-ms somatic pulse 10 ms after rest, a 40-ms window; the first action potential's peak minus the
  pre-pulse voltage at the soma and at every segment of the main apical trunk up to the nexus
  (peak searched until 5 ms after the somatic peak); 300 and 600 um are path distances from
  ``soma(0.5)``, linearly interpolated between trunk segments (``amplitude_at``).
- **BAC firing**: ``bac_firing(soma_amp_nA=4, soma_dur_ms=2, dend_amp_nA=0.6)`` as in the test: a
  4-nA, 2-ms somatic pulse alone; a double-exponential EPSC current (peak 0.6 nA, tau rise / decay
  0.5 / 5 ms) into the nexus segment alone; and both, the EPSC 5 ms after the pulse onset (onset
  10 ms, 60-ms window). Somatic spikes are counted; a Ca spike is the nexus above -10 mV for at
  least 10 ms, and its duration is the longest time above -10 mV.
- **basal NMDA plateau**: ``thin_basal_branch()`` (the terminal basal branch >= 60 um long with the
  largest input resistance at its middle), then ``nmda_plateau(branch, n_synapses=30,
  window_ms=120)``: 30 activations of the cell's own excitatory synapses on the segments within
  20 um of the branch middle (40-um cluster, round-robin), at 20 ms + U(0, 5) ms (seed 0); the
  plateau is the longest time the branch middle stays above -40 mV. Run on the ``nmda`` variant
  and, on the same branch, on the ``ampa`` variant (AMPA-only synapses).

Every protocol uses the fixed step: ``method="fixed"``, dt = 0.025 ms, backward Euler
(``secondorder = 0``, as ``steady_state_init`` leaves it), classic NEURON (no CoreNEURON), and starts
from the resting steady state.

Processes: each cell variant is built and measured in its own fresh Python process (the ``nmda``
cell runs every protocol in one process, as the tests share one cell per morphology; the ``ampa``
cell for the plateau runs in a second one), one process at a time, so no two cells are ever
instantiated (and integrated) together and each starts from a clean NEURON state.

    python benchmarks/cell_physiology.py                     # the built-in cell
    python benchmarks/cell_physiology.py --morphology ../shared/data/cell1.asc
    python benchmarks/cell_physiology.py --both --json physiology.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
CELL1 = REPO.parent / "shared" / "data" / "cell1.asc"

METHOD = "fixed"
DT_MS = 0.025
STEP_MS = 2000.0          # rheobase and f-I step duration
RHEOBASE = dict(lo_nA=0.0, hi_nA=2.0, tol_nA=0.001)
FI_AMPS_NA = (1.0, 1.5)
BAP_DISTANCES_UM = (300.0, 600.0)
BAC = dict(soma_amp_nA=4.0, soma_dur_ms=2.0, dend_amp_nA=0.6)
PLATEAU = dict(n_synapses=30, window_ms=120.0)


# --------------------------------------------------------------------------------------------
# Workers (one fresh process each)
# --------------------------------------------------------------------------------------------


def _build(morphology: str | None, variant: str):
    from neuroemu.cells.config import CellConfig
    from neuroemu.cells.l5pc import L5PC

    return L5PC(CellConfig(morphology=morphology, variant=variant))


def _timed(timings: dict, name: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[name] = round(time.perf_counter() - t0, 2)
    print(f"  {name}: {timings[name]:.1f} s", file=sys.stderr, flush=True)
    return out


def worker_nmda(morphology: str | None) -> dict:
    """Every protocol on the ``nmda`` variant of one cell, in this process."""
    from neuroemu.cells import protocols as P

    timings: dict[str, float] = {}
    cell = _timed(timings, "build", _build, morphology, "nmda")

    from neuron import h

    h.load_file("stdrun.hoc")  # steady_state_init sets h.steps_per_ms, defined by stdrun (_simulate loads it)
    P.steady_state_init(cell, METHOD, DT_MS)
    rest = {"soma_mV": float(cell.soma_segment.v), "nexus_mV": float(cell.nexus_segment.v)}

    rheo = _timed(timings, "rheobase", P.rheobase, cell, duration_ms=STEP_MS, method=METHOD, dt_ms=DT_MS,
                  **RHEOBASE)
    fi = _timed(timings, "fi_curve", P.fi_curve, cell, list(FI_AMPS_NA), duration_ms=STEP_MS, method=METHOD,
                dt_ms=DT_MS)
    bap = _timed(timings, "bap", P.bap_attenuation, cell, method=METHOD, dt_ms=DT_MS)
    bac = _timed(timings, "bac", P.bac_firing, cell, method=METHOD, dt_ms=DT_MS, **BAC)
    branch = _timed(timings, "thin_basal_branch", P.thin_basal_branch, cell)
    plat = _timed(timings, "nmda_plateau", P.nmda_plateau, cell, branch=branch, method=METHOD, dt_ms=DT_MS,
                  **PLATEAU)

    def trial(tr) -> dict:
        return {"spikes": int(tr.n_somatic_spikes), "ca_spike": bool(tr.ca_spike),
                "ca_duration_ms": float(tr.ca_duration_ms), "dend_peak_mV": float(tr.dend_peak_mV)}

    return {
        "morphology": morphology,
        "n_segments": int(cell.n_segments),
        "nexus": {"section": cell.nexus.section, "x": cell.nexus.x, "distance_um": cell.nexus.distance_um},
        "rest": rest,
        "rheobase_nA": rheo,
        "fi": {"amps_nA": fi.amps_nA.tolist(), "spike_counts": fi.spike_counts.tolist(),
               "rates_hz": fi.rates_hz.tolist(), "first_spike_latency_ms": fi.first_spike_latency_ms.tolist()},
        "bap": {"soma_mV": bap.soma_amplitude_mV,
                **{f"{d:g}um_mV": bap.amplitude_at(d) for d in BAP_DISTANCES_UM},
                "nexus_mV": bap.nexus_amplitude_mV, "nexus_distance_um": bap.nexus_distance_um,
                "n_somatic_spikes": bap.n_somatic_spikes,
                "attenuation_600um": bap.attenuation(600.0)},
        "bac": {"site": bac.site, "site_distance_um": bac.site_distance_um, "bac_firing": bool(bac.bac_firing),
                "soma_only": trial(bac.soma_only), "dend_only": trial(bac.dend_only),
                "combined": trial(bac.combined)},
        "plateau_nmda": {"branch": plat.branch, "branch_index": int(branch), "n_synapses": plat.n_synapses,
                         "n_sites": plat.n_sites, "plateau_ms": plat.plateau_ms, "peak_mV": plat.peak_mV,
                         "n_somatic_spikes": plat.n_somatic_spikes},
        "timings_s": timings,
    }


def worker_ampa(morphology: str | None, branch: str) -> dict:
    """The NMDA-plateau protocol on the ``ampa`` variant, on the branch the ``nmda`` cell used."""
    from neuroemu.cells import protocols as P

    timings: dict[str, float] = {}
    cell = _timed(timings, "build", _build, morphology, "ampa")
    plat = _timed(timings, "nmda_plateau", P.nmda_plateau, cell, branch=branch, method=METHOD, dt_ms=DT_MS,
                  **PLATEAU)
    return {"plateau_ampa": {"branch": plat.branch, "n_synapses": plat.n_synapses, "n_sites": plat.n_sites,
                             "plateau_ms": plat.plateau_ms, "peak_mV": plat.peak_mV,
                             "n_somatic_spikes": plat.n_somatic_spikes},
            "timings_s": timings}


def _run_worker(kind: str, morphology: str | None, out: Path, branch: str | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--worker-out", str(out)]
    if morphology:
        cmd += ["--morphology", morphology]
    if branch is not None:
        cmd += ["--branch", branch]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr (progress) passes through
    if proc.returncode != 0:
        sys.exit(f"{kind} worker for {morphology or 'the built-in cell'} failed (exit {proc.returncode})")
    return json.loads(out.read_text())


def measure_cell(morphology: str | None) -> dict:
    """Both workers for one cell, one after the other; the merged results."""
    label = morphology or "built-in cell"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{label}: nmda variant (all protocols)", file=sys.stderr, flush=True)
        res = _run_worker("nmda", morphology, Path(tmp) / "nmda.json")
        print(f"{label}: ampa variant (plateau on {res['plateau_nmda']['branch']})", file=sys.stderr, flush=True)
        ampa = _run_worker("ampa", morphology, Path(tmp) / "ampa.json", branch=res["plateau_nmda"]["branch"])
    if ampa["plateau_ampa"]["branch"] != res["plateau_nmda"]["branch"]:
        sys.exit(f"{label}: the ampa cell used branch {ampa['plateau_ampa']['branch']}, "
                 f"the nmda cell {res['plateau_nmda']['branch']}")
    res["plateau_ampa"] = ampa["plateau_ampa"]
    res["timings_s"] = {"nmda_process": res.pop("timings_s"), "ampa_process": ampa["timings_s"],
                        "total_wall": round(time.perf_counter() - t0, 1)}
    return res


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _f(x: float, nd: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _spikes(n: int) -> str:
    return f"{n} spike{'' if n == 1 else 's'}"


def _bac_trial(tr: dict, paired: bool) -> str:
    if paired:
        ca = f" + Ca spike {tr['ca_duration_ms']:.1f} ms" if tr["ca_spike"] else ", no Ca spike"
        return _spikes(tr["spikes"]) + ca
    ca = f"Ca spike {tr['ca_duration_ms']:.1f} ms" if tr["ca_spike"] else "no Ca spike"
    return f"{_spikes(tr['spikes'])}, {ca}"


def column_title(morphology: str | None) -> str:
    if morphology is None:
        return "built-in cell"
    name = Path(morphology).name
    return f"{name} (published morphology)" if name == "cell1.asc" else name


ROWS = (
    ("resting potential soma / nexus",
     lambda r: f"{_f(r['rest']['soma_mV'])} / {_f(r['rest']['nexus_mV'])} mV"),
    ("rheobase, 2-s step",
     lambda r: "none up to 2 nA" if r["rheobase_nA"] is None else f"{r['rheobase_nA']:.3f} nA"),
    ("rate at 1.0 / 1.5 nA (2 s)",
     lambda r: " / ".join(f"{x:g}" for x in r["fi"]["rates_hz"]) + " Hz"),
    ("bAP amplitude soma / 300 um / 600 um / nexus",
     lambda r: " / ".join(_f(r["bap"][k]) for k in ("soma_mV", "300um_mV", "600um_mV", "nexus_mV")) + " mV"),
    ("BAC: soma pulse alone / distal EPSC alone / paired",
     lambda r: " / ".join([_bac_trial(r["bac"]["soma_only"], False), _bac_trial(r["bac"]["dend_only"], False),
                           _bac_trial(r["bac"]["combined"], True)])),
    ("basal NMDA plateau (> -40 mV), 30 clustered activations, `nmda` / `ampa`",
     lambda r: f"{_f(r['plateau_nmda']['plateau_ms'])} / {_f(r['plateau_ampa']['plateau_ms'])} ms"),
)


def markdown_table(results: list[dict]) -> str:
    # the README's order: a morphology file first, the built-in cell last
    cols = sorted(results, key=lambda r: r["morphology"] is None)
    lines = ["| | " + " | ".join(column_title(r["morphology"]) for r in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for title, fmt in ROWS:
        lines.append(f"| {title} | " + " | ".join(fmt(r) for r in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--morphology", default=None, help="a .asc/.swc file (default: the built-in cell)")
    ap.add_argument("--both", action="store_true",
                    help=f"the built-in cell and, if it exists, {CELL1} (ignores --morphology)")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the numbers to this JSON file")
    ap.add_argument("--worker", choices=("nmda", "ampa"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--branch", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        res = worker_nmda(args.morphology) if args.worker == "nmda" else worker_ampa(args.morphology, args.branch)
        Path(args.worker_out).write_text(json.dumps(res, indent=2))
        return

    t0 = time.perf_counter()
    if args.both:
        cells: list[str | None] = [None]
        if CELL1.is_file():
            cells.append(str(CELL1))
        else:
            print(f"{CELL1} not found: built-in cell only", file=sys.stderr)
    else:
        if args.morphology and not Path(args.morphology).is_file():
            sys.exit(f"morphology file {args.morphology} not found")
        cells = [args.morphology]
    results = [measure_cell(m) for m in cells]
    elapsed = time.perf_counter() - t0

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:])
    print(f"`{command}` (protocols in `neuroemu.cells.protocols`, fixed step {DT_MS} ms, backward Euler; "
          f"one fresh process per cell variant, run one at a time; {elapsed / 60:.1f} min wall):")
    print()
    print(markdown_table(results))
    print()
    for r in results:
        print(f"- {column_title(r['morphology'])}: {r['n_segments']} segments; nexus {r['nexus']['section']}"
              f"({r['nexus']['x']:.4f}) at {r['nexus']['distance_um']:.1f} um; rheobase bracket "
              f"{RHEOBASE['tol_nA']} nA; f-I spikes {r['fi']['spike_counts']} in {STEP_MS / 1000:g} s; "
              f"BAC site {r['bac']['site']} ({r['bac']['site_distance_um']:.1f} um), bac_firing = "
              f"{r['bac']['bac_firing']}; plateau branch {r['plateau_nmda']['branch']} "
              f"({r['plateau_nmda']['n_sites']} sites), peak {r['plateau_nmda']['peak_mV']:.1f} / "
              f"{r['plateau_ampa']['peak_mV']:.1f} mV; {r['timings_s']['total_wall'] / 60:.1f} min")
    print(f"\nelapsed: {elapsed:.0f} s")
    if args.json:
        out = {"command": command, "elapsed_s": round(elapsed, 1), "method": METHOD, "dt_ms": DT_MS,
               "protocols": {"step_ms": STEP_MS, "rheobase": RHEOBASE, "fi_amps_nA": FI_AMPS_NA,
                             "bap": {"amp_nA": 4.0, "pulse_ms": 2.0, "distances_um": BAP_DISTANCES_UM},
                             "bac": BAC, "plateau": PLATEAU},
               "cells": results, "table_markdown": markdown_table(results)}
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
