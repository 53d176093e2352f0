// zoo.c: the registry of the model zoo.
#include <string.h>

#include "model.h"

extern const tz_model_def tz_model_mlp, tz_model_rnn, tz_model_lstm, tz_model_gru, tz_model_transformer,
    tz_model_hybrid, tz_model_rnnenc, tz_model_rnnsearch, tz_model_transformer_mt;

static const tz_model_def *const zoo[] = {&tz_model_mlp,    &tz_model_rnn,         &tz_model_lstm,
                                          &tz_model_gru,    &tz_model_transformer, &tz_model_hybrid,
                                          &tz_model_rnnenc, &tz_model_rnnsearch,   &tz_model_transformer_mt};

const tz_model_def *const *tz_models(int *count) {
    *count = (int)(sizeof zoo / sizeof *zoo);
    return zoo;
}

const tz_model_def *tz_model_find(const char *name) {
    for (size_t i = 0; i < sizeof zoo / sizeof *zoo; i++)
        if (!strcmp(zoo[i]->name, name)) return zoo[i];
    return NULL;
}
