#!/usr/bin/python3
"""gen_gpt.py - writes gpt_ref.bin, PyTorch references for mixprec's gpt model (tests/test_gpt.c).

A tiny GPT-2 (tests/reference/gpt_torch.py; Hugging Face GPT-2's names and layouts): 2 layers,
4 heads, n_embd C = 64, block 32, vocab V = 65, batch B = 4, T = 32, N = B*T = 128 tokens.
Pre-LN blocks x += attn(ln_1(x)); x += mlp(ln_2(x)), LayerNorm eps 1e-5 (biased variance),
GELU tanh, causal attention scaled by 1/sqrt(hd) (hd = 16), no dropout, LM head tied to wte
(logits = ln_f(x) wte^T), loss = mean cross-entropy over all N tokens.

Records (float32 unless marked int32; W = every parameter, under its HF name, e.g.
"h.0.attn.c_attn.weight" (64, 192), (in, out) as GPT-2's Conv1D):
  config                      int32 [n_layer, n_head, n_embd, block, vocab, B, T, steps]
  tokens, targets             int32 (B, T): one (B, T+1) draw uniform in [0, V); tokens = [:, :T],
                              targets = [:, 1:] (the next token). The same batch every step.
  init.<W>                    the initial weights: GPT-2's init (gpt_torch.init_gpt2_, seed
                              SEED), then the 1-D parameters perturbed so that a wrongly applied
                              bias or LayerNorm scale shows in the forward pass: every bias and
                              LayerNorm bias += N(0, 0.02), every LayerNorm weight += N(0, 0.1)
  fp32.logits (B,T,V), fp32.loss (), fp32.grad.<W>
                              float64 autograd from the float32 weights, stored as float32
  bf16emu.*, fp16emu.*        logits, loss, every grad under the emulation below, seed 1
  bf16autocast.logits/.loss   torch.autocast("cpu", torch.bfloat16) forward of the fp32 model
                              (loss on logits.float()); bf16autocast.grad.<W> only for wte, wpe
                              and the 1-D parameters (the 2-D block weights would push the file
                              past 2 MB; the emulation is the primary bf16 reference)
  train.fp32.loss (10)        AdamW training, the loss of each step before its update, in float64
  train.bf16autocast.loss     fp32 master weights, forward under bf16 autocast
  train.{bf16,fp16}emu.loss   the emulation, fp32 masters, loss scale 1 (bf16) / 1024 static (fp16)

AdamW (torch.optim.AdamW, foreach=False): lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1
on the 2-D weights only (wte, wpe, the four Conv1D weights per layer), 0 on biases and
LayerNorm; no clipping, no schedule. Per step t (1-based), per parameter p with gradient g:
    p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
In the emulated runs g = (the rounded gradient) / S in fp32 and everything above is fp32 on the
master weights; the working copies are re-rounded from the masters before each forward.

The emulation (mixprec's autocast policy, DESIGN.md; r(t) = round to the working dtype, nearest
even, then back to fp32; every product is torch's fp32 matmul, i.e. fp32 accumulation; rows are
the N tokens, activations (N, C)):
  forward
    x    = r(wte[tok] + wpe[t])                                    (fp32 add, rounded once)
    per layer:
      a    = LN(x; ln_1)       LN(x) = r((x - mean) * rstd * w + b), mean and biased var in
                               fp32 over C, rstd = 1/sqrt(var + 1e-5)
      qkv  = r(a Wattn + battn)                                     (N, 3C); q | k | v, head h
                               at columns h*hd .. h*hd+hd-1 of each
      S    = (q k^T) / sqrt(hd) in fp32, -inf above the diagonal; P = r(softmax(S)) (fp32 softmax)
      y    = r(P v)                                                 (N, C), heads side by side
      x1   = r(x + r(y Wproj + bproj))
      a2   = LN(x1; ln_2)
      z    = a2 Wfc + bfc in fp32 (not rounded: GELU is fused into the GEMM epilogue);
             h = r(gelu_tanh(z)); the backward uses zr = r(z) (the saved pre-activation)
      x    = r(x1 + r(h Wmp + bmp))
    af   = LN(x; ln_f);  logits = r(af wte^T)
    loss = mean over N of logsumexp(logits) - logits[target], in fp32 from the rounded logits
  backward, seed S (dloss = S; the C test's gradient check uses S = 1)
    dlogits = r((S / N) * (softmax(logits) - onehot(target)))
    g[wte]  = r(dlogits^T af)                           (the head's contribution, first)
    daf     = r(dlogits wte)
    LN backward (dy, x, w -> dx, dw, db): xhat = (x - mean) * rstd, dxh = dy * w,
      dx = r(rstd * (dxh - mean(dxh) - xhat * mean(dxh * xhat))), dw = sum_N(dy * xhat) and
      db = sum_N(dy) in fp32, rounded once into g[w], g[b]
    dx = LN backward of daf through ln_f (rounded)
    per layer, last first, dx2 = dx the gradient of the layer's output:
      the residual add hands dx2 to both its inputs unchanged
      g[mlp.c_proj.w] = r(h^T dx2); g[mlp.c_proj.b] = r(sum_N dx2); dh = r(dx2 Wmp^T)
      dz = r(dh * gelu_tanh'(zr))
      g[c_fc.w] = r(a2^T dz); g[c_fc.b] = r(sum_N dz); da2 = r(dz Wfc^T)
      dx1 = r(dx2 + LNback(da2; ln_2))        (the residual's contribution first, then the LN's,
                                               added in fp32 and rounded once)
      g[attn.c_proj.w] = r(y^T dx1); g[attn.c_proj.b] = r(sum_N dx1); dy = r(dx1 Wproj^T)
      attention backward, per (b, head), P the rounded probabilities:
        dP = dy v^T (fp32); dS = r(P * (dP - rowsum(dP * P)) / sqrt(hd)) (computed in fp32,
        rounded to the working format before the two products, as autocast does)
        dq = r(dS k); dk = r(dS^T q); dv = r(P^T dy)
      g[c_attn.w] = r(a^T dqkv); g[c_attn.b] = r(sum_N dqkv); da = r(dqkv Wattn^T)
      dx = r(dx1 + LNback(da; ln_1))
    g[wte] = r(g[wte] + scatter_add by token of dx (fp32)); g[wpe] = r(sum over B of dx (fp32))
  The emulation's backward is checked against float64 autograd (with r = identity) every run.
Not emulated: the order of fp32 additions inside mixprec's kernels (torch's fp32 matmul
decides which way a value near a rounding boundary goes), loss-scale dynamics (fp16 uses a
static 1024 and every gradient is asserted finite: no step is skipped). The emulated values
are therefore a guide within a tolerance, not bit-exact targets.

Usage (the Debian interpreter, which has numpy 1.24 and torch 1.13):
    /usr/bin/python3 tests/reference/gen_gpt.py [-v]   # (re)write the fixture; -v: records,
                                                       # trajectories, emulation error
    /usr/bin/python3 tests/reference/gen_gpt.py --check  # exit 1 if the file on disk differs
Exit status 77 (ctest "skipped") when numpy or torch cannot be imported.

--check regenerates in memory and compares with the file on disk: names, kinds, shapes, the
inputs (config, tokens, targets, init.*) must be identical; float outputs must satisfy
|new - old| <= atol * max|old| + rtol * |old| per record, with (atol, rtol) per group printed
by the script. File format: see gen_ops.py (magic "MXPFIX01"; tests/fixture.h reads it).
"""
import math
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # ctest: skipped, not failed
    print("SKIP: %s (needs numpy and torch)" % e, file=sys.stderr)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_ops  # noqa: E402  (the fixture Writer and parser)
import gpt_torch  # noqa: E402

OUT = os.path.join(HERE, "gpt_ref.bin")
SEED = 20240613
N_LAYER, N_HEAD, N_EMBD, BLOCK, VOCAB = 2, 4, 64, 32, 65
BATCH, T = 4, 32
STEPS = 10
ADAMW = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
LOSS_SCALE = {"bf16": 1.0, "fp16": 1024.0}
EMU_DTYPE = {"bf16": torch.bfloat16, "fp16": torch.float16}


def make_model(dtype=torch.float32):
    return gpt_torch.GPT(VOCAB, BLOCK, N_EMBD, N_LAYER, N_HEAD).to(dtype)


def make_init(g):
    m = gpt_torch.init_gpt2_(make_model(), g)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    for k, v in sd.items():  # perturb the 1-D parameters (see the docstring)
        if v.dim() == 1:
            std = 0.1 if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or \
                k == "ln_f.weight" else 0.02
            v += torch.randn(v.shape, generator=g, dtype=torch.float32) * std
    return sd


def load(sd, dtype):
    m = make_model(dtype)
    m.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True)
    return m


def ce(logits, targets):
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def make_adamw(named):
    """named: [(name, tensor)] in state_dict order; weight decay on 2-D only, foreach=False."""
    decay = [p for _, p in named if p.dim() == 2]
    rest = [p for _, p in named if p.dim() != 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW["weight_decay"]},
                              {"params": rest, "weight_decay": 0.0}],
                             lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"],
                             foreach=False)


# ------------------------------------------------------------------ references by autograd

def autograd_ref(sd, tokens, targets, dtype, autocast=False):
    """logits, loss, {name: grad} of the model built from sd in dtype (autocast: bf16)."""
    m = load(sd, dtype)
    if autocast:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = m(tokens)
        assert logits.dtype == torch.bfloat16
        logits = logits.float()
    else:
        logits = m(tokens)
    loss = ce(logits, targets)
    loss.backward()
    return logits.detach(), loss.detach(), {k: p.grad for k, p in m.named_parameters()}


# ------------------------------------------------------------------ the emulation

def gelu_tanh(z):
    return 0.5 * z * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))


def gelu_tanh_grad(z):
    k = math.sqrt(2.0 / math.pi)
    u = k * (z + 0.044715 * z ** 3)
    th = torch.tanh(u)
    return 0.5 * (1.0 + th) + 0.5 * z * (1.0 - th * th) * k * (1.0 + 3 * 0.044715 * z * z)


def ln_fwd(r, x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + gpt_torch.LN_EPS)
    return r((x - mean) * rstd * w + b), (mean, rstd)


def ln_bwd(r, dy, x, w, stats):
    mean, rstd = stats
    xhat = (x - mean) * rstd
    dxh = dy * w
    dx = rstd * (dxh - dxh.mean(-1, keepdim=True) - xhat * (dxh * xhat).mean(-1, keepdim=True))
    return r(dx), (dy * xhat).sum(0), dy.sum(0)


def heads(t):  # (N, C) -> (B, NH, T, hd)
    return t.view(BATCH, T, N_HEAD, N_EMBD // N_HEAD).transpose(1, 2)


def unheads(t):  # (B, NH, T, hd) -> (N, C)
    return t.transpose(1, 2).reshape(BATCH * T, N_EMBD)


def emulate(W, tokens, targets, r, S):
    """Forward and backward of the policy in the docstring. W: working weights (already
    rounded), in the dtype the arithmetic runs in (fp32; float64 with r = identity for the
    self-check). Returns logits (B, T, V), loss, {name: gradient (rounded, times S)}."""
    C, hd, N = N_EMBD, N_EMBD // N_HEAD, BATCH * T
    tok = tokens.reshape(-1)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    x = r(W["wte.weight"][tok] + W["wpe.weight"][:T].repeat(BATCH, 1))  # (N, C)
    saved = []
    for layer in range(N_LAYER):
        p = "h.%d." % layer
        s = {"x": x}
        s["a"], s["ln1"] = ln_fwd(r, x, W[p + "ln_1.weight"], W[p + "ln_1.bias"])
        s["qkv"] = r(s["a"] @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"])
        q, k, v = (heads(t) for t in s["qkv"].split(C, dim=1))
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(hd)).masked_fill(mask, float("-inf"))
        s["P"] = r(torch.softmax(att, dim=-1))
        s["y"] = r(unheads(s["P"] @ v))
        x1 = r(x + r(s["y"] @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]))
        s["x1"] = x1
        s["a2"], s["ln2"] = ln_fwd(r, x1, W[p + "ln_2.weight"], W[p + "ln_2.bias"])
        z = s["a2"] @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"]
        s["zr"], s["h"] = r(z), r(gelu_tanh(z))
        x = r(x1 + r(s["h"] @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]))
        saved.append(s)
    af, lnf = ln_fwd(r, x, W["ln_f.weight"], W["ln_f.bias"])
    logits = r(af @ W["wte.weight"].t())  # (N, V)
    loss = F.cross_entropy(logits, targets.reshape(-1))

    g = {}
    onehot = F.one_hot(targets.reshape(-1), VOCAB).to(logits.dtype)
    dlogits = r((S / N) * (torch.softmax(logits, dim=1) - onehot))
    g["wte.weight"] = r(dlogits.t() @ af)
    dx, dw, db = ln_bwd(r, r(dlogits @ W["wte.weight"]), x, W["ln_f.weight"], lnf)
    g["ln_f.weight"], g["ln_f.bias"] = r(dw), r(db)
    for layer in reversed(range(N_LAYER)):
        p, s = "h.%d." % layer, saved[layer]
        dx2 = dx
        g[p + "mlp.c_proj.weight"] = r(s["h"].t() @ dx2)
        g[p + "mlp.c_proj.bias"] = r(dx2.sum(0))
        dh = r(dx2 @ W[p + "mlp.c_proj.weight"].t())
        dz = r(dh * gelu_tanh_grad(s["zr"]))
        g[p + "mlp.c_fc.weight"] = r(s["a2"].t() @ dz)
        g[p + "mlp.c_fc.bias"] = r(dz.sum(0))
        dxl, dw, db = ln_bwd(r, r(dz @ W[p + "mlp.c_fc.weight"].t()), s["x1"],
                             W[p + "ln_2.weight"], s["ln2"])
        g[p + "ln_2.weight"], g[p + "ln_2.bias"] = r(dw), r(db)
        dx1 = r(dx2 + dxl)
        g[p + "attn.c_proj.weight"] = r(s["y"].t() @ dx1)
        g[p + "attn.c_proj.bias"] = r(dx1.sum(0))
        dy = heads(r(dx1 @ W[p + "attn.c_proj.weight"].t()))
        q, k, v = (heads(t) for t in s["qkv"].split(C, dim=1))
        P = s["P"]
        dP = dy @ v.transpose(-2, -1)
        dS = r(P * (dP - (dP * P).sum(-1, keepdim=True)) / math.sqrt(hd))
        dqkv = torch.cat([unheads(r(dS @ k)), unheads(r(dS.transpose(-2, -1) @ q)),
                          unheads(r(P.transpose(-2, -1) @ dy))], dim=1)
        g[p + "attn.c_attn.weight"] = r(s["a"].t() @ dqkv)
        g[p + "attn.c_attn.bias"] = r(dqkv.sum(0))
        dxl, dw, db = ln_bwd(r, r(dqkv @ W[p + "attn.c_attn.weight"].t()), s["x"],
                             W[p + "ln_1.weight"], s["ln1"])
        g[p + "ln_1.weight"], g[p + "ln_1.bias"] = r(dw), r(db)
        dx = r(dx1 + dxl)
    dwte = torch.zeros_like(W["wte.weight"]).index_add_(0, tok, dx)
    g["wte.weight"] = r(g["wte.weight"] + dwte)
    g["wpe.weight"] = torch.zeros_like(W["wpe.weight"])
    g["wpe.weight"][:T] = r(dx.view(BATCH, T, C).sum(0))
    return logits.view(BATCH, T, VOCAB), loss, g


def rounder(fmt):
    if fmt is None:
        return lambda t: t
    dt = EMU_DTYPE[fmt]
    return lambda t: t.to(dt).to(torch.float32)


def emu_ref(sd, tokens, targets, fmt, S=1.0):
    r = rounder(fmt)
    W = {k: r(v) for k, v in sd.items()}
    return emulate(W, tokens, targets, r, S)


def self_check(sd, tokens, targets):
    """The emulation's hand-written backward with r = identity in float64 equals autograd."""
    W = {k: v.double() for k, v in sd.items()}
    lg, loss, g = emulate(W, tokens, targets, lambda t: t, 1.0)
    lr, lossr, gr = autograd_ref(sd, tokens, targets, torch.float64)
    assert torch.allclose(lg, lr, rtol=0, atol=1e-12), "emulation forward"
    assert abs(loss.item() - lossr.item()) < 1e-12, "emulation loss"
    for k in sd:
        err = (g[k] - gr[k]).abs().max().item()
        assert err <= 1e-12 * max(1.0, gr[k].abs().max().item()), "emulation grad %s: %g" % (k, err)


# ------------------------------------------------------------------ training

def train_autograd(sd, tokens, targets, dtype, autocast=False):
    m = load(sd, dtype)
    opt = make_adamw(list(m.named_parameters()))
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = m(tokens)
            loss = ce(logits.float(), targets)
        else:
            loss = ce(m(tokens), targets)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses


def train_emu(sd, tokens, targets, fmt):
    S = LOSS_SCALE[fmt]
    master = {k: v.clone() for k, v in sd.items()}
    opt = make_adamw(list(master.items()))
    losses = []
    for i in range(STEPS):
        _, loss, g = emu_ref(master, tokens, targets, fmt, S)
        losses.append(loss.item())
        for k, t in master.items():
            assert torch.isfinite(g[k]).all(), "%s: %s overflows at step %d" % (fmt, k, i)
            t.grad = g[k] / S  # unscale in fp32
        opt.step()
    return losses


# ------------------------------------------------------------------ the fixture

def build(verbose=False):
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(SEED)
    sd = make_init(g)
    seq = torch.randint(0, VOCAB, (BATCH, T + 1), generator=g)
    tokens, targets = seq[:, :T].contiguous(), seq[:, 1:].contiguous()
    self_check(sd, tokens, targets)

    w = gen_ops.Writer()
    w.i32("config", [N_LAYER, N_HEAD, N_EMBD, BLOCK, VOCAB, BATCH, T, STEPS])
    w.i32("tokens", tokens)
    w.i32("targets", targets)
    for k, v in sd.items():
        w.add("init." + k, v)

    logits64, loss64, g64 = autograd_ref(sd, tokens, targets, torch.float64)
    w.add("fp32.logits", logits64)
    w.add("fp32.loss", loss64)
    for k in sd:
        w.add("fp32.grad." + k, g64[k])
    report = {}
    for fmt in ("bf16", "fp16"):
        lg, loss, gr = emu_ref(sd, tokens, targets, fmt)
        w.add(fmt + "emu.logits", lg)
        w.add(fmt + "emu.loss", loss)
        for k in sd:
            w.add("%semu.grad.%s" % (fmt, k), gr[k])
        report[fmt + "emu"] = (lg, loss, gr)
    lg, loss, gr = autograd_ref(sd, tokens, targets, torch.float32, autocast=True)
    w.add("bf16autocast.logits", lg)
    w.add("bf16autocast.loss", loss)
    for k in sd:
        if sd[k].dim() == 1 or k in ("wte.weight", "wpe.weight"):
            w.add("bf16autocast.grad." + k, gr[k])
    report["bf16autocast"] = (lg, loss, gr)

    traj = {"fp32": train_autograd(sd, tokens, targets, torch.float64),
            "bf16autocast": train_autograd(sd, tokens, targets, torch.float32, autocast=True)}
    for fmt in ("bf16", "fp16"):
        traj[fmt + "emu"] = train_emu(sd, tokens, targets, fmt)
    for key in ("fp32", "bf16autocast", "bf16emu", "fp16emu"):
        w.add("train.%s.loss" % key, traj[key])
    if verbose:
        traj["fp32 (torch fp32, not stored)"] = train_autograd(sd, tokens, targets,
                                                              torch.float32)
        print_report(logits64, loss64, g64, report, traj)
    return w.serialize(), w.recs


def print_report(logits64, loss64, g64, report, traj):
    """How far each lower-precision reference is from float64: max |diff| / max |float64|."""
    print("loss float64 %.6f" % loss64.item())
    for key, (lg, loss, gr) in report.items():
        def rel(a, b):
            return ((a.double() - b).abs().max() / b.abs().max()).item()
        worst = max((rel(gr[k], g64[k]), k) for k in g64)
        print("  %-13s loss %.6f  logits %.2e  worst grad %.2e (%s)" % (
            key, loss.item(), rel(lg, logits64), worst[0], worst[1]))
    for key, ls in traj.items():
        print("  train %-30s %s" % (key, " ".join("%.5f" % v for v in ls)))


# --check tolerances: |new - old| <= atol * max|old| + rtol * |old| per record
def tolerance(name):
    head = name.split(".")[0]
    if head in ("config", "tokens", "targets", "init"):
        return ("input", 0.0, 0.0)
    if head == "fp32":
        return ("float64 reference", 1e-6, 1e-6)
    if name == "train.fp32.loss":
        return ("float64 training", 1e-6, 1e-6)
    return ("bf16/fp16 emulation, autocast", 2e-2, 2e-2)


def main():
    verbose = "-v" in sys.argv[1:]
    data, recs = build(verbose)
    if "--check" in sys.argv[1:]:
        sys.exit(gen_ops.check(data, recs, OUT, tolerance, atol_of_max=True))
    with open(OUT, "wb") as f:
        f.write(data)
    print("wrote %s: %d records, %d bytes; torch %s, numpy %s" % (
        OUT, len(recs), len(data), torch.__version__, np.__version__))
    if verbose:
        for name, kind, shape, _ in recs:
            print("  %-40s %s %s" % (name, "f32" if kind == gen_ops.KIND_F32 else "i32",
                                     list(shape)))


if __name__ == "__main__":
    main()
