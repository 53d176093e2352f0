// gru.c: a whole GRU sequence (one layer, one direction) as one tape node, in the PyTorch/cuDNN
// form or Cho et al. 2014's (equations in recurrent.h). The two differ only in where r acts:
// on U_n h + b_hn (cuDNN) or on h before U_n (Cho).
#include <math.h>
#include <string.h>

#include "gemm.h"
#include "gru_rows.h"
#include "recurrent.h"

// Saved (arena): activated gates r,z,n (T,B,3H) and, per step, hn = U_n h + b_hn (cuDNN form) or
// rh = r h (Cho form) (T,B,H).
typedef struct {
    real *gates, *aux;
    seq_dims d;
    int cho, reverse;
} gru_saved;

// What the backward's time loop over a slice of the batch reads and writes.
typedef struct {
    const gru_saved *s;
    const real *h0, *dout, *out, *zeros, *wp, *wn; // wp: W_hh (cuDNN) or U_rz (Cho); wn: U_n (Cho)
    real *dxp, *dhh, *dh_next, *drh, *dh;
    int h0_grad; // the initial state wants dh_{-1}
} gru_bw_job;

static void gru_bw_rows(void *arg, int b0, int b1) {
    const gru_bw_job *j = arg;
    const gru_saved *s = j->s;
    const int T = s->d.T, B = s->d.B, H = s->d.H, G = s->d.G, rev = s->reverse, cho = s->cho, nb = b1 - b0;
    real *dh_next = j->dh_next + (long)b0 * H, *drh = j->drh + (long)b0 * H, *dh = j->dh + (long)b0 * H;
    for (int step = T - 1; step >= 0; step--) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        long r0 = (long)t * B + b0; // first row of the slice at step t
        const real *gt = s->gates + r0 * G, *at = s->aux + r0 * H, *dout = j->dout + r0 * H;
        const real *hp = tp >= 0 ? j->out + ((long)tp * B + b0) * H : j->h0 ? j->h0 + (long)b0 * H : j->zeros;
        real *dx_t = j->dxp + r0 * G, *dh_t = j->dhh + r0 * G;
        int want_prev = tp >= 0 || j->h0_grad;
        for (int b = 0; b < nb; b++)
            gru_grad_row(H, gt + (long)b * G, hp + (long)b * H, at + (long)b * H, dout + (long)b * H,
                         dh_next + (long)b * H, dh + (long)b * H, dx_t + (long)b * G, dh_t + (long)b * G, cho);
        if (!cho) {
            // dh_{t-1} = dh z + dhh_t W_hh
            if (want_prev) {
                tz_gemm_packed(0, nb, H, G, 1, dh_t, G, j->wp, 0, dh_next, H);
                for (int k = 0; k < nb * H; k++) dh_next[k] += dh[k] * gt[(long)(k / H) * G + H + k % H];
            }
        } else {
            // d(r h) = dn U_n; dr = d(rh) h; dh_{t-1} = dh z + d(rh) r + [dr dz] U_rz
            tz_gemm_packed(0, nb, H, H, 1, dh_t + 2 * H, G, j->wn, 0, drh, H);
            for (int b = 0; b < nb; b++)
                gru_cho_r_row(H, gt + (long)b * G, hp + (long)b * H, drh + (long)b * H, dh + (long)b * H,
                              dx_t + (long)b * G, dh_t + (long)b * G, dh_next + (long)b * H);
            if (want_prev) tz_gemm_packed(0, nb, H, 2 * H, 1, dh_t, G, j->wp, 1, dh_next, H);
        }
    }
}

static void gru_backward(tz_graph *g, tz_node *n) {
    tz_tensor *x = n->in[0], *h0 = n->in[1], *w_ih = n->in[2], *w_hh = n->in[3];
    tz_tensor *b_ih = n->in[4], *b_hh = n->in[5], *out = n->out;
    gru_saved *s = n->aux;
    seq_dims d = s->d;
    int T = d.T, B = d.B, H = d.H, G = d.G, cho = s->cho;
    // W_hh (G, H) whole (cuDNN), or its U_rz (2H, H) and U_n (H, H) blocks (Cho).
    gru_bw_job j = {.s = s, .h0 = h0 ? h0->data : NULL, .dout = out->grad, .out = out->data, .h0_grad = h0 && h0->grad};
    j.zeros = tz_arena_calloc(&g->arena, sizeof(real) * B * H); // h_{-1} without h0
    j.wp = seq_packed(g, w_hh, 0, cho ? 2 * H : G, 0);
    j.wn = cho ? seq_packed(g, w_hh, 2 * H, H, 0) : NULL;
    j.dxp = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    j.dhh = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    j.dh_next = tz_arena_calloc(&g->arena, sizeof(real) * B * H);
    j.drh = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    j.dh = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    seq_run_rows(B, gru_bw_rows, &j);
    if (h0 && h0->grad)
        for (int k = 0; k < B * H; k++) h0->grad[k] += j.dh_next[k];
    seq_input_grads(j.dxp, &d, x, w_ih, b_ih, NULL);
    seq_bias_grad(b_hh, j.dhh, T * B, G);
    if (w_hh->grad) {
        const real *h0d = h0 ? h0->data : NULL;
        if (!cho) seq_recurrent_grad(w_hh->grad, G, j.dhh, G, out->data, h0d, &d, s->reverse);
        else {
            seq_recurrent_grad(w_hh->grad, 2 * H, j.dhh, G, out->data, h0d, &d, s->reverse);
            tz_gemm(1, 0, H, H, T * B, 1, j.dhh + 2 * H, G, s->aux, H, 1, w_hh->grad + (long)2 * H * H, H);
        }
    }
}
static const tz_op op_gru = {"gru_seq", gru_backward, 0};

// What the forward's time loop over a slice of the batch reads and writes.
typedef struct {
    gru_saved *s;
    const real *h0, *b_hh, *zeros, *up, *un; // up: W_hh^T (cuDNN) or U_rz^T (Cho); un: U_n^T (Cho)
    real *hh, *out; // hh (B, 3H): this step's U h + b_hh
} gru_fw_job;

static void gru_fw_rows(void *arg, int b0, int b1) {
    const gru_fw_job *j = arg;
    gru_saved *s = j->s;
    const int T = s->d.T, B = s->d.B, H = s->d.H, G = s->d.G, rev = s->reverse, cho = s->cho, nb = b1 - b0;
    real *hh = j->hh + (long)b0 * G;
    for (int step = 0; step < T; step++) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        long r0 = (long)t * B + b0; // first row of the slice at step t
        real *gt = s->gates + r0 * G, *at = s->aux + r0 * H, *ht = j->out + r0 * H;
        const real *hprev = tp >= 0 ? j->out + ((long)tp * B + b0) * H : j->h0 ? j->h0 + (long)b0 * H : NULL;
        for (int b = 0; b < nb; b++)
            for (int k = 0; k < G; k++) hh[(long)b * G + k] = j->b_hh ? j->b_hh[k] : 0;
        // cuDNN: all three blocks of U h at once; Cho: r and z first, U_n waits for r h.
        if (hprev) tz_gemm_packed(0, nb, cho ? 2 * H : G, H, 1, hprev, H, j->up, 1, hh, G);
        const real *hp = hprev ? hprev : j->zeros;
        for (int b = 0; b < nb; b++)
            gru_gates_row(H, gt + (long)b * G, hh + (long)b * G, hp + (long)b * H, at + (long)b * H, cho);
        if (cho && hprev) tz_gemm_packed(0, nb, H, H, 1, at, H, j->un, 1, hh + 2 * H, G);
        for (int b = 0; b < nb; b++)
            gru_state_row(H, gt + (long)b * G, hh + (long)b * G + 2 * H, hp + (long)b * H, ht + (long)b * H, cho);
    }
}

tz_tensor *tz_gru_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *w_ih, tz_tensor *w_hh, tz_tensor *b_ih,
                      tz_tensor *b_hh, int cho, int reverse) {
    seq_dims d = seq_check("gru", 3, x, h0, NULL, w_ih, w_hh, b_ih, b_hh);
    int T = d.T, B = d.B, H = d.H, G = d.G;
    tz_tensor *in[6] = {x, h0, w_ih, w_hh, b_ih, b_hh};
    tz_tensor *out = tz_op_output(g, 3, (const int[]){T, B, H}, in, 6);
    gru_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    s->d = d, s->cho = !!cho, s->reverse = !!reverse;
    s->gates = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    s->aux = tz_arena_alloc(&g->arena, sizeof(real) * T * B * H);
    seq_input_proj(g, s->gates, &d, x, w_ih, b_ih, NULL);
    // W_hh^T: all three blocks (cuDNN), or U_rz^T (H, 2H) and U_n^T (H, H) (Cho).
    gru_fw_job j = {s,
                    h0 ? h0->data : NULL,
                    b_hh ? b_hh->data : NULL,
                    tz_arena_calloc(&g->arena, sizeof(real) * B * H) /* h_{-1} without h0 */,
                    seq_packed(g, w_hh, 0, cho ? 2 * H : G, 1),
                    cho ? seq_packed(g, w_hh, 2 * H, H, 1) : NULL,
                    tz_arena_alloc(&g->arena, sizeof(real) * B * G),
                    out->data};
    seq_run_rows(B, gru_fw_rows, &j);
    tz_node *n = tz_op_record(g, &op_gru, out, in, 6);
    if (n) n->aux = s;
    return out;
}
