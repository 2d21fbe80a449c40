#!/usr/bin/python3
"""Sets every tensor whose name contains SUBSTR in a safetensors checkpoint
directory to 1.0 (bf16/f32), in place: ones.py DIR SUBSTR."""
import json, os, struct, sys
d, sub = sys.argv[1], sys.argv[2]
for f in sorted(os.listdir(d)):
    if not f.endswith(".safetensors"):
        continue
    p = os.path.join(d, f)
    with open(p, "r+b") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        hdr = json.loads(fh.read(n))
        for name, t in hdr.items():
            if name == "__metadata__" or sub not in name:
                continue
            a, b = t["data_offsets"]
            one = {"BF16": b"\x80\x3f", "F32": struct.pack("<f", 1.0)}[t["dtype"]]
            fh.seek(8 + n + a)
            fh.write(one * ((b - a) // len(one)))
