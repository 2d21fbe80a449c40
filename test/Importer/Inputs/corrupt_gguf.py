#!/usr/bin/python3
"""Writes a tiny BitNet GGUF file (bench/gguf.py over a generated packed
checkpoint) to OUT and breaks it in one way (MODE), for the GGUF importer's
bad-input tests: corrupt_gguf.py MODE OUT.gguf.

The file is parsed into its header, key/values (raw value bytes), tensor
infos and data, edited, and written back; the parser here is independent of
lowbit's."""
import os
import struct
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..", "..")
sys.path.insert(0, os.path.join(root, "reference"))
sys.path.insert(0, os.path.join(root, "bench"))
import gguf  # noqa: E402
import make_checkpoint  # noqa: E402

mode, out = sys.argv[1], sys.argv[2]
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def read(path):
    data = open(path, "rb").read()
    pos = 24
    _, version, nt, nkv = struct.unpack("<4sIQQ", data[:24])

    def string():
        nonlocal pos
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        s = data[pos + 8:pos + 8 + n]
        pos += 8 + n
        return s

    def value(t):
        nonlocal pos
        start = pos
        if t == 8:
            string()
        elif t == 9:
            et, n = struct.unpack("<IQ", data[pos:pos + 12])
            pos += 12
            for _ in range(n):
                value(et)
        else:
            pos += SCALAR[t]
        return data[start:pos]

    kvs = []
    for _ in range(nkv):
        key = string().decode()
        (t,) = struct.unpack("<I", data[pos:pos + 4])
        pos += 4
        kvs.append([key, t, value(t)])
    tensors = []
    for _ in range(nt):
        name = string().decode()
        (nd,) = struct.unpack("<I", data[pos:pos + 4])
        dims = list(struct.unpack("<%dQ" % nd, data[pos + 4:pos + 4 + 8 * nd]))
        pos += 4 + 8 * nd
        ty, off = struct.unpack("<IQ", data[pos:pos + 12])
        pos += 12
        tensors.append([name, dims, ty, off])
    start = -(-pos // 32) * 32
    return version, kvs, tensors, bytearray(data[start:])


def write(path, version, kvs, tensors, blob):
    def gstr(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b
    out = struct.pack("<4sIQQ", b"GGUF", version, len(tensors), len(kvs))
    for key, t, raw in kvs:
        out += gstr(key) + struct.pack("<I", t) + raw
    for name, dims, ty, off in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(
            struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ty, off)
    out += b"\0" * (-len(out) % 32)
    open(path, "wb").write(out + bytes(blob))


def sval(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


ternary = {"scales-differ": "tq2_0", "i2s-code3": "i2_s",
           "not-ternary": "f32"}.get(mode, "tq2_0")
tmp = tempfile.mkdtemp()
make_checkpoint.main(["--layout", "packed", "--hidden", "256", "--intermediate",
                      "512", "--heads", "4", "--kv-heads", "2", "--vocab", "4096",
                      "--layers", "1", tmp])
with open(os.path.join(tmp, "tokenizer.json"), "w") as f:
    f.write(open(os.path.join(root, "reference", "models", "kjv-b1.58",
                              "tokenizer.json")).read())
import contextlib, io  # noqa: E401,E402
with contextlib.redirect_stdout(io.StringIO()):
    gguf.main([tmp, out, "--ternary", ternary])
version, kvs, tensors, blob = read(out)
kv = {k[0]: k for k in kvs}
tn = {t[0]: t for t in tensors}
q = tn["blk.0.attn_q.weight"]
if mode == "valid":
    pass
elif mode == "version":
    version = 1
elif mode == "big-endian":
    version = 3 << 24
elif mode == "no-bos":
    kvs.append(["tokenizer.ggml.add_bos_token", 7, b"\0"])
elif mode == "arch":
    kv["general.architecture"][2] = sval("llama")
elif mode == "missing-key":
    kvs.remove(kv["bitnet.block_count"])
elif mode == "key-type":
    kv["bitnet.block_count"][1:] = [8, sval("two")]
elif mode == "duplicate-key":
    kvs.append(list(kv["bitnet.block_count"]))
elif mode == "silu":
    kvs.append(["bitnet.hidden_activation", 8, sval("silu")])
elif mode == "rope-dims":
    kv["bitnet.rope.dimension_count"][2] = struct.pack("<I", 32)
elif mode == "pre":
    kv["tokenizer.ggml.pre"][2] = sval("gpt-2")
elif mode == "q2k":
    tn["token_embd.weight"][2] = 10
elif mode == "unknown-type":
    q[2] = 99
elif mode == "offset":
    q[3] = 1 << 40
elif mode == "misaligned":
    q[3] += 4
elif mode == "shape":
    q[1] = [256, 128]
elif mode == "scales-differ":
    # The f16 scale of q_proj's second block (66 bytes per block), doubled.
    at = q[3] + 66 + 64
    (d,) = struct.unpack("<e", bytes(blob[at:at + 2]))
    blob[at:at + 2] = struct.pack("<e", 2 * d)
elif mode == "i2s-code3":
    blob[q[3]] = 0xFF
elif mode == "not-ternary":
    # Element [0, 1] of q_proj becomes half its scale.
    w = struct.unpack("<%df" % (256 * 256), bytes(blob[q[3]:q[3] + 4 * 256 * 256]))
    blob[q[3] + 4:q[3] + 8] = struct.pack("<f", max(map(abs, w)) / 2)
elif mode in ("truncated", "short"):
    write(out, version, kvs, tensors, blob)
    data = open(out, "rb").read()
    open(out, "wb").write(data[:-100] if mode == "truncated" else data[:3000])
    sys.exit(0)
else:
    sys.exit("corrupt_gguf.py: unknown mode " + mode)
write(out, version, kvs, tensors, blob)
