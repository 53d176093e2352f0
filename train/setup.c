// setup.c: the trainer's cfg schema and what it turns into.
#include "setup.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "corpus.h"
#include "pairs.h"

#define BIG 1e9 // "any count of steps": large, but far from int's end

const cfg_key tz_train_keys[] = {
    {"model", "type", CFG_STR, NULL, "mlp, rnn, lstm, gru, transformer or hybrid", 0, 0, NULL},
    {"train", "steps", CFG_INT, "2000", "optimiser steps", 0, BIG, NULL},
    {"train", "batch", CFG_INT, "64", "sequences per step (B)", 1, 65536, NULL},
    {"train", "block", CFG_INT, "64", "tokens per sequence (T): the window, or the truncated-BPTT length", 1, 65536,
     NULL},
    {"train", "seed", CFG_INT, "1337", "seed of the initialisation, batches and dropout", 0, INT_MAX, NULL},
    {"train", "threads", CFG_INT, "0", "threads for matrix products (0: all cores)", 0, 1024, NULL},
    {"train", "clip", CFG_FLOAT, "0", "clip gradients to this global L2 norm (0: off)", 0, 1e30, NULL},
    {"train", "clip_value", CFG_FLOAT, "0", "clip each gradient element to +-this (0: off)", 0, 1e30, NULL},
    {"train", "eval_every", CFG_INT, "250", "validate every N steps (and at the end)", 1, BIG, NULL},
    {"train", "eval_tokens", CFG_INT, "0", "validate on the first N tokens of the validation split (0: all)", 0,
     INT_MAX, NULL},
    {"train", "time_limit", CFG_FLOAT, "0",
     "stop after this many seconds of the run (wall clock, validations included; the last step is validated and saved; "
     "0: "
     "no limit)",
     0, 1e9, NULL},
    {"train", "patience", CFG_INT, "0", "stop after N validations without improvement (0: never)", 0, BIG, NULL},
    {"train", "select", CFG_STR, "loss",
     "what 'best' means: loss (lowest val loss) or a task metric, highest wins (bleu, exact)", 0, 0, NULL},
    {"train", "final", CFG_STR, "last",
     "weights of the end-of-run evaluation: last, or best (best.safetensors reloaded)", 0, 0, "last best"},
    {"train", "log_every", CFG_INT, "10", "write a log line every N steps", 1, BIG, NULL},
    {"train", "sample_every", CFG_INT, "0", "print a sample every N steps (0: only at the end)", 0, BIG, NULL},
    {"train", "out_dir", CFG_STR, "", "run directory (default: runs/<model type>)", 0, 0, NULL},
    {"train", "label_smoothing", CFG_FLOAT, "0",
     "training loss against (1 - e) onehot + e / V targets (Szegedy 2016); val/test loss stays plain cross-entropy", 0,
     0.999999, NULL},
    {"train", "on_nonfinite", CFG_STR, "stop",
     "a non-finite loss or gradient: stop (keep the last good checkpoint) or skip the step", 0, 0, "stop skip"},
    {"optim", "name", CFG_STR, "adam", "sgd, adagrad, rmsprop, adam or adamw", 0, 0, "sgd adagrad rmsprop adam adamw"},
    {"optim", "lr", CFG_FLOAT, "1e-3", "peak learning rate", 0, 1e300, NULL},
    {"optim", "beta1", CFG_FLOAT, "0.9", "Adam's beta1", 0, 0.999999, NULL},
    {"optim", "beta2", CFG_FLOAT, "0.999", "Adam's beta2", 0, 0.999999, NULL},
    {"optim", "eps", CFG_FLOAT, "0", "epsilon (0: the optimiser's PyTorch default)", 0, 1, NULL},
    {"optim", "weight_decay", CFG_FLOAT, "0", "weight decay (decoupled for adamw); never on biases and norms", 0, 1e6,
     NULL},
    {"optim", "no_decay_embeddings", CFG_BOOL, "false", "exempt embedding tables from weight decay", 0, 0, NULL},
    {"optim", "momentum", CFG_FLOAT, "0", "sgd / rmsprop momentum", 0, 1, NULL},
    {"optim", "nesterov", CFG_BOOL, "false", "sgd: Nesterov momentum", 0, 0, NULL},
    {"optim", "alpha", CFG_FLOAT, "0.99", "rmsprop's smoothing constant", 0, 1, NULL},
    {"schedule", "kind", CFG_STR, "constant", "constant, step, cosine, linear or noam", 0, 0,
     "constant step cosine linear noam"},
    {"schedule", "warmup", CFG_INT, "0", "linear warmup steps (cosine, linear, noam)", 0, BIG, NULL},
    {"schedule", "decay_iters", CFG_INT, "0", "cosine/linear: step where the lr reaches min_lr (0: train.steps)", 0,
     BIG, NULL},
    {"schedule", "min_lr", CFG_FLOAT, "0", "cosine/linear: the floor", 0, 1e300, NULL},
    {"schedule", "gamma", CFG_FLOAT, "0.5", "step: multiply the lr by this ...", 0, 1e6, NULL},
    {"schedule", "every", CFG_INT, "1000", "step: ... every N steps ...", 1, BIG, NULL},
    {"schedule", "start", CFG_INT, "0", "step: ... from this step on", 0, BIG, NULL},
    {"schedule", "d_model", CFG_INT, "0", "noam: the model width d in lr * d^-0.5 * min(s^-0.5, s * warmup^-1.5)", 0,
     1 << 20, NULL},
    {"sample", "prompt", CFG_STR, "\n", "text the samples start from", 0, 0, NULL},
    {"sample", "tokens", CFG_INT, "200", "tokens per sample", 0, 10000000, NULL},
    {"sample", "temperature", CFG_FLOAT, "0.8", "softmax temperature (0: argmax)", 0, 1000, NULL},
    {"sample", "top_k", CFG_INT, "0", "sample among the k most likely (0: all)", 0, INT_MAX, NULL},
    {0},
};

// This machine's memory in bytes (0 if unknown).
static double memory_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

int tz_schemas(const tz_model_def *def, const cfg_key **schemas) {
    int n = 0;
    schemas[n++] = tz_train_keys, schemas[n++] = tz_data_keys, schemas[n++] = tz_pair_keys;
    if (def->family_keys) schemas[n++] = def->family_keys;
    schemas[n++] = def->keys;
    return n;
}

void tz_cfg_init(cfg *c, const tz_model_def *def) {
    const cfg_key *schemas[TZ_SCHEMAS];
    cfg_init(c, schemas, tz_schemas(def, schemas));
}

// A [model] int key's value, or 0 if the model has no such key.
static double model_int(const cfg *c, const tz_model_def *def, const char *key) {
    const cfg_key *tables[2] = {def->family_keys, def->keys};
    for (int i = 0; i < 2; i++)
        for (const cfg_key *k = tables[i]; k && k->section; k++)
            if (!strcmp(k->key, key) && k->type == CFG_INT) return cfg_int(c, "model", key);
    return 0;
}

// Sizes that cannot work, found before anything is allocated: activations whose element count
// overflows int (the engine's tensor sizes and the models' index arithmetic are int), and
// models whose parameters or activations would need more than this machine's memory. Each bound
// is a lower bound of what the model really needs, so a valid cfg never fails here.
static void check_sizes(const cfg *c, const tz_model_def *def, const char *name) {
    double B = cfg_int(c, "train", "batch"), T = cfg_int(c, "train", "block");
    double L = model_int(c, def, "layers"), heads = model_int(c, def, "heads");
    double widest = 0; // the widest per-position activation
    const char *wide_key = "";
    const char *widths[] = {"embed", "hidden", "d_model", "d_ff"};
    for (int i = 0; i < 4; i++)
        if (model_int(c, def, widths[i]) > widest) widest = model_int(c, def, widths[i]), wide_key = widths[i];
    double context = model_int(c, def, "context"), embed = model_int(c, def, "embed");
    if (context * embed > widest) widest = context * embed, wide_key = "context x embed";
    // x4: an LSTM's gates and a SwiGLU's two halves are 4 and 2 widths wide.
    if (B * T * widest * 4 > INT_MAX)
        tz_fail("%s: [train] batch x block x [model] %s = %.0f x %.0f x %.0f: activations of more than 2^31-1 elements "
                "(make one smaller)",
                name, wide_key, B, T, widest);
    if (B * heads * T * T > INT_MAX)
        tz_fail("%s: [train] batch x [model] heads x block^2 = %.0f x %.0f x %.0f^2: attention weights of more than "
                "2^31-1 elements (make one smaller)",
                name, B, heads, T);
    // Parameters: a recurrent layer has at least an H x H matrix, a Transformer block 4 C^2
    // (attention) + 2 C d_ff (feed-forward), Bengio's MLP its (context x embed) x hidden layer.
    double H = model_int(c, def, "hidden"), C = model_int(c, def, "d_model"), F = model_int(c, def, "d_ff");
    double params = C > 0 ? L * (4 * C * C + 2 * C * F) : context > 0 ? context * embed * H : L * H * H;
    tz_params_check_size(params > 1e18 ? (size_t)1e18 : (size_t)params);
    // Activations: every layer keeps at least one (B, T, width) output and its gradient.
    double mem = memory_bytes(), act = (L > 0 ? L : 1) * B * T * widest * 2 * sizeof(real);
    if (mem > 0 && act > mem)
        tz_fail(
            "%s: [train] batch x block x [model] %s x layers = %.0f x %.0f x %.0f x %.0f: activations need at least "
            "%.1f GiB, more than this machine's memory (%.1f GiB)",
            name, wide_key, B, T, widest, L > 0 ? L : 1, act / (1 << 30), mem / (1 << 30));
}

// The model of the configuration: model.type from the command line, else from the text.
static const tz_model_def *model_of(const char *path, const char *text, size_t len, const char *name,
                                    char *const *overrides, int n_overrides) {
    char type[128];
    int found = path ? cfg_peek(path, "model", "type", type, sizeof type)
                     : cfg_peek_string(text, len, name, "model", "type", type, sizeof type);
    if (!found) type[0] = 0;
    for (int i = 0; i < n_overrides; i++) // model.type may come from the command line
        if (!strncmp(overrides[i], "model.type=", 11)) snprintf(type, sizeof type, "%s", overrides[i] + 11);
    if (!type[0]) tz_fail("%s: [model] type is required (mlp, rnn, lstm, gru, transformer, hybrid)", name);
    const tz_model_def *def = tz_model_find(type);
    if (!def) {
        int n;
        const tz_model_def *const *all = tz_models(&n);
        char known[256] = "";
        for (int i = 0; i < n; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", all[i]->name);
        tz_fail("%s: [model] type = '%s' is not a model of the zoo (%s)", name, type, known);
    }
    return def;
}

// Reads the file path, or else the text, as tz_cfg_load does.
static const tz_model_def *load(cfg *c, const char *path, const char *text, size_t len, const char *name,
                                char *const *overrides, int n_overrides) {
    const tz_model_def *def = model_of(path, text, len, name, overrides, n_overrides);
    tz_cfg_init(c, def);
    if (path) cfg_read_file(c, path);
    else cfg_read_string(c, text, len, name);
    for (int i = 0; i < n_overrides; i++) cfg_override(c, overrides[i], i + 1);
    tz_data_kind kind = tz_data_kind_of(c);
    if ((kind == TZ_DATA_REVERSE || kind == TZ_DATA_COPY) && !cfg_is_set(c, "data", "path")) // no file to read
        cfg_set(c, "data", "path", "", "not used by synthetic data");
    cfg_check_required(c);
    check_sizes(c, def, name);
    return def;
}

const tz_model_def *tz_cfg_load(cfg *c, const char *path, char *const *overrides, int n_overrides) {
    return load(c, path, NULL, 0, path, overrides, n_overrides);
}

const tz_model_def *tz_cfg_load_text(cfg *c, const char *text, size_t len, const char *name, char *const *overrides,
                                     int n_overrides) {
    return load(c, NULL, text, len, name, overrides, n_overrides);
}

nn_optim_config tz_optim_config(const cfg *c) {
    nn_optim_config o = nn_optim_defaults(nn_optim_parse(cfg_str(c, "optim", "name")));
    o.beta1 = cfg_float(c, "optim", "beta1");
    o.beta2 = cfg_float(c, "optim", "beta2");
    if (cfg_float(c, "optim", "eps") > 0) o.eps = cfg_float(c, "optim", "eps");
    if (cfg_is_set(c, "optim", "weight_decay") || o.kind != NN_OPTIM_ADAMW)
        o.weight_decay = cfg_float(c, "optim", "weight_decay");
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
    s.d_model = cfg_int(c, "schedule", "d_model");
    return s;
}
