/* Loads two model libraries (--emit=shared) into one process with dlopen and
 * writes each one's logits for the tokens 3, 77, 150:
 *   two_models local|global LIB_A OUT_A.f32 LIB_B OUT_B.f32
 * Every model library defines the same symbols; with RTLD_GLOBAL the second
 * library must still run its own code and constants. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*open_fn)(const char *, int, char *, size_t);
typedef int64_t (*vocab_fn)(const void *);
typedef int (*eval_fn)(void *, const int32_t *, int64_t, float *);

int main(int argc, char **argv) {
  if (argc != 6)
    return 2;
  int mode = strcmp(argv[1], "global") ? RTLD_LOCAL : RTLD_GLOBAL;
  for (int k = 0; k < 2; ++k) {
    void *h = dlopen(argv[2 + 2 * k], RTLD_NOW | mode);
    if (!h)
      return fprintf(stderr, "%s\n", dlerror()), 1;
    char err[256];
    void *m = ((open_fn)dlsym(h, "lowbit_open"))(NULL, 2, err, sizeof err);
    if (!m)
      return fprintf(stderr, "open: %s\n", err), 1;
    int64_t v = ((vocab_fn)dlsym(h, "lowbit_vocab"))(m);
    float *logits = malloc(sizeof(float) * 3 * (size_t)v);
    int32_t ids[3] = {3, 77, 150};
    if (((eval_fn)dlsym(h, "lowbit_eval"))(m, ids, 3, logits))
      return fprintf(stderr, "eval failed\n"), 1;
    FILE *f = fopen(argv[3 + 2 * k], "wb");
    fwrite(logits, sizeof(float), 3 * (size_t)v, f);
    fclose(f);
    printf("model %d: vocab %lld\n", k, (long long)v);
  }
  return 0;
}
