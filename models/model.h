// model.h: what a model of the zoo offers the trainer, the sampler and the translator.
//
// A batch is B rows of T token ids (batch-major) and the T next tokens of each row. A model
// returns logits (N, V) for the positions it predicts and points b->targets at their N targets
// (in the arena, in the logits' order): all B*T for most models, fewer where the first
// positions of a row lack the left context the model needs (Bengio's MLP).
#ifndef TZ_MODEL_H
#define TZ_MODEL_H

#include "cfg.h"
#include "tz.h"

typedef struct tz_batch {
    int B, T;
    const int *x, *y; // (B,T) inputs and next tokens
    const int *targets; // set by forward: the targets of the logits' rows
    int n_targets;
    // Translation (models with pairs = 1): B pairs, sources (B,S) padded with TZ_PAD and their
    // lengths (B), each in [1,S]; x (B,T) is the decoder input <bos> y1 .. yn padded with TZ_PAD,
    // y (B,T) the targets y1 .. yn <eos> padded with TZ_IGNORE, which the loss skips. forward
    // returns logits (B*T, V), row b*T + t, and sets targets = y, n_targets = B*T.
    int S;
    const int *src, *src_len;
} tz_batch;

// The special tokens of a translation vocabulary (both sides), in this order from id 0.
enum { TZ_PAD = 0, TZ_BOS = 1, TZ_EOS = 2, TZ_UNK = 3 };
#define TZ_IGNORE (-1) // a target the loss skips (padding)

typedef struct tz_model_def {
    const char *name; // the cfg's [model] type
    const char *paper; // what it reproduces, for the config print-out
    const cfg_key *keys; // its [model] keys (array ending in {0})
    // The [model] keys its family shares (NULL: none), read before keys: a key in both takes
    // the model's own entry (e.g. another default).
    const cfg_key *family_keys;
    // 1: contiguous streams with the hidden state carried across batches (truncated BPTT);
    // 0: independent random windows.
    int stream;
    // Builds a language model for a vocabulary of `vocab` tokens from its [model] keys in c.
    // block: the longest window forward will be given (the trainer's [train] block), which sizes
    // a learned position table or a decoding window; a model reads no other section of c.
    void *(*create)(const cfg *c, int vocab, int block, tz_params *P, tz_rng *r);
    // Left context (tokens) a position needs before its prediction counts; 0 for most.
    int (*context)(const void *m);
    // x (B,T) -> logits (N, V); sets b->targets, b->n_targets = N.
    tz_tensor *(*forward)(tz_graph *g, void *m, tz_batch *b);
    // Incremental decoding of one sequence (optional; NULL: the sampler recomputes the window).
    // Feeds the n tokens that follow those fed since the last reset (reset != 0 starts over) and
    // returns their logits (n, V). Returns NULL, feeding nothing, when n more positions do not fit
    // (the caller then resets and feeds a shorter context).
    tz_tensor *(*decode)(tz_graph *g, void *m, const int *ids, int n, int reset);
    // Zeroes the carried state for B streams (stream models; NULL otherwise).
    void (*reset)(void *m, int B);
    // The state carried from batch to batch: its *n values in the model's own buffer, which a
    // checkpoint saves and a resume refills (stream models; NULL otherwise).
    real *(*carried)(void *m, size_t *n);
    // The carried state's layout: (K, B, n / (K B)), K returned here (stream models). Data-parallel
    // training (train/dist.h) gathers each rank's rows of it into one checkpoint.
    int (*carried_blocks)(const void *m);
    void (*free)(void *m);

    // Translation (sequence-to-sequence) models: 1, and the two decoding calls below; 0 for the
    // language models. Decoding (greedy, beam search, attention maps) works on `rows` rows:
    // mt_encode reads B sources (B,S) with lengths (B) and keeps, inside the model, the decoder's
    // state for rows = B * beam rows (row r = b * beam + k starts from source b). The caller does
    // not reset g between mt_encode and the last mt_step of that batch.
    int pairs;
    // Builds a translation model for the two vocabularies (create is NULL for these models).
    void *(*mt_create)(const cfg *c, int src_vocab, int tgt_vocab, tz_params *P, tz_rng *r);
    void (*mt_encode)(tz_graph *g, void *m, const int *src, const int *src_len, int B, int S, int beam);
    // One decoder step of every row: prev (rows) is each row's previous target token (TZ_BOS at
    // the first step); parent (rows) the row whose state each row continues (beam search
    // reorders; NULL: its own). -> logits (rows, V). *attn, when attn != NULL, receives the
    // step's attention weights (rows, S), or NULL for a model without attention.
    tz_tensor *(*mt_step)(tz_graph *g, void *m, const int *prev, const int *parent, tz_tensor **attn);
} tz_model_def;

// All models of the zoo, and lookup by name (NULL if unknown).
const tz_model_def *const *tz_models(int *count);
const tz_model_def *tz_model_find(const char *name);

#endif
