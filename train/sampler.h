// sampler.h: text generation from a trained model: argmax, or multinomial with temperature and
// top-k. Stream models feed one token at a time with their state carried; window models see
// the last `block` tokens.
#ifndef TZ_SAMPLER_H
#define TZ_SAMPLER_H

#include <stdio.h>

#include "model.h"
#include "vocab.h"

typedef struct tz_sample_opts {
    int tokens;         // how many to generate
    double temperature; // 0: argmax
    int top_k;          // 0: the whole vocabulary
    int block;          // window models: the longest context they take
} tz_sample_opts;

// Writes the prompt and what follows to out. Returns the number of tokens generated.
int tz_sample(const tz_model_def *def, void *m, const tz_vocab *v, const char *prompt, const tz_sample_opts *o,
              tz_rng *r, FILE *out);
// Picks the next token from logits (V): argmax at temperature 0, else softmax(logits / T) over
// the top_k largest.
int tz_pick(const real *logits, int V, double temperature, int top_k, tz_rng *r);

#endif
