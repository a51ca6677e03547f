#!/usr/bin/env python3
"""bench/step_summary.py LOG.jsonl - medians over rounds of bench/step_compare.sh.

For each model: ms/step per implementation and mode (PyTorch's CNN at its better
memory layout per round), then the ratios the targets of docs/BENCHMARKS.md name:
mixprec against PyTorch's best setting for the same precision (fp32: plain fp32;
bf16: the faster of autocast and pure bf16), mixprec bf16 over mixprec fp32, and
activation bytes bf16 / fp32."""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    ms = defaultdict(list)   # (impl, model, mode) -> per-round ms (torch: best layout)
    act = {}
    for r in rows:
        key = (r["impl"], r["model"], r["mode"])
        if r["impl"] == "torch":
            if r.get("best", True):
                ms[key].append(r["ms_per_step"])
        else:
            ms[key].append(r["ms_per_step"])
            act[(r["model"], r["mode"])] = r.get("activation_bytes")
    med = {k: statistics.median(v) for k, v in ms.items()}
    for model in ("mlp", "cnn"):
        print(f"\n{model}: median ms/step over {len(ms.get(('mixprec', model, 'fp32'), []))} rounds")
        for k in sorted(k for k in med if k[1] == model):
            print(f"  {k[0]:8s} {k[2]:14s} {med[k]:9.2f}")
        m = lambda impl, mode: med.get((impl, model, mode))
        t32 = m("torch", "fp32")
        tb = min(x for x in (m("torch", "bf16-autocast"), m("torch", "bf16-pure")) if x) \
            if m("torch", "bf16-pure") or m("torch", "bf16-autocast") else None
        x32, xb = m("mixprec", "fp32"), m("mixprec", "bf16")
        if t32 and x32:
            print(f"  mixprec fp32 vs torch fp32:            {t32 / x32:5.2f}x")
        if tb and xb:
            print(f"  mixprec bf16 vs torch best bf16:       {tb / xb:5.2f}x")
        if x32 and xb:
            print(f"  mixprec bf16 over mixprec fp32:        {x32 / xb:5.2f}x")
        a32, ab = act.get((model, "fp32")), act.get((model, "bf16"))
        if a32 and ab:
            print(f"  activation bytes bf16/fp32:            {ab / a32:5.3f} ({ab} / {a32})")


if __name__ == "__main__":
    main(sys.argv[1])
