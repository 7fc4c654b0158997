#!/usr/bin/env bash
# Train a candidate world reference model in one fixed-length GPU lease (about 8 minutes on one
# H200), with the bundle's tokenizer, T5 and VAE (`--components`), and collect what the CPU side
# needs to score it (docs/world.md, "GPU run").
#
#   benchmarks/reference_gpu_run.sh RESULTS_DIR [WORK_DIR] [more train-reference options]
#
# Every stage runs under a wall-clock cap (--stage-minutes; the step counts are only upper bounds),
# so the run ends on time whatever the GPU's speed (TRAIN_TIMEOUT seconds, default 540, stops it regardless,
# and what exists is still collected). Environment: N64 / N128 (training images),
# CAPS (the caps), WORKERS (render processes), PYTHON. RESULTS_DIR gets at most 5 files:
#   train-log.txt              the whole log
#   transformer.safetensors    the final (stage 3b) transformer, diffusers layout
#   stage2b_ema.safetensors    stage 2b's EMA weights (pixart native format), to score at 64 px;
#                              stage2_ema.safetensors instead when the run was cut off before stage 2b saved
#   rest.tar                   the pipeline folder without its transformer weights, each stage's
#                              train_config.yaml, metrics.jsonl, wall_seconds.json, and the EMA configs
set -uo pipefail
RES=${1:?usage: reference_gpu_run.sh RESULTS_DIR [WORK_DIR] [options]}
WORK=${2:-/tmp/world-gpu}
shift $(( $# >= 2 ? 2 : 1 ))
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$RES" "$WORK"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-5}  # a readable log
cd "$REPO"
timeout "${TRAIN_TIMEOUT:-540}" "$PY" -m bench.cli world train-reference --work "$WORK" --out "$WORK/out" --components "$REPO/bench/world/reference" \
    --workers "${WORKERS:-14}" --n-images-64 "${N64:-40000}" --n-images-128 "${N128:-6000}" --and-fraction 0.5 \
    --depth 6 --hidden 192 --heads 3 --batch-size 1024 --batch-size-128 256 --lr 1e-3 --stage3-lr 5e-4 --low-lr 2e-4 \
    --stage1-steps 100000 --stage2-steps 100000 --stage2-low-lr-steps 100000 --stage3-steps 100000 \
    --stage3-low-lr-steps 100000 --stage-minutes "${CAPS:-stage1=0.3,stage2=3.0,stage2b=0.6,stage3=1.0,stage3b=0.4}" \
    "$@" 2>&1 | tr '\r' '\n' | grep --line-buffered -v '^\s*$' > "$RES/train-log.txt"
status=${PIPESTATUS[0]}
tail -n 25 "$RES/train-log.txt"

# collect whatever exists, also after a failure
cp "$WORK/out/transformer/diffusion_pytorch_model.safetensors" "$RES/transformer.safetensors" 2>/dev/null
s2b=$(ls -d "$WORK"/stage2b/checkpoints/step-*/ema 2>/dev/null | tail -n 1)
s2=$(ls -d "$WORK"/stage2/checkpoints/step-*/ema 2>/dev/null | tail -n 1)
if [ -n "$s2b" ]; then cp "$s2b/model.safetensors" "$RES/stage2b_ema.safetensors"
elif [ -n "$s2" ]; then cp "$s2/model.safetensors" "$RES/stage2_ema.safetensors"  # cut off before 2b's first checkpoint
fi
(cd "$WORK" && tar cf "$RES/rest.tar" --exclude=out/transformer/diffusion_pytorch_model.safetensors \
    $(ls -d out stage*/train_config.yaml stage*/metrics.jsonl stage*/wall_seconds.json stage*/checkpoints/*/ema/config.json \
      components/vae_metrics.json 2>/dev/null))
ls -la "$RES"
exit "$status"
