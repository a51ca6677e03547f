#!/usr/bin/env bash
# bench/gpt_val.sh - the gpt "small" shape trained on the fortunes corpus for the same
# number of steps in fp32, bf16 and fp16 (fresh processes, same seed and data order), then
# the validation losses side by side: does 16-bit training cost accuracy? Also prints each
# run's tokens/s and peak RSS. Nothing here is a test; it asserts nothing.
#
#   bash bench/gpt_val.sh [BUILD_DIR]   (default build/; STEPS=300 EVAL_BATCHES=50 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD_DIR:-build}}
STEPS=${STEPS:-300}
EVAL_BATCHES=${EVAL_BATCHES:-50}
THREADS=${THREADS:-2}
MX="$BUILD/mixprec"
[ -x "$MX" ] || { echo "gpt_val.sh: $MX not built (make build)" >&2; exit 1; }
mkdir -p bench/results
STAMP=$(date +%Y-%m-%d-%H%M)
echo "# $(date -Is) steps=$STEPS eval_batches=$EVAL_BATCHES threads=$THREADS" >&2
for mode in no bf16 fp16; do
    LOG=bench/results/$STAMP-gpt-val-$mode.jsonl
    rm -f "$LOG"
    "$MX" train --model gpt --mixed-precision "$mode" --max-steps "$STEPS" --warmup-steps 30 \
        --eval-every $((STEPS / 3)) --eval-batches "$EVAL_BATCHES" --threads "$THREADS" \
        --stats-every 0 --log "$LOG" --quiet | sed "s/^/[$mode] /"
done
/usr/bin/python3 - "$STAMP" <<'PY'
import json, sys
stamp = sys.argv[1]
rows = {}
for mode in ("no", "bf16", "fp16"):
    ev = [json.loads(l) for l in open(f"bench/results/{stamp}-gpt-val-{mode}.jsonl")]
    rows[mode] = ev
print("\nvalidation loss (nats/token) at each evaluation, and the summary")
steps = [e["step"] for e in rows["no"] if e.get("event") == "eval"]
print("  step  " + "  ".join(f"{m:>8s}" for m in ("fp32", "bf16", "fp16")) + "   bf16/fp32  fp16/fp32")
for s in steps:
    v = {m: next(e["loss"] for e in rows[m] if e.get("event") == "eval" and e["step"] == s)
         for m in rows}
    print(f"  {s:4d}  " + "  ".join(f"{v[m]:8.4f}" for m in ("no", "bf16", "fp16"))
          + f"   {v['bf16'] / v['no']:9.4f}  {v['fp16'] / v['no']:9.4f}")
for m in rows:
    s = next(e for e in rows[m] if e.get("event") == "summary")
    print(f"  {m:4s}: val loss {s['val_loss']:.4f}, final train loss {s['final_loss']:.4f}, "
          f"{s['tokens_per_s']:.0f} tokens/s, skipped {s['skipped_steps']}, "
          f"peak RSS {s['peak_rss_bytes'] / 2**20:.0f} MiB")
PY
