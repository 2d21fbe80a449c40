/*===- cpu.c - the CPU features a model's code may use ---------------------===*
 *
 * lowbitc records, for x86 and aarch64 targets, the --mcpu it compiled for
 * and which of LOWBIT_X86_FEATURES / LOWBIT_AARCH64_FEATURES the generated
 * code may use (lowbit_abi.h). A CPU without one of them would stop at the
 * first such instruction with SIGILL, so opening the weights checks them
 * first and fails with one line naming what is missing. x86 asks cpuid
 * (__builtin_cpu_supports), aarch64 Linux the kernel's hardware
 * capabilities.
 *
 *===----------------------------------------------------------------------===*/
#include "lowbit_rt.h"

#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define LOWBIT_CPU_CHECK 1
#elif defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define LOWBIT_CPU_CHECK 1
#endif

/* Weak: objects built by other means may lack them (then nothing is
 * checked). */
extern const char lowbit_cpu_target[] __attribute__((weak));
extern const char lowbit_cpu_features[] __attribute__((weak));

typedef struct {
  const char *name;
  int has;
} cpu_feature;

#if defined(__aarch64__) && defined(__linux__)
/* Whether this CPU has the aarch64 feature at bit `bit` of AT_HWCAP (word
 * 1) or AT_HWCAP2 (word 2). */
static int aarch64_has(int word, int bit) {
  return (getauxval(word == 1 ? AT_HWCAP : AT_HWCAP2) >> bit) & 1;
}
#endif

lowbit_status lowbit_rt_check_cpu(void) {
#ifdef LOWBIT_CPU_CHECK
  if (!lowbit_cpu_features || !lowbit_cpu_target)
    return 0;
#if defined(__x86_64__)
  __builtin_cpu_init();
  const cpu_feature known[] = {
#define LOWBIT_FEATURE_ROW(name) {name, __builtin_cpu_supports(name)},
      LOWBIT_X86_FEATURES(LOWBIT_FEATURE_ROW)
#undef LOWBIT_FEATURE_ROW
  };
#else
  const cpu_feature known[] = {
#define LOWBIT_FEATURE_ROW(name, word, bit) {name, aarch64_has(word, bit)},
      LOWBIT_AARCH64_FEATURES(LOWBIT_FEATURE_ROW)
#undef LOWBIT_FEATURE_ROW
  };
#endif
  char missing[512] = "";
  size_t used = 0;
  for (const char *p = lowbit_cpu_features; *p;) {
    size_t len = strcspn(p, ",");
    for (size_t i = 0; i < sizeof known / sizeof known[0]; ++i)
      if (!known[i].has && strlen(known[i].name) == len &&
          !strncmp(known[i].name, p, len) && used + len + 2 < sizeof missing) {
        if (used)
          missing[used++] = ',';
        memcpy(missing + used, p, len);
        missing[used += len] = 0;
      }
    p += len + (p[len] == ',');
  }
  if (used)
    return lowbit_rt_fail("this CPU lacks %s, which the model was compiled to "
                          "use (--mcpu=%s); compile it with --mcpu=native on "
                          "this machine",
                          missing, lowbit_cpu_target);
#endif
  return 0;
}
