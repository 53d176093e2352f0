// lstm.c: the LSTM language model of Graves 2013, "Generating Sequences With Recurrent Neural
// Networks": stacked LSTMs with peephole connections (Gers & Schmidhuber 2000), forget-gate
// bias 1 (Gers 2000; Jozefowicz 2015), trained with truncated BPTT.
#include "recurrent_lm.h"

static const cfg_key keys[] = {
    RECURRENT_LM_KEYS("64", "256", "2"),
    {"model", "peephole", CFG_BOOL, "true", "peephole connections from the cell to the gates (Graves 2013)", 0, 0},
    {"model", "forget_bias", CFG_FLOAT, "1", "added to the forget gate's bias at init", -1e6, 1e6},
    {0},
};

static void *create(const cfg *c, int V, tz_params *P, tz_rng *r) {
    nn_recurrent_config rc = nn_recurrent_defaults(NN_CELL_LSTM, 0, 0);
    rc.peephole = cfg_bool(c, "model", "peephole");
    rc.forget_bias = (real)cfg_float(c, "model", "forget_bias");
    return recurrent_lm_create(c, V, P, r, rc);
}

const tz_model_def tz_model_lstm = RECURRENT_LM_DEF("lstm", "Graves 2013, Generating Sequences With Recurrent Neural Networks");
