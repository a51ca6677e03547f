#!/usr/bin/env bash
# bench/gpt_compare.sh - GPT training steps of mixprec and PyTorch side by side
# (DESIGN.md's "small" shape: 6 layers, 6 heads, 384 wide, block 256, batch 8,
# vocab 65, AdamW, clip 1.0), each mode in a fresh process, the implementations
# alternating ROUNDS times so a slow spell of the shared host falls on both;
# then bench/gpt_summary.py prints medians, the ratios of the targets, memory.
# Nothing here is a test; it asserts nothing.
#
#   bash bench/gpt_compare.sh [BUILD_DIR]   (default build/; ROUNDS=5 STEPS=10 THREADS=2)
#   MIXPREC_PROFILE=1 ... adds mixprec's per-op split on stderr
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD_DIR:-build}}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-10}
THREADS=${THREADS:-2}
GS="$BUILD/bench/gpt_step"
[ -x "$GS" ] || { echo "gpt_compare.sh: $GS not built (make build)" >&2; exit 1; }
PY=/usr/bin/python3
HAVE_TORCH=1
$PY -c 'import torch' 2>/dev/null || { HAVE_TORCH=0; echo "gpt_compare.sh: no torch at $PY; mixprec only" >&2; }
mkdir -p bench/results
OUT=bench/results/$(date +%Y-%m-%d-%H%M)-gpt-$(hostname -s).jsonl
: > "$OUT"
echo "# $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) nproc=$(nproc) threads=$THREADS" >&2
run_mx() { "$GS" "$1" "$THREADS" "$STEPS" 3 | sed "s/^{/{\"round\":$round,/" >> "$OUT"; }
run_torch() {
    [ "$HAVE_TORCH" = 1 ] || return 0
    $PY bench/torch_gpt.py --mode "$1" --threads "$THREADS" --steps "$STEPS" --json |
        sed "s/^{/{\"round\":$round,/" >> "$OUT"
}
for round in $(seq "$ROUNDS"); do
    # an order in which every compared pair runs back to back: torch fp32 | mixprec fp32 |
    # mixprec bf16 | torch bf16 (then fp16, compared with nothing)
    run_torch fp32
    run_mx fp32
    run_mx bf16
    run_torch bf16
    run_mx fp16
    echo "round $round/$ROUNDS done" >&2
done
echo "results: $OUT" >&2
$PY bench/gpt_summary.py "$OUT"
