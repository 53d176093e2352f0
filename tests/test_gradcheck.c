// The gradient check of every registered op, layer and model (float64), one test each, and
// proof that the checker itself catches a wrong backward.
#include <math.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "gradcheck.h"

ParameterizedTestParameters(gradcheck, each) {
    static int idx[1024];
    int n;
    tz_checks(&n);
    for (int i = 0; i < n; i++) idx[i] = i;
    return cr_make_param_array(int, idx, n);
}

ParameterizedTest(int *i, gradcheck, each) {
    int n;
    const tz_check *c = &tz_checks(&n)[*i];
    tz_check_opts o = tz_check_defaults();
    tz_check_result r;
    tz_check_run(c, &o, &r);
    cr_assert(r.checked > 0, "%s: nothing was compared", c->name);
    cr_assert(r.ok, "%s: max relative error %.3e at %s[%ld]: numeric %.10g analytic %.10g", c->name, r.max_err,
              r.worst_param[0] ? r.worst_param : "direction", r.worst_param[0] ? r.worst_offset : r.worst, r.numeric,
              r.analytic);
}

// A deliberately wrong op: y = x^3 with backward 3x (should be 3x^2).
static void cube_wrong_backward(tz_graph *g, tz_node *n) {
    (void)g;
    for (int i = 0; i < n->out->n; i++) n->in[0]->grad[i] += n->out->grad[i] * 3 * n->in[0]->data[i];
}
static const tz_op op_cube_wrong = {"cube_wrong", cube_wrong_backward, 0};
static tz_tensor *cube_wrong(tz_graph *g, tz_tensor *x) {
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, &x, 1);
    for (int i = 0; i < x->n; i++) y->data[i] = x->data[i] * x->data[i] * x->data[i];
    tz_op_record(g, &op_cube_wrong, y, &x, 1);
    return y;
}
static void *cube_setup(tz_params *P, tz_rng *r) {
    tz_tensor *x = tz_param(P, "x", 1, (const int[]){5});
    tz_fill_uniform(x, r, 0.5, 2);
    return x;
}
static tz_tensor *cube_fw(tz_graph *g, void *st) { return cube_wrong(g, st); }

// A deliberately wrong op (forward fw over cube_setup's x) must fail both modes of the check:
// every element, and random directions. -> the elements run's result in *r.
static void expect_caught(tz_tensor *(*fw)(tz_graph *, void *), const char *what, tz_check_result *r) {
    tz_check c = {what, cube_setup, fw, NULL, 0, 0, NULL, NULL};
    tz_check_opts o = tz_check_defaults();
    tz_check_result d;
    tz_check_run(&c, &o, r);
    cr_assert(!r->ok, "%s passed the check (max error %g)", what, r->max_err);
    o.mode = TZ_CHECK_DIRECTIONS;
    tz_check_run(&c, &o, &d);
    cr_assert(!d.ok, "directional mode missed %s (max error %g)", what, d.max_err);
}

Test(gradcheck, catches_a_wrong_backward) {
    tz_check_result r;
    expect_caught(cube_fw, "a wrong backward", &r);
    cr_assert_str_eq(r.worst_param, "x");
}

// y = 2x whose backward leaves the first element's gradient NaN (a buffer it forgot to write):
// the worst error, even though every later element is right (a later error once replaced it).
static void twice_nan_backward(tz_graph *g, tz_node *n) {
    (void)g;
    for (int i = 0; i < n->out->n; i++) n->in[0]->grad[i] += i ? 2 * n->out->grad[i] : NAN;
}
static const tz_op op_twice_nan = {"twice_nan", twice_nan_backward, 0};
static tz_tensor *twice_nan_fw(tz_graph *g, void *st) {
    tz_tensor *x = st, *y = tz_op_output(g, x->ndim, x->shape, &x, 1);
    for (int i = 0; i < x->n; i++) y->data[i] = 2 * x->data[i];
    tz_op_record(g, &op_twice_nan, y, &x, 1);
    return y;
}

Test(gradcheck, catches_a_nan_gradient) {
    tz_check_result r;
    expect_caught(twice_nan_fw, "a NaN gradient", &r);
    cr_assert_eq(r.worst, 0);
}

Test(gradcheck, registry_names_are_unique) {
    int n;
    const tz_check *c = tz_checks(&n);
    cr_assert(n > 30);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) cr_assert_str_neq(c[i].name, c[j].name);
}
