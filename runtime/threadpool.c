/*===- threadpool.c - the thread pool generated parallel loops call -------===*
 *
 * Workers spin on a generation counter, so a parallel region costs no system
 * call to start. The range [0, n) is split into one contiguous share per
 * thread, which the thread walks in order in shrinking chunks (one weight
 * stream per thread); a thread done with its share takes the next chunks of
 * the others'. The two vCPUs of these VMs often run 15-30 % apart for
 * seconds, so a fixed split left the faster thread waiting ~10 % of every
 * call. Each index is computed the same way whichever thread takes it (the
 * generated tasks have no cross-index state), so results never depend on
 * timing or on which threads took part.
 *
 * Other busy processes (or more threads than CPUs) take CPUs away from the
 * pool, so no thread waits for another that is not running:
 *  - a worker joins a region only while it is open; the caller runs every
 *    chunk nobody has claimed, closes the region and then waits for the
 *    workers that joined, so a worker that was off the CPU when the region
 *    started is not waited for (two 2-thread processes on 2 CPUs decoded at
 *    10 tok/s each when every region waited for every worker);
 *  - a waiting caller spins for kCallerSpinNs, then sleeps until the last
 *    worker leaves, handing its CPU to the thread it waits for;
 *  - an idle worker spins for kWorkerSpinNs, then sleeps until the next
 *    region, so a model waiting for input costs no CPU.
 *
 *===----------------------------------------------------------------------===*/
#define _GNU_SOURCE
#include "lowbit_rt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

/* Spin budgets before sleeping. A worker's outlasts the gaps between the
 * regions of a forward call (microseconds) and, mostly, between decoded
 * tokens, so uncontended generation rarely pays a wake-up; a caller's
 * covers the last chunks of a worker that is running. */
static const int64_t kWorkerSpinNs = 1000000, kCallerSpinNs = 50000;

/* The region state: generation << 32 | kClosed | number of workers in it. */
static const uint64_t kClosed = (uint64_t)1 << 31;
static const uint64_t kCount = kClosed - 1;

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
  atomic_ullong state;
  atomic_int stop;
  unsigned start_generation;
  /* Sleeping workers wait on `wake`, a sleeping caller on `done`, both under
   * `lock`; `sleepers` and `caller_asleep` are sequentially consistent with
   * the generation and the state: whoever changes those after a sleeper
   * registered sees it and signals. */
  atomic_int sleepers, caller_asleep;
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
} pool = {.threads = 1,
          .lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spins while `busy(arg)` for about `budget` ns; 1 if it is still busy. */
static int spin_while(int (*busy)(unsigned), unsigned arg, int64_t budget) {
  int64_t since = 0;
  for (unsigned spins = 1; busy(arg); ++spins) {
    cpu_relax();
    if (spins % 256 == 0) {
      int64_t t = now_ns();
      if (!since)
        since = t;
      else if (t - since > budget)
        return 1;
    }
  }
  return 0;
}

/* Sequentially consistent loads (plain loads on x86): a sleeper tests these
 * after registering itself, the other side changes them before looking for
 * sleepers. */
static int no_new_region(unsigned seen) {
  return atomic_load(&pool.generation) == seen && !atomic_load(&pool.stop);
}

static int workers_inside(unsigned unused) {
  (void)unused;
  return (atomic_load(&pool.state) & kCount) != 0;
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

/* Enters region `g` if it is still open. */
static int join(unsigned g) {
  unsigned long long s = atomic_load(&pool.state);
  while ((unsigned)(s >> 32) == g && !(s & kClosed))
    if (atomic_compare_exchange_weak(&pool.state, &s, s + 1))
      return 1;
  return 0;
}

/* Leaves the region; the last one out of a closed region wakes the caller
 * if it sleeps. */
static void leave(void) {
  uint64_t s = atomic_fetch_sub(&pool.state, 1) - 1;
  if ((s & kCount) == 0 && (s & kClosed) && atomic_load(&pool.caller_asleep)) {
    pthread_mutex_lock(&pool.lock);
    pthread_cond_signal(&pool.done);
    pthread_mutex_unlock(&pool.lock);
  }
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg;
  /* Regions before this pool started (an earlier pool) are not ours. */
  unsigned seen = pool.start_generation;
  for (;;) {
    if (spin_while(no_new_region, seen, kWorkerSpinNs)) {
      pthread_mutex_lock(&pool.lock);
      atomic_fetch_add(&pool.sleepers, 1);
      while (no_new_region(seen))
        pthread_cond_wait(&pool.wake, &pool.lock);
      atomic_fetch_sub(&pool.sleepers, 1);
      pthread_mutex_unlock(&pool.lock);
    }
    if (atomic_load(&pool.stop))
      return NULL;
    seen = atomic_load(&pool.generation);
    if (join(seen)) {
      run_share(index);
      leave();
    }
  }
}

int lowbit_rt_cpus(void) {
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* The models open in this library share the pool (a library's generated
 * code calls lowbit_rt_parallel_for, one call at a time): the first start
 * creates it, a later one with more threads recreates it that large, and
 * the last stop joins it. */
static int pool_users;

static void stop_workers(void) {
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

int lowbit_rt_threads_start(int threads) {
  if (threads < 1)
    threads = 1;
  if (threads > kMaxThreads)
    threads = kMaxThreads;
  ++pool_users;
  if (pool_users > 1 && threads <= pool.threads)
    return 0;
  stop_workers();
  pool.threads = threads;
  if (threads == 1)
    return 0;
  /* A pool stopped before (lowbit_close, then lowbit_open) left `stop` set. */
  atomic_store(&pool.stop, 0);
  pool.start_generation = atomic_load(&pool.generation);
  pool.tids = calloc((size_t)threads, sizeof(pthread_t));
  if (!pool.tids) {
    pool.threads = 1;
    --pool_users;
    return -1;
  }
  for (int i = 1; i < threads; ++i)
    if (pthread_create(&pool.tids[i], NULL, worker, (void *)(intptr_t)i)) {
      pool.threads = i; /* joins workers 1 .. i - 1 */
      stop_workers();
      --pool_users;
      return -1;
    }
  return 0;
}

void lowbit_rt_threads_stop(void) {
  if (pool_users > 0 && --pool_users > 0)
    return;
  stop_workers();
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
  unsigned g = atomic_load_explicit(&pool.generation, memory_order_relaxed) + 1;
  atomic_store(&pool.state, (uint64_t)g << 32);
  atomic_store(&pool.generation, g);
  wake_sleepers();
  run_share(0);
  /* Every chunk is claimed now: close the region to latecomers and wait for
   * the workers inside. */
  atomic_fetch_or(&pool.state, kClosed);
  if (spin_while(workers_inside, 0, kCallerSpinNs)) {
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.caller_asleep, 1);
    while (workers_inside(0))
      pthread_cond_wait(&pool.done, &pool.lock);
    atomic_store(&pool.caller_asleep, 0);
    pthread_mutex_unlock(&pool.lock);
  }
}
