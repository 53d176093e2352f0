// checks_models.c: the gradient check of every model of the zoo, whole (tiny sizes, the
// model's own forward and the cross-entropy loss it trains with).
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "gradcheck.h"
#include "model.h"
#include "setup.h"

enum { V = 7, B = 2, T = 5 };

typedef struct {
    const tz_model_def *def;
    void *m;
    cfg c;
    int x[B * T], y[B * T];
} model_in;

static void *model_setup(tz_params *P, tz_rng *r, const char *type, const char *const *over) {
    model_in *s = calloc(1, sizeof *s);
    s->def = tz_model_find(type);
    tz_cfg_init(&s->c, s->def);
    char buf[128];
    snprintf(buf, sizeof buf, "model.type=%s", type);
    cfg_override(&s->c, buf, 0);
    cfg_override(&s->c, "data.path=unused", 0);
    for (int i = 0; over[i]; i++) cfg_override(&s->c, over[i], i + 1);
    s->m = s->def->create(&s->c, V, cfg_int(&s->c, "train", "block"), P, r);
    for (int i = 0; i < B * T; i++) s->x[i] = (int)tz_rng_below(r, V), s->y[i] = (int)tz_rng_below(r, V);
    return s;
}

static tz_tensor *model_fw(tz_graph *g, void *st) {
    model_in *s = st;
    if (s->def->stream) s->def->reset(s->m, B); // the same (zero) state every call
    tz_batch b = {.B = B, .T = T, .x = s->x, .y = s->y};
    tz_tensor *logits = s->def->forward(g, s->m, &b);
    return tz_cross_entropy(g, logits, b.targets, -1);
}

static void model_teardown(void *st) {
    model_in *s = st;
    s->def->free(s->m);
    free(s);
}

#define MODEL(fn, type, ...) \
    static void *fn(tz_params *P, tz_rng *r) { \
        static const char *const over[] = {__VA_ARGS__, NULL}; \
        return model_setup(P, r, type, over); \
    }
MODEL(mlp_setup, "mlp", "model.context=3", "model.embed=2", "model.hidden=4", "model.direct=true")
MODEL(mlp_pairs_setup, "mlp", "model.context=3", "model.embed=2", "model.hidden=4", "model.shared_pairs=always")
MODEL(mlp_bn_setup, "mlp", "model.context=2", "model.embed=2", "model.hidden=4", "model.batchnorm=true",
      "model.dropout=0.2")
MODEL(rnn_setup, "rnn", "model.embed=3", "model.hidden=4", "model.layers=2", "model.dropout=0.2")
MODEL(lstm_setup, "lstm", "model.embed=3", "model.hidden=3", "model.layers=2", "model.residual=true")
MODEL(gru_setup, "gru", "model.embed=3", "model.hidden=3", "model.layers=2", "model.form=cho")
MODEL(transformer_setup, "transformer", "model.layers=2", "model.heads=2", "model.d_model=4", "model.d_ff=6",
      "train.block=5", "model.dropout=0.1", "model.init_std=0.5")
MODEL(transformer_post_setup, "transformer", "model.layers=1", "model.heads=2", "model.d_model=4", "model.d_ff=6",
      "model.pre_ln=false", "model.positions=sinusoidal", "model.tie=false", "model.ffn=relu", "model.init_std=0.5")
MODEL(hybrid_setup, "hybrid", "model.embed=3", "model.hidden=4", "model.heads=2", "model.cell=lstm",
      "model.dropout=0.1")

// Translation models: 3 pairs of different source and target lengths, padded (TZ_PAD sources,
// TZ_IGNORE targets), so a gradient that leaks through padding or a mask shows up.
enum { MT_VS = 7, MT_VT = 6, MT_B = 3, MT_S = 5, MT_T = 4 };

typedef struct {
    const tz_model_def *def;
    void *m;
    cfg c;
    int src[MT_B * MT_S], src_len[MT_B], x[MT_B * MT_T], y[MT_B * MT_T];
} mt_in;

static void *mt_setup(tz_params *P, tz_rng *r, const char *type, const char *const *over) {
    mt_in *s = calloc(1, sizeof *s);
    s->def = tz_model_find(type);
    tz_cfg_init(&s->c, s->def);
    char buf[128];
    snprintf(buf, sizeof buf, "model.type=%s", type);
    cfg_override(&s->c, buf, 0);
    cfg_override(&s->c, "data.path=unused", 0);
    for (int i = 0; over[i]; i++) cfg_override(&s->c, over[i], i + 1);
    s->m = s->def->mt_create(&s->c, MT_VS, MT_VT, P, r);
    static const int slen[MT_B] = {2, MT_S, 3}, tlen[MT_B] = {MT_T, 2, 1}; // tlen counts <eos>
    for (int b = 0; b < MT_B; b++) {
        s->src_len[b] = slen[b];
        for (int t = 0; t < MT_S; t++)
            s->src[b * MT_S + t] = t < slen[b] ? 4 + (int)tz_rng_below(r, MT_VS - 4) : TZ_PAD;
        for (int t = 0; t < MT_T; t++) {
            int w = 4 + (int)tz_rng_below(r, MT_VT - 4);
            s->y[b * MT_T + t] = t < tlen[b] - 1 ? w : t == tlen[b] - 1 ? TZ_EOS : TZ_IGNORE;
            s->x[b * MT_T + t] = t == 0 ? TZ_BOS : t < tlen[b] ? s->y[b * MT_T + t - 1] : TZ_PAD;
        }
    }
    return s;
}

static tz_tensor *mt_fw(tz_graph *g, void *st) {
    mt_in *s = st;
    tz_batch b = {.B = MT_B, .T = MT_T, .x = s->x, .y = s->y, .S = MT_S, .src = s->src, .src_len = s->src_len};
    tz_tensor *logits = s->def->forward(g, s->m, &b);
    return tz_cross_entropy(g, logits, b.targets, TZ_IGNORE);
}

static void mt_teardown(void *st) {
    mt_in *s = st;
    s->def->free(s->m);
    free(s);
}

#define MT_MODEL(fn, type, ...) \
    static void *fn(tz_params *P, tz_rng *r) { \
        static const char *const over[] = {__VA_ARGS__, NULL}; \
        return mt_setup(P, r, type, over); \
    }
#define MT_SMALL "model.embed=3", "model.hidden=3", "model.dec_hidden=4"
MT_MODEL(rnnsearch_setup, "rnnsearch", MT_SMALL, "model.attn_dim=3")
MT_MODEL(rnnsearch_cho_maxout_setup, "rnnsearch", MT_SMALL, "model.attn_dim=2", "model.form=cho",
         "model.readout=maxout", "model.maxout_units=3", "model.dropout=0.2", "model.skip_padding=true")
MT_MODEL(rnnsearch_general_setup, "rnnsearch", MT_SMALL, "model.score=general")
MT_MODEL(rnnsearch_dot_setup, "rnnsearch", "model.embed=3", "model.hidden=2", "model.dec_hidden=4", "model.score=dot")
MT_MODEL(rnnenc_setup, "rnnenc", MT_SMALL)
MT_MODEL(rnnenc_cho_maxout_setup, "rnnenc", MT_SMALL, "model.form=cho", "model.readout=maxout", "model.maxout_units=2",
         "model.skip_padding=true")
#define TMT_SMALL "model.layers=2", "model.heads=2", "model.d_model=4", "model.d_ff=6"
MT_MODEL(transformer_mt_setup, "transformer_mt", TMT_SMALL, "model.dropout=0.1", "model.skip_padding=false")
MT_MODEL(transformer_mt_preln_setup, "transformer_mt", TMT_SMALL, "model.pre_ln=true", "model.tie=false",
         "model.ffn=gelu", "model.attn_dropout=0.1")

// The label-smoothed loss the Transformer trains with (eps 0.1), over the same padded batch.
static tz_tensor *mt_smooth_fw(tz_graph *g, void *st) {
    mt_in *s = st;
    tz_batch b = {.B = MT_B, .T = MT_T, .x = s->x, .y = s->y, .S = MT_S, .src = s->src, .src_len = s->src_len};
    tz_tensor *logits = s->def->forward(g, s->m, &b);
    return tz_cross_entropy_smooth(g, logits, b.targets, TZ_IGNORE, 0.1);
}

#define CHECK(name, setup) \
    { name, setup, model_fw, model_teardown, 0, 0, NULL, NULL }
#define MT_CHECK(name, setup) \
    { name, setup, mt_fw, mt_teardown, 0, 0, NULL, NULL }
const tz_check tz_model_checks[] = {
    CHECK("model/mlp", mlp_setup),
    CHECK("model/mlp_shared_pairs", mlp_pairs_setup),
    CHECK("model/mlp_batchnorm_dropout", mlp_bn_setup),
    CHECK("model/rnn", rnn_setup),
    CHECK("model/lstm", lstm_setup),
    CHECK("model/gru", gru_setup),
    CHECK("model/transformer", transformer_setup),
    CHECK("model/transformer_postln_sinusoidal", transformer_post_setup),
    CHECK("model/hybrid", hybrid_setup),
    MT_CHECK("model/rnnsearch", rnnsearch_setup),
    MT_CHECK("model/rnnsearch_cho_maxout_dropout_skip", rnnsearch_cho_maxout_setup),
    MT_CHECK("model/rnnsearch_luong_general", rnnsearch_general_setup),
    MT_CHECK("model/rnnsearch_luong_dot", rnnsearch_dot_setup),
    MT_CHECK("model/rnnenc", rnnenc_setup),
    MT_CHECK("model/rnnenc_cho_maxout_skip", rnnenc_cho_maxout_setup),
    MT_CHECK("model/transformer_mt", transformer_mt_setup),
    {"model/transformer_mt_preln_untied_smooth_skip", transformer_mt_preln_setup, mt_smooth_fw, mt_teardown, 0, 0, NULL,
     NULL},
};
const int tz_n_model_checks = sizeof tz_model_checks / sizeof *tz_model_checks;
