#!/usr/bin/python3
"""check_gpt_hf.py CKPT_DIR LOGITS - a mixprec gpt checkpoint in Hugging Face transformers.

Run by `test_gpt --python /usr/bin/python3 check_gpt_hf.py` (ctest test_gpt_python), which
trains a tiny gpt a few steps, saves CKPT_DIR with mxp_checkpoint_save, and writes LOGITS
(an MXPFIX01 file, tests/fixture.h: "tokens" int32 (B, T) and "logits" float32 (B, T, V), the
logits mixprec computes in fp32 from the checkpoint's weights).

This script builds transformers.GPT2LMHeadModel from config.json's model section (vocab_size,
n_positions = block_size, n_embd, n_layer, n_head, activation_function "gelu_new" (GELU tanh),
every dropout 0, layer_norm_epsilon 1e-5), reads CKPT_DIR/model.safetensors with
safetensors.torch.load_file and loads it into model.transformer with strict=True semantics as
transformers applies them to its own GPT-2 checkpoints: no unexpected key, no missing
parameter; a missing attn.bias / attn.masked_bias (the causal-mask buffers, which older
transformers versions made persistent) is fine. The LM head is tied to wte, so the file has no
lm_head.weight. Then, in float64 so that the only rounding left is mixprec's fp32, the logits
for the same tokens must match: max |mixprec - torch| <= 2e-5 * max |torch| (fp32 over
reductions of at most 256 terms: ~1e-6, see tests/test_gpt.c).

Without transformers (exit 77 when torch or safetensors is missing) the same check runs on
tests/reference/gpt_torch.py, a minimal torch.nn GPT-2 with HF's names and Conv1D layout, and
says so; a match then exits 77 (skipped: the claim about transformers is unproven), a mismatch 1.
Exit 0 ok, 1 mismatch, 77 skipped.
"""
import json
import os
import sys

try:
    import torch
    from safetensors.torch import load_file
except ImportError as e:  # the test is skipped, not failed
    print(f"skip: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_ops  # noqa: E402  (the MXPFIX01 parser)
import gpt_torch  # noqa: E402

TOL = 2e-5


def hf_model(m):
    try:
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        print(f"check_gpt_hf: transformers not available ({e}); using gpt_torch.GPT instead")
        return None, None
    cfg = GPT2Config(vocab_size=m["vocab_size"], n_positions=m["block_size"],
                     n_embd=m["n_embd"], n_layer=m["n_layer"], n_head=m["n_head"],
                     activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True)
    return GPT2LMHeadModel(cfg), transformers.__version__


def main():
    ckpt, logits_path = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    m = cfg["model"]
    if m.get("name") != "gpt":
        print(f"check_gpt_hf: {ckpt} holds a {m.get('name')} model, not a gpt")
        return 1
    weights = load_file(os.path.join(ckpt, "model.safetensors"))
    bad = [f"{k} is {t.dtype}" for k, t in weights.items() if t.dtype != torch.float32]

    model, version = hf_model(m)
    if model is not None:
        body = model.transformer
        res = body.load_state_dict(weights, strict=False)
        params = {n for n, _ in body.named_parameters()}
        bad += [f"unexpected tensor {k}" for k in res.unexpected_keys]
        bad += [f"parameter {k} missing" for k in res.missing_keys if k in params]
        ignored = [k for k in res.missing_keys if k not in params]
        assert all(k.endswith(("attn.bias", "attn.masked_bias")) for k in ignored), ignored
        if model.lm_head.weight.data_ptr() != body.wte.weight.data_ptr():
            bad.append("lm_head is not tied to wte")
        what = f"transformers {version} GPT2LMHeadModel"
        model_is_hf = True
    else:
        model = gpt_torch.GPT(m["vocab_size"], m["block_size"], m["n_embd"], m["n_layer"],
                              m["n_head"])
        try:
            model.load_state_dict(weights, strict=True)
        except RuntimeError as e:
            bad.append(str(e))
        what = "gpt_torch.GPT (transformers missing)"
        model_is_hf = False
    if bad:
        print("check_gpt_hf: model.safetensors does not load:\n  " + "\n  ".join(bad))
        return 1

    recs = {name: (kind, shape, data) for name, kind, shape, data in
            gen_ops.parse(open(logits_path, "rb").read())}
    _, tshape, tdata = recs["tokens"]
    _, lshape, ldata = recs["logits"]
    tokens = torch.frombuffer(bytearray(tdata), dtype=torch.int32).reshape(tshape).long()
    got = torch.frombuffer(bytearray(ldata), dtype=torch.float32).reshape(lshape).double()

    model = model.double().eval()
    with torch.no_grad():
        out = model(tokens)
        ref = out.logits if hasattr(out, "logits") else out
    if tuple(ref.shape) != tuple(got.shape):
        print(f"check_gpt_hf: logits {tuple(got.shape)}, {what} gives {tuple(ref.shape)}")
        return 1
    scale = ref.abs().max().item()
    err = (got - ref).abs().max().item()
    ok = err <= TOL * scale
    print(f"check_gpt_hf: {what}, {len(weights)} tensors, logits {tuple(ref.shape)}: "
          f"max |mixprec - torch| {err:.3g} = {err / scale:.3g} of max |logit| {scale:.3g} "
          f"(tolerance {TOL}) {'ok' if ok else 'FAIL'}")
    if not ok:
        return 1
    return 0 if model_is_hf else 77


if __name__ == "__main__":
    sys.exit(main())
