// rnn.c: a whole Elman RNN sequence (one layer, one direction) as one tape node.
#include "fastmath.h"
#include "gemm.h"
#include "recurrent.h"

typedef struct {
    seq_dims d;
    int reverse;
} rnn_saved;

// What the time loops over a slice of the batch read and write.
typedef struct {
    const rnn_saved *s;
    const real *wp, *h0; // W_hh^T packed (forward) or W_hh packed (backward); h0 or NULL
    real *out; // forward: the pre-activations, made h in place
    const real *dout; // backward
    real *dpre, *dh_next;
    int h0_grad;
} rnn_job;

// dpre_t = (dh_t + dh_next) (1 - h_t^2);  dh_next = dpre_t W_hh
static void rnn_bw_rows(void *arg, int b0, int b1) {
    const rnn_job *j = arg;
    const int T = j->s->d.T, B = j->s->d.B, H = j->s->d.H, rev = j->s->reverse, nb = b1 - b0;
    real *dh_next = j->dh_next + (long)b0 * H;
    for (int step = T - 1; step >= 0; step--) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        long r0 = ((long)t * B + b0) * H;
        const real *restrict ht = j->out + r0, *restrict dout = j->dout + r0;
        real *restrict dp = j->dpre + r0;
        for (int k = 0; k < nb * H; k++) dp[k] = (dout[k] + dh_next[k]) * (1 - ht[k] * ht[k]);
        if (tp >= 0 || j->h0_grad) tz_gemm_packed(0, nb, H, H, 1, dp, H, j->wp, 0, dh_next, H);
    }
}

static void rnn_backward(tz_graph *g, tz_node *n) {
    tz_tensor *x = n->in[0], *h0 = n->in[1], *w_ih = n->in[2], *w_hh = n->in[3], *out = n->out;
    rnn_saved *s = n->aux;
    seq_dims d = s->d;
    int T = d.T, B = d.B, H = d.H;
    rnn_job j = {s,
                 seq_packed(g, w_hh, 0, H, 0) /* W_hh (H, H) */,
                 h0 ? h0->data : NULL,
                 out->data,
                 out->grad,
                 tz_arena_alloc(&g->arena, sizeof(real) * T * B * H),
                 tz_arena_calloc(&g->arena, sizeof(real) * B * H),
                 h0 && h0->grad};
    seq_run_rows(B, rnn_bw_rows, &j);
    if (h0 && h0->grad)
        for (int k = 0; k < B * H; k++) h0->grad[k] += j.dh_next[k];
    seq_input_grads(j.dpre, &d, x, w_ih, n->in[4], n->in[5]);
    if (w_hh->grad) seq_recurrent_grad(w_hh->grad, H, j.dpre, H, out->data, h0 ? h0->data : NULL, &d, s->reverse);
}
static const tz_op op_rnn = {"rnn_seq", rnn_backward, 0};

static void rnn_fw_rows(void *arg, int b0, int b1) {
    const rnn_job *j = arg;
    const int T = j->s->d.T, B = j->s->d.B, H = j->s->d.H, rev = j->s->reverse, nb = b1 - b0;
    for (int step = 0; step < T; step++) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        real *ht = j->out + ((long)t * B + b0) * H;
        const real *hprev = tp >= 0 ? j->out + ((long)tp * B + b0) * H : j->h0 ? j->h0 + (long)b0 * H : NULL;
        if (hprev) tz_gemm_packed(0, nb, H, H, 1, hprev, H, j->wp, 1, ht, H);
        for (int k = 0; k < nb * H; k++) ht[k] = tz_ftanh(ht[k]);
    }
}

tz_tensor *tz_rnn_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *w_ih, tz_tensor *w_hh, tz_tensor *b_ih,
                      tz_tensor *b_hh, int reverse) {
    seq_dims d = seq_check("rnn", 1, x, h0, NULL, w_ih, w_hh, b_ih, b_hh);
    int H = d.H;
    tz_tensor *in[6] = {x, h0, w_ih, w_hh, b_ih, b_hh};
    tz_tensor *out = tz_op_output(g, 3, (const int[]){d.T, d.B, H}, in, 6);
    seq_input_proj(g, out->data, &d, x, w_ih, b_ih, b_hh); // pre-activations, made h in place
    rnn_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    s->d = d, s->reverse = !!reverse;
    rnn_job j = {s, seq_packed(g, w_hh, 0, H, 1) /* W_hh^T (H, H) */, h0 ? h0->data : NULL, out->data, NULL, NULL, NULL,
                 0};
    seq_run_rows(d.B, rnn_fw_rows, &j);
    tz_node *n = tz_op_record(g, &op_rnn, out, in, 6);
    if (n) n->aux = s;
    return out;
}
