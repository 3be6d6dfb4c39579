#!/usr/bin/env bash
# One prepared GPU session for the medium study and the learning curves (nothing is simulated: the datasets come
# from the CPU machine, where `neuroemu study --scale medium --out STUDY --no-train` made them).
#
#   bash benchmarks/gpu_study.sh STUDY LC_DIR RESULTS
#
# STUDY: the medium study directory with its data/ (pools and test sets). LC_DIR: where the learning curves go
# (lc_nmda/, lc_ampa/ inside). RESULTS: logs and results.tgz (tables, figures, reports; no checkpoints, no data).
# Everything resumes: a run cut off by the deadline continues on the next call (here or on the CPU).
# First (unless BENCH_FAMILIES=0), every family's inference and training speed on the GPU, fp32 and bf16
# (benchmarks/bench_families.py --device cuda; at most BENCH_S seconds each), into RESULTS/bench_families_*.json.
# Environment: DEADLINE_S (540), WORKERS (8 training processes sharing the GPU), LC_MINUTES (8 per run),
# BENCH_FAMILIES (1), BENCH_S (90).
set -u
STUDY=${1:?usage: gpu_study.sh STUDY LC_DIR RESULTS}
LC=${2:?usage: gpu_study.sh STUDY LC_DIR RESULTS}
RESULTS=${3:?usage: gpu_study.sh STUDY LC_DIR RESULTS}
DEADLINE_S=${DEADLINE_S:-540}
WORKERS=${WORKERS:-8}
LC_MINUTES=${LC_MINUTES:-8}
MODELS=tcn:1x128,tcn:7x128,branch-elm:15,branch-elm:45,elm:20,lstm:50,tcn:3x32x80@first_layer_type=factorized
mkdir -p "$RESULTS" "$LC"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$RESULTS/session.log"; }
stamp "start: $(nvidia-smi -L 2>/dev/null | head -1) $(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())')"
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$HERE/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ "${BENCH_FAMILIES:-1}" != 0 ]; then
    for prec in fp32 bf16; do
        timeout "${BENCH_S:-90}" python3 "$HERE/benchmarks/bench_families.py" --device cuda --precision "$prec" \
            --repeats 2 --json "$RESULTS/bench_families_$prec.json" >"$RESULTS/bench_families_$prec.log" 2>&1
        stamp "bench_families cuda $prec exit $?"
    done
fi
LIMIT=$(( DEADLINE_S - 90 - $(date +%s) + T0 ))
printf 'split_fractions: [0.9, 0.1, 0.0]\n' > "$RESULTS/lc.yaml"
timeout "$LIMIT" python3 -m neuroemu study --scale medium --out "$STUDY" --workers "$WORKERS" --threads 1 \
    --no-report >"$RESULTS/study.log" 2>&1 &
for cell in nmda ampa; do
    timeout "$LIMIT" python3 -m neuroemu learning-curve --data "$STUDY/data/$cell" --test-data "$STUDY/data/${cell}_test" \
        --models "$MODELS" --fractions 0.125,0.25,0.5,1 --max-steps 6000 --max-minutes "$LC_MINUTES" --patience 4 \
        --split stratified --config "$RESULTS/lc.yaml" --workers "$WORKERS" --threads 1 --out "$LC/lc_$cell" \
        --no-report >"$RESULTS/lc_$cell.log" 2>&1 &
done
wait
stamp "training ended (or was cut off; rerun to continue)"
timeout 60 python3 -m neuroemu study --scale medium --out "$STUDY" --no-train >>"$RESULTS/study.log" 2>&1
for cell in nmda ampa; do
    timeout 30 python3 -m neuroemu learning-curve --data "$STUDY/data/$cell" --test-data "$STUDY/data/${cell}_test" \
        --models "$MODELS" --fractions 0.125,0.25,0.5,1 --max-steps 6000 --max-minutes "$LC_MINUTES" --patience 4 \
        --split stratified --config "$RESULTS/lc.yaml" --out "$LC/lc_$cell" --no-train >>"$RESULTS/lc_$cell.log" 2>&1
done
tail -5 "$RESULTS/study.log" | tee -a "$RESULTS/session.log"
tar czf "$RESULTS/results.tgz" --exclude='*.pt' --exclude='data' --exclude='*.npz' -C "$(dirname "$STUDY")" \
    "$(basename "$STUDY")" -C "$(dirname "$LC")" "$(basename "$LC")" 2>>"$RESULTS/session.log"
stamp "done"
