/*===- lowbit_tok.h - the runtime's tokenizer ------------------------------===*/
#ifndef LOWBIT_TOK_H
#define LOWBIT_TOK_H

#include "lowbit_rt.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t n_tokens, n_merges, n_added;
  int ignore_merges;
  const uint32_t *offsets, *merges, *added;
  const uint8_t *bytes;
  int32_t *vocab_map, *merge_map; /* open-addressing tables */
  size_t vocab_slots, merge_slots;
  int32_t byte_token[256];        /* the token of each single byte */
} lowbit_tokenizer;

typedef struct {
  int32_t *ids;
  size_t n, cap;
} lowbit_tok_ids;

/* Loads the table lowbitc embeds (validated; it is read, not copied). */
lowbit_status lowbit_tok_load(lowbit_tokenizer *t, const uint8_t *data, size_t size);
void lowbit_tok_free(lowbit_tokenizer *t);
/* Appends the ids of `text` (no BOS) to `out`. */
lowbit_status lowbit_tok_encode(const lowbit_tokenizer *t, const char *text,
                                size_t n, lowbit_tok_ids *out);
/* The raw bytes of token `id` (may be part of a UTF-8 sequence). */
const uint8_t *lowbit_tok_piece(const lowbit_tokenizer *t, int32_t id, size_t *len);
/* The id of an added token or vocab entry spelled `text`, or -1. */
int32_t lowbit_tok_find(const lowbit_tokenizer *t, const char *text);

#endif /* LOWBIT_TOK_H */
