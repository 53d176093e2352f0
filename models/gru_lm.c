// gru_lm.c: a GRU language model with the gated recurrent unit of Cho et al. 2014, "Learning Phrase
// Representations using RNN Encoder-Decoder for Statistical Machine Translation"
// (h~ = tanh(W x + U (r * h))), or PyTorch/cuDNN's variant (r applied after U) by one key.
#include <string.h>

#include "recurrent_lm.h"

static const cfg_key gru_keys[] = {
    {"model", "layers", CFG_INT, "2", "stacked recurrent layers", 1, 1024, NULL},
    {"model", "form", CFG_STR, "cho", "cho (Cho 2014: U (r*h)) or cudnn (PyTorch: r*(U h + b))", 0, 0, "cho cudnn"},
    {0},
};

static void *gru_create(const cfg *c, int V, int block, tz_params *P, tz_rng *r) {
    (void)block; // a recurrence takes windows of any length
    nn_recurrent_config rc = nn_recurrent_defaults(NN_CELL_GRU, 0, 0);
    const char *form = cfg_str(c, "model", "form");
    rc.gru_cho = !strcmp(form, "cho");
    return recurrent_lm_create(c, V, P, r, rc);
}

const tz_model_def tz_model_gru = {
    .name = "gru",
    .paper = "Cho et al. 2014, Learning Phrase Representations using RNN Encoder-Decoder",
    .family_keys = recurrent_lm_keys,
    .keys = gru_keys,
    .stream = 1,
    .create = gru_create,
    .forward = recurrent_lm_forward,
    .reset = recurrent_lm_reset,
    .carried = recurrent_lm_carried,
    .carried_blocks = recurrent_lm_carried_blocks,
    .free = recurrent_lm_free,
};
