// parallel.h: elementwise and row-wise ops on both cores. Each element is computed by one
// thread, in the same order as a serial loop, so results do not depend on the thread count.
#ifndef TZ_PARALLEL_H
#define TZ_PARALLEL_H

#include "tz.h"

// Calls fn(arg, lo, hi) on disjoint chunks covering [0, n): on the thread pool when n * cost
// (cost: rough work per item, in element-operations) is large enough to pay for waking a
// second core, else once, inline. Each thread starts on its own part, in a few chunks, and
// takes from others' parts when done first, so where the chunks end depends on timing: fn must
// compute each item on its own (then the bits do not depend on the grouping), and cost the same
// however items are grouped.
void tz_parallel_for(long n, long cost, void (*fn)(void *arg, long lo, long hi), void *arg);

// The same with exactly one contiguous chunk per thread, for fn that does its items together
// (a recurrent layer's rows: one product of all its rows per time step).
void tz_parallel_split(long n, long cost, void (*fn)(void *arg, long lo, long hi), void *arg);

// p[0, n) = 0 on both cores (a gradient buffer of megabytes is a visible part of a step).
void tz_parallel_zero(real *p, long n);

// dst[0, n) = src (overwrite) or += src, on both cores (a residual's gradient).
void tz_parallel_add(real *dst, const real *src, long n, int overwrite);

// out[j] += sum over r of m[r * cols + j], j < cols (a bias's gradient): columns split over the
// cores, each column's rows added in order, so the bits do not depend on the thread count.
void tz_column_sums_add(real *out, const real *m, int rows, int cols);
// The same over rows ld apart.
void tz_column_sums_add_ld(real *out, const real *m, int rows, int cols, long ld);

#endif
