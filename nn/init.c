// init.c: weight initialisers (see init.h). Every draw comes from the caller's tz_rng, in
// row-major order, so a seed reproduces a model bit for bit.
//
// `a` = 0 means the kind's default: uniform range 1 and normal std 1 (PyTorch's uniform_/normal_
// defaults, made symmetric), gain 1 for Xavier and orthogonal, gain sqrt(2) for Kaiming (ReLU,
// PyTorch's calculate_gain('relu')), constant 0. NN_INIT_PYTORCH has no parameter (a ignored).
#include "init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
    [NN_INIT_DEFAULT] = "default",
    [NN_INIT_ZEROS] = "zeros",
    [NN_INIT_ONES] = "ones",
    [NN_INIT_CONSTANT] = "constant",
    [NN_INIT_UNIFORM] = "uniform",
    [NN_INIT_NORMAL] = "normal",
    [NN_INIT_XAVIER_UNIFORM] = "xavier_uniform",
    [NN_INIT_XAVIER_NORMAL] = "xavier_normal",
    [NN_INIT_KAIMING_UNIFORM] = "kaiming_uniform",
    [NN_INIT_KAIMING_NORMAL] = "kaiming_normal",
    [NN_INIT_ORTHOGONAL] = "orthogonal",
    [NN_INIT_PYTORCH] = "pytorch",
};
#define N_KINDS ((int)(sizeof names / sizeof names[0]))

int nn_init_parse(const char *name, nn_init_kind *kind) {
    for (int k = 0; name && k < N_KINDS; k++)
        if (!strcmp(name, names[k])) {
            *kind = (nn_init_kind)k;
            return 1;
        }
    return 0;
}

const char *nn_init_name(nn_init_kind kind) { return (int)kind >= 0 && (int)kind < N_KINDS ? names[kind] : "unknown"; }

nn_init nn_init_or(nn_init init, nn_init fallback) { return init.kind == NN_INIT_DEFAULT ? fallback : init; }

// w (n) <- U(-b, b).
static void fill_uniform(real *w, int n, double b, tz_rng *r) {
    for (int i = 0; i < n; i++) w[i] = (real)(b * (2 * tz_rng_uniform(r) - 1));
}

// w (n) <- N(0, s^2).
static void fill_normal(real *w, int n, double s, tz_rng *r) {
    for (int i = 0; i < n; i++) w[i] = (real)(s * tz_rng_normal(r));
}

// w (rows, cols) <- gain * Q, Q with orthonormal rows (rows <= cols) or columns (rows > cols).
// As PyTorch's orthogonal_: QR of an (m, k) normal matrix, m = max, k = min of rows and cols,
// transposed when rows < cols. PyTorch multiplies Q by sign(diag R) so that Q is unique (R with
// a positive diagonal); Gram-Schmidt produces exactly that Q, since its R's diagonal are norms.
// Modified Gram-Schmidt run twice ("twice is enough", Giraud et al. 2005) is orthogonal to
// working precision in double. a is (m, k) scratch.
static void fill_orthogonal(real *w, int rows, int cols, double gain, double *a, tz_rng *r) {
    int wide = rows < cols, m = wide ? cols : rows, k = wide ? rows : cols;
    for (int i = 0; i < m * k; i++) a[i] = tz_rng_normal(r); // a[i*k + j]: row i, column j
    for (int j = 0; j < k; j++) {
        for (int pass = 0; pass < 2; pass++)
            for (int p = 0; p < j; p++) {
                double d = 0;
                for (int i = 0; i < m; i++) d += a[i * k + p] * a[i * k + j];
                for (int i = 0; i < m; i++) a[i * k + j] -= d * a[i * k + p];
            }
        double nrm = 0;
        for (int i = 0; i < m; i++) nrm += a[i * k + j] * a[i * k + j];
        nrm = sqrt(nrm);
        if (!(nrm > 1e-12)) tz_fail("init orthogonal: degenerate normal draw for a (%d,%d) block", rows, cols);
        for (int i = 0; i < m; i++) a[i * k + j] /= nrm;
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) w[i * cols + j] = (real)(gain * (wide ? a[j * k + i] : a[i * k + j]));
}

void nn_init_apply(tz_tensor *w, nn_init init, int fan_in, int fan_out, int blocks, tz_rng *r) {
    const char *name = nn_init_name(init.kind);
    double a = init.a;
    // A weight's rows are all dims but the last; a 1-D tensor (a bias) is a column of n rows,
    // so the gate blocks of a stacked bias split like those of its matrix.
    int cols = w->ndim >= 2 ? tz_cols(w) : 1, rows = w->n / cols;
    if (blocks < 1 || rows % blocks)
        tz_fail("init %s: blocks = %d does not divide the %d rows of the weight", name, blocks, rows);
    if (a < 0 && init.kind != NN_INIT_CONSTANT) tz_fail("init %s: parameter a = %g must be >= 0", name, a);
    int uses_in = init.kind == NN_INIT_PYTORCH || init.kind == NN_INIT_KAIMING_UNIFORM ||
                  init.kind == NN_INIT_KAIMING_NORMAL || init.kind == NN_INIT_XAVIER_UNIFORM ||
                  init.kind == NN_INIT_XAVIER_NORMAL;
    int uses_out = init.kind == NN_INIT_XAVIER_UNIFORM || init.kind == NN_INIT_XAVIER_NORMAL;
    if ((uses_in && fan_in <= 0) || (uses_out && fan_out <= 0))
        tz_fail("init %s: fan_in = %d, fan_out = %d must be > 0", name, fan_in, fan_out);
    // Every kind but orthogonal draws i.i.d., so filling block by block is filling the whole.
    switch (init.kind) {
        case NN_INIT_ZEROS: memset(w->data, 0, sizeof(real) * w->n); break;
        case NN_INIT_ONES:
            for (int i = 0; i < w->n; i++) w->data[i] = 1;
            break;
        case NN_INIT_CONSTANT:
            for (int i = 0; i < w->n; i++) w->data[i] = (real)a;
            break;
        case NN_INIT_UNIFORM: fill_uniform(w->data, w->n, a ? a : 1, r); break;
        case NN_INIT_NORMAL: fill_normal(w->data, w->n, a ? a : 1, r); break;
        case NN_INIT_XAVIER_UNIFORM: // Glorot & Bengio 2010, eq. 16: U(+-sqrt(6 / (fan_in + fan_out)))
            fill_uniform(w->data, w->n, (a ? a : 1) * sqrt(6.0 / ((double)fan_in + fan_out)), r);
            break;
        case NN_INIT_XAVIER_NORMAL:
            fill_normal(w->data, w->n, (a ? a : 1) * sqrt(2.0 / ((double)fan_in + fan_out)), r);
            break;
        case NN_INIT_KAIMING_UNIFORM: // He et al. 2015: Var = gain^2 / fan_in; U(+-b) has Var b^2/3
            fill_uniform(w->data, w->n, (a ? a : sqrt(2.0)) * sqrt(3.0 / fan_in), r);
            break;
        case NN_INIT_KAIMING_NORMAL: fill_normal(w->data, w->n, (a ? a : sqrt(2.0)) / sqrt((double)fan_in), r); break;
        case NN_INIT_PYTORCH: fill_uniform(w->data, w->n, 1 / sqrt((double)fan_in), r); break;
        case NN_INIT_ORTHOGONAL: {
            if (w->ndim < 2) tz_fail("init orthogonal: needs a matrix, got a %d-D tensor of %d", w->ndim, w->n);
            int br = rows / blocks;
            double *scratch = malloc(sizeof(double) * (size_t)br * cols);
            if (!scratch) tz_fail("init orthogonal: out of memory for a (%d,%d) block", br, cols);
            for (int b = 0; b < blocks; b++)
                fill_orthogonal(w->data + (size_t)b * br * cols, br, cols, a ? a : 1, scratch, r);
            free(scratch);
            break;
        }
        case NN_INIT_DEFAULT: tz_fail("init default: must be resolved by the layer (nn_init_or) before nn_init_apply");
        default: tz_fail("init: unknown kind %d", (int)init.kind);
    }
}
