#!/usr/bin/python3
"""Self-tests of the numpy reference; run by the README's test command."""
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import bitnet_ref as ref  # noqa: E402
import make_checkpoint  # noqa: E402
from safetensors_io import read_dir  # noqa: E402

F32 = np.float32


def loop_bitlinear(x, codes, alpha, bits):
    """BitLinear written as plain loops, straight from spec §7.1."""
    out = np.zeros((x.shape[0], codes.shape[0]), F32)
    for t in range(x.shape[0]):
        row = [float(v) for v in x[t]]
        if bits == 8:
            stat = max(max(abs(v) for v in row), 1e-5)
            s, lo, hi = F32(127.0) / F32(stat), -128, 127
        else:
            stat = max(F32(sum(abs(float(v)) for v in row) / len(row)), F32(1e-5))
            s, lo, hi = F32(np.sqrt(7.0)) / F32(stat), -8, 7
        q = [min(max(int(np.rint(F32(v) * s)), lo), hi) for v in x[t]]
        for n in range(codes.shape[0]):
            acc = sum(q[k] * int(codes[n, k]) for k in range(len(q)))
            out[t, n] = F32(acc) * F32(F32(1.0) / s * alpha)
    return out


class ReferenceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def make(self, name, *args):
        path = os.path.join(self.tmp, name)
        if not os.path.exists(path):
            make_checkpoint.main(list(args) + [path])
        return path

    def test_bitlinear_matches_direct_loop(self):
        rng = np.random.default_rng(3)
        x = rng.standard_normal((3, 24)).astype(F32)
        codes = rng.integers(-1, 2, (10, 24)).astype(np.int8)
        alpha = F32(0.0625)
        for bits, quant in [(8, ref.quant8), (4, ref.quant4)]:
            got = ref.bitlinear(x, (codes, alpha), quant)
            want = loop_bitlinear(x, codes, alpha, bits)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

    def test_quantizers_round_half_to_even(self):
        # 127 * x / max = 2.5 and 3.5 exactly -> 2 and 4
        x = np.array([[2.5, 3.5, 127.0]], F32)
        q, _ = ref.quant8(x)
        self.assertEqual(q[0].tolist(), [2.0, 4.0, 127.0])

    def test_topk_keeps_exactly_half_lower_index_first(self):
        x = np.array([[1.0, -3.0, 1.0, 2.0, 1.0, 0.5]], F32)
        y = ref.topk_mask(x, 3)
        self.assertEqual(y[0].tolist(), [1.0, -3.0, 0.0, 2.0, 0.0, 0.0])

    def test_master_weights_ternarize_to_chosen_codes(self):
        codes, alpha = make_checkpoint.ternary(7, "w", (12, 40))
        w = make_checkpoint.master_weights(7, "w", codes, alpha)
        frac = [(codes == v).mean() for v in (-1, 0, 1)]
        self.assertTrue(all(0.25 < f < 0.42 for f in frac), frac)
        from safetensors_io import bf16_to_f32
        wf = bf16_to_f32(w).astype(np.float64)
        self.assertEqual(F32(np.abs(wf).mean()), alpha)
        np.testing.assert_array_equal(np.clip(np.rint(wf / alpha), -1, 1), codes)

    def test_packed_layout_roundtrips_codes(self):
        codes, _ = make_checkpoint.ternary(1, "w", (16, 9))
        p = make_checkpoint.pack_hf(codes)
        self.assertEqual(p.shape, (4, 9))
        r = 4
        for i in range(4):
            np.testing.assert_array_equal(((p >> (2 * i)) & 3).astype(np.int8) - 1,
                                          codes[i * r:(i + 1) * r])

    def logits(self, path, toks, **kw):
        return ref.Model(path, **kw).forward(toks)

    def test_layouts_give_identical_logits(self):
        toks = [3, 17, 250, 9, 9, 101, 64]
        for scheme in ["b1.58", "a4.8"]:
            a = self.logits(self.make("bf16" + scheme, "--layout", "bf16", "--scheme", scheme), toks)
            b = self.logits(self.make("packed" + scheme, "--layout", "packed", "--scheme", scheme), toks)
            c = self.logits(self.make("sharded" + scheme, "--layout", "packed", "--scheme", scheme,
                                      "--shards", "3"), toks)
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(b, c)

    def test_outputs_finite_and_not_degenerate(self):
        path = self.make("gqa", "--hidden", "96", "--heads", "6", "--kv-heads", "2",
                         "--intermediate", "200", "--layers", "3")
        for scheme in ["b1.58", "a4.8"]:
            for bits in [16, 8, 4, 3]:
                lg = self.logits(path, list(range(1, 40, 3)), scheme=scheme, kv_bits=bits)
                self.assertTrue(np.isfinite(lg).all())
                self.assertGreater(float(lg.std()), 0.3)
                self.assertGreater(len(set(np.argmax(lg, axis=1).tolist())), 3)
                # rows differ between positions
                self.assertGreater(float(np.abs(lg[1:] - lg[:-1]).mean()), 0.1)

    def test_incremental_decode_matches_full_prefill(self):
        path = self.make("bf16b1.58", "--layout", "bf16", "--scheme", "b1.58")
        toks = [5, 6, 7, 8, 9]
        full = self.logits(path, toks)
        m = ref.Model(path)
        steps = np.concatenate([m.forward([t]) for t in toks])
        np.testing.assert_allclose(steps, full, rtol=2e-5, atol=2e-5)

    def test_kv_quantization_changes_little_at_8_bits(self):
        path = self.make("bf16b1.58", "--layout", "bf16", "--scheme", "b1.58")
        toks = list(range(2, 60, 4))
        a = self.logits(path, toks)
        b = self.logits(path, toks, kv_bits=8)
        c = self.logits(path, toks, kv_bits=3)
        cos = lambda u, v: float((u * v).sum() / np.sqrt((u * u).sum() * (v * v).sum()))
        self.assertGreater(cos(a, b), 0.995)
        self.assertFalse(np.array_equal(a, c))
        # position 0 keeps 8 bits in both quantized caches: same first row
        np.testing.assert_array_equal(b[0], c[0])

    def test_half_cache_rounds_each_element(self):
        path = self.make("bf16b1.58", "--layout", "bf16", "--scheme", "b1.58")
        toks = list(range(2, 60, 4))
        a = self.logits(path, toks)
        h = self.logits(path, toks, kv_bits="f16")
        cos = lambda u, v: float((u * v).sum() / np.sqrt((u * u).sum() * (v * v).sum()))
        self.assertGreater(cos(a, h), 0.999)
        self.assertFalse(np.array_equal(a, h))
        m = ref.Model(path, kv_bits="f16")
        m.forward(toks[:3])
        k = m.cache.k[0, :3]
        self.assertTrue(np.any(k != 0))
        np.testing.assert_array_equal(k, k.astype(np.float16).astype(np.float32))

    def test_checkpoint_tensor_set(self):
        t = read_dir(self.make("packedb1.58", "--layout", "packed", "--scheme", "b1.58"))
        self.assertEqual(t["model.layers.0.self_attn.k_proj.weight"][0], "U8")
        self.assertEqual(t["model.layers.0.self_attn.k_proj.weight"][1].shape, (8, 64))
        self.assertEqual(t["model.layers.1.mlp.down_proj.weight_scale"][1].shape, (1,))


if __name__ == "__main__":
    unittest.main()
