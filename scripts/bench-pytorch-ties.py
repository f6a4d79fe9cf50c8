#!/usr/bin/env python3
"""The baseline Amalgam's benchmark compares against: a straightforward single-process PyTorch
TIES merge, tensor by tensor, as the widely used single-node tool does it (float32 arithmetic,
magnitude top-k per tensor, sign election by sum, disjoint weighted mean).

    python3 scripts/bench-pytorch-ties.py BASE_DIR OUT_DIR MODEL_DIR... [--density 0.5] [--weight 0.5] [--threads 2]

Needs torch (Debian: apt-get install python3-torch) and numpy. Reads and writes safetensors with
its own small parser, so it needs no other package.
"""
import argparse
import json
import os
import struct
import time

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
NAMES = {v: k for k, v in DTYPES.items()}


def read_checkpoint(directory):
    """Tensor name -> (file, data offset, dtype, shape), without reading the data."""
    index = os.path.join(directory, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for name in files:
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        for tensor, entry in header.items():
            tensors[tensor] = (path, 8 + n + entry["data_offsets"][0], entry["dtype"], entry["shape"])
    return tensors


def load(entry):
    path, offset, dtype, shape = entry
    count = 1
    for d in shape:
        count *= d
    with open(path, "rb") as f:
        f.seek(offset)
        data = bytearray(f.read(count * torch.tensor([], dtype=DTYPES[dtype]).element_size()))
    return torch.frombuffer(data, dtype=DTYPES[dtype]).reshape(shape) if count else torch.empty(shape, dtype=DTYPES[dtype])


def ties(base, models, weight, density):
    deltas = []
    for x in models:
        d = x.float() - base.float()
        k = int(density * d.numel())
        if density < 1 and k > 0:
            threshold = d.abs().flatten().kthvalue(d.numel() - k + 1).values
            d = d * (d.abs() >= threshold)
        deltas.append(d * weight)
    stacked = torch.stack(deltas)
    sign = torch.where(stacked.sum(0) >= 0, 1.0, -1.0)
    mask = stacked.sign() == sign
    mixed = (stacked * mask).sum(0)
    divisor = (weight * mask).sum(0)
    divisor[divisor == 0] = 1
    return (base.float() + mixed / divisor).to(base.dtype)


def write(directory, tensors):
    os.makedirs(directory, exist_ok=True)
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, t in tensors:
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(directory, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("out")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--density", type=float, default=0.5)
    parser.add_argument("--weight", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    base = read_checkpoint(args.base)
    models = [read_checkpoint(m) for m in args.models]
    merged = []
    for name, entry in base.items():
        merged.append((name, ties(load(entry), [load(m[name]) for m in models], args.weight, args.density)))
    write(args.out, merged)
    elapsed = time.time() - start
    input_bytes = sum(os.path.getsize(os.path.join(d, f)) for d in [args.base] + args.models
                      for f in os.listdir(d) if f.endswith(".safetensors"))
    print(f"pytorch ties: {elapsed:.2f} s, {input_bytes / 1e9 / elapsed:.3f} GB/s input, torch {torch.__version__}, "
          f"{args.threads} threads")


if __name__ == "__main__":
    main()
