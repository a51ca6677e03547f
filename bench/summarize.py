#!/usr/bin/env python3
"""bench/summarize.py - medians and target ratios from a bench/run.sh log.

Reads the JSON lines that bench/gemm_compare and `mixprec bench convert --json`
write, takes the median over rounds of each run's median, and prints markdown
tables with the ratios the targets in docs/BENCHMARKS.md are stated in.
Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    gemm = defaultdict(list)
    conv = defaultdict(list)
    isa_rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r["bench"] == "gemm" and "impl" not in r:  # mixprec bench gemm --isa X
                dt = {"fp32": "f32", "fp16": "f16"}.get(r["dtype"], r["dtype"])
                isa_rows[(r["isa"], dt)] = (r["gflops"], r["kernel"])
            elif r["bench"] == "gemm":
                key = (r["m"], r["n"], r["k"], r.get("ta", 0), r.get("tb", 0), r["threads"], r["impl"], r["dtype"])
                gemm[key].append(r["gflops"])
            elif r["bench"] == "convert":
                conv[(r["threads"], r["op"], r["from"], r["to"])].append(r["ms_median"])
    med = {k: statistics.median(v) for k, v in gemm.items()}
    rounds = max((len(v) for v in gemm.values()), default=0)

    def g(shape, t, impl, dt):
        return med.get(shape + (t, impl, dt))

    shapes = sorted({k[:5] for k in med}, key=lambda s: (s[0] * s[1] * s[2], s[3], s[4]))
    print(f"GEMM, GFLOP/s (median of {rounds} rounds, each the median of its timed calls)\n")
    print("| M x N x K (op) | threads | mixprec bf16 | oneDNN bf16 (plain / blocked) | bf16 ratio | "
          "mixprec f32 | OpenBLAS f32 | oneDNN f32 | f32 ratio | bf16/f32 | mixprec f16 | f16/f32 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def fmt(x):
        return "-" if x is None else f"{x:.1f}"

    def ratio(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}"

    for shape in shapes:
        m, n, k, ta, tb = shape
        op = ("T" if ta else "N") + ("T" if tb else "N")
        for t in (1, 2):
            mb = g(shape, t, "mixprec", "bf16")
            dp, db = g(shape, t, "onednn", "bf16"), g(shape, t, "onednn-blocked", "bf16")
            dbest = max(x for x in (dp, db, 0.0) if x is not None) or None
            mf = g(shape, t, "mixprec", "f32")
            ob = g(shape, t, "openblas", "f32")
            of = g(shape, t, "onednn", "f32")
            mh = g(shape, t, "mixprec", "f16")
            if mb is None and mf is None:
                continue
            print(f"| {m}x{n}x{k} ({op}) | {t} | {fmt(mb)} | {fmt(dp)} / {fmt(db)} | {ratio(mb, dbest)} | "
                  f"{fmt(mf)} | {fmt(ob)} | {fmt(of)} | {ratio(mf, ob)} | {ratio(mb, mf)} | "
                  f"{fmt(mh)} | {ratio(mh, mf)} |")
    print("\nbf16 ratio: mixprec bf16 / the better of oneDNN's plain and blocked-weights matmul "
          "(target >= 0.85).  f32 ratio: mixprec / OpenBLAS sgemm (target >= 0.85).  "
          "bf16/f32: target >= 1.8.  f16/f32: target >= 0.9.")

    if conv:
        print("\nConversion of 256 MiB of fp32 (ms, median over rounds; ratio = time / memcpy time)\n")
        print("| threads | f32->bf16 | f32->f16 | bf16->f32 | f16->f32 | memcpy | worst ratio |")
        print("|---|---|---|---|---|---|---|")
        for t in sorted({k[0] for k in conv}):
            def c(op, a, b):
                v = conv.get((t, op, a, b))
                return statistics.median(v) if v else None
            mc = c("memcpy", "f32", "f32")
            cells = [c("convert", "f32", "bf16"), c("convert", "f32", "f16"),
                     c("convert", "bf16", "f32"), c("convert", "f16", "f32")]
            worst = max((x / mc for x in cells if x is not None and mc), default=None)
            print(f"| {t} | " + " | ".join(fmt(x) for x in cells) +
                  f" | {fmt(mc)} | {'-' if worst is None else f'{worst:.2f}'} |")
        print("\nTarget: each conversion within 1.3x of memcpy's time.")

    if isa_rows:
        print("\nEach kernel family, 1024^3, one thread (GFLOP/s; `mixprec --isa X bench gemm`)\n")
        print("| family | fp32 | bf16 | fp16 | kernels |")
        print("|---|---|---|---|---|")
        for isa in ("ref", "avx2", "avx512", "avx512bf16"):
            cells = [isa_rows.get((isa, d)) for d in ("f32", "bf16", "f16")]
            if not any(cells):
                continue
            names = sorted({c[1] for c in cells if c})
            print(f"| {isa} | " + " | ".join(fmt(c[0] if c else None) for c in cells) +
                  f" | {'; '.join(names)} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py RESULTS.jsonl")
    main(sys.argv[1])
