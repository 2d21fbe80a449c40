#!/usr/bin/python3
"""Writes a checkpoint directory as an ONNX model laid out the way
torch.onnx.export (and Optimum, which calls it) lays out a BitNet decoder,
so tests can compile ONNX input with lowbitc. No torch or transformers is
needed: the graph is built with Debian's python3-onnx (opset 17).

  onnx_export.py MODEL_DIR OUT_DIR [--weights folded|qdq|master|offline]
                 [--dtype f32|f16|bf16] [--codes int8|uint8] [--embd-dtype f32|f16|bf16]
                 [--external-data] [--optimum] [--anonymous] [--act relu2|silu]
                 [--gemm] [--merged] [--no-scopes] [--reference-dir DIR]

Node names carry the module path (/model/layers.0/self_attn/q_proj/MatMul),
as the exporter's scope names do. Projections, by --weights:
  folded  (constant folding, the exporter's default): MatMul's B is an
          initializer onnx::MatMul_N, [in, out], holding the values the model
          multiplies by: codes * alpha in --dtype;
  qdq     DequantizeLinear(codes [out, in] int8 (or uint8 + 1 with zero point
          1), scale, zero point) -> Transpose -> MatMul;
  master  no folding: the checkpoint's master weights (named as in it) go
          through BitNet's absmean quantizer in the graph (Abs, ReduceMean,
          Max, Div, Round, Clip, Mul), then Transpose -> MatMul;
  offline transformers' AutoBitLinear for offline checkpoints: MatMul by the
          codes -1/0/+1 (folded, in --dtype), then Mul by weight_scale.
--gemm writes projections as Gemm(transB=1) on [out, in] weights instead;
--merged puts the layers in both branches of an If (Optimum's merged decoder);
--no-scopes names nodes node_<Op>_N and the projections' stored weights as
the checkpoint's tensors (an exporter that keeps parameter names but no
module scopes, as torch's dynamo exporter).
The embedding is a Gather on model.embed_tokens.weight, norms Mul their
weights (model.layers.N.*norm.weight), the head a MatMul on a transposed copy
(tied) or the checkpoint's lm_head. --anonymous renames every initializer
onnx::<Op>_N (only node names then say what a tensor is). Activation
quantization, RoPE, attention, ReLU^2 and residuals are written in outline
(the same ops, not every detail of the exporter's graph): lowbit reads the
weights from the graph and the architecture from config.json.

OUT_DIR gets model.onnx (with --external-data, model.onnx_data), config.json
and tokenizer.json; with --optimum, OUT_DIR/onnx/model.onnx. --reference-dir
writes the checkpoint as the ONNX file holds it (projections' scales rounded
to --dtype) for the numpy reference.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitnet_ref import ternary  # noqa: E402
from make_checkpoint import PROJ, pack_hf  # noqa: E402
from safetensors_io import Writer, f32_to_bf16, read_dir, to_f32  # noqa: E402

F32, F16, BF16, I8, U8, I64 = (TensorProto.FLOAT, TensorProto.FLOAT16,
                              TensorProto.BFLOAT16, TensorProto.INT8,
                              TensorProto.UINT8, TensorProto.INT64)


class Graph:
    def __init__(self, anonymous, external=None):
        self.nodes, self.inits, self.anonymous, self.count = [], [], anonymous, 0
        self.names = set()
        # external: (open data file, its name): initializers over 256 bytes
        # are written there as they come (a 2B model never sits in memory).
        self.external = external

    def init(self, name, array, dtype=None, op="Mul"):
        """An initializer; dtype BF16 takes uint16 bit patterns."""
        if self.anonymous or name is None:
            self.count += 1
            name = "onnx::%s_%d" % (op, self.count)
        assert name not in self.names, name
        self.names.add(name)
        if self.external and array.nbytes > 256:
            f, location = self.external
            f.write(b"\0" * (-f.tell() % 64))
            offset = f.tell()
            f.write(np.ascontiguousarray(array).tobytes())
            t = TensorProto()
            t.name = name
            t.data_type = dtype or onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[array.dtype]
            t.dims.extend(array.shape)
            t.data_location = TensorProto.EXTERNAL
            for k, v in [("location", location), ("offset", str(offset)),
                         ("length", str(array.nbytes))]:
                e = t.external_data.add()
                e.key, e.value = k, v
        elif dtype == BF16:
            t = helper.make_tensor(name, BF16, array.shape, array.tobytes(), raw=True)
        else:
            t = numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.inits.append(t)
        return name

    def const(self, value, op="Constant"):
        self.count += 1
        name = "onnx::%s_%d" % (op, self.count)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, scope, op, inputs, n_out=1, suffix="", **attrs):
        name = "%s/%s%s" % (scope, op, suffix)
        outs = ["%s_output_%d" % (name, i) for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs


def encode(x, dtype):
    """float32 array -> (array in dtype's storage, ONNX type)."""
    if dtype == "f16":
        return x.astype(np.float16), F16
    if dtype == "bf16":
        return f32_to_bf16(x), BF16
    return x.astype(np.float32), F32


def decode(stored, dtype):
    if dtype == "bf16":
        return (stored.astype(np.uint32) << 16).view(np.float32)
    return stored.astype(np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--weights", choices=["folded", "qdq", "master", "offline"],
                    default="folded")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--codes", choices=["int8", "uint8"], default="int8")
    ap.add_argument("--embd-dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--external-data", action="store_true")
    ap.add_argument("--optimum", action="store_true")
    ap.add_argument("--anonymous", action="store_true")
    ap.add_argument("--act", choices=["relu2", "silu"], default="relu2")
    ap.add_argument("--gemm", action="store_true")
    ap.add_argument("--merged", action="store_true")
    ap.add_argument("--no-scopes", action="store_true")
    ap.add_argument("--reference-dir")
    a = ap.parse_args(argv)

    with open(os.path.join(a.model_dir, "config.json")) as f:
        cfg = json.load(f)
    t = read_dir(a.model_dir)
    H, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    hd = cfg.get("head_dim", H // nh)
    eps = cfg.get("rms_norm_eps", 1e-5)
    tied = cfg.get("tie_word_embeddings", "lm_head.weight" not in t)
    out = os.path.join(a.out_dir, "onnx") if a.optimum else a.out_dir
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "model.onnx")
    data = open(os.path.join(out, "model.onnx_data"), "wb") if a.external_data else None
    g = Graph(a.anonymous, (data, "model.onnx_data") if data else None)
    ref_scales = {}  # projection -> alpha as the file holds it

    def fl(name):
        return to_f32(t[name]).astype(np.float32)

    def rmsnorm(scope, x, wname):
        p = g.node(scope, "Pow", [x, g.const(np.float32(2.0))])
        m = g.node(scope, "ReduceMean", [p], axes=[-1], keepdims=1)
        e = g.node(scope, "Add", [m, g.const(np.float32(eps))])
        s = g.node(scope, "Sqrt", [e])
        r = g.node(scope, "Reciprocal", [s])
        y = g.node(scope, "Mul", [x, r])
        w = g.init(wname, fl(wname))
        return g.node(scope, "Mul", [w, y], suffix="_1")

    def act_quant(scope, x):
        """absmax int8 activation quantization, as BitLinear does it."""
        ab = g.node(scope, "Abs", [x])
        mx = g.node(scope, "ReduceMax", [ab], axes=[-1], keepdims=1)
        cl = g.node(scope, "Clip", [mx, g.const(np.float32(1e-5))])
        sc = g.node(scope, "Div", [g.const(np.float32(127.0)), cl])
        q = g.node(scope, "Mul", [x, sc])
        r = g.node(scope, "Round", [q])
        c = g.node(scope, "Clip", [r, g.const(np.float32(-128.0)), g.const(np.float32(127.0))],
                   suffix="_1")
        return g.node(scope, "Div", [c, sc], suffix="_1")

    def projection(scope, x, name):
        """BitLinear `name` (model.layers.N.self_attn.q_proj) on x."""
        wname = name + ".weight"
        codes, alpha = ternary(t, wname)
        xq = act_quant(scope, x)
        if a.weights == "master":
            if t[wname][0] == "U8":
                sys.exit("onnx_export: --weights master needs master weights "
                         "(a bf16 checkpoint), got packed %s" % wname)
            w = g.init(wname, t[wname][1], BF16) if t[wname][0] == "BF16" else \
                g.init(wname, fl(wname))
            wf = g.node(scope, "Cast", [w], to=F32) if t[wname][0] == "BF16" else w
            ab = g.node(scope, "Abs", [wf], suffix="_w")
            mean = g.node(scope, "ReduceMean", [ab], keepdims=0, suffix="_w")
            s = g.node(scope, "Max", [mean, g.const(np.float32(1e-5))], suffix="_w")
            d = g.node(scope, "Div", [wf, s], suffix="_w")
            r = g.node(scope, "Round", [d], suffix="_w")
            c = g.node(scope, "Clip", [r, g.const(np.float32(-1.0)), g.const(np.float32(1.0))],
                       suffix="_w")
            wq = g.node(scope, "Mul", [c, s], suffix="_w")
            ref_scales[name] = None
        elif a.weights == "qdq":
            keep = wname if a.no_scopes else None
            if a.codes == "uint8":
                q = g.init(keep, (codes.astype(np.int16) + 1).astype(np.uint8), op="DequantizeLinear")
                zp = g.const(np.uint8(1))
            else:
                q = g.init(keep, codes, op="DequantizeLinear")
                zp = g.const(np.int8(0))
            wq = g.node(scope, "DequantizeLinear", [q, g.const(np.float32(alpha)), zp])
            ref_scales[name] = np.float32(alpha)
        elif a.weights == "offline":
            # transformers' AutoBitLinear for offline checkpoints: codes as
            # the weight, F.linear(x, codes) * weight_scale.
            stored, ty = encode(codes.astype(np.float32), a.dtype)
            wq = g.init(None, stored if a.gemm else np.ascontiguousarray(stored.T), ty,
                        op="Gemm" if a.gemm else "MatMul")
            y = (g.node(scope, "Gemm", [xq, wq], transB=1) if a.gemm
                 else g.node(scope, "MatMul", [xq, wq]))
            s = g.init(name + ".weight_scale", np.array([alpha], np.float32))
            ref_scales[name] = np.float32(alpha)
            return g.node(scope, "Mul", [y, s], suffix="_scale")
        else:
            stored, ty = encode(codes.astype(np.float32) * alpha, a.dtype)
            held = decode(stored, a.dtype)
            ref_scales[name] = np.float32(np.abs(held).max()) if np.any(codes) else np.float32(1.0)
            keep = wname if a.no_scopes else None
            if a.gemm:
                wq = g.init(keep, stored, ty, op="Gemm")
            else:
                wq = g.init(keep, np.ascontiguousarray(stored.T), ty, op="MatMul")
            if a.gemm:
                return g.node(scope, "Gemm", [xq, wq], transB=1)
            return g.node(scope, "MatMul", [xq, wq])
        if a.gemm:
            return g.node(scope, "Gemm", [xq, wq], transB=1)
        wt = g.node(scope, "Transpose", [wq], perm=[1, 0])
        return g.node(scope, "MatMul", [xq, wt])

    inputs = [helper.make_tensor_value_info("input_ids", I64, ["batch", "seq"]),
              helper.make_tensor_value_info("position_ids", I64, ["batch", "seq"])]
    emb_name = "model.embed_tokens.weight"
    emb_stored, emb_ty = encode(fl(emb_name), a.embd_dtype)
    emb = g.init(emb_name, emb_stored, emb_ty, op="Gather")
    h = g.node("/model/embed_tokens", "Gather", [emb, "input_ids"])
    if emb_ty != F32:
        h = g.node("/model/embed_tokens", "Cast", [h], to=F32)
    # RoPE's angles: inv_freq times positions (a MatMul of two activations'
    # worth: its B is a graph input, not a weight).
    inv = g.init(None, (1.0 / (cfg.get("rope_theta", 10000.0) **
                               (np.arange(0, hd, 2) / hd))).astype(np.float32)
                 .reshape(1, hd // 2, 1), op="Expand")
    pos = g.node("/model/rotary_emb", "Cast", ["position_ids"], to=F32)
    posu = g.node("/model/rotary_emb", "Unsqueeze", [pos, g.const(np.array([1], np.int64))])
    freqs = g.node("/model/rotary_emb", "MatMul", [inv, posu])
    cos = g.node("/model/rotary_emb", "Cos", [freqs])
    sin = g.node("/model/rotary_emb", "Sin", [freqs])

    for i in range(L):
        P, S = "model.layers.%d" % i, "/model/layers.%d" % i
        x = rmsnorm(S + "/input_layernorm", h, P + ".input_layernorm.weight")
        q = projection(S + "/self_attn/q_proj", x, P + ".self_attn.q_proj")
        k = projection(S + "/self_attn/k_proj", x, P + ".self_attn.k_proj")
        v = projection(S + "/self_attn/v_proj", x, P + ".self_attn.v_proj")
        sa = S + "/self_attn"
        qr = g.node(sa, "Add", [g.node(sa, "Mul", [q, cos]), g.node(sa, "Mul", [q, sin], suffix="_1")])
        kr = g.node(sa, "Add", [g.node(sa, "Mul", [k, cos], suffix="_2"),
                                g.node(sa, "Mul", [k, sin], suffix="_3")], suffix="_1")
        kt = g.node(sa, "Transpose", [kr], perm=[0, 2, 1])
        sc = g.node(sa, "MatMul", [qr, kt])
        sc = g.node(sa, "Div", [sc, g.const(np.float32(np.sqrt(hd)))])
        pr = g.node(sa, "Softmax", [sc], axis=-1)
        o = g.node(sa, "MatMul", [pr, v], suffix="_1")
        o = rmsnorm(sa + "/attn_sub_norm", o, P + ".self_attn.attn_sub_norm.weight")
        o = projection(sa + "/o_proj", o, P + ".self_attn.o_proj")
        h = g.node(S, "Add", [h, o])
        x = rmsnorm(S + "/post_attention_layernorm", h, P + ".post_attention_layernorm.weight")
        gt = projection(S + "/mlp/gate_proj", x, P + ".mlp.gate_proj")
        up = projection(S + "/mlp/up_proj", x, P + ".mlp.up_proj")
        if a.act == "relu2":
            r = g.node(S + "/mlp/act_fn", "Relu", [gt])
            act = g.node(S + "/mlp/act_fn", "Pow", [r, g.const(np.float32(2.0))])
        else:
            act = g.node(S + "/mlp/act_fn", "Mul", [gt, g.node(S + "/mlp/act_fn", "Sigmoid", [gt])])
        m = g.node(S + "/mlp", "Mul", [act, up])
        m = rmsnorm(S + "/mlp/ffn_sub_norm", m, P + ".mlp.ffn_sub_norm.weight")
        d = projection(S + "/mlp/down_proj", m, P + ".mlp.down_proj")
        h = g.node(S, "Add", [h, d], suffix="_1")
    h = rmsnorm("/model/norm", h, "model.norm.weight")
    head = fl(emb_name if tied else "lm_head.weight")
    hw = g.init("lm_head.weight" if a.no_scopes and not tied else None,
                np.ascontiguousarray(encode(head, a.embd_dtype)[0].T),
                encode(head, a.embd_dtype)[1], op="MatMul")
    if a.embd_dtype != "f32":
        hw = g.node("/lm_head", "Cast", [hw], to=F32)
    logits = g.node("/lm_head", "MatMul", [h, hw])
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="/Identity"))

    if a.no_scopes:
        for i, n in enumerate(g.nodes):
            n.name = "node_%s_%d" % (n.op_type, i)
    nodes = g.nodes
    if a.merged:
        # Optimum's merged decoder: the layers twice, in the two branches of
        # an If, over the outer graph's initializers; node names repeat.
        produced = {o for n in g.nodes for o in n.output}

        def branch(suffix):
            out = []
            for n in g.nodes:
                c = onnx.NodeProto()
                c.CopyFrom(n)
                c.input[:] = [x + suffix if x in produced else x for x in n.input]
                c.output[:] = [x + suffix for x in n.output]
                out.append(c)
            return helper.make_graph(out, "branch" + suffix, [], [
                helper.make_tensor_value_info("logits" + suffix, F32, None)])
        inputs.append(helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1]))
        nodes = [helper.make_node("If", ["use_cache_branch"], ["logits"], name="optimum::if",
                                  then_branch=branch("_cache"), else_branch=branch("_nocache"))]
    graph = helper.make_graph(nodes, "main_graph", inputs,
                              [helper.make_tensor_value_info("logits", F32, ["batch", "seq", V])],
                              initializer=g.inits)
    model = helper.make_model(graph, producer_name="pytorch", producer_version="1.13.1",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if data:
        data.close()
    onnx.save_model(model, path)
    onnx.checker.check_model(path)
    for f in ["config.json", "tokenizer.json"]:
        if os.path.exists(os.path.join(a.model_dir, f)):
            shutil.copy(os.path.join(a.model_dir, f), os.path.join(a.out_dir, f))

    if a.reference_dir:
        write_reference(a.model_dir, a.reference_dir, t, ref_scales, a.embd_dtype, tied)
    print(path)


def write_reference(model_dir, out_dir, t, scales, embd_dtype, tied):
    """The checkpoint as the ONNX file holds it: projections whose scale the
    file rounds become packed codes with that scale; tables in embd_dtype."""
    os.makedirs(out_dir, exist_ok=True)
    for f in ["config.json", "tokenizer.json"]:
        if os.path.exists(os.path.join(model_dir, f)):
            shutil.copy(os.path.join(model_dir, f), os.path.join(out_dir, f))
    specs, data = [], {}
    for name, (dtype, arr) in t.items():
        if name.endswith(".weight_scale"):
            continue
        prefix = name[:-len(".weight")] if name.endswith(".weight") else None
        if prefix in scales and scales[prefix] is not None:
            codes, _ = ternary(t, name)
            if codes.shape[0] % 4:
                sys.exit("onnx_export: --reference-dir needs output sizes "
                         "divisible by 4 (%s)" % name)
            data[name] = ("U8", pack_hf(codes))
            data[name + "_scale"] = ("F32", np.array([scales[prefix]], np.float32))
        elif prefix in scales:
            data[name] = (dtype, arr)
        elif name in ("model.embed_tokens.weight", "lm_head.weight"):
            data[name] = ("F32", decode(encode(to_f32((dtype, arr)).astype(np.float32),
                                               embd_dtype)[0], embd_dtype))
        else:
            data[name] = (dtype, arr)
    for name, (dtype, arr) in data.items():
        specs.append((name, dtype, arr.shape))
    w = Writer(os.path.join(out_dir, "model.safetensors"), specs)
    for name, (dtype, arr) in data.items():
        w.write(name, arr)
    w.close()


if __name__ == "__main__":
    main()
