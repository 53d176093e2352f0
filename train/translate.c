// translate.c: see translate.h. Every buffer is made once per tz_translate call, sized for the
// largest batch; a step allocates nothing but the model's tensors in the graph's arena.
#include "translate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "vocab.h"

#define LEN_CAP 4096 // the longest target a decode may make, whatever a and b say

tz_decode_opts tz_decode_defaults(void) {
    return (tz_decode_opts){.beam = 5, .alpha = 0.6, .n_best = 1, .max_len_a = 2, .max_len_b = 10, .batch = 64};
}

double tz_length_penalty(int len, double alpha) { return alpha == 0 ? 1.0 : pow((5.0 + len) / 6.0, alpha); }

static int max_len(const tz_decode_opts *o, int src_len) {
    double L = floor(o->max_len_a * src_len + o->max_len_b);
    return L < 1 ? 1 : L > LEN_CAP ? LEN_CAP : (int)L;
}

// A finished hypothesis of the pool; its tokens and attention live in buffer `slot`.
typedef struct {
    double score, logp;
    int len, slot;
} finished;
typedef struct {
    double c;
    int row, word;
} cand;

// The decoder's buffers (B sources of a batch at most, K rows each, targets up to T tokens with
// the <eos>, sources up to S tokens).
typedef struct {
    const tz_model_def *def;
    void *m;
    const tz_decode_opts *o;
    int B, K, T, S, got_attn; // got_attn: the model gave attention weights
    int *src, *len, *lmax, *done;
    int *prev, *parent;
    double *score, *nscore, *lse;
    int *tok, *ntok; // (rows, T): each open row's tokens so far
    real *hist, *nhist; // (rows, T, S): each open row's attention so far (want_attn)
    finished *pool; // (B, n_best), best first
    int *pool_n;
    int *pool_tok; // (B * n_best, T)
    real *pool_attn; // (B * n_best, T, S)
    cand *heap; // (K)
} decoder;

static void decoder_init(decoder *d, const tz_model_def *def, void *m, const tz_decode_opts *o, int B, int T, int S) {
    memset(d, 0, sizeof *d);
    d->def = def, d->m = m, d->o = o, d->B = B, d->K = o->beam, d->T = T, d->S = S;
    size_t rows = (size_t)B * o->beam, nb = (size_t)B * o->n_best;
    d->src = tz_calloc((size_t)B * S, sizeof(int), "translate");
    d->len = tz_calloc((size_t)B, sizeof(int), "translate");
    d->lmax = tz_calloc((size_t)B, sizeof(int), "translate");
    d->done = tz_calloc((size_t)B, sizeof(int), "translate");
    d->pool_n = tz_calloc((size_t)B, sizeof(int), "translate");
    d->prev = tz_calloc(rows, sizeof(int), "translate");
    d->parent = tz_calloc(rows, sizeof(int), "translate");
    d->score = tz_calloc(rows, sizeof(double), "translate");
    d->nscore = tz_calloc(rows, sizeof(double), "translate");
    d->lse = tz_calloc(rows, sizeof(double), "translate");
    d->tok = tz_calloc(rows * T, sizeof(int), "translate");
    d->ntok = tz_calloc(rows * T, sizeof(int), "translate");
    d->pool = tz_calloc(nb, sizeof(finished), "translate");
    d->pool_tok = tz_calloc(nb * T, sizeof(int), "translate");
    d->heap = tz_calloc(o->beam, sizeof(cand), "translate");
    if (o->attention) {
        d->hist = tz_calloc(rows * T * S, sizeof(real), "translate");
        d->nhist = tz_calloc(rows * T * S, sizeof(real), "translate");
        d->pool_attn = tz_calloc(nb * T * S, sizeof(real), "translate");
    }
}

static void decoder_free(decoder *d) {
    void *bufs[] = {d->src, d->len, d->lmax, d->done, d->pool_n,   d->prev, d->parent, d->score, d->nscore,
                    d->lse, d->tok, d->ntok, d->pool, d->pool_tok, d->heap, d->hist,   d->nhist, d->pool_attn};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

// log sum_j exp(x_j) over a row of logits (V).
static double row_lse(const real *x, int V) {
    real mx = x[0];
    for (int j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double sum = 0;
    for (int j = 0; j < V; j++) sum += tz_fexp(x[j] - mx);
    return mx + log(sum);
}

// Offers row r's hypothesis, finished by <eos> at step t, to source b's pool. S: the batch's
// source width; a: the step's attention of row r (S), or NULL.
static void offer(decoder *d, int b, int r, int t, double logp, double score, const real *a, int S) {
    int nb = d->o->n_best, *n = &d->pool_n[b];
    finished *P = d->pool + (size_t)b * nb;
    if (*n == nb && score <= P[nb - 1].score) return;
    int i, slot;
    if (*n < nb) i = (*n)++, slot = b * nb + i;
    else i = nb - 1, slot = P[i].slot; // the worst one's buffers are reused
    for (; i > 0 && P[i - 1].score < score; i--) P[i] = P[i - 1];
    P[i] = (finished){score, logp, t, slot};
    memcpy(d->pool_tok + (size_t)slot * d->T, d->tok + (size_t)r * d->T, sizeof(int) * t);
    if (d->hist && a) {
        real *dst = d->pool_attn + (size_t)slot * d->T * d->S;
        memcpy(dst, d->hist + (size_t)r * d->T * d->S, sizeof(real) * t * S);
        memcpy(dst + (size_t)t * S, a, sizeof(real) * S);
    }
}

// Row `to` of the next step continues row `from` with word w (step t; a: from's attention or NULL).
static void extend(decoder *d, int to, int from, int w, double c, int t, const real *a, int S) {
    d->parent[to] = from, d->prev[to] = w, d->nscore[to] = c;
    memcpy(d->ntok + (size_t)to * d->T, d->tok + (size_t)from * d->T, sizeof(int) * t);
    d->ntok[(size_t)to * d->T + t] = w;
    if (d->hist && a) {
        real *dst = d->nhist + (size_t)to * d->T * d->S;
        memcpy(dst, d->hist + (size_t)from * d->T * d->S, sizeof(real) * t * S);
        memcpy(dst + (size_t)t * S, a, sizeof(real) * S);
    }
}

static void kill_row(decoder *d, int r) { d->parent[r] = r, d->prev[r] = TZ_EOS, d->nscore[r] = -INFINITY; }

// One step of source b: logits (rows, V), attention (rows, S) or NULL.
static void step_source(decoder *d, int b, int t, const real *logits, int V, const real *attn, int S) {
    int K = d->K, base = b * K, last = t >= d->lmax[b];
    for (int k = 0; k < K; k++)
        if (d->score[base + k] > -INFINITY) d->lse[base + k] = row_lse(logits + (size_t)(base + k) * V, V);
    if (K == 1) { // greedy: the argmax (never <pad> or <bos>), <eos> ends it
        int r = base, w = TZ_EOS;
        const real *x = logits + (size_t)r * V;
        if (!last)
            for (int j = TZ_EOS + 1; j < V; j++) w = x[j] > x[w] ? j : w;
        double lp = x[w] - d->lse[r], c = d->score[r] + (lp < 0 ? lp : 0);
        const real *a = attn ? attn + (size_t)r * S : NULL;
        if (w == TZ_EOS) {
            offer(d, b, r, t, c, c, a, S);
            kill_row(d, r), d->done[b] = 1;
        } else extend(d, r, r, w, c, t, a, S);
        return;
    }
    double lp_now = tz_length_penalty(t + 1, d->o->alpha);
    int nh = 0, hmin = 0; // the K best non-<eos> candidates (unordered) and where the least is
    for (int k = 0; k < K; k++) {
        int r = base + k;
        if (d->score[r] == -INFINITY) continue;
        const real *x = logits + (size_t)r * V;
        double s = d->score[r], l = d->lse[r], e = x[TZ_EOS] - l;
        double ce = s + (e < 0 ? e : 0);
        offer(d, b, r, t, ce, ce / lp_now, attn ? attn + (size_t)r * S : NULL, S);
        if (last) continue;
        for (int w = TZ_EOS + 1; w < V; w++) {
            double lw = x[w] - l, c = s + (lw < 0 ? lw : 0);
            if (nh < K) {
                d->heap[nh] = (cand){c, r, w};
                if (c < d->heap[hmin].c) hmin = nh;
                nh++;
            } else if (c > d->heap[hmin].c) {
                d->heap[hmin] = (cand){c, r, w};
                for (int i = 0; i < K; i++) hmin = d->heap[i].c < d->heap[hmin].c ? i : hmin;
            }
        }
    }
    // Best first (ties: the lower row, then the lower word), so row 0 of a source is its best.
    for (int i = 1; i < nh; i++) {
        cand x = d->heap[i];
        int j = i;
        for (; j > 0 && (d->heap[j - 1].c < x.c ||
                         (d->heap[j - 1].c == x.c && (d->heap[j - 1].row > x.row ||
                                                      (d->heap[j - 1].row == x.row && d->heap[j - 1].word > x.word))));
             j--)
            d->heap[j] = d->heap[j - 1];
        d->heap[j] = x;
    }
    for (int k = 0; k < K; k++) {
        if (k < nh) {
            const cand *c = &d->heap[k];
            extend(d, base + k, c->row, c->word, c->c, t, attn ? attn + (size_t)c->row * S : NULL, S);
        } else kill_row(d, base + k);
    }
    // Done when nothing is open, or the n_best-th finished one beats every open one's best
    // possible score: logp can only fall, and the length penalty is largest at an end.
    int nb = d->o->n_best;
    if (nh == 0) d->done[b] = 1;
    else if (d->pool_n[b] == nb) {
        double lp_a = tz_length_penalty(t + 2, d->o->alpha), lp_b = tz_length_penalty(d->lmax[b] + 1, d->o->alpha);
        double bound = d->heap[0].c / (lp_a > lp_b ? lp_a : lp_b);
        if (d->pool[(size_t)b * nb + nb - 1].score >= bound) d->done[b] = 1;
    }
}

// Decodes sources idx[0..B) (lengths >= 1) into out.
static void decode_batch(decoder *d, tz_graph *g, const int *const *src, const int *src_len, const int *idx, int B,
                         tz_hyp *out) {
    const tz_decode_opts *o = d->o;
    int K = d->K, rows = B * K, S = 0;
    for (int b = 0; b < B; b++) S = src_len[idx[b]] > S ? src_len[idx[b]] : S;
    for (int b = 0; b < B; b++) {
        int n = src_len[idx[b]];
        for (int j = 0; j < S; j++) d->src[b * S + j] = j < n ? src[idx[b]][j] : TZ_PAD;
        d->len[b] = n, d->lmax[b] = max_len(o, n), d->done[b] = 0, d->pool_n[b] = 0;
    }
    for (int r = 0; r < rows; r++) d->prev[r] = TZ_BOS, d->score[r] = r % K ? -INFINITY : 0.0;
    tz_graph_reset(g);
    d->def->mt_encode(g, d->m, d->src, d->len, B, S, K);
    for (int t = 0;; t++) {
        tz_tensor *attn = NULL;
        tz_tensor *logits = d->def->mt_step(g, d->m, d->prev, t ? d->parent : NULL, d->hist ? &attn : NULL);
        char buf[64];
        if (logits->ndim != 2 || logits->shape[0] != rows || logits->shape[1] <= TZ_EOS)
            tz_fail("translate: %s's mt_step gave logits %s for %d rows", d->def->name, tz_shape_str(logits, buf),
                    rows);
        d->got_attn |= attn != NULL;
        if (attn && (attn->ndim != 2 || attn->shape[0] != rows || attn->shape[1] != S))
            tz_fail("translate: %s's mt_step gave attention %s, expected (%d,%d)", d->def->name,
                    tz_shape_str(attn, buf), rows, S);
        int V = logits->shape[1], open = 0;
        for (int b = 0; b < B; b++) {
            if (d->done[b]) {
                for (int k = 0; k < K; k++) kill_row(d, b * K + k);
                continue;
            }
            step_source(d, b, t, logits->data, V, attn ? attn->data : NULL, S);
            open += !d->done[b];
        }
        // The logits (rows, V) are most of a step's memory and the last thing it made: give them
        // back, so the arena holds the encoding and the small per-step states only.
        tz_arena_pop(&g->arena, logits->data, sizeof(real) * (size_t)logits->n);
        double *ts = d->score;
        d->score = d->nscore, d->nscore = ts;
        int *tt = d->tok;
        d->tok = d->ntok, d->ntok = tt;
        real *th = d->hist;
        d->hist = d->nhist, d->nhist = th;
        if (!open) break;
    }
    for (int b = 0; b < B; b++)
        for (int k = 0; k < o->n_best; k++) {
            tz_hyp *h = &out[(size_t)idx[b] * o->n_best + k];
            *h = (tz_hyp){.len = -1, .logp = -INFINITY, .score = -INFINITY, .src_len = d->len[b]};
            if (k >= d->pool_n[b]) continue;
            const finished *f = &d->pool[(size_t)b * o->n_best + k];
            h->len = f->len, h->logp = f->logp, h->score = f->score;
            h->ids = tz_calloc((f->len + 1), sizeof(int), "translate");
            memcpy(h->ids, d->pool_tok + (size_t)f->slot * d->T, sizeof(int) * f->len);
            if (d->pool_attn && d->got_attn) { // (len + 1, src_len) out of the batch's (T, S) rows
                int n = d->len[b];
                h->attn = tz_calloc((f->len + 1) * n, sizeof(real), "translate");
                for (int i = 0; i <= f->len; i++)
                    memcpy(h->attn + (size_t)i * n, d->pool_attn + (size_t)f->slot * d->T * d->S + (size_t)i * S,
                           sizeof(real) * n);
            }
        }
}

typedef struct {
    int len, i;
} by_len;
static int by_len_cmp(const void *a, const void *b) {
    const by_len *x = a, *y = b;
    return x->len != y->len ? x->len - y->len : x->i - y->i;
}

void tz_translate(const tz_model_def *def, void *m, const tz_decode_opts *o, const int *const *src, const int *src_len,
                  int n, tz_hyp *out) {
    if (!def->pairs || !def->mt_encode || !def->mt_step)
        tz_fail("translate: model %s is not a translation model", def->name);
    if (o->beam < 1 || o->n_best < 1 || o->n_best > o->beam || o->batch < 1 || !(o->alpha >= 0))
        tz_fail("translate: bad options (beam %d, n_best %d, batch %d, alpha %g): want beam >= 1, 1 <= n_best <= beam, "
                "batch >= 1, alpha >= 0",
                o->beam, o->n_best, o->batch, o->alpha);
    // Sources by length, so a batch pads little and stops early; empty ones need no model.
    by_len *order = tz_calloc((size_t)(n + 1), sizeof(by_len), "translate");
    int m_n = 0, T = 1, S = 1;
    for (int i = 0; i < n; i++) {
        if (src_len[i] < 0) tz_fail("translate: source %d has length %d", i, src_len[i]);
        if (src_len[i] == 0) {
            for (int k = 0; k < o->n_best; k++)
                out[(size_t)i * o->n_best + k] = (tz_hyp){.len = k ? -1 : 0,
                                                          .ids = k ? NULL : tz_calloc(1, sizeof(int), "translate"),
                                                          .logp = k ? -INFINITY : 0,
                                                          .score = k ? -INFINITY : 0};
            continue;
        }
        order[m_n++] = (by_len){src_len[i], i};
        T = max_len(o, src_len[i]) + 1 > T ? max_len(o, src_len[i]) + 1 : T;
        S = src_len[i] > S ? src_len[i] : S;
    }
    qsort(order, m_n, sizeof *order, by_len_cmp);
    int B = o->batch < m_n ? o->batch : m_n > 0 ? m_n : 1;
    int *idx = tz_calloc((size_t)B, sizeof(int), "translate");
    decoder d;
    decoder_init(&d, def, m, o, B, T, S);
    tz_graph own, *g = o->graph ? o->graph : &own;
    if (!o->graph) tz_graph_init(&own, 1 << 20);
    int was_training = g->training;
    g->training = 0;
    tz_no_grad_begin(g);
    for (int start = 0; start < m_n; start += B) {
        int nb = m_n - start < B ? m_n - start : B;
        for (int b = 0; b < nb; b++) idx[b] = order[start + b].i;
        decode_batch(&d, g, src, src_len, idx, nb, out);
    }
    tz_no_grad_end(g);
    g->training = was_training;
    if (!o->graph) tz_graph_free(&own);
    decoder_free(&d);
    free(idx);
    free(order);
}

void tz_hyps_free(tz_hyp *h, int n) {
    for (int i = 0; i < n; i++) {
        free(h[i].ids), free(h[i].attn);
        h[i].ids = NULL, h[i].attn = NULL;
    }
}

static void put_label(const char *s, FILE *f) {
    fputc('"', f);
    for (; *s; s++)
        if (*s == '"') fputs("''", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    fputc('"', f);
}

void tz_attention_write(FILE *f, const tz_hyp *h, const char *const *src_labels, const char *const *tgt_labels,
                        const char *what) {
    if (!h->attn) tz_fail("translate: no attention to write");
    fprintf(f, "# attention weights of %s: row i = target token i (then <eos>), column j = source token j\n", what);
    fputs("\"\"", f);
    for (int j = 0; j < h->src_len; j++) fputc(' ', f), put_label(src_labels[j], f);
    fputc('\n', f);
    for (int i = 0; i <= h->len; i++) {
        put_label(i < h->len ? tgt_labels[i] : "<eos>", f);
        for (int j = 0; j < h->src_len; j++) fprintf(f, " %.6f", (double)h->attn[(size_t)i * h->src_len + j]);
        fputc('\n', f);
    }
}

char *tz_target_text(const tz_vocab *v, const int *ids, int n) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) tz_fail("translate: out of memory for a sentence");
    for (int i = 0; i < n; i++) {
        int ok = ids[i] >= 0 && ids[i] < v->size;
        if (v->kind == TOK_WORD) fprintf(f, "%s%s", i ? " " : "", ok ? v->tok[ids[i]] : "<unk>");
        else if (ok) tz_vocab_decode(v, ids + i, 1, f);
    }
    if (fclose(f) || !buf) tz_fail("translate: out of memory for a sentence");
    return buf;
}
