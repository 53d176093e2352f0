// bleu.h: corpus BLEU-4 (Papineni et al. 2002) exactly as sacreBLEU 2.x computes it on text that
// is already tokenised (its `tokenize none`, one reference per sentence): clipped n-gram counts
// and lengths summed over the corpus, brevity penalty exp(1 - r/c) when c < r, the 'exp'
// smoothing (an order with no match counts as 1 / (2^k total), k = 1, 2, .. for each such
// order in turn), score 0-100. The core works on token ids; the text form splits on whitespace.
#ifndef TZ_BLEU_H
#define TZ_BLEU_H

#define TZ_BLEU_N 4

// Sufficient statistics: add sentences, then score. Start from a zeroed struct.
typedef struct tz_bleu_stats {
    long hyp_len, ref_len;
    long correct[TZ_BLEU_N], total[TZ_BLEU_N]; // matched (clipped) and hypothesis n-grams, n = 1..4
} tz_bleu_stats;

// Adds one sentence: hypothesis ids (hyp_n) against its reference ids (ref_n).
void tz_bleu_add(tz_bleu_stats *s, const int *hyp, int hyp_n, const int *ref, int ref_n);
// Adds one sentence given as text (tokens separated by whitespace).
// The words of text as tz_bleu_add_text splits it (Python's str.split()).
int tz_bleu_words(const char *text);
void tz_bleu_add_text(tz_bleu_stats *s, const char *hyp, const char *ref);
// BLEU in [0, 100]. precisions (TZ_BLEU_N, percent, smoothed as sacreBLEU reports them) and bp
// may be NULL.
double tz_bleu_score(const tz_bleu_stats *s, double *precisions, double *bp);

// Whole corpora of n sentences (hyp[i] against ref[i]).
double tz_bleu_corpus(const int *const *hyp, const int *hyp_n, const int *const *ref, const int *ref_n, int n);
double tz_bleu_corpus_text(const char *const *hyp, const char *const *ref, int n);

// BLEU by source length: bucket k takes sources of length (upper[k-1], upper[k]] (upper[-1] = 0),
// the last bucket also everything longer. score[k] and count[k] (sentences) for each of
// n_buckets buckets; an empty bucket scores 0. TZ_BLEU_BUCKETS are the 1-4, 5-7, 8-10.
#define TZ_BLEU_BUCKETS \
    { 4, 7, 10 }
void tz_bleu_by_length(const int *src_n, const int *const *hyp, const int *hyp_n, const int *const *ref,
                       const int *ref_n, int n, const int *upper, int n_buckets, double *score, int *count);

#endif
