// checkpoint.h: a training run's whole state in one safetensors file (so numpy and PyTorch
// users can read the weights): every parameter under its own name, the optimiser's state as
// "optim.<state>" (flat, parameter-block order), the recurrent state carried between batches as
// "train.carried", and in "__metadata__" the format, model name, step, the RNGs' states,
// resolved cfg and vocabulary. Written to a temporary file, flushed and
// renamed, so a crash never leaves a half-written checkpoint in place of a good one.
#ifndef TZ_CHECKPOINT_H
#define TZ_CHECKPOINT_H

#include "optim.h"
#include "tz.h"

typedef struct tz_ckpt_meta {
    char model[64];
    long step; // optimiser steps taken
    double best_val; // best validation loss so far (or a large number)
    long best_step;
    uint64_t rng[4]; // the trainer's RNG (batches)
    uint64_t drop_rng[4]; // the graph's RNG (dropout masks)
    int has_drop_rng; // read: the checkpoint has it (older ones do not)
    const real *carried; // save: the carried state (NULL: none), carried_n values
    size_t carried_n;
    char *cfg_text; // resolved cfg (owned, NUL-terminated)
    char *vocab_text; // tz_vocab_save text (owned); the target side's for a translation run
    char *src_vocab_text; // translation runs: the source vocabulary (owned), else NULL
} tz_ckpt_meta;

// Writes path atomically. o may be NULL (weights only).
void tz_ckpt_save(const char *path, const tz_params *P, const nn_optim *o, const tz_ckpt_meta *m);
// Reads only the metadata (to rebuild the model before loading weights). Fails with one line
// (naming the file and what is wrong: the byte offset, key, tensor or shape). Every reader
// checks the whole header first: its length, the JSON, each tensor's dtype, shape (at most
// TZ_MAX_DIMS dimensions) and data_offsets (in the file, matching shape x dtype, no overlaps),
// and that __metadata__ holds only strings. Integers in the metadata are parsed strictly.
// On failure nothing is left allocated (m's strings are NULL).
void tz_ckpt_read_meta(const char *path, tz_ckpt_meta *m);
// Loads every parameter of P (and o's state if o != NULL) from path; names and shapes must
// match exactly (else one line naming the tensor and both shapes).
void tz_ckpt_load(const char *path, tz_params *P, nn_optim *o);
void tz_ckpt_meta_free(tz_ckpt_meta *m);
// Reads "train.carried" (n values) into dst: 1; 0 if the checkpoint has none, -1 if it holds
// another number of values (another batch size); dst is untouched then.
int tz_ckpt_load_carried(const char *path, real *dst, size_t n);
// The same three on a whole checkpoint file already in memory (buf, len bytes); name is used in
// messages. What the fuzz harness and the tests call; the path functions read the same way.
void tz_ckpt_read_meta_mem(const void *buf, size_t len, const char *name, tz_ckpt_meta *m);
void tz_ckpt_load_mem(const void *buf, size_t len, const char *name, tz_params *P, nn_optim *o);
int tz_ckpt_load_carried_mem(const void *buf, size_t len, const char *name, real *dst, size_t n);

#endif
