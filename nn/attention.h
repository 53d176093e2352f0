// attention.h: attention layers, batch-first.
//   - Bahdanau et al. 2015 additive attention, e_j = v^T tanh(W s + U h_j);
//   - Luong et al. 2015 multiplicative scores, dot s^T h_j and general s^T W h_j;
//   - Vaswani et al. 2017 scaled dot-product attention softmax(Q K^T / sqrt(d) + mask) V and
//     multi-head attention (self and cross), with a KV cache for incremental decoding.
// All are built from the engine's ops (batched matmul, permute, reshape, masked_fill, softmax),
// so their backward is the ops' own, proven by tools/gradcheck (attn/ group).
//
// Masks: a masked score is replaced by -1e9 before the softmax, so its weight is exactly 0
// (exp underflows) and no gradient reaches it. Padding is given as lengths (B): keys t >= len[b]
// are masked; lengths must be in [1, T] so that every row keeps at least one key.
#ifndef NN_ATTENTION_H
#define NN_ATTENTION_H

#include "layers.h"
#include "position.h"

#define NN_ATTN_MASKED ((real)-1e9)

// ---------------------------------------------------------------------------------------------
// Recurrent-era attention: one query per sequence, s (B,Dq), over annotations h (B,T,Dk).
// Both return the context sum_j a_j h_j (B,Dk) and, when weights != NULL, the weights a (B,T).

// Bahdanau: "<name>.W.weight" (A,Dq), "<name>.U.weight" (A,Dk), "<name>.U.bias" (A),
// "<name>.v.weight" (1,A). (The paper leaves biases out for readability; one after U h, which is
// computed once per sequence, costs nothing and is what most implementations have.)
typedef struct nn_bahdanau {
    nn_linear W, U, v;
    int dq, dk, da;
    char name[48];
} nn_bahdanau;
void nn_bahdanau_init(nn_bahdanau *a, tz_params *P, const char *name, int dq, int dk, int da, nn_init init, tz_rng *r);
// U h_j for all j: h (B,T,Dk) -> (B,T,A). Depends only on the encoder, so a decoder computes it
// once per sequence and passes it to every step.
tz_tensor *nn_bahdanau_keys(tz_graph *g, const nn_bahdanau *a, tz_tensor *h);
// s (B,Dq), h (B,T,Dk), keys (B,T,A) from nn_bahdanau_keys or NULL (computed here), lengths (B)
// or NULL -> context (B,Dk); *weights (B,T).
tz_tensor *nn_bahdanau_forward(tz_graph *g, const nn_bahdanau *a, tz_tensor *s, tz_tensor *h, tz_tensor *keys,
                               const int *lengths, tz_tensor **weights);

// Luong: dot (Dq == Dk, no parameters) or general "<name>.W.weight" (Dk,Dq), as OpenNMT's
// linear_in: score_j = (W s) . h_j = s^T W^T h_j, the bilinear form of the paper.
typedef enum { NN_LUONG_DOT, NN_LUONG_GENERAL } nn_luong_score;
typedef struct nn_luong {
    nn_linear W;
    nn_luong_score score;
    int dq, dk;
    char name[48];
} nn_luong;
void nn_luong_init(nn_luong *a, tz_params *P, const char *name, nn_luong_score score, int dq, int dk, nn_init init,
                   tz_rng *r);
// s (B,Dq), h (B,T,Dk), lengths (B) or NULL -> context (B,Dk); *weights (B,T).
tz_tensor *nn_luong_forward(tz_graph *g, const nn_luong *a, tz_tensor *s, tz_tensor *h, const int *lengths,
                            tz_tensor **weights);

// ---------------------------------------------------------------------------------------------
// Scaled dot-product attention (Vaswani et al. 2017, eq. 1).

// The mask for scores (.., Tq, Tk) of a batch of B, 1 = masked, or NULL when nothing is:
// padding (lengths (B) or NULL: keys t >= lengths[b]) and/or causal (key j is masked for query
// i when j > i + Tk - Tq: the queries are the last Tq positions, as with a KV cache).
// Shape (Tq,Tk), (B,1,1,Tk) or (B,1,Tq,Tk); in the graph's arena.
tz_tensor *nn_attn_mask(tz_graph *g, int B, int Tq, int Tk, const int *lengths, int causal);

// q (B,H,Tq,D), k (B,H,Tk,D), v (B,H,Tk,Dv) (or 3-D, (B,T,D)); mask broadcastable to the scores
// (B,H,Tq,Tk) or NULL; causal as in nn_attn_mask; dropout on the weights (when g->training)
// -> (B,H,Tq,Dv); *weights (B,H,Tq,Tk), before dropout.
tz_tensor *nn_sdpa(tz_graph *g, tz_tensor *q, tz_tensor *k, tz_tensor *v, const tz_tensor *mask, int causal,
                   real dropout, tz_tensor **weights);

// Multi-head attention of projected q (B,Tq,C), k, v (B,Tk,C) as one fused node: heads read in
// place, masks applied by index (causal: queries are the last Tq of the Tk positions; lengths (B)
// or NULL: key padding), masked weights exactly 0 -> (B,Tq,C). *weights (B,H,Tq,Tk) if asked.
// The same function as nn_sdpa over split heads, without its copies; no attention dropout.
tz_tensor *nn_attention_fused(tz_graph *g, tz_tensor *q, tz_tensor *k, tz_tensor *v, int heads, const int *lengths,
                              int causal, tz_tensor **weights);
// The same for self-attention with q, k, v packed in one projection qkv (B,T,3C) = [q k v]
// (one gemm instead of three) -> (B,T,C).
tz_tensor *nn_attention_fused_qkv(tz_graph *g, tz_tensor *qkv, int heads, const int *lengths, int causal,
                                  tz_tensor **weights);
// Query rows per tile of the fused nodes this thread records (0: their own choice, from T); for
// tests of the tiling.
void nn_attention_fused_tile(int rows);

// ---------------------------------------------------------------------------------------------
// Multi-head attention: concat_h(sdpa(x Wq_h, kv Wk_h, kv Wv_h)) Wo.
// "<name>.q.weight" (C,C), "<name>.k", "<name>.v", "<name>.o" (+ ".bias" (C) each if bias).
// nn_mha_load_pytorch copies in the weights of torch.nn.MultiheadAttention (in_proj = [Wq;Wk;Wv]).
typedef struct nn_mha {
    nn_linear q, k, v, o;
    int d_model, heads, d_head;
    real dropout; // on the attention weights while training (PyTorch's `dropout`); 0 at init
    int rope; // rotate q and k with RoPE (Su et al. 2021) before the scores; 0 at init
    real rope_base; // 10000
    char name[48];
} nn_mha;
void nn_mha_init(nn_mha *m, tz_params *P, const char *name, int d_model, int heads, int bias, nn_init init, tz_rng *r);
// PyTorch's in_proj_weight (3C,C), in_proj_bias (3C), out_proj.weight (C,C), out_proj.bias (C).
// Biases may be NULL (then the layer's are zeroed); a layer without biases ignores them.
void nn_mha_load_pytorch(const nn_mha *m, const real *in_proj_weight, const real *in_proj_bias,
                         const real *out_proj_weight, const real *out_proj_bias);

// x (B,Tq,C) queries; kv (B,Tk,C) keys and values, or NULL for self-attention (kv = x);
// kv_lengths (B) or NULL (key padding); causal -> (B,Tq,C); *weights (B,H,Tq,Tk) (arena: valid
// until tz_graph_reset), for plotting.
tz_tensor *nn_mha_forward(tz_graph *g, const nn_mha *m, tz_tensor *x, tz_tensor *kv, const int *kv_lengths, int causal,
                          tz_tensor **weights);
// r + nn_mha_forward(...), r (B,Tq,C) added in the output projection (r NULL: nn_mha_forward).
tz_tensor *nn_mha_forward_add(tz_graph *g, const nn_mha *m, tz_tensor *x, tz_tensor *kv, const int *kv_lengths,
                              int causal, tz_tensor **weights, tz_tensor *r);

// Cross-attention over a memory that stays fixed while a decoder runs step by step (the encoder's
// output): its keys and values projected once, k = mem Wk^T + bk and v = mem Wv^T + bv (B,S,C).
typedef struct nn_mha_memory {
    tz_tensor *k, *v;
} nn_mha_memory;
nn_mha_memory nn_mha_memory_project(tz_graph *g, const nn_mha *m, tz_tensor *mem);
// x (B,Tq,C) queries over a projected memory, lengths (B) or NULL (key padding) -> (B,Tq,C);
// *weights (B,H,Tq,S). The same function as nn_mha_forward(g, m, x, mem, lengths, 0, weights).
tz_tensor *nn_mha_forward_memory(tz_graph *g, const nn_mha *m, tz_tensor *x, const nn_mha_memory *mem,
                                 const int *lengths, tz_tensor **weights);

// KV cache (Pope et al. 2022; GPT-2's `past`): for each layer of a decoder-only stack, the keys and
// values of every position seen so far, in buffers (B,H,Tmax,D) allocated once. A step appends
// its t positions and attends over all of them; nothing is allocated but the graph's arena.
typedef struct nn_kv_cache {
    int layers, B, heads, Tmax, d_head;
    int *len; // positions filled, per layer
    real *k, *v; // (layers, B, H, Tmax, D) each
    size_t cap; // values allocated in k and in v (nn_kv_cache_reserve reuses them)
    real *tmp; // nn_kv_cache_gather's scratch, tmp_cap values
    size_t tmp_cap;
} nn_kv_cache;
void nn_kv_cache_init(nn_kv_cache *c, int layers, int B, int heads, int Tmax, int d_head);
// Makes c fit B rows of Tmax positions (c zeroed or made before). Another shape empties it and
// reuses its buffers if they are large enough; the same shape with more positions keeps what it
// holds (a decoder outgrowing its first guess of the target length). Allocates only to grow.
void nn_kv_cache_reserve(nn_kv_cache *c, int layers, int B, int heads, int Tmax, int d_head);
// Beam search: row b of every layer continues row from[b] (B): the cached positions are gathered.
void nn_kv_cache_gather(nn_kv_cache *c, const int *from);
void nn_kv_cache_reset(nn_kv_cache *c); // empty again (a new sequence)
int nn_kv_cache_len(const nn_kv_cache *c); // positions filled (layer 0): the next step's offset
void nn_kv_cache_free(nn_kv_cache *c);

// Causal self-attention of x (B,t,C), the next t positions, over the cache of `layer` plus x:
// appends x's keys and values (after RoPE at their positions) to the cache, -> (B,t,C).
// Gradients reach this step's q, k, v but not the cached past (decoding is inference).
tz_tensor *nn_mha_forward_cached(tz_graph *g, const nn_mha *m, tz_tensor *x, nn_kv_cache *c, int layer,
                                 tz_tensor **weights);

#endif
