#!/usr/bin/env python3
"""bench/step_summary.py LOG.jsonl - medians over rounds of bench/step_compare.sh.

For each model: ms/step per implementation and mode (PyTorch's CNN at its better
memory layout in each round), then the ratios the targets of docs/BENCHMARKS.md
name: mixprec against PyTorch's best setting for the same precision (fp32: plain
fp32; bf16: the faster of autocast and pure bf16), mixprec bf16 over mixprec fp32,
and activation bytes bf16 / fp32. Each ratio is given twice: the median of the
rounds' own ratios (robust to a slow spell of the shared host that spans a round)
and the ratio of the medians."""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    ms = defaultdict(dict)  # (impl, model, mode) -> {round: ms} (torch: its best layout)
    act = {}
    for r in rows:
        if r["impl"] == "torch" and not r.get("best", True):
            continue
        ms[(r["impl"], r["model"], r["mode"])][r.get("round", 0)] = r["ms_per_step"]
        if r["impl"] == "mixprec":
            act[(r["model"], r["mode"])] = r.get("activation_bytes")
    med = {k: statistics.median(v.values()) for k, v in ms.items()}

    def ratio(num, den):
        """(median of per-round num/den, ratio of medians); num, den: lists of keys,
        the best (smallest) of den's keys per round"""
        per = []
        for rnd in ms[num]:
            d = [ms[k][rnd] for k in den if rnd in ms.get(k, {})]
            if d:
                per.append(min(d) / ms[num][rnd])
        whole = min(med[k] for k in den if k in med) / med[num]
        return (statistics.median(per) if per else float("nan")), whole

    for model in ("mlp", "cnn"):
        n = len(ms.get(("mixprec", model, "fp32"), {}))
        print(f"\n{model}: median ms/step over {n} rounds")
        for k in sorted(k for k in med if k[1] == model):
            print(f"  {k[0]:8s} {k[2]:14s} {med[k]:9.2f}")
        X = lambda mode: ("mixprec", model, mode)
        T = lambda mode: ("torch", model, mode)
        lines = [("mixprec fp32 vs torch fp32", X("fp32"), [T("fp32")]),
                 ("mixprec bf16 vs torch best bf16", X("bf16"), [T("bf16-autocast"), T("bf16-pure")]),
                 ("mixprec bf16 over mixprec fp32", X("bf16"), [X("fp32")])]
        for name, num, den in lines:
            if num in ms and any(k in ms for k in den):
                a, b = ratio(num, den)
                print(f"  {name:34s} {a:5.2f}x (median of rounds)  {b:5.2f}x (of medians)")
        a32, ab = act.get((model, "fp32")), act.get((model, "bf16"))
        if a32 and ab:
            print(f"  activation bytes bf16/fp32:        {ab / a32:5.3f} ({ab} / {a32})")


if __name__ == "__main__":
    main(sys.argv[1])
