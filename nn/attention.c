// attention.c: Bahdanau and Luong attention, scaled dot-product and multi-head attention, and the
// KV cache, all composed from the engine's ops (their backward is the ops' own).
#include "attention.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_name(char *dst, size_t cap, const char *name) { snprintf(dst, cap, "%s", name ? name : ""); }

// A query s (B,Dq) and annotations h (B,T,Dk) of the recurrent-era layers.
static void check_query_keys(const char *layer, const char *name, const tz_tensor *s, int dq, const tz_tensor *h,
                             int dk) {
    char a[64], b[64];
    if (s->ndim != 2 || h->ndim != 3 || s->shape[0] != h->shape[0] || s->shape[1] != dq || h->shape[2] != dk)
        tz_fail("%s '%s': query %s and keys %s do not fit (B,%d) and (B,T,%d)", layer, name, tz_shape_str(s, a),
                tz_shape_str(h, b), dq, dk);
}

// Every row must keep a key: a fully masked row would attend uniformly to padding.
static void check_lengths(const char *layer, const char *name, int B, int T, const int *lengths) {
    for (int b = 0; lengths && b < B; b++)
        if (lengths[b] < 1 || lengths[b] > T) {
            if (name) tz_fail("%s '%s': lengths[%d] = %d outside [1, %d]", layer, name, b, lengths[b], T);
            tz_fail("%s: lengths[%d] = %d outside [1, %d]", layer, b, lengths[b], T);
        }
}

// scores (B,T), h (B,T,Dk) -> context (B,Dk) = sum_j softmax(scores)_j h_j, padded keys masked.
static tz_tensor *attend(tz_graph *g, tz_tensor *scores, tz_tensor *h, const int *lengths, tz_tensor **weights) {
    int B = h->shape[0], T = h->shape[1], Dk = h->shape[2];
    if (lengths) {
        tz_tensor *mask = tz_empty(g, 2, (const int[]){B, T});
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) mask->data[b * T + t] = t >= lengths[b];
        scores = tz_masked_fill(g, scores, mask, NN_ATTN_MASKED);
    }
    tz_tensor *a = tz_softmax(g, scores);
    if (weights) *weights = a;
    tz_tensor *c = tz_matmul(g, tz_reshape(g, a, 3, (const int[]){B, 1, T}), h, 0, 0); // (B,1,Dk)
    return tz_reshape(g, c, 2, (const int[]){B, Dk});
}

// ---------------------------------------------------------------------------------------------
// Bahdanau et al. 2015, appendix A.1.2: e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j).

void nn_bahdanau_init(nn_bahdanau *a, tz_params *P, const char *name, int dq, int dk, int da, nn_init init, tz_rng *r) {
    if (dq <= 0 || dk <= 0 || da <= 0)
        tz_fail("bahdanau '%s': sizes dq = %d, dk = %d, da = %d must be > 0", name, dq, dk, da);
    memset(a, 0, sizeof *a);
    set_name(a->name, sizeof a->name, name);
    a->dq = dq, a->dk = dk, a->da = da;
    char key[256];
    snprintf(key, sizeof key, "%s.W", name);
    nn_linear_init(&a->W, P, key, dq, da, 0, init, r);
    snprintf(key, sizeof key, "%s.U", name);
    nn_linear_init(&a->U, P, key, dk, da, 1, init, r);
    snprintf(key, sizeof key, "%s.v", name);
    nn_linear_init(&a->v, P, key, da, 1, 0, init, r);
}

// h (B,T,Dk) -> (B,T,A)
tz_tensor *nn_bahdanau_keys(tz_graph *g, const nn_bahdanau *a, tz_tensor *h) {
    char s[64];
    if (h->ndim != 3 || h->shape[2] != a->dk)
        tz_fail("bahdanau '%s': keys %s do not fit (B,T,%d)", a->name, tz_shape_str(h, s), a->dk);
    return nn_linear_forward(g, &a->U, h);
}

// s (B,Dq), h (B,T,Dk), keys (B,T,A) or NULL -> (B,Dk)
tz_tensor *nn_bahdanau_forward(tz_graph *g, const nn_bahdanau *a, tz_tensor *s, tz_tensor *h, tz_tensor *keys,
                               const int *lengths, tz_tensor **weights) {
    check_query_keys("bahdanau", a->name, s, a->dq, h, a->dk);
    int B = h->shape[0], T = h->shape[1];
    check_lengths("bahdanau", a->name, B, T, lengths);
    if (!keys) keys = nn_bahdanau_keys(g, a, h);
    else if (keys->ndim != 3 || keys->shape[0] != B || keys->shape[1] != T || keys->shape[2] != a->da) {
        char x[64];
        tz_fail("bahdanau '%s': precomputed keys %s are not (%d,%d,%d)", a->name, tz_shape_str(keys, x), B, T, a->da);
    }
    tz_tensor *ws = tz_reshape(g, nn_linear_forward(g, &a->W, s), 3, (const int[]){B, 1, a->da});
    tz_tensor *e = nn_linear_forward(g, &a->v, tz_tanh(g, tz_add(g, keys, ws))); // (B,T,1)
    return attend(g, tz_reshape(g, e, 2, (const int[]){B, T}), h, lengths, weights);
}

// ---------------------------------------------------------------------------------------------
// Luong et al. 2015, eq. 8: score(h_t, h_s) = h_t^T h_s (dot) or h_t^T W_a h_s (general).

void nn_luong_init(nn_luong *a, tz_params *P, const char *name, nn_luong_score score, int dq, int dk, nn_init init,
                   tz_rng *r) {
    if (dq <= 0 || dk <= 0 || (unsigned)score > NN_LUONG_GENERAL)
        tz_fail("luong '%s': sizes dq = %d, dk = %d must be > 0, score %d", name, dq, dk, (int)score);
    if (score == NN_LUONG_DOT && dq != dk)
        tz_fail("luong '%s': dot scores need dq == dk, got dq = %d, dk = %d", name, dq, dk);
    memset(a, 0, sizeof *a);
    set_name(a->name, sizeof a->name, name);
    a->score = score, a->dq = dq, a->dk = dk;
    if (score == NN_LUONG_GENERAL) {
        char key[256];
        snprintf(key, sizeof key, "%s.W", name);
        nn_linear_init(&a->W, P, key, dq, dk, 0, init, r);
    }
}

// s (B,Dq), h (B,T,Dk) -> (B,Dk)
tz_tensor *nn_luong_forward(tz_graph *g, const nn_luong *a, tz_tensor *s, tz_tensor *h, const int *lengths,
                            tz_tensor **weights) {
    check_query_keys("luong", a->name, s, a->dq, h, a->dk);
    int B = h->shape[0], T = h->shape[1];
    check_lengths("luong", a->name, B, T, lengths);
    tz_tensor *q = a->score == NN_LUONG_GENERAL ? nn_linear_forward(g, &a->W, s) : s; // (B,Dk)
    tz_tensor *e = tz_matmul(g, tz_reshape(g, q, 3, (const int[]){B, 1, a->dk}), h, 0, 1); // (B,1,T)
    return attend(g, tz_reshape(g, e, 2, (const int[]){B, T}), h, lengths, weights);
}

// ---------------------------------------------------------------------------------------------
// Scaled dot-product attention.

tz_tensor *nn_attn_mask(tz_graph *g, int B, int Tq, int Tk, const int *lengths, int causal) {
    if (!lengths && !causal) return NULL;
    if (B <= 0 || Tq <= 0 || Tk <= 0 || (causal && Tq > Tk))
        tz_fail("attention mask: B = %d, Tq = %d, Tk = %d must be > 0%s", B, Tq, Tk,
                causal ? " and Tq <= Tk (causal)" : "");
    check_lengths("attention mask", NULL, B, Tk, lengths);
    int off = Tk - Tq; // query i sits at position off + i
    if (!lengths) {
        tz_tensor *m = tz_empty(g, 2, (const int[]){Tq, Tk});
        for (int i = 0; i < Tq; i++)
            for (int j = 0; j < Tk; j++) m->data[i * Tk + j] = j > i + off;
        return m;
    }
    if (!causal) {
        tz_tensor *m = tz_empty(g, 4, (const int[]){B, 1, 1, Tk});
        for (int b = 0; b < B; b++)
            for (int j = 0; j < Tk; j++) m->data[b * Tk + j] = j >= lengths[b];
        return m;
    }
    tz_tensor *m = tz_empty(g, 4, (const int[]){B, 1, Tq, Tk});
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tq; i++)
            for (int j = 0; j < Tk; j++) m->data[((long)b * Tq + i) * Tk + j] = j > i + off || j >= lengths[b];
    return m;
}

// q (..,Tq,D), k (..,Tk,D), v (..,Tk,Dv) -> (..,Tq,Dv)
tz_tensor *nn_sdpa(tz_graph *g, tz_tensor *q, tz_tensor *k, tz_tensor *v, const tz_tensor *mask, int causal,
                   real dropout, tz_tensor **weights) {
    int nd = q->ndim, ok = (nd == 3 || nd == 4) && k->ndim == nd && v->ndim == nd;
    for (int i = 0; ok && i < nd - 2; i++) ok = q->shape[i] == k->shape[i] && k->shape[i] == v->shape[i];
    if (ok) ok = q->shape[nd - 1] == k->shape[nd - 1] && k->shape[nd - 2] == v->shape[nd - 2];
    if (!ok) {
        char a[64], b[64], c[64];
        tz_fail("sdpa: q %s, k %s, v %s are not (..,Tq,D), (..,Tk,D), (..,Tk,Dv)", tz_shape_str(q, a),
                tz_shape_str(k, b), tz_shape_str(v, c));
    }
    int Tq = q->shape[nd - 2], Tk = k->shape[nd - 2];
    // Scaling q rather than the scores: Tq*D multiplies instead of Tq*Tk.
    tz_tensor *s = tz_matmul(g, tz_scale(g, q, (real)(1 / sqrt((double)q->shape[nd - 1]))), k, 0, 1);
    if (mask) s = tz_masked_fill(g, s, mask, NN_ATTN_MASKED);
    if (causal) s = tz_masked_fill(g, s, nn_attn_mask(g, 1, Tq, Tk, NULL, 1), NN_ATTN_MASKED);
    tz_tensor *a = tz_softmax(g, s);
    if (weights) *weights = a;
    if (dropout > 0) a = tz_dropout(g, a, dropout);
    return tz_matmul(g, a, v, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// Multi-head attention (Vaswani et al. 2017, 3.2.2).

void nn_mha_init(nn_mha *m, tz_params *P, const char *name, int d_model, int heads, int bias, nn_init init, tz_rng *r) {
    if (d_model <= 0 || heads <= 0) tz_fail("mha '%s': d_model = %d, heads = %d must be > 0", name, d_model, heads);
    if (d_model % heads) tz_fail("mha '%s': d_model %d not divisible by heads %d", name, d_model, heads);
    memset(m, 0, sizeof *m);
    set_name(m->name, sizeof m->name, name);
    m->d_model = d_model, m->heads = heads, m->d_head = d_model / heads;
    m->rope_base = 10000;
    // PyTorch's MultiheadAttention: Xavier-uniform projections, zero biases.
    nn_init wi = nn_init_or(init, (nn_init){NN_INIT_XAVIER_UNIFORM, 0});
    nn_linear *ls[4] = {&m->q, &m->k, &m->v, &m->o};
    const char *sfx[4] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s.%s", name, sfx[i]);
        nn_linear_init(ls[i], P, key, d_model, d_model, bias, wi, r);
        if (ls[i]->b) memset(ls[i]->b->data, 0, sizeof(real) * d_model);
    }
}

void nn_mha_load_pytorch(const nn_mha *m, const real *in_proj_weight, const real *in_proj_bias,
                         const real *out_proj_weight, const real *out_proj_bias) {
    int C = m->d_model;
    const nn_linear *ls[3] = {&m->q, &m->k, &m->v};
    for (int i = 0; i < 3; i++) { // rows [i C, (i+1) C) of the stacked projection
        memcpy(ls[i]->w->data, in_proj_weight + (long)i * C * C, sizeof(real) * C * C);
        if (ls[i]->b) {
            if (in_proj_bias) memcpy(ls[i]->b->data, in_proj_bias + (long)i * C, sizeof(real) * C);
            else memset(ls[i]->b->data, 0, sizeof(real) * C);
        }
    }
    memcpy(m->o.w->data, out_proj_weight, sizeof(real) * C * C);
    if (m->o.b) {
        if (out_proj_bias) memcpy(m->o.b->data, out_proj_bias, sizeof(real) * C);
        else memset(m->o.b->data, 0, sizeof(real) * C);
    }
}

// (B,T,C) -> (B,H,T,D) and back.
static tz_tensor *split_heads(tz_graph *g, tz_tensor *x, int H) {
    int B = x->shape[0], T = x->shape[1], D = x->shape[2] / H;
    return tz_permute(g, tz_reshape(g, x, 4, (const int[]){B, T, H, D}), (const int[]){0, 2, 1, 3});
}
static tz_tensor *merge_heads(tz_graph *g, tz_tensor *x) {
    int B = x->shape[0], H = x->shape[1], T = x->shape[2], D = x->shape[3];
    return tz_reshape(g, tz_permute(g, x, (const int[]){0, 2, 1, 3}), 3, (const int[]){B, T, H * D});
}

static void check_x(const nn_mha *m, const char *what, const tz_tensor *x) {
    char s[64];
    if (x->ndim != 3 || x->shape[2] != m->d_model)
        tz_fail("mha '%s': %s %s is not (B,T,%d)", m->name, what, tz_shape_str(x, s), m->d_model);
}

// x (B,Tq,C), kv (B,Tk,C) or NULL -> (B,Tq,C)
tz_tensor *nn_mha_forward(tz_graph *g, const nn_mha *m, tz_tensor *x, tz_tensor *kv, const int *kv_lengths, int causal,
                          tz_tensor **weights) {
    return nn_mha_forward_add(g, m, x, kv, kv_lengths, causal, weights, NULL);
}

tz_tensor *nn_mha_forward_add(tz_graph *g, const nn_mha *m, tz_tensor *x, tz_tensor *kv, const int *kv_lengths,
                              int causal, tz_tensor **weights, tz_tensor *r) {
    check_x(m, "query", x);
    if (r && !tz_same_shape(r, x)) {
        char a[64], b[64];
        tz_fail("mha '%s': residual %s does not fit query %s", m->name, tz_shape_str(r, a), tz_shape_str(x, b));
    }
    if (!kv) kv = x;
    check_x(m, "key/value", kv);
    int B = x->shape[0], Tq = x->shape[1], Tk = kv->shape[1];
    if (kv->shape[0] != B) {
        char a[64], b[64];
        tz_fail("mha '%s': query %s and key/value %s differ in batch", m->name, tz_shape_str(x, a),
                tz_shape_str(kv, b));
    }
    if (causal && Tq > Tk) tz_fail("mha '%s': causal attention with %d queries over %d keys", m->name, Tq, Tk);
    check_lengths("mha", m->name, B, Tk, kv_lengths);
    if (!m->rope && (m->dropout == 0 || !g->training)) { // the fused node: same function, no copies
        if (kv == x) { // self-attention: one projection by [Wq; Wk; Wv]; the concat routes the gradients back
            tz_tensor *w[3] = {m->q.w, m->k.w, m->v.w}, *b[3] = {m->q.b, m->k.b, m->v.b};
            tz_tensor *qkv = tz_linear(g, x, tz_concat(g, w, 3, 0), m->q.b ? tz_concat(g, b, 3, 0) : NULL);
            return tz_linear_add(g, nn_attention_fused_qkv(g, qkv, m->heads, kv_lengths, causal, weights), m->o.w,
                                 m->o.b, r);
        }
        return tz_linear_add(g,
                             nn_attention_fused(g, nn_linear_forward(g, &m->q, x), nn_linear_forward(g, &m->k, kv),
                                                nn_linear_forward(g, &m->v, kv), m->heads, kv_lengths, causal, weights),
                             m->o.w, m->o.b, r);
    }
    tz_tensor *q = split_heads(g, nn_linear_forward(g, &m->q, x), m->heads);
    tz_tensor *k = split_heads(g, nn_linear_forward(g, &m->k, kv), m->heads);
    tz_tensor *v = split_heads(g, nn_linear_forward(g, &m->v, kv), m->heads);
    if (m->rope) { // queries are the last Tq of Tk positions, as for the causal mask
        q = tz_rope(g, q, Tk > Tq ? Tk - Tq : 0, m->rope_base);
        k = tz_rope(g, k, 0, m->rope_base);
    }
    tz_tensor *mask = nn_attn_mask(g, B, Tq, Tk, kv_lengths, causal);
    tz_tensor *y = nn_sdpa(g, q, k, v, mask, 0, m->dropout, weights);
    return tz_linear_add(g, merge_heads(g, y), m->o.w, m->o.b, r);
}

nn_mha_memory nn_mha_memory_project(tz_graph *g, const nn_mha *m, tz_tensor *mem) {
    check_x(m, "memory", mem);
    return (nn_mha_memory){nn_linear_forward(g, &m->k, mem), nn_linear_forward(g, &m->v, mem)};
}

// x (B,Tq,C), mem k, v (B,S,C) -> (B,Tq,C)
tz_tensor *nn_mha_forward_memory(tz_graph *g, const nn_mha *m, tz_tensor *x, const nn_mha_memory *mem,
                                 const int *lengths, tz_tensor **weights) {
    check_x(m, "query", x);
    check_x(m, "memory keys", mem->k);
    int B = x->shape[0], S = mem->k->shape[1];
    if (mem->k->shape[0] != B || mem->v->shape[0] != B || mem->v->shape[1] != S) {
        char a[64], b[64];
        tz_fail("mha '%s': query %s and memory keys %s differ in batch", m->name, tz_shape_str(x, a),
                tz_shape_str(mem->k, b));
    }
    check_lengths("mha", m->name, B, S, lengths);
    tz_tensor *q = nn_linear_forward(g, &m->q, x);
    if (m->rope) tz_fail("mha '%s': a projected memory has no positions to rotate (rope)", m->name);
    if (m->dropout == 0 || !g->training)
        return nn_linear_forward(g, &m->o, nn_attention_fused(g, q, mem->k, mem->v, m->heads, lengths, 0, weights));
    tz_tensor *mask = nn_attn_mask(g, B, x->shape[1], S, lengths, 0);
    tz_tensor *y = nn_sdpa(g, split_heads(g, q, m->heads), split_heads(g, mem->k, m->heads),
                           split_heads(g, mem->v, m->heads), mask, 0, m->dropout, weights);
    return nn_linear_forward(g, &m->o, merge_heads(g, y));
}

// ---------------------------------------------------------------------------------------------
// KV cache.

void nn_kv_cache_init(nn_kv_cache *c, int layers, int B, int heads, int Tmax, int d_head) {
    if (layers <= 0 || B <= 0 || heads <= 0 || Tmax <= 0 || d_head <= 0)
        tz_fail("kv_cache: layers = %d, B = %d, heads = %d, Tmax = %d, d_head = %d must be > 0", layers, B, heads, Tmax,
                d_head);
    memset(c, 0, sizeof *c);
    c->layers = layers, c->B = B, c->heads = heads, c->Tmax = Tmax, c->d_head = d_head;
    size_t n = (size_t)layers * B * heads * Tmax * d_head;
    c->cap = n;
    c->len = calloc(layers, sizeof *c->len);
    c->k = calloc(n, sizeof(real));
    c->v = calloc(n, sizeof(real));
    if (!c->len || !c->k || !c->v) tz_fail("kv_cache: out of memory for 2 x %zu values", n);
}
void nn_kv_cache_reserve(nn_kv_cache *c, int layers, int B, int heads, int Tmax, int d_head) {
    if (layers <= 0 || B <= 0 || heads <= 0 || Tmax <= 0 || d_head <= 0)
        tz_fail("kv_cache: layers = %d, B = %d, heads = %d, Tmax = %d, d_head = %d must be > 0", layers, B, heads, Tmax,
                d_head);
    int same = c->k && c->layers == layers && c->B == B && c->heads == heads && c->d_head == d_head;
    if (same && Tmax <= c->Tmax) return;
    size_t n = (size_t)layers * B * heads * Tmax * d_head;
    if (!same) { // a new shape: the contents go
        if (n > c->cap || !c->k) {
            free(c->k), free(c->v);
            c->k = malloc(sizeof(real) * n), c->v = malloc(sizeof(real) * n);
            c->cap = c->k && c->v ? n : 0;
        }
        int *len = realloc(c->len, sizeof *len * layers);
        if (len) c->len = len;
        if (!c->cap || !len) tz_fail("kv_cache: out of memory for 2 x %zu values", n);
        c->layers = layers, c->B = B, c->heads = heads, c->Tmax = Tmax, c->d_head = d_head;
        nn_kv_cache_reset(c);
        return;
    }
    // The same rows, more positions: each (layer, row, head)'s filled positions move to the wider rows.
    real *k = malloc(sizeof(real) * n), *v = malloc(sizeof(real) * n);
    if (!k || !v) {
        free(k), free(v);
        tz_fail("kv_cache: out of memory for 2 x %zu values", n);
    }
    size_t rows = (size_t)layers * B * heads;
    for (size_t i = 0; i < rows; i++) {
        int l = (int)(i / ((size_t)B * heads)), filled = c->len[l];
        memcpy(k + i * Tmax * d_head, c->k + i * c->Tmax * d_head, sizeof(real) * filled * d_head);
        memcpy(v + i * Tmax * d_head, c->v + i * c->Tmax * d_head, sizeof(real) * filled * d_head);
    }
    free(c->k), free(c->v);
    c->k = k, c->v = v, c->cap = n, c->Tmax = Tmax;
}

void nn_kv_cache_gather(nn_kv_cache *c, const int *from) {
    size_t row = (size_t)c->heads * c->Tmax * c->d_head, slab = row * c->B; // one row, one layer
    for (int b = 0; b < c->B; b++)
        if (from[b] < 0 || from[b] >= c->B) tz_fail("kv_cache: gather row %d from row %d (of %d)", b, from[b], c->B);
    if (c->tmp_cap < slab) {
        free(c->tmp);
        if (!(c->tmp = malloc(sizeof(real) * slab))) tz_fail("kv_cache: out of memory for %zu values", slab);
        c->tmp_cap = slab;
    }
    for (int l = 0; l < c->layers; l++) {
        size_t n = (size_t)c->len[l] * c->d_head; // the filled part of one (row, head)
        real *bufs[2] = {c->k + l * slab, c->v + l * slab};
        for (int i = 0; i < 2; i++) {
            memcpy(c->tmp, bufs[i], sizeof(real) * slab);
            for (int b = 0; b < c->B; b++)
                for (int h = 0; h < c->heads; h++) {
                    size_t off = (size_t)h * c->Tmax * c->d_head;
                    memcpy(bufs[i] + b * row + off, c->tmp + from[b] * row + off, sizeof(real) * n);
                }
        }
    }
}

void nn_kv_cache_reset(nn_kv_cache *c) { memset(c->len, 0, sizeof *c->len * c->layers); }
int nn_kv_cache_len(const nn_kv_cache *c) { return c->len[0]; }
void nn_kv_cache_free(nn_kv_cache *c) {
    free(c->tmp);
    free(c->len);
    free(c->k);
    free(c->v);
    memset(c, 0, sizeof *c);
}

// The (B,H,from..to,D) part of one layer's buffer <-> a contiguous (B,H,to-from,D) tensor.
static void cache_copy(const nn_kv_cache *c, real *buf, int layer, int from, int to, real *t, int store) {
    int D = c->d_head, n = (to - from) * D;
    for (int bh = 0; bh < c->B * c->heads; bh++) {
        real *slot = buf + (((size_t)layer * c->B * c->heads + bh) * c->Tmax + from) * D;
        if (store) memcpy(slot, t + (size_t)bh * n, sizeof(real) * n);
        else memcpy(t + (size_t)bh * n, slot, sizeof(real) * n);
    }
}

// This step's k or v (B,H,t,D) appended to the cache -> all positions so far (B,H,L,D).
static tz_tensor *cache_append(tz_graph *g, const nn_kv_cache *c, real *buf, int layer, int L0, tz_tensor *x) {
    int t = x->shape[2], L = L0 + t;
    cache_copy(c, buf, layer, L0, L, x->data, 1);
    if (L0 == 0) return x;
    if (!x->requires_grad) { // inference: one copy of the whole history
        tz_tensor *all = tz_empty(g, 4, (const int[]){c->B, c->heads, L, c->d_head});
        cache_copy(c, buf, layer, 0, L, all->data, 0);
        return all;
    }
    tz_tensor *past = tz_empty(g, 4, (const int[]){c->B, c->heads, L0, c->d_head}); // constant
    cache_copy(c, buf, layer, 0, L0, past->data, 0);
    tz_tensor *parts[2] = {past, x};
    return tz_concat(g, parts, 2, 2);
}

// x (B,t,C) -> (B,t,C)
tz_tensor *nn_mha_forward_cached(tz_graph *g, const nn_mha *m, tz_tensor *x, nn_kv_cache *c, int layer,
                                 tz_tensor **weights) {
    check_x(m, "query", x);
    if (layer < 0 || layer >= c->layers || c->B != x->shape[0] || c->heads != m->heads || c->d_head != m->d_head)
        tz_fail("mha '%s': cache (layers %d, B %d, heads %d, d_head %d) does not fit layer %d, B %d, heads %d, "
                "d_head %d",
                m->name, c->layers, c->B, c->heads, c->d_head, layer, x->shape[0], m->heads, m->d_head);
    int t = x->shape[1], L0 = c->len[layer];
    if (L0 + t > c->Tmax) tz_fail("mha '%s': KV cache full: %d + %d positions > Tmax %d", m->name, L0, t, c->Tmax);
    tz_tensor *q = split_heads(g, nn_linear_forward(g, &m->q, x), m->heads);
    tz_tensor *k = split_heads(g, nn_linear_forward(g, &m->k, x), m->heads);
    tz_tensor *v = split_heads(g, nn_linear_forward(g, &m->v, x), m->heads);
    if (m->rope) { // at their absolute positions: the cached keys were rotated at theirs
        q = tz_rope(g, q, L0, m->rope_base);
        k = tz_rope(g, k, L0, m->rope_base);
    }
    k = cache_append(g, c, c->k, layer, L0, k);
    v = cache_append(g, c, c->v, layer, L0, v);
    c->len[layer] = L0 + t;
    // A single new position may see everything; several are causal among themselves.
    tz_tensor *y = nn_sdpa(g, q, k, v, NULL, t > 1, m->dropout, weights);
    return nn_linear_forward(g, &m->o, merge_heads(g, y));
}
