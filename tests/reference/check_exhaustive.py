#!/usr/bin/python3
"""check_exhaustive.py - every fp32 bit pattern through the built libmixprec's mxp_convert on the
scalar reference (MIXPREC_ISA=ref), compared with numpy's astype(float16) and torch's
.to(torch.bfloat16) for all non-NaN inputs, and with DESIGN.md's NaN rule for the NaNs; then
every fp16 / bf16 pattern decoded to fp32 against numpy / torch (bit-exact, NaNs included).

It does not check the SIMD paths (test_numerics_exhaustive.c compares them with the scalar
reference) nor fp8 (the fixture from gen_numerics.py does).

Usage: /usr/bin/python3 check_exhaustive.py path/to/libmixprec.so [--chunk-log2 24] [--jobs J]
                                           [--stride S]
--jobs: worker processes (default: CPUs); --stride S checks only every S-th chunk (a quick look,
never in ctest). Exit 0 all equal, 1 on any mismatch, 77 (ctest "skipped") without numpy or torch.
"""
import ctypes
import multiprocessing
import os
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:
    print("SKIP: %s (needs numpy and torch for /usr/bin/python3)" % e, file=sys.stderr)
    sys.exit(77)

F32, F16, BF16 = 0, 1, 2  # mxp_dtype
MAX_REPORTS = 20


def load_library(path):
    lib = ctypes.CDLL(path)
    lib.mxp_convert.restype = ctypes.c_int
    lib.mxp_convert.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                ctypes.c_size_t]
    lib.mxp_isa_active.restype = ctypes.c_int
    lib.mxp_isa_name.restype = ctypes.c_char_p
    lib.mxp_isa_name.argtypes = [ctypes.c_int]
    lib.mxp_last_error.restype = ctypes.c_char_p
    return lib


def convert(lib, dst, dt, src, st):
    status = lib.mxp_convert(dst.ctypes.data, dt, src.ctypes.data, st, src.size)
    if status != 0:
        raise RuntimeError("mxp_convert failed (%d): %s" % (status, lib.mxp_last_error()))


# ---- one worker process: chunks of 2^chunk_log2 consecutive patterns ----------------------------
W = {}


def worker_init(path, chunk_log2):
    torch.set_num_threads(1)
    n = 1 << chunk_log2
    W.update(lib=load_library(path), log2=chunk_log2, n=n,
             base=np.arange(n, dtype=np.uint32), u=np.empty(n, np.uint32),
             lib16=np.empty(n, np.uint16), mag=np.empty(n, np.uint32), nan=np.empty(n, bool))


def mismatches(name, x, got, want, skip, out):
    """Count the positions where got != want (except where skip); describe the first few."""
    idx = np.nonzero(got != want)[0]
    if skip is not None:
        idx = idx[~skip[idx]]
    out["bad"][name] += len(idx)
    for i in idx[:MAX_REPORTS]:
        out["reports"].append("%s: x=0x%08x (%.9g) libmixprec 0x%04x, reference 0x%04x"
                              % (name, x[i], x[i:i + 1].view(np.float32)[0], got[i], want[i]))


def check_chunk(k):
    lib, n, u, lib16, mag, nan = W["lib"], W["n"], W["u"], W["lib16"], W["mag"], W["nan"]
    out = {"bad": {"fp16": 0, "bf16": 0, "fp16 NaN rule": 0, "bf16 NaN rule": 0},
           "reports": [], "nans": 0}
    start = k << W["log2"]
    np.add(W["base"], np.uint32(start), out=u)
    x = u.view(np.float32)
    # only chunks whose exponent field reaches all ones hold NaNs; skip the mask elsewhere
    top = start & 0x7FFFFFFF
    has_nan = top + n - 1 > 0x7F800000
    if has_nan:
        np.bitwise_and(u, np.uint32(0x7FFFFFFF), out=mag)
        np.greater(mag, np.uint32(0x7F800000), out=nan)
        sign16 = ((u >> np.uint32(16)) & np.uint32(0x8000)).astype(np.uint16)
        payload = u & np.uint32(0x7FFFFF)
        out["nans"] = int(nan.sum())
    skip = nan if has_nan else None

    convert(lib, lib16, F16, u, F32)
    with np.errstate(all="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    mismatches("fp16", u, lib16, ref, skip, out)
    if has_nan:  # quiet NaN, same sign, top payload bits
        rule = sign16 | np.uint16(0x7E00) | (payload >> np.uint32(13)).astype(np.uint16)
        mismatches("fp16 NaN rule", u[nan], lib16[nan], rule[nan], None, out)

    convert(lib, lib16, BF16, u, F32)
    ref = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    mismatches("bf16", u, lib16, ref, skip, out)
    if has_nan:
        rule = sign16 | np.uint16(0x7FC0) | (payload >> np.uint32(16)).astype(np.uint16)
        mismatches("bf16 NaN rule", u[nan], lib16[nan], rule[nan], None, out)
    return n, out


def check_decodes(lib):
    """Every 16-bit pattern to fp32: numpy and torch keep NaN sign and payload, as we do."""
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = np.empty(1 << 16, np.uint32)
    bad = 0
    convert(lib, got, F32, h, F16)
    want = h.view(np.float16).astype(np.float32).view(np.uint32)
    for i in np.nonzero(got != want)[0][:MAX_REPORTS]:
        print("fp16->fp32: 0x%04x libmixprec 0x%08x, numpy 0x%08x" % (h[i], got[i], want[i]),
              file=sys.stderr)
    bad += int((got != want).sum())
    convert(lib, got, F32, h, BF16)
    want = torch.from_numpy(h.view(np.int16).copy()).view(torch.bfloat16).to(torch.float32)
    want = want.view(torch.int32).numpy().view(np.uint32)
    for i in np.nonzero(got != want)[0][:MAX_REPORTS]:
        print("bf16->fp32: 0x%04x libmixprec 0x%08x, torch 0x%08x" % (h[i], got[i], want[i]),
              file=sys.stderr)
    bad += int((got != want).sum())
    return bad


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    path = argv[1]
    opt = lambda name, default: int(argv[argv.index(name) + 1]) if name in argv else default
    chunk_log2 = opt("--chunk-log2", 24)
    stride = opt("--stride", 1)
    jobs = opt("--jobs", os.cpu_count() or 1)

    # read once by the library, in this process and in the workers (which inherit them): the
    # scalar reference, one library thread per worker process
    os.environ["MIXPREC_ISA"] = "ref"
    os.environ["MIXPREC_NUM_THREADS"] = "1"
    lib = load_library(path)
    isa = lib.mxp_isa_active()
    if isa != 0:
        print("MIXPREC_ISA=ref was not honoured: active ISA is %s"
              % lib.mxp_isa_name(isa).decode(), file=sys.stderr)
        return 1

    # numpy's float16 cast raises an FP flag per under/overflowing element (~60 ns each), so the
    # 2^32 sweep is spread over worker processes (spawned: nothing of ours runs before them)
    t0 = time.time()
    chunks = range(0, (1 << 32) >> chunk_log2, stride)
    checked = nans = 0
    bad = {}
    reports = []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(jobs, initializer=worker_init, initargs=(path, chunk_log2)) as pool:
        for n, out in pool.imap_unordered(check_chunk, chunks):
            checked += n
            nans += out["nans"]
            for name, v in out["bad"].items():
                bad[name] = bad.get(name, 0) + v
            reports += out["reports"][: max(0, MAX_REPORTS - len(reports))]
    t1 = time.time()
    for line in reports:
        print(line, file=sys.stderr)
    dec_bad = check_decodes(lib)

    print("checked %d fp32 patterns (%d NaN) on isa=ref against numpy %s / torch %s in %.1f s "
          "(%d processes); mismatches: %s; 2 x 65536 decodes: %d mismatches"
          % (checked, nans, np.__version__, torch.__version__, t1 - t0, jobs,
             ", ".join("%s %d" % kv for kv in sorted(bad.items())), dec_bad))
    if stride == 1 and checked != 1 << 32:
        print("covered %d patterns, not 2^32" % checked, file=sys.stderr)
        return 1
    return 1 if dec_bad or any(bad.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
