/* Several models in one process, through lowbit.h's entry points:
 *   two_models local|global LIB_A OUT_A.f32 LIB_B OUT_B.f32
 * loads two model libraries with dlopen and writes each one's logits for the
 * tokens 3, 77, 150 (every model library defines the same symbols; with
 * RTLD_GLOBAL the second must still run its own code and constants);
 *   two_models same LIB OUT.f32
 * opens LIB's model twice (2 and 3 threads), interleaves their calls, closes
 * the first and runs the second again, and checks that all three agree
 * (each instance keeps its own caches and position) and prints the
 * process's threads: the pool is shared, sized for 3, and outlives the
 * first close; writes the logits. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*open_fn)(const char *, int, char *, size_t);
typedef int64_t (*vocab_fn)(const void *);
typedef int (*eval_fn)(void *, const int32_t *, int64_t, float *);

/* Threads of this process (main and the pool's workers). */
static int tasks(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

typedef void (*close_fn)(void *);
typedef void (*reset_fn)(void *);

static int same(const char *lib, const char *out) {
  void *h = dlopen(lib, RTLD_NOW);
  if (!h)
    return fprintf(stderr, "%s\n", dlerror()), 1;
  open_fn open = (open_fn)dlsym(h, "lowbit_open");
  eval_fn eval = (eval_fn)dlsym(h, "lowbit_eval");
  char err[256];
  void *a = open(NULL, 2, err, sizeof err), *b = open(NULL, 3, err, sizeof err);
  if (!a || !b)
    return fprintf(stderr, "open: %s\n", err), 1;
  size_t v = (size_t)((vocab_fn)dlsym(h, "lowbit_vocab"))(a);
  float *la = malloc(sizeof(float) * 3 * v),
        *lb = malloc(sizeof(float) * 3 * v),
        *lc = malloc(sizeof(float) * 3 * v);
  int32_t ids[3] = {3, 77, 150};
  if (eval(a, ids, 2, la) || eval(b, ids, 1, lb) ||
      eval(a, ids + 2, 1, la + 2 * v) || eval(b, ids + 1, 2, lb + v))
    return fprintf(stderr, "eval failed\n"), 1;
  int both = tasks();
  ((close_fn)dlsym(h, "lowbit_close"))(a);
  int one = tasks();
  ((reset_fn)dlsym(h, "lowbit_reset"))(b);
  if (eval(b, ids, 3, lc))
    return fprintf(stderr, "eval failed\n"), 1;
  size_t bytes = sizeof(float) * 3 * v;
  printf("instances agree: %s, after the first closed: %s\n",
         memcmp(la, lb, bytes) ? "no" : "yes",
         memcmp(la, lc, bytes) ? "no" : "yes");
  FILE *f = fopen(out, "wb");
  fwrite(lc, 1, bytes, f);
  fclose(f);
  ((close_fn)dlsym(h, "lowbit_close"))(b);
  printf("threads: both open %d, one open %d, none %d\n", both, one, tasks());
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "same"))
    return same(argv[2], argv[3]);
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
