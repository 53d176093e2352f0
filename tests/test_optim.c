// Optimisers against hand-computed steps on a 2-parameter problem and against torch.optim over
// 5 steps (tests/fixtures/optim.txt, from gen_optim.py); decay masks; clipping; LR schedules.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "helpers.h"
#include "optim.h"
#include "schedule.h"

// The 2-parameter problem: one (1,2) matrix (so weight decay applies), θ = (1, -2).
typedef struct problem {
    tz_params P;
    tz_tensor *w;
    nn_optim o;
} problem;

static void setup(problem *p, nn_optim_config c) {
    tz_params_init(&p->P);
    p->w = tz_param(&p->P, "w", 2, (const int[]){1, 2});
    p->w->data[0] = 1, p->w->data[1] = -2;
    nn_optim_init(&p->o, &p->P, &c);
}

// Sets the gradient to (g0, g1), takes a step at lr, and checks θ against (w0, w1).
static void step(problem *p, double lr, double g0, double g1, double w0, double w1) {
    p->w->grad[0] = (real)g0, p->w->grad[1] = (real)g1;
    nn_optim_step(&p->o, &p->P, lr);
    cr_assert(fabs(p->w->data[0] - w0) < 1e-6 && fabs(p->w->data[1] - w1) < 1e-6,
              "%s step %ld: θ = (%.9g, %.9g), want (%.9g, %.9g)", nn_optim_name(p->o.c.kind), p->o.step, p->w->data[0],
              p->w->data[1], w0, w1);
}

static void teardown(problem *p) {
    nn_optim_free(&p->o);
    tz_params_free(&p->P);
}

Test(optim, sgd) {
    problem p;
    // Plain: θ -= lr g = (1 - 0.1*0.5, -2 - 0.1*0.1).
    setup(&p, nn_optim_defaults(NN_OPTIM_SGD));
    step(&p, 0.1, 0.5, 0.1, 0.95, -2.01);
    cr_assert_eq(p.o.n_state, 0, "no momentum, no state");
    teardown(&p);

    // Momentum 0.9: buf1 = g = (0.5, 0.1), θ1 = (0.95, -2.01);
    // buf2 = 0.9 buf1 + g = (0.95, 0.19), θ2 = θ1 - 0.1 buf2 = (0.855, -2.029).
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_SGD);
    c.momentum = 0.9;
    setup(&p, c);
    step(&p, 0.1, 0.5, 0.1, 0.95, -2.01);
    step(&p, 0.1, 0.5, 0.1, 0.855, -2.029);
    cr_assert_float_eq(nn_optim_state(&p.o, "momentum_buffer")[0], 0.95, 1e-6);
    teardown(&p);

    // Nesterov: buf1 = g, update g + 0.9 buf1 = 1.9 g = (0.95, 0.19), θ1 = (0.905, -2.019);
    // buf2 = (0.95, 0.19), update g + 0.9 buf2 = (1.355, 0.271), θ2 = (0.7695, -2.0461).
    c.nesterov = 1;
    setup(&p, c);
    step(&p, 0.1, 0.5, 0.1, 0.905, -2.019);
    step(&p, 0.1, 0.5, 0.1, 0.7695, -2.0461);
    teardown(&p);

    // Coupled L2, wd 0.1: g' = g + 0.1 θ = (0.6, -0.1), θ = (1 - 0.06, -2 + 0.01).
    c = nn_optim_defaults(NN_OPTIM_SGD);
    c.weight_decay = 0.1;
    setup(&p, c);
    step(&p, 0.1, 0.5, 0.1, 0.94, -1.99);
    teardown(&p);
}

Test(optim, adagrad) {
    // G1 = g^2 = (0.25, 0.01), g/sqrt(G1) = (1, 1): θ1 = θ - 0.1 = (0.9, -2.1).
    // g2 = (-0.5, 0.2): G2 = (0.5, 0.05), g2/sqrt(G2) = (-0.70710678, 0.89442719):
    // θ2 = (0.9 + 0.070710678, -2.1 - 0.089442719) = (0.970710678, -2.189442719).
    problem p;
    setup(&p, nn_optim_defaults(NN_OPTIM_ADAGRAD));
    cr_assert_eq(p.o.c.eps, 1e-10, "PyTorch's Adagrad eps");
    step(&p, 0.1, 0.5, 0.1, 0.9, -2.1);
    step(&p, 0.1, -0.5, 0.2, 0.970710678, -2.189442719);
    cr_assert_float_eq(nn_optim_state(&p.o, "sum")[1], 0.05, 1e-7);
    teardown(&p);
}

Test(optim, rmsprop) {
    // α 0.99: v1 = 0.01 g^2 = (0.0025, 0.0001), sqrt = (0.05, 0.01), g/sqrt(v1) = (10, 10):
    // θ1 = θ - 0.01*10 = (0.9, -2.1).
    // Same g again: v2 = (0.99*0.01 + 0.01) g^2 = 0.0199 g^2, g/sqrt(v2) = 1/sqrt(0.0199) = 7.0888120
    // for both; without momentum θ2 = θ1 - 0.070888120 = (0.829111880, -2.170888120).
    problem p;
    setup(&p, nn_optim_defaults(NN_OPTIM_RMSPROP));
    step(&p, 0.01, 0.5, 0.1, 0.9, -2.1);
    step(&p, 0.01, 0.5, 0.1, 0.829111880, -2.170888120);
    teardown(&p);
    // Momentum 0.5 (PyTorch: buf = 0.5 buf + g/avg): buf1 = 10, θ1 = (0.9, -2.1);
    // buf2 = 5 + 7.0888120 = 12.0888120, θ2 = θ1 - 0.120888120 = (0.779111880, -2.220888120).
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_RMSPROP);
    c.momentum = 0.5;
    setup(&p, c);
    step(&p, 0.01, 0.5, 0.1, 0.9, -2.1);
    step(&p, 0.01, 0.5, 0.1, 0.779111880, -2.220888120);
    cr_assert_eq(p.o.n_state, 2);
    teardown(&p);
}

Test(optim, adam_and_adamw) {
    // Adam, β (0.9, 0.999), lr 0.1. Step 1: m = 0.1 g, v = 0.001 g^2, bc1 = 0.1, bc2 = 0.001,
    // so m/bc1 = g, sqrt(v)/sqrt(bc2) = |g| and θ -= 0.1 sign(g): θ1 = (0.9, -2.1).
    // Step 2, g2 = (-0.5, 0.1): m = (0.045 - 0.05, 0.009 + 0.01) = (-0.005, 0.019),
    // v = (0.999*0.00025 + 0.00025, 0.999*0.00001 + 0.00001) = (0.00049975, 0.00001999),
    // bc1 = 0.19, bc2 = 0.001999: m^ = (-0.026315789, 0.1), sqrt(v^) = (0.5, 0.1),
    // θ2 = θ1 - 0.1 m^/sqrt(v^) = (0.9 + 0.0052631579, -2.1 - 0.1) = (0.905263158, -2.2).
    problem p;
    setup(&p, nn_optim_defaults(NN_OPTIM_ADAM));
    step(&p, 0.1, 0.5, 0.1, 0.9, -2.1);
    step(&p, 0.1, -0.5, 0.1, 0.905263158, -2.2);
    cr_assert_float_eq(nn_optim_state(&p.o, "exp_avg")[0], -0.005, 1e-8);
    cr_assert_float_eq(nn_optim_state(&p.o, "exp_avg_sq")[1], 0.00001999, 1e-10);
    cr_assert_eq(p.o.step, 2);
    teardown(&p);

    // Adam with coupled L2 0.1: g' = g + 0.1 θ = (0.6, -0.1), step 1 moves by -0.1 sign(g'):
    // θ1 = (0.9, -1.9) (the decay flipped the second parameter's direction).
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_ADAM);
    c.weight_decay = 0.1;
    setup(&p, c);
    step(&p, 0.1, 0.5, 0.1, 0.9, -1.9);
    teardown(&p);

    // AdamW, wd 0.1, lr 0.1: θ *= 1 - 0.01 first = (0.99, -1.98), then the Adam step -0.1 sign(g):
    // θ1 = (0.89, -2.08).
    c = nn_optim_defaults(NN_OPTIM_ADAMW);
    c.weight_decay = 0.1;
    setup(&p, c);
    step(&p, 0.1, 0.5, 0.1, 0.89, -2.08);
    teardown(&p);
}

// Replays gen_optim.py's case `name` and compares every step's parameters and the final state.
static void against_torch(const char *name, nn_optim_config c) {
    fixture f;
    fixture_load(&f, "optim");
    tz_params P;
    tz_params_init(&P);
    tz_param(&P, "W", 2, (const int[]){2, 3});
    tz_param(&P, "b", 1, (const int[]){3});
    tz_tensor *E = tz_param(&P, "E", 2, (const int[]){4, 2});
    tz_params_set_flags(&P, E, TZ_PARAM_EMBEDDING);
    int n = (int)P.n;
    fixture_copy(&f, "init", P.data, n);
    const fixture_tensor *grads = fixture_get(&f, "grads"), *lrs = fixture_get(&f, "lrs");
    char key[64];
    snprintf(key, sizeof key, "%s.params", name);
    const fixture_tensor *want = fixture_get(&f, key);
    cr_assert_eq(grads->n, lrs->n * n);
    nn_optim o;
    nn_optim_init(&o, &P, &c);
    for (int s = 0; s < lrs->n; s++) {
        for (int j = 0; j < n; j++) P.grad[j] = (real)grads->v[s * n + j];
        nn_optim_step(&o, &P, lrs->v[s]);
        for (int j = 0; j < n; j++) {
            double w = want->v[s * n + j];
            cr_assert(fabs(P.data[j] - w) < 2e-6 * (1 + fabs(w)), "%s step %d, element %d: %.9g, torch %.9g", name,
                      s + 1, j, P.data[j], w);
        }
    }
    for (int k = 0; k < o.n_state; k++) {
        snprintf(key, sizeof key, "%s.%s", name, o.state_name[k]);
        const fixture_tensor *st = fixture_get(&f, key);
        cr_assert_eq(st->n, n);
        for (int j = 0; j < n; j++)
            cr_assert(fabs(o.state[k][j] - st->v[j]) < 1e-5 * fabs(st->v[j]) + 1e-9, "%s element %d: %.9g, torch %.9g",
                      key, j, o.state[k][j], st->v[j]);
    }
    cr_assert_eq(o.step, lrs->n);
    nn_optim_free(&o);
    tz_params_free(&P);
    fixture_free(&f);
}

Test(optim, adam_matches_torch) {
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_ADAM);
    c.beta2 = 0.98, c.weight_decay = 0.1; // coupled L2 on W and E, not b
    against_torch("adam", c);
}

Test(optim, adamw_matches_torch) {
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_ADAMW);
    c.weight_decay = 0.1, c.no_decay_embeddings = 1; // decoupled decay on W only
    against_torch("adamw", c);
}

Test(optim, sgd_rmsprop_adagrad_match_torch) {
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_SGD);
    c.momentum = 0.9, c.nesterov = 1, c.weight_decay = 0.01;
    against_torch("sgd", c);
    c = nn_optim_defaults(NN_OPTIM_RMSPROP);
    c.momentum = 0.5;
    against_torch("rmsprop", c);
    against_torch("adagrad", nn_optim_defaults(NN_OPTIM_ADAGRAD));
}

Test(optim, decay_masks) {
    // nanoGPT's rule: matrices decay; 1-D tensors, NO_DECAY tensors and (optionally) embeddings not.
    tz_params P;
    tz_params_init(&P);
    tz_tensor *W = tz_param(&P, "W", 2, (const int[]){2, 2});
    tz_tensor *b = tz_param(&P, "b", 1, (const int[]){2});
    tz_tensor *E = tz_param(&P, "E", 2, (const int[]){3, 2});
    tz_tensor *N = tz_param(&P, "N", 2, (const int[]){2, 2});
    tz_params_set_flags(&P, E, TZ_PARAM_EMBEDDING);
    tz_params_set_flags(&P, N, TZ_PARAM_NO_DECAY);
    int want[2][4] = {{1, 0, 1, 0}, {1, 0, 0, 0}};
    for (int ne = 0; ne < 2; ne++)
        for (int i = 0; i < 4; i++)
            cr_assert_eq(nn_optim_decays(&P, i, ne), want[ne][i], "%s, no_decay_embeddings %d", P.names[i], ne);
    // AdamW with zero gradients moves nothing but the decayed: θ *= 1 - lr wd = 1 - 0.1*0.5.
    for (size_t j = 0; j < P.n; j++) P.data[j] = 1;
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_ADAMW);
    c.weight_decay = 0.5, c.no_decay_embeddings = 1;
    nn_optim o;
    nn_optim_init(&o, &P, &c);
    nn_optim_step(&o, &P, 0.1);
    tz_tensor *ts[4] = {W, b, E, N};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < ts[i]->n; j++)
            cr_assert_float_eq(ts[i]->data[j], want[1][i] ? 0.95 : 1, 1e-7, "%s", P.names[i]);
    nn_optim_free(&o);
    tz_params_free(&P);
}

Test(optim, clip_grad_norm) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *a = tz_param(&P, "a", 1, (const int[]){1});
    tz_tensor *b = tz_param(&P, "b", 2, (const int[]){1, 1});
    a->grad[0] = 3, b->grad[0] = -4; // global norm 5 across tensors
    cr_assert_float_eq(nn_clip_grad_norm(&P, 10), 5, 1e-12);
    cr_assert(a->grad[0] == 3 && b->grad[0] == -4, "under the max: untouched");
    // Over: g *= 1 / (5 + 1e-6) (PyTorch's clip_grad_norm_).
    cr_assert_float_eq(nn_clip_grad_norm(&P, 1), 5, 1e-12);
    cr_assert_float_eq(a->grad[0], 3 / (5 + 1e-6), 1e-7);
    cr_assert_float_eq(b->grad[0], -4 / (5 + 1e-6), 1e-7);
    cr_assert_float_eq(nn_clip_grad_norm(&P, 1), 1, 1e-6, "now at the max");
    cr_assert(EXPECT_FAIL(nn_clip_grad_norm(&P, -1)));
    cr_assert_str_eq(tz_last_error(), "clip_grad_norm: max_norm = -1 must be >= 0");
    tz_params_free(&P);
}

// Clipping folded into the step (the trainer's way: nn_clip_scale, nn_optim_step_scaled) gives
// the bits of clipping the gradient first, for every optimiser, over and under the max norm;
// the gradient itself is left as it was.
Test(optim, folded_clip_is_clip_then_step) {
    const nn_optim_kind kinds[] = {NN_OPTIM_SGD, NN_OPTIM_ADAGRAD, NN_OPTIM_RMSPROP, NN_OPTIM_ADAM, NN_OPTIM_ADAMW};
    for (int k = 0; k < 5; k++)
        for (int over = 0; over < 2; over++) {
            tz_params P[2];
            nn_optim o[2];
            nn_optim_config c = nn_optim_defaults(kinds[k]);
            c.weight_decay = 0.1, c.momentum = kinds[k] == NN_OPTIM_SGD || kinds[k] == NN_OPTIM_RMSPROP ? 0.9 : 0;
            for (int v = 0; v < 2; v++) {
                tz_params_init(&P[v]);
                tz_param(&P[v], "w", 2, (const int[]){7, 33});
                tz_param(&P[v], "b", 1, (const int[]){33});
                for (size_t i = 0; i < P[v].n; i++)
                    P[v].data[i] = (real)sin(1.0 + i), P[v].grad[i] = (real)(0.3 * cos(2.0 + 3 * i));
                nn_optim_init(&o[v], &P[v], &c);
            }
            double max = over ? 0.5 : 1e3;
            for (int s = 0; s < 3; s++) { // three steps: the state carries the scaled gradients
                double n0 = nn_clip_grad_norm(&P[0], max);
                nn_optim_step(&o[0], &P[0], 0.01);
                real g0 = P[1].grad[5];
                double n1 = nn_grad_norm(&P[1]);
                nn_optim_step_scaled(&o[1], &P[1], 0.01, nn_clip_scale(n1, max));
                cr_assert(n0 == n1, "%s: norms %.17g and %.17g", nn_optim_name(kinds[k]), n0, n1);
                cr_assert(P[1].grad[5] == g0, "the folded step changed the gradient");
                for (size_t i = 0; i < P[0].n; i++)
                    cr_assert(P[0].data[i] == P[1].data[i], "%s, %s the max, step %d: weight %zu %.9g against %.9g",
                              nn_optim_name(kinds[k]), over ? "over" : "under", s, i, P[0].data[i], P[1].data[i]);
                memcpy(P[0].grad, P[1].grad, sizeof(real) * P[0].n); // the next step's gradient, unclipped
            }
            for (int v = 0; v < 2; v++) nn_optim_free(&o[v]), tz_params_free(&P[v]);
        }
}

Test(optim, clip_grad_value) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *a = tz_param(&P, "a", 1, (const int[]){3});
    a->grad[0] = 3, a->grad[1] = -4, a->grad[2] = 0.25;
    nn_clip_grad_value(&P, 0.5);
    cr_assert(a->grad[0] == 0.5 && a->grad[1] == -0.5 && a->grad[2] == 0.25);
    tz_params_free(&P);
}

Test(optim, names_and_errors) {
    const char *names[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw"};
    for (int k = 0; k < 5; k++) {
        cr_assert_eq(nn_optim_parse(names[k]), (nn_optim_kind)k);
        cr_assert_str_eq(nn_optim_name((nn_optim_kind)k), names[k]);
    }
    cr_assert(EXPECT_FAIL(nn_optim_parse("lion")));
    cr_assert_str_eq(tz_last_error(), "optim: unknown optimiser 'lion' (sgd, adagrad, rmsprop, adam, adamw)");

    tz_params P;
    tz_params_init(&P);
    tz_param(&P, "w", 2, (const int[]){2, 2});
    nn_optim o;
    nn_optim_config c = nn_optim_defaults(NN_OPTIM_SGD);
    c.nesterov = 1;
    cr_assert(EXPECT_FAIL(nn_optim_init(&o, &P, &c)));
    cr_assert_str_eq(tz_last_error(), "optim sgd: nesterov needs SGD with momentum > 0 (momentum = 0)");
    c = nn_optim_defaults(NN_OPTIM_ADAM);
    c.beta2 = 1;
    cr_assert(EXPECT_FAIL(nn_optim_init(&o, &P, &c)));
    cr_assert_str_eq(tz_last_error(), "optim adam: betas = (0.9, 1) must be in [0, 1)");
    // A parameter declared after the optimiser was made: the state no longer lines up.
    c = nn_optim_defaults(NN_OPTIM_ADAM);
    nn_optim_init(&o, &P, &c);
    tz_param(&P, "late", 1, (const int[]){3});
    cr_assert(EXPECT_FAIL(nn_optim_step(&o, &P, 0.1)));
    cr_assert_str_eq(tz_last_error(), "optim adam: params have 2 tensors, 7 elements; the optimiser was made for 1, 4");
    cr_assert_null(nn_optim_state(&o, "sum"));
    nn_optim_free(&o);
    tz_params_free(&P);
}

// ---------------------------------------------------------------------------------------------
// Schedules.

static void expect_lr(const nn_schedule *s, long it, double want) {
    double got = nn_schedule_lr(s, it);
    cr_assert(fabs(got - want) <= 1e-9 * fabs(want) + 1e-15, "%s at %ld: %.12g, want %.12g", nn_schedule_name(s->kind),
              it, got, want);
}

Test(schedule, constant_and_step) {
    nn_schedule s = {.kind = NN_SCHED_CONSTANT, .lr = 0.1};
    expect_lr(&s, 0, 0.1);
    expect_lr(&s, 100000, 0.1);
    // PyTorch's StepLR(step_size 30, gamma 0.1): start 0 means the first decay at `every`.
    s = (nn_schedule){.kind = NN_SCHED_STEP, .lr = 0.1, .gamma = 0.1, .every = 30};
    expect_lr(&s, 29, 0.1);
    expect_lr(&s, 30, 0.01);
    expect_lr(&s, 59, 0.01);
    expect_lr(&s, 60, 0.001);
    // Zaremba 2014 in epochs: lr 1 for epochs 0-3, then halved every epoch: 0.5 at 4, 0.25 at 5,
    // 0.5^9 at 12 (the 13th and last epoch).
    s = (nn_schedule){.kind = NN_SCHED_STEP, .lr = 1, .gamma = 0.5, .every = 1, .start = 4};
    expect_lr(&s, 3, 1);
    expect_lr(&s, 4, 0.5);
    expect_lr(&s, 5, 0.25);
    expect_lr(&s, 12, 0.001953125);
}

Test(schedule, cosine_and_linear) {
    // nanoGPT: lr 1e-3, min 1e-4, warmup 100, decay at 2000.
    nn_schedule s = {.kind = NN_SCHED_COSINE, .lr = 1e-3, .min_lr = 1e-4, .warmup = 100, .decay_iters = 2000};
    expect_lr(&s, 0, 1e-3 / 101); // lr (0+1)/(100+1)
    expect_lr(&s, 99, 1e-3 * 100 / 101);
    expect_lr(&s, 100, 1e-3); // ratio 0: coeff 1
    expect_lr(&s, 575, 8.68198051534e-4); // ratio 1/4: coeff (1 + cos(pi/4))/2 = 0.853553390593
    expect_lr(&s, 1050, 5.5e-4); // ratio 1/2: halfway, 1e-4 + 0.5 * 9e-4
    expect_lr(&s, 2000, 1e-4);
    expect_lr(&s, 5000, 1e-4);
    s.kind = NN_SCHED_LINEAR;
    expect_lr(&s, 0, 1e-3 / 101);
    expect_lr(&s, 575, 7.75e-4); // 1e-4 + 0.75 * 9e-4
    expect_lr(&s, 1050, 5.5e-4);
    expect_lr(&s, 2001, 1e-4);
    s.warmup = 0; // no warmup: the decay starts at it 0 from lr
    expect_lr(&s, 0, 1e-3);
}

Test(schedule, noam) {
    // Vaswani 2017, d 512, warmup 4000, step = it + 1. Step 1: 512^-0.5 * 4000^-1.5
    // = 0.0441941738 * 3.95284708e-6 = 1.74693e-7. Peak at step 4000: 512^-0.5 * 4000^-0.5
    // = 6.98771243e-4; at step 16000 half of that (step^-0.5).
    nn_schedule s = {.kind = NN_SCHED_NOAM, .lr = 1, .warmup = 4000, .d_model = 512};
    expect_lr(&s, 0, 1 / sqrt(512.0) * pow(4000, -1.5));
    expect_lr(&s, 3999, 6.98771242968e-4);
    expect_lr(&s, 15999, 6.98771242968e-4 / 2);
    cr_assert(nn_schedule_lr(&s, 3998) < nn_schedule_lr(&s, 3999) &&
              nn_schedule_lr(&s, 4000) < nn_schedule_lr(&s, 3999));
}

Test(schedule, names_and_errors) {
    const char *names[] = {"constant", "step", "cosine", "linear", "noam"};
    for (int k = 0; k < 5; k++) {
        cr_assert_eq(nn_schedule_parse(names[k]), (nn_schedule_kind)k);
        cr_assert_str_eq(nn_schedule_name((nn_schedule_kind)k), names[k]);
    }
    cr_assert(EXPECT_FAIL(nn_schedule_parse("onecycle")));
    cr_assert_str_eq(tz_last_error(), "schedule: unknown schedule 'onecycle' (constant, step, cosine, linear, noam)");
    nn_schedule s = {.kind = NN_SCHED_COSINE, .lr = 1, .warmup = 100, .decay_iters = 100};
    cr_assert(EXPECT_FAIL(nn_schedule_lr(&s, 0)));
    cr_assert_str_eq(tz_last_error(),
                     "schedule cosine: need 0 <= warmup < decay_iters, got warmup = 100, decay_iters = 100");
    s = (nn_schedule){.kind = NN_SCHED_STEP, .lr = 1, .gamma = 0.5};
    cr_assert(EXPECT_FAIL(nn_schedule_lr(&s, 0)));
    s = (nn_schedule){.kind = NN_SCHED_NOAM, .lr = 1, .d_model = 512};
    cr_assert(EXPECT_FAIL(nn_schedule_lr(&s, 0)));
    cr_assert_str_eq(tz_last_error(), "schedule noam: warmup = 0 and d_model = 512 must be > 0");
}
