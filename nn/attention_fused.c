// attention_fused.c: multi-head scaled dot-product attention (Vaswani et al. 2017, 3.2) as one
// tape node, reading the heads straight out of the (B,T,C) projections: no head split/merge
// copies, no mask tensors, masked weights never computed. (Batch, head) pairs are shared out
// over the thread pool (tz_parallel_for); their small products run single-threaded. Same function as
// nn_sdpa over split heads with causal/padding masks (tested), gradient-checked in float64.
//   forward:  S = Q K^T / sqrt(D), P = softmax over the allowed keys (0 elsewhere), O = P V
//   backward: dP = dO V^T, dS = P (dP - rowsum(P dP)), dQ = dS K / sqrt(D), dK = dS^T Q / sqrt(D),
//             dV = P^T dO
#include <math.h>
#include <string.h>

#include "attention.h"
#include "fastmath.h"
#include "gemm.h"
#include "lanes.h"
#include "parallel.h"

#ifdef TZ_DOUBLE
#define gemm tz_dgemm
#else
#define gemm tz_sgemm
#endif

typedef struct {
    int B, H, Tq, Tk, C, D, causal;
    const int *lengths; // (B) or NULL
    real scale;
    real *P;            // (B,H,Tq,Tk) attention weights, saved for backward
    real *dP;           // backward scratch, same shape
    const tz_tensor *q, *k, *v, *o;
    real beta_q, beta_k, beta_v; // backward: 0 overwrites a fresh gradient, 1 adds
} fused_attn;

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
    int C = a->C, D = a->D, Tq = a->Tq, Tk = a->Tk;
    for (int p = (int)lo; p < hi; p++) {
        int b = p / a->H, h = p % a->H;
        const real *Q = a->q->data + (long)b * Tq * C + h * D, *K = a->k->data + (long)b * Tk * C + h * D;
        const real *V = a->v->data + (long)b * Tk * C + h * D;
        real *S = a->P + (long)p * Tq * Tk, *O = a->o->data + (long)b * Tq * C + h * D;
        gemm(0, 1, Tq, Tk, D, a->scale, Q, C, K, C, 0, S, Tk);
        for (int i = 0; i < Tq; i++) {
            real *restrict s = S + (long)i * Tk, mx, sum;
            int lim = key_limit(a, b, i);
            TZ_LANE_MAX(mx, lim, j, s[j]);
            for (int j = 0; j < lim; j++) s[j] = tz_fexp(s[j] - mx);
            TZ_LANE_SUM(sum, lim, j, s[j]);
            for (int j = 0; j < lim; j++) s[j] /= sum;
            for (int j = lim; j < Tk; j++) s[j] = 0;
        }
        gemm(0, 0, Tq, D, Tk, 1, S, Tk, V, C, 0, O, C);
    }
}

static void backward_pairs(void *arg, long lo, long hi) {
    const fused_attn *a = arg;
    int C = a->C, D = a->D, Tq = a->Tq, Tk = a->Tk;
    for (int p = (int)lo; p < hi; p++) {
        int b = p / a->H, h = p % a->H;
        long qo = (long)b * Tq * C + h * D, ko = (long)b * Tk * C + h * D;
        const real *Q = a->q->data + qo, *K = a->k->data + ko, *V = a->v->data + ko, *dO = a->o->grad + qo;
        const real *P = a->P + (long)p * Tq * Tk;
        real *dS = a->dP + (long)p * Tq * Tk;
        gemm(0, 1, Tq, Tk, D, 1, dO, C, V, C, 0, dS, Tk); // dP
        for (int i = 0; i < Tq; i++) {
            const real *restrict pr = P + (long)i * Tk;
            real *restrict d = dS + (long)i * Tk, dot;
            TZ_LANE_SUM(dot, Tk, j, pr[j] * d[j]);
            for (int j = 0; j < Tk; j++) d[j] = pr[j] * (d[j] - dot);
        }
        if (a->q->grad) gemm(0, 0, Tq, D, Tk, a->scale, dS, Tk, K, C, a->beta_q, a->q->grad + qo, C);
        if (a->k->grad) gemm(1, 0, Tk, D, Tq, a->scale, dS, Tk, Q, C, a->beta_k, a->k->grad + ko, C);
        if (a->v->grad) gemm(1, 0, Tk, D, Tq, 1, P, Tk, dO, C, a->beta_v, a->v->grad + ko, C);
    }
}

// Work of one (batch, head) pair, for tz_parallel_for: its four or five small products.
static long pair_cost(const fused_attn *a) { return 4L * a->Tq * a->Tk * a->D; }

static void fused_backward(tz_graph *g, tz_node *n) {
    fused_attn *a = n->aux;
    a->o = n->out;
    a->dP = tz_arena_alloc(&g->arena, sizeof(real) * a->B * a->H * a->Tq * a->Tk);
    // Each (batch, head) task writes its whole block of dQ, dK and dV, in that order: fresh
    // buffers are overwritten (q, k, v may be one tensor: only its first product overwrites).
    a->beta_q = a->beta_k = a->beta_v = 1;
    if (a->q->grad && tz_grad_overwrite(n->in[0])) a->beta_q = 0;
    if (a->k->grad && tz_grad_overwrite(n->in[1])) a->beta_k = 0;
    if (a->v->grad && tz_grad_overwrite(n->in[2])) a->beta_v = 0;
    tz_parallel_for((long)a->B * a->H, pair_cost(a), backward_pairs, a);
}
static const tz_op op_fused_attention = {"attention_fused", fused_backward, 1};

tz_tensor *nn_attention_fused(tz_graph *g, tz_tensor *q, tz_tensor *k, tz_tensor *v, int heads, const int *lengths,
                              int causal, tz_tensor **weights) {
    int ok = q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && tz_same_shape(k, v) && q->shape[0] == k->shape[0] &&
             q->shape[2] == k->shape[2] && heads > 0 && q->shape[2] % heads == 0;
    if (!ok) {
        char a[64], b[64], c[64];
        tz_fail("attention_fused: q %s, k %s, v %s are not (B,Tq,C), (B,Tk,C), (B,Tk,C) with C divisible by %d heads",
                tz_shape_str(q, a), tz_shape_str(k, b), tz_shape_str(v, c), heads);
    }
    int B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], C = q->shape[2];
    if (causal && Tq > Tk) tz_fail("attention_fused: causal attention with %d queries over %d keys", Tq, Tk);
    for (int b = 0; lengths && b < B; b++)
        if (lengths[b] < 1 || lengths[b] > Tk) tz_fail("attention_fused: length %d of row %d is outside [1,%d]", lengths[b], b, Tk);
    tz_tensor *in[3] = {q, k, v};
    tz_tensor *o = tz_op_output(g, 3, q->shape, in, 3);
    fused_attn *a = tz_arena_alloc(&g->arena, sizeof *a);
    *a = (fused_attn){B, heads, Tq, Tk, C, C / heads, causal, NULL, (real)(1 / sqrt((double)(C / heads))), NULL, NULL, q, k, v, o, 1, 1, 1};
    if (lengths) a->lengths = memcpy(tz_arena_alloc(&g->arena, sizeof(int) * B), lengths, sizeof(int) * B);
    a->P = tz_arena_alloc(&g->arena, sizeof(real) * B * heads * Tq * Tk);
    tz_parallel_for((long)B * heads, pair_cost(a), forward_pairs, a);
    if (weights) *weights = tz_wrap(g, a->P, NULL, 4, (const int[]){B, heads, Tq, Tk});
    tz_node *n = tz_op_record(g, &op_fused_attention, o, in, 3);
    if (n) n->aux = a;
    return o;
}
