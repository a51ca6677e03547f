#!/usr/bin/env bash
# bench/dist_compare.sh - data parallel on this machine: the same global batch trained by
# 1 process x 2 threads (batch 2B) and by 2 processes x 1 thread (batch B each, through
# `mixprec launch`), in fp32 and bf16, for the cnn (Fashion-MNIST, global batch 128) and the
# gpt (fortunes, 6x384, block 256, global batch 8). Each run is a fresh `mixprec train`
# writing its metrics log; the four set-ups alternate ROUNDS times so a slow spell of the
# shared host falls on all of them. bench/dist_summary.py then prints the median time per
# step, the time in collectives, and the bytes each rank all-reduced per step.
# Nothing here is a test; it asserts nothing.
#
#   bash bench/dist_compare.sh [BUILD_DIR]   (default build/; ROUNDS=5 CNN_STEPS=40 GPT_STEPS=8)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD_DIR:-build}}
ROUNDS=${ROUNDS:-5}
CNN_STEPS=${CNN_STEPS:-40}
GPT_STEPS=${GPT_STEPS:-8}
MX="$BUILD/mixprec"
[ -x "$MX" ] || { echo "dist_compare.sh: $MX not built (make build)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "dist_compare.sh: no mpirun (apt-get install openmpi-bin)" >&2; exit 1; }
mkdir -p bench/results
OUT=bench/results/$(date +%Y-%m-%d-%H%M)-dist-$(hostname -s).jsonl
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
: > "$OUT"
echo "# $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) nproc=$(nproc)" >&2

# run MODEL PREC PROCS: one training run; its log's lines tagged and appended to $OUT
run() {
    local model=$1 prec=$2 procs=$3 steps batch extra=()
    if [ "$model" = gpt ]; then steps=$GPT_STEPS; batch=8; extra=(--eval-batches 1)
    else steps=$CNN_STEPS; batch=128; fi
    local log="$TMP/$model-$prec-$procs.jsonl"
    rm -f "$log"
    local args=(train --model "$model" --mixed-precision "$prec" --max-steps "$steps"
                --warmup-steps 1 --quiet --log "$log" "${extra[@]}")
    if [ "$procs" = 1 ]; then
        MIXPREC_NUM_THREADS=2 "$MX" "${args[@]}" --batch-size "$batch" > /dev/null
    else
        "$MX" launch --num-processes "$procs" --num-threads 1 "${args[@]}" \
            --batch-size $((batch / procs)) > /dev/null
    fi
    sed "s/^{/{\"round\":$round,\"model\":\"$model\",\"prec\":\"$prec\",\"procs\":$procs,\"global_batch\":$batch,/" \
        "$log" >> "$OUT"
}
for round in $(seq "$ROUNDS"); do
    for model in cnn gpt; do
        run "$model" no 1
        run "$model" no 2
        run "$model" bf16 2
        run "$model" bf16 1
    done
    echo "round $round/$ROUNDS done" >&2
done
echo "results: $OUT" >&2
/usr/bin/python3 bench/dist_summary.py "$OUT"
