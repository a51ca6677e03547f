#!/usr/bin/python3
"""gen_numerics.py - writes numerics_ref.bin, the fixture tests/test_numerics.c checks the numerics
layer against: fp32 inputs with the bits numpy (float16), PyTorch (bfloat16) and ml_dtypes (fp8
e4m3fn/e5m2) give them, decode tables and format facts. It computes no expected value itself.

It deliberately does not sweep all 2^32 inputs (check_exhaustive.py does that against the built
library); it picks the inputs where rounding can go wrong, plus a few thousand random ones.

Usage (the Debian interpreter, which has numpy 1.24 and torch 1.13; ml_dtypes from pip):
    /usr/bin/python3 tests/reference/gen_numerics.py            # (re)write the fixture
    /usr/bin/python3 tests/reference/gen_numerics.py --check    # exit 1 if the file on disk differs
Exit status 77 (ctest "skipped") when numpy, torch or ml_dtypes cannot be imported.

File format, all little-endian (version 1):
    header   char magic[8] = "MXPNUMRF"; uint32 version = 1; uint32 nsections
    section  char tag[8] (NUL-padded); uint32 count; uint32 rec_size; then count * rec_size bytes
  sections, in this order:
    "facts"    rec 40: char name[8] ("fp32","fp16","bf16","e4m3","e5m2"), then float64 max,
               min_normal, min_subnormal, epsilon. fp32/fp16 from numpy.finfo, bf16 from
               torch.finfo (min_subnormal from ml_dtypes.finfo: torch 1.13 has none),
               e4m3/e5m2 from ml_dtypes.finfo.
    "encode"   rec 12: uint32 x (fp32 bits); uint16 fp16 (numpy x.astype(float16));
               uint16 bf16 (torch x.to(bfloat16)); uint8 e4m3 (ml_dtypes float8_e4m3fn);
               uint8 e5m2 (ml_dtypes float8_e5m2); uint8 flags (bit 0: x is NaN);
               uint8 kind, why x is here: 0 special (zero, inf, NaN, fp32 extremes and
               subnormals), 1 binade boundary 2^e +-2 fp32 ulps, 2 a representable value,
               3 a tie between two neighbours +-1..2 fp32 ulps, 4 random bits, 5 random in a
               format's range, 6 random tie.
               For NaN inputs the library bits are stored but are not the contract: numpy keeps
               a signalling NaN signalling (0x7f800001 -> 0x7c01), torch 1.13 gives 0xffff for
               every NaN (sign lost), ml_dtypes gives 0x7f/0xff (e4m3) and 0x7e/0xfe (e5m2),
               payload dropped. The C test checks DESIGN's NaN rule instead.
    "dec_fp16" rec 4, count 65536: record i = fp32 bits of numpy float16 pattern i as float32
               (numpy keeps NaN sign and payload, signalling NaNs stay signalling).
    "dec_bf16" rec 8: pairs (uint32 pattern, uint32 fp32 bits) from torch bfloat16 -> float32
               for every pattern with exponent field 0, 1, 2, 0x7e, 0x7f, 0x80, 0xfd, 0xfe or
               0xff (torch 1.13 shifts the bits, so NaN sign and payload are kept). The python
               check covers all 65536 bf16 patterns against the built library.
    "dec_e4m3", "dec_e5m2"  rec 4, count 256: fp32 bits of ml_dtypes pattern i as float32
               (ml_dtypes decodes every NaN to 0x7fc00000 / 0xffc00000: payload dropped).

Before writing, every non-NaN expected value is cross-checked against a small round-to-nearest-
even oracle here (nearest of the format's sorted values, ties to the even code); a disagreement
aborts, because then "bit-identical to numpy/torch" and "RNE" would not be the same contract.
"""
import struct
import sys

try:
    import numpy as np
    import torch
    import ml_dtypes
except ImportError as e:  # ctest: skipped, not failed
    print("SKIP: %s (needs numpy, torch and ml_dtypes)" % e, file=sys.stderr)
    sys.exit(77)

import os

MAGIC = b"MXPNUMRF"
VERSION = 1
SEED = 20240611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "numerics_ref.bin")

# KIND: why an input is in the fixture (stored per record, printed by the C test on failure)
K_SPECIAL, K_BINADE, K_VALUE, K_TIE, K_RANDOM, K_RANDOM_RANGE, K_RANDOM_TIE = range(7)

# name: (man_bits, bias, exp_bits, fn) -- only to choose inputs and for the cross-check oracle
FORMATS = {
    "fp16": (10, 15, 5, False),
    "bf16": (7, 127, 8, False),
    "e4m3": (3, 7, 4, True),
    "e5m2": (2, 15, 5, False),
}


def code_value(fmt, c):
    """Exact value of the positive code c as a Python float (double holds every one of them).
    Applied one code past the largest finite one, it gives the overflow neighbour (2^16 for fp16,
    480 for e4m3), which is what a tie into overflow is measured against."""
    M, bias, _, _ = FORMATS[fmt]
    E, m = c >> M, c & ((1 << M) - 1)
    if E == 0:
        return float(m) * 2.0 ** (1 - bias - M)
    return float((1 << M) + m) * 2.0 ** (E - bias - M)


def n_finite(fmt):
    """Number of positive finite codes (0 included)."""
    M, _, eb, fn = FORMATS[fmt]
    return ((1 << (eb + M)) - 1) if fn else (((1 << eb) - 1) << M)


def f32_bits(d):
    """fp32 bits of the double d, which must be exactly representable."""
    f = np.float32(d)
    assert float(f) == d, "not exact in fp32: %r" % d
    return int(np.array([f], np.float32).view(np.uint32)[0])


def f32_step(b, k):
    """fp32 bits k steps away from the positive finite pattern b (k may be negative)."""
    return b + k


def gen_inputs(rng):
    inputs = []  # (bits, kind)

    def add(bits, kind):
        if 0 <= bits <= 0xFFFFFFFF:
            inputs.append((bits, kind))

    # specials: zeros, infs, NaNs of every kind, fp32 extremes and subnormals
    for b in [0x00000000, 0x7F800000, 0x7F7FFFFF, 0x7F7FFFFE, 0x00800000, 0x00800001,
              0x007FFFFF, 0x00000001, 0x00000002, 0x00000003, 0x00400000, 0x00400001,
              0x00008000, 0x00008001, 0x00007FFF, 0x00018000, 0x00010000, 0x0000FFFF,
              0x00017FFF, 0x00018001, 0x3F800000, 0x3F800001, 0x3F7FFFFF,
              0x7F800001, 0x7F800002, 0x7F801000, 0x7F802000, 0x7F810000, 0x7F900000,
              0x7FA00000, 0x7FBFFFFF, 0x7FC00000, 0x7FC00001, 0x7FC02000, 0x7FD55555,
              0x7FE00000, 0x7FFFE000, 0x7FFFFFFF, 0x7F87FFFF, 0x7F800100]:
        add(b, K_SPECIAL)

    for fmt, (M, bias, eb, fn) in FORMATS.items():
        nf = n_finite(fmt)
        emax = (((1 << eb) - 1) if fn else ((1 << eb) - 2)) - bias
        # every binade boundary 2^e, subnormal binades included, with fp32 neighbours
        for e in range(1 - bias - M, emax + 2):
            if e > 127:
                continue
            b = f32_bits(2.0 ** e)
            for k in (-2, -1, 0, 1, 2):
                add(f32_step(b, k), K_BINADE)
        # representable values and the ties above them
        if fmt in ("e4m3", "e5m2"):
            codes = range(nf)
        else:
            # even and odd codes at the bottom, middle and top of every binade (the top one
            # carries into the next binade, the last one into overflow)
            ms = {"fp16": (0, 1, 2, 3, 0x1FF, 0x200, 0x201, 0x3FD, 0x3FE, 0x3FF),
                  "bf16": (0, 1, 0x40, 0x7F)}[fmt]
            codes = sorted(c for c in ((E << M) | m for E in range(1 << eb) for m in ms)
                           if c < nf)
        for c in codes:
            v, vn = code_value(fmt, c), code_value(fmt, c + 1)
            add(f32_bits(v), K_VALUE)
            mid = f32_bits((v + vn) / 2)  # tie: even code wins
            for k in ((-1, 0, 1) if fmt == "bf16" else (-2, -1, 0, 1, 2)):
                add(f32_step(mid, k), K_TIE)
        # a quarter and three quarters of the smallest subnormal (round to 0 / to it)
        sub = code_value(fmt, 1)
        for mult in (0.25, 0.75, 1.25, 1.75, 2.5):
            add(f32_bits(sub * mult), K_TIE)

    # random bit patterns (any sign, exponent, NaNs included)
    for b in rng.integers(0, 1 << 32, size=2048, dtype=np.uint64):
        add(int(b), K_RANDOM)
    # random values inside each format's range, and random ties
    for fmt in FORMATS:
        nf = n_finite(fmt)
        for c in rng.integers(0, nf, size=512):
            lo = f32_bits(code_value(fmt, int(c)))
            vn = code_value(fmt, int(c) + 1)
            hi = f32_bits(vn) if vn < 2.0 ** 128 else 0x7F800000
            add(int(rng.integers(lo, hi)), K_RANDOM_RANGE)
        for c in rng.integers(0, nf, size=256):
            v, vn = code_value(fmt, int(c)), code_value(fmt, int(c) + 1)
            add(f32_bits((v + vn) / 2) + int(rng.integers(-1, 2)), K_RANDOM_TIE)

    # negative versions of everything
    inputs += [(b | 0x80000000, k) for b, k in inputs]
    seen, out = set(), []
    for b, k in inputs:
        if b not in seen:
            seen.add(b)
            out.append((b, k))
    return out


def oracle(fmt, x):
    """Round-to-nearest-even of fp32 values x (a float32 array, no NaNs) in fmt, as codes.
    Independent of the C encoder: nearest of the sorted list of values, ties to the even code."""
    M, bias, eb, fn = FORMATS[fmt]
    nf = n_finite(fmt)
    vals = np.array([code_value(fmt, c) for c in range(nf + 1)])  # + the overflow neighbour
    a = np.abs(x.astype(np.float64))
    inf_in = np.isinf(a)
    a = np.where(inf_in, 0.0, a)
    i = np.clip(np.searchsorted(vals, a, side="left"), 1, nf)  # vals[i-1] < a <= vals[i]
    lo, hi = vals[i - 1], vals[i]
    dlo, dhi = a - lo, hi - a
    up = (dhi < dlo) | ((dhi == dlo) & ((i - 1) % 2 == 1))
    code = np.where(a == 0, 0, np.where(up, i, i - 1)).astype(np.int64)
    over = (code >= nf) | inf_in
    nan_code = (1 << (eb + M)) - 1
    inf_code = ((1 << eb) - 1) << M
    code = np.where(over, nan_code if fn else inf_code, code)
    if fn:  # no inf in FN formats: inf input is NaN
        code = np.where(inf_in, nan_code, code)
    sign = (x.view(np.uint32) >> 31).astype(np.int64) << (eb + M)
    return code | sign


def build():
    rng = np.random.default_rng(SEED)
    inputs = gen_inputs(rng)
    u = np.array([b for b, _ in inputs], np.uint32)
    kind = np.array([k for _, k in inputs], np.uint8)
    x = u.view(np.float32)
    isnan = np.isnan(x)

    with np.errstate(all="ignore"):
        h16 = x.astype(np.float16).view(np.uint16)
        e4 = x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
        e5 = x.astype(ml_dtypes.float8_e5m2).view(np.uint8)
    b16 = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)

    bad = 0
    for fmt, got in (("fp16", h16), ("bf16", b16), ("e4m3", e4), ("e5m2", e5)):
        want = oracle(fmt, x[~isnan])
        diff = np.nonzero(got[~isnan].astype(np.int64) != want)[0]
        for j in diff[:10]:
            print("oracle disagrees with the library for %s: x=0x%08x library 0x%x oracle 0x%x"
                  % (fmt, u[~isnan][j], got[~isnan][j], want[j]), file=sys.stderr)
        bad += len(diff)
    if bad:
        sys.exit("%d disagreements between the libraries and the RNE oracle" % bad)

    sections = []

    def section(tag, rec_size, payload):
        assert len(payload) % rec_size == 0
        sections.append(struct.pack("<8sII", tag.encode(), len(payload) // rec_size, rec_size)
                        + payload)

    facts = []
    f32, f16 = np.finfo(np.float32), np.finfo(np.float16)
    tb, mb = torch.finfo(torch.bfloat16), ml_dtypes.finfo(ml_dtypes.bfloat16)
    assert float(tb.max) == float(mb.max) and float(tb.tiny) == float(mb.smallest_normal)
    assert float(tb.eps) == float(mb.eps)
    facts.append(("fp32", f32.max, f32.smallest_normal, f32.smallest_subnormal, f32.eps))
    facts.append(("fp16", f16.max, f16.smallest_normal, f16.smallest_subnormal, f16.eps))
    facts.append(("bf16", tb.max, tb.tiny, mb.smallest_subnormal, tb.eps))
    for name, t in (("e4m3", ml_dtypes.float8_e4m3fn), ("e5m2", ml_dtypes.float8_e5m2)):
        fi = ml_dtypes.finfo(t)
        facts.append((name, fi.max, fi.smallest_normal, fi.smallest_subnormal, fi.eps))
    section("facts", 40, b"".join(struct.pack("<8s4d", n.encode(), *(float(v) for v in r))
                                  for n, *r in facts))

    rec = np.zeros(len(u), dtype=[("x", "<u4"), ("f16", "<u2"), ("bf16", "<u2"), ("e4m3", "u1"),
                                  ("e5m2", "u1"), ("flags", "u1"), ("kind", "u1")])
    rec["x"], rec["f16"], rec["bf16"], rec["e4m3"], rec["e5m2"] = u, h16, b16, e4, e5
    rec["flags"], rec["kind"] = isnan.astype(np.uint8), kind
    assert rec.dtype.itemsize == 12
    section("encode", 12, rec.tobytes())

    all16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    section("dec_fp16", 4, all16.view(np.float16).astype(np.float32).view("<u4").tobytes())
    sel = all16[np.isin((all16 >> 7) & 0xFF, [0, 1, 2, 0x7E, 0x7F, 0x80, 0xFD, 0xFE, 0xFF])]
    tb16 = torch.from_numpy(sel.view(np.int16).copy()).view(torch.bfloat16).to(torch.float32)
    pairs = np.zeros(len(sel), dtype=[("h", "<u4"), ("f", "<u4")])
    pairs["h"], pairs["f"] = sel, tb16.view(torch.int32).numpy().view(np.uint32)
    section("dec_bf16", 8, pairs.tobytes())
    all8 = np.arange(256, dtype=np.uint32).astype(np.uint8)
    for tag, t in (("dec_e4m3", ml_dtypes.float8_e4m3fn), ("dec_e5m2", ml_dtypes.float8_e5m2)):
        section(tag, 4, all8.view(t).astype(np.float32).view("<u4").tobytes())

    data = MAGIC + struct.pack("<II", VERSION, len(sections)) + b"".join(sections)
    summary = "%d encode inputs (%d NaN), %d bytes; numpy %s, torch %s, ml_dtypes %s" % (
        len(u), int(isnan.sum()), len(data), np.__version__, torch.__version__,
        ml_dtypes.__version__)
    return data, summary


def main():
    data, summary = build()
    if "--check" in sys.argv[1:]:
        try:
            with open(OUT, "rb") as f:
                old = f.read()
        except OSError as e:
            sys.exit("cannot read %s: %s" % (OUT, e))
        if old != data:
            sys.exit("%s differs from what numpy/torch/ml_dtypes give now (%s); regenerate it "
                     "and review the diff" % (OUT, summary))
        print("fixture up to date: " + summary)
        return
    with open(OUT, "wb") as f:
        f.write(data)
    print("wrote %s: %s" % (OUT, summary))


if __name__ == "__main__":
    main()
