// gru_step.c: one GRU step (Cho et al. 2014; or PyTorch/cuDNN's form) as one node. Forward: one
// product with W_hh (Cho: U_rz, then U_n on r h), the gates, the new state. Backward, with
// d = dh', a = U_n h + b_hn (cuDNN) or r h (Cho):
//   dn = d (1 - z)(1 - n^2), dz = d (h - n) z (1 - z);
//   cuDNN: dr = dn a r (1 - r); dxg = [dr dz dn]; d(U h + b) = [dr dz dn r];
//          dh = d z + d(U h + b) W_hh
//   Cho:   d(r h) = dn U_n, dr = d(r h) h r (1 - r); dxg = [dr dz dn];
//          dh = d z + d(r h) r + [dr dz] U_rz; dU_n += dn^T (r h)
//   dW_hh += (its gate gradients)^T (its input), db_hh += their column sums.
// The rows' gates and gradients are the sequence op's (gru_rows.h), run on the cores by rows.
#include "gru_step.h"

#include <string.h>

#include "gemm.h"
#include "gru_rows.h"
#include "parallel.h"

typedef struct {
    real *gates, *aux;
    int B, H, cho;
} cell_saved; // gates [r z n] (B,3H), aux (B,H)

// What a pass over rows [lo, hi) reads and writes (forward: hh = U h + b_hh, out; backward:
// dout, the gradients, drh = d(r h) for Cho, dhp = the h-side gradient before W_hh's part).
typedef struct {
    const cell_saved *s;
    const real *x, *h, *hh, *dout, *zeros, *drh;
    real *out, *dx, *dhh, *dh, *dhp;
} cell_rows;

static void gates_rows(void *arg, long lo, long hi) {
    const cell_rows *c = arg;
    const int H = c->s->H, G = 3 * H;
    for (long b = lo; b < hi; b++) {
        real *gt = c->s->gates + b * G;
        memcpy(gt, c->x + b * G, sizeof(real) * G); // the input side, to which gru_gates_row adds U h
        gru_gates_row(H, gt, c->hh + b * G, c->h + b * H, c->s->aux + b * H, c->s->cho);
    }
}
static void state_rows(void *arg, long lo, long hi) {
    const cell_rows *c = arg;
    const int H = c->s->H, G = 3 * H;
    for (long b = lo; b < hi; b++)
        gru_state_row(H, c->s->gates + b * G, c->hh + b * G + 2 * H, c->h + b * H, c->out + b * H, c->s->cho);
}
static void grad_rows(void *arg, long lo, long hi) {
    const cell_rows *c = arg;
    const int H = c->s->H, G = 3 * H;
    for (long b = lo; b < hi; b++) {
        const real *gt = c->s->gates + b * G;
        gru_grad_row(H, gt, c->h + b * H, c->s->aux + b * H, c->dout + b * H, c->zeros + b * H, c->dh + b * H,
                     c->dx + b * G, c->dhh + b * G, c->s->cho);
        if (!c->s->cho) // Cho's dh z waits for d(r h): cho_rows
            for (int j = 0; j < H; j++) c->dhp[b * H + j] = c->dh[b * H + j] * gt[H + j];
    }
}
static void cho_rows(void *arg, long lo, long hi) {
    const cell_rows *c = arg;
    const int H = c->s->H, G = 3 * H;
    for (long b = lo; b < hi; b++)
        gru_cho_r_row(H, c->s->gates + b * G, c->h + b * H, c->drh + b * H, c->dh + b * H, c->dx + b * G,
                      c->dhh + b * G, c->dhp + b * H);
}

// Work per row for tz_parallel_for: a few exp/tanh and multiplies per element of 3H.
#define ROW_COST(H) (40L * (H))

static void cell_backward(tz_graph *g, tz_node *n) {
    tz_tensor *xg = n->in[0], *h = n->in[1], *w_hh = n->in[2], *b_hh = n->in[3];
    const cell_saved *s = n->aux;
    const int B = s->B, H = s->H, G = 3 * H, cho = s->cho;
    cell_rows c = {.s = s, .h = h->data, .dout = n->out->grad};
    c.zeros = tz_arena_calloc(&g->arena, sizeof(real) * B * H); // no dh from a next step
    c.dx = tz_arena_alloc(&g->arena, sizeof(real) * B * G);
    c.dhh = tz_arena_alloc(&g->arena, sizeof(real) * B * G);
    c.dh = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    c.dhp = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    tz_parallel_for(B, ROW_COST(H), grad_rows, &c);
    if (cho) { // d(r h) = dn U_n, then dr and dh z + d(r h) r
        real *drh = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
        tz_gemm(0, 0, B, H, H, 1, c.dhh + 2 * H, G, w_hh->data + (long)2 * H * H, H, 0, drh, H);
        c.drh = drh;
        tz_parallel_for(B, ROW_COST(H), cho_rows, &c);
    }
    if (xg->grad)
        for (long k = 0; k < (long)B * G; k++) xg->grad[k] += c.dx[k];
    if (h->grad) {
        for (long k = 0; k < (long)B * H; k++) h->grad[k] += c.dhp[k];
        tz_gemm(0, 0, B, H, cho ? 2 * H : G, 1, c.dhh, G, w_hh->data, H, 1, h->grad, H);
    }
    if (w_hh->grad) {
        tz_gemm(1, 0, cho ? 2 * H : G, H, B, 1, c.dhh, G, h->data, H, 1, w_hh->grad, H);
        if (cho) tz_gemm(1, 0, H, H, B, 1, c.dhh + 2 * H, G, s->aux, H, 1, w_hh->grad + (long)2 * H * H, H);
    }
    if (b_hh && b_hh->grad) tz_column_sums_add(b_hh->grad, c.dhh, B, G);
}
static const tz_op op_gru_cell = {"gru_cell", cell_backward, 0};

// xg (B,3H), h (B,H), w_hh (3H,H), b_hh (3H) -> (B,H)
tz_tensor *nn_gru_cell(tz_graph *g, tz_tensor *xg, tz_tensor *h, tz_tensor *w_hh, tz_tensor *b_hh, int cho) {
    char s1[64], s2[64], s3[64], s4[64] = "none";
    int B = h->ndim == 2 ? h->shape[0] : 0, H = h->ndim == 2 ? h->shape[1] : 0, G = 3 * H;
    if (!B || xg->ndim != 2 || xg->shape[0] != B || xg->shape[1] != G || w_hh->ndim != 2 || w_hh->shape[0] != G ||
        w_hh->shape[1] != H || (b_hh && (b_hh->ndim != 1 || b_hh->shape[0] != G)))
        tz_fail("gru cell: xg %s, h %s, w_hh %s, b_hh %s do not fit (B,3H), (B,H), (3H,H), (3H)", tz_shape_str(xg, s1),
                tz_shape_str(h, s2), tz_shape_str(w_hh, s3), b_hh ? tz_shape_str(b_hh, s4) : s4);
    tz_tensor *in[4] = {xg, h, w_hh, b_hh};
    tz_tensor *out = tz_op_output(g, 2, (const int[]){B, H}, in, 4);
    cell_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    *s = (cell_saved){.B = B, .H = H, .cho = !!cho};
    s->gates = tz_arena_alloc(&g->arena, sizeof(real) * B * G);
    s->aux = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    real *hh = tz_arena_alloc(&g->arena, sizeof(real) * B * G); // U h + b_hh
    const real *bias = b_hh ? b_hh->data : NULL;
    tz_gemm_bias(0, 1, B, cho ? 2 * H : G, H, 1, h->data, H, w_hh->data, H, 0, hh, G, bias);
    cell_rows c = {.s = s, .x = xg->data, .h = h->data, .hh = hh, .out = out->data};
    tz_parallel_for(B, ROW_COST(H), gates_rows, &c);
    if (cho)
        tz_gemm_bias(0, 1, B, H, H, 1, s->aux, H, w_hh->data + (long)2 * H * H, H, 0, hh + 2 * H, G,
                     bias ? bias + 2 * H : NULL);
    tz_parallel_for(B, ROW_COST(H), state_rows, &c);
    tz_node *n = tz_op_record(g, &op_gru_cell, out, in, 4);
    if (n) n->aux = s;
    return out;
}
