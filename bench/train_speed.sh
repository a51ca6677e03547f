#!/usr/bin/env bash
# bench/train_speed.sh - the built-in models through `mixprec train` itself: samples/s and
# memory per precision, ROUNDS rounds alternating the modes in fresh processes, medians.
# Data loading and the numerics counters are included (they are part of a training run);
# evaluation is not (the trainer times it apart).
#
#   bash bench/train_speed.sh [BUILD_DIR]   (default build/; ROUNDS=3 STEPS=150 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD_DIR:-build}}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-150}
THREADS=${THREADS:-2}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT=bench/results/$(date +%Y-%m-%d-%H%M)-train-$(hostname -s).jsonl
: > "$OUT"
for round in $(seq "$ROUNDS"); do
    for model in mlp cnn; do
        for mode in no bf16 fp16; do
            "$BUILD/mixprec" train --model "$model" --mixed-precision "$mode" --max-steps "$STEPS" \
                --threads "$THREADS" --quiet --log "$TMP/log.jsonl" > /dev/null
            grep '"event":"summary"' "$TMP/log.jsonl" | sed "s/^{/{\"round\":$round,/" >> "$OUT"
        done
    done
    echo "round $round/$ROUNDS done" >&2
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
sps, mem = defaultdict(list), {}
for r in rows:
    sps[(r["model"], r["mixed_precision"])].append(r["samples_per_s"])
    mem[(r["model"], r["mixed_precision"])] = r["memory_bytes"]
for model in ("mlp", "cnn"):
    print(f"{model}: median samples/s over {len(sps[(model, 'no')])} rounds")
    for mode in ("no", "bf16", "fp16"):
        m = mem[(model, mode)]
        print(f"  {mode:5s} {statistics.median(sps[(model, mode)]):9.0f} samples/s   activations "
              f"{m['activations']:>10d}  workspace {m.get('workspace', 0):>9d}  weights {m['weights']}"
              f"  master {m['master_weights']}  grads {m['grads']}  optimizer {m['optimizer']}")
    f32 = statistics.median(sps[(model, "no")])
    for mode in ("bf16", "fp16"):
        print(f"  {mode}/fp32 speed {statistics.median(sps[(model, mode)]) / f32:4.2f}x, activation "
              f"bytes {mem[(model, mode)]['activations'] / mem[(model, 'no')]['activations']:.3f}x")
PY
