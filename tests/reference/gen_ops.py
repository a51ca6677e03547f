#!/usr/bin/python3
"""gen_ops.py - writes ops_ref.bin, PyTorch reference values for the training engine's ops
(linear, conv2d, max-pool, ReLU/GELU, cross-entropy, a weight used twice) and the loss
trajectories of a tiny MLP trained for 10 steps in fp32, under bf16 autocast, and under an
explicit emulation of mixprec's bf16/fp16 precision policy. tests/fixture.h reads the file.

Everything is stored in mixprec's layout, not PyTorch's: activations NHWC (B, H, W, C), conv
weights (Cout, KH, KW, Cin), linear weights (out, in); the script permutes to and from NCHW
around each torch call. GELU is the tanh approximation; cross-entropy is the batch mean.

The op references (everything except mlp.*) are computed with float64 autograd from inputs drawn
as float32 (so the inputs are exactly what the C test feeds its fp32 kernels), then stored as
float32: a correct fp32 kernel agrees to ~1e-5.

Usage (the Debian interpreter, which has numpy 1.24 and torch 1.13):
    /usr/bin/python3 tests/reference/gen_ops.py            # (re)write the fixture
    /usr/bin/python3 tests/reference/gen_ops.py --check    # exit 1 if the file on disk differs
Exit status 77 (ctest "skipped") when numpy or torch cannot be imported.

--check regenerates in memory and compares with the file on disk. Names, kinds, shapes, the
random inputs and every int32 record must be identical; float outputs may differ by a per-group
tolerance (printed), because fp32/bf16 CPU kernels (MKL, oneDNN) need not give the same bits on
another CPU or build. Identical bytes are reported as such.

File format, all little-endian:
    char magic[8] = "MXPFIX01"; uint32 nrecords; then per record:
    uint16 name_len; char name[name_len] (ASCII, no NUL); uint8 kind (0 float32, 1 int32);
    uint8 ndim (0..6); int64 shape[ndim]; numel (product of shape, 1 for ndim 0) elements of
    4 bytes each.
"""
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # ctest: skipped, not failed
    print("SKIP: %s (needs numpy and torch)" % e, file=sys.stderr)
    sys.exit(77)

import os

MAGIC = b"MXPFIX01"
SEED = 20240612
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops_ref.bin")
KIND_F32, KIND_I32 = 0, 1

MLP_STEPS, MLP_BATCH, MLP_IN, MLP_HID, MLP_OUT = 10, 8, 20, 16, 10
SGD_ARGS = dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4)
ADAMW_ARGS = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
LOSS_SCALE = {"bf16": 1.0, "fp16": 1024.0}
EMU_DTYPE = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Writer:
    def __init__(self):
        self.recs = []  # (name, kind, shape, bytes)
        self.names = set()

    def add(self, name, t, kind=KIND_F32):
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.asarray(t)
        a = a.astype("<f4" if kind == KIND_F32 else "<i4", order="C")  # keeps ndim 0
        assert name not in self.names, name
        assert name.isascii() and 0 < len(name) < 65536 and "\0" not in name
        assert a.ndim <= 6
        if kind == KIND_I32:
            assert np.array_equal(a.astype(np.int64), np.asarray(t).astype(np.int64)), name
        self.names.add(name)
        self.recs.append((name, kind, tuple(int(s) for s in a.shape), a.tobytes()))

    def i32(self, name, t):
        self.add(name, t, KIND_I32)

    def serialize(self):
        out = [MAGIC, struct.pack("<I", len(self.recs))]
        for name, kind, shape, data in self.recs:
            nb = name.encode("ascii")
            out.append(struct.pack("<H", len(nb)) + nb + struct.pack("<BB", kind, len(shape)))
            out.append(struct.pack("<%dq" % len(shape), *shape))
            out.append(data)
        return b"".join(out)


def parse(data):
    """Records of a fixture as an ordered list of (name, kind, shape, bytes)."""
    if data[:8] != MAGIC:
        raise ValueError("bad magic")
    (n,), p, recs = struct.unpack_from("<I", data, 8), 12, []
    for _ in range(n):
        (ln,) = struct.unpack_from("<H", data, p)
        name = data[p + 2:p + 2 + ln].decode("ascii")
        p += 2 + ln
        kind, nd = struct.unpack_from("<BB", data, p)
        shape = struct.unpack_from("<%dq" % nd, data, p + 2)
        p += 2 + 8 * nd
        nbytes = 4 * int(np.prod(shape, dtype=np.int64))
        if p + nbytes > len(data):
            raise ValueError("truncated at %s" % name)
        recs.append((name, kind, tuple(shape), data[p:p + nbytes]))
        p += nbytes
    if p != len(data):
        raise ValueError("%d trailing bytes" % (len(data) - p))
    return recs


def f32(g, *shape, scale=1.0):
    """float32 normal draws (what the C test feeds in), promoted to float64 for the reference."""
    return (torch.randn(*shape, generator=g, dtype=torch.float32) * scale).double()


def leaf(t):
    return t.clone().requires_grad_(True)


def gelu(t):
    return F.gelu(t, approximate="tanh")


# ---------------------------------------------------------------- single ops (float64 autograd)

def ops_linear(w_, g):
    x, w, b, dy = f32(g, 5, 7), f32(g, 3, 7, scale=0.5), f32(g, 3), f32(g, 5, 3)
    for prefix, act in (("linear", lambda t: t), ("linear_relu", F.relu),
                        ("linear_gelu", gelu)):
        xl, wl, bl = leaf(x), leaf(w), leaf(b)
        y = act(xl @ wl.T + bl)
        y.backward(dy)
        for k, v in (("x", x), ("w", w), ("b", b), ("dy", dy), ("y", y), ("dx", xl.grad),
                     ("dw", wl.grad), ("db", bl.grad)):
            w_.add("%s.%s" % (prefix, k), v)


def ops_conv(w_, g):
    for prefix, B, H, W, Cin, Cout, K, stride, pad in (("conv_a", 2, 6, 7, 3, 4, 3, 1, 1),
                                                       ("conv_b", 2, 7, 5, 2, 3, 3, 2, 0)):
        OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
        x = f32(g, B, H, W, Cin)                      # NHWC
        w = f32(g, Cout, K, K, Cin, scale=0.3)        # (Cout, KH, KW, Cin)
        b = f32(g, Cout)
        dy = f32(g, B, OH, OW, Cout)                  # NHWC
        xl = leaf(x.permute(0, 3, 1, 2).contiguous())  # NCHW for torch
        wl = leaf(w.permute(0, 3, 1, 2).contiguous())  # (Cout, Cin, KH, KW)
        bl = leaf(b)
        y = F.conv2d(xl, wl, bl, stride=stride, padding=pad)
        assert y.shape == (B, Cout, OH, OW)
        y.backward(dy.permute(0, 3, 1, 2).contiguous())
        for k, v in (("x", x), ("w", w), ("b", b), ("dy", dy),
                     ("y", y.permute(0, 2, 3, 1)), ("dx", xl.grad.permute(0, 2, 3, 1)),
                     ("dw", wl.grad.permute(0, 2, 3, 1)), ("db", bl.grad)):
            w_.add("%s.%s" % (prefix, k), v)
        w_.i32(prefix + ".meta", [stride, pad])


def ops_pool(w_, g):
    for prefix, B, H, W, C, K, stride in (("pool_a", 2, 6, 6, 3, 2, 2),
                                          ("pool_b", 2, 7, 7, 2, 3, 2)):
        OH, OW = (H - K) // stride + 1, (W - K) // stride + 1
        x = f32(g, B, H, W, C)
        # no ties anywhere, so the argmax of every window is unambiguous
        assert len(torch.unique(x)) == x.numel()
        dy = f32(g, B, OH, OW, C)
        xl = leaf(x.permute(0, 3, 1, 2).contiguous())
        y = F.max_pool2d(xl, kernel_size=K, stride=stride)
        assert y.shape == (B, C, OH, OW)
        y.backward(dy.permute(0, 3, 1, 2).contiguous())
        for k, v in (("x", x), ("dy", dy), ("y", y.permute(0, 2, 3, 1)),
                     ("dx", xl.grad.permute(0, 2, 3, 1))):
            w_.add("%s.%s" % (prefix, k), v)
        w_.i32(prefix + ".meta", [K, stride])


def ops_act(w_, g):
    fixed = [-50.0, -20.0, -10.0, -8.0, -5.0, -3.0, -2.0, -1.0, -0.5, -0.1, -1e-3, -1e-6,
             0.0, 1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 20.0, 50.0]
    rest = torch.randn(64 - len(fixed), generator=g, dtype=torch.float32) * 2.0
    x = torch.cat([torch.tensor(fixed, dtype=torch.float32), rest]).double()
    dy = f32(g, 64)
    w_.add("act.x", x)
    w_.add("act.dy", dy)
    for name, fn in (("relu", F.relu), ("gelu", gelu)):
        xl = leaf(x)
        y = fn(xl)
        y.backward(dy)
        w_.add(name + ".y", y)
        w_.add(name + ".dx", xl.grad)   # torch: relu'(0) = 0


def ops_ce(w_, g):
    logits = f32(g, 6, 10, scale=2.0)
    labels = torch.randint(0, 10, (6,), generator=g)
    ll = leaf(logits)
    loss = F.cross_entropy(ll, labels, reduction="mean")
    loss.backward()
    w_.add("ce.logits", logits)
    w_.i32("ce.labels", labels)
    w_.add("ce.loss", loss)          # ndim 0
    w_.add("ce.dlogits", ll.grad)


def ops_twice(w_, g):
    x, w, dy = f32(g, 4, 5), f32(g, 5, 5, scale=0.5), f32(g, 4, 5)
    xl, wl = leaf(x), leaf(w)
    y = F.relu(xl @ wl.T) @ wl.T
    y.backward(dy)
    for k, v in (("x", x), ("w", w), ("dy", dy), ("y", y), ("dx", xl.grad), ("dw", wl.grad)):
        w_.add("twice." + k, v)


# ---------------------------------------------------------------- the tiny MLP

def mlp_init():
    torch.manual_seed(0)
    l1 = torch.nn.Linear(MLP_IN, MLP_HID)
    l2 = torch.nn.Linear(MLP_HID, MLP_OUT)
    return [p.detach().clone() for p in (l1.weight, l1.bias, l2.weight, l2.bias)]


def make_opt(kind, params):
    if kind == "sgd":
        return torch.optim.SGD(params, **SGD_ARGS)
    return torch.optim.AdamW(params, **ADAMW_ARGS)


def mlp_forward(p, x):
    w1, b1, w2, b2 = p
    return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)


def train_fp32(init, xs, ys, opt_kind, autocast):
    p = [t.clone().requires_grad_(True) for t in init]
    opt = make_opt(opt_kind, p)
    losses = []
    for i in range(MLP_STEPS):
        opt.zero_grad()
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = mlp_forward(p, xs[i])
            assert logits.dtype == torch.bfloat16
            loss = F.cross_entropy(logits.float(), ys[i])
        else:
            loss = F.cross_entropy(mlp_forward(p, xs[i]), ys[i])
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses, [t.detach() for t in p]


def train_emu(init, xs, ys, opt_kind, fmt):
    """mixprec's precision policy with explicit casts (see the README): fp32 master weights,
    16-bit working copies, fp32 accumulation rounded once per op output, static loss scale."""
    dt, S = EMU_DTYPE[fmt], LOSS_SCALE[fmt]

    def r(t):
        return t.to(dt).to(torch.float32)

    master = [t.clone() for t in init]
    opt = make_opt(opt_kind, master)
    losses = []
    for i in range(MLP_STEPS):
        w1, b1, w2, b2 = (r(t) for t in master)
        x16, y = r(xs[i]), ys[i]
        B = x16.shape[0]
        h = r(F.relu(x16 @ w1.T + b1))
        logits = r(h @ w2.T + b2)
        loss = F.cross_entropy(logits, y)            # fp32, from the rounded logits
        losses.append(loss.item())
        onehot = F.one_hot(y, MLP_OUT).to(torch.float32)
        dlogits = r(S * (torch.softmax(logits, dim=1) - onehot) / B)
        dw2 = r(dlogits.T @ h)
        db2 = r(dlogits.sum(0))
        dh = r(dlogits @ w2) * (h > 0).to(torch.float32)
        dw1 = r(dh.T @ x16)
        db1 = r(dh.sum(0))
        grads = [dw1, db1, dw2, db2]
        for gr in grads:
            assert torch.isfinite(gr).all(), "%s overflow at step %d" % (fmt, i)
        for t, gr in zip(master, grads):
            t.grad = gr / S                          # unscale in fp32
        opt.step()
    return losses


def mlp(w_, g):
    # uniform labels, inputs around a random centre per class (1.5 * N(0,1) centres plus N(0,1)
    # noise), so that the loss visibly falls within 10 steps
    ys = torch.randint(0, MLP_OUT, (MLP_STEPS, MLP_BATCH), generator=g)
    centres = torch.randn(MLP_OUT, MLP_IN, generator=g, dtype=torch.float32)
    xs = centres[ys] * 1.5 + torch.randn(MLP_STEPS, MLP_BATCH, MLP_IN, generator=g,
                                         dtype=torch.float32)
    init = mlp_init()
    w_.add("mlp.x", xs)
    w_.i32("mlp.labels", ys)
    for k, t in zip(("w1", "b1", "w2", "b2"), init):
        w_.add("mlp." + k, t)
    traj = {}
    for opt_kind in ("sgd", "adamw"):
        losses, final = train_fp32(init, xs, ys, opt_kind, autocast=False)
        traj[(opt_kind, "fp32")] = losses
        w_.add("mlp.%s.fp32.loss" % opt_kind, losses)
        for k, t in zip(("w1", "b1", "w2", "b2"), final):
            w_.add("mlp.%s.fp32.%s" % (opt_kind, k), t)
    for opt_kind in ("sgd", "adamw"):
        losses, _ = train_fp32(init, xs, ys, opt_kind, autocast=True)
        traj[(opt_kind, "bf16autocast")] = losses
        w_.add("mlp.%s.bf16autocast.loss" % opt_kind, losses)
    for fmt in ("bf16", "fp16"):
        for opt_kind in ("sgd", "adamw"):
            losses = train_emu(init, xs, ys, opt_kind, fmt)
            traj[(opt_kind, fmt + "emu")] = losses
            w_.add("mlp.%s.%semu.loss" % (opt_kind, fmt), losses)
    return traj


def build():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(SEED)
    w_ = Writer()
    ops_linear(w_, g)
    ops_conv(w_, g)
    ops_pool(w_, g)
    ops_act(w_, g)
    ops_ce(w_, g)
    ops_twice(w_, g)
    traj = mlp(w_, g)
    return w_.serialize(), w_.recs, traj


# --check tolerances, |new - old| <= atol + rtol * |old|, by record group. Inputs and int32
# records must be identical; op outputs are float64 rounded to fp32 (at most an ulp apart);
# the trainings run fp32/bf16 CPU kernels whose bits may depend on the CPU and build.
INPUT_KEYS = ("x", "w", "b", "dy", "logits", "w1", "b1", "w2", "b2")


def tolerance(name):
    parts = name.split(".")
    if parts[0] == "mlp":
        if len(parts) == 2:
            return ("input", 0.0, 0.0)
        if parts[2] == "fp32":
            return ("mlp fp32 training", 1e-4, 1e-4)
        return ("mlp bf16/fp16 training", 2e-2, 2e-2)
    if parts[-1] in INPUT_KEYS:
        return ("input", 0.0, 0.0)
    return ("op output", 1e-6, 1e-6)


def check(data, recs, out=OUT, tol=None, atol_of_max=False):
    """--check: compare the regenerated records with the file `out` on disk. tol(name) gives
    (group, atol, rtol); a value passes when |new - old| <= atol + rtol |old|, or with
    atol_of_max when |new - old| <= atol max|old| + rtol |old| (gen_gpt.py's tensors vary in
    scale). Shared by gen_gpt.py."""
    tol = tol or tolerance
    try:
        with open(out, "rb") as f:
            old_data = f.read()
    except OSError as e:
        print("cannot read %s: %s" % (out, e), file=sys.stderr)
        return 1
    if old_data == data:
        print("fixture up to date: %s identical (%d records, %d bytes)" % (out, len(recs),
                                                                            len(data)))
        return 0
    try:
        old = parse(old_data)
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        print("%s is not a valid fixture: %s" % (out, e), file=sys.stderr)
        return 1
    if [(n, k, s) for n, k, s, _ in old] != [(n, k, s) for n, k, s, _ in recs]:
        print("%s: record names/kinds/shapes differ; regenerate and review" % out,
              file=sys.stderr)
        return 1
    print("bytes differ; comparing with tolerances |new-old| <= atol%s + rtol*|old|:" %
          ("*max|old|" if atol_of_max else ""))
    for grp, atol, rtol in sorted(set(tol(n) for n, *_ in recs)):
        print("  %-32s atol %g rtol %g" % (grp, atol, rtol))
    bad = 0
    for (name, kind, _, ob), (_, _, _, nb) in zip(old, recs):
        if ob == nb:
            continue
        grp, atol, rtol = tol(name)
        if kind == KIND_I32:
            atol = rtol = 0.0
        o = np.frombuffer(ob, "<f4" if kind == KIND_F32 else "<i4").astype(np.float64)
        n = np.frombuffer(nb, "<f4" if kind == KIND_F32 else "<i4").astype(np.float64)
        err = np.abs(n - o)
        scale = np.abs(o).max() if atol_of_max else 1.0
        ok = np.all(err <= atol * scale + rtol * np.abs(o))
        print("  %-40s %-32s max |diff| %.3g %s" % (name, grp, float(err.max()),
                                                     "ok" if ok else "FAIL"))
        bad += not ok
    if bad:
        print("%d records out of tolerance: regenerate %s and review the diff" % (bad, out),
              file=sys.stderr)
        return 1
    print("fixture within tolerance")
    return 0


def main():
    data, recs, traj = build()
    if "--check" in sys.argv[1:]:
        sys.exit(check(data, recs))
    with open(OUT, "wb") as f:
        f.write(data)
    print("wrote %s: %d records, %d bytes; torch %s, numpy %s" % (
        OUT, len(recs), len(data), torch.__version__, np.__version__))
    if "-v" in sys.argv[1:]:
        for name, kind, shape, _ in recs:
            print("  %-26s %s %s" % (name, "f32" if kind == KIND_F32 else "i32", list(shape)))
        for key in sorted(traj):
            print("  %-5s %-13s %s" % (key[0], key[1],
                                       " ".join("%.4f" % v for v in traj[key])))


if __name__ == "__main__":
    main()
