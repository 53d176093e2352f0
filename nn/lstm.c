// lstm.c: a whole LSTM sequence (one layer, one direction) as one tape node.
// Equations in recurrent.h; backward is backpropagation through time with the gate
// derivatives written out, using the saved activations (no recomputation).
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

// Backward of one row of the cell at one step: from dh (dout + dh_next) and dc_next, the gate
// pre-activation gradients into dg = [di df dg do], dc_{t-1} into dc_next, peephole gradients
// into gp. p = [p_i; p_f; p_o] (zeros without peepholes). Branch-free, so it vectorises.
static void lstm_grad_row(int H, const real *restrict gates, const real *restrict cp, const real *restrict c,
                          const real *restrict tc, const real *restrict dout, const real *restrict dh_next,
                          real *restrict dc_next, real *restrict dg, const real *restrict p, real *restrict gp) {
    const real *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    for (int j = 0; j < H; j++) {
        real i = gi[j], f = gf[j], g = gg[j], o = go[j], t = tc[j];
        real dh = dout[j] + dh_next[j];
        real d_o = dh * t * o * (1 - o);
        real dc = dc_next[j] + dh * o * (1 - t * t) + d_o * p[2 * H + j]; // o peeks at the new c
        real di = dc * g * i * (1 - i), df = dc * cp[j] * f * (1 - f), d_g = dc * i * (1 - g * g);
        gp[j] += di * cp[j], gp[H + j] += df * cp[j], gp[2 * H + j] += d_o * c[j];
        dg[j] = di, dg[H + j] = df, dg[2 * H + j] = d_g, dg[3 * H + j] = d_o;
        dc_next[j] = dc * f + di * p[j] + df * p[H + j];
    }
}

// Saved for backward (arena): activated gates i,f,g,o (T,B,4H), cell states and tanh(c) (T,B,H).
typedef struct { real *gates, *cs, *tc; seq_dims d; int reverse; } lstm_saved;

static void lstm_backward(tz_graph *g, tz_node *n) {
    tz_tensor *x = n->in[0], *h0 = n->in[1], *c0 = n->in[2], *w_ih = n->in[3], *w_hh = n->in[4];
    tz_tensor *b_ih = n->in[5], *b_hh = n->in[6], *peep = n->in[7], *out = n->out;
    lstm_saved *s = n->aux;
    seq_dims d = s->d;
    int T = d.T, B = d.B, H = d.H, G = d.G, rev = s->reverse;
    real *dgates = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    real *dh_next = tz_arena_calloc(&g->arena, sizeof(real) * B * H);
    real *dc_next = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    memcpy(dc_next, out->grad + (long)T * B * H, sizeof(real) * B * H); // gradient of the final c
    // Without peepholes, zero peepholes and a scratch for their gradient keep the loop branch-free.
    real *scratch = tz_arena_calloc(&g->arena, sizeof(real) * (6 * H + B * H));
    const real *p = peep ? peep->data : scratch, *zeros = scratch + 6 * H;
    real *gp = peep && peep->grad ? peep->grad : scratch + 3 * H;
    const real *wp = seq_packed(g, w_hh, 0, G, 0); // W_hh (G, H)
    for (int step = T - 1; step >= 0; step--) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        const real *gt = s->gates + (long)t * B * G, *ct = s->cs + (long)t * B * H, *tct = s->tc + (long)t * B * H;
        const real *cprev = tp >= 0 ? s->cs + (long)tp * B * H : c0 ? c0->data : zeros;
        const real *dout = out->grad + (long)t * B * H;
        real *dg = dgates + (long)t * B * G;
        for (int b = 0; b < B; b++)
            lstm_grad_row(H, gt + b * G, cprev + b * H, ct + b * H, tct + b * H, dout + b * H, dh_next + b * H,
                          dc_next + b * H, dg + b * G, p, gp);
        // dh_{t-1} = dgates_t W_hh (only needed where a previous state exists)
        if (tp >= 0 || (h0 && h0->grad)) seq_gemm_packed(0, B, H, G, 1, dg, G, wp, 0, dh_next, H);
    }
    if (h0 && h0->grad)
        for (int k = 0; k < B * H; k++) h0->grad[k] += dh_next[k];
    if (c0 && c0->grad)
        for (int k = 0; k < B * H; k++) c0->grad[k] += dc_next[k];
    seq_input_grads(dgates, &d, x, w_ih, b_ih, b_hh);
    if (w_hh->grad) seq_recurrent_grad(w_hh->grad, G, dgates, G, out->data, h0 ? h0->data : NULL, &d, rev);
}
static const tz_op op_lstm = {"lstm_seq", lstm_backward, 0};

// One row of the cell: gate pre-activations in, activated gates, c, tanh(c) and h out. A
// function of its own with restrict pointers, so the compiler vectorises the loop over j.
static void lstm_cell_row(int H, real *restrict gi, real *restrict gf, real *restrict gg, real *restrict go,
                          const real *restrict cp, real *restrict c, real *restrict tc, real *restrict h,
                          const real *restrict pi, const real *restrict pf, const real *restrict po) {
    if (!pi) {
        for (int j = 0; j < H; j++) {
            real i = tz_fsigmoid(gi[j]), f = tz_fsigmoid(gf[j]), g = tz_ftanh(gg[j]), o = tz_fsigmoid(go[j]);
            real cj = f * cp[j] + i * g, t = tz_ftanh(cj);
            gi[j] = i, gf[j] = f, gg[j] = g, go[j] = o, c[j] = cj, tc[j] = t, h[j] = o * t;
        }
    } else { // peepholes: i and f see c_{t-1}, o sees the new c
        for (int j = 0; j < H; j++) {
            real i = tz_fsigmoid(gi[j] + pi[j] * cp[j]), f = tz_fsigmoid(gf[j] + pf[j] * cp[j]), g = tz_ftanh(gg[j]);
            real cj = f * cp[j] + i * g, o = tz_fsigmoid(go[j] + po[j] * cj), t = tz_ftanh(cj);
            gi[j] = i, gf[j] = f, gg[j] = g, go[j] = o, c[j] = cj, tc[j] = t, h[j] = o * t;
        }
    }
}

tz_tensor *tz_lstm_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *c0, tz_tensor *w_ih,
                       tz_tensor *w_hh, tz_tensor *b_ih, tz_tensor *b_hh, tz_tensor *peep, int reverse) {
    seq_dims d = seq_check("lstm", 4, x, h0, c0, w_ih, w_hh, b_ih, b_hh);
    int T = d.T, B = d.B, H = d.H, G = d.G;
    if (peep && (peep->ndim != 2 || peep->shape[0] != 3 || peep->shape[1] != H)) {
        char s[64];
        tz_fail("lstm: peepholes %s do not fit hidden %d (want (3,%d))", tz_shape_str(peep, s), H, H);
    }
    tz_tensor *in[8] = {x, h0, c0, w_ih, w_hh, b_ih, b_hh, peep};
    tz_tensor *out = tz_op_output(g, 3, (const int[]){T + 1, B, H}, in, 8);
    lstm_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    s->d = d, s->reverse = !!reverse;
    s->gates = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    s->cs = tz_arena_alloc(&g->arena, sizeof(real) * T * B * H);
    s->tc = tz_arena_alloc(&g->arena, sizeof(real) * T * B * H);
    seq_input_proj(s->gates, &d, x, w_ih, b_ih, b_hh);
    const real *pi = peep ? peep->data : NULL, *pf = pi ? pi + H : NULL, *po = pi ? pi + 2 * H : NULL;
    const real *up = seq_packed(g, w_hh, 0, G, 1); // W_hh^T (H, 4H)
    const real *zeros = tz_arena_calloc(&g->arena, sizeof(real) * B * H); // c_{-1} without c0
    for (int step = 0; step < T; step++) {
        int t = reverse ? T - 1 - step : step, tp = seq_prev(t, T, reverse);
        real *gt = s->gates + (long)t * B * G;
        const real *hprev = tp >= 0 ? out->data + (long)tp * B * H : h0 ? h0->data : NULL;
        const real *cprev = tp >= 0 ? s->cs + (long)tp * B * H : c0 ? c0->data : NULL;
        if (hprev) seq_gemm_packed(0, B, G, H, 1, hprev, H, up, 1, gt, G);
        real *ct = s->cs + (long)t * B * H, *tct = s->tc + (long)t * B * H, *ht = out->data + (long)t * B * H;
        for (int b = 0; b < B; b++) {
            real *gb = gt + b * G;
            lstm_cell_row(H, gb, gb + H, gb + 2 * H, gb + 3 * H, (cprev ? cprev : zeros) + b * H, ct + b * H, tct + b * H,
                          ht + b * H, pi, pf, po);
        }
    }
    memcpy(out->data + (long)T * B * H, s->cs + (long)(reverse ? 0 : T - 1) * B * H, sizeof(real) * B * H);
    tz_node *n = tz_op_record(g, &op_lstm, out, in, 8);
    if (n) n->aux = s;
    return out;
}
