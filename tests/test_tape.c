// Tape semantics (reuse accumulates, detach, no-grad), the parameter block, the arena, and a
// tiny MLP trained for 1,000 steps with no growth of memory after the first steps.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

Test(tape, reuse_accumulates_both_paths) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *x = tz_param(&P, "x", 1, (const int[]){3});
    for (int i = 0; i < 3; i++) x->data[i] = i - 1; // -1, 0, 1
    tz_graph g;
    tz_graph_init(&g, 4096);
    tz_tensor *y = tz_sum(&g, tz_add(&g, tz_mul(&g, x, x), x)); // sum(x^2 + x): d/dx = 2x + 1
    tz_backward(&g, y);
    for (int i = 0; i < 3; i++) cr_assert_float_eq(x->grad[i], 2 * x->data[i] + 1, 1e-6);
    // A second backward (new graph, no zeroing) adds to the same gradient.
    tz_graph_reset(&g);
    tz_backward(&g, tz_sum(&g, x));
    for (int i = 0; i < 3; i++) cr_assert_float_eq(x->grad[i], 2 * x->data[i] + 2, 1e-6);
    tz_params_zero_grad(&P);
    for (int i = 0; i < 3; i++) cr_assert_eq(x->grad[i], 0);
    tz_graph_free(&g);
    tz_params_free(&P);
}

// Parameter gradients left unwritten by tz_params_grad_begin (holding a previous step's
// values, here NaN) must come out of the backward equal to zeroing first: w by an op that
// overwrites (linear) and again by one that adds (permute), e through a view (a leaf slice) and
// a scatter (embedding), b by a broadcast sum; u, which nothing reaches, ends zero.
static void lazy_step(tz_params *P, tz_graph *g, int lazy, real *out) {
    tz_tensor *w = P->t[0], *e = P->t[1], *b = P->t[2];
    for (size_t k = 0; k < P->n; k++) P->grad[k] = NAN;
    if (lazy) tz_params_grad_begin(P);
    else tz_params_zero_grad(P);
    tz_graph_reset(g);
    tz_tensor *x = tz_embedding(g, e, (const int[]){2, 0, 2}, 3); // (3,4)
    tz_tensor *y = tz_tanh(g, tz_linear(g, x, w, b)); // (3,4)
    tz_tensor *wt = tz_permute(g, w, (const int[]){1, 0});
    tz_tensor *z = tz_mul(g, tz_matmul(g, y, wt, 0, 0), tz_slice(g, e, 0, 1, 1)); // (3,4) * e[1]
    tz_backward(g, tz_sum(g, tz_mul(g, z, z)));
    if (lazy) tz_params_grad_end(P);
    memcpy(out, P->grad, sizeof(real) * P->n);
}

Test(tape, lazy_param_gradients_equal_zeroed) {
    tz_params P;
    tz_params_init(&P);
    tz_param(&P, "w", 2, (const int[]){4, 4});
    tz_param(&P, "e", 2, (const int[]){3, 4});
    tz_param(&P, "b", 1, (const int[]){4});
    tz_tensor *u = tz_param(&P, "u", 1, (const int[]){5});
    for (size_t k = 0; k < P.n; k++) P.data[k] = (real)(0.05 * (double)(k % 11) - 0.2);
    tz_graph g;
    tz_graph_init(&g, 1 << 16);
    real eager[64], lazy[64];
    cr_assert(P.n <= 64);
    lazy_step(&P, &g, 0, eager);
    lazy_step(&P, &g, 1, lazy);
    for (size_t k = 0; k < P.n; k++) {
        cr_assert(isfinite(eager[k]), "eager grad[%zu] = %g", k, (double)eager[k]);
        cr_assert(lazy[k] == eager[k], "grad[%zu]: lazy %g, zeroed first %g", k, (double)lazy[k], (double)eager[k]);
    }
    for (int k = 0; k < u->n; k++) cr_assert(u->grad[k] == 0);
    tz_graph_free(&g);
    tz_params_free(&P);
}

// Step tensors' gradient buffers start unwritten (fresh): ops that overwrite must do so exactly
// once, ops that add must find zeros. The arena is first filled with NaN so that a missed
// overwrite or a missed zeroing shows. h = tanh(x) is used twice by one op, by another
// overwriting op and through a view; u = tanh(x) is never used again.
Test(tape, fresh_gradients_overwrite_once) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *x = tz_param(&P, "x", 2, (const int[]){4, 8});
    for (int i = 0; i < x->n; i++) x->data[i] = (real)(0.1 * (i % 7) - 0.3);
    tz_graph g;
    tz_graph_init(&g, 1 << 16);
    for (int with_view = 0; with_view < 2; with_view++) {
        tz_graph_reset(&g);
        tz_tensor *junk = tz_empty(&g, 1, (const int[]){4096});
        for (int i = 0; i < junk->n; i++) junk->data[i] = NAN;
        tz_graph_reset(&g);
        tz_params_zero_grad(&P);
        tz_tensor *h = tz_tanh(&g, x), *u = tz_tanh(&g, x);
        (void)u;
        tz_tensor *y = tz_add(&g, tz_mul(&g, h, h), tz_scale(&g, h, 3)); // d/dh = 2h + 3
        tz_tensor *loss = tz_sum(&g, y);
        if (with_view) // + sum(2 reshape(h)): d/dh += 2
            loss = tz_add(&g, loss, tz_sum(&g, tz_scale(&g, tz_reshape(&g, h, 1, (const int[]){32}), 2)));
        tz_backward(&g, loss);
        for (int i = 0; i < x->n; i++) {
            double t = tanh((double)x->data[i]), want = (2 * t + 3 + 2 * with_view) * (1 - t * t);
            cr_assert(fabs(x->grad[i] - want) < 1e-5, "view %d: dx[%d] = %g, want %g", with_view, i, (double)x->grad[i],
                      want);
        }
    }
    tz_graph_free(&g);
    tz_params_free(&P);
}

Test(tape, detach_cuts_the_graph) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *x = tz_param(&P, "x", 1, (const int[]){2});
    x->data[0] = 3, x->data[1] = -2;
    tz_graph g;
    tz_graph_init(&g, 4096);
    tz_tensor *h = tz_tanh(&g, x);
    tz_tensor *d = tz_detach(&g, h);
    cr_assert(!d->requires_grad && d->data == h->data, "detach shares data, needs no gradient");
    tz_backward(&g, tz_sum(&g, tz_mul(&g, d, x))); // d/dx = tanh(x) only: nothing through d
    for (int i = 0; i < 2; i++) cr_assert_float_eq(x->grad[i], tanh(x->data[i]), 1e-6);
    tz_graph_free(&g);
    tz_params_free(&P);
}

Test(tape, no_grad_records_nothing) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *w = tz_param(&P, "w", 2, (const int[]){2, 2});
    tz_graph g;
    tz_graph_init(&g, 4096);
    tz_no_grad_begin(&g);
    tz_tensor *y = tz_sum(&g, tz_tanh(&g, tz_matmul(&g, w, w, 0, 0)));
    tz_no_grad_end(&g);
    cr_assert_eq(g.n_nodes, 0);
    cr_assert(!y->requires_grad);
    cr_assert(EXPECT_FAIL(tz_backward(&g, y)));
    cr_assert(strstr(tz_last_error(), "does not depend"), "%s", tz_last_error());
    cr_assert(EXPECT_FAIL(tz_no_grad_end(&g)), "unbalanced no-grad end is an error");
    // Grad mode again: recording resumes.
    tz_sum(&g, tz_tanh(&g, w));
    cr_assert_eq(g.n_nodes, 2);
    tz_graph_free(&g);
    tz_params_free(&P);
}

Test(tape, backward_needs_a_scalar) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *w = tz_param(&P, "w", 1, (const int[]){2});
    tz_graph g;
    tz_graph_init(&g, 4096);
    cr_assert(EXPECT_FAIL(tz_backward(&g, tz_tanh(&g, w))));
    cr_assert_str_eq(tz_last_error(), "backward: the loss must be a scalar, got shape (2)");
    tz_graph_free(&g);
    tz_params_free(&P);
}

Test(tape, params_are_one_block_and_survive_growth) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *first = tz_param(&P, "first", 1, (const int[]){5});
    first->data[4] = 42;
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "p%d", i);
        tz_param(&P, name, 2, (const int[]){7, 3});
    }
    cr_assert_eq(first->data, P.data, "pointers follow the block when it moves");
    cr_assert_eq(first->data[4], 42);
    cr_assert_eq(P.n, 5 + 200 * 21);
    tz_tensor *last = tz_params_find(&P, "p199");
    cr_assert_eq(last->data, P.data + P.n - 21);
    cr_assert_eq(last->grad, P.grad + P.n - 21);
    cr_assert(EXPECT_FAIL(tz_param(&P, "p7", 1, (const int[]){1})), "duplicate names are refused");
    cr_assert(EXPECT_FAIL(tz_param(&P, "zero", 1, (const int[]){0})), "size 0 is refused");
    tz_params_free(&P);
}

Test(tape, arena_aligns_and_rewinds) {
    tz_arena a;
    tz_arena_init(&a, 4096);
    void *p = tz_arena_alloc(&a, 3);
    void *q = tz_arena_alloc(&a, 100);
    cr_assert_eq((uintptr_t)p % 64, 0);
    cr_assert_eq((uintptr_t)q % 64, 0);
    for (int i = 0; i < 10; i++) tz_arena_alloc(&a, 4000); // overflows into new blocks
    size_t peak = a.peak;
    tz_arena_reset(&a);
    size_t cap = tz_arena_capacity(&a);
    cr_assert_geq(cap, peak, "after reset one block holds the peak");
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < 10; i++) tz_arena_alloc(&a, 4000);
        tz_arena_alloc(&a, 3);
        tz_arena_alloc(&a, 100);
        tz_arena_reset(&a);
        cr_assert_eq(tz_arena_capacity(&a), cap, "the same step needs no new memory");
    }
    tz_arena_free(&a);
}

// tz_arena_pop gives back the last allocation only (what a decoder does with its logits).
Test(tape, arena_pops_only_the_last_allocation) {
    tz_arena a;
    tz_arena_init(&a, 1 << 16);
    void *p = tz_arena_alloc(&a, 100), *q = tz_arena_alloc(&a, 1000);
    size_t used = a.used;
    cr_assert_eq(tz_arena_pop(&a, p, 100), 0, "not the last one: kept");
    cr_assert_eq(tz_arena_pop(&a, q, 999), 1);
    cr_assert_lt(a.used, used);
    cr_assert_eq(tz_arena_alloc(&a, 1000), q, "its memory is reused");
    cr_assert_eq(tz_arena_pop(&a, q, 1000), 1);
    cr_assert_eq(tz_arena_pop(&a, q, 1000), 0, "popped twice");
    tz_arena_free(&a);
}

// A 2-16-2 tanh MLP learns which side of a circle a point is on: 1,000 SGD steps on fresh
// random batches. After the first steps, the arena and the tape never grow again.
Test(tape, mlp_trains_without_memory_growth) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *w1 = tz_param(&P, "w1", 2, (const int[]){16, 2}), *b1 = tz_param(&P, "b1", 1, (const int[]){16});
    tz_tensor *w2 = tz_param(&P, "w2", 2, (const int[]){2, 16}), *b2 = tz_param(&P, "b2", 1, (const int[]){2});
    tz_rng r;
    tz_rng_seed(&r, 7);
    for (size_t i = 0; i < P.n; i++) P.data[i] = 0.5 * tz_rng_normal(&r);
    (void)b1, (void)b2;
    tz_graph g;
    tz_graph_init(&g, 1024); // deliberately small: the first step must grow it
    enum { B = 64 };
    real xs[B * 2];
    int ys[B];
    size_t cap_after_warmup = 0;
    int nodes_cap = 0;
    double first = 0, last = 0;
    for (int step = 0; step < 1000; step++) {
        for (int i = 0; i < B; i++) {
            xs[2 * i] = 2 * tz_rng_uniform(&r) - 1;
            xs[2 * i + 1] = 2 * tz_rng_uniform(&r) - 1;
            ys[i] = xs[2 * i] * xs[2 * i] + xs[2 * i + 1] * xs[2 * i + 1] < 0.5;
        }
        tz_graph_reset(&g);
        tz_params_zero_grad(&P);
        tz_tensor *x = tz_wrap(&g, xs, NULL, 2, (const int[]){B, 2});
        tz_tensor *h = tz_tanh(&g, tz_linear(&g, x, w1, b1));
        tz_tensor *loss = tz_cross_entropy(&g, tz_linear(&g, h, w2, b2), ys, -1);
        tz_backward(&g, loss);
        for (size_t i = 0; i < P.n; i++) P.data[i] -= 0.5 * P.grad[i];
        if (step < 50) first += loss->data[0] / 50;
        if (step >= 950) last += loss->data[0] / 50;
        if (step == 2) cap_after_warmup = tz_arena_capacity(&g.arena), nodes_cap = g.cap_nodes;
        if (step > 2) {
            cr_assert_eq(tz_arena_capacity(&g.arena), cap_after_warmup, "arena grew at step %d", step);
            cr_assert_eq(g.cap_nodes, nodes_cap, "tape grew at step %d", step);
        }
    }
    cr_assert_lt(last, 0.25, "loss fell from %.3f only to %.3f", first, last);
    cr_assert_lt(last, first / 2);
    tz_graph_free(&g);
    tz_params_free(&P);
}
