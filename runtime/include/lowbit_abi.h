/*===- lowbit_abi.h - the ABI between generated code and the runtime ------===*
 *
 * One header, versioned: the compiler emits code against exactly this. C11.
 *
 * Generated code provides:
 *   lowbit_model_meta[]        model constants (LOWBIT_META_* indices)
 *   _mlir_ciface_lowbit_forward(...)   one forward step over n tokens
 *   lowbit_weights_start/end   the embedded packed weights (unless sidecar)
 *   lowbit_cpu_target, lowbit_cpu_features  (x86, aarch64) the --mcpu it was
 *                              compiled for and which of LOWBIT_X86_FEATURES
 *                              or LOWBIT_AARCH64_FEATURES its code may use,
 *                              comma-separated
 * The runtime provides:
 *   lowbit_rt_parallel_for(fn, args, n)  runs fn(args, begin, end) over [0, n)
 *
 *===----------------------------------------------------------------------===*/
#ifndef LOWBIT_ABI_H
#define LOWBIT_ABI_H

#include <stdint.h>

#define LOWBIT_ABI_VERSION 4

/* Indices into lowbit_model_meta (int64_t). */
enum {
  LOWBIT_META_ABI_VERSION = 0,
  LOWBIT_META_VOCAB = 1,
  LOWBIT_META_HIDDEN = 2,
  LOWBIT_META_LAYERS = 3,
  LOWBIT_META_CONTEXT = 4,
  LOWBIT_META_KV_WIDTH = 5,   /* num_kv_heads * head_dim */
  LOWBIT_META_BOS = 6,        /* -1 when unknown */
  LOWBIT_META_EOS = 7,        /* -1 when unknown */
  LOWBIT_META_WEIGHT_BYTES = 8,
  LOWBIT_META_WEIGHT_CHECKSUM = 9,
  LOWBIT_META_EMBEDDED = 10,  /* 1: weights in the executable, 0: sidecar */
  LOWBIT_META_KV_BITS = 11,   /* 16 (float32 or f16: KV_F16), 8, 4 or 3 */
  LOWBIT_META_KV_BYTES = 12,  /* bytes of one cache (K or V), zero-filled */
  LOWBIT_META_STAT_SLOTS = 13, /* activation quantizers counted by --stats */
  LOWBIT_META_BYTES_PER_TOKEN = 14, /* weight bytes one decoded token reads */
  LOWBIT_META_KV_F16 = 15,    /* 1: the 16-bit cache holds IEEE half */
  LOWBIT_META_COUNT = 16
};

/* MLIR memref descriptors, as `llvm.emit_c_interface` passes them. */
typedef struct { const int32_t *alloc, *data; int64_t offset, sizes[1], strides[1]; } lowbit_memref_1d_i32;
typedef struct { const uint8_t *alloc, *data; int64_t offset, sizes[1], strides[1]; } lowbit_memref_1d_u8;
typedef struct { float *alloc, *data; int64_t offset, sizes[2], strides[2]; } lowbit_memref_2d_f32;
typedef struct { uint8_t *alloc, *data; int64_t offset, sizes[1], strides[1]; } lowbit_memref_1d_mut_u8;
typedef struct { int64_t *alloc, *data; int64_t offset, sizes[1], strides[1]; } lowbit_memref_1d_i64;

/* One forward step: tokens at positions start .. start+n-1; writes logits
 * [n, vocab]; reads and appends to the KV caches, opaque buffers of
 * LOWBIT_META_KV_BYTES bytes each (the layout is the generated code's).
 * `stats`, when not empty, holds 2 * LOWBIT_META_STAT_SLOTS counters: for
 * each activation quantizer, zero codes and all codes seen. Logits rows
 * before `logits_from` are not computed (the lm_head is the largest matmul
 * of a prompt; generation needs only the last row). */
void _mlir_ciface_lowbit_forward(lowbit_memref_1d_i32 *tokens, int64_t start,
                                 int64_t logits_from,
                                 lowbit_memref_2d_f32 *logits,
                                 lowbit_memref_1d_mut_u8 *k_cache,
                                 lowbit_memref_1d_mut_u8 *v_cache,
                                 lowbit_memref_1d_u8 *weights,
                                 lowbit_memref_1d_i64 *stats);

extern const int64_t lowbit_model_meta[LOWBIT_META_COUNT];

/* The x86 features the runtime checks before any model code runs (a CPU
 * without one the code uses would stop with SIGILL): LLVM's names, which are
 * also __builtin_cpu_supports's. X(name) for each. */
#define LOWBIT_X86_FEATURES(X)                                                 \
  X("ssse3") X("sse4.1") X("sse4.2") X("popcnt") X("avx") X("avx2") X("fma")   \
  X("f16c") X("bmi") X("bmi2") X("lzcnt") X("movbe") X("aes") X("pclmul")      \
  X("avx512f") X("avx512cd") X("avx512bw") X("avx512dq") X("avx512vl")         \
  X("avx512vnni") X("avx512bf16") X("avx512ifma") X("avx512vbmi")              \
  X("avx512vbmi2") X("avx512bitalg") X("avx512vpopcntdq") X("avx512fp16")      \
  X("gfni") X("vpclmulqdq") X("avxvnni")

/* The aarch64 features (LLVM's names) a model's code may use that Linux
 * reports in a CPU's hardware capabilities: X(name, word, bit) for bit `bit`
 * of getauxval(AT_HWCAP) (word 1) or AT_HWCAP2 (word 2), which the runtime
 * checks for those of lowbit_cpu_features. */
/* clang-format off */
#define LOWBIT_AARCH64_FEATURES(X)                                             \
  X("crc", 1, 7) X("lse", 1, 8) X("fullfp16", 1, 10) X("rdm", 1, 12)          \
  X("rcpc", 1, 15) X("dotprod", 1, 20) X("sve", 1, 22) X("fp16fml", 1, 23)    \
  X("sve2", 2, 1) X("i8mm", 2, 13) X("bf16", 2, 14)
/* clang-format on */

/* Per stats slot, the comma-separated weight names it feeds; one line each. */
extern const char lowbit_stat_names[];

/* A task body: works on [begin, end) of the task range. The pool calls it
 * on any of its threads with sub-ranges of [0, n) that cover every index
 * once, in chunks that depend on timing: an index's result must not depend
 * on the sub-range it came in. */
typedef void (*lowbit_task_fn)(void *args, int64_t begin, int64_t end);
void lowbit_rt_parallel_for(lowbit_task_fn fn, void *args, int64_t n);

/* The side file: a 4096-byte header, then the weight bytes. An executable
 * carries the same image appended at a 4096-aligned offset, followed by a
 * lowbit_appended_footer as the file's last 16 bytes. */
#define LOWBIT_APPENDED_MAGIC "LOWBITAP"
typedef struct {
  char magic[8];
  uint64_t image_offset; /* of the sidecar header in the executable */
} lowbit_appended_footer;
#define LOWBIT_SIDECAR_MAGIC "LOWBITW1"
#define LOWBIT_SIDECAR_VERSION 1
#define LOWBIT_SIDECAR_HEADER 4096
typedef struct {
  char magic[8];
  uint32_t version, abi_version;
  uint64_t weight_bytes;
  uint64_t checksum; /* lowbit_checksum of the weight bytes */
} lowbit_sidecar_header;

/* FNV-1a over 8-byte little-endian words (tail bytewise): fast enough to
 * check a 1 GB file. The compiler computes it while it writes the blob, one
 * step at a time, with the same init and step. */
#define LOWBIT_CHECKSUM_INIT 1469598103934665603ull
static inline uint64_t lowbit_checksum_step(uint64_t h, uint64_t word) {
  return (h ^ word) * 1099511628211ull;
}
static inline uint64_t lowbit_checksum(const uint8_t *p, uint64_t n) {
  uint64_t h = LOWBIT_CHECKSUM_INIT;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, p + i, 8);
    h = lowbit_checksum_step(h, w);
  }
  for (; i < n; ++i)
    h = lowbit_checksum_step(h, p[i]);
  return h;
}

/* The embedded tokenizer, compiled by lowbitc from tokenizer.json (byte-level
 * BPE with the Llama-3 pre-tokenizer), little-endian, linked as
 * lowbit_tokenizer_start .. lowbit_tokenizer_end:
 *   lowbit_tokenizer_header
 *   uint32_t offsets[n_tokens + 1]   token i is bytes[offsets[i] .. offsets[i+1])
 *   uint32_t merges[n_merges][3]     (left, right, merged) ids in rank order
 *   uint32_t added[n_added]          ids of added tokens, matched in text
 *   uint8_t  bytes[]                 raw bytes (byte-level mapping undone) */
#define LOWBIT_TOKENIZER_MAGIC "LOWBITT1"
#define LOWBIT_TOKENIZER_IGNORE_MERGES 1u /* a piece in the vocab is one token */
typedef struct {
  char magic[8];
  uint32_t n_tokens, n_merges, n_added, flags;
} lowbit_tokenizer_header;

#endif /* LOWBIT_ABI_H */
