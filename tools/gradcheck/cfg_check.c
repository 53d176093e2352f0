// cfg_check.c: the gradient check of the model a cfg configures (gradcheck --cfg): the trainer's
// schema and cfg reader (train/setup.c), the model from the registry (models/zoo.c), a random
// batch of its shape, and the loss it trains with (cross-entropy, label-smoothed if the cfg says).
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "model.h"
#include "pairs.h"
#include "setup.h"

typedef struct cfg_ctx {
    cfg c;
    const tz_model_def *def;
    int V, VS, VT; // vocabularies (language model; translation source and target)
    int B, T, S; // batch rows, target (or stream) length, source length
    double smoothing;
} cfg_ctx;

typedef struct cfg_state {
    const cfg_ctx *x;
    void *m;
    int *tok; // x, y (B,T) and, for pairs, src (B,S), src_len (B): one block
    int *x_, *y_, *src, *src_len;
} cfg_state;

// --small: each key the model has, at most this (a few units: every loop and mask of the model
// runs, in seconds, every element checked). Heads 2 divides d_model 4 and hidden 4.
static const struct {
    const char *section, *key;
    int small;
} shrink[] = {
    {"model", "embed", 3},        {"model", "hidden", 4},  {"model", "dec_hidden", 4}, {"model", "attn_dim", 3},
    {"model", "maxout_units", 2}, {"model", "d_model", 4}, {"model", "heads", 2},      {"model", "d_ff", 6},
    {"model", "layers", 2},       {"model", "context", 3}, {"train", "block", 5},      {"train", "batch", 3},
};

static int has_key(const cfg *c, const char *section, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].key->section, section) && !strcmp(c->v[i].key->key, key)) return 1;
    return 0;
}

// "N" or "N,M" (translation: source, target) -> a, b; fails naming the option otherwise.
static void parse_vocab(const char *s, int *a, int *b) {
    char *end;
    long x = strtol(s, &end, 10), y = x;
    if (*end == ',') y = strtol(end + 1, &end, 10);
    if (*end || x < 5 || y < 5 || x > 1 << 24 || y > 1 << 24)
        tz_fail("gradcheck: --vocab '%s': want N or SRC,TGT, each in [5, 16777216]", s);
    *a = (int)x, *b = (int)y;
}

static void *cfg_setup(const void *ctx, tz_params *P, tz_rng *r) {
    const cfg_ctx *x = ctx;
    cfg_state *s = tz_calloc(1, sizeof *s, "gradcheck");
    s->x = x;
    int B = x->B, T = x->T, S = x->S;
    s->tok = tz_calloc((size_t)B * (2 * T + S + 1), sizeof(int), "gradcheck");
    s->x_ = s->tok, s->y_ = s->x_ + B * T, s->src = s->y_ + B * T, s->src_len = s->src + B * S;
    if (!x->def->pairs) {
        s->m = x->def->create(&x->c, x->V, x->T, P, r);
        for (int i = 0; i < B * T; i++) s->x_[i] = (int)tz_rng_below(r, x->V), s->y_[i] = (int)tz_rng_below(r, x->V);
        return s;
    }
    s->m = x->def->mt_create(&x->c, x->VS, x->VT, P, r);
    // Pairs of different lengths, padded (TZ_PAD sources, TZ_IGNORE targets): a gradient that leaks
    // through padding or a mask shows up. Row 0 has the longest source, row 1 the longest target.
    for (int b = 0; b < B; b++) {
        int ns = b == 0 ? S : 1 + (int)tz_rng_below(r, S), nt = b == 1 ? T : 1 + (int)tz_rng_below(r, T); // nt: + <eos>
        s->src_len[b] = ns;
        for (int t = 0; t < S; t++) s->src[b * S + t] = t < ns ? 4 + (int)tz_rng_below(r, x->VS - 4) : TZ_PAD;
        for (int t = 0; t < T; t++) {
            int w = 4 + (int)tz_rng_below(r, x->VT - 4);
            s->y_[b * T + t] = t < nt - 1 ? w : t == nt - 1 ? TZ_EOS : TZ_IGNORE;
            s->x_[b * T + t] = t == 0 ? TZ_BOS : t < nt ? s->y_[b * T + t - 1] : TZ_PAD;
        }
    }
    return s;
}

static tz_tensor *cfg_forward(tz_graph *g, void *st) {
    cfg_state *s = st;
    const cfg_ctx *x = s->x;
    if (x->def->stream) x->def->reset(s->m, x->B); // the same (zero) state every call
    tz_batch b = {.B = x->B, .T = x->T, .x = s->x_, .y = s->y_};
    if (x->def->pairs) b.S = x->S, b.src = s->src, b.src_len = s->src_len;
    tz_tensor *logits = x->def->forward(g, s->m, &b);
    return tz_cross_entropy_smooth(g, logits, b.targets, TZ_IGNORE, (real)x->smoothing);
}

static void cfg_teardown(void *st) {
    cfg_state *s = st;
    s->x->def->free(s->m);
    free(s->tok);
    free(s);
}

void tz_cfg_check_make(tz_check *check, char *name, size_t name_size, const char *path, char *const *overrides,
                       int n_overrides, int small, const char *vocab, int batch) {
    cfg_ctx *x = tz_calloc(1, sizeof *x, "gradcheck");
    x->def = tz_cfg_load(&x->c, path, overrides, n_overrides);
    if (small) { // the shrinking overrides first, the user's after them (theirs win)
        char(*over)[96] = tz_calloc(sizeof shrink / sizeof *shrink, sizeof *over, "gradcheck");
        char **all = tz_calloc(sizeof shrink / sizeof *shrink + (size_t)n_overrides, sizeof *all, "gradcheck");
        int n = 0;
        for (size_t k = 0; k < sizeof shrink / sizeof *shrink; k++) {
            if (!has_key(&x->c, shrink[k].section, shrink[k].key)) continue;
            if (cfg_int(&x->c, shrink[k].section, shrink[k].key) <= shrink[k].small) continue;
            snprintf(over[n], sizeof *over, "%s.%s=%d", shrink[k].section, shrink[k].key, shrink[k].small);
            all[n] = over[n], n++;
        }
        for (int i = 0; i < n_overrides; i++) all[n++] = overrides[i];
        x->def = tz_cfg_load(&x->c, path, all, n);
        free(all);
        free(over);
    }
    x->smoothing = cfg_float(&x->c, "train", "label_smoothing");
    x->B = cfg_int(&x->c, "train", "batch");
    // Full size: the model at its size, the batch at `batch` rows (default 4: gradients do not
    // depend on how many rows there are, the time does; BatchNorm still sees several).
    if (!small) x->B = batch > 0 ? batch : x->B < 4 ? x->B : 4;
    x->T = cfg_int(&x->c, "train", "block");
    if (x->def->pairs) {
        tz_data_kind kind = tz_data_kind_of(&x->c);
        int synthetic = kind == TZ_DATA_REVERSE || kind == TZ_DATA_COPY;
        // --small: a synthetic task of 7 source and 6 target tokens, sources up to 5, targets 4.
        // Else the cfg's own synthetic task (14 tokens, its max_len), or the eng-fra-like lengths
        // of pairs (1-10 tokens, + <eos>) and vocabularies of 1000 unless --vocab says.
        x->VS = small ? 7 : synthetic ? 14 : 1000, x->VT = small ? 6 : x->VS;
        int len = small ? 4 : synthetic ? cfg_int(&x->c, "data", "max_len") + 1 : 11;
        x->S = small ? 5 : len, x->T = len;
        if (vocab && !small) parse_vocab(vocab, &x->VS, &x->VT);
    } else {
        x->V = small ? 7 : 65; // tiny Shakespeare's characters unless --vocab says
        int unused;
        if (vocab && !small) parse_vocab(vocab, &x->V, &unused);
    }
    snprintf(name, name_size, "cfg/%s%s (%s)", x->def->name, small ? " --small" : "", path);
    *check =
        (tz_check){.name = name, .forward = cfg_forward, .teardown = cfg_teardown, .setup_ctx = cfg_setup, .ctx = x};
}

void tz_cfg_check_free(tz_check *check) {
    free((void *)check->ctx);
    check->ctx = NULL;
}
