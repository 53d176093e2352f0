// gradcheck.c: the harness. Per-element central differences (every element of every input)
// or, for big models, the directional derivative along random unit directions.
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED_INPUTS 1234
#define SEED_STEP 99 // g->rng before every forward: same dropout masks each time
#define SEED_R 777

tz_check_opts tz_check_defaults(void) {
    return (tz_check_opts){.mode = TZ_CHECK_AUTO, .eps = 1e-6, .tol = 0, .floor = 1e-2, .directions = 4};
}

void tz_fill_normal(tz_tensor *t, tz_rng *r, double s) {
    for (int i = 0; i < t->n; i++) t->data[i] = s * tz_rng_normal(r);
}

void tz_fill_uniform(tz_tensor *t, tz_rng *r, double lo, double hi) {
    for (int i = 0; i < t->n; i++) t->data[i] = lo + (hi - lo) * tz_rng_uniform(r);
}

typedef struct {
    const tz_check *c;
    void *state;
    tz_graph g;
    double *R; // the output weights, made at the first forward
    int n_out;
} run_ctx;

static tz_tensor *forward(run_ctx *x) {
    tz_graph_reset(&x->g);
    tz_rng_seed(&x->g.rng, SEED_STEP);
    tz_tensor *out = x->c->forward(&x->g, x->state);
    if (!x->R) {
        tz_rng r;
        tz_rng_seed(&r, SEED_R);
        x->n_out = out->n;
        x->R = malloc(sizeof(double) * out->n);
        for (int i = 0; i < out->n; i++) x->R[i] = tz_rng_normal(&r);
    }
    if (out->n != x->n_out) tz_fail("gradcheck %s: output size changed between calls", x->c->name);
    return out;
}

static double loss(run_ctx *x) {
    tz_tensor *out = forward(x);
    double L = 0;
    for (int i = 0; i < out->n; i++) L += out->data[i] * x->R[i];
    return L;
}

static double rel_err(double num, double ana, double floor) {
    double d = fabs(num) > fabs(ana) ? fabs(num) : fabs(ana);
    return fabs(num - ana) / (d > floor ? d : floor);
}

static void note(tz_check_result *r, const tz_params *P, long idx, double num, double ana, double err) {
    r->checked++;
    if (err <= r->max_err && r->checked > 1) return;
    r->max_err = err;
    r->worst = idx;
    r->numeric = num;
    r->analytic = ana;
    r->worst_param[0] = 0;
    for (int p = 0; P && p < P->count; p++)
        if ((size_t)idx >= P->off[p] && (size_t)idx < P->off[p] + (size_t)P->t[p]->n) {
            snprintf(r->worst_param, sizeof r->worst_param, "%s", P->names[p]);
            r->worst_offset = idx - (long)P->off[p];
        }
}

void tz_check_run(const tz_check *c, const tz_check_opts *o, tz_check_result *r) {
    memset(r, 0, sizeof *r);
    tz_params P;
    tz_params_init(&P);
    tz_rng rng;
    tz_rng_seed(&rng, SEED_INPUTS);
    run_ctx x = {.c = c};
    x.state = c->setup(&P, &rng);
    tz_graph_init(&x.g, 1 << 16);
    x.g.training = 1;

    // Analytic gradient: one forward, one backward seeded with R.
    tz_params_zero_grad(&P);
    tz_tensor *out = forward(&x);
    real *seed = malloc(sizeof(real) * out->n);
    for (int i = 0; i < out->n; i++) seed[i] = x.R[i];
    tz_backward_seed(&x.g, out, seed);
    free(seed);
    double *ana = malloc(sizeof(double) * (P.n ? P.n : 1));
    for (size_t i = 0; i < P.n; i++) ana[i] = P.grad[i];

    double eps = o->eps, tol = o->tol > 0 ? o->tol : c->tol > 0 ? c->tol : 1e-6;
    int mode = o->mode == TZ_CHECK_AUTO ? (c->directional ? TZ_CHECK_DIRECTIONS : TZ_CHECK_ELEMENTS) : o->mode;
    // Buffers (running statistics) are state, not inputs: nothing to differentiate.
    unsigned char *skip = calloc(P.n ? P.n : 1, 1);
    for (int p = 0; p < P.count; p++)
        if (P.flags[p] & TZ_PARAM_BUFFER) memset(skip + P.off[p], 1, P.t[p]->n);
    if (mode == TZ_CHECK_ELEMENTS) {
        for (size_t i = 0; i < P.n; i++) {
            if (skip[i]) continue;
            double v = P.data[i];
            P.data[i] = v + eps;
            double lp = loss(&x);
            P.data[i] = v - eps;
            double lm = loss(&x);
            P.data[i] = v;
            double num = (lp - lm) / (2 * eps);
            note(r, &P, (long)i, num, ana[i], rel_err(num, ana[i], o->floor));
        }
    } else {
        double *d = malloc(sizeof(double) * (P.n ? P.n : 1)), *base = malloc(sizeof(double) * (P.n ? P.n : 1));
        tz_rng dr;
        tz_rng_seed(&dr, SEED_R + 1);
        for (size_t i = 0; i < P.n; i++) base[i] = P.data[i];
        for (int k = 0; k < o->directions; k++) {
            double norm = 0, ana_d = 0;
            for (size_t i = 0; i < P.n; i++) d[i] = skip[i] ? 0 : tz_rng_normal(&dr), norm += d[i] * d[i];
            norm = sqrt(norm);
            for (size_t i = 0; i < P.n; i++) d[i] /= norm, ana_d += ana[i] * d[i];
            for (size_t i = 0; i < P.n; i++) P.data[i] = base[i] + eps * d[i];
            double lp = loss(&x);
            for (size_t i = 0; i < P.n; i++) P.data[i] = base[i] - eps * d[i];
            double lm = loss(&x);
            for (size_t i = 0; i < P.n; i++) P.data[i] = base[i];
            double num = (lp - lm) / (2 * eps);
            note(r, NULL, k, num, ana_d, rel_err(num, ana_d, o->floor));
        }
        free(d);
        free(base);
    }
    free(skip);
    r->ok = r->checked > 0 && r->max_err <= tol;
    free(ana);
    free(x.R);
    tz_graph_free(&x.g);
    if (c->teardown) c->teardown(x.state);
    tz_params_free(&P);
}

const tz_check *tz_checks(int *count) {
    // Groups are appended here as nn and models register theirs.
    static tz_check *all;
    static int n;
    if (!all) {
        const tz_check *groups[] = {tz_op_checks, tz_nn_checks, tz_attention_checks, tz_model_checks};
        const int sizes[] = {tz_n_op_checks, tz_n_nn_checks, tz_n_attention_checks, tz_n_model_checks};
        int total = 0;
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) total += sizes[k];
        all = malloc(sizeof *all * total);
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            memcpy(all + n, groups[k], sizeof *all * sizes[k]);
            n += sizes[k];
        }
    }
    *count = n;
    return all;
}

const tz_check *tz_check_find(const char *name) {
    int n;
    const tz_check *all = tz_checks(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i].name, name)) return &all[i];
    return NULL;
}
