// gru.c: a whole GRU sequence (one layer, one direction) as one tape node, in the PyTorch/cuDNN
// form or Cho et al. 2014's (equations in recurrent.h). The two differ only in where r acts:
// on U_n h + b_hn (cuDNN) or on h before U_n (Cho).
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "gemm.h"
#include "recurrent.h"

#ifdef TZ_DOUBLE
#define gemm tz_dgemm
#else
#define gemm tz_sgemm
#endif

// Backward of one row at one step: dh = dout + dh_next; the gradients of z and n's
// pre-activations into dx = d[x-side r z n] and dhh = d[U h-side r z n]; cuDNN's r too (Cho's r
// waits for d(r h), gru_cho_r_row). a is the saved hn (cuDNN) or r h (Cho).
static void gru_grad_row(int H, const real *restrict gates, const real *restrict hp, const real *restrict a,
                         const real *restrict dout, const real *restrict dh_next, real *restrict dh,
                         real *restrict dx, real *restrict dhh, int cho) {
    const real *gr = gates, *gz = gates + H, *gn = gates + 2 * H;
    for (int j = 0; j < H; j++) {
        real r = gr[j], z = gz[j], n = gn[j], d = dout[j] + dh_next[j];
        real dn = d * (1 - z) * (1 - n * n), dz = d * (hp[j] - n) * z * (1 - z);
        dh[j] = d;
        dx[H + j] = dhh[H + j] = dz;
        dx[2 * H + j] = dn;
        if (!cho) { // r scales hn: dr = dn hn, and U_n h + b_hn receives dn r
            real dr = dn * a[j] * r * (1 - r);
            dx[j] = dhh[j] = dr;
            dhh[2 * H + j] = dn * r;
        } else {
            dhh[2 * H + j] = dn;
        }
    }
}

// Cho's r: dr = d(r h) h; dh_{t-1} starts as dh z + d(r h) r (the U_rz part is added by gemm).
static void gru_cho_r_row(int H, const real *restrict gates, const real *restrict hp, const real *restrict drh,
                          const real *restrict dh, real *restrict dx, real *restrict dhh, real *restrict dh_next) {
    for (int j = 0; j < H; j++) {
        real r = gates[j], z = gates[H + j];
        dx[j] = dhh[j] = drh[j] * hp[j] * r * (1 - r);
        dh_next[j] = dh[j] * z + drh[j] * r;
    }
}

// Saved (arena): activated gates r,z,n (T,B,3H) and, per step, hn = U_n h + b_hn (cuDNN form) or
// rh = r h (Cho form) (T,B,H).
typedef struct { real *gates, *aux; seq_dims d; int cho, reverse; } gru_saved;

static void gru_backward(tz_graph *g, tz_node *n) {
    tz_tensor *x = n->in[0], *h0 = n->in[1], *w_ih = n->in[2], *w_hh = n->in[3];
    tz_tensor *b_ih = n->in[4], *b_hh = n->in[5], *out = n->out;
    gru_saved *s = n->aux;
    seq_dims d = s->d;
    int T = d.T, B = d.B, H = d.H, G = d.G, rev = s->reverse, cho = s->cho;
    real *dxp = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    real *dhh = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    real *dh_next = tz_arena_calloc(&g->arena, sizeof(real) * B * H);
    real *drh = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    real *dh = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    const real *zeros = tz_arena_calloc(&g->arena, sizeof(real) * B * H); // h_{-1} without h0
    // W_hh (G, H) whole (cuDNN), or its U_rz (2H, H) and U_n (H, H) blocks (Cho).
    const real *wp = cho ? seq_packed(g, w_hh, 0, 2 * H, 0) : seq_packed(g, w_hh, 0, G, 0);
    const real *wn = cho ? seq_packed(g, w_hh, 2 * H, H, 0) : NULL;
    for (int step = T - 1; step >= 0; step--) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        const real *gt = s->gates + (long)t * B * G, *at = s->aux + (long)t * B * H;
        const real *hprev = tp >= 0 ? out->data + (long)tp * B * H : h0 ? h0->data : NULL;
        const real *dout = out->grad + (long)t * B * H;
        real *dx_t = dxp + (long)t * B * G, *dh_t = dhh + (long)t * B * G;
        const real *hp = hprev ? hprev : zeros;
        for (int b = 0; b < B; b++)
            gru_grad_row(H, gt + b * G, hp + b * H, at + b * H, dout + b * H, dh_next + b * H, dh + b * H, dx_t + b * G,
                         dh_t + b * G, cho);
        if (!cho) {
            // dh_{t-1} = dh z + dhh_t W_hh
            if (tp >= 0 || (h0 && h0->grad)) {
                seq_gemm_packed(0, B, H, G, 1, dh_t, G, wp, 0, dh_next, H);
                for (int k = 0; k < B * H; k++) dh_next[k] += dh[k] * gt[(k / H) * G + H + k % H];
            }
        } else {
            // d(r h) = dn U_n; dr = d(rh) h; dh_{t-1} = dh z + d(rh) r + [dr dz] U_rz
            seq_gemm_packed(0, B, H, H, 1, dh_t + 2 * H, G, wn, 0, drh, H);
            for (int b = 0; b < B; b++)
                gru_cho_r_row(H, gt + b * G, hp + b * H, drh + b * H, dh + b * H, dx_t + b * G, dh_t + b * G, dh_next + b * H);
            if (tp >= 0 || (h0 && h0->grad)) seq_gemm_packed(0, B, H, 2 * H, 1, dh_t, G, wp, 1, dh_next, H);
        }
    }
    if (h0 && h0->grad)
        for (int k = 0; k < B * H; k++) h0->grad[k] += dh_next[k];
    seq_input_grads(dxp, &d, x, w_ih, b_ih, NULL);
    if (b_hh && b_hh->grad)
        for (long r = 0; r < (long)T * B; r++)
            for (int j = 0; j < G; j++) b_hh->grad[j] += dhh[r * G + j];
    if (w_hh->grad) {
        const real *h0d = h0 ? h0->data : NULL;
        if (!cho) seq_recurrent_grad(w_hh->grad, G, dhh, G, out->data, h0d, &d, rev);
        else {
            seq_recurrent_grad(w_hh->grad, 2 * H, dhh, G, out->data, h0d, &d, rev);
            gemm(1, 0, H, H, T * B, 1, dhh + 2 * H, G, s->aux, H, 1, w_hh->grad + (long)2 * H * H, H);
        }
    }
}
static const tz_op op_gru = {"gru_seq", gru_backward, 0};

// One row's r and z (in place in g = [r z n]) and what the candidate needs from the recurrence:
// r h (Cho) or U_n h + b_hn (cuDNN) into a. Separate functions with restrict pointers, so the
// compiler vectorises the loops over j.
static void gru_gates_row(int H, real *restrict g, const real *restrict hh, const real *restrict hp, real *restrict a, int cho) {
    for (int j = 0; j < H; j++) g[j] = tz_fsigmoid(g[j] + hh[j]), g[H + j] = tz_fsigmoid(g[H + j] + hh[H + j]);
    if (cho)
        for (int j = 0; j < H; j++) a[j] = g[j] * hp[j];
    else
        for (int j = 0; j < H; j++) a[j] = hh[2 * H + j];
}

// n = tanh(x_n + (Cho: U_n (r h) + b_hn, in hn | cuDNN: r (U_n h + b_hn))), h = (1 - z) n + z h_prev.
static void gru_state_row(int H, real *restrict g, const real *restrict hn, const real *restrict hp, real *restrict h, int cho) {
    for (int j = 0; j < H; j++) {
        real n = tz_ftanh(g[2 * H + j] + (cho ? hn[j] : g[j] * hn[j])), z = g[H + j];
        g[2 * H + j] = n;
        h[j] = (1 - z) * n + z * hp[j];
    }
}

tz_tensor *tz_gru_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *w_ih, tz_tensor *w_hh,
                      tz_tensor *b_ih, tz_tensor *b_hh, int cho, int reverse) {
    seq_dims d = seq_check("gru", 3, x, h0, NULL, w_ih, w_hh, b_ih, b_hh);
    int T = d.T, B = d.B, H = d.H, G = d.G;
    tz_tensor *in[6] = {x, h0, w_ih, w_hh, b_ih, b_hh};
    tz_tensor *out = tz_op_output(g, 3, (const int[]){T, B, H}, in, 6);
    gru_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    s->d = d, s->cho = !!cho, s->reverse = !!reverse;
    s->gates = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    s->aux = tz_arena_alloc(&g->arena, sizeof(real) * T * B * H);
    real *hh = tz_arena_alloc(&g->arena, sizeof(real) * B * G); // this step's U h + b_hh
    seq_input_proj(s->gates, &d, x, w_ih, b_ih, NULL);
    // W_hh^T: all three blocks (cuDNN), or U_rz^T (H, 2H) and U_n^T (H, H) (Cho).
    const real *up = seq_packed(g, w_hh, 0, cho ? 2 * H : G, 1), *un = cho ? seq_packed(g, w_hh, 2 * H, H, 1) : NULL;
    const real *zeros = tz_arena_calloc(&g->arena, sizeof(real) * B * H); // h_{-1} without h0
    for (int step = 0; step < T; step++) {
        int t = reverse ? T - 1 - step : step, tp = seq_prev(t, T, reverse);
        real *gt = s->gates + (long)t * B * G, *at = s->aux + (long)t * B * H, *ht = out->data + (long)t * B * H;
        const real *hprev = tp >= 0 ? out->data + (long)tp * B * H : h0 ? h0->data : NULL;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < G; j++) hh[b * G + j] = b_hh ? b_hh->data[j] : 0;
        // cuDNN: all three blocks of U h at once; Cho: r and z first, U_n waits for r h.
        if (hprev) seq_gemm_packed(0, B, cho ? 2 * H : G, H, 1, hprev, H, up, 1, hh, G);
        const real *hp = hprev ? hprev : zeros;
        for (int b = 0; b < B; b++) gru_gates_row(H, gt + b * G, hh + b * G, hp + b * H, at + b * H, cho);
        if (cho && hprev) seq_gemm_packed(0, B, H, H, 1, at, H, un, 1, hh + 2 * H, G);
        for (int b = 0; b < B; b++) gru_state_row(H, gt + b * G, hh + b * G + 2 * H, hp + b * H, ht + b * H, cho);
    }
    tz_node *n = tz_op_record(g, &op_gru, out, in, 6);
    if (n) n->aux = s;
    return out;
}
