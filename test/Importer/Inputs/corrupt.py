#!/usr/bin/python3
"""Writes a tiny checkpoint to OUT_DIR and breaks it in one way (MODE), for the
importer's bad-input tests: corrupt.py MODE OUT_DIR."""
import json
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "reference"))
import make_checkpoint  # noqa: E402

mode, out = sys.argv[1], sys.argv[2]
layout = "packed" if mode in ("packed-rows", "wrong-shape", "missing-scale",
                              "bitlinear") else "bf16"
args = ["--layout", layout]
if mode.startswith("index-"):
    args += ["--shards", "2"]
make_checkpoint.main(args + [out])
st = os.path.join(out, "model.safetensors")
cfg_path = os.path.join(out, "config.json")
index_path = os.path.join(out, "model.safetensors.index.json")


def load():
    with open(st, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def save(header, payload, length=None):
    text = json.dumps(header).encode()
    with open(st, "wb") as f:
        f.write(struct.pack("<Q", len(text) if length is None else length))
        f.write(text)
        f.write(payload)


def edit_json(path, fn):
    with open(path) as f:
        obj = json.load(f)
    fn(obj)
    with open(path, "w") as f:
        json.dump(obj, f)


def edit_config(fn):
    edit_json(cfg_path, fn)


K = "model.layers.0.self_attn.k_proj.weight"
if mode == "truncated":
    with open(st, "r+b") as f:
        f.truncate(5)
elif mode == "header-past-end":
    h, p = load()
    save(h, p, length=1 << 40)
elif mode == "offset-out-of-range":
    h, p = load()
    b, e = h[K]["data_offsets"]
    h[K]["data_offsets"] = [len(p) - 4, len(p) - 4 + (e - b)]
    save(h, p)
elif mode == "overlap":
    h, p = load()
    q = "model.layers.0.self_attn.q_proj.weight"
    b, e = h[K]["data_offsets"]
    qb = h[q]["data_offsets"][0]
    h[K]["data_offsets"] = [qb + 2, qb + 2 + (e - b)]
    save(h, p)
elif mode == "empty-tensors":
    # Not broken: empty tensors at a tensor's first byte, inside one and at
    # the end of the data overlap nothing.
    h, p = load()
    b, e = h[K]["data_offsets"]
    for i, at in enumerate((b, b + 2, e, len(p))):
        h["extra.empty.%d" % i] = {"dtype": "F32", "shape": [0, 4],
                                   "data_offsets": [at, at]}
    save(h, p)
elif mode == "length-mismatch":
    h, p = load()
    h[K]["shape"] = [32, 33]
    save(h, p)
elif mode == "unknown-dtype":
    h, p = load()
    h[K]["dtype"] = "F64"
    save(h, p)
elif mode == "missing-tensor":
    h, p = load()
    del h["model.layers.1.mlp.up_proj.weight"]
    save(h, p)
elif mode == "wrong-shape":
    h, p = load()
    h[K]["shape"] = [16, 32]        # same bytes as [8, 64]
    save(h, p)
elif mode == "missing-scale":
    h, p = load()
    del h[K + "_scale"]
    save(h, p)
elif mode == "packed-rows":
    edit_config(lambda c: c.update(intermediate_size=162))
elif mode == "malformed-header":
    h, p = load()
    text = json.dumps(h).encode()[:-3]
    with open(st, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + p)
elif mode == "malformed-config":
    with open(cfg_path, "a") as f:
        f.write("}")
elif mode == "missing-field":
    edit_config(lambda c: c.pop("num_attention_heads"))
elif mode == "heads-indivisible":
    edit_config(lambda c: c.update(num_attention_heads=5, num_key_value_heads=5))
elif mode == "kv-indivisible":
    edit_config(lambda c: c.update(num_key_value_heads=3))
elif mode == "hidden-act":
    edit_config(lambda c: c.update(hidden_act="silu"))
elif mode == "huge-context":
    edit_config(lambda c: c.update(max_position_embeddings=2**62))
elif mode == "bos-range":
    edit_config(lambda c: c.update(bos_token_id=c["vocab_size"]))
elif mode == "bos-type":
    edit_config(lambda c: c.update(bos_token_id="<s>"))
elif mode == "eos-list-range":
    edit_config(lambda c: c.update(eos_token_id=[c["vocab_size"] - 1, -1]))
elif mode == "attention-bias":
    edit_config(lambda c: c.update(attention_bias=True))
elif mode == "bias-tensor":
    header, payload = load()
    header["model.layers.0.mlp.down_proj.bias"] = {
        "dtype": "BF16", "shape": [2],
        "data_offsets": [len(payload), len(payload) + 4]}
    save(header, payload + bytes(4))
elif mode == "architectures":
    edit_config(lambda c: c.update(architectures="BitNetForCausalLM"))
elif mode == "rope-scaling":
    edit_config(lambda c: c.update(rope_scaling={"rope_type": "llama3", "factor": 8.0}))
elif mode == "bitlinear":
    edit_config(lambda c: c.update(quantization_config={
        "quant_method": "bitnet", "linear_class": "bitlinear"}))
elif mode == "quant-method":
    edit_config(lambda c: c.update(quantization_config={"quant_method": "gptq"}))
elif mode == "index-traversal":
    edit_json(index_path, lambda i: i["weight_map"].update(
        {"model.norm.weight": "../../etc/passwd"}))
elif mode == "index-missing-tensor":
    edit_json(index_path, lambda i: i["weight_map"].update(
        {"model.extra.weight": "model-00001-of-00002.safetensors"}))
else:
    sys.exit("corrupt.py: unknown mode " + mode)
