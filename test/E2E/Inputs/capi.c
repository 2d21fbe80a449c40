/* Drives a model built with --emit=shared through lowbit.h:
 *   capi WEIGHTS|- OUT.f32 ID ID ...
 * evaluates the first half of the ids in one call and the rest one at a time,
 * writing every position's logits to OUT.f32; then checks that a bad token
 * id is refused with a message, and that the model opened again after a
 * close, evaluated 20 ms later (long enough for the idle workers to sleep),
 * gives the same logits for the whole sequence in one call. */
#include "lowbit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc < 4)
    return 2;
  char err[256];
  lowbit_model *m = lowbit_open(strcmp(argv[1], "-") ? argv[1] : NULL, 2, err, sizeof err);
  if (!m) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  int n = argc - 3;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
  for (int i = 0; i < n; ++i)
    ids[i] = atoi(argv[3 + i]);
  int64_t v = lowbit_vocab(m);
  float *logits = malloc(sizeof(float) * (size_t)(n * v));
  int half = n / 2;
  if (lowbit_eval(m, ids, half, logits))
    return fprintf(stderr, "eval: %s\n", lowbit_last_error()), 1;
  for (int i = half; i < n; ++i)
    if (lowbit_eval(m, ids + i, 1, logits + (size_t)i * (size_t)v))
      return fprintf(stderr, "eval: %s\n", lowbit_last_error()), 1;
  printf("position %lld of %lld\n", (long long)lowbit_position(m),
         (long long)lowbit_context(m));
  FILE *f = fopen(argv[2], "wb");
  fwrite(logits, sizeof(float), (size_t)(n * v), f);
  fclose(f);
  int32_t bad = (int32_t)v;
  if (lowbit_eval(m, &bad, 1, logits) == 0)
    return fprintf(stderr, "bad token accepted\n"), 1;
  printf("refused: %s\n", lowbit_last_error());
  lowbit_close(m);
  m = lowbit_open(strcmp(argv[1], "-") ? argv[1] : NULL, 2, err, sizeof err);
  if (!m)
    return fprintf(stderr, "reopen: %s\n", err), 1;
  float *again = malloc(sizeof(float) * (size_t)(n * v));
  for (int k = 0; k < 2; ++k) {
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    lowbit_reset(m);
    if (lowbit_eval(m, ids, n, again))
      return fprintf(stderr, "eval: %s\n", lowbit_last_error()), 1;
    printf("reopened, call %d: logits %s\n", k,
           memcmp(again, logits, sizeof(float) * (size_t)(n * v)) ? "differ" : "identical");
  }
  lowbit_close(m);
  free(again);
  free(ids);
  free(logits);
  return 0;
}
