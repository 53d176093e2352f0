// tz.h: tapezoo's engine: dense tensors, a tape, and the ops that record themselves on it.
//
// The engine is compiled twice from the same sources: in float32 (libtapezoo, what models train
// with) and, with -DTZ_DOUBLE, in float64 (libtapezoo64, what the gradient check runs on).
// `real` is the element type of the build. See autograd/README.md for the design.
#ifndef TZ_H
#define TZ_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#ifdef TZ_DOUBLE
typedef double real;
#else
typedef float real;
#endif

#define TZ_MAX_DIMS 4

// ---------------------------------------------------------------------------------------------
// Errors. Every misuse (bad shapes, bad arguments) ends in tz_fail: one line naming the op and
// the shapes, then the handler. The default handler prints "tapezoo: <msg>" to stderr and
// exits with status 1; tests install one that records the message and longjmps.
typedef void (*tz_error_handler)(const char *msg);
void tz_set_error_handler(tz_error_handler h); // NULL restores the default
const char *tz_last_error(void);
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
void tz_fail(const char *fmt, ...);
// Checked allocation for memory that lives beyond a step (data, vocabularies, buffers): the
// memory, or tz_fail("<who>: out of memory (<bytes> bytes)"). Zero bytes allocate one, so the
// result is never NULL. calloc's is zeroed and checks n * size for overflow.
void *tz_malloc(size_t bytes, const char *who);
void *tz_calloc(size_t n, size_t size, const char *who);
void *tz_realloc(void *p, size_t bytes, const char *who);

// Seconds on the monotonic clock from an arbitrary start: for measuring time, never a date (the
// one clock of the engine's profile and thread pool, the trainer and the benchmarks).
double tz_now(void);

// ---------------------------------------------------------------------------------------------
// Random numbers: xoshiro256** seeded through splitmix64 (Blackman & Vigna 2018). Documented
// and ours, so a seed gives the same numbers on every machine.
typedef struct tz_rng {
    uint64_t s[4];
} tz_rng;
void tz_rng_seed(tz_rng *r, uint64_t seed);
uint64_t tz_rng_u64(tz_rng *r);
double tz_rng_uniform(tz_rng *r); // [0, 1), 53 random bits
double tz_rng_normal(tz_rng *r); // N(0, 1), Box-Muller
uint32_t tz_rng_below(tz_rng *r, uint32_t n); // uniform in [0, n), unbiased

// ---------------------------------------------------------------------------------------------
// Arena: a bump allocator for step-scoped memory. tz_arena_reset rewinds it; memory is reused,
// and after the first step (when the arena learns its size) no step calls malloc.
typedef struct tz_arena_block tz_arena_block;
typedef struct tz_arena {
    tz_arena_block *head; // block being filled (newest)
    size_t used, peak; // bytes handed out since reset; most ever handed out in one step
} tz_arena;
void tz_arena_init(tz_arena *a, size_t initial_bytes);
void *tz_arena_alloc(tz_arena *a, size_t bytes); // 64-byte aligned, uninitialised
void *tz_arena_calloc(tz_arena *a, size_t bytes);
void tz_arena_reset(tz_arena *a);
// Gives back p's `bytes` if they were the arena's last allocation (returns 1), else does nothing
// (returns 0): a loop that keeps its state but not its large last result (a decoder's logits)
// stays small.
int tz_arena_pop(tz_arena *a, const void *p, size_t bytes);
size_t tz_arena_capacity(const tz_arena *a); // bytes owned (grows only when a step needs more)
void tz_arena_free(tz_arena *a);

// ---------------------------------------------------------------------------------------------
// Tensors: dense, row-major, up to 4 dims. ndim == 0 is a scalar (n == 1).
typedef struct tz_tensor {
    real *data;
    real *grad; // NULL until backward needs it (or for tensors that need no gradient)
    int ndim;
    int shape[TZ_MAX_DIMS];
    int n; // number of elements
    int requires_grad; // a gradient flows into this tensor
    int node; // index of the tape node that made it, -1 for leaves
    int grad_fresh; // backward: grad is allocated but not yet written (see tz_grad_overwrite)
} tz_tensor;

// A tensor on the heap, for setup code (parameters, fixed inputs); never in a step loop.
tz_tensor *tz_tensor_new(int ndim, const int *shape);
void tz_tensor_free(tz_tensor *t);
// Formats "(2,3,4)" into buf (at least 64 bytes) and returns buf.
char *tz_shape_str(const tz_tensor *t, char *buf);
int tz_same_shape(const tz_tensor *a, const tz_tensor *b);
int tz_numel(int ndim, const int *shape);
// The size of the last dimension and the product of the others, for ops over rows.
int tz_cols(const tz_tensor *t);
int tz_rows(const tz_tensor *t);

// ---------------------------------------------------------------------------------------------
// Parameters: all weights of a model in one contiguous block (values) and a second one
// (gradients), so optimisers, clipping, zeroing and save/load are single loops.
enum {
    TZ_PARAM_NO_DECAY = 1, // never weight-decayed (AdamW); 1-D params (biases, norms) never are
    TZ_PARAM_EMBEDDING = 2, // an embedding table (optimisers may exclude it from decay)
    TZ_PARAM_BUFFER = 4, // state saved with the weights but not trained (BatchNorm's running
    // statistics): its gradient stays zero, so optimisers leave it alone
};
typedef struct tz_params {
    tz_tensor **t; // the parameter tensors, in declaration order
    char **names;
    unsigned *flags; // TZ_PARAM_* per tensor
    int count, cap_count;
    real *data, *grad; // the blocks; t[i]->data == data + off[i]
    size_t *off;
    size_t n, cap; // elements used, elements allocated
} tz_params;
void tz_params_init(tz_params *P);
// Declares a parameter (zero-filled). Pointers stay valid: growing the block re-points them.
tz_tensor *tz_param(tz_params *P, const char *name, int ndim, const int *shape);
tz_tensor *tz_params_find(const tz_params *P, const char *name);
int tz_params_index(const tz_params *P, const tz_tensor *t); // -1 if t is not in P
void tz_params_set_flags(tz_params *P, const tz_tensor *t, unsigned flags);
void tz_params_zero_grad(tz_params *P);
// A step's alternative to zeroing the whole gradient block (a pass over as many bytes as the
// weights, and a gemm that reads the zeros back to add to them): tz_params_grad_begin marks each
// gradient unwritten, so the first backward to reach it stores instead of adding (see
// tz_grad_overwrite; the tape zeroes one up front when an op that adds reaches it first), and
// tz_params_grad_end, after the step's backward(s), zeroes those nothing reached.
void tz_params_grad_begin(tz_params *P);
void tz_params_grad_end(tz_params *P);
void tz_params_free(tz_params *P);
// Fails with one line ("model needs N parameters (X GiB ...) - more than this machine's memory")
// when n parameters, with their gradients and an optimiser's two moments, would not fit in
// physical memory. tz_param checks before the block grows; setup code may check an estimate.
void tz_params_check_size(size_t n);

// ---------------------------------------------------------------------------------------------
// The graph: an arena for the step's tensors and a tape of the ops that made them.
typedef struct tz_graph tz_graph;
typedef struct tz_node tz_node;
typedef struct tz_profile tz_profile;

// What an op needs to run its backward: a name (for messages and the gradient check) and the
// function that reads node->out->grad and ACCUMULATES into the inputs' grads.
// flags, any of:
// TZ_OVERWRITES: the backward asks tz_grad_overwrite (or tz_grad_accumulate) about each input
//   gradient before writing it, so the tape need not zero those buffers beforehand.
// TZ_OUT_UNREAD: the backward never reads the output's values (a product: only its gradient).
// TZ_GRAD_IN_INPUT (with TZ_OVERWRITES): the backward may store each input's gradient in that
//   input's own values, element by element, each read before it is written (a loss over logits).
// When a TZ_OUT_UNREAD op's output goes only into one TZ_GRAD_IN_INPUT op, backward gives that
// tensor no gradient buffer of its own: the gradient replaces its values. The readout's logits
// (rows x vocabulary, the largest tensor of a language or translation model) then cost one
// buffer instead of two; after tz_backward their values are gone (their gradient is there).
enum { TZ_OVERWRITES = 1, TZ_OUT_UNREAD = 2, TZ_GRAD_IN_INPUT = 4 };
typedef struct tz_op {
    const char *name;
    void (*backward)(tz_graph *g, tz_node *n);
    int flags;
} tz_op;

#define TZ_NODE_INTS 6
struct tz_node {
    const tz_op *op;
    tz_tensor *out;
    tz_tensor **in; // n_in inputs (arena)
    int n_in;
    int iarg[TZ_NODE_INTS]; // small integer arguments (dims, flags)
    real farg[2]; // scalar arguments
    void *aux; // saved state for backward (arena): indices, masks, statistics
};

struct tz_graph {
    tz_arena arena;
    tz_node *nodes;
    int n_nodes, cap_nodes;
    int no_grad; // > 0: ops record nothing (evaluation, sampling)
    int training; // dropout is active only when set
    tz_rng rng; // dropout masks and other step randomness
    tz_profile *prof; // per-op timing when not NULL (tz_profile_start)
};

void tz_graph_init(tz_graph *g, size_t arena_bytes);
void tz_graph_free(tz_graph *g);
// Forgets the tape and rewinds the arena: call once per step.
void tz_graph_reset(tz_graph *g);
// Nested no-grad scopes: tz_no_grad_begin(g); ... tz_no_grad_end(g);
void tz_no_grad_begin(tz_graph *g);
void tz_no_grad_end(tz_graph *g);

// A step tensor (arena, uninitialised / zeroed). requires_grad = 0.
tz_tensor *tz_empty(tz_graph *g, int ndim, const int *shape);
tz_tensor *tz_zeros(tz_graph *g, int ndim, const int *shape);
// A leaf that wraps caller-owned memory (no copy); grad may be NULL.
tz_tensor *tz_wrap(tz_graph *g, real *data, real *grad, int ndim, const int *shape);
// Same data, cut from the tape: no gradient flows back through it (truncated BPTT).
tz_tensor *tz_detach(tz_graph *g, tz_tensor *x);

// Per-op timing of forward and backward (profile.c): start, run steps, print ms per step.
void tz_profile_start(tz_graph *g);
void tz_profile_print(tz_graph *g, FILE *f, long steps);
void tz_profile_stop(tz_graph *g);

// Backward from a scalar loss (seed 1) or from any tensor with a given output gradient.
void tz_backward(tz_graph *g, tz_tensor *loss);
void tz_backward_seed(tz_graph *g, tz_tensor *out, const real *seed);

// For op implementers: the output tensor of a new op, and its tape node (NULL when nothing
// needs a gradient or in no-grad mode). Ops call these two and nothing else of the tape.
tz_tensor *tz_op_output(tz_graph *g, int ndim, const int *shape, tz_tensor **in, int n_in);
tz_node *tz_op_record(tz_graph *g, const tz_op *op, tz_tensor *out, tz_tensor **in, int n_in);

// For the backward of an op with TZ_OVERWRITES set, before it writes the gradient of input t:
// tz_grad_overwrite returns 1 when that buffer has not been written yet in this backward (its
// contents are garbage): the op must then store (=) every element instead of adding (+=); 0:
// add as usual. tz_grad_accumulate is for backwards that add into only part of the gradient
// (scatters, broadcast sums): it zeroes a fresh buffer and returns it. Either marks t written.
int tz_grad_overwrite(tz_tensor *t);
real *tz_grad_accumulate(tz_tensor *t);

// ---------------------------------------------------------------------------------------------
// Ops. Each one checks its shapes, computes the forward and records itself.

// Matrix products. a (..,M,K) (or (..,K,M) with ta), b (K,N) (or (N,K) with tb) -> (..,M,N).
// When b is 2-D the leading dims of a are rows; when both have batch dims they must match.
tz_tensor *tz_matmul(tz_graph *g, tz_tensor *a, tz_tensor *b, int ta, int tb);
// x (..,in), w (out,in), bias (out) or NULL -> (..,out): x w^T + bias (a Linear layer).
tz_tensor *tz_linear(tz_graph *g, tz_tensor *x, tz_tensor *w, tz_tensor *bias);
// r + tz_linear(x, w, bias) with the residual r (.., out) added inside the product (r NULL: tz_linear)
tz_tensor *tz_linear_add(tz_graph *g, tz_tensor *x, tz_tensor *w, tz_tensor *bias, tz_tensor *r);

// Elementwise with numpy broadcasting (shapes right-aligned; each dim equal or 1).
tz_tensor *tz_add(tz_graph *g, tz_tensor *a, tz_tensor *b);
tz_tensor *tz_sub(tz_graph *g, tz_tensor *a, tz_tensor *b);
tz_tensor *tz_mul(tz_graph *g, tz_tensor *a, tz_tensor *b);
tz_tensor *tz_scale(tz_graph *g, tz_tensor *a, real s); // a * s

// Unary.
tz_tensor *tz_tanh(tz_graph *g, tz_tensor *x);
tz_tensor *tz_sigmoid(tz_graph *g, tz_tensor *x);
tz_tensor *tz_relu(tz_graph *g, tz_tensor *x);
tz_tensor *tz_gelu(tz_graph *g, tz_tensor *x); // exact: 0.5 x (1 + erf(x / sqrt 2))
tz_tensor *tz_exp(tz_graph *g, tz_tensor *x); // input clamped so the result is finite
tz_tensor *tz_log(tz_graph *g, tz_tensor *x); // input clamped to the smallest normal > 0

// Over the last dim, max-subtracted.
tz_tensor *tz_softmax(tz_graph *g, tz_tensor *x);
tz_tensor *tz_log_softmax(tz_graph *g, tz_tensor *x);
// Fused log-softmax + negative log-likelihood: logits (..,V), targets one per row.
// Rows whose target == ignore_index count for nothing; the result is the mean over the others
// (0 when there are none). Targets outside [0,V) other than ignore_index are an error.
tz_tensor *tz_cross_entropy(tz_graph *g, tz_tensor *logits, const int *targets, int ignore_index);
// The same op against label-smoothed targets (1 - eps) onehot(y) + eps / V, eps in [0, 1), as
// PyTorch's CrossEntropyLoss(label_smoothing = eps); eps = 0 is tz_cross_entropy, bit for bit.
tz_tensor *tz_cross_entropy_smooth(tz_graph *g, tz_tensor *logits, const int *targets, int ignore_index, real eps);

// Rows of w (V,D) picked by ids -> (n,D); backward scatter-adds into w's gradient.
tz_tensor *tz_embedding(tz_graph *g, tz_tensor *w, const int *ids, int n);

// (x - mean) / sqrt(var + eps) * gamma + beta over the last dim; gamma, beta (D) or NULL.
tz_tensor *tz_layernorm(tz_graph *g, tz_tensor *x, tz_tensor *gamma, tz_tensor *beta, real eps);

// Shapes. reshape is a view (no copy), and so is a slice of whole leading blocks (when all dims
// before `dim` are 1, e.g. dim 0); the others copy.
tz_tensor *tz_reshape(tz_graph *g, tz_tensor *x, int ndim, const int *shape); // one dim may be -1
tz_tensor *tz_concat(tz_graph *g, tz_tensor **xs, int n, int dim);
tz_tensor *tz_slice(tz_graph *g, tz_tensor *x, int dim, int start, int len);
tz_tensor *tz_permute(tz_graph *g, tz_tensor *x, const int *perm); // out dim i = x dim perm[i]
tz_tensor *tz_transpose(tz_graph *g, tz_tensor *x, int d0, int d1);

// Reductions to a scalar.
tz_tensor *tz_sum(tz_graph *g, tz_tensor *x);
tz_tensor *tz_mean(tz_graph *g, tz_tensor *x);

// Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p), only when
// g->training; identity otherwise. Masks come from g->rng.
tz_tensor *tz_dropout(tz_graph *g, tz_tensor *x, real p);

// Where mask != 0 (mask broadcasts to x like tz_add), the output is value and no gradient flows.
tz_tensor *tz_masked_fill(tz_graph *g, tz_tensor *x, const tz_tensor *mask, real value);
// The masks attention takes (causal, padding, both) are built in one place: nn_attn_mask
// (nn/attention.h).

#endif
