// pair_batcher.c: padded, length-bucketed batches of pairs (see pairs.h).
#include <stdlib.h>
#include <string.h>

#include "pairs.h"
#include "synth.h"
#include "tz.h"

static void alloc_buffers(tz_pair_batcher *b, int S, int T) {
    if (b->B < 1) tz_fail("pair batcher: a batch of %d pairs (want >= 1)", b->B);
    b->cap_S = S > 0 ? S : 1, b->cap_T = T > 0 ? T : 1;
    b->src = tz_malloc(sizeof(int) * b->B * b->cap_S, "pair batcher");
    b->src_len = tz_malloc(sizeof(int) * b->B, "pair batcher");
    b->x = tz_malloc(sizeof(int) * b->B * b->cap_T, "pair batcher");
    b->y = tz_malloc(sizeof(int) * b->B * b->cap_T, "pair batcher");
}

void tz_pair_batcher_init(tz_pair_batcher *b, const tz_pairset *set, int B, int bucket, uint64_t seed) {
    memset(b, 0, sizeof *b);
    b->set = set, b->B = B, b->bucket = bucket < 1 ? 1 : bucket, b->seed = seed, b->epoch = -1;
    if (B < 1) tz_fail("pair batcher: a batch of %d pairs (want >= 1)", B);
    if (set->n < B)
        tz_fail("pairs: the training split has %ld pairs, fewer than one batch of %d ([train] batch)", set->n, B);
    b->per_epoch = set->n / B;
    b->order = tz_malloc(sizeof(long) * b->per_epoch * B, "pair batcher");
    b->batches = tz_malloc(sizeof(long) * b->per_epoch, "pair batcher");
    alloc_buffers(b, set->max_src, set->max_tgt + 1);
}

void tz_pair_batcher_init_draw(tz_pair_batcher *b, void (*draw)(void *, tz_rng *, int, tz_pairset *), void *ctx, int B,
                               int max_src, int max_tgt, uint64_t seed) {
    memset(b, 0, sizeof *b);
    b->B = B, b->seed = seed, b->epoch = -1, b->draw = draw, b->draw_ctx = ctx;
    alloc_buffers(b, max_src, max_tgt + 1);
}

void tz_pair_batcher_init_eval(tz_pair_batcher *b, const tz_pairset *set, int B) {
    memset(b, 0, sizeof *b);
    b->set = set, b->B = B, b->eval = 1;
    alloc_buffers(b, set->max_src, set->max_tgt + 1);
}

// The epoch's random numbers: a function of (seed, epoch) alone, so any batch can be rebuilt.
static void seed_for(tz_rng *r, uint64_t seed, long i, uint64_t salt) {
    tz_rng_seed(r, seed ^ (salt + (uint64_t)i * 0x9E3779B97F4A7C15ull));
}

static int cmp_long(const void *x, const void *y) {
    long a = *(const long *)x, c = *(const long *)y;
    return (a > c) - (a < c);
}

// Plans an epoch: a permutation of the pairs, pools of `bucket` batches sorted by (source
// length, target length), cut into batches, the batches in a random order.
static void plan(tz_pair_batcher *b, long epoch) {
    const tz_pairset *s = b->set;
    long n = s->n, used = b->per_epoch * b->B, pool = (long)b->bucket * b->B;
    tz_rng r;
    seed_for(&r, b->seed, epoch, 0x5041495253ull); // "PAIRS"
    long *perm = tz_malloc(sizeof(long) * n, "pair batcher"),
         *key = tz_malloc(sizeof(long) * (pool < used ? pool : used), "pair batcher");
    for (long i = 0; i < n; i++) perm[i] = i;
    for (long i = n - 1; i > 0; i--) {
        long j = tz_rng_below(&r, (uint32_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (long p0 = 0; p0 < used; p0 += pool) {
        long m = used - p0 < pool ? used - p0 : pool;
        // One sortable number per pair: its lengths, then its place in the pool (all distinct,
        // so the order is the same on every libc).
        for (long i = 0; i < m; i++) {
            long id = perm[p0 + i];
            key[i] = ((long)tz_pair_src_len(s, id) * (s->max_tgt + 1) + tz_pair_tgt_len(s, id)) * m + i;
        }
        if (b->bucket > 1) qsort(key, m, sizeof *key, cmp_long);
        for (long i = 0; i < m; i++) b->order[p0 + i] = perm[p0 + key[i] % m];
    }
    for (long j = 0; j < b->per_epoch; j++) b->batches[j] = j;
    for (long j = b->per_epoch - 1; j > 0; j--) {
        long k = tz_rng_below(&r, (uint32_t)(j + 1)), t = b->batches[j];
        b->batches[j] = b->batches[k], b->batches[k] = t;
    }
    free(perm);
    free(key);
    b->epoch = epoch;
}

// Pads `rows` pairs of s (ids idx[r], or first + r when idx is NULL) into the batch.
static void fill(tz_pair_batcher *b, const tz_pairset *s, const long *idx, long first, int rows, tz_batch *out) {
    int S = 1, T = 1;
    for (int r = 0; r < rows; r++) {
        long i = idx ? idx[r] : first + r;
        int ls = tz_pair_src_len(s, i), lt = tz_pair_tgt_len(s, i);
        if (ls < 1) tz_fail("pair batcher: pair %ld has an empty source", i);
        if (ls > S) S = ls;
        if (lt + 1 > T) T = lt + 1;
    }
    if (S > b->cap_S || T > b->cap_T)
        tz_fail("pair batcher: a pair of %d source / %d target tokens is longer than the batcher's %d / %d", S, T - 1,
                b->cap_S, b->cap_T - 1);
    for (int r = 0; r < rows; r++) {
        long i = idx ? idx[r] : first + r;
        int ls = tz_pair_src_len(s, i), lt = tz_pair_tgt_len(s, i);
        const int *src = s->src + s->src_off[i], *tgt = s->tgt + s->tgt_off[i];
        int *ps = b->src + r * S, *px = b->x + r * T, *py = b->y + r * T;
        for (int t = 0; t < S; t++) ps[t] = t < ls ? src[t] : TZ_PAD;
        b->src_len[r] = ls;
        px[0] = TZ_BOS;
        for (int t = 0; t < T; t++) {
            if (t + 1 < T) px[t + 1] = t < lt ? tgt[t] : TZ_PAD;
            py[t] = t < lt ? tgt[t] : t == lt ? TZ_EOS : TZ_IGNORE;
        }
    }
    *out = (tz_batch){.B = rows, .T = T, .x = b->x, .y = b->y, .S = S, .src = b->src, .src_len = b->src_len};
}

int tz_pair_batcher_next(tz_pair_batcher *b, tz_batch *out) {
    if (b->eval) {
        if (b->k >= b->set->n) return 0;
        int rows = b->set->n - b->k < b->B ? (int)(b->set->n - b->k) : b->B;
        fill(b, b->set, NULL, b->k, rows, out);
        b->k += rows;
        return 1;
    }
    if (b->draw) {
        tz_rng r;
        seed_for(&r, b->seed, b->k, 0x4452415753ull); // "DRAWS"
        tz_pairset_free(&b->fresh);
        b->draw(b->draw_ctx, &r, b->B, &b->fresh);
        if (b->fresh.n != b->B) tz_fail("pair batcher: a draw made %ld pairs, not %d", b->fresh.n, b->B);
        fill(b, &b->fresh, NULL, 0, b->B, out);
    } else {
        long epoch = b->k / b->per_epoch, j = b->k % b->per_epoch;
        if (epoch != b->epoch) plan(b, epoch);
        fill(b, b->set, b->order + b->batches[j] * b->B, 0, b->B, out);
    }
    b->k++;
    return 1;
}

long tz_pair_batcher_tell(const tz_pair_batcher *b) { return b->k; }

void tz_pair_batcher_seek(tz_pair_batcher *b, long k) {
    if (k < 0) tz_fail("pair batcher: seek to batch %ld", k);
    b->k = k;
}

void tz_pair_batcher_free(tz_pair_batcher *b) {
    free(b->order);
    free(b->batches);
    free(b->src);
    free(b->src_len);
    free(b->x);
    free(b->y);
    tz_pairset_free(&b->fresh);
    memset(b, 0, sizeof *b);
}

void tz_pairs_train_batcher(tz_pair_batcher *b, tz_pairs *p, int B, int bucket, uint64_t seed) {
    if (p->set[SPLIT_TRAIN].n) tz_pair_batcher_init(b, &p->set[SPLIT_TRAIN], B, bucket, seed);
    else if (p->kind == TZ_DATA_REVERSE || p->kind == TZ_DATA_COPY)
        tz_pair_batcher_init_draw(b, tz_synth_draw, &p->synth, B, p->synth.max_len, p->synth.max_len, seed);
    else tz_fail("pairs: the training split is empty");
}
