/*===- forward.c - calling the generated forward step ---------------------===*/
#include "lowbit_rt.h"

void lowbit_rt_forward(const uint8_t *weights, uint64_t weight_bytes,
                       float *k_cache, float *v_cache, int64_t layers,
                       int64_t context, int64_t kv_width, int64_t vocab,
                       const int32_t *tokens, int64_t n, int64_t start,
                       float *logits) {
  lowbit_memref_1d_i32 t = {tokens, tokens, 0, {n}, {1}};
  lowbit_memref_2d_f32 l = {logits, logits, 0, {n, vocab}, {vocab, 1}};
  int64_t lc = context * kv_width;
  lowbit_memref_3d_f32 kc = {k_cache, k_cache, 0, {layers, context, kv_width},
                             {lc, kv_width, 1}};
  lowbit_memref_3d_f32 vc = {v_cache, v_cache, 0, {layers, context, kv_width},
                             {lc, kv_width, 1}};
  lowbit_memref_1d_u8 w = {weights, weights, 0, {(int64_t)weight_bytes}, {1}};
  _mlir_ciface_lowbit_forward(&t, start, &l, &kc, &vc, &w);
}
