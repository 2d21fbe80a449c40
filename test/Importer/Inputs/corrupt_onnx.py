#!/usr/bin/python3
"""Writes a tiny BitNet ONNX model (reference/onnx_export.py over a generated
checkpoint) to OUT_DIR and breaks it in one way (MODE), for the ONNX
importer's bad-input tests: corrupt_onnx.py MODE OUT_DIR. The model is
OUT_DIR/model.onnx with config.json beside it; edits go through the onnx
package's own protobuf classes."""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..", "..")
sys.path.insert(0, os.path.join(root, "reference"))
import make_checkpoint  # noqa: E402
import onnx_export  # noqa: E402

mode, out = sys.argv[1], sys.argv[2]
EXPORT = {"silu": ["--act", "silu"], "qdq-code": ["--weights", "qdq"],
          "qdq-zero-point": ["--weights", "qdq"], "qdq-scale": ["--weights", "qdq"],
          "gemm-bias": ["--gemm"], "gemm-trans-a": ["--gemm"],
          "master-int8": ["--weights", "master"],
          "post-scale-master": ["--weights", "master"]}
EXTERNAL = mode.startswith("ext-")

with tempfile.TemporaryDirectory() as tmp:
    ckpt = os.path.join(tmp, "ckpt")
    make_checkpoint.main(["--hidden", "64", "--intermediate", "128", "--heads", "2",
                          "--kv-heads", "1", "--layers", "1", "--vocab", "256", ckpt])
    args = EXPORT.get(mode, []) + (["--external-data"] if EXTERNAL else [])
    sys.stdout = open(os.devnull, "w")
    onnx_export.main([ckpt, out] + args)
    sys.stdout = sys.__stdout__

path = os.path.join(out, "model.onnx")
m = onnx.load(path, load_external_data=False)
g = m.graph
inits = {t.name: t for t in g.initializer}
nodes = {n.name: n for n in g.node}
Q = "/model/layers.0/self_attn/q_proj/MatMul"


def weight_of(node_name):
    return inits[nodes[node_name].input[1]]


def values(t):
    return numpy_helper.to_array(t).copy()


def replace(t, arr):
    new = numpy_helper.from_array(arr, t.name)
    t.CopyFrom(new)


if mode == "valid":
    pass
elif mode == "not-onnx":
    with open(path, "wb") as f:
        f.write(b"\x0a\xff\xff\xff\xff\x0fnot an ONNX model")
    sys.exit(0)
elif mode == "no-config":
    os.remove(os.path.join(out, "config.json"))
elif mode == "raw-size":
    t = weight_of(Q)
    t.raw_data = t.raw_data[:-4]
elif mode == "typed-count":
    t = weight_of(Q)
    v = values(t).reshape(-1)
    t.ClearField("raw_data")
    t.float_data.extend(v[:-1].tolist())
elif mode == "negative-dim":
    weight_of(Q).dims[0] = -64
elif mode == "duplicate":
    g.initializer.append(inits["model.norm.weight"])
elif mode == "not-ternary":
    t = weight_of(Q)
    v = values(t)
    v[3, 5] = 0.3 * np.abs(v).max()
    replace(t, v)
elif mode == "qdq-code":
    dq = nodes["/model/layers.0/self_attn/q_proj/DequantizeLinear"]
    t = inits[dq.input[0]]
    v = values(t)
    v[2, 7] = 2
    replace(t, v)
elif mode == "qdq-zero-point":
    dq = nodes["/model/layers.0/self_attn/q_proj/DequantizeLinear"]
    replace(inits[dq.input[2]], np.zeros(2, np.int8))
elif mode == "qdq-scale":
    dq = nodes["/model/layers.0/self_attn/q_proj/DequantizeLinear"]
    replace(inits[dq.input[1]], np.array([0.5, 0.5], np.float32))
elif mode in ("unknown-op", "no-round", "two-matrices"):
    n = nodes[Q]
    w = n.input[1]
    if mode == "unknown-op":
        g.node.append(helper.make_node("Exp", [w], ["w_exp"], name="/model/layers.0/self_attn/q_proj/Exp"))
        n.input[1] = "w_exp"
    elif mode == "no-round":
        g.initializer.append(numpy_helper.from_array(np.float32(2.0), "two"))
        g.node.append(helper.make_node("Mul", [w, "two"], ["w_mul"], name="/model/layers.0/self_attn/q_proj/Mul_w"))
        n.input[1] = "w_mul"
    else:
        g.node.append(helper.make_node("Add", [w, nodes["/model/layers.0/self_attn/o_proj/MatMul"].input[1]],
                                       ["w_add"], name="/model/layers.0/self_attn/q_proj/Add_w"))
        n.input[1] = "w_add"
    # The graph stays topologically sorted: move the consumer last.
    g.node.remove(n)
    g.node.append(n)
elif mode == "missing":
    g.node.remove(nodes[Q])
elif mode == "two-names":
    nodes["/model/layers.0/self_attn/k_proj/MatMul"].name = Q
elif mode == "silu":
    pass
elif mode == "double":
    t = weight_of(Q)
    replace(t, values(t).astype(np.float64))
elif mode == "gemm-bias":
    n = nodes["/model/layers.0/mlp/up_proj/Gemm"]
    g.initializer.append(numpy_helper.from_array(np.zeros(128, np.float32), "onnx::Gemm_bias"))
    n.input.append("onnx::Gemm_bias")
elif mode == "gemm-trans-a":
    n = nodes["/model/layers.0/mlp/up_proj/Gemm"]
    n.attribute.append(helper.make_attribute("transA", 1))
elif mode == "master-int8":
    t = inits["model.layers.0.self_attn.q_proj.weight"]
    replace(t, np.clip(np.rint(onnx_export.to_f32(("BF16", values(t).view(np.uint16)))
                              if t.data_type == onnx.TensorProto.BFLOAT16 else values(t)), -1, 1)
            .astype(np.int8))
    # The Cast in front of the quantizer now casts int8.
elif mode in ("post-scale-negative", "post-scale-master"):
    # A scalar Mul after the q_proj MatMul, in its module.
    n = nodes[Q]
    out0 = n.output[0]
    g.initializer.append(numpy_helper.from_array(
        np.float32(-2.0 if mode == "post-scale-negative" else 2.0), "post_scale"))
    for c in g.node:
        for i, x in enumerate(c.input):
            if x == out0:
                c.input[i] = "scaled"
    mul = helper.make_node("Mul", [out0, "post_scale"], ["scaled"],
                           name="/model/layers.0/self_attn/q_proj/Mul_scale")
    g.node.insert(list(g.node).index(n) + 1, mul)
elif mode == "shape":
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    cfg["intermediate_size"] = 192
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f)
elif EXTERNAL:
    t = weight_of(Q)
    info = {e.key: e for e in t.external_data}
    if mode == "ext-escape":
        info["location"].value = "../model.onnx_data"
    elif mode == "ext-absolute":
        info["location"].value = "/etc/passwd"
    elif mode == "ext-missing":
        info["location"].value = "nope.bin"
    elif mode == "ext-offset":
        info["offset"].value = str(1 << 30)
    elif mode == "ext-length":
        info["length"].value = "12"
    elif mode == "ext-symlink":
        outside = os.path.join(os.path.dirname(os.path.abspath(out)), "outside.bin")
        with open(outside, "wb") as f:
            f.write(b"\0" * (1 << 20))
        link = os.path.join(out, "linked.bin")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(outside, link)
        info["location"].value = "linked.bin"
        info["offset"].value = "0"
    else:
        sys.exit("unknown mode " + mode)
else:
    sys.exit("unknown mode " + mode)

with open(path, "wb") as f:
    f.write(m.SerializeToString())
