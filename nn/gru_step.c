// gru_step.c: one GRU step (Cho et al. 2014; or PyTorch/cuDNN's form) as one node. Forward: one
// product with W_hh (Cho: U_rz, then U_n on r h), the gates, the new state. Backward, with
// d = dh', a = U_n h + b_hn (cuDNN) or r h (Cho):
//   dn = d (1 - z)(1 - n^2), dz = d (h - n) z (1 - z);
//   cuDNN: dr = dn a r (1 - r); dxg = [dr dz dn]; d(U h + b) = [dr dz dn r];
//          dh = d z + d(U h + b) W_hh
//   Cho:   d(r h) = dn U_n, dr = d(r h) h r (1 - r); dxg = [dr dz dn];
//          dh = d z + d(r h) r + [dr dz] U_rz; dU_n += dn^T (r h)
//   dW_hh += (its gate gradients)^T (its input), db_hh += their column sums.
#include "gru_step.h"

#include <string.h>

#include "fastmath.h"
#include "gemm.h"
#include "parallel.h"

typedef struct {
    real *gates, *aux;
    int B, H, cho;
} cell_saved; // gates [r z n] (B,3H), aux (B,H)

static void cell_backward(tz_graph *g, tz_node *n) {
    tz_tensor *xg = n->in[0], *h = n->in[1], *w_hh = n->in[2], *b_hh = n->in[3];
    const cell_saved *s = n->aux;
    const int B = s->B, H = s->H, G = 3 * H, cho = s->cho;
    const real *dout = n->out->grad;
    real *dx = tz_arena_alloc(&g->arena, sizeof(real) * B * G), *dhh = tz_arena_alloc(&g->arena, sizeof(real) * B * G);
    for (int b = 0; b < B; b++) {
        const real *gt = s->gates + (long)b * G, *hp = h->data + (long)b * H, *a = s->aux + (long)b * H,
                   *d = dout + (long)b * H;
        real *x = dx + (long)b * G, *u = dhh + (long)b * G;
        for (int j = 0; j < H; j++) {
            real r = gt[j], z = gt[H + j], nn = gt[2 * H + j];
            real dn = d[j] * (1 - z) * (1 - nn * nn), dz = d[j] * (hp[j] - nn) * z * (1 - z);
            x[H + j] = u[H + j] = dz;
            x[2 * H + j] = dn;
            if (!cho) {
                real dr = dn * a[j] * r * (1 - r);
                x[j] = u[j] = dr;
                u[2 * H + j] = dn * r;
            } else {
                u[2 * H + j] = dn;
            }
        }
    }
    real *drh = NULL;
    if (cho) { // d(r h) = dn U_n, then dr
        drh = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
        tz_gemm(0, 0, B, H, H, 1, dhh + 2 * H, G, w_hh->data + (long)2 * H * H, H, 0, drh, H);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++) {
                real r = s->gates[(long)b * G + j], dr = drh[(long)b * H + j] * h->data[(long)b * H + j] * r * (1 - r);
                dx[(long)b * G + j] = dhh[(long)b * G + j] = dr;
            }
    }
    if (xg->grad)
        for (long k = 0; k < (long)B * G; k++) xg->grad[k] += dx[k];
    if (h->grad) {
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++) {
                long k = (long)b * H + j;
                h->grad[k] += dout[k] * s->gates[(long)b * G + H + j] + (cho ? drh[k] * s->gates[(long)b * G + j] : 0);
            }
        tz_gemm(0, 0, B, H, cho ? 2 * H : G, 1, dhh, G, w_hh->data, H, 1, h->grad, H);
    }
    if (w_hh->grad) {
        tz_gemm(1, 0, cho ? 2 * H : G, H, B, 1, dhh, G, h->data, H, 1, w_hh->grad, H);
        if (cho) tz_gemm(1, 0, H, H, B, 1, dhh + 2 * H, G, s->aux, H, 1, w_hh->grad + (long)2 * H * H, H);
    }
    if (b_hh && b_hh->grad) tz_column_sums_add(b_hh->grad, dhh, B, G);
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
    for (int b = 0; b < B; b++) {
        real *gt = s->gates + (long)b * G, *u = hh + (long)b * G, *a = s->aux + (long)b * H;
        const real *x = xg->data + (long)b * G, *hp = h->data + (long)b * H;
        for (int j = 0; j < 2 * H; j++) gt[j] = tz_fsigmoid(x[j] + u[j]);
        for (int j = 0; j < H; j++) a[j] = cho ? gt[j] * hp[j] : u[2 * H + j];
    }
    if (cho)
        tz_gemm_bias(0, 1, B, H, H, 1, s->aux, H, w_hh->data + (long)2 * H * H, H, 0, hh + 2 * H, G,
                     bias ? bias + 2 * H : NULL);
    for (int b = 0; b < B; b++) {
        real *gt = s->gates + (long)b * G, *o = out->data + (long)b * H;
        const real *x = xg->data + (long)b * G, *u = hh + (long)b * G, *hp = h->data + (long)b * H;
        for (int j = 0; j < H; j++) {
            real z = gt[H + j], nn = tz_ftanh(x[2 * H + j] + (cho ? u[2 * H + j] : gt[j] * u[2 * H + j]));
            gt[2 * H + j] = nn;
            o[j] = (1 - z) * nn + z * hp[j];
        }
    }
    tz_node *n = tz_op_record(g, &op_gru_cell, out, in, 4);
    if (n) n->aux = s;
    return out;
}
