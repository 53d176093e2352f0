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
    return (tz_check_opts){
        .mode = TZ_CHECK_AUTO, .eps = 1e-6, .tol = 0, .floor = 1e-2, .directions = 4, .samples = 0, .report = NULL};
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

// The parameter holding element idx of the block (-1: none).
static int param_of(const tz_params *P, long idx) {
    for (int p = 0; p < P->count; p++)
        if ((size_t)idx >= P->off[p] && (size_t)idx < P->off[p] + (size_t)P->t[p]->n) return p;
    return -1;
}

// Records one comparison: element idx of P (what >= 0: a direction within parameter `what`;
// what == -1 with P NULL: direction idx over all parameters). Prints it to o->report if it fails.
static void note(tz_check_result *r, const tz_check_opts *o, double tol, const tz_params *P, long idx, int what,
                 double num, double ana, double err) {
    r->checked++;
    char where[96] = "";
    if (P && what < 0) {
        int p = param_of(P, idx);
        if (p >= 0) snprintf(where, sizeof where, "%s[%ld]", P->names[p], idx - (long)P->off[p]);
    } else if (P) snprintf(where, sizeof where, "%s (direction %ld)", P->names[what], idx);
    else if (idx < 0) snprintf(where, sizeof where, "along the whole gradient");
    else snprintf(where, sizeof where, "random direction %ld over all parameters", idx);
    if (o->report && !(err <= tol))
        fprintf(o->report, "  FAIL %s: numeric %.10g analytic %.10g rel_err %.2e\n", where, num, ana, err);
    // NaN (an analytic gradient left unwritten: the float64 build fills fresh buffers with NaN)
    // is the worst error and stays so: compared with <=, a later finite error replaced it.
    int worse = r->checked == 1 || err > r->max_err || (isnan(err) && !isnan(r->max_err));
    if (!worse) return;
    r->max_err = err;
    r->worst = idx;
    r->numeric = num;
    r->analytic = ana;
    r->worst_param[0] = 0;
    r->worst_offset = 0;
    if (P && what < 0) {
        int p = param_of(P, idx);
        if (p >= 0) {
            snprintf(r->worst_param, sizeof r->worst_param, "%s", P->names[p]);
            r->worst_offset = idx - (long)P->off[p];
        }
    } else if (P) snprintf(r->worst_param, sizeof r->worst_param, "%s", P->names[what]);
}

// Elements: every element of every input, or at most o->samples per parameter tensor (its
// first and last, the rest drawn at random).
static void check_elements(run_ctx *x, tz_params *P, const double *ana, const unsigned char *skip,
                           const tz_check_opts *o, double tol, tz_check_result *r) {
    tz_rng pick;
    tz_rng_seed(&pick, SEED_R + 2);
    for (int p = 0; p < P->count; p++) {
        long n = P->t[p]->n;
        long m = o->samples > 0 && o->samples < n ? o->samples : n;
        for (long k = 0; k < m; k++) {
            long e = m == n ? k : k == 0 ? 0 : k == 1 ? n - 1 : (long)tz_rng_below(&pick, (uint64_t)n);
            size_t i = P->off[p] + (size_t)e;
            if (skip[i]) continue;
            double v = P->data[i];
            P->data[i] = v + o->eps;
            double lp = loss(x);
            P->data[i] = v - o->eps;
            double lm = loss(x);
            P->data[i] = v;
            double num = (lp - lm) / (2 * o->eps);
            note(r, o, tol, P, (long)i, -1, num, ana[i], rel_err(num, ana[i], o->floor));
        }
    }
}

// (L(x + h d) - L(x - h d)) / 2h at the steps hs (n_h of them): the one closest to ana_d. Stops at
// the first within `enough` of it (a right backward usually at the first step or two; a wrong one
// tries them all).
static double slope(run_ctx *x, tz_params *P, const double *base, const double *d, const double *hs, int n_h,
                    double ana_d, double floor, double enough) {
    double best = NAN, best_err = INFINITY;
    for (int k = 0; k < n_h; k++) {
        for (size_t i = 0; i < P->n; i++) P->data[i] = (real)(base[i] + hs[k] * d[i]);
        double lp = loss(x);
        for (size_t i = 0; i < P->n; i++) P->data[i] = (real)(base[i] - hs[k] * d[i]);
        double lm = loss(x);
        double num = (lp - lm) / (2 * hs[k]), err = rel_err(num, ana_d, floor);
        if (!(err >= best_err)) best = num, best_err = err;
        if (best_err <= enough) break;
    }
    for (size_t i = 0; i < P->n; i++) P->data[i] = (real)base[i];
    return best;
}

// Random directions over all parameters (float64's directional mode: one step, eps).
static void check_directions(run_ctx *x, tz_params *P, const double *ana, const unsigned char *skip,
                             const tz_check_opts *o, double tol, tz_check_result *r) {
    double *d = tz_malloc(sizeof(double) * P->n, "gradcheck"), *base = tz_malloc(sizeof(double) * P->n, "gradcheck");
    tz_rng dr;
    tz_rng_seed(&dr, SEED_R + 1);
    for (size_t i = 0; i < P->n; i++) base[i] = P->data[i];
    for (int k = 0; k < o->directions; k++) {
        double norm = 0, ana_d = 0;
        for (size_t i = 0; i < P->n; i++) d[i] = skip[i] ? 0 : tz_rng_normal(&dr), norm += d[i] * d[i];
        norm = sqrt(norm);
        for (size_t i = 0; i < P->n; i++) d[i] /= norm, ana_d += ana[i] * d[i];
        double num = slope(x, P, base, d, &o->eps, 1, ana_d, o->floor, 0);
        note(r, o, tol, NULL, k, -1, num, ana_d, rel_err(num, ana_d, o->floor));
    }
    free(d);
    free(base);
}

// Float32 (TZ_CHECK_F32 in gradcheck.h): a direction per parameter tensor, one along the whole
// gradient, o->directions random ones; each at nine steps, the best kept.
static void check_f32(run_ctx *x, tz_params *P, const double *ana, const unsigned char *skip, const tz_check_opts *o,
                      double tol, tz_check_result *r) {
    double *d = tz_malloc(sizeof(double) * P->n, "gradcheck"), *base = tz_malloc(sizeof(double) * P->n, "gradcheck");
    static const double steps[] = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5};
    enum { N_STEPS = sizeof steps / sizeof *steps };
    tz_rng dr;
    tz_rng_seed(&dr, SEED_R + 1);
    for (size_t i = 0; i < P->n; i++) base[i] = P->data[i];
    // Directions: -1 along the whole gradient, 0..count-1 within one parameter, then random ones.
    for (int k = -1; k < P->count + o->directions; k++) {
        int param = k >= 0 && k < P->count ? k : -1;
        size_t lo = param >= 0 ? P->off[param] : 0, hi = param >= 0 ? lo + (size_t)P->t[param]->n : P->n;
        if (param >= 0 && skip[lo]) continue;
        double gn = 0, zn = 0, xn = 0;
        for (size_t i = 0; i < P->n; i++) d[i] = 0;
        for (size_t i = lo; i < hi; i++) {
            if (skip[i]) continue;
            gn += ana[i] * ana[i], xn += base[i] * base[i];
            if (k >= 0) d[i] = tz_rng_normal(&dr), zn += d[i] * d[i];
        }
        gn = sqrt(gn), zn = sqrt(zn), xn = sqrt(xn);
        for (size_t i = lo; i < hi; i++) {
            if (skip[i]) continue;
            if (k < P->count && zn > 0) d[i] /= zn; // unit(random_p) (0 along the whole gradient)
            if (k < P->count && gn > 0) d[i] += ana[i] / gn; // + unit(g_p)
        }
        double dn = 0, ana_d = 0;
        for (size_t i = lo; i < hi; i++) dn += d[i] * d[i];
        if (!(dn > 0)) continue;
        dn = sqrt(dn);
        for (size_t i = lo; i < hi; i++) d[i] /= dn, ana_d += ana[i] * d[i];
        double scale = xn > 1e-1 * sqrt((double)(hi - lo)) ? xn : 1e-1 * sqrt((double)(hi - lo)), hs[N_STEPS];
        for (int s = 0; s < N_STEPS; s++) hs[s] = steps[s] * scale;
        double num = slope(x, P, base, d, hs, N_STEPS, ana_d, o->floor, tol / 10);
        note(r, o, tol, param >= 0 ? P : NULL, param >= 0 ? 0 : k, param, num, ana_d, rel_err(num, ana_d, o->floor));
    }
    free(d);
    free(base);
}

void tz_check_run(const tz_check *c, const tz_check_opts *o, tz_check_result *r) {
    memset(r, 0, sizeof *r);
    tz_params P;
    tz_params_init(&P);
    tz_rng rng;
    tz_rng_seed(&rng, SEED_INPUTS);
    run_ctx x = {.c = c};
    x.state = c->setup_ctx ? c->setup_ctx(c->ctx, &P, &rng) : c->setup(&P, &rng);
    tz_graph_init(&x.g, 1 << 16);
    x.g.training = 1;

    // Analytic gradient: one forward, one backward seeded with R.
    // As the trainer does: gradients start unwritten (NaN in float64), so an op that adds to one
    // it should have overwritten shows as NaN.
    tz_params_grad_begin(&P);
    tz_tensor *out = forward(&x);
    real *seed = tz_malloc(sizeof(real) * out->n, "gradcheck");
    for (int i = 0; i < out->n; i++) seed[i] = (real)x.R[i];
    tz_backward_seed(&x.g, out, seed);
    tz_params_grad_end(&P);
    free(seed);
    double *ana = tz_malloc(sizeof(double) * P.n, "gradcheck");
    for (size_t i = 0; i < P.n; i++) ana[i] = P.grad[i];

#ifdef TZ_DOUBLE
    int mode = o->mode == TZ_CHECK_AUTO ? (c->directional ? TZ_CHECK_DIRECTIONS : TZ_CHECK_ELEMENTS) : o->mode;
    double tol = o->tol > 0 ? o->tol : c->tol > 0 ? c->tol : 1e-6;
#else
    int mode = TZ_CHECK_F32; // float32 differences cannot resolve single elements
    double tol = o->tol > 0 ? o->tol : 1e-2;
#endif
    // Buffers (running statistics) are state, not inputs: nothing to differentiate.
    unsigned char *skip = calloc(P.n ? P.n : 1, 1);
    if (!skip) tz_fail("gradcheck: out of memory");
    for (int p = 0; p < P.count; p++)
        if (P.flags[p] & TZ_PARAM_BUFFER) memset(skip + P.off[p], 1, P.t[p]->n);
    if (mode == TZ_CHECK_ELEMENTS) check_elements(&x, &P, ana, skip, o, tol, r);
    else if (mode == TZ_CHECK_DIRECTIONS) check_directions(&x, &P, ana, skip, o, tol, r);
    else check_f32(&x, &P, ana, skip, o, tol, r);
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
