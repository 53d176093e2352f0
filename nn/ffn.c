// ffn.c: ReLU/GELU and SwiGLU feed-forward blocks, and the SiLU op SwiGLU gates with.
#include "ffn.h"

#include "fastmath.h"
#include "gemm.h"
#include "parallel.h"

#include <stdio.h>
#include <string.h>

static void silu_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    for (int i = 0; i < x->n; i++) {
        real s = tz_fsigmoid(x->data[i]); // recomputed, not stored: one exp per element is cheaper than a buffer
        x->grad[i] += y->grad[i] * s * (1 + x->data[i] * (1 - s));
    }
}
static const tz_op op_silu = {"silu", silu_backward, 0};

// x (..) -> (..)
tz_tensor *tz_silu(tz_graph *g, tz_tensor *x) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    for (int i = 0; i < x->n; i++) y->data[i] = x->data[i] * tz_fsigmoid(x->data[i]);
    tz_op_record(g, &op_silu, y, in, 1);
    return y;
}

// The GELU block as one tape node (as llm.c writes its layers): y = gelu(x W1^T + b1) W2^T + b2.
// GELU runs in the first product's epilogue and its derivative in the epilogue of the backward
// product that makes dH, so neither the pre-activation nor dH is ever a tensor of its own: two
// passes over (rows, d_ff) less each way, and 2 (rows, d_ff) buffers less per block.
//   forward:  H = gelu(U), G = gelu'(U), U = x W1^T + b1;  y = H W2^T + b2
//   backward: dW2 = dy^T H, db2 = colsum(dy), dU = (dy W2) * G (into H's buffer, dead by then:
//             one backward per tape, as everywhere in the engine), dW1 = dU^T x, db1 =
//             colsum(dU), dx = dU W1
typedef struct {
    real *H, *G; // (R, F), rows ld apart: the hidden activations and GELU's derivative
    int R, D, F, ld;
} ffn_saved;

// H's and G's row stride: F, or a cache line more when F is a multiple of 1024 floats. Rows
// 4 KB apart all fall in one set of the L1 cache, so gemm copies such an A before reading it
// (rows_alias): at d_ff 2048 that copied H, and dU in the backward, every step (16 MB each a
// layer at d512, 1.6% of the step's samples in perf) instead of reading them in place.
static int hidden_ld(int F) { return F % 1024 == 0 ? F + 16 : F; }

static void ffn_gelu_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *w1 = n->in[1], *b1 = n->in[2], *w2 = n->in[3], *b2 = n->in[4];
    tz_tensor *r = n->n_in > 5 ? n->in[5] : NULL;
    const ffn_saved *s = n->aux;
    const int R = s->R, D = s->D, F = s->F, ld = s->ld;
    const real *dy = n->out->grad;
    if (r && r->grad) tz_parallel_add(r->grad, dy, r->n, tz_grad_overwrite(r));
    if (w2->grad) tz_gemm(1, 0, D, F, R, 1, dy, D, s->H, ld, tz_grad_overwrite(w2) ? 0 : 1, w2->grad, F);
    if (b2 && b2->grad) tz_column_sums_add(tz_grad_accumulate(b2), dy, R, D);
    if (!x->grad && !w1->grad && !(b1 && b1->grad)) return;
    real *dU = s->H;
    tz_gemm_epi(0, 0, R, F, D, 1, dy, D, w2->data, F, 0, dU, ld, NULL, TZ_EPI_MUL, s->G, ld);
    if (w1->grad) tz_gemm(1, 0, F, D, R, 1, dU, ld, x->data, D, tz_grad_overwrite(w1) ? 0 : 1, w1->grad, D);
    if (b1 && b1->grad) tz_column_sums_add_ld(tz_grad_accumulate(b1), dU, R, F, ld);
    if (x->grad) tz_gemm(0, 0, R, D, F, 1, dU, ld, w1->data, D, tz_grad_overwrite(x) ? 0 : 1, x->grad, D);
}
static const tz_op op_ffn_gelu = {"ffn_gelu", ffn_gelu_backward, TZ_OVERWRITES | TZ_OUT_UNREAD};

// x (.., D), w1 (F, D), b1 (F) or NULL, w2 (D, F), b2 (D) or NULL, r (.., D) or NULL -> (.., D);
// r, a residual, is added in the second product's epilogue (r + the block, one pass less).
static tz_tensor *ffn_gelu_fused(tz_graph *g, tz_tensor *x, tz_tensor *w1, tz_tensor *b1, tz_tensor *w2, tz_tensor *b2,
                                 tz_tensor *r) {
    const int D = w1->shape[1], F = w1->shape[0], R = x->n / D, ld = hidden_ld(F);
    tz_tensor *in[6] = {x, w1, b1, w2, b2, r};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, r ? 6 : 5);
    ffn_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    *s = (ffn_saved){tz_arena_alloc(&g->arena, sizeof(real) * (size_t)R * ld),
                     y->requires_grad ? tz_arena_alloc(&g->arena, sizeof(real) * (size_t)R * ld) : NULL,
                     R,
                     D,
                     F,
                     ld};
    tz_gemm_epi(0, 1, R, F, D, 1, x->data, D, w1->data, D, 0, s->H, ld, b1 ? b1->data : NULL, TZ_EPI_GELU, s->G, ld);
    tz_gemm_epi(0, 1, R, D, F, 1, s->H, ld, w2->data, F, 0, y->data, D, b2 ? b2->data : NULL,
                r ? TZ_EPI_ADD : TZ_EPI_NONE, r ? r->data : NULL, D);
    tz_node *n = tz_op_record(g, &op_ffn_gelu, y, in, r ? 6 : 5);
    if (n) n->aux = s;
    return y;
}

int nn_ffn_parse(const char *name, nn_ffn_kind *kind) {
    static const char *const names[] = {"relu", "gelu", "swiglu"};
    for (int k = 0; name && k < 3; k++)
        if (!strcmp(name, names[k])) {
            *kind = (nn_ffn_kind)k;
            return 1;
        }
    return 0;
}

void nn_ffn_init(nn_ffn *f, tz_params *P, const char *name, nn_ffn_kind kind, int d_model, int d_ff, int bias,
                 nn_init init, tz_rng *r) {
    if (d_model <= 0 || d_ff <= 0 || (unsigned)kind > NN_FFN_SWIGLU)
        tz_fail("ffn '%s': d_model = %d, d_ff = %d must be > 0, kind %d", name, d_model, d_ff, (int)kind);
    char key[256];
    memset(f, 0, sizeof *f);
    f->kind = kind, f->d_model = d_model, f->d_ff = d_ff;
    snprintf(key, sizeof key, "%s.w1", name);
    nn_linear_init(&f->w1, P, key, d_model, d_ff, bias, init, r);
    snprintf(key, sizeof key, "%s.w2", name);
    nn_linear_init(&f->w2, P, key, d_ff, d_model, bias, init, r);
    if (kind == NN_FFN_SWIGLU) {
        snprintf(key, sizeof key, "%s.w3", name);
        nn_linear_init(&f->w3, P, key, d_model, d_ff, bias, init, r);
    }
}

// x (.., d_model) -> (.., d_model); hidden (.., d_ff)
tz_tensor *nn_ffn_forward(tz_graph *g, const nn_ffn *f, tz_tensor *x) { return nn_ffn_forward_add(g, f, x, NULL); }

tz_tensor *nn_ffn_forward_add(tz_graph *g, const nn_ffn *f, tz_tensor *x, tz_tensor *r) {
    if (x->shape[x->ndim - 1] != f->d_model) {
        char s[64];
        tz_fail("ffn: input %s does not end in d_model %d", tz_shape_str(x, s), f->d_model);
    }
    if (r && !tz_same_shape(r, x)) {
        char a[64], b[64];
        tz_fail("ffn: residual %s does not fit input %s", tz_shape_str(r, a), tz_shape_str(x, b));
    }
    // Without dropout between them, GELU and the two products are one node (above).
    if (f->kind == NN_FFN_GELU && f->dropout <= 0) return ffn_gelu_fused(g, x, f->w1.w, f->w1.b, f->w2.w, f->w2.b, r);
    tz_tensor *h = nn_linear_forward(g, &f->w1, x);
    switch (f->kind) {
        case NN_FFN_RELU: h = tz_relu(g, h); break;
        case NN_FFN_GELU: h = tz_gelu(g, h); break;
        case NN_FFN_SWIGLU: h = tz_mul(g, tz_silu(g, h), nn_linear_forward(g, &f->w3, x)); break;
    }
    if (f->dropout > 0) h = tz_dropout(g, h, f->dropout);
    return tz_linear_add(g, h, f->w2.w, f->w2.b, r);
}
