/* Read-bandwidth probe: sums a 256 MiB buffer (8x the L3) with N threads
 * (AVX2/AVX-512 as the compiler vectorises it), best of 8 passes, and prints
 * GB/s; about a second, so bench/run.sh probes around every row. It compiles
 * it with -O3 -march=native. Prints; asserts nothing. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BYTES (256ull << 20)

typedef struct { const uint64_t *p; size_t n; uint64_t sum; } job;

static void *run(void *arg) {
  job *j = arg;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= j->n; i += 4) {
    s0 += j->p[i];
    s1 += j->p[i + 1];
    s2 += j->p[i + 2];
    s3 += j->p[i + 3];
  }
  j->sum = s0 + s1 + s2 + s3;
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  uint64_t *buf = aligned_alloc(4096, BYTES);
  if (!buf || threads < 1 || threads > 64)
    return 1;
  for (size_t i = 0; i < BYTES / 8; ++i)
    buf[i] = i;
  double best = 0;
  for (int rep = 0; rep < 8; ++rep) {
    pthread_t tid[64];
    job jobs[64];
    size_t per = BYTES / 8 / (size_t)threads;
    double t0 = now();
    for (int t = 0; t < threads; ++t) {
      jobs[t] = (job){buf + per * (size_t)t, per, 0};
      pthread_create(&tid[t], NULL, run, &jobs[t]);
    }
    for (int t = 0; t < threads; ++t)
      pthread_join(tid[t], NULL);
    double gbs = (double)BYTES / (now() - t0) / 1e9;
    best = gbs > best ? gbs : best;
  }
  printf("%.1f\n", best);
  free(buf);
  return 0;
}
