// checks_nn.c: gradient checks of the nn layers: norms and the fused recurrent sequence ops
// (several time steps, initial states, both directions, peepholes, both GRU forms), and the
// stacked recurrent layer.
#include <stdlib.h>

#include "gradcheck.h"
#include "attention_step.h"
#include "gru_step.h"
#include "nn.h"

enum { T = 4, B = 2, I = 3, H = 3 };

// Everything a recurrent check may use, declared as parameters so each element is perturbed.
typedef struct {
    tz_tensor *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh, *peep;
} seq_in;

static tz_tensor *normal(tz_params *P, tz_rng *r, const char *name, int ndim, const int *shape, double s) {
    tz_tensor *t = tz_param(P, name, ndim, shape);
    tz_fill_normal(t, r, s);
    return t;
}

static seq_in *seq_setup(tz_params *P, tz_rng *r, int G, int peep) {
    seq_in *s = calloc(1, sizeof *s);
    s->x = normal(P, r, "x", 3, (const int[]){T, B, I}, 1);
    s->h0 = normal(P, r, "h0", 2, (const int[]){B, H}, 0.5);
    s->c0 = normal(P, r, "c0", 2, (const int[]){B, H}, 0.5);
    s->w_ih = normal(P, r, "w_ih", 2, (const int[]){G * H, I}, 0.6);
    s->w_hh = normal(P, r, "w_hh", 2, (const int[]){G * H, H}, 0.6);
    s->b_ih = normal(P, r, "b_ih", 1, (const int[]){G * H}, 0.3);
    s->b_hh = normal(P, r, "b_hh", 1, (const int[]){G * H}, 0.3);
    if (peep) s->peep = normal(P, r, "peep", 2, (const int[]){3, H}, 0.5);
    return s;
}
static void *rnn_setup(tz_params *P, tz_rng *r) { return seq_setup(P, r, 1, 0); }
static void *lstm_setup(tz_params *P, tz_rng *r) { return seq_setup(P, r, 4, 0); }
static void *lstm_peep_setup(tz_params *P, tz_rng *r) { return seq_setup(P, r, 4, 1); }
static void *gru_setup(tz_params *P, tz_rng *r) { return seq_setup(P, r, 3, 0); }

#define S ((seq_in *)st)
static tz_tensor *rnn_fw(tz_graph *g, void *st) {
    return tz_rnn_seq(g, S->x, S->h0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, 0);
}
static tz_tensor *rnn_rev_fw(tz_graph *g, void *st) {
    return tz_rnn_seq(g, S->x, S->h0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, 1);
}
static tz_tensor *rnn_noinit_fw(tz_graph *g, void *st) {
    return tz_rnn_seq(g, S->x, NULL, S->w_ih, S->w_hh, NULL, S->b_hh, 0);
}
static tz_tensor *lstm_fw(tz_graph *g, void *st) {
    return tz_lstm_seq(g, S->x, S->h0, S->c0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, S->peep, 0);
}
static tz_tensor *lstm_rev_fw(tz_graph *g, void *st) {
    return tz_lstm_seq(g, S->x, S->h0, S->c0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, S->peep, 1);
}
static tz_tensor *lstm_noinit_fw(tz_graph *g, void *st) {
    return tz_lstm_seq(g, S->x, NULL, NULL, S->w_ih, S->w_hh, S->b_ih, NULL, NULL, 0);
}
static tz_tensor *gru_fw(tz_graph *g, void *st) {
    return tz_gru_seq(g, S->x, S->h0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, 0, 0);
}
static tz_tensor *gru_rev_fw(tz_graph *g, void *st) {
    return tz_gru_seq(g, S->x, S->h0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, 0, 1);
}
static tz_tensor *gru_cho_fw(tz_graph *g, void *st) {
    return tz_gru_seq(g, S->x, S->h0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, 1, 0);
}
static tz_tensor *gru_cho_rev_fw(tz_graph *g, void *st) {
    return tz_gru_seq(g, S->x, S->h0, S->w_ih, S->w_hh, S->b_ih, S->b_hh, 1, 1);
}
static tz_tensor *gru_noinit_fw(tz_graph *g, void *st) {
    return tz_gru_seq(g, S->x, NULL, S->w_ih, S->w_hh, S->b_ih, NULL, 1, 0);
}
#undef S

// Norms: x (3,5) plus the layer's own parameters.
typedef struct {
    tz_tensor *x, *gain;
    nn_batchnorm bn;
} norm_in;
static void *rms_setup(tz_params *P, tz_rng *r) {
    norm_in *s = calloc(1, sizeof *s);
    s->x = normal(P, r, "x", 2, (const int[]){3, 5}, 1);
    s->gain = normal(P, r, "gain", 1, (const int[]){5}, 1);
    return s;
}
static tz_tensor *rms_fw(tz_graph *g, void *st) {
    return tz_rmsnorm(g, ((norm_in *)st)->x, ((norm_in *)st)->gain, 1e-5);
}
static void *bn_setup(tz_params *P, tz_rng *r) {
    norm_in *s = calloc(1, sizeof *s);
    s->x = normal(P, r, "x", 2, (const int[]){4, 5}, 1);
    nn_batchnorm_init(&s->bn, P, "bn", 5, 1e-5, 0.1);
    tz_fill_normal(s->bn.w, r, 1);
    tz_fill_normal(s->bn.b, r, 1);
    for (int j = 0; j < 5; j++) s->bn.running_mean->data[j] = 0.1 * j, s->bn.running_var->data[j] = 0.5 + j;
    return s;
}
static tz_tensor *bn_train_fw(tz_graph *g, void *st) {
    return nn_batchnorm_forward(g, &((norm_in *)st)->bn, ((norm_in *)st)->x);
}
static tz_tensor *bn_eval_fw(tz_graph *g, void *st) {
    g->training = 0;
    tz_tensor *y = nn_batchnorm_forward(g, &((norm_in *)st)->bn, ((norm_in *)st)->x);
    g->training = 1;
    return y;
}

// The stacked layer: 2 layers, both directions, dropout between layers, initial states; the
// output joins the sequence output and the final states so all three are checked.
typedef struct {
    nn_recurrent m;
    tz_tensor *x, *h0, *c0;
} layer_in;
static void *layer_setup(tz_params *P, tz_rng *r, nn_cell_kind cell, int layers, int bidir, int residual, int cho) {
    layer_in *s = calloc(1, sizeof *s);
    int dirs = bidir ? 2 : 1;
    s->x = normal(P, r, "x", 3, (const int[]){T, B, H}, 1);
    s->h0 = normal(P, r, "h0", 3, (const int[]){layers * dirs, B, H}, 0.5);
    if (cell == NN_CELL_LSTM) s->c0 = normal(P, r, "c0", 3, (const int[]){layers * dirs, B, H}, 0.5);
    nn_recurrent_config c = nn_recurrent_defaults(cell, H, H);
    c.layers = layers, c.bidirectional = bidir, c.residual = residual, c.gru_cho = cho, c.dropout = 0.3;
    c.peephole = cell == NN_CELL_LSTM;
    c.init = (nn_init){NN_INIT_NORMAL, 0.6};
    nn_recurrent_init(&s->m, P, "rec", &c, r);
    return s;
}
static void *layer_lstm_setup(tz_params *P, tz_rng *r) { return layer_setup(P, r, NN_CELL_LSTM, 2, 1, 0, 0); }
static void *layer_gru_setup(tz_params *P, tz_rng *r) { return layer_setup(P, r, NN_CELL_GRU, 3, 0, 1, 1); }
static void *layer_rnn_setup(tz_params *P, tz_rng *r) { return layer_setup(P, r, NN_CELL_RNN, 2, 1, 0, 0); }
static tz_tensor *flat(tz_graph *g, tz_tensor *t) { return tz_reshape(g, t, 1, (const int[]){t->n}); }
static tz_tensor *layer_fw(tz_graph *g, void *st) {
    layer_in *s = st;
    tz_tensor *h_n, *c_n, *parts[3];
    parts[0] = flat(g, nn_recurrent_forward(g, &s->m, s->x, s->h0, s->c0, &h_n, &c_n));
    parts[1] = flat(g, h_n);
    parts[2] = c_n ? flat(g, c_n) : NULL;
    return tz_concat(g, parts, c_n ? 3 : 2, 0);
}

// Wide enough for whole SIMD tiles of the packed recurrent product (AVX-512 is 12 x 32, AVX2 6 x
// 16) and their edges: gradcheck --f32 checks the float32 kernels on it. Directional (10k weights).
enum { WT = 3, WB = 13, WI = 20, WH = 37 };
static void *lstm_wide_setup(tz_params *P, tz_rng *r) {
    seq_in *s = calloc(1, sizeof *s);
    s->x = normal(P, r, "x", 3, (const int[]){WT, WB, WI}, 1);
    s->h0 = normal(P, r, "h0", 2, (const int[]){WB, WH}, 0.5);
    s->c0 = normal(P, r, "c0", 2, (const int[]){WB, WH}, 0.5);
    s->w_ih = normal(P, r, "w_ih", 2, (const int[]){4 * WH, WI}, 0.2);
    s->w_hh = normal(P, r, "w_hh", 2, (const int[]){4 * WH, WH}, 0.2);
    s->b_ih = normal(P, r, "b_ih", 1, (const int[]){4 * WH}, 0.3);
    s->b_hh = normal(P, r, "b_hh", 1, (const int[]){4 * WH}, 0.3);
    return s;
}

#define CHECK(name, setup, fw) \
    { name, setup, fw, free, 0, 0, NULL, NULL }
// One step of additive attention (the fused node of RNNsearch's decoder): 3 rows with 4, 1 and 2
// of 4 keys, so a gradient that reaches a padded key or annotation fails.
typedef struct {
    tz_tensor *ws, *keys, *v, *h;
} attn_step_in;
static void *attn_step_setup(tz_params *P, tz_rng *r) {
    attn_step_in *s = calloc(1, sizeof *s);
    s->ws = normal(P, r, "ws", 2, (const int[]){3, 3}, 0.8);
    s->keys = normal(P, r, "keys", 3, (const int[]){3, 4, 3}, 0.8);
    s->v = normal(P, r, "v", 2, (const int[]){1, 3}, 1);
    s->h = normal(P, r, "h", 3, (const int[]){3, 4, 2}, 1);
    return s;
}
static tz_tensor *attn_step_fw(tz_graph *g, void *st) {
    attn_step_in *s = st;
    static const int len[3] = {4, 1, 2};
    return nn_additive_attention_step(g, s->ws, s->keys, s->v, s->h, len, NULL);
}

// One GRU step as one node (RNNsearch's decoder): xg (B,3H) is the input side, both forms.
typedef struct {
    tz_tensor *xg, *h, *w_hh, *b_hh;
} cell_in;
static void *cell_setup(tz_params *P, tz_rng *r) {
    cell_in *s = calloc(1, sizeof *s);
    s->xg = normal(P, r, "xg", 2, (const int[]){B, 3 * H}, 1);
    s->h = normal(P, r, "h", 2, (const int[]){B, H}, 0.7);
    s->w_hh = normal(P, r, "w_hh", 2, (const int[]){3 * H, H}, 0.6);
    s->b_hh = normal(P, r, "b_hh", 1, (const int[]){3 * H}, 0.3);
    return s;
}
static tz_tensor *cell_fw(tz_graph *g, void *st) {
    cell_in *s = st;
    return nn_gru_cell(g, s->xg, s->h, s->w_hh, s->b_hh, 0);
}
static tz_tensor *cell_cho_fw(tz_graph *g, void *st) {
    cell_in *s = st;
    return nn_gru_cell(g, s->xg, s->h, s->w_hh, s->b_hh, 1);
}
// Two steps in a row, so the state's gradient passes through one cell into the other.
static tz_tensor *cell_twice_fw(tz_graph *g, void *st) {
    cell_in *s = st;
    return nn_gru_cell(g, s->xg, nn_gru_cell(g, s->xg, s->h, s->w_hh, NULL, 1), s->w_hh, s->b_hh, 1);
}

// A Linear whose middle block is one vector per sequence (Cho 2014's readout): 5 rows of 3
// sequences (the last has none), A 3, C 2, E 2, O 4.
typedef struct {
    tz_tensor *a, *c, *e, *w, *b;
} ctx_in;
static void *ctx_setup(tz_params *P, tz_rng *r) {
    ctx_in *s = calloc(1, sizeof *s);
    s->a = normal(P, r, "a", 2, (const int[]){5, 3}, 1);
    s->c = normal(P, r, "c", 2, (const int[]){3, 2}, 1);
    s->e = normal(P, r, "e", 2, (const int[]){5, 2}, 1);
    s->w = normal(P, r, "w", 2, (const int[]){4, 7}, 0.5);
    s->b = normal(P, r, "b", 1, (const int[]){4}, 0.3);
    return s;
}
static tz_tensor *ctx_fw(tz_graph *g, void *st) {
    ctx_in *s = st;
    static const int seq[5] = {1, 0, 1, 1, 0};
    return tz_tanh(g, nn_context_linear(g, s->a, s->c, s->e, seq, s->w, s->b));
}

// A Linear over windows of 3 looked-up embeddings (the MLP's H x): 4 rows over a table of 5
// words, E 2, O 3; word 1 at two positions, word 4 in no window. The pairs' way (9 pairs for 12
// row-positions) and the plain way, with and without a bias.
typedef struct {
    tz_tensor *C, *w, *b;
} win_in;
static void *win_setup(tz_params *P, tz_rng *r) {
    win_in *s = calloc(1, sizeof *s);
    s->C = normal(P, r, "C", 2, (const int[]){5, 2}, 1);
    s->w = normal(P, r, "w", 2, (const int[]){3, 6}, 0.5);
    s->b = normal(P, r, "b", 1, (const int[]){3}, 0.3);
    return s;
}
static const int win_ids[12] = {0, 1, 2, 1, 1, 3, 0, 2, 2, 3, 1, 2};
static tz_tensor *win_pairs_fw(tz_graph *g, void *st) {
    win_in *s = st;
    return tz_tanh(g, nn_window_linear(g, s->C, win_ids, 4, 3, s->w, s->b, 1));
}
static tz_tensor *win_pairs_nobias_fw(tz_graph *g, void *st) {
    win_in *s = st;
    return tz_tanh(g, nn_window_linear(g, s->C, win_ids, 4, 3, s->w, NULL, 1));
}
static tz_tensor *win_plain_fw(tz_graph *g, void *st) {
    win_in *s = st;
    return tz_tanh(g, nn_window_linear(g, s->C, win_ids, 4, 3, s->w, s->b, 0));
}

const tz_check tz_nn_checks[] = {
    CHECK("nn/rmsnorm", rms_setup, rms_fw),
    CHECK("nn/additive_attention_step", attn_step_setup, attn_step_fw),
    CHECK("nn/context_linear", ctx_setup, ctx_fw),
    CHECK("nn/window_linear_pairs", win_setup, win_pairs_fw),
    CHECK("nn/window_linear_pairs_nobias", win_setup, win_pairs_nobias_fw),
    CHECK("nn/window_linear_plain", win_setup, win_plain_fw),
    CHECK("rnn/gru_cell", cell_setup, cell_fw),
    CHECK("rnn/gru_cell_cho", cell_setup, cell_cho_fw),
    CHECK("rnn/gru_cell_cho_twice_nobias", cell_setup, cell_twice_fw),
    {"nn/batchnorm_train", bn_setup, bn_train_fw, free, 0, 0, NULL, NULL},
    {"nn/batchnorm_eval", bn_setup, bn_eval_fw, free, 0, 0, NULL, NULL},
    CHECK("rnn/elman", rnn_setup, rnn_fw),
    CHECK("rnn/elman_reverse", rnn_setup, rnn_rev_fw),
    CHECK("rnn/elman_zero_state", rnn_setup, rnn_noinit_fw),
    CHECK("rnn/lstm", lstm_setup, lstm_fw),
    CHECK("rnn/lstm_reverse", lstm_setup, lstm_rev_fw),
    CHECK("rnn/lstm_peephole", lstm_peep_setup, lstm_fw),
    CHECK("rnn/lstm_peephole_reverse", lstm_peep_setup, lstm_rev_fw),
    CHECK("rnn/lstm_zero_state", lstm_setup, lstm_noinit_fw),
    {"rnn/lstm_wide", lstm_wide_setup, lstm_fw, free, 0, 1, NULL, NULL},
    CHECK("rnn/gru", gru_setup, gru_fw),
    CHECK("rnn/gru_reverse", gru_setup, gru_rev_fw),
    CHECK("rnn/gru_cho", gru_setup, gru_cho_fw),
    CHECK("rnn/gru_cho_reverse", gru_setup, gru_cho_rev_fw),
    CHECK("rnn/gru_cho_zero_state", gru_setup, gru_noinit_fw),
    CHECK("rnn/layer_lstm_2x_bidir_peephole", layer_lstm_setup, layer_fw),
    CHECK("rnn/layer_gru_cho_3x_residual", layer_gru_setup, layer_fw),
    CHECK("rnn/layer_elman_2x_bidir", layer_rnn_setup, layer_fw),
};
const int tz_n_nn_checks = sizeof tz_nn_checks / sizeof *tz_nn_checks;
