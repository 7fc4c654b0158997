#!/usr/bin/env bash
# Several candidate world reference models trained side by side in one GPU lease (docs/world.md,
# "Width and depth side by side on one GPU"). The trainer is launch-bound at these sizes, so
# processes share one GPU well: three arms on an H100 each stepped 1.3-1.5 times slower than alone,
# about 2.2 times the work of one process. But each arm then gets fewer steps: for one model that
# should be as good as a lease allows, run one arm.
#
#   benchmarks/reference_gpu_arms.sh RESULTS_DIR 'NAME:train-reference options' ...
#   e.g. benchmarks/reference_gpu_arms.sh /tmp/res 'd6:--depth 6' 'd12:--depth 12'
#
# Data, components (the bundle's tokenizer, T5 and VAE) and feature caches are prepared once
# (`--prepare-only`). Each arm then runs `train-reference` in its own folder, whose data and caches
# are links to the prepared ones; every arm runs with the relative work path `w`, so the cache keys
# (image paths) and the cache's record of the VAE path are the same for all. At DEADLINE seconds from
# the start the arms get SIGTERM (each stage also has a wall-clock cap, CAPS): the trainer saves the
# step it is on and exits (before 2026-11-27 a stage cut off there lost everything since its last
# checkpoint; caps that sum past the time left after preparing are reported), and
# `benchmarks/gpu_arms_collect.py` writes to RESULTS_DIR two half-precision weight files per arm
# and one rest.tar (logs, configs, loss curves). Environment: N64, N128, CAPS, DEADLINE, WORKERS,
# PYTHON, WORK (scratch, default /tmp/world-arms), TRAIN (the training options all arms share).
#
# SHARED_UNTIL (a stage: stage1, stage2, stage2b or stage3) trains the stages up to it once, alone on
# the GPU, with SHARED_OPTS (e.g. the architecture), and the arms are forks of it: each starts from a
# copy of those stages (given the steps they reached, so they resume untouched) and trains only the
# later stages with its own options, e.g. SHARED_UNTIL=stage2b SHARED_OPTS='--hidden 256 --heads 4'
#   benchmarks/reference_gpu_arms.sh /tmp/res 'ctrl:' 'half:--latent-scale-128 0.5'
# Then the 64 px weights, the same for every arm, come back once.
# An arm may also start at stage 3 from kept 64 px weights: 'name:--stage3-from /abs/path ...' (then
# N64 can be small: only the 128 px data is trained on).
# The device tool returns at most 8 files and 64 MiB from $OUT: at most 3 arms, and arms of about
# 7 M parameters (14 MB per half-precision file) need fewer (on 2026-11-26 the third arm's final
# weights were fetched in a second call, from the same warm machine: rerun gpu_arms_collect.py there).
set -uo pipefail
RES=${1:?usage: reference_gpu_arms.sh RESULTS_DIR 'NAME:options' ...}
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
BASE=${WORK:-/tmp/world-arms}
DEADLINE=${DEADLINE:-540}
start=$(date +%s)
mkdir -p "$RES" "$BASE/prep"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-5}
data=(--components "$REPO/bench/world/reference" --n-images-64 "${N64:-30000}" --n-images-128 "${N128:-4000}"
      --and-fraction 0.5)
read -r -a train <<< "${TRAIN:---batch-size 256 --batch-size-128 128 --lr 5e-4 --stage3-lr 3e-4 --low-lr 1.5e-4 \
--stage1-steps 100000 --stage2-steps 100000 --stage2-low-lr-steps 100000 --stage3-steps 100000 --stage3-low-lr-steps 100000}"
clean() { tr '\r' '\n' | grep --line-buffered -v '^\s*$'; }

(cd "$BASE/prep" && timeout "$DEADLINE" "$PY" -m bench.cli world train-reference --work w --out w/out "${data[@]}" \
    --workers "${WORKERS:-15}" --prepare-only 2>&1 | clean > "$RES/prep-log.txt")
echo "prepared in $(( $(date +%s) - start )) s"; tail -n 3 "$RES/prep-log.txt"

caps=${CAPS:-stage1=0.25,stage2=2.6,stage2b=0.5,stage3=2.0,stage3b=0.5}
capped=$(tr ',' '\n' <<< "$caps" | awk -F= '{s += $2 * 60} END {printf "%d", s}')
left=$(( DEADLINE - ($(date +%s) - start) ))
[ "$capped" -le "$left" ] || echo "warning: the stage caps add up to ${capped} s but ${left} s are left before DEADLINE:" \
    "the last stages will be cut off (they keep the step they reach)"
link() { mkdir -p "$1/w"; for d in data64 data128 cache64 cache128 components; do ln -sfn "$BASE/prep/w/$d" "$1/w/$d"; done; }
shared_steps=() shared_stages=()
read -r -a shared_opts <<< "${SHARED_OPTS:-}"
if [ -n "${SHARED_UNTIL:-}" ]; then
    link "$BASE/shared"
    left=$(( DEADLINE - ($(date +%s) - start) ))
    (cd "$BASE/shared" && timeout "$left" "$PY" -m bench.cli world train-reference --work w --out w/out "${data[@]}" \
        "${train[@]}" --stage-minutes "$caps" "${shared_opts[@]}" --stop-after "$SHARED_UNTIL" 2>&1 | clean > "$RES/shared-log.txt")
    echo "shared stages trained at $(( $(date +%s) - start )) s"; grep -E "steps in|stopped" "$RES/shared-log.txt"
    for s in stage1 stage2 stage2b stage3; do  # the steps each reached: the forks' budgets, so they resume untouched
        d=$(ls -d "$BASE/shared/w/$s/checkpoints/step-"* 2>/dev/null | tail -n 1)
        [ -n "$d" ] || break
        case $s in stage1) f=--stage1-steps ;; stage2) f=--stage2-steps ;; stage2b) f=--stage2-low-lr-steps ;; stage3) f=--stage3-steps ;; esac
        shared_steps+=("$f" "$((10#${d##*step-}))"); shared_stages+=("$s")
        [ "$s" = "$SHARED_UNTIL" ] && break
    done
    echo "forks start from ${shared_steps[*]}"
fi
arms=()
for spec in "$@"; do
    name=${spec%%:*}
    read -r -a opts <<< "${spec#*:}"
    link "$BASE/$name"
    for s in "${shared_stages[@]}"; do cp -a "$BASE/shared/w/$s" "$BASE/$name/w/$s"; done
    left=$(( DEADLINE - ($(date +%s) - start) ))
    (cd "$BASE/$name" && timeout "$left" "$PY" -m bench.cli world train-reference --work w --out w/out "${data[@]}" \
        "${train[@]}" --stage-minutes "$caps" "${shared_opts[@]}" "${shared_steps[@]}" "${opts[@]}" \
        2>&1 | clean > "$RES/$name-log.txt") &
    arms+=("$BASE/$name/w")
done
wait
echo "trained in $(( $(date +%s) - start )) s"
for spec in "$@"; do n=${spec%%:*}; echo "== $n"; grep -E "steps|loss|stage" "$RES/$n-log.txt" | tail -n 8; done
"$PY" "$REPO/benchmarks/gpu_arms_collect.py" "$RES" "${arms[@]}"
ls -la "$RES"
