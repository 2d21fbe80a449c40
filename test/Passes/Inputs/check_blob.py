#!/usr/bin/python3
"""Checks a packed blob against reference/bitnet_ref.py's view of the model:
check_blob.py MODEL_DIR PACKED_IR BLOB. Every ternary weight must unpack
(tiles2 layout: tiles of 16 rows, block-major; cols2: column-major, each
256-row block two halves whose byte j holds rows 32 i + perm(j) in bit pair
i; lut3: blocks of 32 rows, per octet of 8 groups of 3 codes 4 x 32 bytes of
nibbles m = |c - 13| and 32 sign bytes, c = 9 (w0+1) + 3 (w1+1) + (w2+1)) to the reference's codes with the reference's alpha; every float tensor
must hold the checkpoint's values. Prints one summary line."""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "reference"))
import bitnet_ref  # noqa: E402
from safetensors_io import to_f32  # noqa: E402

model_dir, ir_path, blob_path = sys.argv[1:4]
ir = open(ir_path).read()
blob = np.fromfile(blob_path, dtype=np.uint8)
entries = dict((m.group(1), (int(m.group(2)), m.group(3))) for m in re.finditer(
    r'"?([\w.]+)"? = \[(\d+)(?: : i64)?, "(\w+)"\]', ir))
alphas = dict((m.group(1), float(m.group(2))) for m in re.finditer(
    r'lowbit\.weight\(#lowbit\.param<"([\w.]+)"[^{]*\{alpha = ([-0-9.e+]+) : f32\}', ir))
ref = bitnet_ref.Model(model_dir)
checked = 0
for name, (offset, kind) in entries.items():
    if offset % 64:
        sys.exit("FAIL: %s at offset %d is not 64-byte aligned" % (name, offset))
    if kind in ("tiles2", "cols2", "lut3"):
        codes, alpha = ref.ternary(name[: -len(".weight")])
        n, k = codes.shape
        if kind == "tiles2":
            kp = -(-k // 256) * 256
            npad = -(-n // 16) * 16
            raw = blob[offset: offset + npad * kp // 4].reshape(
                npad // 16, kp // 256, 16, 64).transpose(0, 2, 1, 3).reshape(
                npad, kp // 256, 64)
            got = np.empty((npad, kp // 256, 4, 64), np.int8)
            for i in range(4):
                got[:, :, i, :] = ((raw >> (2 * i)) & 3).astype(np.int8) - 1
            got = got.reshape(npad, kp)
        elif kind == "lut3":
            octets = -(-k // 24)
            kp = octets * 24
            npad = -(-n // 32) * 32
            raw = blob[offset: offset + npad // 32 * octets * 160].reshape(
                npad // 32, octets, 160)
            nib = raw[:, :, :128].reshape(npad // 32, octets, 4, 32)
            m = np.stack([nib & 15, nib >> 4], axis=3)  # [rb, o, pair, half, row]
            m = m.reshape(npad // 32, octets, 8, 32).astype(np.int16)
            sign = (raw[:, :, None, 128:] >> np.arange(8)[None, None, :, None]) & 1
            c = np.where(sign == 1, 13 - m, 13 + m)  # [rb, o, group, row]
            if np.any(m > 13):
                sys.exit("FAIL: %s has a group index past 13" % name)
            w = np.stack([c // 9, c // 3 % 3, c % 3], axis=-1) - 1
            got = w.transpose(0, 3, 1, 2, 4).reshape(npad, kp).astype(np.int8)
        else:
            kp = k
            npad = -(-n // 256) * 256
            raw = blob[offset: offset + k * npad // 4].reshape(k, npad // 256, 2, 32)
            # vpunpck{l,h}bw order: bytes 8..15 and 16..23 hold rows 16..23
            # and 8..15 of their 32.
            perm = np.r_[0:8, 16:24, 8:16, 24:32]
            got = np.empty((npad, k), np.int8)
            blocks = np.arange(npad // 256)[:, None, None] * 256
            halves = np.arange(2)[None, :, None] * 128
            for i in range(4):
                rows = blocks + halves + 32 * i + perm[None, None, :]
                got[rows.reshape(-1), :] = (((raw >> (2 * i)) & 3).astype(
                    np.int8) - 1).reshape(k, -1).T
        if not np.array_equal(got[:n, :k], codes) or np.any(got[:, k:] != 0) \
                or np.any(got[n:] != 0):
            sys.exit("FAIL: %s codes differ from the reference" % name)
        if abs(alphas[name] - float(alpha)) > 1e-6 * abs(float(alpha)):
            sys.exit("FAIL: %s alpha %g != reference %g" % (name, alphas[name], alpha))
    else:
        want = to_f32(ref.t[name]).reshape(-1)
        if kind == "f32":
            got = blob[offset: offset + 4 * want.size].view(np.float32)
        else:
            got = to_f32(("BF16", blob[offset: offset + 2 * want.size].view(np.uint16)))
        if not np.array_equal(got, want):
            sys.exit("FAIL: %s values differ" % name)
    checked += 1
print("blob OK: %d tensors, %d ternary" % (checked, len(alphas)))
