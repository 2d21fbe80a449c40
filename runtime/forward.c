/*===- forward.c - calling the generated forward step ---------------------===*/
#include "lowbit_rt.h"

void lowbit_rt_forward(const uint8_t *weights, uint64_t weight_bytes,
                       uint8_t *k_cache, uint8_t *v_cache, int64_t vocab,
                       const int32_t *tokens, int64_t n, int64_t start,
                       int64_t logits_from, float *logits, int64_t *stats) {
  int64_t kv = lowbit_model_meta[LOWBIT_META_KV_BYTES];
  lowbit_memref_1d_i32 t = {tokens, tokens, 0, {n}, {1}};
  lowbit_memref_2d_f32 l = {logits, logits, 0, {n, vocab}, {vocab, 1}};
  lowbit_memref_1d_mut_u8 kc = {k_cache, k_cache, 0, {kv}, {1}};
  lowbit_memref_1d_mut_u8 vc = {v_cache, v_cache, 0, {kv}, {1}};
  lowbit_memref_1d_u8 w = {weights, weights, 0, {(int64_t)weight_bytes}, {1}};
  int64_t slots = stats ? 2 * lowbit_model_meta[LOWBIT_META_STAT_SLOTS] : 0;
  lowbit_memref_1d_i64 st = {stats, stats, 0, {slots}, {1}};
  _mlir_ciface_lowbit_forward(&t, start, logits_from, &l, &kc, &vc, &w, &st);
}
