// mt_helpers.h: what the translation models' tests share (test_seq2seq.c, test_transformer_mt.c):
// a model built from its cfg keys, random padded pair batches, and the digit-reversal toy task.
#ifndef TZ_MT_HELPERS_H
#define TZ_MT_HELPERS_H

#include "model.h"
#include "nn.h"

typedef struct {
    const tz_model_def *def;
    void *m;
    tz_params P;
    cfg c;
    tz_graph g; // the graph its tests run it in
} mt_model;

// A translation model of the given type with [model] overrides (NULL-terminated), seeded, and
// an empty graph; mt_unmake frees both.
void mt_make(mt_model *mm, const char *type, int Vs, int Vt, uint64_t seed, const char *const *over);
void mt_unmake(mt_model *mm);

// B pairs with the given source and target lengths (targets count <eos>), padded to S and T;
// words drawn from r among ids 4..Vs-1 and 4..Vt-1. Arrays are the caller's (B*S, B, B*T, B*T).
void mt_make_pairs(tz_rng *r, int Vs, int Vt, int B, int S, int T, const int *slen, const int *tlen, int *src, int *len,
                   int *x, int *y);

// The loss of one pair alone equals its loss inside a batch of longer pairs (the other rows'
// targets ignored): padding reaches nothing that matters (encoder states, attention, decoder).
void mt_check_padding(const char *type, const char *const *over, int Vs, int Vt);

// Decoding (mt_encode, mt_step) fed the reference prefix reproduces forward's logits (forward in
// the full (B*T, V) layout: skip_padding off) within tol; with attention the weights are a
// distribution over the real source words, without it mt_step reports none.
void mt_check_teacher_forcing(const char *type, const char *const *over, int Vs, int Vt, double tol, int attention);

// Beam rows of a model built with Vt target words: 2 sources x 3 rows each; after two steps with
// different tokens per row, a reordering (parent) and a third step, each row's logits equal a
// single-row decode of its own history; a parent outside its source's rows is refused.
void mt_check_beam_rows(mt_model *mm, int Vs, int Vt);

// The reversal toy: strings of digits (ids 4..13) of lengths lo..MT_RMAX, RB of them a batch.
enum { MT_RV = 14, MT_RB = 32, MT_RMIN = 3, MT_RMAX = 7, MT_RS = MT_RMAX, MT_RT = MT_RMAX + 1 };
void mt_reverse_batch(tz_rng *r, int lo, int *src, int *len, int *x, int *y);
// Greedy decoding of a batch: the fraction of rows whose output (up to <eos>) is the reverse.
double mt_reverse_exact(tz_graph *g, const mt_model *mm, const int *src, const int *len);

// Training on the reversal toy: `steps` optimiser steps (oc, clip 1, the schedule's LR, label
// smoothing `smoothing`) on batches of lengths MT_RMIN..MT_RMAX (seed 12), one thread; returns
// the exact match on 128 fresh strings of lengths eval_lo..MT_RMAX, *last_loss the last
// training loss.
typedef struct {
    nn_optim_config oc;
    nn_schedule sched;
    int steps, eval_lo;
    real smoothing;
} mt_reverse_training;
double mt_train_reverse(mt_model *mm, const mt_reverse_training *t, double *last_loss);

#endif
