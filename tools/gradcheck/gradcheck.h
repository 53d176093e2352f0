// gradcheck.h: autograd against central finite differences, in float64.
//
// A check declares its inputs as parameters (so every input element lives in one block the
// harness can perturb), fills them, and builds an output from them. The harness takes the
// scalar L = sum(out * R) for a fixed random R, seeds backward with R, and compares each
// element of the gradient with (L(x + eps) - L(x - eps)) / (2 eps).
#ifndef TZ_GRADCHECK_H
#define TZ_GRADCHECK_H

#ifndef TZ_DOUBLE
#error "the gradient check runs on the float64 build (-DTZ_DOUBLE)"
#endif

#include <stdio.h>

#include "tz.h"

typedef struct tz_check {
    const char *name; // "op/matmul", "nn/lstm", "model/transformer"
    // Declares and fills the inputs in P; returns state for forward (or NULL).
    void *(*setup)(tz_params *P, tz_rng *rng);
    // Builds the output from the state. Must be deterministic: g->rng is reseeded before each call.
    tz_tensor *(*forward)(tz_graph *g, void *state);
    void (*teardown)(void *state); // may be NULL
    double tol; // max relative error, 0 for the default (1e-6)
    int directional; // too big for every element: random directions by default
} tz_check;

typedef struct tz_check_result {
    int ok;
    long checked; // elements (or directions) compared
    double max_err; // worst relative error
    long worst; // its element index in the parameter block (or direction number)
    char worst_param[64]; // its parameter's name ("" in directional mode)
    long worst_offset; // element within that parameter
    double numeric, analytic;
} tz_check_result;

enum { TZ_CHECK_AUTO, TZ_CHECK_ELEMENTS, TZ_CHECK_DIRECTIONS };

typedef struct tz_check_opts {
    int mode; // TZ_CHECK_AUTO: the check's own choice
    double eps; // 1e-6
    double tol; // 0: the check's own, else this
    double floor; // denominators below this are raised to it (tiny gradients): 1e-2
    int directions; // random directions in directional mode: 4
} tz_check_opts;

tz_check_opts tz_check_defaults(void);
void tz_check_run(const tz_check *c, const tz_check_opts *o, tz_check_result *r);

// The registry: every op, layer and model the tool knows, in one table.
const tz_check *tz_checks(int *count);
const tz_check *tz_check_find(const char *name);

// For check files: fill a parameter with N(0, s) or U(lo, hi) values.
void tz_fill_normal(tz_tensor *t, tz_rng *r, double s);
void tz_fill_uniform(tz_tensor *t, tz_rng *r, double lo, double hi);

// The groups the registry collects (one array per file of checks).
extern const tz_check tz_op_checks[];
extern const int tz_n_op_checks;
extern const tz_check tz_nn_checks[]; // layers, recurrent cells
extern const int tz_n_nn_checks;
extern const tz_check tz_attention_checks[]; // attention, positions, FFN, transformer blocks
extern const int tz_n_attention_checks;
extern const tz_check tz_model_checks[]; // whole models of the zoo
extern const int tz_n_model_checks;

#endif
