// parallel.c: see parallel.h.
#include "parallel.h"

#include <string.h>

#include "gemm.h"
#include "lanes.h"
#include "threadpool.h"

// Below this much work a second core costs more (hand-off, cache traffic) than it saves.
#define MIN_WORK 32768L

typedef struct {
    long n;
    void (*fn)(void *arg, long lo, long hi);
    void *arg;
} chunked;

static void run_chunk(void *arg, int task, int ntasks) {
    const chunked *c = arg;
    long lo = c->n * task / ntasks, hi = c->n * (task + 1) / ntasks;
    if (lo < hi) c->fn(c->arg, lo, hi);
}

void tz_parallel_for(long n, long cost, void (*fn)(void *arg, long lo, long hi), void *arg) {
    int T = tz_get_threads();
    if (T > n) T = (int)n;
    if (T <= 1 || n * cost < MIN_WORK) {
        if (n > 0) fn(arg, 0, n);
        return;
    }
    chunked c = {n, fn, arg};
    tz_pool_run(T, run_chunk, &c);
}

static void zero_range(void *arg, long lo, long hi) { memset((real *)arg + lo, 0, sizeof(real) * (size_t)(hi - lo)); }

void tz_parallel_zero(real *p, long n) { tz_parallel_for(n, 1, zero_range, p); }

typedef struct {
    const real *m;
    real *out;
    int rows, cols;
} col_sums;
static void col_sums_range(void *arg, long lo, long hi) {
    const col_sums *a = arg;
    const real *restrict m = a->m;
    const int cols = a->cols;
    TZ_COLUMN_SUMS(a->out, lo, hi, a->rows, r, j, m[(long)r * cols + j]);
}

void tz_column_sums_add(real *out, const real *m, int rows, int cols) {
    col_sums a = {m, out, rows, cols};
    tz_parallel_for(cols, rows, col_sums_range, &a);
}
