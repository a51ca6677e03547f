"""gpt_torch.py - a minimal GPT-2 in torch.nn with Hugging Face GPT-2's module names and layouts.

Shared by gen_gpt.py (the reference fixture), check_gpt_hf.py (its fallback when transformers
is missing) and bench/torch_gpt.py (the speed benchmark's PyTorch side), so that GPT-2 is
written once. Its state_dict keys are exactly transformers.GPT2Model's parameter names, which
are also mixprec's gpt parameter names (include/mixprec/nn.h):

    wte.weight (V, C)  wpe.weight (block, C)
    h.L.ln_1.{weight,bias} (C)   h.L.attn.c_attn.weight (C, 3C) .bias (3C)
    h.L.attn.c_proj.weight (C, C) .bias (C)   h.L.ln_2.{weight,bias} (C)
    h.L.mlp.c_fc.weight (C, 4C) .bias (4C)   h.L.mlp.c_proj.weight (4C, C) .bias (C)
    ln_f.{weight,bias} (C)

Linear layers are GPT-2's Conv1D: the weight is stored (in, out) and y = x W + b. The LM head
is tied to wte (logits = ln_f(x) wte^T, no bias). Pre-LayerNorm blocks (eps 1e-5),
x += attn(ln_1(x)); x += mlp(ln_2(x)); GELU is the tanh approximation (HF's "gelu_new");
attention is causal with scores scaled by 1/sqrt(head_dim); no dropout anywhere.
HF's GPT2Attention also registers the buffers attn.bias (the causal mask) and attn.masked_bias
(non-persistent in transformers >= 4.30); this module has none, the mask is built per call.

init_gpt2_ is GPT-2's initialisation (HF GPT2PreTrainedModel._init_weights): every Conv1D
weight and both embeddings normal(0, 0.02), the residual projections attn.c_proj and
mlp.c_proj normal(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm weight 1 and bias 0.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-5


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight (nx, nf) = (in, out), y = x @ weight + bias."""

    def __init__(self, nx, nf):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        shape = x.shape[:-1] + (self.weight.shape[1],)
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return y.view(shape)


class Attention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = Conv1D(n_embd, 3 * n_embd)
        self.c_proj = Conv1D(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, hd).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # (B, NH, T, T)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = Conv1D(n_embd, 4 * n_embd)
        self.c_proj = Conv1D(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.attn = Attention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.mlp = MLP(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """GPT-2 with a tied head: forward(tokens (B, T) int64) -> logits (B, T, V)."""

    def __init__(self, vocab_size, block_size, n_embd, n_layer, n_head):
        super().__init__()
        assert n_embd % n_head == 0
        self.n_layer = n_layer
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=LN_EPS)

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(T, device=tokens.device))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()


def init_gpt2_(model, generator):
    """GPT-2's initialisation, in place, drawing from generator in state_dict order."""
    std_proj = 0.02 / math.sqrt(2 * model.n_layer)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or \
                    name == "ln_f.weight":
                p.fill_(1.0)
            elif p.dim() == 1:
                p.zero_()
            else:
                std = std_proj if name.endswith("c_proj.weight") else 0.02
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float32) * std)
    return model


def decay_params(model):
    """(2-D weights that get weight decay, the rest): GPT-2's AdamW grouping."""
    named = list(model.named_parameters())
    return [p for _, p in named if p.dim() == 2], [p for _, p in named if p.dim() != 2]
