#!/usr/bin/env bash
# One GPU session, prepared to fit a short lease: the measurements of the README that need a GPU.
#
#   bash benchmarks/gpu_session.sh STUDY RESULTS
#
# STUDY: a study directory whose L5PC datasets are already simulated (``neuroemu study --scale small`` simulates
# them on CPU and is resumable; copy ``STUDY/data`` to the GPU machine). RESULTS: where logs, JSON, the accuracy
# runs and ``results.tgz`` (the study's tables, figures and report, without data and checkpoints) go.
#
# Stages, each under its own time limit so that a slow one cannot eat the others:
#   1. smoke test: 30 training steps + evaluation on CUDA (falls back to the CPU if it fails);
#   2. bench_emulator.py on the GPU: inference (simulated ms per s) and training (windows per s);
#   3. in parallel on the one GPU: the study's sweeps (one process per cell, SWEEP_WORKERS configurations at a
#      time each) and accuracy_table.py (one process per slice x model, ACC_MINUTES of training each);
#   4. ``neuroemu study`` again: it finds datasets and sweeps done and writes findings, figures and report.
#
# Environment: SCALE (default small), SWEEP_WORKERS (4), ACC_SLICES (0.25 0.5 1.0), DEADLINE_S (540: the whole
# session's time; stage 3 gets what stages 1-2 leave, less 75 s for stage 4), BENCH_TRACES (32), PRESET_STEPS
# (12000: the 7x128 TCN trained with the modern and with the published preset, same steps, full slice). Needs: python3 with torch, h5py, numpy, scipy, matplotlib, pyyaml, tqdm,
# scikit-learn (NEURON and Dask are not needed: nothing is simulated).
set -u
STUDY=${1:?usage: gpu_session.sh STUDY RESULTS}
RESULTS=${2:?usage: gpu_session.sh STUDY RESULTS}
SCALE=${SCALE:-small}
SWEEP_WORKERS=${SWEEP_WORKERS:-4}
ACC_SLICES=${ACC_SLICES:-0.25 0.5 1.0}
DEADLINE_S=${DEADLINE_S:-540}
PRESET_STEPS=${PRESET_STEPS:-12000}
BENCH_TRACES=${BENCH_TRACES:-32}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$HERE/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$RESULTS"
ACC="$RESULTS/accuracy"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$RESULTS/session.log"; }

stamp "start: $(nvidia-smi -L 2>/dev/null | head -1) $(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())')"

# 1. smoke test on CUDA
SMOKE=$(mktemp -d)
if timeout 150 python3 -m neuroemu train --data "$STUDY/data/nmda" --out "$SMOKE/run" --depth 2 --width 16 \
        --max-steps 30 --val-every 20 --no-progress >"$RESULTS/smoke.log" 2>&1 \
   && timeout 100 python3 -m neuroemu evaluate --run "$SMOKE/run" --out "$SMOKE/metrics.json" >>"$RESULTS/smoke.log" 2>&1; then
    stamp "smoke test passed: $(tail -c 300 "$SMOKE/metrics.json" | tr '\n' ' ')"
else
    stamp "smoke test FAILED on $(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")'); continuing on the CPU"
    tail -20 "$RESULTS/smoke.log" | tee -a "$RESULTS/session.log"
    export CUDA_VISIBLE_DEVICES=""
fi

# 2. emulator speed on the GPU
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    timeout 150 python3 "$HERE/benchmarks/bench_emulator.py" --device cuda --traces "$BENCH_TRACES" \
        --json "$RESULTS/bench_gpu.json" >"$RESULTS/bench_gpu.log" 2>&1
    stamp "bench_emulator (cuda) exit $?"
fi

# 3a. the I&F dataset, if not carried along, is simulated here (NumPy, no NEURON needed)
# (python3 -c, not a here-document: the worker processes are spawned and must not re-read the main script)
timeout 150 python3 -c '
import os, sys
from pathlib import Path
from neuroemu.dataset.runner import build_dataset
from neuroemu.study.study import StudyConfig, dataset_config_for

cfg = StudyConfig.for_scale(sys.argv[2])
build_dataset(dataset_config_for(cfg, "iaf"), Path(sys.argv[1]) / "data" / "iaf", workers=os.cpu_count(),
              progress=False)
' "$STUDY" "$SCALE" >"$RESULTS/datasets.log" 2>&1
stamp "I&F dataset exit $?; datasets here: $(ls "$STUDY/data" | tr '\n' ' ')"

# 3. sweeps (one process per cell) and the accuracy table (one process per slice x model), all at once
SWEEP_LIMIT_S=$(( DEADLINE_S - ($(date +%s) - T0) - 75 ))
ACC_MINUTES=$(python3 -c "print(round(max(0.5, ($SWEEP_LIMIT_S - 75) / 60), 2))")
stamp "stage 3: ${SWEEP_LIMIT_S} s; accuracy runs train ${ACC_MINUTES} min each"
for cell in nmda ampa iaf; do
    [ -f "$STUDY/data/$cell/dataset.json" ] || continue
    timeout "$SWEEP_LIMIT_S" python3 -c '
import sys
from pathlib import Path
from neuroemu.study.study import StudyConfig
from neuroemu.study.sweep import run_sweep

study, cell, scale, workers = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = StudyConfig.for_scale(scale)
run_sweep(study / "data" / cell, cfg.sweep_config(cell), study / "sweeps" / cell, workers=workers, threads=1)
' "$STUDY" "$cell" "$SCALE" "$SWEEP_WORKERS" >"$RESULTS/sweep_$cell.log" 2>&1 &
done
for frac in $ACC_SLICES; do
    for model in 1x128 7x128; do
        timeout "$SWEEP_LIMIT_S" python3 "$HERE/benchmarks/accuracy_table.py" --data "$STUDY/data/nmda" --out "$ACC" \
            --slices "$frac" --models "$model" --minutes "$ACC_MINUTES" >"$RESULTS/acc_${frac}_$model.log" 2>&1 &
    done
done
for preset in modern published; do  # which training preset wins, on the same step budget
    timeout "$SWEEP_LIMIT_S" python3 "$HERE/benchmarks/accuracy_table.py" --data "$STUDY/data/nmda" \
        --out "$RESULTS/presets/$preset" --slices 1.0 --models 7x128 --preset "$preset" --steps "$PRESET_STEPS" \
        --minutes "$ACC_MINUTES" >"$RESULTS/preset_$preset.log" 2>&1 &
done
wait
stamp "sweeps and accuracy runs ended"
for preset in modern published; do
    python3 "$HERE/benchmarks/accuracy_table.py" --data "$STUDY/data/nmda" --out "$RESULTS/presets/$preset" \
        --slices 1.0 --models 7x128 --preset "$preset" --collect 2>&1 | tail -1 | sed "s/^/$preset: /" \
        | tee -a "$RESULTS/session.log"
done
python3 "$HERE/benchmarks/accuracy_table.py" --data "$STUDY/data/nmda" --out "$ACC" --slices "${ACC_SLICES// /,}" \
    --collect >"$RESULTS/accuracy_table.md" 2>&1
cat "$RESULTS/accuracy_table.md" | tee -a "$RESULTS/session.log"

# 4. findings, figures and report of what finished (--no-train: a configuration cut off by its time limit is
#    reported as missing, not trained again)
if [ -f "$STUDY/data/nmda/dataset.json" ] && [ -f "$STUDY/data/ampa/dataset.json" ] && \
   [ -f "$STUDY/data/iaf/dataset.json" ]; then
    timeout 120 python3 -m neuroemu study --scale "$SCALE" --out "$STUDY" --no-train >"$RESULTS/study.log" 2>&1
    stamp "study exit $?"
    tail -8 "$RESULTS/study.log" | tee -a "$RESULTS/session.log"
else
    stamp "not every dataset is here: run 'neuroemu study --scale $SCALE --out STUDY --no-train' where they are"
fi
tar czf "$RESULTS/results.tgz" --exclude='*.pt' --exclude="$(basename "$STUDY")/data" \
    -C "$(dirname "$STUDY")" "$(basename "$STUDY")" 2>>"$RESULTS/session.log"
stamp "done"
