/*===- capi.c - the C API of shared-library models (lowbit.h) -------------===*/
#include "lowbit.h"
#include "lowbit_rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lowbit_model {
  int64_t vocab, context, pos;
  uint8_t *k_cache, *v_cache;
  lowbit_weights weights;
  int in_pool; /* counted among the thread pool's users */
};

const char *lowbit_last_error(void) { return lowbit_rt_error(); }

lowbit_model *lowbit_open(const char *weights_path, int threads, char *err,
                          size_t err_size) {
  lowbit_model *m = calloc(1, sizeof *m);
  const char *why = NULL;
  if (!m)
    why = "out of memory";
  else if (lowbit_model_meta[LOWBIT_META_ABI_VERSION] != LOWBIT_ABI_VERSION)
    why = "model ABI version does not match the runtime";
  else if (!lowbit_model_meta[LOWBIT_META_EMBEDDED] && !weights_path)
    why = "this model keeps its weights in a side file: pass its path";
  else if (threads < 1 || threads > 256)
    why = "thread count must be in [1, 256]";
  if (!why) {
    m->vocab = lowbit_model_meta[LOWBIT_META_VOCAB];
    m->context = lowbit_model_meta[LOWBIT_META_CONTEXT];
    if (lowbit_rt_weights_open(&m->weights, weights_path))
      why = lowbit_rt_error();
  }
  if (!why) {
    if (lowbit_rt_caches_alloc(&m->k_cache, &m->v_cache))
      why = lowbit_rt_error();
    else if (lowbit_rt_threads_start(threads))
      why = "cannot start the threads";
    else
      m->in_pool = 1;
  }
  if (why) {
    lowbit_rt_fail("%s", why);
    if (err && err_size)
      snprintf(err, err_size, "%s", why);
    lowbit_close(m);
    return NULL;
  }
  return m;
}

int64_t lowbit_vocab(const lowbit_model *m) { return m->vocab; }
int64_t lowbit_context(const lowbit_model *m) { return m->context; }
int64_t lowbit_position(const lowbit_model *m) { return m->pos; }
void lowbit_reset(lowbit_model *m) { m->pos = 0; }

int lowbit_eval(lowbit_model *m, const int32_t *tokens, int64_t n,
                float *logits) {
  if (n <= 0)
    return lowbit_rt_fail("lowbit_eval: no tokens");
  if (m->pos + n > m->context)
    return lowbit_rt_fail("lowbit_eval: %lld tokens at position %lld overflow "
                          "the context of %lld",
                          (long long)n, (long long)m->pos, (long long)m->context);
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= m->vocab)
      return lowbit_rt_fail("lowbit_eval: token id %d at index %lld is out of "
                            "range [0, %lld)",
                            tokens[i], (long long)i, (long long)m->vocab);
  lowbit_rt_forward(m->weights.data, m->weights.size, m->k_cache, m->v_cache,
                    m->vocab, tokens, n, m->pos, 0, logits, NULL);
  m->pos += n;
  return 0;
}

void lowbit_close(lowbit_model *m) {
  if (!m)
    return;
  if (m->in_pool)
    lowbit_rt_threads_stop();
  lowbit_rt_weights_close(&m->weights);
  lowbit_rt_caches_free(m->k_cache, m->v_cache);
  free(m);
}
