// checks_ops.c: the gradient check of every op of the engine, on tiny shapes.
#include "gradcheck.h"
#include "nn.h"

#include <stdlib.h>

// The inputs of an op check: parameters in the checked block, at most four.
typedef struct {
    tz_tensor *t[4];
} ins;

static void *declare(tz_params *P, tz_rng *r, int k, const char *name, int ndim, const int *shape, double lo, double hi,
                     ins *s) {
    if (!s) s = calloc(1, sizeof *s);
    s->t[k] = tz_param(P, name, ndim, shape);
    if (lo == hi) tz_fill_normal(s->t[k], r, 1);
    else tz_fill_uniform(s->t[k], r, lo, hi);
    return s;
}
#define IN(k) (((ins *)st)->t[k])
// N(0,1) inputs: a (d..) [and b (d..)].
#define NORMAL(k, name, ...) \
    declare(P, r, k, name, sizeof((int[]){__VA_ARGS__}) / sizeof(int), (const int[]){__VA_ARGS__}, 0, 0, s)

static void *matmul_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "a", 3, 4);
    NORMAL(1, "b", 4, 5);
    return s;
}
static tz_tensor *matmul_fw(tz_graph *g, void *st) { return tz_matmul(g, IN(0), IN(1), 0, 0); }

// Whole SIMD tiles and every edge of the float32 kernels (AVX-512 12 x 32, AVX2 6 x 16):
// gradcheck --f32 checks them on it. Directional (5,700 elements).
static void *matmul_tiles_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "a", 37, 70);
    NORMAL(1, "b", 70, 45);
    return s;
}

static void *matmul_tt_setup(tz_params *P, tz_rng *r) { // a stored (K,M), b stored (N,K)
    ins *s = NULL;
    s = NORMAL(0, "a", 4, 3);
    NORMAL(1, "b", 5, 4);
    return s;
}
static tz_tensor *matmul_ta_tb_fw(tz_graph *g, void *st) { return tz_matmul(g, IN(0), IN(1), 1, 1); }

static void *matmul_ta_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "a", 4, 3);
    NORMAL(1, "b", 4, 5);
    return s;
}
static tz_tensor *matmul_ta_fw(tz_graph *g, void *st) { return tz_matmul(g, IN(0), IN(1), 1, 0); }

static void *matmul_tb_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "a", 3, 4);
    NORMAL(1, "b", 5, 4);
    return s;
}
static tz_tensor *matmul_tb_fw(tz_graph *g, void *st) { return tz_matmul(g, IN(0), IN(1), 0, 1); }

static void *matmul_rows_setup(tz_params *P, tz_rng *r) { // (2,3,4) x (4,5): leading dims are rows
    ins *s = NULL;
    s = NORMAL(0, "a", 2, 3, 4);
    NORMAL(1, "b", 4, 5);
    return s;
}
static tz_tensor *matmul_rows_fw(tz_graph *g, void *st) { return tz_matmul(g, IN(0), IN(1), 0, 0); }

static void *bmm_setup(tz_params *P, tz_rng *r) { // (2,2,3,4) x (2,2,5,4)^T, as attention does
    ins *s = NULL;
    s = NORMAL(0, "a", 2, 2, 3, 4);
    NORMAL(1, "b", 2, 2, 5, 4);
    return s;
}
static tz_tensor *bmm_fw(tz_graph *g, void *st) { return tz_matmul(g, IN(0), IN(1), 0, 1); }

static void *bmm_ta_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "a", 2, 4, 3);
    NORMAL(1, "b", 2, 4, 5);
    return s;
}
static tz_tensor *bmm_ta_fw(tz_graph *g, void *st) { return tz_matmul(g, IN(0), IN(1), 1, 0); }

static void *linear_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "x", 2, 3, 4);
    NORMAL(1, "w", 5, 4);
    NORMAL(2, "bias", 5);
    return s;
}
static tz_tensor *linear_fw(tz_graph *g, void *st) { return tz_linear(g, IN(0), IN(1), IN(2)); }
static tz_tensor *linear_nobias_fw(tz_graph *g, void *st) { return tz_linear(g, IN(0), IN(1), NULL); }
// The residual added in the product's epilogue; x as its own residual too (post-LN: both
// gradients land in one buffer).
static void *linear_add_setup(tz_params *P, tz_rng *r) {
    ins *s = linear_setup(P, r);
    NORMAL(3, "r", 2, 3, 5);
    return s;
}
static void *linear_add_self_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "x", 2, 3, 4);
    NORMAL(1, "w", 4, 4);
    NORMAL(2, "bias", 4);
    return s;
}
static tz_tensor *linear_add_fw(tz_graph *g, void *st) { return tz_linear_add(g, IN(0), IN(1), IN(2), IN(3)); }
static tz_tensor *linear_add_nobias_fw(tz_graph *g, void *st) { return tz_linear_add(g, IN(0), IN(1), NULL, IN(3)); }
static tz_tensor *linear_add_self_fw(tz_graph *g, void *st) { return tz_linear_add(g, IN(0), IN(1), IN(2), IN(0)); }

static void *same_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "a", 2, 3, 4);
    NORMAL(1, "b", 2, 3, 4);
    return s;
}
static void *bcast_setup(tz_params *P, tz_rng *r) { // (2,3,4) with (3,1): both sides broadcast
    ins *s = NULL;
    s = NORMAL(0, "a", 2, 1, 4);
    NORMAL(1, "b", 3, 1);
    return s;
}
static void *row_setup(tz_params *P, tz_rng *r) { // (2,3,4) with (4): a bias row
    ins *s = NULL;
    s = NORMAL(0, "a", 2, 3, 4);
    NORMAL(1, "b", 4);
    return s;
}
static tz_tensor *add_fw(tz_graph *g, void *st) { return tz_add(g, IN(0), IN(1)); }
static tz_tensor *sub_fw(tz_graph *g, void *st) { return tz_sub(g, IN(0), IN(1)); }
static tz_tensor *mul_fw(tz_graph *g, void *st) { return tz_mul(g, IN(0), IN(1)); }
static tz_tensor *square_fw(tz_graph *g, void *st) { return tz_mul(g, IN(0), IN(0)); } // reuse accumulates

static void *x_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "x", 3, 5);
    return s;
}
static void *x_positive_setup(tz_params *P, tz_rng *r) {
    return declare(P, r, 0, "x", 2, (const int[]){3, 5}, 0.2, 3, NULL);
}
// relu's kink at 0 is kept at least 0.05 away from every input, well beyond eps.
static void *x_away_from_zero_setup(tz_params *P, tz_rng *r) {
    ins *s = declare(P, r, 0, "x", 2, (const int[]){3, 5}, 0.05, 2, NULL);
    for (int i = 0; i < s->t[0]->n; i += 2) s->t[0]->data[i] = -s->t[0]->data[i];
    return s;
}
static tz_tensor *scale_fw(tz_graph *g, void *st) { return tz_scale(g, IN(0), -2.5); }
static tz_tensor *tanh_fw(tz_graph *g, void *st) { return tz_tanh(g, IN(0)); }
static tz_tensor *sigmoid_fw(tz_graph *g, void *st) { return tz_sigmoid(g, IN(0)); }
static tz_tensor *relu_fw(tz_graph *g, void *st) { return tz_relu(g, IN(0)); }
static tz_tensor *gelu_fw(tz_graph *g, void *st) { return tz_gelu(g, IN(0)); }
static tz_tensor *exp_fw(tz_graph *g, void *st) { return tz_exp(g, IN(0)); }
static tz_tensor *log_fw(tz_graph *g, void *st) { return tz_log(g, IN(0)); }
static tz_tensor *softmax_fw(tz_graph *g, void *st) { return tz_softmax(g, IN(0)); }
static tz_tensor *log_softmax_fw(tz_graph *g, void *st) { return tz_log_softmax(g, IN(0)); }
static tz_tensor *sum_fw(tz_graph *g, void *st) { return tz_sum(g, IN(0)); }
static tz_tensor *mean_fw(tz_graph *g, void *st) { return tz_mean(g, IN(0)); }

static void *logits_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "logits", 2, 3, 5);
    return s;
}
static const int targets[6] = {4, 0, 2, 2, 1, 3};
static const int targets_padded[6] = {4, -100, 2, -100, 1, 3};
static tz_tensor *ce_fw(tz_graph *g, void *st) { return tz_cross_entropy(g, IN(0), targets, -100); }
static tz_tensor *ce_ignore_fw(tz_graph *g, void *st) { return tz_cross_entropy(g, IN(0), targets_padded, -100); }
static tz_tensor *ce_smooth_fw(tz_graph *g, void *st) {
    return tz_cross_entropy_smooth(g, IN(0), targets_padded, -100, 0.1);
}
static tz_tensor *ce_smooth_all_fw(tz_graph *g, void *st) { // every row counted, a large eps
    return tz_cross_entropy_smooth(g, IN(0), targets, -100, 0.6);
}
// Logits made by an op: their gradient is fresh, so the loss stores it (the branch a model's
// loss takes) instead of adding to a parameter's.
static tz_tensor *ce_fresh_fw(tz_graph *g, void *st) {
    return tz_cross_entropy(g, tz_scale(g, IN(0), 1.5), targets_padded, -100);
}
static tz_tensor *ce_smooth_fresh_fw(tz_graph *g, void *st) {
    return tz_cross_entropy_smooth(g, tz_scale(g, IN(0), 1.5), targets_padded, -100, 0.1);
}

static void *table_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "w", 6, 4);
    return s;
}
static const int ids[7] = {1, 5, 1, 0, 3, 1, 5}; // repeats: the scatter-add must sum them
static tz_tensor *embedding_fw(tz_graph *g, void *st) { return tz_embedding(g, IN(0), ids, 7); }

static void *layernorm_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "x", 2, 3, 6);
    NORMAL(1, "gamma", 6);
    NORMAL(2, "beta", 6);
    return s;
}
static tz_tensor *layernorm_fw(tz_graph *g, void *st) { return tz_layernorm(g, IN(0), IN(1), IN(2), 1e-5); }
static tz_tensor *layernorm_plain_fw(tz_graph *g, void *st) { return tz_layernorm(g, IN(0), NULL, NULL, 1e-5); }

static void *concat_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "a", 2, 3, 4);
    NORMAL(1, "b", 2, 1, 4);
    NORMAL(2, "c", 2, 2, 4);
    return s;
}
static tz_tensor *concat_fw(tz_graph *g, void *st) { return tz_concat(g, ((ins *)st)->t, 3, 1); }
static tz_tensor *slice_fw(tz_graph *g, void *st) { return tz_slice(g, IN(0), 2, 1, 2); }
// Leading slices are views, of a leaf and of a step tensor: both must pass gradients through.
static tz_tensor *slice_view_fw(tz_graph *g, void *st) {
    tz_tensor *leaf = tz_slice(g, IN(0), 0, 1, 1);
    tz_tensor *mid = tz_slice(g, tz_tanh(g, IN(1)), 0, 0, 1);
    return tz_tanh(g, tz_mul(g, leaf, mid));
}
static tz_tensor *permute_fw(tz_graph *g, void *st) {
    tz_tensor *x = tz_reshape(g, IN(0), 4, (const int[]){2, 3, 2, 2});
    return tz_permute(g, x, (const int[]){0, 2, 1, 3}); // (B,T,H,D) -> (B,H,T,D)
}
static tz_tensor *transpose_fw(tz_graph *g, void *st) { return tz_transpose(g, IN(0), 0, 2); }
// A view in the middle of a graph: its gradient must pass through untouched.
static tz_tensor *reshape_fw(tz_graph *g, void *st) {
    tz_tensor *y = tz_tanh(g, IN(0));
    return tz_tanh(g, tz_reshape(g, y, 2, (const int[]){-1, 8}));
}

static tz_tensor *dropout_fw(tz_graph *g, void *st) { return tz_dropout(g, IN(0), 0.4); }

static void *scores_setup(tz_params *P, tz_rng *r) {
    ins *s = NULL;
    s = NORMAL(0, "scores", 2, 2, 4, 4);
    return s;
}
static tz_tensor *causal_fw(tz_graph *g, void *st) {
    return tz_softmax(g, tz_masked_fill(g, IN(0), nn_attn_mask(g, 1, 4, 4, NULL, 1), -1e9));
}
static tz_tensor *padding_fw(tz_graph *g, void *st) {
    static const int lengths[2] = {3, 1};
    return tz_softmax(g, tz_masked_fill(g, IN(0), nn_attn_mask(g, 2, 1, 4, lengths, 0), -1e9));
}

#define CHECK(name, setup, fw) \
    { name, setup, fw, free, 0, 0, NULL, NULL }
const tz_check tz_op_checks[] = {
    CHECK("op/matmul", matmul_setup, matmul_fw),
    {"op/matmul_tiles", matmul_tiles_setup, matmul_fw, free, 1e-5, 1, NULL, NULL}, // L sums 1,665 products: rounding
    CHECK("op/matmul_ta", matmul_ta_setup, matmul_ta_fw),
    CHECK("op/matmul_tb", matmul_tb_setup, matmul_tb_fw),
    CHECK("op/matmul_ta_tb", matmul_tt_setup, matmul_ta_tb_fw),
    CHECK("op/matmul_rows", matmul_rows_setup, matmul_rows_fw),
    CHECK("op/matmul_batched", bmm_setup, bmm_fw),
    CHECK("op/matmul_batched_ta", bmm_ta_setup, bmm_ta_fw),
    CHECK("op/linear", linear_setup, linear_fw),
    CHECK("op/linear_nobias", linear_setup, linear_nobias_fw),
    CHECK("op/linear_add", linear_add_setup, linear_add_fw),
    CHECK("op/linear_add_nobias", linear_add_setup, linear_add_nobias_fw),
    CHECK("op/linear_add_self", linear_add_self_setup, linear_add_self_fw),
    CHECK("op/add", same_setup, add_fw),
    CHECK("op/add_broadcast", bcast_setup, add_fw),
    CHECK("op/add_row", row_setup, add_fw),
    CHECK("op/sub", same_setup, sub_fw),
    CHECK("op/sub_broadcast", bcast_setup, sub_fw),
    CHECK("op/mul", same_setup, mul_fw),
    CHECK("op/mul_broadcast", bcast_setup, mul_fw),
    CHECK("op/mul_self", x_setup, square_fw),
    CHECK("op/scale", x_setup, scale_fw),
    CHECK("op/tanh", x_setup, tanh_fw),
    CHECK("op/sigmoid", x_setup, sigmoid_fw),
    CHECK("op/relu", x_away_from_zero_setup, relu_fw),
    CHECK("op/gelu", x_setup, gelu_fw),
    CHECK("op/exp", x_setup, exp_fw),
    CHECK("op/log", x_positive_setup, log_fw),
    CHECK("op/softmax", x_setup, softmax_fw),
    CHECK("op/log_softmax", x_setup, log_softmax_fw),
    CHECK("op/cross_entropy", logits_setup, ce_fw),
    CHECK("op/cross_entropy_ignore", logits_setup, ce_ignore_fw),
    CHECK("op/cross_entropy_smooth", logits_setup, ce_smooth_fw),
    CHECK("op/cross_entropy_smooth_all", logits_setup, ce_smooth_all_fw),
    CHECK("op/cross_entropy_fresh", logits_setup, ce_fresh_fw),
    CHECK("op/cross_entropy_smooth_fresh", logits_setup, ce_smooth_fresh_fw),
    CHECK("op/embedding", table_setup, embedding_fw),
    CHECK("op/layernorm", layernorm_setup, layernorm_fw),
    CHECK("op/layernorm_plain", layernorm_setup, layernorm_plain_fw),
    CHECK("op/concat", concat_setup, concat_fw),
    CHECK("op/slice", same_setup, slice_fw),
    CHECK("op/slice_view", same_setup, slice_view_fw),
    CHECK("op/permute", same_setup, permute_fw),
    CHECK("op/transpose", same_setup, transpose_fw),
    CHECK("op/reshape", same_setup, reshape_fw),
    CHECK("op/sum", same_setup, sum_fw),
    CHECK("op/mean", same_setup, mean_fw),
    CHECK("op/dropout", same_setup, dropout_fw),
    CHECK("op/masked_fill_causal", scores_setup, causal_fw),
    CHECK("op/masked_fill_padding", scores_setup, padding_fw),
};
const int tz_n_op_checks = sizeof tz_op_checks / sizeof *tz_op_checks;
