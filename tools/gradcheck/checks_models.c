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
    const cfg_key *schemas[3] = {tz_train_keys, tz_data_keys, s->def->keys};
    cfg_init(&s->c, schemas, 3);
    char buf[128];
    snprintf(buf, sizeof buf, "model.type=%s", type);
    cfg_override(&s->c, buf, 0);
    cfg_override(&s->c, "data.path=unused", 0);
    for (int i = 0; over[i]; i++) cfg_override(&s->c, over[i], i + 1);
    s->m = s->def->create(&s->c, V, P, r);
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

#define MODEL(fn, type, ...)                                                  \
    static void *fn(tz_params *P, tz_rng *r) {                                \
        static const char *const over[] = {__VA_ARGS__, NULL};                \
        return model_setup(P, r, type, over);                                 \
    }
MODEL(mlp_setup, "mlp", "model.context=3", "model.embed=2", "model.hidden=4", "model.direct=true")
MODEL(mlp_bn_setup, "mlp", "model.context=2", "model.embed=2", "model.hidden=4", "model.batchnorm=true", "model.dropout=0.2")
MODEL(rnn_setup, "rnn", "model.embed=3", "model.hidden=4", "model.layers=2", "model.dropout=0.2")
MODEL(lstm_setup, "lstm", "model.embed=3", "model.hidden=3", "model.layers=2", "model.residual=true")
MODEL(gru_setup, "gru", "model.embed=3", "model.hidden=3", "model.layers=2", "model.form=cho")
MODEL(transformer_setup, "transformer", "model.layers=2", "model.heads=2", "model.d_model=4", "model.d_ff=6", "train.block=5",
      "model.dropout=0.1", "model.init_std=0.5")
MODEL(transformer_post_setup, "transformer", "model.layers=1", "model.heads=2", "model.d_model=4", "model.d_ff=6",
      "model.pre_ln=false", "model.positions=sinusoidal", "model.tie=false", "model.ffn=relu", "model.init_std=0.5")
MODEL(hybrid_setup, "hybrid", "model.embed=3", "model.hidden=4", "model.heads=2", "model.cell=lstm", "model.dropout=0.1")

#define CHECK(name, setup) {name, setup, model_fw, model_teardown, 0, 0}
const tz_check tz_model_checks[] = {
    CHECK("model/mlp", mlp_setup),
    CHECK("model/mlp_batchnorm_dropout", mlp_bn_setup),
    CHECK("model/rnn", rnn_setup),
    CHECK("model/lstm", lstm_setup),
    CHECK("model/gru", gru_setup),
    CHECK("model/transformer", transformer_setup),
    CHECK("model/transformer_postln_sinusoidal", transformer_post_setup),
    CHECK("model/hybrid", hybrid_setup),
};
const int tz_n_model_checks = sizeof tz_model_checks / sizeof *tz_model_checks;
