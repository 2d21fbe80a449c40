/*===- weights.c - mapping the packed weights -----------------------------===*/
#define _GNU_SOURCE
#include "lowbit_rt.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Defined by the compiler's weight object when a shared library embeds the
 * weights (executables carry them appended, see lowbit_abi.h). */
extern const uint8_t lowbit_weights_start[] __attribute__((weak));
extern const uint8_t lowbit_weights_end[] __attribute__((weak));

/* Maps and validates the image (sidecar header + weights) at `offset` of
 * `path`, which must end at `end` (the file's size, or the footer). The
 * checksum pass reads every byte: done for side files, which travel apart
 * from the executable, not for the executable's own appended copy. */
static lowbit_status map_image(lowbit_weights *w, const char *path, int fd,
                               uint64_t offset, uint64_t end, int verify) {
  uint64_t want = (uint64_t)lowbit_model_meta[LOWBIT_META_WEIGHT_BYTES];
  if (end < offset + LOWBIT_SIDECAR_HEADER) {
    close(fd);
    return lowbit_rt_fail("%s: truncated weight file (%llu bytes, header is %d)",
                          path, (unsigned long long)(end - offset), LOWBIT_SIDECAR_HEADER);
  }
  size_t size = (size_t)(end - offset);
  void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, (off_t)offset);
  if (m == MAP_FAILED) {
    close(fd);
    return lowbit_rt_fail("%s: cannot map weight file: %s", path, strerror(errno));
  }
  const lowbit_sidecar_header *h = m;
  const char *why = NULL;
  if (memcmp(h->magic, LOWBIT_SIDECAR_MAGIC, 8) != 0)
    why = "not a lowbit weight file (bad magic)";
  else if (h->version != LOWBIT_SIDECAR_VERSION || h->abi_version != LOWBIT_ABI_VERSION)
    why = "weight file version does not match this executable";
  else if (h->weight_bytes != want)
    why = "weight file size does not match this executable";
  else if (size != LOWBIT_SIDECAR_HEADER + want)
    why = "weight file is truncated or has trailing bytes";
  else if (h->checksum != (uint64_t)lowbit_model_meta[LOWBIT_META_WEIGHT_CHECKSUM] ||
           (verify && lowbit_checksum((const uint8_t *)m + LOWBIT_SIDECAR_HEADER, want) !=
                          h->checksum))
    why = "checksum mismatch: the weight file is corrupted or belongs to another build";
  if (why) {
    munmap(m, size);
    close(fd);
    return lowbit_rt_fail("%s: %s", path, why);
  }
  w->fd = fd; /* kept for lowbit_rt_weights_copy */
  w->file_offset = offset + LOWBIT_SIDECAR_HEADER;
  w->mapping = m;
  w->mapping_size = size;
  w->data = (const uint8_t *)m + LOWBIT_SIDECAR_HEADER;
  w->size = want;
  return 0;
}

static lowbit_status open_file(const char *path, int *fd, struct stat *st) {
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0)
    return lowbit_rt_fail("%s: cannot open weight file: %s", path, strerror(errno));
  if (fstat(*fd, st) != 0) {
    close(*fd);
    return lowbit_rt_fail("%s: cannot stat weight file: %s", path, strerror(errno));
  }
  return 0;
}

lowbit_status lowbit_rt_weights_open(lowbit_weights *w, const char *sidecar) {
  memset(w, 0, sizeof *w);
  if (lowbit_rt_check_cpu())
    return 1;
  uint64_t want = (uint64_t)lowbit_model_meta[LOWBIT_META_WEIGHT_BYTES];
  if (lowbit_model_meta[LOWBIT_META_EMBEDDED] && !sidecar && lowbit_weights_start) {
    /* A shared library: the weights are a section of it. */
    if ((uint64_t)(lowbit_weights_end - lowbit_weights_start) < want)
      return lowbit_rt_fail("embedded weights are missing or truncated");
    w->data = lowbit_weights_start;
    w->size = want;
    return 0;
  }
  char path[4096];
  int fd;
  struct stat st;
  if (sidecar) {
    snprintf(path, sizeof path, "%s", sidecar);
  } else {
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n <= 0)
      return lowbit_rt_fail("cannot find the executable's path to locate its weights");
    path[n] = 0;
    if (lowbit_model_meta[LOWBIT_META_EMBEDDED]) {
      /* An executable: the image appended to it, found by its footer. */
      lowbit_status bad = open_file(path, &fd, &st);
      if (bad)
        return bad;
      lowbit_appended_footer f;
      if ((uint64_t)st.st_size < sizeof f ||
          pread(fd, &f, sizeof f, st.st_size - (off_t)sizeof f) != (ssize_t)sizeof f ||
          memcmp(f.magic, LOWBIT_APPENDED_MAGIC, 8) != 0 ||
          f.image_offset % 4096 || f.image_offset > (uint64_t)st.st_size - sizeof f) {
        close(fd);
        return lowbit_rt_fail("%s: the weights appended to this executable are missing "
                              "or damaged (was it stripped?)", path);
      }
      return map_image(w, path, fd, f.image_offset, (uint64_t)st.st_size - sizeof f, 0);
    }
    strcat(path, ".weights");
  }
  lowbit_status bad = open_file(path, &fd, &st);
  if (bad)
    return bad;
  return map_image(w, path, fd, 0, (uint64_t)st.st_size, 1);
}

void lowbit_rt_weights_close(lowbit_weights *w) {
  if (w->mapping) {
    munmap(w->mapping, w->mapping_size);
    close(w->fd);
  }
  free(w->copy);
  memset(w, 0, sizeof *w);
}

lowbit_status lowbit_rt_weights_copy(lowbit_weights *w) {
  void *p = NULL;
  size_t size = (size_t)((w->size + 4095) / 4096 * 4096);
  if (posix_memalign(&p, 4096, size ? size : 4096) != 0)
    return lowbit_rt_fail("out of memory copying %llu bytes of weights",
                          (unsigned long long)w->size);
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  /* From a mapped file, read into the copy: a memcpy from the mapping
   * faulted its pages in and held them beside the copy until the munmap
   * (2B4T, 4-bit head: 3.3 GB peak resident, 2.0 GB reading). */
  size_t done = 0;
  while (w->mapping && done < w->size) {
    size_t n = (size_t)w->size - done;
    if (n > ((size_t)64 << 20))
      n = (size_t)64 << 20;
    ssize_t r =
        pread(w->fd, (uint8_t *)p + done, n, (off_t)(w->file_offset + done));
    if (r <= 0)
      break; /* the rest from the mapping */
    done += (size_t)r;
  }
  memcpy((uint8_t *)p + done, w->data + done, (size_t)w->size - done);
  if (w->mapping) {
    munmap(w->mapping, w->mapping_size);
    close(w->fd);
  }
  w->mapping = NULL;
  w->copy = p;
  w->data = p;
  return 0;
}

void lowbit_rt_heap_setup(void) {
#ifdef __GLIBC__
  /* The generated code allocates its buffers per forward call; above the
   * default 128 KiB threshold each one would be a new mapping faulted in
   * page by page. */
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

#define HUGE_PAGE ((size_t)2 << 20)

static size_t cache_span(void) {
  size_t bytes = (size_t)lowbit_model_meta[LOWBIT_META_KV_BYTES];
  return (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
}

/* One zeroed anonymous mapping of `span` bytes at a huge-page boundary. */
static uint8_t *cache_map(size_t span) {
  uint8_t *m = mmap(NULL, span + HUGE_PAGE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  uint8_t *p = (uint8_t *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
  if (p > m)
    munmap(m, (size_t)(p - m));
  if (p + span < m + span + HUGE_PAGE)
    munmap(p + span, (size_t)(m + span + HUGE_PAGE - (p + span)));
#ifdef MADV_HUGEPAGE
  madvise(p, span, MADV_HUGEPAGE);
#endif
  /* Touched now, as llama.cpp clears its KV buffers: a first write to a page
   * of these VMs costs tens of microseconds, and decoding would otherwise
   * pay it for every few new rows (~0.75 ms per token on a 2B4T shape). */
  memset(p, 0, span);
  return p;
}

lowbit_status lowbit_rt_caches_alloc(uint8_t **k_cache, uint8_t **v_cache) {
  size_t span = cache_span();
  *k_cache = cache_map(span);
  *v_cache = *k_cache ? cache_map(span) : NULL;
  if (!*v_cache) {
    if (*k_cache)
      munmap(*k_cache, span);
    *k_cache = NULL;
    return lowbit_rt_fail("out of memory for the KV caches (2 x %llu bytes; "
                          "lowbitc --context=N compiles a shorter context)",
                          (unsigned long long)span);
  }
  return 0;
}

void lowbit_rt_caches_free(uint8_t *k_cache, uint8_t *v_cache) {
  size_t span = cache_span();
  if (k_cache)
    munmap(k_cache, span);
  if (v_cache)
    munmap(v_cache, span);
}
