// translate.h: decoding a translation model (tz_model_def with pairs = 1) through its mt_encode
// and mt_step calls: greedy search and beam search with the GNMT length penalty (Wu et al. 2016),
// several sources at once.
//
// Beam search keeps the K best open hypotheses of each source by summed log-probability; a
// hypothesis that takes <eos> is finished with the score logp / lp(|Y|), lp(L) = ((5 + L) / 6)^alpha,
// |Y| counting the <eos> (as OpenNMT-py does). A source stops when it holds n_best finished ones
// and none that is still open can beat the worst of them: every extension of an open hypothesis
// has logp <= its current logp <= 0 and ends at most at length Lmax + 1, so its score is at
// most logp / max lp over the lengths still reachable (OpenNMT-py instead stops once the top
// candidate of a step is finished, which with alpha > 0 can miss a longer, better hypothesis).
// The target holds at most Lmax = floor(a * |src| + b) tokens before its <eos> (forced there).
// <pad> and <bos> are never produced. An empty source gives an empty translation.
#ifndef TZ_TRANSLATE_H
#define TZ_TRANSLATE_H

#include <stdio.h>

#include "model.h"
#include "tz.h"

typedef struct tz_decode_opts {
    int beam; // K; 1: greedy (the argmax at each step, stop at <eos>)
    double alpha; // length penalty exponent, >= 0 (beam > 1; 0: plain log-probability)
    int n_best; // hypotheses returned per source, in [1, beam]
    double max_len_a, max_len_b; // Lmax = floor(a * |src| + b), at least 1
    int batch; // sources decoded together (rows = batch * beam)
    int attention; // keep the attention matrix of each returned hypothesis
    tz_graph *graph; // decode in this graph (its arena reused, reset per batch; the trainer's,
        // so a run's peak memory is not the sum of both), or NULL: one of its own
} tz_decode_opts;

// beam 5, alpha 0.6, n_best 1, Lmax = 2 |src| + 10, batch 64, no attention, a graph of its own.
tz_decode_opts tz_decode_defaults(void);

typedef struct tz_hyp {
    int *ids, len; // target tokens without the <eos>; len -1: no such hypothesis (ids NULL)
    double logp; // summed log-probability, <eos> included
    double score; // logp / lp(len + 1) (greedy: logp)
    real *attn; // (len + 1, src_len): row i the attention while producing token i (the
        // <eos> last), or NULL (not asked, or a model without attention)
    int src_len;
} tz_hyp;

// Translates n sources: src[i] holds src_len[i] ids (source vocabulary). out has n * o->n_best
// slots: out[i * n_best + k] is the k-th best hypothesis of source i. Batches group sources of
// similar length. Uses its own graph; fails (tz_fail) on bad options.
void tz_translate(const tz_model_def *def, void *m, const tz_decode_opts *o, const int *const *src, const int *src_len,
                  int n, tz_hyp *out);
// Frees the ids and attention of n hypotheses (not the array).
void tz_hyps_free(tz_hyp *h, int n);
// Writes h's attention (h->len + 1, h->src_len) for tools/plot_attention.gp: a gnuplot "matrix
// rowheaders columnheaders" file, a first line of the source labels (src_labels, h->src_len),
// then per target token its label (tgt_labels, h->len, then <eos>) and its weights. Labels are
// quoted (a '"' inside becomes ''). what: a comment line naming the model.
void tz_attention_write(FILE *f, const tz_hyp *h, const char *const *src_labels, const char *const *tgt_labels,
                        const char *what);
// The text of target ids: words joined by single spaces (word vocabularies), else the tokens'
// own text run together (BPE). Returns a malloc'd string.
struct tz_vocab;
char *tz_target_text(const struct tz_vocab *v, const int *ids, int n);
// The GNMT length penalty ((5 + len) / 6)^alpha.
double tz_length_penalty(int len, double alpha);

#endif
