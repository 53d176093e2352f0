// attention_fused.c: multi-head scaled dot-product attention (Vaswani et al. 2017, 3.2) as one
// tape node, reading the heads straight out of the (B,T,C) projections (or one packed (B,T,3C)
// projection [q k v]): no head split/merge copies, no mask tensors, masked weights never
// computed. (Batch, head) pairs are shared out over the thread pool (tz_parallel_for); their
// small products run single-threaded. Queries go in tiles of rows whose products stop at the last
// key the tile's last row may see: causal attention computes about half of the T x T scores and
// padded keys none. Same function as nn_sdpa over split heads with causal/padding masks (tested),
// gradient-checked in float64.
//   forward:  S = Q K^T / sqrt(D), P = softmax over the allowed keys (0 elsewhere up to the
//             tile's last key; past it P is not written unless the caller reads the weights),
//             O = P V
//   backward: dP = dO V^T, dS = P (dP - rowsum(P dP)), dQ = dS K / sqrt(D), dK = dS^T Q / sqrt(D),
//             dV = P^T dO
#include <math.h>
#include <string.h>

#include "attention.h"
#include "fastmath.h"
#include "gemm.h"
#include "lanes.h"
#include "parallel.h"

typedef struct {
    int B, H, Tq, Tk, C, D, causal;
    const int *lengths; // (B) or NULL
    real scale;
    real *P; // (B,H,Tq,Tk) attention weights, saved for backward
    // 1: P rows are zeroed up to Tk (the caller reads the weights), else up to the tile's last
    // key, all that backward reads
    int full_rows;
    // q, k, v: data and (in backward) gradients of rows of C values, ld apart (C for three
    // tensors, 3C for one packed [q k v] tensor); o (B,Tq,C).
    const real *q, *k, *v;
    real *gq, *gk, *gv;
    long ld;
    const tz_tensor *o;
    real beta_q, beta_k, beta_v; // backward: 0 overwrites a fresh gradient, 1 adds
    int tile; // query rows per tile
} fused_attn;

// Query rows per tile: fewer rows skip more of the masked triangle (about (1 + rows/T) / 2 of it
// is computed) but make smaller products that each pack K or V again: 1/4 of T in multiples of
// 8, from 16 to 64 rows. Attention alone (B 8, d_model 512, 8 heads, forward + backward, a
// throwaway harness, tiles alternating, 2026-12-03): T = 128 32 rows 6.1 ms against 16 rows
// 6.7-6.8; T = 256 64 rows 9.7-10.1 against 32 rows 10.0-10.4 (d384 likewise); T = 512 (B 4)
// 64 rows 16.9 against 32 rows 18.4 and 96 rows 17.4-17.7. (Once, at d384 and 1/8 of T,
// tiles of 16, 32 and 64 rows measured alike in the step, 45 ms of attention against 55-59 ms
// in one tile.)
// nn_attention_fused_tile forces it (tests) for the nodes the calling thread records: per thread,
// so a test's setting cannot reach a graph another thread records meanwhile. Packing K^T or V^T
// once per (batch, head) for all tiles, instead of per tile, measured no faster (d384).
static _Thread_local int forced_tile;
void nn_attention_fused_tile(int rows) { forced_tile = rows > 0 ? rows : 0; }
static int tile_rows(int Tq) {
    if (forced_tile) return forced_tile;
    int r = (Tq / 4 + 7) / 8 * 8;
    return r < 16 ? 16 : r > 64 ? 64 : r;
}

// Keys query i may see: [0, limit).
static int key_limit(const fused_attn *a, int b, int i) {
    int lim = a->Tk;
    if (a->causal) lim = i + 1 + (a->Tk - a->Tq); // queries are the last Tq of Tk positions
    if (a->lengths && a->lengths[b] < lim) lim = a->lengths[b];
    return lim;
}

// (batch, head) pairs [lo, hi).
static void forward_pairs(void *arg, long lo, long hi) {
    const fused_attn *a = arg;
    int C = a->C, D = a->D, Tq = a->Tq, Tk = a->Tk, ld = (int)a->ld;
    for (int p = (int)lo; p < hi; p++) {
        int b = p / a->H, h = p % a->H;
        const real *Q = a->q + (long)b * Tq * ld + h * D, *K = a->k + (long)b * Tk * ld + h * D;
        const real *V = a->v + (long)b * Tk * ld + h * D;
        real *S = a->P + (long)p * Tq * Tk, *O = a->o->data + (long)b * Tq * C + h * D;
        for (int i0 = 0; i0 < Tq; i0 += a->tile) {
            int m = Tq - i0 < a->tile ? Tq - i0 : a->tile, kn = key_limit(a, b, i0 + m - 1);
            real *St = S + (long)i0 * Tk;
            tz_gemm(0, 1, m, kn, D, a->scale, Q + (long)i0 * ld, ld, K, ld, 0, St, Tk);
            for (int i = 0; i < m; i++) {
                real *restrict s = St + (long)i * Tk, mx, sum;
                int lim = key_limit(a, b, i0 + i);
                TZ_LANE_MAX(mx, lim, j, s[j]);
                TZ_LANE_SUM(sum, lim, j, (s[j] = tz_fexp(s[j] - mx))); // exp and its sum in one pass
                const real inv = 1 / sum;
                for (int j = 0; j < lim; j++) s[j] *= inv;
                for (int j = lim; j < (a->full_rows ? Tk : kn); j++) s[j] = 0;
            }
            tz_gemm(0, 0, m, D, kn, 1, St, Tk, V, ld, 0, O + (long)i0 * C, C);
        }
    }
}

static void backward_pairs(void *arg, long lo, long hi) {
    const fused_attn *a = arg;
    int C = a->C, D = a->D, Tq = a->Tq, Tk = a->Tk, ld = (int)a->ld;
    // One tile of dS, written and read again at once: this thread's scratch, which its earlier
    // pairs left in its cache (one per pair in the step's arena came from memory each time: the
    // backward 1-1.5% slower, d384 and d512 attention alone, in-process A/B; and (B,H,Tq,Tk)
    // would be 12.6 MB a layer more written at d384).
    real *dS = tz_thread_scratch(1, sizeof(real) * a->tile * Tk);
    for (int p = (int)lo; p < hi; p++) {
        int b = p / a->H, h = p % a->H;
        long qo = (long)b * Tq * ld + h * D, ko = (long)b * Tk * ld + h * D, oo = (long)b * Tq * C + h * D;
        const real *Q = a->q + qo, *K = a->k + ko, *V = a->v + ko, *dO = a->o->grad + oo;
        // The last tile first: it sees the most keys, so its dK and dV products (beta as given)
        // write every key row any tile adds to; rows no query sees are zeroed when overwriting.
        for (int i0 = (Tq - 1) / a->tile * a->tile, first = 1; i0 >= 0; i0 -= a->tile, first = 0) {
            int m = Tq - i0 < a->tile ? Tq - i0 : a->tile, kn = key_limit(a, b, i0 + m - 1);
            const real *Pt = a->P + (long)p * Tq * Tk + (long)i0 * Tk, *Qt = Q + (long)i0 * ld,
                       *dOt = dO + (long)i0 * C;
            tz_gemm(0, 1, m, kn, D, 1, dOt, C, V, ld, 0, dS, Tk); // dP
            for (int i = 0; i < m; i++) {
                const real *restrict pr = Pt + (long)i * Tk;
                real *restrict d = dS + (long)i * Tk, dot;
                TZ_LANE_SUM(dot, kn, j, pr[j] * d[j]);
                for (int j = 0; j < kn; j++) d[j] = pr[j] * (d[j] - dot);
            }
            if (a->gq) tz_gemm(0, 0, m, D, kn, a->scale, dS, Tk, K, ld, a->beta_q, a->gq + qo + (long)i0 * ld, ld);
            if (a->gk) tz_gemm(1, 0, kn, D, m, a->scale, dS, Tk, Qt, ld, first ? a->beta_k : 1, a->gk + ko, ld);
            if (a->gv) tz_gemm(1, 0, kn, D, m, 1, Pt, Tk, dOt, C, first ? a->beta_v : 1, a->gv + ko, ld);
            if (first)
                for (int j = kn; j < Tk; j++) {
                    if (a->gk && a->beta_k == 0) memset(a->gk + ko + (long)j * ld, 0, sizeof(real) * D);
                    if (a->gv && a->beta_v == 0) memset(a->gv + ko + (long)j * ld, 0, sizeof(real) * D);
                }
        }
    }
}

// Work of one (batch, head) pair, for tz_parallel_for: its four or five small products.
static long pair_cost(const fused_attn *a) { return 4L * a->Tq * a->Tk * a->D; }

static void fused_backward(tz_graph *g, tz_node *n) {
    fused_attn *a = n->aux;
    a->o = n->out;
    (void)g;
    // Each (batch, head) task writes its whole block of dQ, dK and dV: fresh buffers are
    // overwritten (a packed [q k v] is one buffer whose three parts are each written whole).
    // Tiles interleave the three, so q, k, v that are one tensor are zeroed first and added to.
    a->beta_q = a->beta_k = a->beta_v = 1;
    if (n->n_in == 1) {
        tz_tensor *qkv = n->in[0];
        if (qkv->grad) {
            a->gq = qkv->grad, a->gk = qkv->grad + a->C, a->gv = qkv->grad + 2 * a->C;
            if (tz_grad_overwrite(qkv)) a->beta_q = a->beta_k = a->beta_v = 0;
        }
    } else {
        tz_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
        a->gq = q->grad, a->gk = k->grad, a->gv = v->grad;
        if (q == k || q == v || k == v) {
            for (int i = 0; i < 3; i++)
                if (n->in[i]->grad) tz_grad_accumulate(n->in[i]);
        } else {
            if (a->gq && tz_grad_overwrite(q)) a->beta_q = 0;
            if (a->gk && tz_grad_overwrite(k)) a->beta_k = 0;
            if (a->gv && tz_grad_overwrite(v)) a->beta_v = 0;
        }
    }
    tz_parallel_for((long)a->B * a->H, pair_cost(a), backward_pairs, a);
}
static const tz_op op_fused_attention = {"attention_fused", fused_backward, TZ_OVERWRITES};

// The forward shared by both entry points: in (1 packed or 3 tensors) for the tape.
static tz_tensor *fused(tz_graph *g, fused_attn a, tz_tensor **in, int n_in, const int *lengths, tz_tensor **weights) {
    if (a.causal && a.Tq > a.Tk) tz_fail("attention_fused: causal attention with %d queries over %d keys", a.Tq, a.Tk);
    for (int b = 0; lengths && b < a.B; b++)
        if (lengths[b] < 1 || lengths[b] > a.Tk)
            tz_fail("attention_fused: length %d of row %d is outside [1,%d]", lengths[b], b, a.Tk);
    tz_tensor *o = tz_op_output(g, 3, (const int[]){a.B, a.Tq, a.C}, in, n_in);
    fused_attn *s = tz_arena_alloc(&g->arena, sizeof *s);
    *s = a;
    s->o = o;
    s->scale = (real)(1 / sqrt((double)a.D));
    s->tile = a.causal || forced_tile ? tile_rows(a.Tq) : a.Tq; // without the triangle, tiles save nothing
    s->beta_q = s->beta_k = s->beta_v = 1;
    if (lengths) s->lengths = memcpy(tz_arena_alloc(&g->arena, sizeof(int) * a.B), lengths, sizeof(int) * a.B);
    s->P = tz_arena_alloc(&g->arena, sizeof(real) * a.B * a.H * a.Tq * a.Tk);
    // Without a reader of the weights, the masked keys past a tile's last key are never read:
    // not writing their zeros saves ~40% of P's stores at T = 256 (P goes out to memory).
    s->full_rows = weights != NULL;
    tz_parallel_for((long)a.B * a.H, pair_cost(s), forward_pairs, s);
    if (weights) *weights = tz_wrap(g, s->P, NULL, 4, (const int[]){a.B, a.H, a.Tq, a.Tk});
    tz_node *n = tz_op_record(g, &op_fused_attention, o, in, n_in);
    if (n) n->aux = s;
    return o;
}

tz_tensor *nn_attention_fused(tz_graph *g, tz_tensor *q, tz_tensor *k, tz_tensor *v, int heads, const int *lengths,
                              int causal, tz_tensor **weights) {
    int ok = q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && tz_same_shape(k, v) && q->shape[0] == k->shape[0] &&
             q->shape[2] == k->shape[2] && heads > 0 && q->shape[2] % heads == 0;
    if (!ok) {
        char a[64], b[64], c[64];
        tz_fail("attention_fused: q %s, k %s, v %s are not (B,Tq,C), (B,Tk,C), (B,Tk,C) with C divisible by %d heads",
                tz_shape_str(q, a), tz_shape_str(k, b), tz_shape_str(v, c), heads);
    }
    int C = q->shape[2];
    fused_attn a = {.B = q->shape[0],
                    .H = heads,
                    .Tq = q->shape[1],
                    .Tk = k->shape[1],
                    .C = C,
                    .D = C / heads,
                    .causal = causal,
                    .q = q->data,
                    .k = k->data,
                    .v = v->data,
                    .ld = C};
    tz_tensor *in[3] = {q, k, v};
    return fused(g, a, in, 3, lengths, weights);
}

tz_tensor *nn_attention_fused_qkv(tz_graph *g, tz_tensor *qkv, int heads, const int *lengths, int causal,
                                  tz_tensor **weights) {
    if (qkv->ndim != 3 || qkv->shape[2] % 3 || heads <= 0 || (qkv->shape[2] / 3) % heads) {
        char s[64];
        tz_fail("attention_fused: packed qkv %s is not (B,T,3C) with C divisible by %d heads", tz_shape_str(qkv, s),
                heads);
    }
    int C = qkv->shape[2] / 3;
    fused_attn a = {.B = qkv->shape[0],
                    .H = heads,
                    .Tq = qkv->shape[1],
                    .Tk = qkv->shape[1],
                    .C = C,
                    .D = C / heads,
                    .causal = causal,
                    .q = qkv->data,
                    .k = qkv->data + C,
                    .v = qkv->data + 2 * C,
                    .ld = 3L * C};
    tz_tensor *in[1] = {qkv};
    return fused(g, a, in, 1, lengths, weights);
}
