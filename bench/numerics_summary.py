#!/usr/bin/env python3
"""bench/numerics_summary.py - the tables of docs/NUMERICS.md from the logs of
bench/numerics_runs.sh (gzipped JSON lines, one file per run).

Per run: the outcome (final train loss, test accuracy or validation loss, skipped
steps, the loss scale at the end), the weight-gradient values that are exactly zero
(what fp16 flushed, on top of the ReLU zeros every precision has), the updates lost
to rounding, the advisor's numbers, the memory per kind, and the share of gradient
values (weights' and activations', unscaled) that fp16 and bf16 would flush to zero,
averaged over the stats steps.

    /usr/bin/python3 bench/numerics_summary.py bench/results/<date>-numerics
"""
import glob
import gzip
import json
import os
import sys


def load(path):
    ev = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("{"):
                ev.append(json.loads(line))
    return ev


def zeros(events, kinds):
    """the share of exactly-zero values over the numerics events of these kinds"""
    z = n = 0
    for e in events:
        if e.get("event") == "numerics" and e["kind"] in kinds:
            z += e["zero"]
            n += e["n"]
    return z / n if n else float("nan")


def share(events, kinds, fmt, what):
    """sum(what*n)/sum(nonzero) over the numerics events of these kinds"""
    num = den = 0.0
    for e in events:
        if e.get("event") == "numerics" and e["kind"] in kinds:
            nz = e["n"] - e["zero"] - e["nonfinite"]
            num += e[fmt][what] * e["n"]
            den += nz
    return num / den if den else float("nan")


def main():
    d = sys.argv[1]
    runs = {}
    for p in sorted(glob.glob(os.path.join(d, "*.jsonl.gz"))):
        runs[os.path.basename(p)[:-9]] = load(p)
    print("| run | final train loss | test acc / val loss | skipped | final scale | zero grad values | lost updates (working) |")
    print("|---|---|---|---|---|---|---|")
    for name, ev in runs.items():
        s = next((e for e in ev if e.get("event") == "summary"), {})
        steps = [e for e in ev if e.get("event") == "step"]
        zs = [e["zero_grad_frac"] for e in steps if "zero_grad_frac" in e]
        ls = [e["lost_update_frac"] for e in steps if "lost_update_frac" in e]
        if "test_accuracy" in s:
            out = f"{s['test_accuracy']:.4f}"
        else:
            out = f"{s.get('val_loss', float('nan')):.4f}"
        print(f"| {name} | {s.get('final_loss', float('nan')):.4f} | {out} | "
              f"{s.get('skipped_steps', 0)} | {s.get('final_loss_scale', 0):g} | "
              f"{100 * sum(zs) / len(zs):.3f}% | {100 * sum(ls) / len(ls):.2f}% |"
              if zs and ls else f"| {name} | (no stats) |")
    print()
    print("| run | weight grads fp16 would flush | activation grads fp16 would flush | "
          "bf16 would flush | activation-grad values that are zero | updates lost in fp16 / bf16 (no master) | numerics cost |")
    print("|---|---|---|---|---|---|---|")
    for name, ev in runs.items():
        s = next((e for e in ev if e.get("event") == "summary"), {})
        a = next((e for e in ev if e.get("event") == "advice"), {})
        lost = (f"{100 * a['lost_update_frac_fp16']:.2f}% / {100 * a['lost_update_frac_bf16']:.2f}%"
                if "lost_update_frac_bf16" in a else "-")
        print(f"| {name} | {100 * share(ev, ('grad',), 'fp16', 'underflow'):.3f}% | "
              f"{100 * share(ev, ('activation_grad',), 'fp16', 'underflow'):.3f}% | "
              f"{100 * share(ev, ('grad', 'activation_grad'), 'bf16', 'underflow'):.4f}% | "
              f"{100 * zeros(ev, ('activation_grad',)):.2f}% | {lost} | "
              f"{s.get('numerics_s', 0):.2f} s ({100 * s.get('numerics_share', 0):.1f}%) |")
    print()
    print("| run | advice: fp16 scale range | grads flushed without scaling | largest activation | verdict |")
    print("|---|---|---|---|---|")
    for name, ev in runs.items():
        a = next((e for e in ev if e.get("event") == "advice"), None)
        if not a:
            continue
        verdict = [l for l in a["text"].split("\n") if l.startswith("verdict")]
        print(f"| {name} | [{a['loss_scale_min']:g}, {a['loss_scale_max']:g}] | "
              f"{100 * a['grad_flush_fp16']:.3f}% | {a['act_max']:.4g} | "
              f"{verdict[0][9:] if verdict else ''} |")
    print()
    print("| run | weights | master weights | grads | optimizer | activations |")
    print("|---|---|---|---|---|---|")
    for name, ev in runs.items():
        s = next((e for e in ev if e.get("event") == "summary"), {})
        m = s.get("memory_bytes", {})
        print(f"| {name} | " + " | ".join(f"{m.get(k, 0):,}" for k in
              ("weights", "master_weights", "grads", "optimizer", "activations")) + " |")


main()
