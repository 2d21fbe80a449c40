/*===- status.c - error status values with a one-line message ------------===*/
#include "lowbit_rt.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char error_buf[1024];

lowbit_status lowbit_rt_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_buf, sizeof error_buf, fmt, ap);
  va_end(ap);
  return 1;
}

const char *lowbit_rt_error(void) { return error_buf; }
