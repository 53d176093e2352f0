// sampler.h: text generation from a trained model: argmax, or multinomial with temperature and
// top-k. Models with a decode call (the transformer's KV cache, the hybrid's window of recurrent
// states) are fed only the new token; other stream models one token at a time with their state
// carried; window models see the last `block` tokens. Each computes what forward computes on
// the same sequence (tests/test_readers.c checks every model of the zoo).
#ifndef TZ_SAMPLER_H
#define TZ_SAMPLER_H

#include <stdio.h>

#include "model.h"
#include "vocab.h"

// At most this many tokens per sample (a bound on the buffers; 10^7 is days of sampling).
#define TZ_SAMPLE_MAX_TOKENS 10000000

typedef struct tz_sample_opts {
    int tokens; // how many to generate: 0 to TZ_SAMPLE_MAX_TOKENS
    double temperature; // 0: argmax
    int top_k; // 0: the whole vocabulary
    int block; // window models: the longest context they take
} tz_sample_opts;

// Fails (one line naming the option and its range) unless tokens is in [0, TZ_SAMPLE_MAX_TOKENS],
// temperature in [0, 1000], top_k >= 0 and block >= 1.
void tz_sample_check(const tz_sample_opts *o);
// Writes the prompt and what follows to out (checks o first). Returns the tokens generated.
int tz_sample(const tz_model_def *def, void *m, const tz_vocab *v, const char *prompt, const tz_sample_opts *o,
              tz_rng *r, FILE *out);
// Picks the next token from logits (V): argmax at temperature 0, else softmax(logits / T) over
// the top_k largest.
// The logits (V values, in g's arena) of the token after ids[0..n), as tz_sample computes them:
// decode models and stream models are fed ids[*fed..n) (their state holds the rest; *fed == 0
// starts over), window models see the last `block` tokens. *fed becomes n. One call per graph
// reset. A test checks these against forward on the same sequence for every model.
const real *tz_sample_next(tz_graph *g, const tz_model_def *def, void *m, const int *ids, int n, int *fed, int block,
                           int *V);
int tz_pick(const real *logits, int V, double temperature, int top_k, tz_rng *r);

#endif
