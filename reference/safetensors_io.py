"""Minimal safetensors reading and writing with numpy (no safetensors package).

bf16 is carried as uint16 bit patterns; `bf16_to_f32` / `f32_to_bf16` convert.
"""
import json
import os
import struct

import numpy as np

DTYPES = {"BF16": (np.uint16, 2), "F16": (np.float16, 2), "F32": (np.float32, 4),
          "U8": (np.uint8, 1), "I8": (np.int8, 1)}


def f32_to_bf16(x):
    """float32 -> bf16 bits, round to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((u >> 16) & 1) + 0x7FFF
    return ((u + rounding) >> 16).astype(np.uint16)


def bf16_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


class Writer:
    """Writes one safetensors file from a list of (name, dtype, shape) specs and
    a callback producing each tensor's bytes in turn (streamed, so a 5 GB
    checkpoint never sits in memory)."""

    def __init__(self, path, specs):
        self.path = path
        header, offset = {}, 0
        for name, dtype, shape in specs:
            n = int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype][1]
            header[name] = {"dtype": dtype, "shape": list(shape),
                            "data_offsets": [offset, offset + n]}
            offset += n
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        self.specs = specs
        self.header = header
        self.f = open(path, "wb")
        self.f.write(struct.pack("<Q", len(text)))
        self.f.write(text)

    def write(self, name, array):
        dtype = self.header[name]["dtype"]
        arr = np.ascontiguousarray(array, dtype=DTYPES[dtype][0])
        begin, end = self.header[name]["data_offsets"]
        assert arr.nbytes == end - begin, name
        self.f.write(arr.tobytes())

    def close(self):
        self.f.close()


def read_dir(model_dir):
    """Returns {name: numpy array (memory-mapped)} for a model directory."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = ["model.safetensors"]
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    tensors = {}
    for name in files:
        tensors.update(read_file(os.path.join(model_dir, name)))
    return tensors


def read_file(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, _ = DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], data[b:e].view(dt).reshape(info["shape"]))
    return out


def to_f32(entry):
    dtype, arr = entry
    if dtype == "BF16":
        return bf16_to_f32(arr)
    return np.asarray(arr, dtype=np.float32)
