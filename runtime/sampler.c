/*===- sampler.c - greedy, temperature, top-k, top-p sampling -------------===*/
#include "lowbit_rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* Orders c[0, n) by by_prob_desc. Past a few thousand candidates an LSD
 * radix sort of the keys (~p bits, id) as one uint64 (p >= 0 orders as its
 * bits), 8 bits a pass, skipping the passes where every key has the same
 * digit: a nucleus of ~100K tokens (a flat distribution) took ~25 ms with
 * qsort. `tmp` holds n more. */
static void sort_cands(cand *c, int64_t n, cand *tmp) {
  if (n < 4096) {
    qsort(c, (size_t)n, sizeof(cand), by_prob_desc);
    return;
  }
  _Static_assert(sizeof(cand) == sizeof(uint64_t), "a candidate is a key");
  uint64_t *a = (uint64_t *)(void *)c, *b = (uint64_t *)(void *)tmp;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    memcpy(&bits, &c[i].p, 4);
    a[i] = (uint64_t)(0xFFFFFFFFu - bits) << 32 | (uint32_t)c[i].id;
  }
  for (int shift = 0; shift < 64; shift += 8) {
    int64_t count[257] = {0};
    for (int64_t i = 0; i < n; ++i)
      ++count[((a[i] >> shift) & 255) + 1];
    if (count[((a[0] >> shift) & 255) + 1] == n)
      continue;
    for (int d = 0; d < 256; ++d)
      count[d + 1] += count[d];
    for (int64_t i = 0; i < n; ++i)
      b[count[(a[i] >> shift) & 255]++] = a[i];
    uint64_t *t = a;
    a = b;
    b = t;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits = 0xFFFFFFFFu - (uint32_t)(a[i] >> 32);
    cand x = {0.0f, (int32_t)(uint32_t)a[i]};
    memcpy(&x.p, &bits, 4);
    c[i] = x;
  }
}

static int top_p_cuts(const lowbit_sampler *s) {
  return s->top_p > 0.0f && s->top_p < 1.0f;
}

/* How many of the ordered candidates c[0, n) min_p and top_p keep, or -1
 * when neither cuts inside them (sum: every token's p, top_p's divisor). */
static int64_t nucleus(const lowbit_sampler *s, const cand *c, int64_t n,
                       double sum) {
  double kept = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0 && s->min_p > 0.0f && c[i].p < s->min_p * c[0].p)
      return i;
    kept += c[i].p / sum;
    if (top_p_cuts(s) && kept >= s->top_p)
      return i + 1;
  }
  return -1;
}

/* The first index of the largest of x[0, n): per block of 64, the block's
 * max in 8 lanes (maxps), and the block scanned only when it beats the best
 * so far. The scalar loop's dependent compares took ~3 % of a small model's
 * decode time at 128K logits. */
static int32_t argmax(const float *x, int64_t n) {
  int64_t best = 0, i = 0;
  float bv = x[0];
  for (; i + 64 <= n; i += 64) {
    float m[8];
    for (int k = 0; k < 8; ++k)
      m[k] = x[i + k];
    for (int j = 8; j < 64; j += 8)
      for (int k = 0; k < 8; ++k)
        m[k] = x[i + j + k] > m[k] ? x[i + j + k] : m[k];
    float bm = m[0];
    for (int k = 1; k < 8; ++k)
      bm = m[k] > bm ? m[k] : bm;
    if (bm > bv)
      for (int j = 0; j < 64; ++j)
        if (x[i + j] > bv)
          bv = x[i + j], best = i + j;
  }
  for (; i < n; ++i)
    if (x[i] > bv)
      bv = x[i], best = i;
  return (int32_t)best;
}

/* e^x for x <= 0 as 2^n e^r (Cody-Waite reduction, degree-7 polynomial),
 * within 1 ulp of expf over [-100, 0], 0 below e^-104; branch-free, so the
 * loop over the vocabulary vectorizes (128K logits: 0.48 ms with expf). */
static inline float exp_nonpos(float x) {
  x = x < -104.0f ? -104.0f : x;
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* rint */
  float r = x - n * 0.693145751953125f;  /* ln 2, high bits */
  r = r - n * 1.428606765330187045e-06f; /* ln 2, the rest */
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.0f;
  int32_t e = (int32_t)n, bits = (e + 127) * (1 << 23);
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return e < -126 ? 0.0f : q * scale;
}

/* prob[i] = e^((logits[i] - top) / t): SSE2 lanes, or AVX2's where the CPU
 * has it (an ifunc picks the clone; no FMA in either, so both round alike). */
#if defined(__x86_64__) && defined(__clang__) && defined(__ELF__)
__attribute__((target_clones("avx2", "default")))
#endif
static void
exp_row(float *prob, const float *logits, int64_t n, float top, float t) {
  for (int64_t i = 0; i < n; ++i)
    prob[i] = exp_nonpos((logits[i] - top) / t);
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
  int32_t best = argmax(logits, vocab);
  if (s->temperature <= 0.0f)
    return best;
  /* Only tokens with p >= min_p x p_max (p_max = 1) can be kept, and at
   * most top_k of them: collect those (and the sum of every p, which top_p
   * divides by), then order just the top_k of them (or, with top_p alone,
   * the prefix top_p needs), instead of sorting the whole vocabulary (a 128K
   * vocabulary took ~27 ms per token). The picks are those of a full sort:
   * the order (p desc, id asc) is total. */
  if (s->scratch_cap < vocab) {
    cand *grown = realloc(s->scratch, 2 * sizeof(cand) * (size_t)vocab);
    if (!grown)
      return best;
    s->scratch = grown;
    s->scratch_cap = vocab;
  }
  cand *c = s->scratch, *tmp = c + vocab;
  float floor_p = s->min_p > 0.0f ? fminf(s->min_p, 1.0f) : 0.0f;
  /* p = e^((l - max) / T) into tmp's memory (the sort below reuses it), the
   * sum in 8 float64 partial sums (vectorized; the scalar chain of dependent
   * adds took longer than the exponentials). */
  float *prob = (float *)tmp;
  exp_row(prob, logits, vocab, logits[best], s->temperature);
  double part[8] = {0}, sum = 0.0;
  int64_t i = 0;
  for (; i + 8 <= vocab; i += 8)
    for (int k = 0; k < 8; ++k)
      part[k] += prob[i + k];
  for (; i < vocab; ++i)
    sum += prob[i];
  for (int k = 0; k < 8; ++k)
    sum += part[k];
  int64_t nc = 0;
  for (i = 0; i < vocab; ++i)
    if (prob[i] >= floor_p)
      c[nc++] = (cand){prob[i], (int32_t)i};
  int64_t n = nc;
  int prefix = 0; /* c[0, n) is the top-p prefix, not every candidate */
  if (s->top_k > 0 && s->top_k < n) {
    n = s->top_k;
    select_first(c, nc, n);
  } else if (top_p_cuts(s) && n > 1024) {
    /* Top-p alone: the nucleus is a prefix of the order, so only the tokens
     * with p >= t need sorting once their mass reaches top_p (t falls by 16x
     * until it does). A tie at t keeps all its tokens on the same side. */
    for (float t = 1.0f / 1024; t > 1e-30f; t /= 16) {
      int64_t m = 0;
      double mass = 0.0;
      for (int64_t i = 0; i < nc; ++i)
        if (c[i].p >= t) {
          mass += c[i].p;
          cand x = c[m];
          c[m++] = c[i];
          c[i] = x;
        }
      if (mass >= (double)s->top_p * sum * (1.0 + 1e-9)) {
        n = m;
        prefix = m < nc;
        break;
      }
    }
  }
  sort_cands(c, n, tmp);
  int64_t cut = nucleus(s, c, n, sum);
  if (cut < 0 && prefix) {
    /* The prefix's rounding fell short of top_p: order everything. */
    n = nc;
    sort_cands(c, n, tmp);
    cut = nucleus(s, c, n, sum);
  }
  if (cut < 0)
    cut = n;
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
