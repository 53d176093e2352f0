// gradcheck.h: autograd against central finite differences.
//
// A check declares its inputs as parameters (so every input element lives in one block the
// harness can perturb), fills them, and builds an output from them. The harness takes the
// scalar L = sum(out * R) for a fixed random R, seeds backward with R, and compares each
// element of the gradient with (L(x + eps) - L(x - eps)) / (2 eps).
//
// Two builds of one harness: in float64 (libtzcheck, the `gradcheck` tool) the comparison is per
// element (or sampled elements, or random directions) with eps 1e-6 and tolerance 1e-6; in
// float32 (libtzcheck32, `gradcheck --f32`) the engine runs the kernels users train with (SIMD
// gemm, packed weights, fastmath.h), so the check is by directional derivatives with the step and
// tolerance float32 can meet (TZ_CHECK_F32 below; tools/README.md says why those).
#ifndef TZ_GRADCHECK_H
#define TZ_GRADCHECK_H

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
    // A check made at run time (gradcheck --cfg): setup_ctx(ctx, P, rng) instead of setup.
    void *(*setup_ctx)(const void *ctx, tz_params *P, tz_rng *rng);
    const void *ctx;
} tz_check;

typedef struct tz_check_result {
    int ok;
    long checked; // elements (or directions) compared
    double max_err; // worst relative error
    long worst; // its element index in the parameter block (or direction number)
    char worst_param[64]; // its parameter's name ("" in directional mode over all parameters)
    long worst_offset; // element within that parameter
    double numeric, analytic;
} tz_check_result;

// TZ_CHECK_F32 (the float32 build's only mode): per parameter tensor p, the directional
// derivative along d = unit(g_p) + unit(random_p) (so a gradient of the wrong size or direction
// moves g.d away from the slope), plus one direction along the whole gradient and `directions`
// random ones over all parameters; each compared at the steps h = c * max(|x_p|, 0.1 sqrt(n_p))
// for c in 1e-1, 3e-2, ..., 1e-5 and the best step kept (float32 rounding grows as h shrinks,
// curvature as it grows; a wrong backward is wrong at every step). Tolerance 1e-2.
enum { TZ_CHECK_AUTO, TZ_CHECK_ELEMENTS, TZ_CHECK_DIRECTIONS, TZ_CHECK_F32 };

typedef struct tz_check_opts {
    int mode; // TZ_CHECK_AUTO: the check's own choice (always TZ_CHECK_F32 in float32)
    double eps; // 1e-6
    double tol; // 0: the check's own, else this (float32: 1e-2)
    double floor; // denominators below this are raised to it (tiny gradients): 1e-2
    int directions; // random directions in directional mode: 4
    long samples; // elements mode: at most this many elements per parameter tensor (0: all)
    FILE *report; // non-NULL: one line per failing element or direction (param[index], values)
} tz_check_opts;

tz_check_opts tz_check_defaults(void);
void tz_check_run(const tz_check *c, const tz_check_opts *o, tz_check_result *r);

// The registry: every op, layer and model the tool knows, in one table.
const tz_check *tz_checks(int *count);
const tz_check *tz_check_find(const char *name);

// The model a cfg configures (gradcheck --cfg): reads path with the trainer's schema and the
// overrides ("section.key=value"); small != 0 first shrinks every size key the model has (embed,
// hidden, layers, heads, d_model, d_ff, ..., batch, block) to a few units and uses a synthetic
// batch of 7 tokens (translation: 7 source, 6 target tokens, lengths up to 5 and 4). Otherwise
// the cfg's sizes, a random batch of its shape and vocabulary "N" (or "SRC,TGT") from vocab
// (NULL: 65 for a language model, 1000 for pairs, 14 for a synthetic task). Fails (tz_fail) on a
// bad cfg as the trainer does. name (name_size bytes) receives the check's name.
void tz_cfg_check_make(tz_check *c, char *name, size_t name_size, const char *path, char *const *overrides,
                       int n_overrides, int small, const char *vocab);
void tz_cfg_check_free(tz_check *c);

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
