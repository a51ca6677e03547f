#!/usr/bin/python3
"""bench/torch_gpt.py - PyTorch's side of the GPT training-step benchmark.

Times one training step (forward, mean cross-entropy over all B*T tokens, backward,
optimizer.step(), zero_grad(set_to_none=True)) of a GPT-2 on the CPU.

Model: tests/reference/gpt_torch.py (imported by path), the same module the gpt reference
fixture and the Hugging Face checkpoint check use: GPT-2 with HF's names and Conv1D layout,
pre-LN, GELU tanh, causal attention, tied LM head, no dropout, GPT-2's init. Reference shape
"small" (mixprec's gpt default, `mixprec train --model gpt`): 6 layers, 6 heads, n_embd 384,
block 256, batch 8, vocab 65 (characters); T = block = 256, so 2048 tokens per step.
Tokens: uniform random from a fixed seed, the same batch every step (this measures compute,
not data loading).

Optimizer: torch.optim.AdamW(lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on the
2-D weights, 0 on biases and LayerNorm). torch 1.13 has no fused AdamW on the CPU; of the two
it has, the per-parameter loop (foreach=False) measured faster than the multi-tensor one
(--foreach 1 to compare).

Modes:
  fp32  plain float32.
  bf16  fp32 parameters (the master weights), forward and loss under
        torch.autocast("cpu", dtype=torch.bfloat16); the loss is taken on logits.float().

Settings, chosen because they made torch fastest on the 2-core VM (medians of 10 steps,
machine shared, so +-10%): torch.set_num_threads(--threads, default 2) and OpenBLAS's own
pool pinned to the same number (Debian's torch runs fp32 GEMMs on OpenBLAS, everything else
on its OpenMP pool; 1 thread: fp32 1975 ms, bf16 1343 ms). OMP_WAIT_POLICY, unless already
set: PASSIVE for fp32 (ACTIVE, spinning OpenMP workers fight the OpenBLAS pool for the 2
cores: 3947 ms against ~1200-1300) and ACTIVE for bf16 (its GEMMs run on oneDNN inside the
OpenMP pool, no OpenBLAS to fight: 725-738 ms against 801-809 PASSIVE). oneDNN
(torch.backends.mkldnn) left enabled, its default: bf16 matmuls go through it (--no-mkldnn:
43 s per bf16 step). AdamW foreach=False (the per-parameter loop): 1180 ms fp32 / 788 ms
bf16 against 1413-1549 / 856-1081 with foreach=True, in back-to-back runs.

Output per mode: median ms/step over --steps timed steps after --warmup untimed ones (p10/p90
too), tokens/s = B*T / median, peak RSS (getrusage ru_maxrss; every mode runs in its own
process so the figure is that mode's), the first and last loss (sanity: finite, falling),
torch's version and the thread settings. --json prints one JSON object per line on stdout.

  /usr/bin/python3 bench/torch_gpt.py [--mode fp32|bf16|all] [--steps 10] [--warmup 3]
      [--threads 2] [--foreach 0|1] [--no-mkldnn] [--json]
"""
import os
import sys


def _default_wait_policy(argv):
    """PASSIVE for fp32, ACTIVE for bf16 (see the docstring); read from argv because the
    variable must be in the environment before libgomp loads (import torch)."""
    for i, a in enumerate(argv):
        if a == "--mode" and i + 1 < len(argv):
            return "ACTIVE" if argv[i + 1] == "bf16" else "PASSIVE"
        if a == "--mode=bf16":
            return "ACTIVE"
    return "PASSIVE"


USER_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")  # what --mode all passes on
os.environ.setdefault("OMP_WAIT_POLICY", _default_wait_policy(sys.argv[1:]))

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
import gpt_torch  # noqa: E402

SHAPE = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=65)
BATCH = 8
MODES = ("fp32", "bf16")


def set_blas_threads(n):
    """OpenBLAS's pool (this torch's fp32 GEMMs) to n threads; None without OpenBLAS.
    OPENBLAS_NUM_THREADS in the environment wins."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD)
        if "OPENBLAS_NUM_THREADS" not in os.environ:
            lib.openblas_set_num_threads(n)
        return lib.openblas_get_num_threads()
    except (OSError, AttributeError):
        return None


def pct(sorted_ms, q):
    pos = (len(sorted_ms) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def run(mode, args, blas_threads):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    V, T = SHAPE["vocab_size"], SHAPE["block_size"]
    model = gpt_torch.GPT(V, T, SHAPE["n_embd"], SHAPE["n_layer"], SHAPE["n_head"])
    gpt_torch.init_gpt2_(model, g)
    model.train()
    decay, rest = gpt_torch.decay_params(model)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8, foreach=bool(args.foreach))
    seq = torch.randint(0, V, (BATCH, T + 1), generator=g)
    x, y = seq[:, :T].contiguous(), seq[:, 1:].reshape(-1)

    def step():
        if mode == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)
        else:
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, V), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    first = step()
    for _ in range(args.warmup - 1):
        step()
    times, last = [], first
    for _ in range(args.steps):
        t0 = time.perf_counter()
        last = step()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    med = statistics.median(times)
    return {
        "impl": "torch", "model": "gpt", "shape": "small", **SHAPE, "batch": BATCH,
        "mode": mode, "ms_per_step": round(med, 2), "ms_p10": round(pct(times, 10), 2),
        "ms_p90": round(pct(times, 90), 2),
        "tokens_per_s": round(BATCH * T / (med / 1e3), 1),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "steps": args.steps, "warmup": args.warmup,
        "loss_first": round(first, 4), "loss_last": round(last, 4),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "blas_threads": blas_threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "optimizer": "adamw", "foreach": bool(args.foreach),
    }


def show(row, as_json):
    if as_json:
        print(json.dumps(row), flush=True)
        return
    print("torch gpt small %-4s  %8.1f ms/step (p10 %.1f, p90 %.1f)  %8.0f tokens/s  "
          "peak RSS %5.0f MiB  loss %.4f -> %.4f  [torch %s, %d threads, OpenBLAS %s, "
          "OMP_WAIT_POLICY=%s, mkldnn %s, foreach %s]" % (
              row["mode"], row["ms_per_step"], row["ms_p10"], row["ms_p90"],
              row["tokens_per_s"], row["peak_rss_bytes"] / 2**20, row["loss_first"],
              row["loss_last"], row["torch"], row["threads"], row["blas_threads"],
              row["omp_wait_policy"], row["mkldnn"], row["foreach"]), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=MODES + ("all",), default="all")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch and OpenBLAS threads (2)")
    ap.add_argument("--foreach", type=int, choices=(0, 1), default=0,
                    help="AdamW foreach (multi-tensor) implementation (default 0)")
    ap.add_argument("--no-mkldnn", action="store_true", help="disable torch.backends.mkldnn")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or args.threads < 1:
        ap.error("--steps, --warmup and --threads must be >= 1")
    if args.mode == "all":  # one process per mode: each gets its own peak RSS
        rc = 0
        for mode in MODES:
            cmd = [sys.executable, os.path.abspath(__file__), "--mode", mode,
                   "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--threads", str(args.threads), "--foreach", str(args.foreach)]
            cmd += ["--no-mkldnn"] * args.no_mkldnn + ["--json"] * args.json
            env = dict(os.environ)
            env.pop("OMP_WAIT_POLICY")
            if USER_WAIT_POLICY is not None:
                env["OMP_WAIT_POLICY"] = USER_WAIT_POLICY
            rc |= subprocess.call(cmd, env=env)
        return rc
    torch.set_num_threads(args.threads)
    blas_threads = set_blas_threads(args.threads)
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    show(run(args.mode, args, blas_threads), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
