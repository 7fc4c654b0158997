#!/usr/bin/env bash
# One GPU lease, two jobs (docs/performance.md, docs/world.md):
#   1. time the trainer's step at batch STEP_BATCH (default 256) for the world model (depth 6):
#      fp32, bf16, bf16 + torch.compile (`benchmarks/train_step_time.py`), and
#   2. train the reference recipe (`benchmarks/reference_gpu_run.sh`) with the fastest of those
#      that ran: bf16 when it is faster than fp32, and compile for stages 2 and 2b (the long
#      fixed-shape ones; a compile costs about half a minute per stage) when it is faster still.
#
#   benchmarks/reference_gpu_session.sh RESULTS_DIR [more train-reference options]
#
# RESULTS_DIR gets step-time.txt, chosen.txt and run/ (see reference_gpu_run.sh). Environment:
# STEP_BATCH, STEP_STEPS, and reference_gpu_run.sh's (N64, N128, CAPS, TRAIN_TIMEOUT, WORKERS, PYTHON).
set -uo pipefail
RES=${1:?usage: reference_gpu_session.sh RESULTS_DIR [options]}
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$RES"
cd "$REPO"
export PYTHONUNBUFFERED=1
"$PY" benchmarks/train_step_time.py --work /tmp/step-time --batches "${STEP_BATCH:-256}" --steps "${STEP_STEPS:-60}" \
    --depth 6 --variants preload+device-rng,bf16,bf16+compile 2>&1 | tr '\r' '\n' | grep -v "loading feature\|^\s*$" \
    | tee "$RES/step-time.txt"
# lines: "batch   256   bf16+compile:    12.3 ms/step ..."; a variant that failed prints none
ms() { awk -v v="$1:" '$3 == v {print $4}' "$RES/step-time.txt"; }
fp32=$(ms preload+device-rng); bf16=$(ms bf16); comp=$(ms bf16+compile)
opts=()
if [ -n "$bf16" ] && [ -n "$fp32" ] && awk -v a="$bf16" -v b="$fp32" 'BEGIN {exit !(a < 0.95 * b)}'; then
    opts+=(--mixed-precision bf16)
    if [ -n "$comp" ] && awk -v a="$comp" -v b="$bf16" 'BEGIN {exit !(a < 0.8 * b)}'; then
        opts+=(--compile stage2,stage2b)
    fi
fi
echo "fp32 ${fp32:-?} ms, bf16 ${bf16:-?} ms, bf16+compile ${comp:-?} ms -> ${opts[*]:-fp32, eager}" | tee "$RES/chosen.txt"
bash benchmarks/reference_gpu_run.sh "$RES/run" /tmp/world-gpu "${opts[@]}" "$@"
