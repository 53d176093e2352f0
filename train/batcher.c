// batcher.c: random windows and contiguous streams (see batcher.h).
#include "batcher.h"

#include <stdlib.h>
#include <string.h>

static void alloc_xy(tz_batcher *b) {
    size_t n = (size_t)b->B * (size_t)b->T;
    b->x = malloc(sizeof(int) * n);
    b->y = malloc(sizeof(int) * n);
    if (!b->x || !b->y) {
        free(b->x), free(b->y);
        tz_fail("batcher: out of memory for a (%d,%d) batch", b->B, b->T);
    }
}

// Fails with one line naming the split when n tokens are too few for its batches.
static void check(long n, int B, int T, int streams, int eval) {
    const char *what = eval ? "validation" : "training";
    if (B < 1 || T < 1) tz_fail("batcher: batch %d x block %d must both be >= 1", B, T);
    if (streams && !eval && (n - 1) / B < T)
        tz_fail("batcher: the %s split's %ld tokens make %d streams of %ld, shorter than the block %d (want at least "
                "batch x block + 1 = %ld tokens: more text, or a smaller train.batch or train.block)",
                what, n, B, n > 0 ? (n - 1) / B : 0, T, (long)B * T + 1);
    if (streams && eval && n < 2) tz_fail("batcher: the %s split has %ld tokens, nothing to predict", what, n);
    if (!streams && n < (long)T + 1)
        tz_fail("batcher: the %s split has %ld tokens, fewer than one window of block %d + 1 (more text, or a smaller "
                "train.block)",
                what, n, T);
}

static void init(tz_batcher *b, const int *ids, long n, int B, int T, int streams, uint64_t seed, int eval) {
    check(n, B, T, streams, eval);
    memset(b, 0, sizeof *b);
    b->ids = ids, b->n = n, b->B = B, b->T = T, b->streams = streams;
    if (streams) b->stream_len = (n - 1) / B;
    tz_rng_seed(&b->rng, seed);
    alloc_xy(b);
}

void tz_batcher_init(tz_batcher *b, const int *ids, long n, int B, int T, int streams, uint64_t seed) {
    init(b, ids, n, B, T, streams, seed, 0);
}

void tz_batcher_init_eval(tz_batcher *b, const int *ids, long n, int B, int T, int streams, int context) {
    init(b, ids, n, B, T, streams, 0, 1);
    b->eval = 1;
    b->context = context < T ? context : T - 1;
    if (streams) b->stream_len = (n - 1 + B - 1) / B; // every position: the last stream ends early
}

// Evaluation streams: the next chunk of up to T positions of each stream; positions past the
// split's end (the last stream's tail) get a valid input and an ignored target.
static int next_eval_streams(tz_batcher *b, tz_batch *out) {
    if (b->pos >= b->stream_len) return 0;
    long left = b->stream_len - b->pos;
    int T = left < b->T ? (int)left : b->T;
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < T; t++) {
            long i = r * b->stream_len + b->pos + t;
            int in = i + 1 < b->n;
            b->x[r * T + t] = in ? b->ids[i] : b->ids[b->n - 1];
            b->y[r * T + t] = in ? b->ids[i + 1] : TZ_IGNORE;
        }
    b->pos += T;
    *out = (tz_batch){.B = b->B, .T = T, .x = b->x, .y = b->y};
    return 1;
}

static void copy_window(tz_batcher *b, int row, long start) {
    memcpy(b->x + row * b->T, b->ids + start, sizeof(int) * b->T);
    memcpy(b->y + row * b->T, b->ids + start + 1, sizeof(int) * b->T);
}

int tz_batcher_next(tz_batcher *b, tz_batch *out) {
    int wrapped = 0, rows = b->B, T = b->T;
    if (b->streams && b->eval) return next_eval_streams(b, out);
    if (b->streams) {
        if (b->pos + T > b->stream_len) b->pos = 0, b->epoch++, wrapped = 1; // the streams start over
        for (int r = 0; r < b->B; r++) copy_window(b, r, r * b->stream_len + b->pos);
        b->pos += T;
    } else if (b->eval) { // windows overlapping by the left context, in order
        long stride = T - b->context;
        for (rows = 0; rows < b->B && b->pos + T + 1 <= b->n; rows++, b->pos += stride) {
            copy_window(b, rows, b->pos);
            b->covered = b->pos + T;
        }
        if (rows < b->B && b->covered < b->n - 1) { // the tail: one window ending at the split's end
            long start = b->n - 1 - T;
            copy_window(b, rows, start);
            for (int t = 0; start + t + 1 <= b->covered; t++) b->y[rows * T + t] = TZ_IGNORE; // predicted already
            b->covered = b->n - 1, rows++;
        }
        if (rows == 0) return 0;
    } else {
        for (int r = 0; r < b->B; r++) copy_window(b, r, (long)(tz_rng_uniform(&b->rng) * (double)(b->n - T)));
    }
    *out = (tz_batch){.B = rows, .T = T, .x = b->x, .y = b->y};
    return b->eval ? 1 : wrapped;
}

void tz_batcher_skip(tz_batcher *b, long steps) {
    if (!b->streams || steps <= 0) return;
    long per_epoch = b->stream_len / b->T; // calls between wraps (a wrap happens on the next call)
    long k = steps % per_epoch;
    b->epoch = (steps - 1) / per_epoch;
    b->pos = (k ? k : per_epoch) * b->T;
}

void tz_batcher_free(tz_batcher *b) {
    free(b->x);
    free(b->y);
}
