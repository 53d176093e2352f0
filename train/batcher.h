// batcher.h: batches of token ids for training and evaluation, with no copy of the corpus.
//   windows: B independent windows at random offsets (MLP, Transformer);
//   streams: the split cut into B contiguous streams read T tokens at a time, so a recurrent
//            model's state carries from one batch to the next (truncated BPTT).
// Evaluation walks a split once in order and predicts every position of it once: windows
// overlapping by the model's left context (so every position has its full context), the last
// one ending at the split's end with the positions already predicted marked TZ_IGNORE; or
// streams of ceil((n-1)/B) positions read T at a time, the last chunk shorter, the last
// stream's end padded with TZ_IGNORE targets.
#ifndef TZ_BATCHER_H
#define TZ_BATCHER_H

#include "model.h"

typedef struct tz_batcher {
    int streams, eval, B, T, context;
    const int *ids;
    long n, stream_len, pos, epoch;
    long covered; // evaluation windows: targets ids[1..covered] are predicted
    int *x, *y; // (B,T), owned
    tz_rng rng;
} tz_batcher;

// Training batches over ids[0..n).
void tz_batcher_init(tz_batcher *b, const int *ids, long n, int B, int T, int streams, uint64_t seed);
// One pass over ids[0..n) for evaluation; `context` is the model's left context.
void tz_batcher_init_eval(tz_batcher *b, const int *ids, long n, int B, int T, int streams, int context);
// Fills *out. Training: returns 1 when the streams started over (reset the model's state), else
// 0. Evaluation: returns 0 when the pass is over, else 1; out->B may be smaller at the end.
int tz_batcher_next(tz_batcher *b, tz_batch *out);
// Puts a stream batcher where it is after `steps` calls of tz_batcher_next (resuming a run);
// window batchers are positioned by restoring their RNG instead.
void tz_batcher_skip(tz_batcher *b, long steps);
void tz_batcher_free(tz_batcher *b);

#endif
