// recurrent.h: Elman RNN, LSTM and GRU as fused sequence ops (one tape node per layer and
// direction, hand-written backward), and the layer that stacks them.
//
// Sequences are time-major: x (T, B, I). Each fused op projects the inputs of all T steps with
// one gemm, packs W_hh once, and lets each thread run all T steps of its slice of the batch (a
// (b,H)x(H,G*H) product and the gates per step); backward runs the same way and then takes the
// weight gradients of all steps with one gemm each. Nothing is allocated per step. Weights
// follow PyTorch's layout, so its checkpoints load directly:
//   w_ih (G*H, I), w_hh (G*H, H), b_ih (G*H), b_hh (G*H); gate order
//   LSTM i, f, g, o (G = 4);  GRU r, z, n (G = 3);  RNN (G = 1).
#ifndef NN_RECURRENT_H
#define NN_RECURRENT_H

#include "init.h"
#include "tz.h"

// ---------------------------------------------------------------------------------------------
// The fused ops. h0, c0 (B,H) or NULL for zeros; biases may be NULL. reverse runs t = T-1..0
// (the backward half of a bidirectional layer); outputs stay in time order.

// Elman (1990) / Mikolov (2010): h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) -> (T,B,H)
tz_tensor *tz_rnn_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *w_ih, tz_tensor *w_hh, tz_tensor *b_ih,
                      tz_tensor *b_hh, int reverse);

// LSTM (Hochreiter & Schmidhuber 1997, forget gate Gers 2000, peepholes Graves 2013):
//   i = s(Wx + Uh + p_i c_{t-1}), f = s(Wx + Uh + p_f c_{t-1}), g = tanh(Wx + Uh),
//   c = f c_{t-1} + i g, o = s(Wx + Uh + p_o c), h = o tanh(c)
// peep (3,H) = [p_i; p_f; p_o] or NULL. -> (T+1,B,H): rows 0..T-1 are h_t, row T is the last
// cell state (so the final c can carry a gradient; slice it off with tz_slice, a view).
tz_tensor *tz_lstm_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *c0, tz_tensor *w_ih, tz_tensor *w_hh,
                       tz_tensor *b_ih, tz_tensor *b_hh, tz_tensor *peep, int reverse);

// GRU. cudnn form (PyTorch): n = tanh(W_n x + b_in + r (U_n h + b_hn)).
//      Cho 2014 form:        n = tanh(W_n x + b_in + U_n (r h) + b_hn).
// Both: r = s(W_r x + U_r h + b), z = s(W_z x + U_z h + b), h_t = (1 - z) n + z h_{t-1}.  -> (T,B,H)
tz_tensor *tz_gru_seq(tz_graph *g, tz_tensor *x, tz_tensor *h0, tz_tensor *w_ih, tz_tensor *w_hh, tz_tensor *b_ih,
                      tz_tensor *b_hh, int cho, int reverse);

// ---------------------------------------------------------------------------------------------
// The layer: stacked, optionally bidirectional, with dropout and residual connections between
// layers, and initial/final states for truncated BPTT.
typedef enum { NN_CELL_RNN, NN_CELL_LSTM, NN_CELL_GRU } nn_cell_kind;

#define NN_RECURRENT_MAX_LAYERS 8

typedef struct nn_recurrent_config {
    nn_cell_kind cell;
    int input, hidden, layers; // layers >= 1
    int bidirectional; // outputs [forward; backward] along the feature dim
    int bias; // b_ih and b_hh (PyTorch has both)
    int peephole; // LSTM only: Graves 2013 peepholes
    int gru_cho; // GRU only: Cho 2014 form instead of PyTorch's
    int residual; // x + layer(x) between layers of equal width
    real dropout; // on the outputs of every layer but the last (while training)
    real forget_bias; // LSTM: added to b_ih's forget block at init (Gers 2000: 1)
    nn_init init; // input weights and biases (default: PyTorch's U(+-1/sqrt(H)))
    nn_init recurrent_init; // recurrent weights (default: init); orthogonal is per gate block
} nn_recurrent_config;

// Fills in the defaults PyTorch uses (bias on, forget_bias 0, one layer); set what differs.
nn_recurrent_config nn_recurrent_defaults(nn_cell_kind cell, int input, int hidden);
const char *nn_cell_name(nn_cell_kind cell);
int nn_cell_parse(const char *name, nn_cell_kind *cell); // "rnn", "lstm", "gru"; 0 if unknown

typedef struct nn_recurrent_weights {
    tz_tensor *w_ih, *w_hh, *b_ih, *b_hh, *peep;
} nn_recurrent_weights;

typedef struct nn_recurrent {
    nn_recurrent_config c;
    nn_recurrent_weights p[NN_RECURRENT_MAX_LAYERS][2]; // [layer][direction]
} nn_recurrent;

// Parameters are named as PyTorch's: "<name>.weight_ih_l0", "<name>.bias_hh_l1_reverse", ...
// peepholes as "<name>.weight_peep_l0".
void nn_recurrent_init(nn_recurrent *m, tz_params *P, const char *name, const nn_recurrent_config *c, tz_rng *r);

// x (T,B,input) -> (T,B,dirs*hidden). h0, c0 (layers*dirs, B, hidden) or NULL (zeros); c0 is
// for LSTM only. h_n, c_n (may be NULL) receive the final states in the same layout.
tz_tensor *nn_recurrent_forward(tz_graph *g, const nn_recurrent *m, tz_tensor *x, tz_tensor *h0, tz_tensor *c0,
                                tz_tensor **h_n, tz_tensor **c_n);

// ---------------------------------------------------------------------------------------------
// Shared by the fused ops (recurrent.c).
typedef struct seq_dims {
    int T, B, I, H, G;
} seq_dims;
// Checks x (T,B,I), h0/c0 (B,H), w_ih (G*H,I), w_hh (G*H,H), biases (G*H); fails naming op and shapes.
seq_dims seq_check(const char *op, int G, const tz_tensor *x, const tz_tensor *h0, const tz_tensor *c0,
                   const tz_tensor *w_ih, const tz_tensor *w_hh, const tz_tensor *b_ih, const tz_tensor *b_hh);
// The time step processed before t, or -1 at the start.
static inline int seq_prev(int t, int T, int reverse) { return reverse ? (t + 1 < T ? t + 1 : -1) : t - 1; }
// A block of W_hh packed once per sequence for the per-step products (tz_gemm_pack_b, then
// tz_gemm_packed; a dense copy in float64): rows [r0, r0 + rows) of w_hh (G*H, H), as op(B) = that block^T (tb) or the
// block itself. The steps then multiply by it without packing it again (that was half of an
// LSTM step: a 1 MB copy per step and thread).
real *seq_packed(tz_graph *g, const tz_tensor *w_hh, int r0, int rows, int tb);
// Runs fn(arg, b0, b1) on slices [b0, b1) of the batch, one per thread. Rows of a batch never
// meet in a recurrence, so each thread runs all T steps of its rows with no step-by-step
// hand-off (and the per-step products inside run single-threaded).
void seq_run_rows(int B, void (*fn)(void *arg, int b0, int b1), void *arg);
// gates (T*B, G*H) = x W_ih^T + b1 + b2 (either bias may be NULL).
void seq_input_proj(tz_graph *g, real *gates, const seq_dims *d, const tz_tensor *x, const tz_tensor *w_ih,
                    const tz_tensor *b1, const tz_tensor *b2);
// b's gradient (if it has one) += column sums of dgates (rows, G), on both cores.
void seq_bias_grad(tz_tensor *b, const real *dgates, int rows, int G);
// From dgates (T*B, G*H): dx += dgates W_ih, dW_ih += dgates^T x, db += column sums.
void seq_input_grads(const real *dgates, const seq_dims *d, tz_tensor *x, tz_tensor *w_ih, tz_tensor *b1,
                     tz_tensor *b2);
// dW (rows, H) += sum_t dg_t^T hprev_t, where dg_t is (B, rows) at dg + t*B*ldg and hprev_t is
// hs[prev(t)] (T,B,H) or h0 at the first step (skipped if h0 is NULL).
void seq_recurrent_grad(real *dW, int rows, const real *dg, int ldg, const real *hs, const real *h0, const seq_dims *d,
                        int reverse);

#endif
