// parallel.c: see parallel.h.
#include "parallel.h"

#include <stdatomic.h>
#include <string.h>

#include "gemm.h"
#include "lanes.h"
#include "threadpool.h"

// Below this much work a second core costs more (hand-off, cache traffic) than it saves.
#define MIN_WORK 32768L
// Least work of a chunk when parts are cut (in the units of `cost`).
#define CHUNK_WORK (1L << 18)

typedef struct {
    long next, end; // items [next, end) of a task not yet started
} span;

typedef struct {
    long chunk; // items a task starts at once
    void (*fn)(void *arg, long lo, long hi);
    void *arg;
    int T;
    atomic_flag lock; // guards s[]: held for a few loads and stores per chunk
    span s[64];
} chunked;

// Each task works through its own contiguous part in chunks from the front; one that is done
// takes the back half of what is left of the part with the most left. Items keep their core
// while the cores run alike (what one op left in a core's cache, the next finds there), and a
// core the VM slows for a while does less instead of holding the other up (fixed parts: the
// d512 Transformer's step 1-4% slower, with gemm's row taking, in-process A/B).
static void run_chunk(void *arg, int task, int ntasks) {
    chunked *c = arg;
    (void)ntasks;
    span *me = &c->s[task];
    for (;;) {
        tz_spin_lock(&c->lock);
        long lo = me->next, hi = me->end - lo > c->chunk ? lo + c->chunk : me->end;
        me->next = hi;
        if (lo >= hi) { // nothing left here: take from the part with the most left
            span *v = NULL;
            for (int t = 0; t < c->T; t++)
                if (c->s[t].end - c->s[t].next > (v ? v->end - v->next : 1)) v = &c->s[t];
            if (v) {
                long x = v->next + (v->end - v->next + 1) / 2;
                me->next = x, me->end = v->end, v->end = x;
                lo = x, hi = me->end - x > c->chunk ? x + c->chunk : me->end;
                me->next = hi;
            }
        }
        tz_spin_unlock(&c->lock);
        if (lo >= hi) return;
        c->fn(c->arg, lo, hi);
    }
}

// Threads for n items of `cost` each: 1 (run here) when a second core would not pay.
static int threads_for_items(long n, long cost) {
    int T = tz_get_threads();
    if (T > n) T = (int)n;
    return n * cost < MIN_WORK ? 1 : T;
}

void tz_parallel_for(long n, long cost, void (*fn)(void *arg, long lo, long hi), void *arg) {
    int T = threads_for_items(n, cost);
    if (T <= 1) {
        if (n > 0) fn(arg, 0, n);
        return;
    }
    // Parts in up to 4 chunks, each of at least CHUNK_WORK: enough to even out the ends, while
    // small ops keep one chunk per part (the zoo's RNN was 2% slower with every part in 4: each
    // chunk costs a lock). An unstarted part can still be halved.
    long part = (n + T - 1) / T, per = part * cost / CHUNK_WORK;
    per = per < 1 ? 1 : per > 4 ? 4 : per;
    chunked c = {.chunk = (part + per - 1) / per, .fn = fn, .arg = arg, .T = T, .lock = ATOMIC_FLAG_INIT};
    for (int t = 0; t < T; t++) c.s[t] = (span){n * t / T, n * (t + 1) / T};
    tz_pool_run(T, run_chunk, &c);
}

typedef struct {
    long n;
    void (*fn)(void *arg, long lo, long hi);
    void *arg;
} split;

static void run_part(void *arg, int task, int ntasks) {
    const split *c = arg;
    long lo = c->n * task / ntasks, hi = c->n * (task + 1) / ntasks;
    if (lo < hi) c->fn(c->arg, lo, hi);
}

void tz_parallel_split(long n, long cost, void (*fn)(void *arg, long lo, long hi), void *arg) {
    int T = threads_for_items(n, cost);
    if (T <= 1) {
        if (n > 0) fn(arg, 0, n);
        return;
    }
    split c = {n, fn, arg};
    tz_pool_run(T, run_part, &c);
}

static void zero_range(void *arg, long lo, long hi) { memset((real *)arg + lo, 0, sizeof(real) * (size_t)(hi - lo)); }

void tz_parallel_zero(real *p, long n) { tz_parallel_for(n, 1, zero_range, p); }

typedef struct {
    real *dst;
    const real *src;
    int overwrite;
} add_args;
static void add_range(void *arg, long lo, long hi) {
    const add_args *a = arg;
    real *restrict d = a->dst;
    const real *restrict s = a->src;
    if (a->overwrite) memcpy(d + lo, s + lo, sizeof(real) * (size_t)(hi - lo));
    else
        for (long i = lo; i < hi; i++) d[i] += s[i];
}

void tz_parallel_add(real *dst, const real *src, long n, int overwrite) {
    add_args a = {dst, src, overwrite};
    tz_parallel_for(n, 2, add_range, &a);
}

typedef struct {
    const real *m;
    real *out;
    int rows, cols;
    long ld;
} col_sums;
static void col_sums_range(void *arg, long lo, long hi) {
    const col_sums *a = arg;
    const real *restrict m = a->m;
    const long ld = a->ld;
    TZ_COLUMN_SUMS(a->out, lo, hi, a->rows, r, j, m[r * ld + j]);
}

void tz_column_sums_add_ld(real *out, const real *m, int rows, int cols, long ld) {
    col_sums a = {m, out, rows, cols, ld};
    tz_parallel_for(cols, rows, col_sums_range, &a);
}

void tz_column_sums_add(real *out, const real *m, int rows, int cols) {
    tz_column_sums_add_ld(out, m, rows, cols, cols);
}
