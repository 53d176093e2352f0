// attention_step.c: Bahdanau et al. 2015 (appendix A.1.2) additive attention for one decoder
// step as one node. Forward saves u = tanh(ws + keys_j) (B,S,A) and the weights a (B,S);
// backward, per row b (rows never meet):
//   da_j = dc . h_j,  dh_j += a_j dc,  de_j = a_j (da_j - sum_k a_k da_k),
//   du_j = de_j v * (1 - u_j^2),  dkeys_j += du_j,  dws += sum_j du_j,  dv += sum_j de_j u_j.
#include "attention_step.h"

#include <math.h>
#include <string.h>

#include "fastmath.h"

typedef struct {
    real *u, *a; // (B,S,A) tanh(ws + keys), (B,S) weights
    int *len; // (B) keys per row
    int B, S, A, C;
} step_saved;

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

static void step_backward(tz_graph *g, tz_node *n) {
    tz_tensor *ws = n->in[0], *keys = n->in[1], *v = n->in[2], *h = n->in[3];
    const step_saved *s = n->aux;
    const int S = s->S, A = s->A, C = s->C;
    const real *dc = n->out->grad;
    real *de = tz_arena_alloc(&g->arena, sizeof(real) * S), *du = tz_arena_alloc(&g->arena, sizeof(real) * A);
    for (int b = 0; b < s->B; b++) {
        int L = s->len[b];
        const real *a = s->a + (long)b * S, *dcb = dc + (long)b * C;
        real sum = 0;
        for (int j = 0; j < L; j++) {
            long row = (long)b * S + j;
            de[j] = dot(C, dcb, h->data + row * C); // da_j
            sum += a[j] * de[j];
            if (h->grad) axpy(C, a[j], dcb, h->grad + row * C);
        }
        for (int j = 0; j < L; j++) {
            long row = (long)b * S + j;
            const real *u = s->u + row * A;
            real dej = a[j] * (de[j] - sum);
            tanh_grad(A, dej, v->data, u, du);
            if (v->grad) axpy(A, dej, u, v->grad);
            if (keys->grad) axpy(A, 1, du, keys->grad + row * A);
            if (ws->grad) axpy(A, 1, du, ws->grad + (long)b * A);
        }
    }
}
static const tz_op op_attention_step = {"additive_attention_step", step_backward, 0};

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
    for (int b = 0; b < B; b++) {
        int L = s->len[b] = lengths ? lengths[b] : S;
        real *a = s->a + (long)b * S, *c = out->data + (long)b * C, mx = -INFINITY;
        const real *wb = ws->data + (long)b * A;
        for (int j = 0; j < L; j++) {
            real *u = s->u + ((long)b * S + j) * A;
            const real *kj = keys->data + ((long)b * S + j) * A;
            real e = 0;
            for (int k = 0; k < A; k++) u[k] = tz_ftanh(wb[k] + kj[k]), e += v->data[k] * u[k];
            a[j] = e;
            if (e > mx) mx = e;
        }
        double sum = 0;
        for (int j = 0; j < L; j++) a[j] = (real)exp((double)(a[j] - mx)), sum += a[j];
        for (int j = 0; j < L; j++) a[j] = (real)(a[j] / sum);
        memset(c, 0, sizeof(real) * C);
        for (int j = 0; j < L; j++) {
            const real *hj = h->data + ((long)b * S + j) * C;
            for (int k = 0; k < C; k++) c[k] += a[j] * hj[k];
        }
    }
    if (weights) *weights = w;
    tz_node *n = tz_op_record(g, &op_attention_step, out, in, 4);
    if (n) n->aux = s;
    return out;
}
