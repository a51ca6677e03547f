#!/usr/bin/env bash
# bench/run.sh - every speed target of docs/BENCHMARKS.md, measured side by
# side in one run: each (shape, threads) alternates mixprec, oneDNN and
# OpenBLAS in fresh processes, ROUNDS times, and bench/summarize.py reports
# medians and ratios. Nothing here is a test; it asserts nothing.
#
#   bash bench/run.sh [BUILD_DIR]     (default $BUILD_DIR or build/; ROUNDS=5 REPS=10)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD_DIR:-build}}
ROUNDS=${ROUNDS:-5}
REPS=${REPS:-10}
GC="$BUILD/bench/gemm_compare"
[ -x "$GC" ] || { echo "bench/run.sh: $GC not built (needs libdnnl-dev and libopenblas-dev: scripts/setup.sh --bench)" >&2; exit 1; }
mkdir -p bench/results
OUT=bench/results/$(date +%Y-%m-%d)-$(hostname -s).jsonl
: > "$OUT"
echo "# $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) nproc=$(nproc)" >&2

# "M N K TA TB": the square case, the two transformer MLP shapes of the
# targets, and the same layer's forward (y = x W^T) and weight gradient
# (dW = dY^T x) as a training step runs them, transposes included.
SHAPES=("1024 1024 1024 0 0" "4096 768 3072 0 0" "4096 3072 768 0 0" "4096 3072 768 0 1" "3072 768 4096 1 0")
RUNS=("mixprec bf16" "onednn bf16" "onednn-blocked bf16" "mixprec f32" "openblas f32" "onednn f32" "mixprec f16")
for round in $(seq "$ROUNDS"); do
    for shape in "${SHAPES[@]}"; do
        for threads in 1 2; do
            read -r m n k ta tb <<< "$shape"
            for run in "${RUNS[@]}"; do
                # shellcheck disable=SC2086
                $GC $run "$m" "$n" "$k" "$threads" "$REPS" "$ta" "$tb" 2>/dev/null >> "$OUT" ||
                    echo "skipped: $run $shape t=$threads" >&2
            done
        done
    done
    for threads in 1 2; do
        "$BUILD/mixprec" bench convert --json --threads "$threads" >> "$OUT"
    done
    echo "round $round/$ROUNDS done" >&2
done
# What each kernel family gives on one thread (what the run-time dispatch buys).
for isa in ref avx2 avx512 avx512bf16; do
    for dt in fp32 bf16 fp16; do
        "$BUILD/mixprec" --isa "$isa" --threads 1 bench gemm --dtype "$dt" --m 1024 --n 1024 \
            --k 1024 --repeat 5 --json >> "$OUT" 2>/dev/null || echo "skipped: isa $isa" >&2
    done
done
python3 bench/summarize.py "$OUT"
