#!/usr/bin/python3
"""Interop of mixprec's safetensors files with the official reader and writer.

    check_safetensors.py OURS_KEEP OURS_BF16 THEIRS

Run by `test_safetensors --python` (ctest test_safetensors_python), which writes the first two
files with mxp_safetensors_write and afterwards reads the third with mxp_safetensors_open/read:

  OURS_KEEP  tensors in their own dtypes, loaded here with safetensors.torch.load_file;
  OURS_BF16  the same F32 tensors converted to BF16 on write;
  THEIRS     written here with safetensors.torch.save_file (the official writer).

Values are f(i) = float32(i - 37) * float32(0.1) (one fp32 rounding, the same in C), shaped as
listed in TENSORS; 16-bit tensors must equal torch's round-to-nearest-even of those fp32 values
bit for bit. Exit 0: all equal; 1: a difference (printed); 77: no torch or safetensors.
"""
import sys

try:
    import numpy as np
    import safetensors
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError as e:
    print(f"SKIP: {e} (pip install --no-deps safetensors for /usr/bin/python3)", file=sys.stderr)
    sys.exit(77)

# name -> (dtype, shape) of OURS_KEEP; test_safetensors.c writes the same list
TENSORS = {
    "f32": (torch.float32, (3, 5)),
    "f16": (torch.float16, (7,)),
    "bf16": (torch.bfloat16, (2, 3, 2)),
    "odd": (torch.float16, (3,)),  # leaves the next tensor at an offset that is not 4-aligned
    "after_odd": (torch.float32, (2, 2)),
    "scalar": (torch.float32, ()),
    "empty": (torch.float32, (0, 4)),
}
META = {"format": "pt", "note": 'quote " backslash \\ newline \n tab \t caf\u00e9'}
BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def values(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    f32 = (np.arange(n, dtype=np.int64) - 37).astype(np.float32) * np.float32(0.1)
    return torch.from_numpy(f32.reshape(shape)).to(dtype)


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().view(BITS[a.dtype]), b.contiguous().view(BITS[b.dtype]))


def check(path, want_dtype):
    bad = 0
    got = load_file(path)
    if set(got) != set(TENSORS):
        print(f"{path}: tensors {sorted(got)}, want {sorted(TENSORS)}")
        return 1
    for name, (dtype, shape) in TENSORS.items():
        want = values(shape, want_dtype or dtype)
        if not same_bits(got[name], want):
            print(f"{path}: '{name}' is {got[name].dtype} {tuple(got[name].shape)}: "
                  f"{got[name].flatten()[:8].tolist()}, want {want.dtype} {tuple(want.shape)}: "
                  f"{want.flatten()[:8].tolist()}")
            bad += 1
    with safe_open(path, "pt") as f:
        if f.metadata() != META:
            print(f"{path}: metadata {f.metadata()!r}, want {META!r}")
            bad += 1
    return bad


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    ours_keep, ours_bf16, theirs = sys.argv[1:]
    bad = check(ours_keep, None) + check(ours_bf16, torch.bfloat16)
    save_file({name: values(shape, dtype) for name, (dtype, shape) in TENSORS.items()}, theirs,
              metadata=META)
    print(f"safetensors {safetensors.__version__}, torch {torch.__version__}: "
          f"{'ok' if not bad else f'{bad} differences'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
