/*===- lowbit.h - C API of a model compiled with lowbitc --emit=shared ----===*
 *
 *   lowbit_model *m = lowbit_open(NULL, 2, err, sizeof err);
 *   lowbit_eval(m, tokens, n, logits);      // logits: n x lowbit_vocab(m)
 *   lowbit_eval(m, &next, 1, logits);       // continues at position n
 *   lowbit_close(m);
 *
 * Several models may be open at once, opened from this library (each with
 * its own KV caches and position; they share the library's thread pool,
 * sized for the largest `threads` asked) or from other model libraries
 * (each linked -Bsymbolic, with a pool of its own). Calls into one library
 * are not thread-safe: one at a time. Errors return NULL / non-zero with a
 * one-line message in `err` or lowbit_last_error().
 *
 *===----------------------------------------------------------------------===*/
#ifndef LOWBIT_H
#define LOWBIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lowbit_model lowbit_model;

/* Opens the model. `weights_path`: NULL for weights linked into the library;
 * the .weights side file otherwise. `threads` >= 1. */
lowbit_model *lowbit_open(const char *weights_path, int threads, char *err,
                          size_t err_size);
int64_t lowbit_vocab(const lowbit_model *m);
int64_t lowbit_context(const lowbit_model *m);
/* Position of the next token (tokens evaluated since open or reset). */
int64_t lowbit_position(const lowbit_model *m);
/* Runs `n` tokens at the current position; writes n x vocab logits. */
int lowbit_eval(lowbit_model *m, const int32_t *tokens, int64_t n,
                float *logits);
void lowbit_reset(lowbit_model *m);
void lowbit_close(lowbit_model *m);
const char *lowbit_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* LOWBIT_H */
