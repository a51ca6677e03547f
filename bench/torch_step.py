#!/usr/bin/env python3
"""bench/torch_step.py - PyTorch's side of the side-by-side training-step benchmark.

Measures milliseconds per training step (forward + cross-entropy loss +
backward + optimizer.step() + optimizer.zero_grad()) on the CPU and prints one
JSON object per line on stdout; everything else goes to stderr.

Comparison contract (the C side must build exactly these shapes):

  mlp  batch 256, input (256, 784) float
       Linear(784,1024) ReLU Linear(1024,1024) ReLU Linear(1024,10)
  cnn  batch 128, input (128, 1, 28, 28) float
       Conv2d(1,32,3) ReLU Conv2d(32,64,3) ReLU MaxPool2d(2) Flatten
       Linear(9216,128) ReLU Linear(128,10)
       (convolutions: no padding, stride 1, bias; 28 -> 26 -> 24 -> pool 12,
       64*12*12 = 9216)
  labels: int64 class indices in [0, 10); loss: mean cross-entropy.

Optimizer: torch.optim.SGD(lr=0.01, momentum=0.9), the same optimizer the C
side runs (--optimizer adamw: torch.optim.AdamW(lr=1e-3), defaults otherwise).
zero_grad uses set_to_none=True (PyTorch 2.x's default, its fastest path).

Modes:
  fp32           plain float32 everywhere.
  bf16-autocast  fp32 parameters (the master weights), forward + loss under
                 torch.autocast("cpu", dtype=torch.bfloat16); the loss is
                 taken on logits.float(). Optimizer steps fp32 params.
  bf16-pure      model.to(torch.bfloat16), bf16 inputs, the optimizer stepping
                 the bf16 parameters directly (its state is bf16 too): what
                 PyTorch gives without master weights. The (tiny) loss is
                 taken on logits.float() as in bf16-autocast.

For the cnn each mode runs twice, with contiguous (NCHW) and channels_last
(NHWC) model and input, their timed steps alternating; both lines are
printed, with "layout" saying which, and "best": true on the faster of the
two (for the mlp, layout is always "contiguous" and best is true).

Data: fixed random inputs and labels, made once (this measures compute, not
loading). Each configuration runs --warmup untimed steps, then --steps steps
each timed with time.perf_counter; ms_per_step is the median, ms_p10/ms_p90
the 10th/90th percentiles, samples_per_s = batch / median. Each line also
carries threads (torch's OpenMP pool), blas_threads (OpenBLAS's pool, which
runs this torch's fp32 GEMMs; set to --threads too), optimizer, warmup,
loss_first/loss_last (a sanity check: both finite, last below first),
torch (torch.__version__) and omp_wait_policy.

  /usr/bin/python3 bench/torch_step.py [--model mlp|cnn|all] [--mode fp32|bf16-autocast|bf16-pure|all]
      [--threads N] [--steps 30] [--warmup 5] [--optimizer sgd|adamw] [--seed 0]

(Use Debian's /usr/bin/python3: it has python3-torch. Needs torch >= 1.10 for
CPU autocast.)
"""
import os

# OMP_WAIT_POLICY must be in the environment before libgomp is loaded, i.e.
# before `import torch`; setting os.environ here (putenv) is enough because
# nothing above has loaded libgomp. Why: this torch runs its fp32 GEMMs on
# OpenBLAS's pthread pool and everything else on its OpenMP pool. With
# ACTIVE (spinning) OpenMP workers, the two pools fight over 2 cores:
# measured 44 ms vs 16 ms per MLP fp32 step. A value already set is kept
# (so OMP_WAIT_POLICY=ACTIVE reproduces the slow case) and reported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MODELS = {"mlp": 256, "cnn": 128}  # model -> batch
MODES = ("fp32", "bf16-autocast", "bf16-pure")
NUM_CLASSES = 10


def build_model(name):
    if name == "mlp":
        return nn.Sequential(
            nn.Linear(784, 1024), nn.ReLU(),
            nn.Linear(1024, 1024), nn.ReLU(),
            nn.Linear(1024, NUM_CLASSES))
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(9216, 128), nn.ReLU(),
            nn.Linear(128, NUM_CLASSES))
    raise ValueError(name)


def make_data(name, batch, gen):
    shape = (batch, 784) if name == "mlp" else (batch, 1, 28, 28)
    x = torch.randn(shape, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
    return x, y


def make_optimizer(kind, params):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)
    return torch.optim.AdamW(params, lr=1e-3)


def pct(sorted_ms, q):
    """Linear-interpolated percentile, q in [0, 100]."""
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    pos = (len(sorted_ms) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def make_runner(name, mode, layout, args):
    """Builds one (model, mode, layout) configuration; returns its step()."""
    batch = MODELS[name]
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)  # same initial weights in every mode
    model = build_model(name)
    x, y = make_data(name, batch, gen)
    if mode == "bf16-pure":
        model = model.to(torch.bfloat16)
        x = x.to(torch.bfloat16)
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    opt = make_optimizer(args.optimizer, model.parameters())
    autocast = mode == "bf16-autocast"

    def step():
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
        else:
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def run_mode(name, mode, layouts, args, blas_threads):
    """Times every layout of one (model, mode); returns one dict per layout.

    With two layouts the timed steps alternate between them (A B A B ...),
    so drift in a shared, noisy machine hits both alike and "best" is a fair
    pick; each step's activations are far bigger than L2, so alternating
    costs neither layout anything in cache.
    """
    batch = MODELS[name]
    steps = [make_runner(name, mode, layout, args) for layout in layouts]
    first = [s().item() for s in steps]
    for _ in range(args.warmup - 1):
        for s in steps:
            s()
    times = [[] for _ in steps]
    last = [None] * len(steps)
    for _ in range(args.steps):
        for i, s in enumerate(steps):
            t0 = time.perf_counter()
            last[i] = s()
            times[i].append((time.perf_counter() - t0) * 1e3)
    rows = []
    for layout, t, f, l in zip(layouts, times, first, last):
        t.sort()
        med = statistics.median(t)
        rows.append({
            "impl": "torch", "model": name, "mode": mode, "layout": layout,
            "threads": torch.get_num_threads(), "blas_threads": blas_threads,
            "batch": batch, "optimizer": args.optimizer,
            "ms_per_step": round(med, 3),
            "ms_p10": round(pct(t, 10), 3), "ms_p90": round(pct(t, 90), 3),
            "samples_per_s": round(batch / (med / 1e3), 1),
            "steps": args.steps, "warmup": args.warmup,
            "loss_first": round(f, 4), "loss_last": round(l.item(), 4),
            "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        })
    best = min(rows, key=lambda r: r["ms_per_step"])
    for r in rows:
        r["best"] = r is best
    return rows


def set_blas_threads(n):
    """Pins OpenBLAS's own pthread pool (this torch's fp32 GEMMs) to n threads.

    torch.set_num_threads sizes only the OpenMP pool; OpenBLAS keeps one
    thread per CPU, so --threads 1 would still run fp32 GEMMs on 2 cores.
    An OPENBLAS_NUM_THREADS already in the environment wins. Returns the
    OpenBLAS thread count, or None where torch does not use OpenBLAS.
    """
    try:
        # RTLD_NOLOAD: only the copy torch already loaded, never a new one.
        lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD)
        if "OPENBLAS_NUM_THREADS" not in os.environ:
            lib.openblas_set_num_threads(n)
        return lib.openblas_get_num_threads()
    except (OSError, AttributeError):
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=list(MODELS) + ["all"], default="all")
    ap.add_argument("--mode", choices=list(MODES) + ["all"], default="all")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="torch.set_num_threads (default: all CPUs, %(default)s)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    ap.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or args.threads < 1:
        ap.error("--steps, --warmup and --threads must be >= 1")

    torch.set_num_threads(args.threads)
    blas_threads = set_blas_threads(args.threads)
    models = list(MODELS) if args.model == "all" else [args.model]
    modes = list(MODES) if args.mode == "all" else [args.mode]
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OpenBLAS threads {blas_threads}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"optimizer {args.optimizer}",
          file=sys.stderr)
    for name in models:
        layouts = ["contiguous", "channels_last"] if name == "cnn" else ["contiguous"]
        for mode in modes:
            for r in run_mode(name, mode, layouts, args, blas_threads):
                print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
