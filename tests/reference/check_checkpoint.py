#!/usr/bin/python3
"""check_checkpoint.py CKPT_DIR DATA_DIR LOSS - a mixprec checkpoint opened elsewhere.

Reads CKPT_DIR/model.safetensors and training_state.safetensors with the
official safetensors package (safetensors.torch.load_file), checks every
tensor is F32 with the names and metadata docs/CHECKPOINTS.md promises, loads
the weights of an mlp checkpoint into an equivalent torch.nn model
(load_state_dict, strict) and computes its mean test cross-entropy on
DATA_DIR's t10k files with the normalisation from config.json. That loss must
equal LOSS, the one mixprec computed in fp32, to 1e-5 relative.
Exit 0 ok, 1 mismatch, 77 when torch or safetensors is missing.
"""
import gzip
import json
import os
import struct
import sys

try:
    import torch
    from safetensors.torch import load_file
except ImportError as e:  # the test is skipped, not failed
    print(f"skip: {e}")
    sys.exit(77)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(dims)


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    raise FileNotFoundError(stem)


def header_meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def main():
    ckpt, data_dir, want = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    weights = load_file(os.path.join(ckpt, "model.safetensors"))
    state = load_file(os.path.join(ckpt, "training_state.safetensors"))
    bad = []
    for name, t in list(weights.items()) + list(state.items()):
        if t.dtype != torch.float32:
            bad.append(f"{name} is {t.dtype}, not float32")
    for name, t in weights.items():
        for moment in ("exp_avg", "exp_avg_sq"):
            m = state.get(f"optimizer.{moment}.{name}")
            if m is None or m.shape != t.shape:
                bad.append(f"optimizer.{moment}.{name} missing or of another shape")
    if header_meta(os.path.join(ckpt, "model.safetensors")).get("format") != "pt":
        bad.append("model.safetensors metadata format is not 'pt'")
    meta = header_meta(os.path.join(ckpt, "training_state.safetensors"))
    for key in ("step", "applied_steps", "micro_batches", "epoch", "position", "loss_scale",
                "growth_tracker", "hysteresis_left", "skipped_steps"):
        if key not in meta:
            bad.append(f"training_state metadata lacks {key}")

    m = cfg["model"]
    assert m["name"] == "mlp", "this check builds an mlp"
    d_in = m["H"] * m["W"] * m["C"]
    model = torch.nn.Module()
    model.fc1 = torch.nn.Linear(d_in, m["hidden1"])
    model.fc2 = torch.nn.Linear(m["hidden1"], m["hidden2"])
    model.fc3 = torch.nn.Linear(m["hidden2"], m["n_classes"])
    model.load_state_dict(weights, strict=True)
    x = read_idx(find(data_dir, "t10k-images-idx3-ubyte")).float()
    y = read_idx(find(data_dir, "t10k-labels-idx1-ubyte")).long()
    mean, std = cfg["data"]["mean"], cfg["data"]["std"]
    x = ((x / 255.0 - mean) / std).reshape(x.shape[0], -1)
    with torch.no_grad():
        h = torch.relu(model.fc1(x))
        h = torch.relu(model.fc2(h))
        loss = torch.nn.functional.cross_entropy(model.fc3(h), y).item()
    if abs(loss - want) > 1e-5 * abs(want):
        bad.append(f"test loss in torch {loss:.9g}, mixprec {want:.9g}")
    for b in bad:
        print("check_checkpoint:", b)
    print(f"check_checkpoint: {len(weights)} weights, {len(state)} moments; torch test loss "
          f"{loss:.9g} vs mixprec {want:.9g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
