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

/* Moves the k first elements of c[0, n) in by_prob_desc order to c[0, k),
 * in any order (quickselect, middle pivot). */
static void select_first(cand *c, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    cand pivot = c[lo + (hi - lo) / 2];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (by_prob_desc(&c[i], &pivot) < 0)
        ++i;
      while (by_prob_desc(&c[j], &pivot) > 0)
        --j;
      if (i <= j) {
        cand t = c[i];
        c[i++] = c[j];
        c[j--] = t;
      }
    }
    if (k - 1 <= j)
      hi = j;
    else if (k - 1 >= i)
      lo = i;
    else
      return;
  }
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
  /* Only tokens with p >= min_p x p_max (p_max = 1) can be kept, and at
   * most top_k of them: collect those (and the sum of every p, which top_p
   * divides by), then order just the top_k of them, instead of sorting the
   * whole vocabulary (a 128K vocabulary took ~27 ms per token). The picks
   * are those of a full sort: the order (p desc, id asc) is total. */
  if (s->scratch_cap < vocab) {
    cand *grown = realloc(s->scratch, sizeof(cand) * (size_t)vocab);
    if (!grown)
      return best;
    s->scratch = grown;
    s->scratch_cap = vocab;
  }
  cand *c = s->scratch;
  float floor_p = s->min_p > 0.0f ? fminf(s->min_p, 1.0f) : 0.0f;
  double sum = 0.0;
  int64_t nc = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    float p = expf((logits[i] - logits[best]) / s->temperature);
    sum += p;
    if (p >= floor_p)
      c[nc++] = (cand){p, (int32_t)i};
  }
  int64_t n = nc;
  if (s->top_k > 0 && s->top_k < n) {
    n = s->top_k;
    select_first(c, nc, n);
  }
  qsort(c, (size_t)n, sizeof(cand), by_prob_desc);
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
  return pick;
}

void lowbit_rt_sampler_free(lowbit_sampler *s) {
  free(s->scratch);
  s->scratch = NULL;
  s->scratch_cap = 0;
}
