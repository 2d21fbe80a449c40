/*===- lowbit_rt.h - runtime internals (not part of the ABI) --------------===*/
#ifndef LOWBIT_RT_H
#define LOWBIT_RT_H

#include "lowbit_abi.h"

#include <stddef.h>
#include <stdint.h>

/* Errors are status values: 0 ok, otherwise a message in lowbit_rt_error(). */
typedef int lowbit_status;
lowbit_status lowbit_rt_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
const char *lowbit_rt_error(void);

/* Fails when this CPU lacks an x86 feature the model's code may use. */
lowbit_status lowbit_rt_check_cpu(void);

/* Joins the thread pool (every start is paired with one stop): the first
 * start creates it with `threads`, a later one with more threads recreates
 * it that large, the last stop joins the workers. */
int lowbit_rt_threads_start(int threads);
/* CPUs this process may run on (its affinity mask). */
int lowbit_rt_cpus(void);
/* Keeps freed activation buffers in the heap (glibc: no mmap/munmap and
 * fresh zeroed pages for every forward call's large buffers). */
void lowbit_rt_heap_setup(void);
void lowbit_rt_threads_stop(void);

/* The packed weights: embedded in the executable, or a validated side file. */
typedef struct {
  const uint8_t *data;
  uint64_t size;
  void *mapping; /* non-NULL when mmapped from a side file */
  size_t mapping_size;
  void *copy;    /* non-NULL when copied into anonymous memory */
  int fd;        /* the mapped file, open while `mapping` is set */
  uint64_t file_offset; /* where `data` starts in it */
} lowbit_weights;
lowbit_status lowbit_rt_weights_open(lowbit_weights *w, const char *sidecar);
void lowbit_rt_weights_close(lowbit_weights *w);
/* Copies the weights into anonymous memory (like llama.cpp's --no-mmap), so
 * they stay resident: file-backed pages of these VMs come and go. */
lowbit_status lowbit_rt_weights_copy(lowbit_weights *w);

/* The zeroed K and V caches (LOWBIT_META_KV_BYTES each), in huge pages
 * where the kernel gives them and touched before the first token: decoding
 * writes one new row per layer and token, and pages faulted in one by one
 * on the way cost more than the rows. Returns 0, or fails with a message. */
lowbit_status lowbit_rt_caches_alloc(uint8_t **k_cache, uint8_t **v_cache);
void lowbit_rt_caches_free(uint8_t *k_cache, uint8_t *v_cache);

/* Builds the memref descriptors and runs the generated forward step.
 * Logits rows before `logits_from` are left uncomputed; `stats` (may be
 * NULL) accumulates zero counts per quantizer. */
void lowbit_rt_forward(const uint8_t *weights, uint64_t weight_bytes,
                       uint8_t *k_cache, uint8_t *v_cache, int64_t vocab,
                       const int32_t *tokens, int64_t n, int64_t start,
                       int64_t logits_from, float *logits, int64_t *stats);

/* Sampling: temperature 0 is greedy (lowest index wins ties). Before it, a
 * repetition penalty divides positive (multiplies negative) logits of the
 * last `repeat_last_n` tokens by `repeat_penalty`; then top-k, top-p and
 * min-p (keep p >= min_p * p_max) filter; `rng` is the seed. */
typedef struct {
  float temperature, top_p, min_p, repeat_penalty;
  int top_k, repeat_last_n;
  uint64_t rng;
  void *scratch; /* candidates, grown to the vocabulary once */
  int64_t scratch_cap;
} lowbit_sampler;
void lowbit_rt_sampler_free(lowbit_sampler *s);
int32_t lowbit_rt_sample(lowbit_sampler *s, float *logits, int64_t vocab,
                         const int32_t *history, int64_t n_history);

#endif /* LOWBIT_RT_H */
