/*===- threadpool.c - the thread pool generated parallel loops call -------===*
 *
 * Workers spin on a generation counter, so a parallel region costs no system
 * call to start; a worker that has spun for kSpinNs without work (the
 * program waits for input, or the host application does something else)
 * sleeps on a condition variable until the next region, so an idle model
 * costs no CPU. The range [0, n) is split into one contiguous share per
 * thread, which the thread walks in order in shrinking chunks (one weight
 * stream per thread); a thread done with its share takes the next chunks of
 * the others'. The two vCPUs of these VMs often run 15-30 % apart for
 * seconds, so a fixed split left the faster thread waiting ~10 % of every
 * call. Each index is computed the same way whichever thread takes it (the
 * generated tasks have no cross-index state), so results never depend on
 * timing.
 *
 *===----------------------------------------------------------------------===*/
#include "lowbit_rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

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

enum { kMaxThreads = 256, kShrink = 8 };

/* How long an idle worker spins before it sleeps: longer than the gaps
 * between the parallel regions of a forward call and between decoded tokens
 * (sampling a 128K vocabulary takes up to a few ms), so generation never
 * pays a wake-up. */
static const int64_t kSpinNs = 5000000;

/* The next unclaimed index of each thread's share, one cache line each. */
typedef struct {
  _Alignas(64) atomic_llong next;
} cursor_t;

static cursor_t cursors[kMaxThreads];

static struct {
  int threads;
  pthread_t *tids;
  job_t job;
  atomic_uint generation;
  atomic_int pending;
  atomic_int stop;
  /* Sleeping workers wait on `wake` under `lock`; `sleepers` counts them
   * (sequentially consistent with `generation`: a worker that counts itself
   * and then still sees the old generation is woken by the caller that
   * bumped it). */
  atomic_int sleepers;
  unsigned start_generation;
  pthread_mutex_t lock;
  pthread_cond_t wake;
} pool = {.threads = 1,
          .lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER};

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Blocks until the generation moves past `seen` or the pool stops. */
static void sleep_until_work(unsigned seen) {
  pthread_mutex_lock(&pool.lock);
  atomic_fetch_add(&pool.sleepers, 1);
  while (atomic_load(&pool.generation) == seen && !atomic_load(&pool.stop))
    pthread_cond_wait(&pool.wake, &pool.lock);
  atomic_fetch_sub(&pool.sleepers, 1);
  pthread_mutex_unlock(&pool.lock);
}

/* Wakes the sleeping workers after a generation bump or a stop. */
static void wake_sleepers(void) {
  if (atomic_load(&pool.sleepers) == 0)
    return;
  pthread_mutex_lock(&pool.lock);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
}

static int64_t share_end(int index) {
  return pool.job.n * (index + 1) / pool.threads;
}

/* Runs the unclaimed chunks of thread `owner`'s share: an eighth of what is
 * left each time, so the chunks shrink towards the end of the share and the
 * threads finish within a few indices of each other. */
static void drain(int owner) {
  int64_t end = share_end(owner);
  for (;;) {
    int64_t left = end - atomic_load_explicit(&cursors[owner].next,
                                              memory_order_relaxed);
    if (left <= 0)
      return;
    int64_t chunk = left / kShrink > 0 ? left / kShrink : 1;
    int64_t begin = atomic_fetch_add_explicit(&cursors[owner].next, chunk,
                                              memory_order_relaxed);
    if (begin >= end)
      return;
    pool.job.fn(pool.job.args, begin, begin + chunk < end ? begin + chunk : end);
  }
}

/* Thread `index`'s own share first, then what is left of the others'. */
static void run_share(int index) {
  int t = pool.threads;
  for (int k = 0; k < t; ++k)
    drain((index + k) % t);
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg;
  /* Regions before this pool started (an earlier pool) are not ours. */
  unsigned seen = pool.start_generation;
  for (;;) {
    unsigned spins = 0;
    int64_t since = 0;
    unsigned g;
    while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) ==
           seen) {
      if (atomic_load_explicit(&pool.stop, memory_order_relaxed))
        return NULL;
      cpu_relax();
      if (++spins % 1024 == 0) {
        int64_t t = now_ns();
        if (!since)
          since = t;
        else if (t - since > kSpinNs) {
          sleep_until_work(seen);
          since = 0;
        }
      }
    }
    seen = g;
    run_share(index);
    atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
  }
}

int lowbit_rt_threads_start(int threads) {
  if (threads < 1)
    threads = 1;
  if (threads > kMaxThreads)
    threads = kMaxThreads;
  pool.threads = threads;
  if (threads == 1)
    return 0;
  /* A pool stopped before (lowbit_close, then lowbit_open) left `stop` set. */
  atomic_store(&pool.stop, 0);
  pool.start_generation = atomic_load(&pool.generation);
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
  wake_sleepers();
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
  int t = pool.threads;
  pool.job = (job_t){fn, args, n};
  for (int i = 0; i < t; ++i)
    atomic_store_explicit(&cursors[i].next, n * i / t, memory_order_relaxed);
  atomic_store_explicit(&pool.pending, t - 1, memory_order_relaxed);
  atomic_fetch_add(&pool.generation, 1);
  wake_sleepers();
  run_share(0);
  while (atomic_load_explicit(&pool.pending, memory_order_acquire) != 0)
    cpu_relax();
}
