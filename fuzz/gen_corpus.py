#!/usr/bin/env python3
"""fuzz/gen_corpus.py - writes the hand-made seeds of fuzz/corpus/<target>/: valid files and
the hard cases each parser must refuse cleanly (truncated, wrong magic, overlapping or
out-of-bounds offsets, absurd sizes, dtype/shape mismatches, duplicate keys, nested YAML,
JSON that is not an object, a format from the future...).

    python3 fuzz/gen_corpus.py            rewrite the seeds (every file named seed-*)

Only files named seed-* are written; crash-* files (inputs a fuzzer found a bug with) and any
other kept input are left alone. Standard library only; the output is the same on every run.
"""
import gzip
import json
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def out(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) <= 4096, (target, name, len(data))
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def gz(data):
    # mtime=0: the same bytes on every run
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- safetensors -------------------------------------------------------------------------

def st_file(header, data=b"", pad=True, length=None):
    """8-byte little-endian header length (or `length`), the header, spaces to a multiple of
    8 when pad, then the data."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


def safetensors():
    t = "safetensors"
    # a valid file of each dtype, with metadata; the values include -0, inf, NaN, subnormals
    f16 = struct.pack("<4H", 0x3C00, 0x8000, 0x7C00, 0x7E01)  # 1, -0, inf, a NaN payload
    bf16 = struct.pack("<2H", 0x3F80, 0x0001)  # 1, the smallest subnormal
    w = f32(1.0, -2.5, 3.0e38, 1.0e-45, float("inf"), -0.0)
    hdr = {
        "__metadata__": {"format": "pt", "mixprec_version": "0.1.0"},
        "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "h": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
        "b": {"dtype": "BF16", "shape": [2, 1], "data_offsets": [32, 36]},
    }
    valid = st_file(hdr, w + f16 + bf16)
    out(t, "valid-f32-f16-bf16", valid)
    # header order differs from data order; a scalar; empty tensors sharing an offset
    out(t, "valid-scalar-empty", st_file({
        "z": {"dtype": "F16", "shape": [0, 5], "data_offsets": [4, 4]},
        "s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
        "e": {"dtype": "BF16", "shape": [3, 0], "data_offsets": [4, 4]},
    }, f32(7.0)))
    out(t, "valid-six-dims", st_file(
        {"x": {"dtype": "BF16", "shape": [1, 2, 1, 2, 1, 2], "data_offsets": [0, 16]}}, bytes(range(16))))
    out(t, "valid-no-tensors", st_file({"__metadata__": {}}))
    out(t, "valid-unpadded", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                                     f32(1.5), pad=False))
    out(t, "valid-unicode-names", st_file(
        {"\u00e9\u4e2d": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
         "h.0.attn.c_attn.weight": {"dtype": "F16", "shape": [1], "data_offsets": [4, 6]}},
        f32(2.0) + b"\x00\x3c"))
    # an empty tensor whose other sizes make it unaddressable: valid, and nothing to read
    out(t, "valid-empty-huge-dims", st_file(
        {"e": {"dtype": "F32", "shape": [0, 1 << 40, 1 << 40], "data_offsets": [0, 0]}}))
    out(t, "valid-extra-entry-keys", st_file(
        {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "note": [1, {"x": None}]}},
        f32(3.0)))

    # truncated: in the length, in the header, in the data
    for n in (0, 3, 7, 8, 20, len(valid) - 1):
        out(t, "trunc-%d" % n, valid[:n])
    # the length field: zero, past the file, 2^63, all ones, beyond the 100 MB limit
    body = valid[8:]
    for name, length in (("len-zero", 0), ("len-past-file", len(body) + 1),
                         ("len-2p63", 1 << 63), ("len-all-ones", (1 << 64) - 1),
                         ("len-100MB-plus-1", 100000001)):
        out(t, name, struct.pack("<Q", length) + body)
    out(t, "not-json", st_file(b"{\"a\": {\"dtype\": \"F32\", ", pad=False))
    out(t, "json-array", st_file([1, 2, 3]))
    out(t, "json-string", st_file("F32"))
    out(t, "json-trailing", st_file(b"{} {}", pad=False))
    out(t, "json-nul", st_file(b"{\"a\u0000\": 1}".replace(b"\\u0000", b"\x00"), pad=False))
    out(t, "key-escaped-nul", st_file(b"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", f32(1)))
    out(t, "elf-magic", b"\x7fELF" + b"\x00" * 28)
    out(t, "entry-not-object", st_file({"a": [0, 4]}))
    out(t, "dtype-missing", st_file({"a": {"shape": [1], "data_offsets": [0, 4]}}, f32(1)))
    out(t, "dtype-i64", st_file({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)))
    out(t, "dtype-lowercase", st_file({"a": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}}, f32(1)))
    out(t, "dtype-number", st_file({"a": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}}, f32(1)))
    # dtype/shape against the offsets: F32 (4) in 8 bytes, F16 (3) in 4 bytes
    out(t, "mismatch-f32-bytes", st_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, bytes(8)))
    out(t, "mismatch-f16-bytes", st_file({"a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 4]}}, bytes(4)))
    out(t, "shape-negative", st_file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, f32(1)))
    out(t, "shape-float", st_file({"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, f32(1)))
    out(t, "shape-not-array", st_file({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}}, f32(1)))
    out(t, "shape-seven-dims", st_file({"a": {"dtype": "F32", "shape": [1] * 7, "data_offsets": [0, 4]}}, f32(1)))
    out(t, "shape-2p60", st_file({"a": {"dtype": "F32", "shape": [1 << 60], "data_offsets": [0, 1 << 62]}}, f32(1)))
    out(t, "shape-product-overflow", st_file(
        {"a": {"dtype": "F16", "shape": [1 << 32, 1 << 32, 2], "data_offsets": [0, 0]}}))
    out(t, "shape-int64-max", st_file(
        {"a": {"dtype": "F32", "shape": [(1 << 63) - 1], "data_offsets": [0, (1 << 63) - 1]}}))
    out(t, "shape-u64-literal", st_file(b"{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,4]}}", f32(1)))
    out(t, "offsets-reversed", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, f32(1)))
    out(t, "offsets-one", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4]}}, f32(1)))
    out(t, "offsets-three", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}, f32(1)))
    out(t, "offsets-negative", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, f32(1)))
    out(t, "offsets-past-end", st_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, f32(1)))
    out(t, "offsets-2p63", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [(1 << 63) - 4, (1 << 63)]}}, f32(1)))
    out(t, "offsets-wrap", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [(1 << 64) - 2, 2]}}, f32(1)))
    out(t, "overlap", st_file({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, f32(1, 2, 3)))
    out(t, "overlap-same-range", st_file({
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, f32(1)))
    out(t, "overlap-empty-inside", st_file({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}}, f32(1, 2)))
    out(t, "gap", st_file({
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, f32(1, 2, 3)))
    out(t, "gap-at-start", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, f32(1, 2)))
    out(t, "trailing-bytes", st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, f32(1, 2)))
    out(t, "duplicate-key", st_file(
        b"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        b"\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", f32(1, 2)))
    out(t, "metadata-not-object", st_file({"__metadata__": ["format", "pt"]}))
    out(t, "metadata-number", st_file({"__metadata__": {"format": 1}}))
    out(t, "metadata-nested", st_file({"__metadata__": {"format": {"pt": "pt"}}}))
    out(t, "deep-nesting", st_file(b"{\"a\":" + b"[" * 2000 + b"]" * 2000 + b"}", pad=False))


# ---- IDX ------------------------------------------------------------------------------------

def idx(dims, data=None, magic=None):
    head = magic if magic is not None else bytes([0, 0, 8, len(dims)])
    n = 1
    for d in dims:
        n *= d
    if data is None:
        data = bytes((i * 37 + 11) & 0xFF for i in range(n))
    return head + b"".join(struct.pack(">I", d) for d in dims) + data


def idx_seeds():
    t = "idx"
    labels = idx([10], bytes([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]))
    images = idx([2, 3, 4])
    out(t, "valid-labels", labels)
    out(t, "valid-images", images)
    out(t, "valid-4d", idx([2, 1, 3, 2]))
    out(t, "valid-one", idx([1, 1, 1]))
    out(t, "valid-labels.gz", gz(labels))
    out(t, "valid-images.gz", gz(images))
    # what zlib's own compress writes at level 1, a stored (uncompressed) block, and two
    # gzip members back to back (zlib's gzread continues into the second one)
    out(t, "valid-two-members.gz", gz(images[:9]) + gz(images[9:]))
    out(t, "valid-level0.gz", gzip.compress(images, compresslevel=0, mtime=0))

    out(t, "empty", b"")
    out(t, "one-byte", b"\x00")
    out(t, "magic-only", b"\x00\x00\x08")
    out(t, "magic-wrong", b"\x01\x00\x08\x01" + labels[4:])
    out(t, "magic-gpt2-bin", b"\xc6\x0c\x0d\x01" + bytes(12))
    out(t, "type-float", idx([4], bytes(16), magic=b"\x00\x00\x0d\x01"))
    out(t, "type-int", idx([4], bytes(16), magic=b"\x00\x00\x0c\x01"))
    out(t, "ndim-zero", b"\x00\x00\x08\x00")
    out(t, "ndim-five", idx([1, 1, 1, 1, 1], magic=b"\x00\x00\x08\x05"))
    out(t, "ndim-255", b"\x00\x00\x08\xff" + bytes(16))
    out(t, "dim-zero", idx([3, 0, 2], b""))
    out(t, "header-truncated", labels[:6])
    out(t, "data-truncated", images[:-1])
    out(t, "data-trailing", images + b"\x00")
    out(t, "ndim-says-more", idx([4], bytes(4), magic=b"\x00\x00\x08\x03"))
    # absurd sizes: 2^32-1 squared (the product overflows 32 bits), 2^31 + 1 bytes, and
    # exactly 2^31 bytes (the limit) with no data; each plain and gzipped
    for name, dims in (("dims-u32-max", [0xFFFFFFFF, 0xFFFFFFFF]),
                       ("dims-2p31-plus-1", [(1 << 31) + 1]),
                       ("dims-2p31", [1 << 16, 1 << 15]),
                       ("dims-4d-overflow", [1 << 16] * 4)):
        h = idx(dims, b"")
        out(t, name, h)
        out(t, name + ".gz", gz(h))
    gzl = gz(labels)
    out(t, "gz-truncated", gzl[:-3])
    out(t, "gz-header-only", gzl[:10])
    out(t, "gz-magic-only", b"\x1f\x8b")
    bad_crc = bytearray(gzl)
    bad_crc[-8] ^= 0xFF
    out(t, "gz-bad-crc", bytes(bad_crc))
    bad_len = bytearray(gzl)
    bad_len[-4] ^= 0x01
    out(t, "gz-bad-isize", bytes(bad_len))
    out(t, "gz-trailing-garbage", gzl + b"garbage")
    out(t, "gz-of-truncated", gz(images[:-2]))
    out(t, "gz-of-trailing", gz(images + b"\x01"))
    out(t, "gz-of-gz", gz(gzl))
    corrupt = bytearray(gz(images))
    corrupt[12] ^= 0x55
    out(t, "gz-corrupt-deflate", bytes(corrupt))


# ---- YAML argument files ----------------------------------------------------------------

def yaml_seeds():
    t = "yaml_args"
    out(t, "valid-trainer", "# Trainer-style arguments\n"
        "bf16: true\nlearning_rate: 3e-4\nper_device_train_batch_size: 64\n"
        "num_train_epochs: 2\nlr_scheduler_type: cosine\nwarmup_steps: 10\n"
        "gradient_accumulation_steps: 2\nmax_grad_norm: 1.0\nlogging_steps: 5\n"
        "seed: 1234\noutput_dir: out/run1\nweight_decay: 0.01\nmax_steps: -1\n")
    out(t, "valid-mixprec-names", "model: mlp\ndata: fashion-mnist\nmixed-precision: fp16\n"
        "master-weights: false\nloss-scale: dynamic\nhysteresis: 2\ngrowth-interval: 100\n"
        "init-loss-scale: 1024\nmin-loss-scale: 1\nmax-loss-scale: 65536\noptimizer: sgd\n"
        "lr: 0.1\nmomentum: 0.9\nnesterov: yes\nschedule: constant\nbatch-size: 32\nepochs: 1\n"
        "grad-clip: 0\ngrad-accum: 4\nthreads: 2\nlog: run.jsonl\nsave: ckpt\nsave-every: 100\n"
        "keep-last: 2\nresume: ckpt\nlog-every: 10\nstats-every: 0\ndropout: 0.5\nhidden: 64\n"
        "profile: off\n")
    out(t, "valid-quoted", "model: \"cnn\"\ndata: '/tmp/my data'\nloss_scale: \"128\"\n"
        "fp16: \"true\"\n")
    out(t, "valid-doc-markers", "---\nbf16: true\n...\n")
    out(t, "valid-flow-mapping", "{bf16: true, lr: 0.001}\n")
    out(t, "valid-empty-value", "log:\nsave: ''\n")
    out(t, "valid-crlf-bom", "\ufeffbf16: true\r\nepochs: 3\r\n")
    out(t, "valid-block-scalar", "data: |\n  /tmp/x\n")
    out(t, "empty", "")
    out(t, "only-doc-start", "---\n")
    out(t, "only-comment", "# nothing\n")
    out(t, "null-document", "~\n")

    out(t, "nested-mapping", "optim:\n  name: adamw\n  lr: 0.001\n")
    out(t, "sequence-value", "lr: [0.1, 0.01]\n")
    out(t, "top-sequence", "- bf16\n- true\n")
    out(t, "top-scalar", "bf16\n")
    out(t, "duplicate-key", "lr: 0.1\nlr: 0.2\n")
    out(t, "duplicate-key-spellings", "learning_rate: 0.1\nlearning-rate: 0.2\nlr: 0.3\n")
    out(t, "two-documents", "bf16: true\n---\nfp16: true\n")
    out(t, "anchor-alias", "lr: &x 0.1\nwarmup_steps: *x\n")
    out(t, "tag", "lr: !!float 0.1\n")
    out(t, "merge-key", "<<: {lr: 0.1}\n")
    out(t, "complex-key", "? [a, b]\n: c\n")
    out(t, "empty-key", "'': 1\n")
    out(t, "tab-indent", "bf16:\ttrue\n\tlr: 1\n")
    out(t, "bad-indent", "bf16: true\n  lr: 0.1\n")
    out(t, "unclosed-quote", "data: \"/tmp\n")
    out(t, "invalid-utf8", b"data: \xff\xfe\xc0\x80\n")
    out(t, "nul-in-value", b"data: \"a\\0b\"\n")
    out(t, "raw-nul", b"bf16: true\n\x00lr: 1\n")
    out(t, "long-key", "k" * 200 + ": 1\n")
    out(t, "long-value", "data: " + "d" * 1000 + "\n")
    out(t, "unknown-key", "frobnicate: 1\n")
    out(t, "bad-values", "lr: -1\nbatch_size: 1e3\nepochs: 0\nbf16: maybe\n")
    out(t, "nan-inf", "lr: nan\nmomentum: .inf\n")
    out(t, "tiny-lr", "lr: 1e-50\n")
    out(t, "huge-numbers", "seed: 99999999999999999999\nwarmup_steps: 9223372036854775807\n"
        "init_loss_scale: 1e39\nhysteresis: 4000000000\n")
    out(t, "deep-flow", "a: " + "[" * 500 + "]" * 500 + "\n")


# ---- config.json ---------------------------------------------------------------------------

def config_seeds():
    t = "config"
    # as mxp_checkpoint_save writes it (src/train/checkpoint.c, format 2: model, data
    # normalisation, precision, "training_args" as mxp_trainer_args_each prints them)
    args = {"model": "cnn", "data": "fashion-mnist", "mixed-precision": "bf16",
            "optimizer": "adamw", "lr": "0.00100000005", "nesterov": "false",
            "schedule": "cosine", "warmup-steps": "100", "batch-size": "128", "epochs": "5",
            "max-steps": "0", "grad-clip": "1", "seed": "42", "save-every": "0",
            "keep-last": "0", "log-every": "1", "stats-every": "50", "profile": "false"}
    cfg = {"format": 2, "mixprec_version": "0.1.0", "mixed_precision": "bf16",
           "master_weights": True,
           "model": {"name": "cnn", "H": 28, "W": 28, "C": 1, "n_classes": 10, "hidden1": 256,
                     "hidden2": 0, "channels1": 32, "channels2": 64, "dropout": 0.25,
                     "seed": 42},
           "data": {"mean": 0.286040395, "std": 0.353024572},
           "training_args": args}
    out(t, "valid-cnn-bf16", json.dumps(cfg, indent=2))
    mlp = json.loads(json.dumps(cfg))
    mlp["model"] = {"name": "mlp", "H": 28, "W": 28, "C": 1, "n_classes": 10, "hidden1": 512,
                    "hidden2": 256, "channels1": 0, "channels2": 0, "dropout": 0.0, "seed": 7}
    mlp["mixed_precision"] = "fp16"
    mlp["master_weights"] = False
    mlp["training_args"] = dict(args, model="mlp", **{"mixed-precision": "fp16", "loss-scale": "dynamic"})
    out(t, "valid-mlp-fp16", json.dumps(mlp))
    v1 = json.loads(json.dumps(cfg))
    v1["format"] = 1
    del v1["training_args"]
    out(t, "valid-format1", json.dumps(v1, indent=2))

    def variant(name, f):
        c = json.loads(json.dumps(cfg))
        f(c)
        out(t, name, json.dumps(c))

    out(t, "empty", "")
    out(t, "not-json", "{\"format\": 2,")
    out(t, "json-array", "[1, 2]")
    out(t, "json-string", "\"config\"")
    out(t, "json-null", "null")
    out(t, "json-empty-object", "{}")
    out(t, "json-trailing", json.dumps(cfg) + " {}")
    out(t, "duplicate-key", json.dumps(cfg)[:-1] + ", \"format\": 2}")
    out(t, "deep-nesting", "{\"model\":" + "[" * 2000 + "]" * 2000 + "}")
    out(t, "nul-byte", json.dumps(cfg).replace("cnn", "c\\u0000n", 1))
    variant("format-99", lambda c: c.update(format=99))
    variant("format-0", lambda c: c.update(format=0))
    variant("format-negative", lambda c: c.update(format=-1))
    variant("format-string", lambda c: c.update(format="2"))
    variant("format-float", lambda c: c.update(format=2.0))
    variant("format-2p63", lambda c: c.update(format=1 << 63))
    variant("format-missing", lambda c: c.pop("format"))
    variant("model-missing", lambda c: c.pop("model"))
    variant("model-not-object", lambda c: c.update(model="cnn"))
    variant("model-unknown", lambda c: c["model"].update(name="gpt7"))
    variant("model-name-long", lambda c: c["model"].update(name="c" * 100))
    variant("model-H-zero", lambda c: c["model"].update(H=0))
    variant("model-H-negative", lambda c: c["model"].update(H=-28))
    variant("model-huge", lambda c: c["model"].update(H=1 << 40, W=1 << 40, hidden1=1 << 62))
    variant("model-classes-2p31", lambda c: c["model"].update(n_classes=1 << 31))
    variant("model-dropout-nan", lambda c: c["model"].update(dropout="nan"))
    variant("model-dropout-2", lambda c: c["model"].update(dropout=2.0))
    variant("model-seed-negative", lambda c: c["model"].update(seed=-1))
    variant("data-std-zero", lambda c: c["data"].update(std=0))
    variant("data-std-negative", lambda c: c["data"].update(std=-1.0))
    variant("data-std-huge", lambda c: c["data"].update(std=1e300))
    variant("data-mean-string", lambda c: c["data"].update(mean="0.5"))
    variant("data-missing", lambda c: c.pop("data"))
    variant("precision-fp8", lambda c: c.update(mixed_precision="fp8"))
    variant("precision-long", lambda c: c.update(mixed_precision="bf16" * 10))
    variant("precision-number", lambda c: c.update(mixed_precision=16))
    variant("master-weights-int", lambda c: c.update(master_weights=1))
    variant("version-long", lambda c: c.update(mixprec_version="9" * 200))
    variant("args-not-object", lambda c: c.update(training_args=["lr", "0.1"]))
    variant("args-number-value", lambda c: c["training_args"].update(lr=0.1))
    variant("args-refused", lambda c: c["training_args"].update(lr="-1"))
    variant("args-unknown", lambda c: c["training_args"].update(frobnicate="1"))
    variant("args-tiny-lr", lambda c: c["training_args"].update(lr="1e-50"))
    variant("args-long-path", lambda c: c["training_args"].update(save="/" + "d" * 600))
    variant("args-long-key", lambda c: c["training_args"].update({"k" * 100: "1"}))
    variant("args-empty", lambda c: c.update(training_args={}))


def main():
    if len(sys.argv) > 1:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    for d in ("safetensors", "idx", "yaml_args", "config"):
        p = os.path.join(ROOT, d)
        if os.path.isdir(p):
            for f in os.listdir(p):
                if f.startswith("seed-"):
                    os.remove(os.path.join(p, f))
    safetensors()
    idx_seeds()
    yaml_seeds()
    config_seeds()
    total = sum(os.path.getsize(os.path.join(dp, f))
                for dp, _, fs in os.walk(ROOT) for f in fs)
    count = sum(len(fs) for _, _, fs in os.walk(ROOT))
    print("fuzz/corpus: %d files, %d bytes" % (count, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
