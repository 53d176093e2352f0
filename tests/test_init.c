// Initialisers: the statistics of each on a large tensor, orthogonality per block (square,
// tall, wide), PyTorch's sign convention for orthogonal, reproducibility, names and errors.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "init.h"

#define ROWS 256
#define COLS 512 // fan_in; fan_out = ROWS

typedef struct stats {
    double mean, std, min, max;
} stats;

static stats stats_of(const tz_tensor *w) {
    stats s = {0, 0, INFINITY, -INFINITY};
    for (int i = 0; i < w->n; i++) {
        s.mean += w->data[i];
        s.min = fmin(s.min, w->data[i]);
        s.max = fmax(s.max, w->data[i]);
    }
    s.mean /= w->n;
    for (int i = 0; i < w->n; i++) s.std += (w->data[i] - s.mean) * (w->data[i] - s.mean);
    s.std = sqrt(s.std / w->n);
    return s;
}

// Draws (ROWS, COLS) with init and checks mean 0 and std within 1% (~5 sigma of the sample std
// for 131,072 draws). bound > 0: a uniform, whose range must be [-bound, bound] and nearly filled.
static void check_dist(nn_init init, double std, double bound) {
    tz_rng r;
    tz_rng_seed(&r, 1);
    tz_tensor *w = tz_tensor_new(2, (const int[]){ROWS, COLS});
    nn_init_apply(w, init, COLS, ROWS, 1, &r);
    stats s = stats_of(w);
    const char *name = nn_init_name(init.kind);
    cr_assert(fabs(s.mean) < 5 * std / sqrt(w->n), "%s: mean %g", name, s.mean);
    cr_assert(fabs(s.std / std - 1) < 0.01, "%s: std %g, want %g", name, s.std, std);
    if (bound > 0) {
        cr_assert(s.min >= -bound && s.max <= bound, "%s: range [%g, %g], bound %g", name, s.min, s.max, bound);
        cr_assert(s.min < -0.999 * bound && s.max > 0.999 * bound, "%s: range [%g, %g] does not reach %g", name, s.min,
                  s.max, bound);
    }
    tz_tensor_free(w);
}

Test(init, uniform_and_normal) {
    check_dist((nn_init){NN_INIT_UNIFORM, 0.1}, 0.1 / sqrt(3), 0.1); // U(-a,a): std a/sqrt(3)
    check_dist((nn_init){NN_INIT_UNIFORM, 0}, 1 / sqrt(3), 1); // default range 1
    check_dist((nn_init){NN_INIT_NORMAL, 0.02}, 0.02, 0);
    check_dist((nn_init){NN_INIT_NORMAL, 0}, 1, 0); // default std 1
}

Test(init, xavier) {
    double b = sqrt(6.0 / (COLS + ROWS)); // Glorot & Bengio 2010, eq. 16
    check_dist((nn_init){NN_INIT_XAVIER_UNIFORM, 0}, b / sqrt(3), b);
    check_dist((nn_init){NN_INIT_XAVIER_UNIFORM, 2}, 2 * b / sqrt(3), 2 * b); // gain 2
    check_dist((nn_init){NN_INIT_XAVIER_NORMAL, 0}, sqrt(2.0 / (COLS + ROWS)), 0);
}

Test(init, kaiming_and_pytorch) {
    // He et al. 2015, fan_in mode, default gain sqrt(2): Var = 2 / fan_in.
    check_dist((nn_init){NN_INIT_KAIMING_UNIFORM, 0}, sqrt(2.0 / COLS), sqrt(6.0 / COLS));
    check_dist((nn_init){NN_INIT_KAIMING_UNIFORM, 1}, sqrt(1.0 / COLS), sqrt(3.0 / COLS));
    check_dist((nn_init){NN_INIT_KAIMING_NORMAL, 0}, sqrt(2.0 / COLS), 0);
    check_dist((nn_init){NN_INIT_PYTORCH, 0}, 1 / sqrt(3.0 * COLS), 1 / sqrt((double)COLS));
}

Test(init, constants) {
    tz_rng r;
    tz_rng_seed(&r, 1);
    tz_tensor *w = tz_tensor_new(2, (const int[]){3, 5});
    nn_init_apply(w, (nn_init){NN_INIT_ONES, 0}, 5, 3, 1, &r);
    for (int i = 0; i < w->n; i++) cr_assert_eq(w->data[i], 1);
    nn_init_apply(w, (nn_init){NN_INIT_CONSTANT, -0.5}, 5, 3, 1, &r);
    for (int i = 0; i < w->n; i++) cr_assert_eq(w->data[i], -0.5);
    nn_init_apply(w, (nn_init){NN_INIT_ZEROS, 0}, 5, 3, 1, &r);
    for (int i = 0; i < w->n; i++) cr_assert_eq(w->data[i], 0);
    tz_tensor_free(w);
}

// Max |(W W^T or W^T W) - gain^2 I| over one (rows, cols) block at w; cols_of: W^T W.
static double ortho_err(const real *w, int rows, int cols, int cols_of, double gain) {
    int k = cols_of ? cols : rows;
    double err = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double d = 0;
            if (cols_of)
                for (int i = 0; i < rows; i++) d += (double)w[i * cols + a] * w[i * cols + b];
            else
                for (int j = 0; j < cols; j++) d += (double)w[a * cols + j] * w[b * cols + j];
            err = fmax(err, fabs(d - (a == b ? gain * gain : 0)));
        }
    return err;
}

// (rows, cols) in `blocks` row blocks: each block's rows (wide/square) or columns (tall) orthonormal.
static void check_orthogonal(int rows, int cols, int blocks, double gain) {
    tz_rng r;
    tz_rng_seed(&r, 7);
    tz_tensor *w = tz_tensor_new(2, (const int[]){rows, cols});
    nn_init_apply(w, (nn_init){NN_INIT_ORTHOGONAL, gain}, cols, rows, blocks, &r);
    int br = rows / blocks;
    for (int b = 0; b < blocks; b++) {
        double err = ortho_err(w->data + b * br * cols, br, cols, br > cols, gain ? gain : 1);
        cr_assert(err < 1e-5 * (gain ? gain * gain : 1), "(%d,%d) block %d of %d: max error %g", rows, cols, b, blocks,
                  err);
    }
    tz_tensor_free(w);
}

Test(init, orthogonal_square_tall_wide) {
    check_orthogonal(64, 64, 1, 0);
    check_orthogonal(64, 64, 1, 2); // gain: W W^T = 4 I
    check_orthogonal(128, 32, 4, 0); // LSTM (4H, H): four orthogonal (H, H) gates
    check_orthogonal(64, 16, 1, 0); // tall: orthonormal columns
    check_orthogonal(192, 16, 4, 0); // tall blocks
    check_orthogonal(16, 64, 1, 0); // wide: orthonormal rows
    check_orthogonal(48, 64, 3, 0); // wide blocks
}

Test(init, orthogonal_sign_is_pytorchs) {
    // PyTorch takes Q of A = QR and multiplies by sign(diag R), i.e. the Q whose R has a
    // positive diagonal. Replay the normal draws of A (row-major (m, k)) and check that
    // R = Q^T A is upper triangular with a positive diagonal, for a tall and a square W.
    int shapes[2][2] = {{24, 8}, {12, 12}};
    for (int s = 0; s < 2; s++) {
        int m = shapes[s][0], k = shapes[s][1];
        tz_rng r, replay;
        tz_rng_seed(&r, 11);
        tz_rng_seed(&replay, 11);
        tz_tensor *w = tz_tensor_new(2, (const int[]){m, k});
        nn_init_apply(w, (nn_init){NN_INIT_ORTHOGONAL, 0}, k, m, 1, &r);
        double a[24 * 12];
        for (int i = 0; i < m * k; i++) a[i] = tz_rng_normal(&replay);
        for (int i = 0; i < k; i++)
            for (int j = 0; j <= i; j++) {
                double rij = 0; // (Q^T A)[i][j], for i >= j
                for (int t = 0; t < m; t++) rij += (double)w->data[t * k + i] * a[t * k + j];
                if (i == j) cr_assert(rij > 0.1, "(%d,%d): R[%d][%d] = %g must be > 0", m, k, i, i, rij);
                else cr_assert(fabs(rij) < 1e-5, "(%d,%d): R[%d][%d] = %g must be 0", m, k, i, j, rij);
            }
        tz_tensor_free(w);
    }
}

Test(init, same_seed_same_bits) {
    nn_init kinds[] = {{NN_INIT_ORTHOGONAL, 0}, {NN_INIT_NORMAL, 0.1}, {NN_INIT_XAVIER_UNIFORM, 0}};
    for (int k = 0; k < 3; k++) {
        tz_tensor *w[3];
        for (int i = 0; i < 3; i++) {
            tz_rng r;
            tz_rng_seed(&r, i < 2 ? 42 : 43);
            w[i] = tz_tensor_new(2, (const int[]){32, 8});
            nn_init_apply(w[i], kinds[k], 8, 32, 4, &r);
        }
        cr_assert(!memcmp(w[0]->data, w[1]->data, sizeof(real) * w[0]->n), "%s: same seed, different bits",
                  nn_init_name(kinds[k].kind));
        cr_assert(memcmp(w[0]->data, w[2]->data, sizeof(real) * w[0]->n), "%s: other seed, same bits",
                  nn_init_name(kinds[k].kind));
        for (int i = 0; i < 3; i++) tz_tensor_free(w[i]);
    }
}

Test(init, blocks_of_a_bias) {
    // A 1-D tensor is a column: a stacked LSTM bias (4H) splits into 4 blocks like its matrix.
    tz_rng r;
    tz_rng_seed(&r, 3);
    tz_tensor *b = tz_tensor_new(1, (const int[]){8});
    nn_init_apply(b, (nn_init){NN_INIT_UNIFORM, 0.5}, 2, 8, 4, &r);
    for (int i = 0; i < 8; i++) cr_assert(fabs(b->data[i]) <= 0.5);
    tz_tensor_free(b);
}

Test(init, names) {
    for (int k = NN_INIT_DEFAULT; k <= NN_INIT_PYTORCH; k++) {
        nn_init_kind got = NN_INIT_ZEROS;
        cr_assert(nn_init_parse(nn_init_name((nn_init_kind)k), &got), "%s", nn_init_name((nn_init_kind)k));
        cr_assert_eq((int)got, k);
    }
    nn_init_kind kind = NN_INIT_ONES;
    cr_assert_eq(nn_init_parse("glorot", &kind), 0);
    cr_assert_eq(kind, NN_INIT_ONES, "unknown names leave kind alone");
    cr_assert_str_eq(nn_init_name(NN_INIT_XAVIER_NORMAL), "xavier_normal");
    nn_init fb = {NN_INIT_PYTORCH, 0};
    cr_assert_eq(nn_init_or((nn_init){NN_INIT_DEFAULT, 0}, fb).kind, NN_INIT_PYTORCH);
    cr_assert_eq(nn_init_or((nn_init){NN_INIT_ORTHOGONAL, 2}, fb).a, 2);
}

Test(init, errors) {
    tz_rng r;
    tz_rng_seed(&r, 1);
    tz_tensor *w = tz_tensor_new(2, (const int[]){64, 8});
    tz_tensor *v = tz_tensor_new(1, (const int[]){8});
    cr_assert(EXPECT_FAIL(nn_init_apply(w, (nn_init){NN_INIT_ORTHOGONAL, 0}, 8, 64, 3, &r)));
    cr_assert_str_eq(tz_last_error(), "init orthogonal: blocks = 3 does not divide the 64 rows of the weight");
    cr_assert(EXPECT_FAIL(nn_init_apply(w, (nn_init){NN_INIT_UNIFORM, 0.1}, 8, 64, 0, &r)));
    cr_assert(EXPECT_FAIL(nn_init_apply(w, (nn_init){NN_INIT_DEFAULT, 0}, 8, 64, 1, &r)));
    cr_assert(strstr(tz_last_error(), "init default"), "%s", tz_last_error());
    cr_assert(EXPECT_FAIL(nn_init_apply(w, (nn_init){NN_INIT_NORMAL, -0.02}, 8, 64, 1, &r)));
    cr_assert_str_eq(tz_last_error(), "init normal: parameter a = -0.02 must be >= 0");
    cr_assert(EXPECT_FAIL(nn_init_apply(w, (nn_init){NN_INIT_KAIMING_NORMAL, 0}, 0, 64, 1, &r)));
    cr_assert_str_eq(tz_last_error(), "init kaiming_normal: fan_in = 0, fan_out = 64 must be > 0");
    cr_assert(EXPECT_FAIL(nn_init_apply(v, (nn_init){NN_INIT_ORTHOGONAL, 0}, 8, 1, 1, &r)));
    cr_assert(strstr(tz_last_error(), "needs a matrix"), "%s", tz_last_error());
    tz_tensor_free(w);
    tz_tensor_free(v);
}
