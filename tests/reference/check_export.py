#!/usr/bin/python3
"""`mixprec export` files through the official safetensors reader and torch's conversions.

    check_export.py CHECKPOINT_MODEL BF16_FILE FP16_FILE FP32_FILE

Run by `test_export_cli --python` (ctest test_export_cli_python), which saves a checkpoint with
the library and exports it with the `mixprec` command in each dtype. Each export is loaded with
safetensors.torch.load_file and must equal the checkpoint's fp32 weights (model.safetensors,
also loaded with load_file) converted by torch, bit for bit: `.to(torch.bfloat16)`, `.half()`,
and the fp32 weights themselves; same names, shapes and dtypes; metadata "format" "pt" (what
transformers requires) and "dtype" naming the export's dtype.
Exit 0: all equal; 1: a difference (printed); 77: no torch or safetensors.
"""
import sys

try:
    import safetensors
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
except ImportError as e:
    print(f"SKIP: {e} (pip install --no-deps safetensors for /usr/bin/python3)", file=sys.stderr)
    sys.exit(77)

BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
EXPORTS = (("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32))


def check(path, name, dtype, ref):
    bad = 0
    got = load_file(path)
    if set(got) != set(ref):
        print(f"{path}: tensors {sorted(got)}, want {sorted(ref)}")
        return 1
    for key, w in ref.items():
        want = w.to(dtype)
        g = got[key]
        if g.dtype != dtype or g.shape != want.shape:
            print(f"{path}: '{key}' is {g.dtype} {tuple(g.shape)}, want {dtype} "
                  f"{tuple(want.shape)}")
            bad += 1
            continue
        diff = (g.contiguous().view(BITS[dtype]) != want.contiguous().view(BITS[dtype]))
        if diff.any():
            i = int(diff.flatten().nonzero()[0])
            print(f"{path}: '{key}': {int(diff.sum())} elements differ from torch's conversion; "
                  f"first at {i}: fp32 {w.flatten()[i].item()!r} -> {g.flatten()[i].item()!r}, "
                  f"torch {want.flatten()[i].item()!r}")
            bad += 1
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    for key, value in (("format", "pt"), ("dtype", name)):
        if meta.get(key) != value:
            print(f"{path}: metadata {key} = {meta.get(key)!r}, want {value!r}")
            bad += 1
    return bad


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    ref = load_file(sys.argv[1])
    if not ref or any(w.dtype != torch.float32 for w in ref.values()):
        print(f"{sys.argv[1]}: want fp32 tensors, got {[(k, w.dtype) for k, w in ref.items()]}")
        return 1
    bad = sum(check(path, name, dtype, ref)
              for path, (name, dtype) in zip(sys.argv[2:], EXPORTS))
    n = sum(w.numel() for w in ref.values())
    print(f"safetensors {safetensors.__version__}, torch {torch.__version__}: {len(ref)} tensors, "
          f"{n} values in bf16, fp16, fp32: {'ok' if not bad else f'{bad} differences'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
