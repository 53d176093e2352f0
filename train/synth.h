// synth.h: the built-in synthetic pair tasks, no files: copy and reverse of random digit strings
// (for tests and the length experiment, the synthetic analogue of Bahdanau et al. 2015, Fig. 2).
// The vocabulary of both sides is the four specials (ids 0..3) and the digits 0..9 (ids 4..13).
// A string's length is uniform in [min_len, max_len], its digits uniform. The validation and
// test strings are held out: no training string (fixed set or fresh draw) equals one of them.
#ifndef TZ_SYNTH_H
#define TZ_SYNTH_H

#include "pairs.h"

// The digit vocabulary (word tokenizer): <pad> <bos> <eos> <unk> 0 1 .. 9.
void tz_synth_vocab(tz_vocab *v);

// Appends n pairs to out, drawn from r. Fails if the lengths hold too few strings to avoid
// held_out. Adds each source made to `seen` when not NULL.
void tz_synth_make(const tz_synth *s, tz_rng *r, long n, tz_pairset *out, tz_vocab *seen);
// A fresh batch for tz_pair_batcher_init_draw (ctx: a tz_synth).
void tz_synth_draw(void *ctx, tz_rng *r, int B, tz_pairset *out);
// A set of n pairs with lengths min_len..max_len from seed: e.g. the test sets of other lengths
// of the length experiment (held_out: NULL, or the training strings to avoid).
void tz_synth_set(tz_pairset *out, tz_data_kind kind, long n, int min_len, int max_len, uint64_t seed,
                  const tz_vocab *held_out);

// kind = reverse / copy from the cfg's [data] keys (tz_pairs_load calls it): the digit
// vocabularies, held-out validation and test sets (eval_size each; the test lengths from
// test_min_len / test_max_len when set), and a fixed training set of train_size strings (0:
// fresh draws, see tz_pairs_train_batcher).
void tz_synth_load(tz_pairs *p, const cfg *c);

// Validates the lengths: 1 <= min_len <= max_len <= TZ_PAIRS_MAX_LEN (what names them: in errors).
void tz_synth_check_lengths(const char *what, long min_len, long max_len);

#endif
