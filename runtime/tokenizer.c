/*===- tokenizer.c - byte-level BPE with the Llama-3 pre-tokenizer --------===*
 *
 * Reads the table lowbitc compiles from tokenizer.json (lowbit_abi.h) and
 * encodes text the way Hugging Face tokenizers do: added tokens are split
 * out first; the rest is cut by the Llama-3 regex
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (implemented by hand over code points), and each piece is byte-level BPE
 * encoded by merge rank (a piece that is a vocab token is one token when
 * ignore_merges is set).
 *
 *===----------------------------------------------------------------------===*/
#include "lowbit_tok.h"
#include "unicode_tables.h"

#include <stdlib.h>
#include <string.h>

/* ---- hash maps (open addressing, power-of-two sizes) ---------------- */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  return mix64(lowbit_checksum(p, n));
}

static size_t pow2_above(size_t n) {
  size_t s = 16;
  while (s < 2 * n)
    s <<= 1;
  return s;
}

static const uint8_t *tok_bytes(const lowbit_tokenizer *t, uint32_t id, size_t *len) {
  *len = t->offsets[id + 1] - t->offsets[id];
  return t->bytes + t->offsets[id];
}

/* Token id of raw bytes, or -1. */
static int32_t lookup_bytes(const lowbit_tokenizer *t, const uint8_t *p, size_t n) {
  size_t mask = t->vocab_slots - 1;
  for (size_t i = hash_bytes(p, n) & mask;; i = (i + 1) & mask) {
    int32_t id = t->vocab_map[i];
    if (id < 0)
      return -1;
    size_t len;
    const uint8_t *b = tok_bytes(t, (uint32_t)id, &len);
    if (len == n && memcmp(b, p, n) == 0)
      return id;
  }
}

/* Merge rank and result of (left, right), or rank -1. */
static int32_t lookup_merge(const lowbit_tokenizer *t, uint32_t l, uint32_t r,
                            uint32_t *merged) {
  uint64_t key = ((uint64_t)l << 32) | r;
  size_t mask = t->merge_slots - 1;
  for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
    int32_t rank = t->merge_map[i];
    if (rank < 0)
      return -1;
    const uint32_t *m = t->merges + 3 * (size_t)rank;
    if (m[0] == l && m[1] == r) {
      *merged = m[2];
      return rank;
    }
  }
}

lowbit_status lowbit_tok_load(lowbit_tokenizer *t, const uint8_t *data, size_t size) {
  memset(t, 0, sizeof *t);
  lowbit_tokenizer_header h;
  if (size < sizeof h)
    return lowbit_rt_fail("embedded tokenizer is truncated");
  memcpy(&h, data, sizeof h);
  if (memcmp(h.magic, LOWBIT_TOKENIZER_MAGIC, 8) != 0)
    return lowbit_rt_fail("embedded tokenizer has a bad magic");
  size_t need = sizeof h + 4 * ((size_t)h.n_tokens + 1 + 3 * (size_t)h.n_merges +
                                h.n_added);
  if (size < need)
    return lowbit_rt_fail("embedded tokenizer is truncated");
  t->n_tokens = h.n_tokens;
  t->n_merges = h.n_merges;
  t->n_added = h.n_added;
  t->ignore_merges = (h.flags & LOWBIT_TOKENIZER_IGNORE_MERGES) != 0;
  t->offsets = (const uint32_t *)(data + sizeof h);
  t->merges = t->offsets + h.n_tokens + 1;
  t->added = t->merges + 3 * (size_t)h.n_merges;
  t->bytes = data + need;
  if (t->offsets[h.n_tokens] > size - need)
    return lowbit_rt_fail("embedded tokenizer is truncated");
  for (uint32_t i = 0; i < h.n_tokens; ++i)
    if (t->offsets[i] > t->offsets[i + 1])
      return lowbit_rt_fail("embedded tokenizer has bad offsets");
  for (size_t i = 0; i < 3 * (size_t)h.n_merges; ++i)
    if (t->merges[i] >= h.n_tokens)
      return lowbit_rt_fail("embedded tokenizer has a bad merge");
  for (uint32_t i = 0; i < h.n_added; ++i)
    if (t->added[i] >= h.n_tokens)
      return lowbit_rt_fail("embedded tokenizer has a bad added token");

  t->vocab_slots = pow2_above(h.n_tokens);
  t->vocab_map = malloc(sizeof(int32_t) * t->vocab_slots);
  t->merge_slots = pow2_above(h.n_merges);
  t->merge_map = malloc(sizeof(int32_t) * t->merge_slots);
  if (!t->vocab_map || !t->merge_map)
    return lowbit_rt_fail("out of memory loading the tokenizer");
  memset(t->vocab_map, 0xff, sizeof(int32_t) * t->vocab_slots);
  memset(t->merge_map, 0xff, sizeof(int32_t) * t->merge_slots);
  size_t vmask = t->vocab_slots - 1, mmask = t->merge_slots - 1;
  for (uint32_t id = 0; id < h.n_tokens; ++id) {
    size_t len;
    const uint8_t *b = tok_bytes(t, id, &len);
    if (len == 0 || lookup_bytes(t, b, len) >= 0)
      continue; /* unused id, or an added token spelled like a vocab token */
    size_t i = hash_bytes(b, len) & vmask;
    while (t->vocab_map[i] >= 0)
      i = (i + 1) & vmask;
    t->vocab_map[i] = (int32_t)id;
  }
  for (uint32_t r = 0; r < h.n_merges; ++r) {
    uint32_t dummy;
    const uint32_t *m = t->merges + 3 * (size_t)r;
    if (lookup_merge(t, m[0], m[1], &dummy) >= 0)
      continue; /* the first (lowest) rank wins */
    size_t i = mix64(((uint64_t)m[0] << 32) | m[1]) & mmask;
    while (t->merge_map[i] >= 0)
      i = (i + 1) & mmask;
    t->merge_map[i] = (int32_t)r;
  }
  for (int b = 0; b < 256; ++b) {
    uint8_t c = (uint8_t)b;
    t->byte_token[b] = lookup_bytes(t, &c, 1);
  }
  return 0;
}

void lowbit_tok_free(lowbit_tokenizer *t) {
  free(t->vocab_map);
  free(t->merge_map);
  memset(t, 0, sizeof *t);
}

const uint8_t *lowbit_tok_piece(const lowbit_tokenizer *t, int32_t id, size_t *len) {
  if (id < 0 || (uint32_t)id >= t->n_tokens) {
    *len = 0;
    return (const uint8_t *)"";
  }
  return tok_bytes(t, (uint32_t)id, len);
}

int32_t lowbit_tok_find(const lowbit_tokenizer *t, const char *text) {
  size_t n = strlen(text);
  for (uint32_t i = 0; i < t->n_added; ++i) {
    size_t len;
    const uint8_t *b = tok_bytes(t, t->added[i], &len);
    if (len == n && memcmp(b, text, n) == 0)
      return (int32_t)t->added[i];
  }
  return lookup_bytes(t, (const uint8_t *)text, n);
}

/* ---- output buffer -------------------------------------------------- */

static int push(lowbit_tok_ids *o, int32_t id) {
  if (o->n == o->cap) {
    size_t cap = o->cap ? 2 * o->cap : 64;
    int32_t *p = realloc(o->ids, cap * sizeof(int32_t));
    if (!p)
      return -1;
    o->ids = p;
    o->cap = cap;
  }
  o->ids[o->n++] = id;
  return 0;
}

/* ---- BPE of one piece ----------------------------------------------- */

/* A candidate merge: the pair starting at symbol `pos`, of merge `rank`. */
typedef struct {
  uint32_t rank, pos;
} bpe_pair;

static int pair_before(bpe_pair a, bpe_pair b) {
  return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(bpe_pair *h, size_t *n, bpe_pair v) {
  size_t i = (*n)++;
  while (i > 0 && pair_before(v, h[(i - 1) / 2])) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = v;
}

static bpe_pair heap_pop(bpe_pair *h, size_t *n) {
  bpe_pair top = h[0], last = h[--*n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n)
      break;
    if (c + 1 < *n && pair_before(h[c + 1], h[c]))
      ++c;
    if (!pair_before(h[c], last))
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = last;
  return top;
}

/* Pushes the pair that starts at symbol `i` (none when i < 0) if it has a
 * merge. */
static void push_candidate(const lowbit_tokenizer *t, const int32_t *sym,
                           const int64_t *next, bpe_pair *heap, size_t *nheap,
                           int64_t i) {
  int64_t j = i >= 0 ? next[i] : -1;
  uint32_t merged;
  int32_t rank;
  if (j >= 0 && sym[i] >= 0 && sym[j] >= 0 &&
      (rank = lookup_merge(t, (uint32_t)sym[i], (uint32_t)sym[j], &merged)) >=
          0)
    heap_push(heap, nheap, (bpe_pair){(uint32_t)rank, (uint32_t)i});
}

/* Byte-level BPE of one pre-token: repeatedly merges the adjacent pair of
 * lowest merge rank, the leftmost of equals (as Hugging Face tokenizers
 * do), in O(n log n): the candidate pairs sit in a heap ordered by (rank,
 * position) and are checked again when they come out, since a merge next to
 * them may have changed them. Bytes absent from the vocab (-1) block merges
 * and are dropped. */
static int bpe(const lowbit_tokenizer *t, const uint8_t *p, size_t n,
               lowbit_tok_ids *out) {
  if (t->ignore_merges) {
    int32_t whole = lookup_bytes(t, p, n);
    if (whole >= 0)
      return push(out, whole);
  }
  if (n == 0)
    return 0;
  if (n > UINT32_MAX / 3)
    return -1; /* positions are 32-bit */
  /* Symbols as a linked list over byte positions; a merged-away symbol is
   * unlinked and marked -2. At most n - 1 pairs at first and 2 per merge. */
  int32_t *sym = malloc(n * sizeof(int32_t));
  int64_t *next = malloc(n * sizeof(int64_t)),
          *prev = malloc(n * sizeof(int64_t));
  bpe_pair *heap = malloc(3 * n * sizeof(bpe_pair));
  if (!sym || !next || !prev || !heap) {
    free(sym);
    free(next);
    free(prev);
    free(heap);
    return -1;
  }
  size_t nheap = 0;
  for (size_t i = 0; i < n; ++i) {
    sym[i] = t->byte_token[p[i]];
    prev[i] = (int64_t)i - 1;
    next[i] = i + 1 < n ? (int64_t)i + 1 : -1;
  }
  for (size_t i = 0; i + 1 < n; ++i)
    push_candidate(t, sym, next, heap, &nheap, (int64_t)i);
  while (nheap > 0) {
    bpe_pair top = heap_pop(heap, &nheap);
    int64_t i = top.pos, j = next[i];
    uint32_t merged;
    if (sym[i] < 0 || j < 0 || sym[j] < 0 ||
        lookup_merge(t, (uint32_t)sym[i], (uint32_t)sym[j], &merged) !=
            (int32_t)top.rank)
      continue; /* stale: a merge beside it changed the pair */
    sym[i] = (int32_t)merged;
    sym[j] = -2;
    next[i] = next[j];
    if (next[j] >= 0)
      prev[next[j]] = i;
    push_candidate(t, sym, next, heap, &nheap, prev[i]);
    push_candidate(t, sym, next, heap, &nheap, i);
  }
  int rc = 0;
  for (int64_t i = 0; i >= 0 && rc == 0; i = next[i])
    rc = sym[i] >= 0 ? push(out, sym[i]) : 0; /* bytes absent from the vocab */
  free(sym);
  free(next);
  free(prev);
  free(heap);
  return rc;
}

/* ---- the Llama-3 split ---------------------------------------------- */

static int in_ranges(const lowbit_cp_range *r, size_t n, uint32_t c) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c < r[mid].lo)
      hi = mid;
    else if (c > r[mid].hi)
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
static int is_letter(uint32_t c) { return in_ranges(lowbit_letters, COUNT(lowbit_letters), c); }
static int is_number(uint32_t c) { return in_ranges(lowbit_numbers, COUNT(lowbit_numbers), c); }
static int is_space(uint32_t c) { return in_ranges(lowbit_spaces, COUNT(lowbit_spaces), c); }
static int is_newline(uint32_t c) { return c == '\r' || c == '\n'; }

/* Decodes UTF-8 into code points with their byte offsets; an invalid byte
 * stands for itself (U+FFFD's category: not a letter, number or space). */
static size_t decode_utf8(const uint8_t *s, size_t n, uint32_t *cps, size_t *offs) {
  size_t m = 0, i = 0;
  while (i < n) {
    uint32_t c = s[i];
    size_t len = 1;
    if (c >= 0xC0 && c < 0xE0 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
      c = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
      len = 2;
    } else if (c >= 0xE0 && c < 0xF0 && i + 2 < n && (s[i + 1] & 0xC0) == 0x80 &&
               (s[i + 2] & 0xC0) == 0x80) {
      c = ((c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      len = 3;
    } else if (c >= 0xF0 && c < 0xF8 && i + 3 < n && (s[i + 1] & 0xC0) == 0x80 &&
               (s[i + 2] & 0xC0) == 0x80 && (s[i + 3] & 0xC0) == 0x80) {
      c = ((c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
          ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      len = 4;
    } else if (c >= 0x80) {
      c = 0xFFFD;
    }
    cps[m] = c;
    offs[m++] = i;
    i += len;
  }
  offs[m] = n;
  return m;
}

/* Length in code points of the pre-token starting at cps[i] (n total). */
static size_t split_at(const uint32_t *cps, size_t i, size_t n) {
  uint32_t c = cps[i];
  /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
  if (c == '\'' && i + 1 < n) {
    uint32_t a = cps[i + 1] | 0x20, b = i + 2 < n ? (cps[i + 2] | 0x20) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd' || cps[i + 1] == 0x17F)
      return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
      return 3;
  }
  /* [^\r\n\p{L}\p{N}]?\p{L}+ */
  {
    size_t j = i;
    if (!is_newline(c) && !is_letter(c) && !is_number(c))
      ++j;
    if (j < n && is_letter(cps[j])) {
      while (j < n && is_letter(cps[j]))
        ++j;
      return j - i;
    }
  }
  /* \p{N}{1,3} */
  if (is_number(c)) {
    size_t j = i;
    while (j < n && j - i < 3 && is_number(cps[j]))
      ++j;
    return j - i;
  }
  /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
  {
    size_t j = i;
    if (c == ' ')
      ++j;
    size_t k = j;
    while (k < n && !is_space(cps[k]) && !is_letter(cps[k]) && !is_number(cps[k]))
      ++k;
    if (k > j) {
      while (k < n && is_newline(cps[k]))
        ++k;
      return k - i;
    }
  }
  /* \s*[\r\n]+ | \s+(?!\S) | \s+ */
  if (is_space(c)) {
    size_t end = i;
    while (end < n && is_space(cps[end]))
      ++end;
    size_t last_nl = (size_t)-1;
    for (size_t k = i; k < end; ++k)
      if (is_newline(cps[k]))
        last_nl = k;
    if (last_nl != (size_t)-1)
      return last_nl + 1 - i;
    if (end == n || end - i == 1)
      return end - i; /* to the end, or a single space before \S */
    return end - i - 1; /* leave the last space to the next word */
  }
  return 1;
}

static int encode_text(const lowbit_tokenizer *t, const uint8_t *s, size_t n,
                       lowbit_tok_ids *out) {
  uint32_t *cps = malloc((n + 1) * sizeof(uint32_t));
  size_t *offs = malloc((n + 1) * sizeof(size_t));
  if (!cps || !offs) {
    free(cps);
    free(offs);
    return -1;
  }
  size_t m = decode_utf8(s, n, cps, offs);
  int rc = 0;
  for (size_t i = 0; i < m && rc == 0;) {
    size_t len = split_at(cps, i, m);
    rc = bpe(t, s + offs[i], offs[i + len] - offs[i], out);
    i += len;
  }
  free(cps);
  free(offs);
  return rc;
}

lowbit_status lowbit_tok_encode(const lowbit_tokenizer *t, const char *text,
                                size_t n, lowbit_tok_ids *out) {
  const uint8_t *s = (const uint8_t *)text;
  size_t start = 0;
  for (size_t i = 0; i < n;) {
    /* The longest added token at i, if any. */
    int32_t hit = -1;
    size_t hit_len = 0;
    for (uint32_t a = 0; a < t->n_added; ++a) {
      size_t len;
      const uint8_t *b = tok_bytes(t, t->added[a], &len);
      if (len > hit_len && len <= n - i && memcmp(s + i, b, len) == 0) {
        hit = (int32_t)t->added[a];
        hit_len = len;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    if (encode_text(t, s + start, i - start, out) || push(out, hit))
      return lowbit_rt_fail("out of memory while tokenizing");
    i += hit_len;
    start = i;
  }
  if (encode_text(t, s + start, n - start, out))
    return lowbit_rt_fail("out of memory while tokenizing");
  return 0;
}
