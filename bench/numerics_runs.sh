#!/usr/bin/env bash
# bench/numerics_runs.sh - the runs behind docs/NUMERICS.md: the cnn on Fashion-MNIST (one
# epoch) and the gpt on fortunes (STEPS steps) in each precision mode and the source
# document's two failure modes, with --numerics-stats, one metrics log each, gzipped into
# bench/results/<date>-numerics/ (bench/numerics_summary.py prints the tables from them;
# `mixprec plot` draws them). Nothing here asserts anything.
#
#   bash bench/numerics_runs.sh [BUILD_DIR]     (default build/; STEPS=60; statistics every 25
#                                               cnn steps and every 20 gpt steps)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD_DIR:-build}}
MX="$BUILD/mixprec"
STEPS=${STEPS:-60}
EVERY=25
OUT=${OUT:-bench/results/$(date +%Y-%m-%d)-numerics}
mkdir -p "$OUT"
echo "# $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) nproc=$(nproc)" >&2

# run NAME ARGS...: one `mixprec train` with numerics statistics, its log gzipped into $OUT
run() {
    local name=$1
    shift
    local log="$OUT/$name.jsonl"
    rm -f "$log" "$log.gz"
    echo "== $name: mixprec train $*" >&2
    "$MX" train --numerics-stats --stats-every "$EVERY" --quiet --log "$log" "$@" |
        sed "s/^/   /" >&2
    gzip -9 "$log"
}

# the cnn, one epoch: fp32 (the reference), bf16, fp16 with dynamic scaling, fp16 without
# loss scaling (the underflow failure), bf16 without master weights (the rounding failure),
# and the same with stochastic rounding
run cnn-fp32 --model cnn --epochs 1 --mixed-precision no
run cnn-bf16 --model cnn --epochs 1 --mixed-precision bf16
run cnn-fp16 --model cnn --epochs 1 --mixed-precision fp16
run cnn-fp16-noscale --model cnn --epochs 1 --mixed-precision fp16 --loss-scale 1
run cnn-bf16-nomaster --model cnn --epochs 1 --mixed-precision bf16 --master-weights off
if "$MX" train --help | grep -q -- --stochastic-rounding; then
    run cnn-bf16-nomaster-sr --model cnn --epochs 1 --mixed-precision bf16 --master-weights off \
        --stochastic-rounding
fi
# the gpt: STEPS steps of each
EVERY=20
for p in no bf16 fp16; do
    run "gpt-${p/no/fp32}" --model gpt --max-steps "$STEPS" --eval-every "$STEPS" \
        --eval-batches 8 --mixed-precision "$p"
done
run gpt-fp16-noscale --model gpt --max-steps "$STEPS" --eval-every "$STEPS" --eval-batches 8 \
    --mixed-precision fp16 --loss-scale 1
run gpt-bf16-nomaster --model gpt --max-steps "$STEPS" --eval-every "$STEPS" --eval-batches 8 \
    --mixed-precision bf16 --master-weights off
echo "logs: $OUT" >&2
