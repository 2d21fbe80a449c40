/*===- weights.c - mapping the packed weights -----------------------------===*/
#define _GNU_SOURCE
#include "lowbit_rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Defined by the compiler's weight object when the weights are embedded. */
extern const uint8_t lowbit_weights_start[] __attribute__((weak));
extern const uint8_t lowbit_weights_end[] __attribute__((weak));

lowbit_status lowbit_rt_weights_open(lowbit_weights *w, const char *sidecar) {
  memset(w, 0, sizeof *w);
  uint64_t want = (uint64_t)lowbit_model_meta[LOWBIT_META_WEIGHT_BYTES];
  if (lowbit_model_meta[LOWBIT_META_EMBEDDED] && !sidecar) {
    if (!lowbit_weights_start ||
        (uint64_t)(lowbit_weights_end - lowbit_weights_start) < want)
      return lowbit_rt_fail("embedded weights are missing or truncated");
    w->data = lowbit_weights_start;
    w->size = want;
    return 0;
  }
  char path[4096];
  if (sidecar) {
    snprintf(path, sizeof path, "%s", sidecar);
  } else {
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n <= 0)
      return lowbit_rt_fail("cannot find the executable's path to locate its .weights file");
    path[n] = 0;
    strcat(path, ".weights");
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return lowbit_rt_fail("%s: cannot open weight file: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return lowbit_rt_fail("%s: cannot stat weight file: %s", path, strerror(errno));
  }
  if ((uint64_t)st.st_size < LOWBIT_SIDECAR_HEADER) {
    close(fd);
    return lowbit_rt_fail("%s: truncated weight file (%lld bytes, header is %d)",
                          path, (long long)st.st_size, LOWBIT_SIDECAR_HEADER);
  }
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED)
    return lowbit_rt_fail("%s: cannot map weight file: %s", path, strerror(errno));
  const lowbit_sidecar_header *h = m;
  const char *why = NULL;
  if (memcmp(h->magic, LOWBIT_SIDECAR_MAGIC, 8) != 0)
    why = "not a lowbit weight file (bad magic)";
  else if (h->version != LOWBIT_SIDECAR_VERSION || h->abi_version != LOWBIT_ABI_VERSION)
    why = "weight file version does not match this executable";
  else if (h->weight_bytes != want)
    why = "weight file size does not match this executable";
  else if ((uint64_t)st.st_size != LOWBIT_SIDECAR_HEADER + want)
    why = "weight file is truncated or has trailing bytes";
  else if (h->checksum != (uint64_t)lowbit_model_meta[LOWBIT_META_WEIGHT_CHECKSUM] ||
           lowbit_checksum((const uint8_t *)m + LOWBIT_SIDECAR_HEADER, want) != h->checksum)
    why = "checksum mismatch: the weight file is corrupted or belongs to another build";
  if (why) {
    munmap(m, (size_t)st.st_size);
    return lowbit_rt_fail("%s: %s", path, why);
  }
  w->mapping = m;
  w->mapping_size = (size_t)st.st_size;
  w->data = (const uint8_t *)m + LOWBIT_SIDECAR_HEADER;
  w->size = want;
  return 0;
}

void lowbit_rt_weights_close(lowbit_weights *w) {
  if (w->mapping)
    munmap(w->mapping, w->mapping_size);
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
  memcpy(p, w->data, (size_t)w->size);
  if (w->mapping)
    munmap(w->mapping, w->mapping_size);
  w->mapping = NULL;
  w->copy = p;
  w->data = p;
  return 0;
}
