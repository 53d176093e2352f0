// bleu.c: see bleu.h. Follows sacrebleu/metrics/bleu.py (compute_bleu, _compute_segment_statistics).
#include "bleu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

// An n-gram: where it starts and its order (the order rides along so qsort needs no context).
typedef struct {
    const int *p;
    int n;
} gram;

static int gram_cmp(const void *a, const void *b) {
    const gram *x = a, *y = b;
    for (int i = 0; i < x->n; i++)
        if (x->p[i] != y->p[i]) return x->p[i] < y->p[i] ? -1 : 1;
    return 0;
}

// The n-grams of ids (len), sorted; returns how many.
static int grams(const int *ids, int len, int n, gram *out) {
    int k = 0;
    for (int i = 0; i + n <= len; i++) out[k++] = (gram){ids + i, n};
    qsort(out, k, sizeof *out, gram_cmp);
    return k;
}

void tz_bleu_add(tz_bleu_stats *s, const int *hyp, int hyp_n, const int *ref, int ref_n) {
    s->hyp_len += hyp_n;
    s->ref_len += ref_n; // one reference: it is the closest
    gram *h = tz_malloc(sizeof(gram) * (size_t)(hyp_n + 1), "bleu"),
         *r = tz_malloc(sizeof(gram) * (size_t)(ref_n + 1), "bleu");
    for (int n = 1; n <= TZ_BLEU_N; n++) {
        int nh = grams(hyp, hyp_n, n, h), nr = grams(ref, ref_n, n, r);
        s->total[n - 1] += nh;
        // Merge the two sorted lists run by run: a distinct n-gram matches min(count in hyp, in ref).
        int i = 0, j = 0;
        while (i < nh && j < nr) {
            int c = gram_cmp(&h[i], &r[j]);
            if (c < 0) i++;
            else if (c > 0) j++;
            else {
                int ch = 0, cr = 0;
                const gram g = h[i];
                while (i < nh && !gram_cmp(&h[i], &g)) i++, ch++;
                while (j < nr && !gram_cmp(&r[j], &g)) j++, cr++;
                s->correct[n - 1] += ch < cr ? ch : cr;
            }
        }
    }
    free(h);
    free(r);
}

// Python's str.split() separators (str.isspace), as UTF-8: the length of the one at s, or 0.
static int space_at(const unsigned char *s) {
    if (*s == ' ' || (*s >= '\t' && *s <= '\r') || (*s >= 0x1c && *s <= 0x1f)) return 1;
    if (s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3; // U+1680
    if (s[0] == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3; // U+2000-200A, U+2028, U+2029, U+202F
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3; // U+205F
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3; // U+3000
    return 0;
}

typedef struct {
    const char *p;
    int len, side, pos;
} word;

// Splits text into words (appending to w, unless w is NULL: only counting); returns how many.
static int split(const char *text, int side, word *w) {
    const unsigned char *s = (const unsigned char *)text;
    int k = 0;
    while (*s) {
        int sp = space_at(s);
        if (sp) {
            s += sp;
            continue;
        }
        const unsigned char *b = s;
        while (*s && !space_at(s)) s++;
        if (w) w[k] = (word){(const char *)b, (int)(s - b), side, k};
        k++;
    }
    return k;
}

int tz_bleu_words(const char *text) { return split(text, 0, NULL); }

static int word_cmp(const void *a, const void *b) {
    const word *x = a, *y = b;
    int n = x->len < y->len ? x->len : y->len, c = memcmp(x->p, y->p, n);
    return c ? c : x->len - y->len;
}

void tz_bleu_add_text(tz_bleu_stats *s, const char *hyp, const char *ref) {
    // Words become ids local to this pair (equal text, equal id): sort all words, number the runs.
    size_t cap = strlen(hyp) / 2 + strlen(ref) / 2 + 2;
    word *w = tz_malloc(sizeof(word) * cap, "bleu");
    int nh = split(hyp, 0, w), nr = split(ref, 1, w + nh), n = nh + nr;
    int *ids = tz_malloc(sizeof(int) * (size_t)(n + 1), "bleu");
    qsort(w, n, sizeof *w, word_cmp);
    for (int i = 0, id = 0; i < n; i++) {
        if (i && word_cmp(&w[i - 1], &w[i])) id++;
        ids[w[i].side ? nh + w[i].pos : w[i].pos] = id;
    }
    tz_bleu_add(s, ids, nh, ids + nh, nr);
    free(ids);
    free(w);
}

double tz_bleu_score(const tz_bleu_stats *s, double *precisions, double *bp_out) {
    double bp = 1, prec[TZ_BLEU_N] = {0};
    if (s->hyp_len < s->ref_len) bp = s->hyp_len > 0 ? exp(1.0 - (double)s->ref_len / (double)s->hyp_len) : 0.0;
    if (bp_out) *bp_out = bp;
    int any = 0;
    for (int n = 0; n < TZ_BLEU_N; n++) any |= s->correct[n] > 0;
    double score = 0;
    if (any) { // sacreBLEU returns 0 early when nothing matches
        double smooth = 1, logsum = 0;
        int n;
        for (n = 0; n < TZ_BLEU_N && s->total[n] > 0; n++) {
            if (s->correct[n] == 0) smooth *= 2, prec[n] = 100.0 / (smooth * (double)s->total[n]);
            else prec[n] = 100.0 * (double)s->correct[n] / (double)s->total[n];
            logsum += log(prec[n]);
        }
        // An order with no hypothesis n-gram at all has precision 0 (log -> -9999999999): BLEU 0.
        score = n < TZ_BLEU_N ? 0.0 : bp * exp(logsum / TZ_BLEU_N);
    }
    if (precisions) memcpy(precisions, prec, sizeof prec);
    return score;
}

double tz_bleu_corpus(const int *const *hyp, const int *hyp_n, const int *const *ref, const int *ref_n, int n) {
    tz_bleu_stats s = {0};
    for (int i = 0; i < n; i++) tz_bleu_add(&s, hyp[i], hyp_n[i], ref[i], ref_n[i]);
    return tz_bleu_score(&s, NULL, NULL);
}

double tz_bleu_corpus_text(const char *const *hyp, const char *const *ref, int n) {
    tz_bleu_stats s = {0};
    for (int i = 0; i < n; i++) tz_bleu_add_text(&s, hyp[i], ref[i]);
    return tz_bleu_score(&s, NULL, NULL);
}

void tz_bleu_by_length(const int *src_n, const int *const *hyp, const int *hyp_n, const int *const *ref,
                       const int *ref_n, int n, const int *upper, int n_buckets, double *score, int *count) {
    tz_bleu_stats *s = tz_malloc(sizeof *s * (size_t)n_buckets, "bleu");
    memset(s, 0, sizeof *s * (size_t)n_buckets);
    for (int k = 0; k < n_buckets; k++) count[k] = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < n_buckets - 1 && src_n[i] > upper[k]) k++;
        tz_bleu_add(&s[k], hyp[i], hyp_n[i], ref[i], ref_n[i]);
        count[k]++;
    }
    for (int k = 0; k < n_buckets; k++) score[k] = tz_bleu_score(&s[k], NULL, NULL);
    free(s);
}
