#!/usr/bin/env python3
"""bench/dist_summary.py - the table of bench/dist_compare.sh's results.

Per (model, precision, processes): the median over rounds of the median time per
optimizer step (from the step lines: the training clock of step k is k * global batch /
samples_per_s, eval and checkpoints excluded; the first 2 steps are warm-up and dropped),
the median time rank 0 spent in collectives per step, and the bytes each rank all-reduced
per step. Then the ratios: 2 processes against 1 in each precision, bf16 against fp32.

    /usr/bin/python3 bench/dist_summary.py bench/results/<file>.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)  # (model, prec, procs, round) -> step lines
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    o = json.loads(line)
    if o.get("event") == "step":
        runs[(o["model"], o["prec"], o["procs"], o["round"])].append(o)

per = defaultdict(lambda: {"step": [], "comm": [], "bytes": set()})
for (model, prec, procs, rnd), steps in runs.items():
    steps.sort(key=lambda o: o["step"])
    clock = [o["step"] * o["global_batch"] / o["samples_per_s"] for o in steps]
    dt = [b - a for a, b in zip(clock, clock[1:])][2:]
    if not dt:
        continue
    p = per[(model, prec, procs)]
    p["step"].append(statistics.median(dt))
    p["comm"].append(statistics.median(o.get("comm_s", 0.0) for o in steps[2:]))
    p["bytes"].add(steps[-1].get("comm_bytes", 0))

print(f"{'model':5} {'precision':9} {'processes x threads':19} {'ms/step':>8} "
      f"{'comm ms':>8} {'bytes/step/rank':>16} {'rounds':>6}")
med = {}
for key in sorted(per):
    model, prec, procs = key
    p = per[key]
    ms, cm = 1e3 * statistics.median(p["step"]), 1e3 * statistics.median(p["comm"])
    med[key] = ms
    shape = "1 x 2" if procs == 1 else f"{procs} x 1"
    print(f"{model:5} {prec if prec != 'no' else 'fp32':9} {shape:19} {ms:8.1f} {cm:8.2f} "
          f"{max(p['bytes']):16d} {len(p['step']):6d}")
print()
for model in sorted({k[0] for k in med}):
    for prec in ("no", "bf16"):
        a, b = med.get((model, prec, 1)), med.get((model, prec, 2))
        if a and b:
            print(f"{model} {prec if prec != 'no' else 'fp32'}: 2 x 1 takes {b / a:.3f}x "
                  "the time per step of 1 x 2")
    a, b = med.get((model, "no", 2)), med.get((model, "bf16", 2))
    if a and b:
        print(f"{model} on 2 processes: bf16 step {a / b:.2f}x faster than fp32")
