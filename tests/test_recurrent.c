// The recurrent layers and LayerNorm against PyTorch (tests/fixtures/gen_recurrent.py): same
// weights, same inputs, outputs and final states equal to 1e-5. Also the layer's errors.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "gemm.h"
#include "helpers.h"
#include "nn.h"

static fixture fx;
static tz_graph g;
static void setup(void) {
    fixture_load(&fx, "recurrent");
    tz_graph_init(&g, 1 << 20);
    g.training = 0;
}
static void teardown(void) {
    fixture_free(&fx);
    tz_graph_free(&g);
}
TestSuite(recurrent, .init = setup, .fini = teardown);

static void expect_close(const tz_tensor *t, const char *name, double tol) { fixture_expect_close(&fx, t, name, tol); }
static tz_tensor *from_fixture(const char *name) { return fixture_tensor_in(&fx, &g, name); }

// A layer of config c in a fresh parameter block, initialised from a seeded RNG.
static void make_layer(nn_recurrent *m, tz_params *P, const char *name, const nn_recurrent_config *c, uint64_t seed) {
    tz_params_init(P);
    tz_rng r;
    tz_rng_seed(&r, seed);
    nn_recurrent_init(m, P, name, c, &r);
}

// Builds the layer as PyTorch's (2 layers, bidirectional), loads its weights by name, runs it.
static void compare(nn_cell_kind cell, const char *name) {
    tz_params P;
    nn_recurrent m;
    nn_recurrent_config c = nn_recurrent_defaults(cell, 3, 4);
    c.layers = 2;
    c.bidirectional = 1;
    make_layer(&m, &P, name, &c, 1);
    for (int i = 0; i < P.count; i++) fixture_copy(&fx, P.names[i], P.t[i]->data, P.t[i]->n);
    char key[64];
    snprintf(key, sizeof key, "%s.h0", name);
    tz_tensor *h0 = from_fixture(key), *c0 = NULL, *h_n, *c_n;
    if (cell == NN_CELL_LSTM) c0 = from_fixture("lstm.c0");
    tz_tensor *out = nn_recurrent_forward(&g, &m, from_fixture("x"), h0, c0, &h_n, &c_n);
    snprintf(key, sizeof key, "%s.out", name);
    expect_close(out, key, 1e-5);
    snprintf(key, sizeof key, "%s.h_n", name);
    expect_close(h_n, key, 1e-5);
    if (cell == NN_CELL_LSTM) expect_close(c_n, "lstm.c_n", 1e-5);
    tz_params_free(&P);
}

Test(recurrent, rnn_matches_pytorch) { compare(NN_CELL_RNN, "rnn"); }
Test(recurrent, lstm_matches_pytorch) { compare(NN_CELL_LSTM, "lstm"); }
Test(recurrent, gru_matches_pytorch) { compare(NN_CELL_GRU, "gru"); }

Test(recurrent, layernorm_matches_pytorch) {
    tz_tensor *y = tz_layernorm(&g, from_fixture("ln.x"), from_fixture("ln.weight"), from_fixture("ln.bias"), 1e-5);
    expect_close(y, "ln.out", 1e-5);
}

Test(recurrent, lstm_forget_bias_and_names) {
    tz_params P;
    nn_recurrent m;
    nn_recurrent_config c = nn_recurrent_defaults(NN_CELL_LSTM, 5, 8);
    c.forget_bias = 1;
    c.init = (nn_init){NN_INIT_ZEROS, 0};
    make_layer(&m, &P, "enc", &c, 1);
    tz_tensor *b = tz_params_find(&P, "enc.bias_ih_l0");
    cr_assert(b && b->n == 32);
    for (int j = 0; j < 32; j++) cr_assert_eq(b->data[j], j >= 8 && j < 16 ? 1 : 0, "bias[%d] = %g", j, b->data[j]);
    cr_assert(tz_params_find(&P, "enc.weight_hh_l0"));
    cr_assert(!tz_params_find(&P, "enc.weight_ih_l0_reverse"));
    tz_params_free(&P);
}

// Truncated BPTT: running two halves with the state carried (and detached) gives the same
// outputs as one run over the whole sequence.
Test(recurrent, state_carry_equals_one_run) {
    tz_params P;
    nn_recurrent m;
    nn_recurrent_config c = nn_recurrent_defaults(NN_CELL_LSTM, 3, 4);
    c.layers = 2;
    make_layer(&m, &P, "lm", &c, 3);
    tz_tensor *x = from_fixture("x"), *h, *cc, *hh, *c2;
    tz_tensor *whole = nn_recurrent_forward(&g, &m, x, NULL, NULL, NULL, NULL);
    tz_tensor *a = nn_recurrent_forward(&g, &m, tz_slice(&g, x, 0, 0, 2), NULL, NULL, &h, &cc);
    tz_tensor *b =
        nn_recurrent_forward(&g, &m, tz_slice(&g, x, 0, 2, 3), tz_detach(&g, h), tz_detach(&g, cc), &hh, &c2);
    for (int i = 0; i < a->n; i++) cr_assert_float_eq(a->data[i], whole->data[i], 1e-6);
    for (int i = 0; i < b->n; i++) cr_assert_float_eq(b->data[i], whole->data[a->n + i], 1e-6);
    tz_params_free(&P);
}

Test(recurrent, bad_configuration_names_layer_and_values) {
    tz_params P;
    tz_params_init(&P);
    tz_rng r;
    tz_rng_seed(&r, 1);
    nn_recurrent m;
    nn_recurrent_config c = nn_recurrent_defaults(NN_CELL_GRU, 3, 0);
    cr_assert(EXPECT_FAIL(nn_recurrent_init(&m, &P, "dec", &c, &r)));
    cr_assert_str_eq(tz_last_error(), "gru 'dec': input = 3, hidden = 0 must be > 0 and layers = 1 in [1,8]");
    c.hidden = 4;
    c.peephole = 1;
    cr_assert(EXPECT_FAIL(nn_recurrent_init(&m, &P, "dec", &c, &r)));
    cr_assert_str_eq(tz_last_error(), "gru 'dec': peephole is for lstm only");
    c.peephole = 0;
    nn_recurrent_init(&m, &P, "dec", &c, &r);
    tz_tensor *x = tz_zeros(&g, 3, (const int[]){5, 2, 7});
    cr_assert(EXPECT_FAIL(nn_recurrent_forward(&g, &m, x, NULL, NULL, NULL, NULL)));
    cr_assert_str_eq(tz_last_error(), "gru: input (5,2,7) does not fit input size 3 (want (T,B,3))");
    tz_params_free(&P);
}

// Each thread runs all steps of its slice of the batch: outputs and every gradient must be the
// same bits on one thread and on two (odd batch, hidden off the SIMD widths, both GRU forms,
// peepholes, reverse direction, initial states with gradients).
static void run_cell(nn_cell_kind cell, int cho, int threads, real *out, real *grads) {
    tz_set_threads(threads);
    tz_params P;
    nn_recurrent m;
    nn_recurrent_config c = nn_recurrent_defaults(cell, 9, 40);
    c.bidirectional = 1;
    c.peephole = cell == NN_CELL_LSTM;
    c.gru_cho = cho;
    make_layer(&m, &P, "seq", &c, 7);
    tz_tensor *x = tz_param(&P, "x", 3, (const int[]){5, 7, 9}), *h0 = tz_param(&P, "h0", 3, (const int[]){2, 7, 40});
    tz_tensor *c0 = cell == NN_CELL_LSTM ? tz_param(&P, "c0", 3, (const int[]){2, 7, 40}) : NULL;
    for (int i = 0; i < P.count; i++)
        for (int k = 0; k < P.t[i]->n; k++) P.t[i]->data[k] = (real)(0.5 * sin(0.37 * k + i));
    tz_graph gg;
    tz_graph_init(&gg, 1 << 16);
    tz_tensor *h_n, *y = nn_recurrent_forward(&gg, &m, x, h0, c0, &h_n, NULL);
    tz_tensor *loss = tz_add(&gg, tz_sum(&gg, tz_mul(&gg, y, y)), tz_sum(&gg, h_n));
    tz_backward(&gg, loss);
    memcpy(out, y->data, sizeof(real) * y->n);
    memcpy(grads, P.grad, sizeof(real) * P.n);
    tz_graph_free(&gg);
    tz_params_free(&P);
    tz_set_threads(0);
}

Test(recurrent, batch_slices_match_one_thread_bit_for_bit) {
    static const struct {
        nn_cell_kind cell;
        int cho;
    } cases[] = {{NN_CELL_RNN, 0}, {NN_CELL_LSTM, 0}, {NN_CELL_GRU, 0}, {NN_CELL_GRU, 1}};
    enum { OUT = 5 * 7 * 80, GRADS = 60000 };
    static real o1[OUT], o2[OUT], g1[GRADS], g2[GRADS];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(g1, 0, sizeof g1), memset(g2, 0, sizeof g2);
        run_cell(cases[c].cell, cases[c].cho, 1, o1, g1);
        run_cell(cases[c].cell, cases[c].cho, 2, o2, g2);
        cr_assert(memcmp(o1, o2, sizeof o1) == 0, "%s%s: outputs differ between 1 and 2 threads",
                  nn_cell_name(cases[c].cell), cases[c].cho ? " (Cho)" : "");
        for (int i = 0; i < GRADS; i++)
            cr_assert(g1[i] == g2[i], "%s%s: gradient %d is %.9g on 1 thread, %.9g on 2", nn_cell_name(cases[c].cell),
                      cases[c].cho ? " (Cho)" : "", i, (double)g1[i], (double)g2[i]);
    }
}
