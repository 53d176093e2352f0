// Greedy and beam search (train/translate.c) against brute force, on a mock translation model
// whose logits are a fixed pseudo-random function of the source and the target prefix. With a
// beam as wide as the number of prefixes (4^Lmax), beam search must find exactly the best complete
// sequences that enumeration finds, for any length penalty: this fails if the stopping rule
// gives up on an open hypothesis that could still win.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"
#include "vocab.h"

#define V 7 // <pad> <bos> <eos> <unk> and three words
#define MAXB 64 // sources
#define MAXS 8 // source tokens
#define MAXT 16 // prefix tokens kept
#define MAXROWS 4096

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static uint64_t hash_of(const int *src, int n, const int *prefix, int plen) {
    uint64_t h = 12345;
    for (int i = 0; i < n; i++) h = mix(h ^ (uint64_t)src[i]);
    h = mix(h ^ 0xabcdef);
    for (int i = 0; i < plen; i++) h = mix(h ^ (uint64_t)(prefix[i] + 17));
    return h;
}
static double unit(uint64_t h, int k) { return (double)(mix(h + (uint64_t)k * 7919) >> 11) / 9007199254740992.0; }

// The model's function: logits after `prefix` for a source. <pad> and <bos> score high, so a
// decoder that forgot to exclude them would pick them; <eos> grows likelier with length.
static void mock_logits(const int *src, int n, const int *prefix, int plen, double *out) {
    uint64_t h = hash_of(src, n, prefix, plen);
    for (int w = 0; w < V; w++) out[w] = 8.0 * (unit(h, w) - 0.5);
    out[TZ_PAD] = out[TZ_BOS] = 2.0;
    out[TZ_EOS] += 0.7 * plen - 1.0;
}
static void mock_attn(const int *src, int n, const int *prefix, int plen, double *out) {
    uint64_t h = hash_of(src, n, prefix, plen);
    double sum = 0;
    for (int j = 0; j < n; j++) sum += out[j] = 0.1 + unit(h, 100 + j);
    for (int j = 0; j < n; j++) out[j] /= sum;
}

typedef struct {
    int B, S, K, with_attn;
    int src[MAXB * MAXS], len[MAXB];
    int pref[MAXROWS][MAXT], plen[MAXROWS];
    int steps, encodes;
} mock;

static void *mock_create(const cfg *c, int sv, int tv, tz_params *P, tz_rng *r) {
    (void)c, (void)sv, (void)tv, (void)P, (void)r;
    return calloc(1, sizeof(mock));
}
static void mock_free(void *m) { free(m); }
static void mock_encode(tz_graph *g, void *vm, const int *src, const int *src_len, int B, int S, int beam) {
    (void)g;
    mock *m = vm;
    cr_assert(B <= MAXB && S <= MAXS && B * beam <= MAXROWS);
    for (int b = 0; b < B; b++) cr_assert(src_len[b] >= 1 && src_len[b] <= S);
    m->B = B, m->S = S, m->K = beam;
    memcpy(m->src, src, sizeof(int) * B * S);
    memcpy(m->len, src_len, sizeof(int) * B);
    for (int r = 0; r < B * beam; r++) m->plen[r] = 0;
    m->encodes++;
}
static tz_tensor *mock_step(tz_graph *g, void *vm, const int *prev, const int *parent, tz_tensor **attn) {
    mock *m = vm;
    int rows = m->B * m->K;
    static int pref[MAXROWS][MAXT], plen[MAXROWS];
    for (int r = 0; r < rows; r++) {
        int p = parent ? parent[r] : r;
        cr_assert(p >= 0 && p < rows);
        cr_assert(prev[r] != TZ_PAD);
        plen[r] = m->plen[p];
        memcpy(pref[r], m->pref[p], sizeof(int) * plen[r]);
        if (prev[r] != TZ_BOS && plen[r] < MAXT) pref[r][plen[r]++] = prev[r];
    }
    memcpy(m->pref, pref, sizeof(int) * MAXT * rows);
    memcpy(m->plen, plen, sizeof(int) * rows);
    tz_tensor *out = tz_empty(g, 2, (int[]){rows, V});
    if (attn) *attn = m->with_attn ? tz_empty(g, 2, (int[]){rows, m->S}) : NULL;
    for (int r = 0; r < rows; r++) {
        const int *src = m->src + (r / m->K) * m->S;
        int n = m->len[r / m->K];
        double x[V], a[MAXS] = {0};
        mock_logits(src, n, m->pref[r], m->plen[r], x);
        for (int w = 0; w < V; w++) out->data[r * V + w] = (real)x[w];
        if (attn && *attn) {
            mock_attn(src, n, m->pref[r], m->plen[r], a);
            for (int j = 0; j < m->S; j++) (*attn)->data[r * m->S + j] = (real)a[j];
        }
    }
    m->steps++;
    return out;
}

static const tz_model_def mock_def = {
    .name = "mock",
    .pairs = 1,
    .mt_create = mock_create,
    .mt_encode = mock_encode,
    .mt_step = mock_step,
    .free = mock_free,
};

// Brute force: every target up to Lmax words then <eos> (forced after Lmax), scored as the decoder does.
typedef struct {
    int ids[MAXT], len;
    double logp, score;
} seq;
static seq all[100000];
static int n_all;
static void enumerate(const int *src, int n, int *prefix, int plen, double logp, int lmax, double alpha) {
    double x[V], mx = -1e30, sum = 0;
    mock_logits(src, n, prefix, plen, x);
    for (int w = 0; w < V; w++) mx = x[w] > mx ? x[w] : mx;
    for (int w = 0; w < V; w++) sum += exp(x[w] - mx);
    double lse = mx + log(sum);
    seq *s = &all[n_all++];
    memcpy(s->ids, prefix, sizeof(int) * plen);
    s->len = plen, s->logp = logp + x[TZ_EOS] - lse, s->score = s->logp / pow((5.0 + plen + 1) / 6.0, alpha);
    if (plen == lmax) return;
    for (int w = TZ_EOS + 1; w < V; w++) {
        prefix[plen] = w;
        enumerate(src, n, prefix, plen + 1, logp + x[w] - lse, lmax, alpha);
    }
}
static int by_score(const void *a, const void *b) {
    double x = ((const seq *)a)->score, y = ((const seq *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int sources[12][MAXS] = {{4},    {5, 6}, {4, 4, 4}, {6, 5, 4, 3}, {3},         {5, 5}, {6, 4, 6, 4, 6},
                                {4, 5}, {6},    {5, 4, 6}, {3, 3},       {4, 6, 5, 4}};
static int lens[12] = {1, 2, 3, 4, 1, 2, 5, 2, 1, 3, 2, 4};

static void check_exact(double alpha, int n_best, int batch, int lmax) {
    tz_decode_opts o = tz_decode_defaults();
    o.beam = 1 << (2 * lmax), o.alpha = alpha, o.n_best = n_best, o.max_len_a = 0, o.max_len_b = lmax, o.batch = batch;
    mock *m = mock_create(NULL, 0, 0, NULL, NULL);
    const int *src[12];
    for (int i = 0; i < 12; i++) src[i] = sources[i];
    tz_hyp *h = calloc(12 * n_best, sizeof *h);
    tz_translate(&mock_def, m, &o, src, lens, 12, h);
    for (int i = 0; i < 12; i++) {
        int prefix[MAXT];
        n_all = 0;
        enumerate(sources[i], lens[i], prefix, 0, 0, lmax, alpha);
        qsort(all, n_all, sizeof *all, by_score);
        for (int k = 0; k < n_best; k++) {
            const tz_hyp *x = &h[i * n_best + k];
            cr_assert_eq(x->len, all[k].len, "alpha %g source %d hyp %d: length %d, brute force %d", alpha, i, k,
                         x->len, all[k].len);
            for (int j = 0; j < x->len; j++)
                cr_assert_eq(x->ids[j], all[k].ids[j], "alpha %g source %d hyp %d token %d", alpha, i, k, j);
            cr_assert_float_eq(x->score, all[k].score, 1e-4);
            cr_assert_float_eq(x->logp, all[k].logp, 1e-4);
        }
    }
    tz_hyps_free(h, 12 * n_best);
    free(h);
    mock_free(m);
}

Test(decode, beam_is_exact_when_wide_enough) {
    check_exact(0.0, 1, 64, 3);
    check_exact(0.6, 1, 5, 3);
    check_exact(2.0, 1, 12, 3);
    check_exact(3.0, 1, 16, 4);
}

Test(decode, n_best_lists_match_enumeration) {
    check_exact(0.0, 5, 3, 3);
    check_exact(1.0, 7, 12, 3);
    check_exact(3.0, 4, 7, 4);
}

Test(decode, greedy_follows_the_argmax) {
    tz_decode_opts o = tz_decode_defaults();
    o.beam = 1, o.max_len_a = 1, o.max_len_b = 2, o.batch = 5;
    mock *m = mock_create(NULL, 0, 0, NULL, NULL);
    const int *src[12];
    for (int i = 0; i < 12; i++) src[i] = sources[i];
    tz_hyp h[12];
    tz_translate(&mock_def, m, &o, src, lens, 12, h);
    for (int i = 0; i < 12; i++) {
        int prefix[MAXT], n = 0, lmax = lens[i] + 2;
        double logp = 0;
        for (;;) {
            double x[V], mx = -1e30, sum = 0;
            mock_logits(sources[i], lens[i], prefix, n, x);
            int w = TZ_EOS;
            for (int j = TZ_EOS + 1; j < V && n < lmax; j++) w = x[j] > x[w] ? j : w;
            for (int j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
            for (int j = 0; j < V; j++) sum += exp(x[j] - mx);
            logp += x[w] - mx - log(sum);
            if (w == TZ_EOS) break;
            prefix[n++] = w;
        }
        cr_assert_eq(h[i].len, n, "source %d", i);
        for (int j = 0; j < n; j++) cr_assert_eq(h[i].ids[j], prefix[j]);
        cr_assert_float_eq(h[i].logp, logp, 1e-4);
        cr_assert_float_eq(h[i].score, logp, 1e-4);
    }
    tz_hyps_free(h, 12);
    mock_free(m);
}

// A narrow beam is not exact, but the answer must not depend on how sources are batched.
Test(decode, batching_does_not_change_results) {
    tz_decode_opts o = tz_decode_defaults();
    o.beam = 3, o.n_best = 2, o.max_len_a = 1.5, o.max_len_b = 2;
    const int *src[12];
    for (int i = 0; i < 12; i++) src[i] = sources[i];
    tz_hyp one[24], many[24];
    mock *m = mock_create(NULL, 0, 0, NULL, NULL);
    o.batch = 1;
    tz_translate(&mock_def, m, &o, src, lens, 12, one);
    o.batch = 7;
    tz_translate(&mock_def, m, &o, src, lens, 12, many);
    for (int i = 0; i < 24; i++) {
        cr_assert_eq(one[i].len, many[i].len);
        cr_assert(one[i].len >= 0);
        cr_assert_eq(memcmp(one[i].ids, many[i].ids, sizeof(int) * one[i].len), 0);
        cr_assert_eq(one[i].score, many[i].score);
        if (i % 2) cr_assert(one[i].score <= one[i - 1].score); // best first
    }
    tz_hyps_free(one, 24);
    tz_hyps_free(many, 24);
    mock_free(m);
}

// The attention kept for a hypothesis is the model's at each of its own prefixes (beam search
// reorders rows, so a wrong parent shows here), cut to the source's length.
Test(decode, attention_of_the_returned_hypotheses) {
    tz_decode_opts o = tz_decode_defaults();
    o.beam = 4, o.n_best = 3, o.max_len_a = 1, o.max_len_b = 2, o.batch = 5, o.attention = 1;
    const int *src[12];
    for (int i = 0; i < 12; i++) src[i] = sources[i];
    tz_hyp h[36];
    mock *m = mock_create(NULL, 0, 0, NULL, NULL);
    m->with_attn = 1;
    tz_translate(&mock_def, m, &o, src, lens, 12, h);
    for (int i = 0; i < 36; i++) {
        int s = i / 3;
        cr_assert(h[i].attn);
        cr_assert_eq(h[i].src_len, lens[s]);
        for (int t = 0; t <= h[i].len; t++) {
            double a[MAXS];
            mock_attn(sources[s], lens[s], h[i].ids, t, a);
            for (int j = 0; j < lens[s]; j++)
                cr_assert_float_eq(h[i].attn[t * lens[s] + j], a[j], 1e-6, "hyp %d row %d col %d", i, t, j);
        }
    }
    tz_hyps_free(h, 36);
    // without attention from the model: none kept
    m->with_attn = 0;
    tz_translate(&mock_def, m, &o, src, lens, 12, h);
    for (int i = 0; i < 36; i++) cr_assert_null(h[i].attn);
    tz_hyps_free(h, 36);
    mock_free(m);
}

Test(decode, empty_sources_and_lengths) {
    tz_decode_opts o = tz_decode_defaults();
    o.beam = 2, o.n_best = 2, o.max_len_a = 0, o.max_len_b = 2;
    int a[] = {4, 5}, empty[1] = {0};
    const int *src[] = {empty, a, empty};
    int n[] = {0, 2, 0};
    tz_hyp h[6];
    mock *m = mock_create(NULL, 0, 0, NULL, NULL);
    tz_translate(&mock_def, m, &o, src, n, 3, h);
    cr_assert_eq(h[0].len, 0);
    cr_assert_eq(h[1].len, -1);
    cr_assert_eq(h[4].len, 0);
    cr_assert(h[2].len >= 0 && h[2].len <= 2);
    cr_assert_eq(m->encodes, 1); // the empty ones never reach the model
    tz_hyps_free(h, 6);
    // only empty sources: no model call at all
    tz_translate(&mock_def, m, &o, (const int *[]){empty}, (int[]){0}, 1, h);
    cr_assert_eq(m->encodes, 1);
    tz_hyps_free(h, 2);
    mock_free(m);
}

Test(decode, length_penalty_is_gnmt) {
    cr_assert_float_eq(tz_length_penalty(1, 0.6), 1.0, 1e-12);
    cr_assert_float_eq(tz_length_penalty(7, 0.6), pow(2.0, 0.6), 1e-12);
    cr_assert_float_eq(tz_length_penalty(30, 0.0), 1.0, 1e-12);
}

// The attention file of a decoded sentence, and tools/plot_attention.gp drawing it (when gnuplot
// is installed).
Test(decode, attention_file_plots) {
    tz_decode_opts o = tz_decode_defaults();
    o.beam = 2, o.max_len_a = 1, o.max_len_b = 1, o.attention = 1;
    tz_hyp h;
    mock *m = mock_create(NULL, 0, 0, NULL, NULL);
    m->with_attn = 1;
    tz_translate(&mock_def, m, &o, (const int *[]){sources[6]}, &lens[6], 1, &h);
    char dir[] = "/tmp/tapezoo-attn-XXXXXX", path[128], png[128], cmd[512];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a \"b\".dat", dir); // a name and labels that need quoting
    snprintf(png, sizeof png, "%s/a.png", dir);
    const char *src[] = {"l'homme", "\"quoted\"", ",", "#", "x"}, *tgt[MAXT];
    for (int i = 0; i < h.len; i++) tgt[i] = "w";
    FILE *f = fopen(path, "w");
    tz_attention_write(f, &h, src, tgt, "mock");
    fclose(f);
    f = fopen(path, "r");
    char line[512];
    cr_assert(fgets(line, sizeof line, f) && line[0] == '#');
    cr_assert(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "\"\" \"l'homme\" \"''quoted''\" \",\" \"#\" \"x\"\n");
    int rows = 0;
    while (fgets(line, sizeof line, f)) rows++;
    fclose(f);
    cr_assert_eq(rows, h.len + 1);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd,
                 "gnuplot -e \"file='%s/a \\\"b\\\".dat'; out='%s'\" %s/tools/plot_attention.gp >/dev/null 2>&1", dir,
                 png, TZ_SOURCE_ROOT);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
        f = fopen(png, "rb");
        cr_assert(f, "no %s", png);
        unsigned char sig[8] = {0};
        cr_assert_eq(fread(sig, 1, 8, f), 8u);
        fclose(f);
        cr_assert_eq(memcmp(sig, "\x89PNG", 4), 0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    tz_hyps_free(&h, 1);
    mock_free(m);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0)
        cr_skip_test("gnuplot is not installed: the file was checked, not drawn");
}

// Target text: words joined by single spaces.
Test(decode, target_text) {
    tz_vocab tv;
    static char vt[] = "tapezoo-vocab 1 word 7 0 0\n<pad>\n<bos>\n<eos>\n<unk>\nx\ny\nz\n";
    FILE *f = fmemopen(vt, strlen(vt), "r");
    cr_assert(tz_vocab_load(&tv, f));
    fclose(f);
    char *s = tz_target_text(&tv, (int[]){4, 3, 6, 5}, 4);
    cr_assert_str_eq(s, "x <unk> z y");
    free(s);
    s = tz_target_text(&tv, NULL, 0);
    cr_assert_str_eq(s, "");
    free(s);
    tz_vocab_free(&tv);
}
