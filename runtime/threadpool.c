/*===- threadpool.c - the thread pool generated parallel loops call -------===*
 *
 * Workers spin on a generation counter, so a parallel region costs no system
 * call to start. The range [0, n) is split into one contiguous chunk per
 * thread, the same split every time: results never depend on timing.
 *
 *===----------------------------------------------------------------------===*/
#include "lowbit_rt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

typedef struct {
  lowbit_task_fn fn;
  void *args;
  int64_t n;
} job_t;

static struct {
  int threads;
  pthread_t *tids;
  job_t job;
  atomic_uint generation;
  atomic_int pending;
  atomic_int stop;
} pool = {.threads = 1};

static void run_chunk(int index) {
  int64_t n = pool.job.n, t = pool.threads;
  int64_t begin = n * index / t, end = n * (index + 1) / t;
  if (begin < end)
    pool.job.fn(pool.job.args, begin, end);
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg;
  unsigned seen = 0;
  for (;;) {
    unsigned spins = 0;
    unsigned g;
    while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) ==
           seen) {
      if (atomic_load_explicit(&pool.stop, memory_order_relaxed))
        return NULL;
      if (++spins > (1u << 20))
        sched_yield();
      else
        cpu_relax();
    }
    seen = g;
    run_chunk(index);
    atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
  }
}

int lowbit_rt_threads_start(int threads) {
  if (threads < 1)
    threads = 1;
  pool.threads = threads;
  if (threads == 1)
    return 0;
  pool.tids = calloc((size_t)threads, sizeof(pthread_t));
  if (!pool.tids)
    return -1;
  for (int i = 1; i < threads; ++i)
    if (pthread_create(&pool.tids[i], NULL, worker, (void *)(intptr_t)i))
      return -1;
  return 0;
}

void lowbit_rt_threads_stop(void) {
  if (pool.threads <= 1)
    return;
  atomic_store(&pool.stop, 1);
  for (int i = 1; i < pool.threads; ++i)
    pthread_join(pool.tids[i], NULL);
  free(pool.tids);
  pool.tids = NULL;
  pool.threads = 1;
}

void lowbit_rt_parallel_for(lowbit_task_fn fn, void *args, int64_t n) {
  if (n <= 0)
    return;
  if (pool.threads == 1 || n == 1) {
    fn(args, 0, n);
    return;
  }
  pool.job = (job_t){fn, args, n};
  atomic_store_explicit(&pool.pending, pool.threads - 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
  run_chunk(0);
  while (atomic_load_explicit(&pool.pending, memory_order_acquire) != 0)
    cpu_relax();
}
