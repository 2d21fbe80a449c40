/*===- main.c - the command line of a compiled lowbit model ---------------===*
 *
 *   ./model --tokens 128000,791,4062 [-n N] [--logits-out F] [-t THREADS]
 *           [--temp T] [--top-k K] [--top-p P] [--seed S] [--weights FILE]
 *           [--no-mmap]   (copy the weights into memory instead of mapping)
 *   ./model --bench [--tokens ...|-P PROMPT_LEN] [-n N] [-t THREADS]
 *
 * Every user error is one line on stderr and exit status 1.
 *
 *===----------------------------------------------------------------------===*/
#define _POSIX_C_SOURCE 200809L
#include "lowbit_rt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog = "model";

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
  if (errno || end == s || *end)
    return -1;
  *out = v;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
  int64_t vocab, context;
  uint8_t *k_cache, *v_cache;
  float *logits;
  int64_t logits_rows;
  lowbit_weights weights;
} model_t;

/* Runs tokens[0..n) at positions start..; logits of every position land in
 * m->logits (n rows). */
static void forward(model_t *m, const int32_t *tokens, int64_t n, int64_t start) {
  lowbit_rt_forward(m->weights.data, m->weights.size, m->k_cache, m->v_cache,
                    m->vocab, tokens, n, start, m->logits);
}

static int parse_tokens(const char *s, int32_t **out, int64_t *n, int64_t vocab) {
  int64_t cap = 16, len = 0;
  int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
  const char *p = s;
  while (*p) {
    char *end;
    errno = 0;
    long long id = strtoll(p, &end, 10);
    if (end == p || errno) {
      free(v);
      return die("--tokens: '%s' is not a comma-separated list of token ids", s);
    }
    if (id < 0 || id >= vocab) {
      free(v);
      return die("--tokens: token id %lld at position %lld is out of range [0, %lld)",
                 id, (long long)len, (long long)vocab);
    }
    if (len == cap)
      v = realloc(v, sizeof(int32_t) * (size_t)(cap *= 2));
    v[len++] = (int32_t)id;
    p = end;
    while (*p == ' ')
      ++p;
    if (*p == ',')
      ++p;
    else if (*p) {
      free(v);
      return die("--tokens: unexpected '%c' in '%s'", *p, s);
    }
  }
  if (len == 0) {
    free(v);
    return die("--tokens: no token ids given");
  }
  *out = v;
  *n = len;
  return 0;
}

int main(int argc, char **argv) {
  prog = argv[0];
  const char *tokens_arg = NULL, *logits_out = NULL, *weights_path = NULL;
  int64_t n_gen = 128, threads = 2, prompt_len = 128;
  int bench = 0, no_mmap = 0;
  lowbit_sampler sampler = {0.0f, 0.95f, 40, 1};
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
    if (!strcmp(a, "--tokens")) {
      NEED_VALUE();
      tokens_arg = v;
    } else if (!strcmp(a, "--logits-out")) {
      NEED_VALUE();
      logits_out = v;
    } else if (!strcmp(a, "--weights")) {
      NEED_VALUE();
      weights_path = v;
    } else if (!strcmp(a, "-n") || !strcmp(a, "-t") || !strcmp(a, "--top-k") ||
               !strcmp(a, "--seed") || !strcmp(a, "-P")) {
      NEED_VALUE();
      if (parse_i64(v, &iv) || iv < 0)
        return die("%s: '%s' is not a non-negative integer", a, v);
      if (!strcmp(a, "-n"))
        n_gen = iv;
      else if (!strcmp(a, "-t"))
        threads = iv;
      else if (!strcmp(a, "--top-k"))
        sampler.top_k = (int)iv;
      else if (!strcmp(a, "--seed"))
        sampler.rng = (uint64_t)iv;
      else
        prompt_len = iv;
    } else if (!strcmp(a, "--temp") || !strcmp(a, "--top-p")) {
      NEED_VALUE();
      if (parse_f32(v, &fv) || fv < 0.0f)
        return die("%s: '%s' is not a non-negative number", a, v);
      if (!strcmp(a, "--temp"))
        sampler.temperature = fv;
      else
        sampler.top_p = fv;
    } else if (!strcmp(a, "--bench")) {
      bench = 1;
    } else if (!strcmp(a, "--no-mmap")) {
      no_mmap = 1;
    } else if (!strcmp(a, "-p") || !strcmp(a, "--chat") || !strcmp(a, "--ppl") ||
               !strcmp(a, "--tokenize") || !strcmp(a, "--detokenize")) {
      return die("%s needs the tokenizer, which this build does not embed yet; "
                 "use --tokens", a);
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      printf("usage: %s --tokens ID,ID,... [-n N] [--logits-out FILE] [-t THREADS]\n"
             "          [--temp T] [--top-k K] [--top-p P] [--seed S] [--weights FILE]\n"
             "          [--no-mmap]\n"
             "       %s --bench [--tokens ...|-P PROMPT_LEN] [-n N] [-t THREADS]\n",
             prog, prog);
      return 0;
    } else {
      return die("unknown option '%s' (see --help)", a);
    }
  }
  if (threads < 1 || threads > 256)
    return die("-t: thread count must be in [1, 256]");
  if (lowbit_model_meta[LOWBIT_META_ABI_VERSION] != LOWBIT_ABI_VERSION)
    return die("model ABI version %lld does not match the runtime's %d",
               (long long)lowbit_model_meta[LOWBIT_META_ABI_VERSION], LOWBIT_ABI_VERSION);

  model_t m = {0};
  m.vocab = lowbit_model_meta[LOWBIT_META_VOCAB];
  m.context = lowbit_model_meta[LOWBIT_META_CONTEXT];

  int32_t *prompt = NULL;
  int64_t n_prompt = 0;
  if (tokens_arg) {
    if (parse_tokens(tokens_arg, &prompt, &n_prompt, m.vocab))
      return 1;
  } else if (bench) {
    n_prompt = prompt_len ? prompt_len : 1;
    prompt = malloc(sizeof(int32_t) * (size_t)n_prompt);
    for (int64_t i = 0; i < n_prompt; ++i)
      prompt[i] = (int32_t)((i * 7919 + 13) % m.vocab);
  } else {
    return die("nothing to do: give --tokens or --bench (see --help)");
  }
  if (n_prompt > m.context)
    return die("the prompt has %lld tokens but the context holds %lld",
               (long long)n_prompt, (long long)m.context);
  if (n_prompt + n_gen > m.context)
    n_gen = m.context - n_prompt;

  if (lowbit_rt_weights_open(&m.weights, weights_path))
    return die("%s", lowbit_rt_error());
  size_t cache_bytes = (size_t)lowbit_model_meta[LOWBIT_META_KV_BYTES];
  m.k_cache = calloc(cache_bytes, 1);
  m.v_cache = calloc(cache_bytes, 1);
  m.logits = malloc(sizeof(float) * (size_t)(n_prompt * m.vocab));
  if (!m.k_cache || !m.v_cache || !m.logits)
    return die("out of memory for the KV cache (2 x %lld bytes)", (long long)cache_bytes);
  if (lowbit_rt_threads_start((int)threads))
    return die("cannot start %lld threads", (long long)threads);

  if ((bench || no_mmap) && lowbit_rt_weights_copy(&m.weights))
    return die("%s", lowbit_rt_error());
  double t0 = now_s();
  forward(&m, prompt, n_prompt, 0);
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
  int32_t tok = lowbit_rt_sample(&sampler, m.logits + (n_prompt - 1) * m.vocab, m.vocab);
  double t2 = now_s();
  for (; generated < n_gen; ++generated) {
    if (!bench) {
      printf(generated ? ",%d" : "%d", tok);
      fflush(stdout);
    }
    if ((!bench && tok == eos) || generated + 1 == n_gen || pos >= m.context)
      break;
    forward(&m, &tok, 1, pos++);
    tok = lowbit_rt_sample(&sampler, m.logits, m.vocab);
  }
  double t3 = now_s();
  if (!bench && n_gen > 0)
    printf("\n");
  if (bench) {
    int64_t decoded = pos - n_prompt;
    printf("{\"prefill_tokens\": %lld, \"prefill_tok_s\": %.2f, \"decode_tokens\": %lld, "
           "\"decode_tok_s\": %.2f, \"threads\": %lld}\n",
           (long long)n_prompt, (double)n_prompt / (t1 - t0), (long long)decoded,
           decoded > 0 ? (double)decoded / (t3 - t2) : 0.0, (long long)threads);
  }
  lowbit_rt_threads_stop();
  lowbit_rt_weights_close(&m.weights);
  free(m.k_cache);
  free(m.v_cache);
  free(m.logits);
  free(prompt);
  return 0;
}
