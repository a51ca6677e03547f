#!/usr/bin/env bash
# bench/step_compare.sh - training steps of mixprec and PyTorch side by side:
# the same MLP and CNN, batch, optimizer (SGD momentum 0.9) and threads, each
# (model, mode) alternating the two in fresh processes ROUNDS times, then
# bench/step_summary.py prints medians, ratios and activation memory.
# Nothing here is a test; it asserts nothing.
#
#   bash bench/step_compare.sh [BUILD_DIR]   (default build/; ROUNDS=5 STEPS=30 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD_DIR:-build}}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-30}
THREADS=${THREADS:-2}
TS="$BUILD/bench/train_step"
[ -x "$TS" ] || { echo "step_compare.sh: $TS not built (make build)" >&2; exit 1; }
PY=/usr/bin/python3
HAVE_TORCH=1
$PY -c 'import torch' 2>/dev/null || { HAVE_TORCH=0; echo "step_compare.sh: no torch at $PY; mixprec only" >&2; }
mkdir -p bench/results
OUT=bench/results/$(date +%Y-%m-%d-%H%M)-steps-$(hostname -s).jsonl
: > "$OUT"
echo "# $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) nproc=$(nproc) threads=$THREADS" >&2
for round in $(seq "$ROUNDS"); do
    # the two implementations of a precision run back to back, so that a slow spell of
    # the shared host falls on both; step_summary.py also takes each round's own ratio
    for model in mlp cnn; do
        for pair in "fp32 fp32" "bf16 bf16-autocast" "bf16-pure bf16-pure" "fp16 -"; do
            read -r ours theirs <<< "$pair"
            "$TS" "$model" "$ours" "$THREADS" "$STEPS" 5 | sed "s/^{/{\"round\":$round,/" >> "$OUT"
            if [ "$HAVE_TORCH" = 1 ] && [ "$theirs" != - ]; then
                $PY bench/torch_step.py --model "$model" --mode "$theirs" --threads "$THREADS" \
                    --steps "$STEPS" | sed "s/^{/{\"round\":$round,/" >> "$OUT"
            fi
        done
    done
    echo "round $round/$ROUNDS done" >&2
done
$PY bench/step_summary.py "$OUT"
