// lstm_lm.c: the LSTM language model of Graves 2013, "Generating Sequences With Recurrent Neural
// Networks": stacked LSTMs with peephole connections (Gers & Schmidhuber 2000), forget-gate
// bias 1 (Gers 2000; Jozefowicz 2015), trained with truncated BPTT.
#include "recurrent_lm.h"

static const cfg_key lstm_keys[] = {
    {"model", "layers", CFG_INT, "2", "stacked recurrent layers", 1, 1024, NULL},
    {"model", "peephole", CFG_BOOL, "true", "peephole connections from the cell to the gates (Graves 2013)", 0, 0,
     NULL},
    {"model", "forget_bias", CFG_FLOAT, "1", "added to the forget gate's bias at init", -1e6, 1e6, NULL},
    {0},
};

static void *lstm_create(const cfg *c, int V, int block, tz_params *P, tz_rng *r) {
    (void)block; // a recurrence takes windows of any length
    nn_recurrent_config rc = nn_recurrent_defaults(NN_CELL_LSTM, 0, 0);
    rc.peephole = cfg_bool(c, "model", "peephole");
    rc.forget_bias = (real)cfg_float(c, "model", "forget_bias");
    return recurrent_lm_create(c, V, P, r, rc);
}

const tz_model_def tz_model_lstm = {
    .name = "lstm",
    .paper = "Graves 2013, Generating Sequences With Recurrent Neural Networks",
    .family_keys = recurrent_lm_keys,
    .keys = lstm_keys,
    .stream = 1,
    .create = lstm_create,
    .forward = recurrent_lm_forward,
    .reset = recurrent_lm_reset,
    .carried = recurrent_lm_carried,
    .carried_blocks = recurrent_lm_carried_blocks,
    .free = recurrent_lm_free,
};
