/*===- main.c - the command line of a compiled lowbit model ---------------===*
 *
 *   ./model --tokens 128000,791,4062 [-n N] [--logits-out F] [-t THREADS]
 *           [--temp T] [--top-k K] [--top-p P] [--seed S] [--weights FILE]
 *           [--no-mmap]   (copy the weights into memory instead of mapping)
 *   ./model --bench [--tokens ...|-P PROMPT_LEN] [-n N] [-t THREADS]
 *           (one JSON line: prefill and decode tokens/s, the bytes a decoded
 *           token reads, and stream_gb_s, the threads' rate of reading as
 *           many bytes of the weights, timed between the decoded tokens)
 *   ./model --stats --tokens-file F   (zero fraction at each projection input,
 *                                       as JSON for lowbitc --calibration-stats)
 *
 * Every user error is one line on stderr and exit status 1.
 *
 *===----------------------------------------------------------------------===*/
#define _POSIX_C_SOURCE 200809L
#include "lowbit_rt.h"
#include "lowbit_tok.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog = "model";

/* Defined by the compiler's tokenizer object when a tokenizer is embedded. */
extern const uint8_t lowbit_tokenizer_start[] __attribute__((weak));
extern const uint8_t lowbit_tokenizer_end[] __attribute__((weak));

static lowbit_status load_tokenizer(lowbit_tokenizer *t) {
  if (!lowbit_tokenizer_start)
    return lowbit_rt_fail("no tokenizer is embedded in this model (compile "
                          "it with a tokenizer.json); use --tokens");
  return lowbit_tok_load(t, lowbit_tokenizer_start,
                         (size_t)(lowbit_tokenizer_end - lowbit_tokenizer_start));
}

/* Writes token bytes to stdout, holding back an incomplete UTF-8 sequence
 * until the token that completes it arrives. */
typedef struct {
  uint8_t pending[8];
  size_t n;
} utf8_stream;

static size_t utf8_len(uint8_t lead) {
  return lead < 0x80 ? 1 : lead >> 5 == 6 ? 2 : lead >> 4 == 14 ? 3 : lead >> 3 == 30 ? 4 : 0;
}

static void stream_bytes(utf8_stream *u, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    u->pending[u->n++] = p[i];
    size_t need = utf8_len(u->pending[0]);
    if (need == 0 || (u->n > 1 && (u->pending[u->n - 1] & 0xC0) != 0x80)) {
      /* invalid: replace what is pending */
      fputs("\xEF\xBF\xBD", stdout);
      u->n = 0;
      if (need != 0 && (p[i] & 0xC0) != 0x80) {
        u->pending[u->n++] = p[i];
        need = utf8_len(p[i]);
      } else {
        continue;
      }
    }
    if (u->n == need) {
      fwrite(u->pending, 1, u->n, stdout);
      u->n = 0;
    }
  }
  fflush(stdout);
}

static void stream_end(utf8_stream *u) {
  if (u->n)
    fputs("\xEF\xBF\xBD", stdout);
  u->n = 0;
  fflush(stdout);
}

static void print_ids(const lowbit_tok_ids *ids) {
  for (size_t i = 0; i < ids->n; ++i)
    printf(i ? ",%d" : "%d", ids->ids[i]);
  printf("\n");
}

static int die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static int parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end)
    return -1;
  *out = v;
  return 0;
}

static int parse_f32(const char *s, float *out) {
  char *end;
  errno = 0;
  float v = strtof(s, &end);
  if (errno || end == s || *end || !isfinite(v)) /* strtof takes "nan", "inf" */
    return -1;
  *out = v;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --bench's read-bandwidth reference: the pool's threads read `bytes` bytes
 * of the model's weight copy (from the start, wrapping), in 64 KiB tasks
 * split between the threads as a matmul's tiles are. Interleaved with the
 * decoded tokens, it times streaming as many bytes as a token reads, from
 * the same memory and threads, within milliseconds of the token: the
 * bandwidth of these VMs moves 2x within minutes, and with the footprint.
 * Each line is prefetched non-temporally 4 KiB ahead, as the kernels read
 * their weights, so the reference reads at least as fast as they can. */
enum { kStreamBlock = 64 << 10, kStreamAhead = 4096 };
typedef struct {
  const uint8_t *base;
  uint64_t size, bytes; /* size: a multiple of 64 */
  _Atomic uint64_t sum;
} stream_job;

static void stream_task(void *arg, int64_t begin, int64_t end) {
  stream_job *j = arg;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  uint64_t at = (uint64_t)begin * kStreamBlock;
  uint64_t stop = (uint64_t)end * kStreamBlock;
  if (stop > j->bytes)
    stop = j->bytes;
  while (at < stop) {
    /* up to the end of the range or the wrap point, 64 bytes at a time */
    uint64_t from = at % j->size;
    uint64_t len = stop - at < j->size - from ? stop - at : j->size - from;
    const uint64_t *p = (const uint64_t *)(j->base + from);
    for (uint64_t i = 0; i + 8 <= len / 8; i += 8) {
      __builtin_prefetch(p + i + kStreamAhead / 8, 0, 0);
      s0 += p[i] + p[i + 4];
      s1 += p[i + 1] + p[i + 5];
      s2 += p[i + 2] + p[i + 6];
      s3 += p[i + 3] + p[i + 7];
    }
    at += len;
  }
  j->sum += s0 + s1 + s2 + s3;
}

/* Seconds to read `bytes` bytes of `w` with the thread pool. */
static double stream_s(const lowbit_weights *w, uint64_t bytes) {
  stream_job j = {w->data, w->size / 64 * 64, bytes, 0};
  if (j.size == 0 || bytes == 0)
    return 0;
  double t = now_s();
  lowbit_rt_parallel_for(stream_task, &j,
                         (int64_t)((bytes + kStreamBlock - 1) / kStreamBlock));
  return now_s() - t;
}

typedef struct {
  int64_t vocab, context;
  uint8_t *k_cache, *v_cache;
  float *logits;
  lowbit_weights weights;
  int64_t *stats; /* NULL unless --stats */
} model_t;

/* Runs tokens[0..n) at positions start..; the logits of positions
 * logits_from.. land in m->logits (rows of n). */
static void forward_from(model_t *m, const int32_t *tokens, int64_t n,
                         int64_t start, int64_t logits_from) {
  lowbit_rt_forward(m->weights.data, m->weights.size, m->k_cache, m->v_cache,
                    m->vocab, tokens, n, start, logits_from, m->logits, m->stats);
}

/* Logits of every position. */
static void forward(model_t *m, const int32_t *tokens, int64_t n, int64_t start) {
  forward_from(m, tokens, n, start, 0);
}

/* Logits of the last position only (generation). */
static void forward_last(model_t *m, const int32_t *tokens, int64_t n, int64_t start) {
  forward_from(m, tokens, n, start, n - 1);
}

/* Reads a whole file into a NUL-terminated buffer. */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len - 1 == 0)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (buf)
    buf[len] = 0;
  return buf;
}

/* Prints {"weight name": zero fraction at its input, ...}: the calibration
 * statistics lowbitc --calibration-stats reads. */
static void print_stats(const int64_t *stats) {
  int64_t slots = lowbit_model_meta[LOWBIT_META_STAT_SLOTS];
  const char *names = lowbit_stat_names;
  int first = 1;
  printf("{");
  for (int64_t i = 0; i < slots && *names; ++i) {
    double frac = stats[2 * i + 1] ? (double)stats[2 * i] / (double)stats[2 * i + 1] : 0.0;
    while (*names && *names != '\n') {
      size_t len = strcspn(names, ",\n");
      printf("%s\n  \"%.*s\": %.6f", first ? "" : ",", (int)len, names, frac);
      first = 0;
      names += len;
      if (*names == ',')
        ++names;
    }
    if (*names == '\n')
      ++names;
  }
  printf("\n}\n");
}

/* Maps the weights, allocates the zeroed KV caches and `logits_rows` rows of
 * logits, and starts the thread pool: what every run mode needs first. */
static int model_start(model_t *m, const char *weights_path,
                       int64_t logits_rows, int threads) {
  if (lowbit_rt_weights_open(&m->weights, weights_path))
    return die("%s", lowbit_rt_error());
  if (lowbit_rt_caches_alloc(&m->k_cache, &m->v_cache))
    return die("%s", lowbit_rt_error());
  m->logits = malloc(sizeof(float) * (size_t)(logits_rows * m->vocab));
  if (!m->logits)
    return die("out of memory for %lld rows of logits", (long long)logits_rows);
  lowbit_rt_heap_setup();
  if (lowbit_rt_threads_start(threads))
    return die("cannot start %d threads", threads);
  return 0;
}

/* Perplexity of encode(text): windows of ctx tokens, each BOS (when the
 * model has one: models are trained with it at position 0) + up to ctx - 1
 * text tokens, consecutive windows moving by half of that; each window
 * scores only the predictions no earlier window made, so every text token
 * (the first too, from BOS) is predicted once. reference/bitnet_ref.py
 * perplexity() is the same. */
static int run_perplexity(model_t *m, const lowbit_tokenizer *tok, const char *path,
                          int64_t ctx, int threads, const char *weights_path) {
  char *text = read_file(path);
  if (!text)
    return die("%s: cannot read text: %s", path, strerror(errno));
  lowbit_tok_ids ids = {0};
  int64_t bos = lowbit_model_meta[LOWBIT_META_BOS];
  int has_bos = bos >= 0 && bos < m->vocab;
  if (lowbit_tok_encode(tok, text, strlen(text), &ids))
    return die("%s", lowbit_rt_error());
  free(text);
  for (size_t i = 0; i < ids.n; ++i)
    if (ids.ids[i] >= m->vocab)
      return die("%s: token %d is beyond the model's vocabulary of %lld", path,
                 ids.ids[i], (long long)m->vocab);
  if ((int64_t)ids.n < 2 - has_bos)
    return die("%s: needs at least %d token%s of text", path, 2 - has_bos,
               has_bos ? "" : "s");
  if (ctx <= 1 || ctx > m->context)
    ctx = m->context < 512 ? m->context : 512;
  if (model_start(m, weights_path, ctx, threads))
    return 1;
  int32_t *win = malloc(sizeof(int32_t) * (size_t)ctx);
  if (!win)
    return die("out of memory");
  int64_t n = (int64_t)ids.n, width = ctx - has_bos;
  int64_t stride = width / 2 > 0 ? width / 2 : 1;
  int64_t done = has_bos ? 0 : 1; /* the next text index not yet predicted */
  double nll = 0.0;
  int64_t count = 0;
  for (int64_t start = 0;; start += stride) {
    int64_t len = n - start < width ? n - start : width;
    if (has_bos)
      win[0] = (int32_t)bos;
    memcpy(win + has_bos, ids.ids + start, sizeof(int32_t) * (size_t)len);
    forward(m, win, len + has_bos, 0);
    for (int64_t r = 0; r + 1 < len + has_bos; ++r) {
      if (start + r + 1 - has_bos < done)
        continue;
      const float *row = m->logits + r * m->vocab;
      double mx = row[0], sum = 0.0;
      for (int64_t v = 1; v < m->vocab; ++v)
        mx = row[v] > mx ? row[v] : mx;
      for (int64_t v = 0; v < m->vocab; ++v)
        sum += exp((double)row[v] - mx);
      nll += mx + log(sum) - (double)row[win[r + 1]];
      ++count;
    }
    done = start + len;
    if (start + len >= n)
      break;
  }
  printf("perplexity: %.6f over %lld tokens\n", exp(nll / (double)count),
         (long long)count);
  lowbit_rt_threads_stop();
  free(win);
  free(ids.ids);
  return 0;
}

/* Appends the ids of `text` (added tokens such as <|eot_id|> included). */
static int encode_into(const lowbit_tokenizer *tok, const char *text,
                       lowbit_tok_ids *ids) {
  return lowbit_tok_encode(tok, text, strlen(text), ids);
}

/* Interactive chat with the BitNet 2B4T template (spec §3):
 *   BOS, then per message "Role: " + content.strip() + <|eot_id|>, then
 *   "Assistant: " to generate; replies stop at <|eot_id|> or <|end_of_text|>.
 * One KV cache across turns; a full context starts the conversation over. */
static int run_chat(model_t *m, const lowbit_tokenizer *tok, lowbit_sampler *sampler,
                    const char *system_prompt, int64_t max_reply, int threads,
                    const char *weights_path) {
  int32_t eot = lowbit_tok_find(tok, "<|eot_id|>");
  int64_t eos = lowbit_model_meta[LOWBIT_META_EOS];
  int64_t bos = lowbit_model_meta[LOWBIT_META_BOS];
  if (eot < 0)
    return die("--chat: the tokenizer has no <|eot_id|> token");
  if (model_start(m, weights_path, m->context, threads))
    return 1;
  int64_t pos = 0;
  int pending_eot = 0; /* the last reply's end token, not yet fed */
  char line[8192];
  for (;;) {
    printf("> ");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
      break;
    /* content.strip() */
    char *msg = line;
    while (*msg == ' ' || *msg == '\t')
      ++msg;
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r' ||
                   msg[len - 1] == ' ' || msg[len - 1] == '\t'))
      msg[--len] = 0;
    if (!len)
      continue;
    if (!strcmp(msg, "/exit"))
      break;
    lowbit_tok_ids ids = {0};
    if (pos == 0) {
      if (bos >= 0) {
        ids.ids = malloc(sizeof(int32_t) * 64);
        ids.cap = 64;
        ids.ids[ids.n++] = (int32_t)bos;
      }
      if (system_prompt) {
        size_t sl = strlen(system_prompt) + 32;
        char *sys = malloc(sl);
        snprintf(sys, sl, "System: %s<|eot_id|>", system_prompt);
        if (encode_into(tok, sys, &ids))
          return die("%s", lowbit_rt_error());
        free(sys);
      }
    } else if (pending_eot) {
      char eot_text[] = "<|eot_id|>";
      if (encode_into(tok, eot_text, &ids))
        return die("%s", lowbit_rt_error());
    }
    size_t ul = len + 64;
    char *turn = malloc(ul);
    snprintf(turn, ul, "User: %s<|eot_id|>Assistant: ", msg);
    if (encode_into(tok, turn, &ids))
      return die("%s", lowbit_rt_error());
    free(turn);
    if (pos + (int64_t)ids.n + 1 >= m->context) {
      printf("(the context is full; starting a new conversation)\n");
      free(ids.ids);
      pos = 0;
      pending_eot = 0;
      continue; /* the user types the message again */
    }
    forward_last(m, ids.ids, (int64_t)ids.n, pos);
    pos += (int64_t)ids.n;
    int32_t next = lowbit_rt_sample(sampler, m->logits + (ids.n - 1) * m->vocab,
                                    m->vocab, ids.ids, (int64_t)ids.n);
    free(ids.ids);
    int32_t reply[4096];
    int64_t n_reply = 0;
    utf8_stream out = {{0}, 0};
    pending_eot = 1;
    for (int64_t k = 0; k < max_reply; ++k) {
      if (next == eot || next == eos)
        break;
      size_t plen;
      const uint8_t *b = lowbit_tok_piece(tok, next, &plen);
      stream_bytes(&out, b, plen);
      if (pos + 2 >= m->context)
        break;
      if (n_reply < 4096)
        reply[n_reply++] = next;
      forward(m, &next, 1, pos++);
      next = lowbit_rt_sample(sampler, m->logits, m->vocab, reply, n_reply);
    }
    stream_end(&out);
    printf("\n");
    fflush(stdout);
  }
  lowbit_rt_threads_stop();
  return 0;
}

/* At most 32 bytes of `s` for an error message, each control character (a
 * token file's line ends) as a space, so the message stays one line. */
static const char *quote32(char buf[33], const char *s) {
  size_t i = 0;
  for (; i < 32 && s[i]; ++i)
    buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
  buf[i] = 0;
  return buf;
}

/* Parses comma-separated token ids; `what` names the option (and file) in
 * errors, which quote at most 32 bytes of the text. */
static int parse_tokens(const char *what, const char *s, int32_t **out,
                        int64_t *n, int64_t vocab) {
  int64_t cap = 16, len = 0;
  int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
  const char *p = s;
  char quoted[33];
  while (*p) {
    char *end;
    errno = 0;
    long long id = strtoll(p, &end, 10);
    if (end == p || errno) {
      free(v);
      return die("%s: '%s' is not a comma-separated list of token ids", what,
                 quote32(quoted, p));
    }
    if (id < 0 || id >= vocab) {
      free(v);
      return die("%s: token id %lld at position %lld is out of range [0, %lld)",
                 what, id, (long long)len, (long long)vocab);
    }
    if (len == cap)
      v = realloc(v, sizeof(int32_t) * (size_t)(cap *= 2));
    v[len++] = (int32_t)id;
    p = end;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
      ++p;
    if (*p == ',')
      ++p;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
      ++p;
    if (*p && (*p < '0' || *p > '9') && *p != '-') {
      free(v);
      if ((unsigned char)*p < 0x20 || *p == 0x7f)
        return die("%s: unexpected byte 0x%02x in '%s'", what,
                   (unsigned char)*p, quote32(quoted, s));
      return die("%s: unexpected '%c' in '%s'", what, *p, quote32(quoted, s));
    }
  }
  if (len == 0) {
    free(v);
    return die("%s: no token ids given", what);
  }
  *out = v;
  *n = len;
  return 0;
}

int main(int argc, char **argv) {
  prog = argv[0];
  const char *tokens_arg = NULL, *logits_out = NULL, *weights_path = NULL,
             *tokens_file = NULL, *prompt_text = NULL, *tokenize_text = NULL,
             *tokenize_file = NULL, *detokenize_ids = NULL,
             *detokenize_file = NULL, *ppl_file = NULL, *system_prompt = NULL;
  int whole = 0, chat = 0, bench = 0, no_mmap = 0, stats = 0;
  int64_t ppl_ctx = 0;
  int64_t n_gen = 128, threads = 0, prompt_len = 128;
  /* Options that take a string, and flags. */
  const struct { const char *name; const char **dest; } string_opts[] = {
      {"--tokens", &tokens_arg},         {"--tokens-file", &tokens_file},
      {"--logits-out", &logits_out},     {"--weights", &weights_path},
      {"-p", &prompt_text},              {"--tokenize", &tokenize_text},
      {"--tokenize-file", &tokenize_file}, {"--detokenize", &detokenize_ids},
      {"--detokenize-file", &detokenize_file}, {"--ppl", &ppl_file},
      {"--system", &system_prompt}};
  const struct { const char *name; int *dest; } flag_opts[] = {
      {"--stats", &stats}, {"--bench", &bench}, {"--no-mmap", &no_mmap},
      {"--whole", &whole}, {"--chat", &chat}};
  lowbit_sampler sampler = {.temperature = 0.0f, .top_p = 0.95f, .min_p = 0.05f,
                            .repeat_penalty = 1.0f, .top_k = 40,
                            .repeat_last_n = 64, .rng = 1};
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int64_t iv;
    float fv;
#define NEED_VALUE()                                                           \
  do {                                                                         \
    if (!v)                                                                    \
      return die("%s needs a value", a);                                       \
    ++i;                                                                       \
  } while (0)
    int matched = 0;
    for (size_t k = 0; k < sizeof string_opts / sizeof string_opts[0] && !matched; ++k)
      if (!strcmp(a, string_opts[k].name)) {
        NEED_VALUE();
        *string_opts[k].dest = v;
        matched = 1;
      }
    for (size_t k = 0; k < sizeof flag_opts / sizeof flag_opts[0] && !matched; ++k)
      if (!strcmp(a, flag_opts[k].name)) {
        *flag_opts[k].dest = 1;
        matched = 1;
      }
    if (matched)
      continue;
    if (!strcmp(a, "-n") || !strcmp(a, "-t") || !strcmp(a, "--top-k") ||
               !strcmp(a, "--seed") || !strcmp(a, "-P") || !strcmp(a, "--ctx") ||
               !strcmp(a, "--repeat-last-n")) {
      NEED_VALUE();
      if (parse_i64(v, &iv) || iv < 0)
        return die("%s: '%s' is not a non-negative integer", a, v);
      if (!strcmp(a, "-n"))
        n_gen = iv;
      else if (!strcmp(a, "-t") && iv == 0)
        return die("-t: thread count must be in [1, 256]");
      else if (!strcmp(a, "-t"))
        threads = iv;
      else if (!strcmp(a, "--top-k"))
        sampler.top_k = (int)iv;
      else if (!strcmp(a, "--seed"))
        sampler.rng = (uint64_t)iv;
      else if (!strcmp(a, "--ctx"))
        ppl_ctx = iv;
      else if (!strcmp(a, "--repeat-last-n"))
        sampler.repeat_last_n = (int)iv;
      else
        prompt_len = iv;
    } else if (!strcmp(a, "--temp") || !strcmp(a, "--top-p") ||
               !strcmp(a, "--min-p") || !strcmp(a, "--repeat-penalty")) {
      NEED_VALUE();
      if (parse_f32(v, &fv) || fv < 0.0f)
        return die("%s: '%s' is not a non-negative number", a, v);
      if (!strcmp(a, "--temp"))
        sampler.temperature = fv;
      else if (!strcmp(a, "--top-p"))
        sampler.top_p = fv;
      else if (!strcmp(a, "--min-p"))
        sampler.min_p = fv;
      else
        sampler.repeat_penalty = fv;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      printf("usage: %s --tokens ID,ID,...|--tokens-file F [-n N] [--logits-out FILE]\n"
             "          [-t THREADS (default: the CPUs it may use, at most 8)] [--stats]\n"
             "          [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S]\n"
             "          [--repeat-penalty R] [--repeat-last-n N] [--weights FILE]\n"
             "          [--no-mmap]\n"
             "       %s -p PROMPT [-n N] [--temp T] ... | --chat [--system TEXT]\n"
             "       %s --ppl TEXT_FILE [--ctx N]\n"
             "       %s --tokenize TEXT | --tokenize-file F [--whole] |\n"
             "          --detokenize IDS | --detokenize-file F\n"
             "       %s --bench [--tokens ...|-P PROMPT_LEN] [-n N] [-t THREADS]\n",
             prog, prog, prog, prog, prog);
      return 0;
    } else {
      return die("unknown option '%s' (see --help)", a);
    }
  }
  /* Default: the CPUs this process may use, at most 8 (decoding is bound by
   * memory bandwidth well before that). More threads than CPUs still work,
   * at a cost: a thread off the CPU delays every region it joined. */
  int cpus = lowbit_rt_cpus();
  if (threads == 0)
    threads = cpus < 8 ? cpus : 8;
  else if (threads > 256)
    return die("-t: thread count must be in [1, 256]");
  else if (threads > cpus)
    fprintf(stderr, "%s: warning: -t %lld is more threads than the CPUs this process "
            "may use (%d); it runs slower than -t %d\n",
            prog, (long long)threads, cpus, cpus);
  if (lowbit_model_meta[LOWBIT_META_ABI_VERSION] != LOWBIT_ABI_VERSION)
    return die("model ABI version %lld does not match the runtime's %d",
               (long long)lowbit_model_meta[LOWBIT_META_ABI_VERSION], LOWBIT_ABI_VERSION);

  model_t m = {0};
  m.vocab = lowbit_model_meta[LOWBIT_META_VOCAB];
  m.context = lowbit_model_meta[LOWBIT_META_CONTEXT];

  lowbit_tokenizer tok_;
  int have_tok = 0;
  if (tokenize_text || tokenize_file || detokenize_ids || detokenize_file ||
      prompt_text || ppl_file || chat) {
    if (load_tokenizer(&tok_))
      return die("%s", lowbit_rt_error());
    have_tok = 1;
  }
  if (tokenize_text || tokenize_file) {
    char *text = tokenize_file ? read_file(tokenize_file) : NULL;
    if (tokenize_file && !text)
      return die("%s: cannot read text: %s", tokenize_file, strerror(errno));
    const char *p = tokenize_file ? text : tokenize_text;
    int per_line = tokenize_file && !whole;
    do { /* one output line per input line with --tokenize-file */
      size_t len = per_line ? strcspn(p, "\n") : strlen(p);
      lowbit_tok_ids ids = {0};
      if (lowbit_tok_encode(&tok_, p, len, &ids))
        return die("%s", lowbit_rt_error());
      print_ids(&ids);
      free(ids.ids);
      p += len;
    } while (per_line && *p++ == '\n' && *p);
    free(text);
    return 0;
  }
  if (detokenize_ids || detokenize_file) {
    /* --detokenize-file: one line of ids in, one line of text out. */
    char *text = detokenize_file ? read_file(detokenize_file) : strdup(detokenize_ids);
    if (!text)
      return die("%s: cannot read token ids: %s", detokenize_file, strerror(errno));
    char *line = text;
    while (line && *line) {
      char *next = strchr(line, '\n');
      if (next)
        *next = 0;
      int32_t *ids = NULL;
      int64_t n = 0;
      if (*line && parse_tokens(detokenize_file ? detokenize_file : "--detokenize",
                                line, &ids, &n, (int64_t)tok_.n_tokens))
        return 1;
      utf8_stream u = {{0}, 0};
      for (int64_t i = 0; i < n; ++i) {
        size_t len;
        const uint8_t *b = lowbit_tok_piece(&tok_, ids[i], &len);
        stream_bytes(&u, b, len);
      }
      stream_end(&u);
      printf("\n");
      free(ids);
      line = next ? next + 1 : NULL;
    }
    free(text);
    return 0;
  }

  if (ppl_file)
    return run_perplexity(&m, &tok_, ppl_file, ppl_ctx, (int)threads, weights_path);
  if (chat)
    return run_chat(&m, &tok_, &sampler, system_prompt, n_gen, (int)threads,
                    weights_path);

  int32_t *prompt = NULL;
  int64_t n_prompt = 0;
  char *file_text = NULL;
  if (tokens_file) {
    if (tokens_arg)
      return die("give --tokens or --tokens-file, not both");
    file_text = read_file(tokens_file);
    if (!file_text)
      return die("%s: cannot read token ids: %s", tokens_file, strerror(errno));
    tokens_arg = file_text;
  }
  if (prompt_text) {
    if (tokens_arg)
      return die("give -p or --tokens, not both");
    lowbit_tok_ids ids = {0};
    int64_t bos = lowbit_model_meta[LOWBIT_META_BOS];
    if (bos >= 0 && bos < m.vocab)
      ids.ids = malloc(sizeof(int32_t) * 64), ids.cap = 64, ids.ids[ids.n++] = (int32_t)bos;
    if (lowbit_tok_encode(&tok_, prompt_text, strlen(prompt_text), &ids))
      return die("%s", lowbit_rt_error());
    for (size_t i = 0; i < ids.n; ++i)
      if (ids.ids[i] >= m.vocab)
        return die("-p: token %d is beyond the model's vocabulary of %lld", ids.ids[i],
                   (long long)m.vocab);
    prompt = ids.ids;
    n_prompt = (int64_t)ids.n;
  } else if (tokens_arg) {
    if (parse_tokens(tokens_file ? tokens_file : "--tokens", tokens_arg, &prompt,
                     &n_prompt, m.vocab))
      return 1;
  } else if (bench) {
    n_prompt = prompt_len ? prompt_len : 1;
    prompt = malloc(sizeof(int32_t) * (size_t)n_prompt);
    for (int64_t i = 0; i < n_prompt; ++i)
      prompt[i] = (int32_t)((i * 7919 + 13) % m.vocab);
  } else {
    return die("nothing to do: give --tokens or --bench (see --help)");
  }
  if (stats) {
    /* Zero fractions over the whole token list, a context-sized window at a
     * time. */
    int64_t window = n_prompt < m.context ? n_prompt : m.context;
    if (model_start(&m, weights_path, window, (int)threads))
      return 1;
    m.stats = calloc((size_t)(2 * lowbit_model_meta[LOWBIT_META_STAT_SLOTS] + 1),
                     sizeof(int64_t));
    if (!m.stats)
      return die("out of memory for --stats");
    for (int64_t at = 0; at < n_prompt; at += window) {
      int64_t len = n_prompt - at < window ? n_prompt - at : window;
      forward(&m, prompt + at, len, 0);
    }
    print_stats(m.stats);
    lowbit_rt_threads_stop();
    return 0;
  }
  if (n_prompt > m.context)
    return die("the prompt has %lld tokens but the context holds %lld",
               (long long)n_prompt, (long long)m.context);
  if (n_prompt + n_gen > m.context)
    n_gen = m.context - n_prompt;

  if (model_start(&m, weights_path, n_prompt, (int)threads))
    return 1;

  if ((bench || no_mmap) && lowbit_rt_weights_copy(&m.weights))
    return die("%s", lowbit_rt_error());
  double t0 = now_s();
  if (logits_out)
    forward(&m, prompt, n_prompt, 0);
  else
    forward_last(&m, prompt, n_prompt, 0);
  double t1 = now_s();
  if (logits_out) {
    FILE *f = fopen(logits_out, "wb");
    if (!f)
      return die("%s: cannot write logits: %s", logits_out, strerror(errno));
    size_t count = (size_t)(n_prompt * m.vocab);
    if (fwrite(m.logits, sizeof(float), count, f) != count || fclose(f) != 0)
      return die("%s: cannot write logits", logits_out);
  }
  int64_t eos = lowbit_model_meta[LOWBIT_META_EOS];
  int64_t pos = n_prompt, generated = 0;
  /* --bench: cache bytes a token at position p reads (K and V of positions
   * 0..p), and the reads of as many bytes as each decoded token's. */
  double per_position = 2.0 * (double)lowbit_model_meta[LOWBIT_META_KV_BYTES] /
                        (double)m.context;
  double streamed_s = 0, streamed_bytes = 0;
  /* prompt + generated ids, for the repetition penalty */
  int32_t *history = malloc(sizeof(int32_t) * (size_t)(n_prompt + n_gen + 1));
  if (!history)
    return die("out of memory");
  memcpy(history, prompt, sizeof(int32_t) * (size_t)n_prompt);
  int64_t n_history = n_prompt;
  int32_t tok = lowbit_rt_sample(&sampler, m.logits + (n_prompt - 1) * m.vocab, m.vocab,
                                 history, n_history);
  double t2 = now_s();
  utf8_stream text_out = {{0}, 0};
  for (; generated < n_gen; ++generated) {
    if (!bench && prompt_text) {
      if (tok != eos && tok != lowbit_tok_find(&tok_, "<|eot_id|>")) {
        size_t len;
        const uint8_t *b = lowbit_tok_piece(&tok_, tok, &len);
        stream_bytes(&text_out, b, len);
      }
    } else if (!bench) {
      printf(generated ? ",%d" : "%d", tok);
      fflush(stdout);
    }
    if ((!bench && (tok == eos || (prompt_text &&
                                   tok == lowbit_tok_find(&tok_, "<|eot_id|>")))) ||
        generated + 1 == n_gen || pos >= m.context)
      break;
    history[n_history++] = tok;
    forward(&m, &tok, 1, pos++);
    tok = lowbit_rt_sample(&sampler, m.logits, m.vocab, history, n_history);
    if (bench) {
      double bytes = (double)lowbit_model_meta[LOWBIT_META_BYTES_PER_TOKEN] +
                     per_position * (double)pos;
      streamed_s += stream_s(&m.weights, (uint64_t)bytes);
      streamed_bytes += bytes;
    }
  }
  double t3 = now_s() - streamed_s;
  if (prompt_text)
    stream_end(&text_out);
  if (!bench && n_gen > 0)
    printf("\n");
  if (have_tok)
    lowbit_tok_free(&tok_);
  if (bench) {
    int64_t decoded = pos - n_prompt;
    /* Cache bytes a decoded token reads, averaged over the decoded tokens. */
    double kv = decoded > 0 ? per_position * ((double)n_prompt + (double)(decoded + 1) / 2) : 0;
    printf("{\"prefill_tokens\": %lld, \"prefill_tok_s\": %.2f, \"decode_tokens\": %lld, "
           "\"decode_tok_s\": %.2f, \"threads\": %lld, \"weight_bytes_per_token\": %lld, "
           "\"kv_bytes_per_token\": %.0f, \"stream_gb_s\": %.2f}\n",
           (long long)n_prompt, (double)n_prompt / (t1 - t0), (long long)decoded,
           decoded > 0 ? (double)decoded / (t3 - t2) : 0.0, (long long)threads,
           (long long)lowbit_model_meta[LOWBIT_META_BYTES_PER_TOKEN], kv,
           streamed_s > 0 ? streamed_bytes / streamed_s / 1e9 : 0.0);
  }
  lowbit_rt_threads_stop();
  lowbit_rt_sampler_free(&sampler);
  lowbit_rt_weights_close(&m.weights);
  lowbit_rt_caches_free(m.k_cache, m.v_cache);
  free(m.logits);
  free(prompt);
  free(history);
  free(file_text);
  return 0;
}
