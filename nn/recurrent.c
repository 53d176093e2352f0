// recurrent.c: what the fused recurrent ops share, and the stacked (bidirectional, residual,
// dropout) recurrent layer built from them.
#include "recurrent.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gemm.h"
#include "parallel.h"

seq_dims seq_check(const char *op, int G, const tz_tensor *x, const tz_tensor *h0, const tz_tensor *c0,
                   const tz_tensor *w_ih, const tz_tensor *w_hh, const tz_tensor *b_ih, const tz_tensor *b_hh) {
    char s1[64], s2[64], s3[64];
    seq_dims d = {0};
    if (x->ndim != 3 || w_ih->ndim != 2 || w_hh->ndim != 2 || w_ih->shape[0] % G || w_ih->shape[1] != x->shape[2])
        tz_fail("%s: input %s does not fit w_ih %s (want x (T,B,I), w_ih (%d*H,I))", op, tz_shape_str(x, s1),
                tz_shape_str(w_ih, s2), G);
    d.T = x->shape[0], d.B = x->shape[1], d.I = x->shape[2], d.H = w_ih->shape[0] / G, d.G = G * d.H;
    if (w_hh->shape[0] != d.G || w_hh->shape[1] != d.H)
        tz_fail("%s: w_hh %s does not fit w_ih %s (want (%d,%d))", op, tz_shape_str(w_hh, s1), tz_shape_str(w_ih, s2),
                d.G, d.H);
    const tz_tensor *states[2] = {h0, c0}, *biases[2] = {b_ih, b_hh};
    for (int k = 0; k < 2; k++) {
        if (states[k] && (states[k]->n != d.B * d.H || tz_cols(states[k]) != d.H))
            tz_fail("%s: initial %s %s does not fit input %s and hidden %d (want (%d,%d))", op, k ? "c" : "h",
                    tz_shape_str(states[k], s1), tz_shape_str(x, s3), d.H, d.B, d.H);
        if (biases[k] && (biases[k]->ndim != 1 || biases[k]->shape[0] != d.G))
            tz_fail("%s: %s %s does not fit w_ih %s (want (%d))", op, k ? "b_hh" : "b_ih", tz_shape_str(biases[k], s1),
                    tz_shape_str(w_ih, s2), d.G);
    }
    return d;
}

real *seq_packed(tz_graph *g, const tz_tensor *w_hh, int r0, int rows, int tb) {
    int H = w_hh->shape[1], K = tb ? H : rows, N = tb ? rows : H;
    real *p = tz_arena_alloc(&g->arena, sizeof(real) * tz_gemm_packed_size(K, N));
    tz_gemm_pack_b(tb, K, N, w_hh->data + (long)r0 * H, H, p);
    return p;
}

typedef struct {
    void (*fn)(void *arg, int b0, int b1);
    void *arg;
} rows_job;

static void rows_range(void *arg, long lo, long hi) {
    const rows_job *j = arg;
    j->fn(j->arg, (int)lo, (int)hi);
}

void seq_run_rows(int B, void (*fn)(void *arg, int b0, int b1), void *arg) {
    // A row is a whole sequence of steps: always worth a core of its own, hence the large cost.
    // One thread (or one row) runs fn here, so the per-step products may still use the pool.
    rows_job j = {fn, arg};
    tz_parallel_split(B, 1L << 24, rows_range, &j);
}

void seq_input_proj(tz_graph *g, real *gates, const seq_dims *d, const tz_tensor *x, const tz_tensor *w_ih,
                    const tz_tensor *b1, const tz_tensor *b2) {
    const real *bias = b1 ? b1->data : b2 ? b2->data : NULL;
    if (b1 && b2) { // both biases: their sum, added by the gemm's epilogue
        real *sum = tz_arena_alloc(&g->arena, sizeof(real) * d->G);
        for (int j = 0; j < d->G; j++) sum[j] = b1->data[j] + b2->data[j];
        bias = sum;
    }
    tz_gemm_bias(0, 1, d->T * d->B, d->G, d->I, 1, x->data, d->I, w_ih->data, d->I, 0, gates, d->G, bias);
}

void seq_bias_grad(tz_tensor *b, const real *dgates, int rows, int G) {
    if (b && b->grad) tz_column_sums_add(b->grad, dgates, rows, G);
}

void seq_input_grads(const real *dgates, const seq_dims *d, tz_tensor *x, tz_tensor *w_ih, tz_tensor *b1,
                     tz_tensor *b2) {
    int rows = d->T * d->B;
    if (x->grad) tz_gemm(0, 0, rows, d->I, d->G, 1, dgates, d->G, w_ih->data, d->I, 1, x->grad, d->I);
    if (w_ih->grad) tz_gemm(1, 0, d->G, d->I, rows, 1, dgates, d->G, x->data, d->I, 1, w_ih->grad, d->I);
    seq_bias_grad(b1, dgates, rows, d->G);
    seq_bias_grad(b2, dgates, rows, d->G);
}

void seq_recurrent_grad(real *dW, int rows, const real *dg, int ldg, const real *hs, const real *h0, const seq_dims *d,
                        int reverse) {
    int T = d->T, B = d->B, H = d->H;
    // Steps with a previous step in the sequence pair up as two contiguous runs: forward, dg
    // rows 1..T-1 with hs rows 0..T-2; reverse, dg rows 0..T-2 with hs rows 1..T-1.
    if (T > 1) {
        const real *a = reverse ? dg : dg + (long)B * ldg, *h = reverse ? hs + (long)B * H : hs;
        tz_gemm(1, 0, rows, H, (T - 1) * B, 1, a, ldg, h, H, 1, dW, H);
    }
    if (h0) { // the first step processed pairs with the initial state
        int first = reverse ? T - 1 : 0;
        tz_gemm(1, 0, rows, H, B, 1, dg + (long)first * B * ldg, ldg, h0, H, 1, dW, H);
    }
}

// ---------------------------------------------------------------------------------------------

static const char *cell_names[] = {"rnn", "lstm", "gru"};
const char *nn_cell_name(nn_cell_kind cell) { return cell_names[cell]; }
int nn_cell_parse(const char *name, nn_cell_kind *cell) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, cell_names[i])) return *cell = (nn_cell_kind)i, 1;
    return 0;
}

static int gates_of(nn_cell_kind cell) { return cell == NN_CELL_LSTM ? 4 : cell == NN_CELL_GRU ? 3 : 1; }

nn_recurrent_config nn_recurrent_defaults(nn_cell_kind cell, int input, int hidden) {
    return (nn_recurrent_config){.cell = cell, .input = input, .hidden = hidden, .layers = 1, .bias = 1};
}

void nn_recurrent_init(nn_recurrent *m, tz_params *P, const char *name, const nn_recurrent_config *c, tz_rng *r) {
    const char *cell = (unsigned)c->cell < 3 ? cell_names[c->cell] : "recurrent";
    if ((unsigned)c->cell >= 3) tz_fail("recurrent '%s': unknown cell kind %d", name, (int)c->cell);
    if (c->input <= 0 || c->hidden <= 0 || c->layers < 1 || c->layers > NN_RECURRENT_MAX_LAYERS)
        tz_fail("%s '%s': input = %d, hidden = %d must be > 0 and layers = %d in [1,%d]", cell, name, c->input,
                c->hidden, c->layers, NN_RECURRENT_MAX_LAYERS);
    if (!(c->dropout >= 0 && c->dropout < 1))
        tz_fail("%s '%s': dropout = %g must be in [0,1)", cell, name, (double)c->dropout);
    if (c->peephole && c->cell != NN_CELL_LSTM) tz_fail("%s '%s': peephole is for lstm only", cell, name);
    if (c->gru_cho && c->cell != NN_CELL_GRU) tz_fail("%s '%s': gru_cho is for gru only", cell, name);
    memset(m, 0, sizeof *m);
    m->c = *c;
    int G = gates_of(c->cell), H = c->hidden, dirs = c->bidirectional ? 2 : 1;
    // PyTorch's default for every recurrent weight and bias: U(-1/sqrt(H), 1/sqrt(H)).
    nn_init pt = {NN_INIT_UNIFORM, 1 / sqrt(H)};
    nn_init w_init = nn_init_or(c->init, pt), u_init = nn_init_or(c->recurrent_init, w_init);
    if (w_init.kind == NN_INIT_PYTORCH) w_init = pt; // PyTorch's RNNs take fan = hidden, not input
    if (u_init.kind == NN_INIT_PYTORCH) u_init = pt;
    char key[256];
    for (int l = 0; l < c->layers; l++)
        for (int dir = 0; dir < dirs; dir++) {
            nn_recurrent_weights *p = &m->p[l][dir];
            int in = l == 0 ? c->input : dirs * H;
            const char *sfx = dir ? "_reverse" : "";
#define PARAM(field, what, nd, ...) \
    snprintf(key, sizeof key, "%s.%s_l%d%s", name, what, l, sfx); \
    p->field = tz_param(P, key, nd, (const int[]){__VA_ARGS__})
            PARAM(w_ih, "weight_ih", 2, G * H, in);
            PARAM(w_hh, "weight_hh", 2, G * H, H);
            nn_init_apply(p->w_ih, w_init, in, G * H, G, r);
            nn_init_apply(p->w_hh, u_init, H, G * H, G, r);
            if (c->bias) {
                PARAM(b_ih, "bias_ih", 1, G * H);
                PARAM(b_hh, "bias_hh", 1, G * H);
                // Element-wise inits (Zaremba's U(-0.1, 0.1), zeros, ...) cover the biases too;
                // the fan-based ones (Xavier, Kaiming, orthogonal) leave them at zero.
                nn_init_kind k = w_init.kind;
                nn_init b_init = k == NN_INIT_UNIFORM || k == NN_INIT_NORMAL || k == NN_INIT_ZEROS ||
                                         k == NN_INIT_ONES || k == NN_INIT_CONSTANT
                                     ? w_init
                                     : (nn_init){NN_INIT_ZEROS, 0};
                nn_init_apply(p->b_ih, b_init, H, G * H, 1, r);
                nn_init_apply(p->b_hh, b_init, H, G * H, 1, r);
                if (c->cell == NN_CELL_LSTM) // Gers 2000; Jozefowicz 2015: remember by default
                    for (int j = H; j < 2 * H; j++) p->b_ih->data[j] += c->forget_bias;
            }
            if (c->peephole) {
                PARAM(peep, "weight_peep", 2, 3, H);
                nn_init_apply(p->peep, pt, H, 3 * H, 1, r);
            }
#undef PARAM
        }
}

// Row k of a (L*dirs, B, H) state as a (B, H) view, or NULL.
static tz_tensor *state_row(tz_graph *g, tz_tensor *s, int k, int B, int H) {
    if (!s) return NULL;
    return tz_reshape(g, tz_slice(g, s, 0, k, 1), 2, (const int[]){B, H});
}

tz_tensor *nn_recurrent_forward(tz_graph *g, const nn_recurrent *m, tz_tensor *x, tz_tensor *h0, tz_tensor *c0,
                                tz_tensor **h_n, tz_tensor **c_n) {
    const nn_recurrent_config *c = &m->c;
    int dirs = c->bidirectional ? 2 : 1, H = c->hidden, L = c->layers;
    char s1[64], s2[64];
    if (x->ndim != 3 || x->shape[2] != c->input)
        tz_fail("%s: input %s does not fit input size %d (want (T,B,%d))", cell_names[c->cell], tz_shape_str(x, s1),
                c->input, c->input);
    int T = x->shape[0], B = x->shape[1];
    tz_tensor *states[2] = {h0, c0};
    for (int k = 0; k < 2; k++)
        if (states[k] && (states[k]->ndim != 3 || states[k]->shape[0] != L * dirs || states[k]->shape[1] != B ||
                          states[k]->shape[2] != H))
            tz_fail("%s: initial %s %s does not fit (layers*dirs, B, H) = (%d,%d,%d) for input %s", cell_names[c->cell],
                    k ? "c" : "h", tz_shape_str(states[k], s1), L * dirs, B, H, tz_shape_str(x, s2));
    tz_tensor *hs_last[2 * NN_RECURRENT_MAX_LAYERS], *cs_last[2 * NN_RECURRENT_MAX_LAYERS];
    tz_tensor *in = x;
    for (int l = 0; l < L; l++) {
        tz_tensor *outs[2];
        for (int dir = 0; dir < dirs; dir++) {
            const nn_recurrent_weights *p = &m->p[l][dir];
            int k = l * dirs + dir;
            tz_tensor *hk = state_row(g, h0, k, B, H), *y;
            if (c->cell == NN_CELL_LSTM) {
                tz_tensor *seq =
                    tz_lstm_seq(g, in, hk, state_row(g, c0, k, B, H), p->w_ih, p->w_hh, p->b_ih, p->b_hh, p->peep, dir);
                y = tz_slice(g, seq, 0, 0, T);
                cs_last[k] = tz_slice(g, seq, 0, T, 1);
            } else if (c->cell == NN_CELL_GRU) {
                y = tz_gru_seq(g, in, hk, p->w_ih, p->w_hh, p->b_ih, p->b_hh, c->gru_cho, dir);
            } else {
                y = tz_rnn_seq(g, in, hk, p->w_ih, p->w_hh, p->b_ih, p->b_hh, dir);
            }
            hs_last[k] = tz_slice(g, y, 0, dir ? 0 : T - 1, 1); // the last step processed
            outs[dir] = y;
        }
        tz_tensor *out = dirs == 2 ? tz_concat(g, outs, 2, 2) : outs[0];
        if (c->residual && l > 0 && tz_same_shape(out, in)) out = tz_add(g, out, in);
        if (l + 1 < L) out = tz_dropout(g, out, c->dropout);
        in = out;
    }
    if (h_n) *h_n = tz_concat(g, hs_last, L * dirs, 0);
    if (c_n) *c_n = c->cell == NN_CELL_LSTM ? tz_concat(g, cs_last, L * dirs, 0) : NULL;
    return in;
}
