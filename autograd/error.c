// error.c: one-line errors, the handler that receives them, and the checked allocators that end in one.
#include "tz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static _Thread_local char last_msg[512];
static tz_error_handler handler;

void tz_set_error_handler(tz_error_handler h) { handler = h; }
const char *tz_last_error(void) { return last_msg; }

void tz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    if (handler) handler(last_msg);
    // The default, and the fallback for a handler that returns: one line and a non-zero exit.
    fprintf(stderr, "tapezoo: %s\n", last_msg);
    exit(1);
}

void *tz_malloc(size_t bytes, const char *who) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) tz_fail("%s: out of memory (%zu bytes)", who, bytes);
    return p;
}

void *tz_calloc(size_t n, size_t size, const char *who) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) tz_fail("%s: out of memory (%zu x %zu bytes)", who, n, size);
    return p;
}

void *tz_realloc(void *p, size_t bytes, const char *who) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) tz_fail("%s: out of memory (%zu bytes)", who, bytes);
    return q;
}
