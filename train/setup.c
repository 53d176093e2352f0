// setup.c: the trainer's cfg schema and what it turns into.
#include "setup.h"

#include <string.h>

#include "corpus.h"
#include "pairs.h"

const cfg_key tz_train_keys[] = {
    {"model", "type", CFG_STR, NULL, "mlp, rnn, lstm, gru, transformer or hybrid"},
    {"train", "steps", CFG_INT, "2000", "optimiser steps"},
    {"train", "batch", CFG_INT, "64", "sequences per step (B)"},
    {"train", "block", CFG_INT, "64", "tokens per sequence (T): the window, or the truncated-BPTT length"},
    {"train", "seed", CFG_INT, "1337", "seed of the initialisation, batches and dropout"},
    {"train", "threads", CFG_INT, "0", "threads for matrix products (0: all cores)"},
    {"train", "clip", CFG_FLOAT, "0", "clip gradients to this global L2 norm (0: off)"},
    {"train", "clip_value", CFG_FLOAT, "0", "clip each gradient element to +-this (0: off)"},
    {"train", "eval_every", CFG_INT, "250", "validate every N steps (and at the end)"},
    {"train", "eval_tokens", CFG_INT, "0", "validate on the first N tokens of the validation split (0: all)"},
    {"train", "patience", CFG_INT, "0", "stop after N validations without improvement (0: never)"},
    {"train", "log_every", CFG_INT, "10", "write a log line every N steps"},
    {"train", "sample_every", CFG_INT, "0", "print a sample every N steps (0: only at the end)"},
    {"train", "out_dir", CFG_STR, "", "run directory (default: runs/<model type>)"},
    {"optim", "name", CFG_STR, "adam", "sgd, adagrad, rmsprop, adam or adamw"},
    {"optim", "lr", CFG_FLOAT, "1e-3", "peak learning rate"},
    {"optim", "beta1", CFG_FLOAT, "0.9", "Adam's beta1"},
    {"optim", "beta2", CFG_FLOAT, "0.999", "Adam's beta2"},
    {"optim", "eps", CFG_FLOAT, "0", "epsilon (0: the optimiser's PyTorch default)"},
    {"optim", "weight_decay", CFG_FLOAT, "0", "weight decay (decoupled for adamw); never on biases and norms"},
    {"optim", "no_decay_embeddings", CFG_BOOL, "false", "exempt embedding tables from weight decay"},
    {"optim", "momentum", CFG_FLOAT, "0", "sgd / rmsprop momentum"},
    {"optim", "nesterov", CFG_BOOL, "false", "sgd: Nesterov momentum"},
    {"optim", "alpha", CFG_FLOAT, "0.99", "rmsprop's smoothing constant"},
    {"schedule", "kind", CFG_STR, "constant", "constant, step, cosine, linear or noam"},
    {"schedule", "warmup", CFG_INT, "0", "linear warmup steps (cosine, linear, noam)"},
    {"schedule", "decay_iters", CFG_INT, "0", "cosine/linear: step where the lr reaches min_lr (0: train.steps)"},
    {"schedule", "min_lr", CFG_FLOAT, "0", "cosine/linear: the floor"},
    {"schedule", "gamma", CFG_FLOAT, "0.5", "step: multiply the lr by this ..."},
    {"schedule", "every", CFG_INT, "1000", "step: ... every N steps ..."},
    {"schedule", "start", CFG_INT, "0", "step: ... from this step on"},
    {"schedule", "d_model", CFG_INT, "0", "noam: the model width d in lr * d^-0.5 * min(s^-0.5, s * warmup^-1.5)"},
    {"sample", "prompt", CFG_STR, "\n", "text the samples start from"},
    {"sample", "tokens", CFG_INT, "200", "tokens per sample"},
    {"sample", "temperature", CFG_FLOAT, "0.8", "softmax temperature (0: argmax)"},
    {"sample", "top_k", CFG_INT, "0", "sample among the k most likely (0: all)"},
    {0},
};

const tz_model_def *tz_cfg_load(cfg *c, const char *path, char *const *overrides, int n_overrides) {
    char type[128];
    if (!cfg_peek(path, "model", "type", type, sizeof type)) type[0] = 0;
    for (int i = 0; i < n_overrides; i++) // model.type may come from the command line
        if (!strncmp(overrides[i], "model.type=", 11)) snprintf(type, sizeof type, "%s", overrides[i] + 11);
    if (!type[0]) tz_fail("%s: [model] type is required (mlp, rnn, lstm, gru, transformer, hybrid)", path);
    const tz_model_def *def = tz_model_find(type);
    if (!def) {
        int n;
        const tz_model_def *const *all = tz_models(&n);
        char known[256] = "";
        for (int i = 0; i < n; i++) snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", all[i]->name);
        tz_fail("%s: [model] type = '%s' is not a model of the zoo (%s)", path, type, known);
    }
    const cfg_key *schemas[4] = {tz_train_keys, tz_data_keys, tz_pair_keys, def->keys};
    cfg_init(c, schemas, 4);
    cfg_read_file(c, path);
    for (int i = 0; i < n_overrides; i++) cfg_override(c, overrides[i], i + 1);
    tz_data_kind kind = tz_data_kind_of(c);
    if ((kind == TZ_DATA_REVERSE || kind == TZ_DATA_COPY) && !cfg_is_set(c, "data", "path")) // no file to read
        cfg_set(c, "data", "path", "", "not used by synthetic data");
    cfg_check_required(c);
    return def;
}

nn_optim_config tz_optim_config(const cfg *c) {
    nn_optim_config o = nn_optim_defaults(nn_optim_parse(cfg_str(c, "optim", "name")));
    o.beta1 = cfg_float(c, "optim", "beta1");
    o.beta2 = cfg_float(c, "optim", "beta2");
    if (cfg_float(c, "optim", "eps") > 0) o.eps = cfg_float(c, "optim", "eps");
    if (cfg_is_set(c, "optim", "weight_decay") || o.kind != NN_OPTIM_ADAMW) o.weight_decay = cfg_float(c, "optim", "weight_decay");
    o.no_decay_embeddings = cfg_bool(c, "optim", "no_decay_embeddings");
    o.momentum = cfg_float(c, "optim", "momentum");
    o.nesterov = cfg_bool(c, "optim", "nesterov");
    o.alpha = cfg_float(c, "optim", "alpha");
    return o;
}

nn_schedule tz_schedule_config(const cfg *c) {
    nn_schedule s = {0};
    s.kind = nn_schedule_parse(cfg_str(c, "schedule", "kind"));
    s.lr = cfg_float(c, "optim", "lr");
    s.min_lr = cfg_float(c, "schedule", "min_lr");
    s.warmup = cfg_int(c, "schedule", "warmup");
    s.decay_iters = cfg_int(c, "schedule", "decay_iters");
    if (s.decay_iters == 0) s.decay_iters = cfg_int(c, "train", "steps");
    s.gamma = cfg_float(c, "schedule", "gamma");
    s.every = cfg_int(c, "schedule", "every");
    s.start = cfg_int(c, "schedule", "start");
    s.d_model = (int)cfg_int(c, "schedule", "d_model");
    return s;
}
