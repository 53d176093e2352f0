// pairs.h: paired corpora for translation (and the synthetic pair tasks of synth.h): reading a
// `source<TAB>target` file, the benchmark preprocessing, the split by distinct source, one
// vocabulary per side, and the batcher of padded, length-bucketed pairs.
//
// Preprocessing (the defaults, so results compare with the benchmark): lower-case (ASCII, the
// Latin-1 letters U+00C0..U+00DE, Œ and Ÿ); a space on both sides of each of . ! ? , ; :; split
// on whitespace, ASCII and Unicode (the no-break spaces U+00A0 and U+202F that French puts
// before ! and ?, thin spaces, ...). A sentence is then its tokens joined by single spaces.
//
// Bad input in a pairs file, decided per case:
//   - a line with no tab (not a pair at all: the wrong file?): fails with file:line;
//   - invalid UTF-8 or a NUL byte (a Latin-1 file?): fails with file:line and the byte offset;
//   - a side that is empty after preprocessing: skipped and counted;
//   - a line longer than TZ_PAIRS_MAX_LINE bytes: skipped and counted (no sentence that long
//     passes the length filter anyway);
//   - a side with fewer than min_len or more than max_len tokens: skipped and counted (the
//     length filter, not an error);
//   - blank lines (whitespace only) are ignored; a third and further tab-separated fields
//     (Tatoeba's attribution) are ignored;
//   - no pair left: fails naming the file and what was skipped.
// The counts are printed in one line (tz_pairs_print_stats).
#ifndef TZ_PAIRS_H
#define TZ_PAIRS_H

#include <stdio.h>

#include "cfg.h"
#include "corpus.h" // SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST
#include "model.h"
#include "vocab.h"

#define TZ_PAIRS_MAX_LINE 65536 // bytes; longer lines are skipped and counted
#define TZ_PAIRS_MAX_LEN 1000 // most tokens a side may keep ([data] max_len)

// The [data] keys of paired and synthetic data (besides corpus.h's path, valid, test, split,
// tokenizer, min_count, bpe_merges, which pairs read too).
extern const cfg_key tz_pair_keys[];

typedef enum { TZ_DATA_TEXT, TZ_DATA_PAIRS, TZ_DATA_REVERSE, TZ_DATA_COPY } tz_data_kind;
// [data] kind; fails naming the cfg and the known kinds.
tz_data_kind tz_data_kind_of(const cfg *c);
// Sets [data] tokenizer = word and min_count = 2 (the pairs defaults) unless the cfg sets them,
// so the printed configuration says what the run uses. Fails on tokenizer = char.
void tz_pairs_cfg_resolve(cfg *c);

// Sentences: sentence i is text + off[i], NUL-terminated, tokens joined by single spaces.
typedef struct tz_sents {
    char *text;
    long *off;
    long n, len, cap, text_cap;
} tz_sents;
void tz_sents_add(tz_sents *s, const char *sent, size_t len);
static inline const char *tz_sent(const tz_sents *s, long i) { return s->text + s->off[i]; }
void tz_sents_free(tz_sents *s);

// Pairs as token ids (no <bos>/<eos>: the batcher adds them), with their preprocessed text.
typedef struct tz_pairset {
    long n;
    long *src_off, *tgt_off; // (n+1): pair i's source is src[src_off[i] .. src_off[i+1])
    int *src, *tgt;
    long src_cap, tgt_cap, off_cap;
    int max_src, max_tgt; // the longest source and target (tokens)
    tz_sents src_text, tgt_text;
} tz_pairset;
void tz_pairset_add(tz_pairset *s, const int *src, int ns, const int *tgt, int nt, const char *src_text,
                    const char *tgt_text);
static inline int tz_pair_src_len(const tz_pairset *s, long i) { return (int)(s->src_off[i + 1] - s->src_off[i]); }
static inline int tz_pair_tgt_len(const tz_pairset *s, long i) { return (int)(s->tgt_off[i + 1] - s->tgt_off[i]); }
void tz_pairset_free(tz_pairset *s);
// Writes the sources to src_path and the targets (the references) to ref_path, one sentence a
// line in the set's order. Fails naming the file it cannot write.
void tz_pairset_write(const tz_pairset *s, const char *src_path, const char *ref_path);

// Preprocessing options.
typedef struct tz_prep {
    int lowercase, split_punct;
} tz_prep;
// Preprocesses s[0..n) into out (room for 3n+1 bytes): tokens joined by single spaces.
// Returns the number of tokens, or -1 on invalid UTF-8 or a NUL byte, with *bad (if not NULL)
// set to its byte offset in s.
long tz_prep_sentence(const tz_prep *o, const char *s, size_t n, char *out, size_t *bad);
// A preprocessed sentence as ids of v (word or bpe with the four specials at 0..3): words not
// in v become TZ_UNK. Returns a malloc'd array of *n ids.
int *tz_pairs_encode(const tz_vocab *v, const char *sent, int *n);

// What reading a pairs file kept and skipped.
typedef struct tz_pairs_stats {
    long lines, blank, kept, empty_side, too_long_line, out_of_range;
    long first_empty, first_long; // line numbers of the first skip of each kind (0: none)
} tz_pairs_stats;

// A read file: the preprocessed sentences of the kept pairs, in file order.
typedef struct tz_pair_text {
    tz_sents src, tgt;
    long *line; // kept pair i came from this line (1-based)
    tz_pairs_stats st;
} tz_pair_text;

// Reads data[0..len) as a pairs file (name is what errors call it). Keeps pairs whose both sides
// have min_len..max_len tokens. Fails (tz_fail, after freeing what it allocated) as pairs.h's
// header says; *out is then untouched.
void tz_pairs_parse(tz_pair_text *out, const char *name, const char *data, size_t len, const tz_prep *o, int min_len,
                    int max_len);
void tz_pair_text_free(tz_pair_text *t);

// What makes the strings of a synthetic task (synth.h); held_out (may be NULL) is a set of
// source texts ("3 1 4") that no string it makes may equal.
typedef struct tz_synth {
    tz_data_kind kind; // TZ_DATA_REVERSE or TZ_DATA_COPY
    int min_len, max_len;
    const tz_vocab *held_out;
} tz_synth;

// A paired corpus ready to train on: vocabularies and the three splits.
typedef struct tz_pairs {
    tz_data_kind kind;
    tz_vocab src_vocab, tgt_vocab; // the four specials at ids 0..3 (TZ_PAD, TZ_BOS, TZ_EOS, TZ_UNK)
    tz_pairset set[N_SPLITS]; // set[SPLIT_TEST].n may be 0 (no test split)
    char path[N_SPLITS][512];
    tz_pairs_stats st[N_SPLITS]; // pairs files: what reading each file skipped
    long groups[N_SPLITS]; // a split of one file: distinct sources in each split
    // Synthetic tasks (synth.h): the generator, and the held-out sources (validation and test)
    // as a set of texts; set[SPLIT_TRAIN].n == 0 means fresh strings every batch.
    tz_synth synth;
    tz_vocab held_out;
} tz_pairs;

// Options of tz_pairs_build (the [data] keys, resolved).
typedef struct tz_pairs_opts {
    tz_tok_kind tok; // TOK_WORD or TOK_BPE
    int min_count; // word: rarer training words become <unk>
    int bpe_merges;
    double split, val_split; // fractions of distinct sources: train, validation (the rest: test)
    uint64_t seed; // of the split
} tz_pairs_opts;

// Splits one read file by distinct source (all pairs of one source sentence go to the same
// split), learns the vocabularies on the training split (or copies src_vocab / tgt_vocab when
// not NULL: resuming) and encodes. Takes the sentences of t (t is emptied).
void tz_pairs_build(tz_pairs *p, tz_pair_text *t, const tz_pairs_opts *o, const tz_vocab *src_vocab,
                    const tz_vocab *tgt_vocab);

// Everything from the cfg: kind = pairs reads [data] path (and valid / test when given: then no
// split), kind = reverse / copy makes the synthetic sets (synth.h). src_vocab / tgt_vocab: the
// saved vocabularies when resuming, else NULL. Prints what was read and skipped to log (may be
// NULL).
void tz_pairs_load(tz_pairs *p, const cfg *c, const tz_vocab *src_vocab, const tz_vocab *tgt_vocab, FILE *log);
void tz_pairs_print_stats(const tz_pairs *p, FILE *f);
// Writes the test split into dir as test.src and test.ref (the run dir keeps the split).
void tz_pairs_write_test(const tz_pairs *p, const char *dir);
void tz_pairs_free(tz_pairs *p);

// Batches of padded pairs (tz_batch's translation fields: src, src_len, S, x, y, B, T).
// Training: each epoch is a seeded permutation of the pairs, cut into pools of `bucket` batches;
// each pool is sorted by length and cut into batches, and the epoch's batches are shuffled (so a
// batch holds pairs of similar length, and the order of lengths is random). Batch k is a
// function of (seed, k) alone, so the batcher's whole state is the count of batches drawn:
// tz_pair_batcher_tell saves it, tz_pair_batcher_seek restores it (--resume is bit-exact).
// An epoch uses n / B full batches; the n % B pairs left over differ from epoch to epoch.
// Evaluation walks the set once in order, B pairs at a time (the last batch may be smaller).
typedef struct tz_pair_batcher {
    const tz_pairset *set;
    int B, eval, bucket;
    uint64_t seed;
    long k; // training: batches drawn; evaluation: the next pair
    long per_epoch; // training: batches per epoch
    long epoch; // the epoch whose plan is in order/batches (-1: none yet)
    long *order; // the epoch's pairs, batch after batch (per_epoch * B)
    long *batches; // the epoch's batch order (per_epoch)
    int cap_S, cap_T;
    int *src, *src_len, *x, *y; // (B,S), (B), (B,T), (B,T), owned
    // Fresh draws (synthetic tasks without a fixed training set): batch k is draw(ctx, rng, B)
    // with rng seeded from (seed, k), into `fresh`.
    void (*draw)(void *ctx, tz_rng *r, int B, tz_pairset *out);
    void *draw_ctx;
    tz_pairset fresh;
} tz_pair_batcher;

// Training batches over set (bucket: batches per sorted pool; 1 turns bucketing off). Fails if
// the set has fewer than B pairs.
void tz_pair_batcher_init(tz_pair_batcher *b, const tz_pairset *set, int B, int bucket, uint64_t seed);
// Training batches drawn fresh: each batch is draw(ctx, rng, B, out) (out is emptied first);
// max_src / max_tgt bound what draw makes.
void tz_pair_batcher_init_draw(tz_pair_batcher *b, void (*draw)(void *, tz_rng *, int, tz_pairset *), void *ctx, int B,
                               int max_src, int max_tgt, uint64_t seed);
// One pass over set in order.
void tz_pair_batcher_init_eval(tz_pair_batcher *b, const tz_pairset *set, int B);
// Fills *out. Training: always returns 1. Evaluation: 0 when the pass is over.
int tz_pair_batcher_next(tz_pair_batcher *b, tz_batch *out);
long tz_pair_batcher_tell(const tz_pair_batcher *b); // training batches drawn so far
void tz_pair_batcher_seek(tz_pair_batcher *b, long k); // the next batch is batch k
void tz_pair_batcher_free(tz_pair_batcher *b);

// The training batcher of p: over its training set, or fresh draws for a synthetic task without
// one (p must stay in place while b is used).
void tz_pairs_train_batcher(tz_pair_batcher *b, tz_pairs *p, int B, int bucket, uint64_t seed);

#endif
