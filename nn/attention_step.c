// attention_step.c: Bahdanau et al. 2015 (appendix A.1.2) additive attention for one decoder
// step as one node. Forward saves u = tanh(ws + keys_j) (B,S,A) and the weights a (B,S).
// Both passes run on the cores by rows; rows meet only in dv, summed from per-row shares in row
// order (the same bits whatever the thread count). Backward, per row b:
//   da_j = dc . h_j,  dh_j += a_j dc,  de_j = a_j (da_j - sum_k a_k da_k),
//   du_j = de_j v * (1 - u_j^2),  dkeys_j += du_j,  dws += sum_j du_j,  dv += sum_j de_j u_j.
#include "attention_step.h"

#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "parallel.h"

typedef struct {
    real *u, *a; // (B,S,A) tanh(ws + keys), (B,S) weights
    int *len; // (B) keys per row
    int B, S, A, C;
} step_saved;

// Work per row for tz_parallel_for: a tanh and a few multiply-adds per key and feature.
static long row_cost(const step_saved *s) { return (long)s->S * (s->A + s->C) * 4; }

// x . y with independent partial sums, so the compiler vectorises it without reassociating.
static real dot(int n, const real *restrict x, const real *restrict y) {
    real p[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int i = 0; i < 8; i++) p[i] += x[k + i] * y[k + i];
    for (; k < n; k++) p[0] += x[k] * y[k];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}
static void axpy(int n, real a, const real *restrict x, real *restrict y) {
    for (int k = 0; k < n; k++) y[k] += a * x[k];
}
// du = de v (1 - u^2)
static void tanh_grad(int n, real de, const real *restrict v, const real *restrict u, real *restrict du) {
    for (int k = 0; k < n; k++) du[k] = de * v[k] * (1 - u[k] * u[k]);
}

typedef struct {
    const step_saved *s;
    tz_tensor *ws, *keys, *v, *h;
    const real *dc;
    real *de, *du, *dv; // (B,S) scratch, (B,A) scratch, (B,A) each row's share of dv
} step_grads;

// Rows [lo, hi) of the backward; each writes only its own rows of dh, dkeys, dws and dv.
static void backward_rows(void *arg, long lo, long hi) {
    const step_grads *k = arg;
    const step_saved *s = k->s;
    const int S = s->S, A = s->A, C = s->C;
    for (long b = lo; b < hi; b++) {
        int L = s->len[b];
        const real *a = s->a + b * S, *dcb = k->dc + b * C;
        real *de = k->de + b * S, *du = k->du + b * A, *dv = k->dv ? k->dv + b * A : NULL, sum = 0;
        for (int j = 0; j < L; j++) {
            long row = b * S + j;
            de[j] = dot(C, dcb, k->h->data + row * C); // da_j
            sum += a[j] * de[j];
            if (k->h->grad) axpy(C, a[j], dcb, k->h->grad + row * C);
        }
        if (dv) memset(dv, 0, sizeof(real) * A);
        for (int j = 0; j < L; j++) {
            long row = b * S + j;
            const real *u = s->u + row * A;
            real dej = a[j] * (de[j] - sum);
            tanh_grad(A, dej, k->v->data, u, du);
            if (dv) axpy(A, dej, u, dv);
            if (k->keys->grad) axpy(A, 1, du, k->keys->grad + row * A);
            if (k->ws->grad) axpy(A, 1, du, k->ws->grad + b * A);
        }
    }
}

static void step_backward(tz_graph *g, tz_node *n) {
    const step_saved *s = n->aux;
    const int B = s->B, S = s->S, A = s->A;
    step_grads k = {.s = s, .ws = n->in[0], .keys = n->in[1], .v = n->in[2], .h = n->in[3], .dc = n->out->grad};
    k.de = tz_arena_alloc(&g->arena, sizeof(real) * B * S);
    k.du = tz_arena_alloc(&g->arena, sizeof(real) * B * A);
    k.dv = k.v->grad ? tz_arena_alloc(&g->arena, sizeof(real) * B * A) : NULL;
    tz_parallel_for(B, row_cost(s), backward_rows, &k);
    if (k.dv) tz_column_sums_add(k.v->grad, k.dv, B, A);
}
static const tz_op op_attention_step = {"additive_attention_step", step_backward, 0};

typedef struct {
    step_saved *s;
    const tz_tensor *ws, *keys, *v, *h;
    real *c;
} step_inputs;

// Rows [lo, hi) of the forward: scores, weights and context of each row on its own.
static void forward_rows(void *arg, long lo, long hi) {
    const step_inputs *k = arg;
    step_saved *s = k->s;
    const int S = s->S, A = s->A, C = s->C;
    for (long b = lo; b < hi; b++) {
        int L = s->len[b];
        real *a = s->a + b * S, *c = k->c + b * C, mx = -INFINITY;
        const real *wb = k->ws->data + b * A, *v = k->v->data;
        for (int j = 0; j < L; j++) {
            real *u = s->u + (b * S + j) * A;
            const real *kj = k->keys->data + (b * S + j) * A;
            real e = 0;
            for (int i = 0; i < A; i++) u[i] = tz_ftanh(wb[i] + kj[i]), e += v[i] * u[i];
            a[j] = e;
            if (e > mx) mx = e;
        }
        double sum = 0;
        for (int j = 0; j < L; j++) a[j] = (real)exp((double)(a[j] - mx)), sum += a[j];
        for (int j = 0; j < L; j++) a[j] = (real)(a[j] / sum);
        memset(c, 0, sizeof(real) * C);
        for (int j = 0; j < L; j++) {
            const real *hj = k->h->data + (b * S + j) * C;
            for (int i = 0; i < C; i++) c[i] += a[j] * hj[i];
        }
    }
}

// ws (B,A), keys (B,S,A), v (A), h (B,S,C) -> (B,C)
tz_tensor *nn_additive_attention_step(tz_graph *g, tz_tensor *ws, tz_tensor *keys, tz_tensor *v, tz_tensor *h,
                                      const int *lengths, tz_tensor **weights) {
    char s1[64], s2[64], s3[64], s4[64];
    int ok = ws->ndim == 2 && keys->ndim == 3 && h->ndim == 3;
    int B = ok ? ws->shape[0] : 0, A = ok ? ws->shape[1] : 0, S = ok ? keys->shape[1] : 0;
    ok = ok && keys->shape[0] == B && keys->shape[2] == A && v->n == A && tz_cols(v) == A && h->shape[0] == B &&
         h->shape[1] == S;
    if (!ok)
        tz_fail("additive attention step: ws %s, keys %s, v %s, h %s do not fit (B,A), (B,S,A), (A), (B,S,C)",
                tz_shape_str(ws, s1), tz_shape_str(keys, s2), tz_shape_str(v, s3), tz_shape_str(h, s4));
    int C = h->shape[2];
    for (int b = 0; lengths && b < B; b++)
        if (lengths[b] < 1 || lengths[b] > S)
            tz_fail("additive attention step: lengths[%d] = %d outside [1, %d]", b, lengths[b], S);
    tz_tensor *in[4] = {ws, keys, v, h};
    tz_tensor *out = tz_op_output(g, 2, (const int[]){B, C}, in, 4);
    step_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    *s = (step_saved){.B = B, .S = S, .A = A, .C = C};
    s->u = tz_arena_alloc(&g->arena, sizeof(real) * B * S * A);
    tz_tensor *w = tz_zeros(g, 2, (const int[]){B, S}); // padded keys keep weight 0
    s->a = w->data;
    s->len = tz_arena_alloc(&g->arena, sizeof(int) * B);
    for (int b = 0; b < B; b++) s->len[b] = lengths ? lengths[b] : S;
    step_inputs k = {s, ws, keys, v, h, out->data};
    tz_parallel_for(B, row_cost(s), forward_rows, &k);
    if (weights) *weights = w;
    tz_node *n = tz_op_record(g, &op_attention_step, out, in, 4);
    if (n) n->aux = s;
    return out;
}
