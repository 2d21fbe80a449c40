/*===- sampler.c - greedy, temperature, top-k, top-p sampling -------------===*/
#include "lowbit_rt.h"

#include <math.h>
#include <stdlib.h>

static uint64_t next_u64(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct {
  float p;
  int32_t id;
} cand;

static int by_prob_desc(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->p != y->p)
    return x->p < y->p ? 1 : -1;
  return x->id - y->id;
}

int32_t lowbit_rt_sample(lowbit_sampler *s, float *logits, int64_t vocab,
                         const int32_t *history, int64_t n_history) {
  if (s->repeat_penalty > 0.0f && s->repeat_penalty != 1.0f) {
    int64_t from = n_history - s->repeat_last_n;
    for (int64_t i = from > 0 ? from : 0; i < n_history; ++i) {
      int32_t id = history[i];
      if (id < 0 || id >= vocab)
        continue;
      /* each token once: skip if it appears later in the window */
      int seen = 0;
      for (int64_t j = i + 1; j < n_history && !seen; ++j)
        seen = history[j] == id;
      if (!seen)
        logits[id] = logits[id] > 0.0f ? logits[id] / s->repeat_penalty
                                       : logits[id] * s->repeat_penalty;
    }
  }
  int32_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best])
      best = (int32_t)i;
  if (s->temperature <= 0.0f)
    return best;
  cand *c = malloc(sizeof(cand) * (size_t)vocab);
  if (!c)
    return best;
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    c[i].id = (int32_t)i;
    c[i].p = expf((logits[i] - logits[best]) / s->temperature);
    sum += c[i].p;
  }
  qsort(c, (size_t)vocab, sizeof(cand), by_prob_desc);
  int64_t n = vocab;
  if (s->top_k > 0 && s->top_k < n)
    n = s->top_k;
  double kept = 0.0;
  int64_t cut = n;
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0 && s->min_p > 0.0f && c[i].p < s->min_p * c[0].p) {
      cut = i;
      break;
    }
    kept += c[i].p / sum;
    if (s->top_p > 0.0f && s->top_p < 1.0f && kept >= s->top_p) {
      cut = i + 1;
      break;
    }
  }
  double total = 0.0;
  for (int64_t i = 0; i < cut; ++i)
    total += c[i].p;
  double r = (double)(next_u64(&s->rng) >> 11) / 9007199254740992.0 * total;
  int32_t pick = c[cut - 1].id;
  for (int64_t i = 0; i < cut; ++i) {
    r -= c[i].p;
    if (r <= 0.0) {
      pick = c[i].id;
      break;
    }
  }
  free(c);
  return pick;
}
