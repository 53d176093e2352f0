// rnn.c: a whole Elman RNN sequence (one layer, one direction) as one tape node.
#include "fastmath.h"
#include "gemm.h"
#include "recurrent.h"

#ifdef TZ_DOUBLE
#define gemm tz_dgemm
#else
#define gemm tz_sgemm
#endif

typedef struct { seq_dims d; int reverse; } rnn_saved;

// dpre_t = (dh_t + dh_next) (1 - h_t^2);  dh_next = dpre_t W_hh
static void rnn_backward(tz_graph *g, tz_node *n) {
    tz_tensor *x = n->in[0], *h0 = n->in[1], *w_ih = n->in[2], *w_hh = n->in[3], *out = n->out;
    rnn_saved *s = n->aux;
    seq_dims d = s->d;
    int T = d.T, B = d.B, H = d.H, rev = s->reverse;
    real *dpre = tz_arena_alloc(&g->arena, sizeof(real) * T * B * H);
    real *dh_next = tz_arena_calloc(&g->arena, sizeof(real) * B * H);
    const real *wp = seq_packed(g, w_hh, 0, H, 0); // W_hh (H, H)
    for (int step = T - 1; step >= 0; step--) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        const real *ht = out->data + (long)t * B * H, *dout = out->grad + (long)t * B * H;
        real *dp = dpre + (long)t * B * H;
        for (int k = 0; k < B * H; k++) dp[k] = (dout[k] + dh_next[k]) * (1 - ht[k] * ht[k]);
        if (tp >= 0 || (h0 && h0->grad)) seq_gemm_packed(0, B, H, H, 1, dp, H, wp, 0, dh_next, H);
    }
    if (h0 && h0->grad)
        for (int k = 0; k < B * H; k++) h0->grad[k] += dh_next[k];
    seq_input_grads(dpre, &d, x, w_ih, n->in[4], n->in[5]);
    if (w_hh->grad) seq_recurrent_grad(w_hh->grad, H, dpre, H, out->data, h0 ? h0->data : NULL, &d, rev);
}
static const tz_op op_rnn = {"rnn_seq", rnn_backward, 0};

tz_tensor *tz_rnn_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *w_ih, tz_tensor *w_hh,
                      tz_tensor *b_ih, tz_tensor *b_hh, int reverse) {
    seq_dims d = seq_check("rnn", 1, x, h0, NULL, w_ih, w_hh, b_ih, b_hh);
    int T = d.T, B = d.B, H = d.H;
    tz_tensor *in[6] = {x, h0, w_ih, w_hh, b_ih, b_hh};
    tz_tensor *out = tz_op_output(g, 3, (const int[]){T, B, H}, in, 6);
    seq_input_proj(out->data, &d, x, w_ih, b_ih, b_hh); // pre-activations, made h in place
    const real *up = seq_packed(g, w_hh, 0, H, 1); // W_hh^T (H, H)
    for (int step = 0; step < T; step++) {
        int t = reverse ? T - 1 - step : step, tp = seq_prev(t, T, reverse);
        real *ht = out->data + (long)t * B * H;
        const real *hprev = tp >= 0 ? out->data + (long)tp * B * H : h0 ? h0->data : NULL;
        if (hprev) seq_gemm_packed(0, B, H, H, 1, hprev, H, up, 1, ht, H);
        for (int k = 0; k < B * H; k++) ht[k] = tz_ftanh(ht[k]);
    }
    tz_node *n = tz_op_record(g, &op_rnn, out, in, 6);
    if (n) {
        rnn_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
        s->d = d, s->reverse = !!reverse;
        n->aux = s;
    }
    return out;
}
