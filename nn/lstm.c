// lstm.c: a whole LSTM sequence (one layer, one direction) as one tape node.
// Equations in recurrent.h; backward is backpropagation through time with the gate
// derivatives written out, using the saved activations (no recomputation).
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "gemm.h"
#include "lanes.h"
#include "parallel.h"
#include "recurrent.h"

// Backward of one row of the cell at one step: from dh (dout + dh_next) and dc_next, the gate
// pre-activation gradients into dg = [di df dg do] and dc_{t-1} into dc_next. p = [p_i; p_f; p_o]
// (zeros without peepholes; their gradients are column sums taken after the loop).
// Branch-free, so it vectorises.
static void lstm_grad_row(int H, const real *restrict gates, const real *restrict cp, const real *restrict tc,
                          const real *restrict dout, const real *restrict dh_next, real *restrict dc_next,
                          real *restrict dg, const real *restrict p) {
    const real *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    for (int j = 0; j < H; j++) {
        real i = gi[j], f = gf[j], g = gg[j], o = go[j], t = tc[j];
        real dh = dout[j] + dh_next[j];
        real d_o = dh * t * o * (1 - o);
        real dc = dc_next[j] + dh * o * (1 - t * t) + d_o * p[2 * H + j]; // o peeks at the new c
        real di = dc * g * i * (1 - i), df = dc * cp[j] * f * (1 - f), d_g = dc * i * (1 - g * g);
        dg[j] = di, dg[H + j] = df, dg[2 * H + j] = d_g, dg[3 * H + j] = d_o;
        dc_next[j] = dc * f + di * p[j] + df * p[H + j];
    }
}

// Saved for backward (arena): activated gates i,f,g,o (T,B,4H), cell states and tanh(c) (T,B,H).
typedef struct {
    real *gates, *cs, *tc;
    seq_dims d;
    int reverse;
} lstm_saved;

// What the backward's time loop over a slice of the batch reads and writes.
typedef struct {
    const lstm_saved *s;
    const real *dout, *p, *wp, *c0, *zeros;
    real *dgates, *dh_next, *dc_next;
    int h0_grad; // the initial state wants dh_{-1}
} lstm_bw_job;

static void lstm_bw_rows(void *arg, int b0, int b1) {
    const lstm_bw_job *j = arg;
    const lstm_saved *s = j->s;
    const int T = s->d.T, B = s->d.B, H = s->d.H, G = s->d.G, rev = s->reverse, nb = b1 - b0;
    for (int step = T - 1; step >= 0; step--) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        long r0 = (long)t * B + b0; // first row of the slice at step t
        real *dg = j->dgates + r0 * G;
        const real *cprev = tp >= 0 ? s->cs + ((long)tp * B + b0) * H : j->c0 ? j->c0 + (long)b0 * H : j->zeros;
        for (int b = 0; b < nb; b++)
            lstm_grad_row(H, s->gates + (r0 + b) * G, cprev + (long)b * H, s->tc + (r0 + b) * H, j->dout + (r0 + b) * H,
                          j->dh_next + (long)(b0 + b) * H, j->dc_next + (long)(b0 + b) * H, dg + (long)b * G, j->p);
        // dh_{t-1} = dgates_t W_hh (only needed where a previous state exists)
        if (tp >= 0 || j->h0_grad) tz_gemm_packed(0, nb, H, G, 1, dg, G, j->wp, 0, j->dh_next + (long)b0 * H, H);
    }
}

// Peephole gradients, columns [lo, hi) of H: p_i += sum di c_{t-1}, p_f += sum df c_{t-1},
// p_o += sum do c_t over all steps and rows, in (t, b) order. Blocks of TZ_COLS columns are
// summed in registers down all the rows (lanes.h's reason).
typedef struct {
    const lstm_saved *s;
    const real *dgates, *c0;
    real *gp;
} peep_job;
static void peep_cols(void *arg, long lo, long hi) {
    const peep_job *a = arg;
    const lstm_saved *s = a->s;
    const int T = s->d.T, B = s->d.B, H = s->d.H, G = s->d.G;
    for (long j0 = lo; j0 < hi; j0 += TZ_COLS) {
        const int w = hi - j0 < TZ_COLS ? (int)(hi - j0) : TZ_COLS;
        real si[TZ_COLS] = {0}, sf[TZ_COLS] = {0}, so[TZ_COLS] = {0};
        for (int t = 0; t < T; t++) {
            int tp = seq_prev(t, T, s->reverse);
            const real *cps = tp >= 0 ? s->cs + (long)tp * B * H : a->c0; // NULL: zeros, nothing to add
            for (int b = 0; b < B; b++) {
                const real *restrict dg = a->dgates + ((long)t * B + b) * G + j0;
                const real *restrict c = s->cs + ((long)t * B + b) * H + j0;
                for (int k = 0; k < w; k++) so[k] += dg[3 * H + k] * c[k];
                if (!cps) continue;
                const real *restrict cp = cps + (long)b * H + j0;
                for (int k = 0; k < w; k++) si[k] += dg[k] * cp[k], sf[k] += dg[H + k] * cp[k];
            }
        }
        for (int k = 0; k < w; k++) a->gp[j0 + k] += si[k], a->gp[H + j0 + k] += sf[k], a->gp[2 * H + j0 + k] += so[k];
    }
}

static void lstm_backward(tz_graph *g, tz_node *n) {
    tz_tensor *x = n->in[0], *h0 = n->in[1], *c0 = n->in[2], *w_ih = n->in[3], *w_hh = n->in[4];
    tz_tensor *b_ih = n->in[5], *b_hh = n->in[6], *peep = n->in[7], *out = n->out;
    lstm_saved *s = n->aux;
    seq_dims d = s->d;
    int T = d.T, B = d.B, H = d.H, G = d.G;
    lstm_bw_job j = {.s = s,
                     .dout = out->grad,
                     .wp = seq_packed(g, w_hh, 0, G, 0) /* W_hh (G, H) */,
                     .c0 = c0 ? c0->data : NULL,
                     .h0_grad = h0 && h0->grad};
    j.zeros = tz_arena_calloc(&g->arena, sizeof(real) * B * H); // c_{-1} without c0
    j.dgates = tz_arena_alloc(&g->arena, sizeof(real) * T * B * G);
    j.dh_next = tz_arena_calloc(&g->arena, sizeof(real) * B * H);
    j.dc_next = tz_arena_alloc(&g->arena, sizeof(real) * B * H);
    memcpy(j.dc_next, out->grad + (long)T * B * H, sizeof(real) * B * H); // gradient of the final c
    // Without peepholes, zero peepholes keep the loop branch-free.
    j.p = peep ? peep->data : tz_arena_calloc(&g->arena, sizeof(real) * 3 * H);
    seq_run_rows(B, lstm_bw_rows, &j);
    if (h0 && h0->grad)
        for (int k = 0; k < B * H; k++) h0->grad[k] += j.dh_next[k];
    if (c0 && c0->grad)
        for (int k = 0; k < B * H; k++) c0->grad[k] += j.dc_next[k];
    if (peep && peep->grad) {
        peep_job pj = {s, j.dgates, j.c0, peep->grad};
        tz_parallel_for(H, 3L * T * B, peep_cols, &pj);
    }
    seq_input_grads(j.dgates, &d, x, w_ih, b_ih, b_hh);
    if (w_hh->grad) seq_recurrent_grad(w_hh->grad, G, j.dgates, G, out->data, h0 ? h0->data : NULL, &d, s->reverse);
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

// What the forward's time loop over a slice of the batch reads and writes.
typedef struct {
    lstm_saved *s;
    const real *up, *h0, *c0, *pi, *pf, *po, *zeros;
    real *out;
} lstm_fw_job;

static void lstm_fw_rows(void *arg, int b0, int b1) {
    const lstm_fw_job *j = arg;
    lstm_saved *s = j->s;
    const int T = s->d.T, B = s->d.B, H = s->d.H, G = s->d.G, rev = s->reverse, nb = b1 - b0;
    for (int step = 0; step < T; step++) {
        int t = rev ? T - 1 - step : step, tp = seq_prev(t, T, rev);
        long r0 = (long)t * B + b0, p0 = (long)tp * B + b0; // first row of the slice at t and at tp
        real *gt = s->gates + r0 * G;
        const real *hprev = tp >= 0 ? j->out + p0 * H : j->h0 ? j->h0 + (long)b0 * H : NULL;
        const real *cprev = tp >= 0 ? s->cs + p0 * H : j->c0 ? j->c0 + (long)b0 * H : j->zeros;
        if (hprev) tz_gemm_packed(0, nb, G, H, 1, hprev, H, j->up, 1, gt, G);
        for (int b = 0; b < nb; b++) {
            real *gb = gt + (long)b * G;
            long r = (r0 + b) * H;
            lstm_cell_row(H, gb, gb + H, gb + 2 * H, gb + 3 * H, cprev + (long)b * H, s->cs + r, s->tc + r, j->out + r,
                          j->pi, j->pf, j->po);
        }
    }
}

tz_tensor *tz_lstm_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *c0, tz_tensor *w_ih, tz_tensor *w_hh,
                       tz_tensor *b_ih, tz_tensor *b_hh, tz_tensor *peep, int reverse) {
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
    seq_input_proj(g, s->gates, &d, x, w_ih, b_ih, b_hh);
    const real *pi = peep ? peep->data : NULL;
    lstm_fw_job j = {s,
                     seq_packed(g, w_hh, 0, G, 1) /* W_hh^T (H, 4H) */,
                     h0 ? h0->data : NULL,
                     c0 ? c0->data : NULL,
                     pi,
                     pi ? pi + H : NULL,
                     pi ? pi + 2 * H : NULL,
                     tz_arena_calloc(&g->arena, sizeof(real) * B * H) /* c_{-1} without c0 */,
                     out->data};
    seq_run_rows(B, lstm_fw_rows, &j);
    memcpy(out->data + (long)T * B * H, s->cs + (long)(reverse ? 0 : T - 1) * B * H, sizeof(real) * B * H);
    tz_node *n = tz_op_record(g, &op_lstm, out, in, 8);
    if (n) n->aux = s;
    return out;
}
