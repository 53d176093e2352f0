// corpus.h: a text corpus as token ids: the vocabulary (learned on the training split) and the
// train / validation / test splits, from one file split by a fraction or from separate files.
#ifndef TZ_CORPUS_H
#define TZ_CORPUS_H

#include "cfg.h"
#include "vocab.h"

enum { SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, N_SPLITS };

typedef struct tz_corpus {
    tz_vocab vocab;
    int *ids[N_SPLITS];
    long n[N_SPLITS]; // tokens per split (0: the split is absent)
    char path[N_SPLITS][512];
} tz_corpus;

// The [data] keys of the trainer's schema.
extern const cfg_key tz_data_keys[];

// Reads the files named in [data] (relative paths are relative to the cfg file), learns the
// vocabulary on the training text, encodes the splits. A missing file fails with the command
// that fetches it. `vocab` (may be NULL) is used instead of learning one (resuming, sampling).
void tz_corpus_load(tz_corpus *c, const cfg *cf, const tz_vocab *vocab);
void tz_corpus_free(tz_corpus *c);
// A path from the cfg, made relative to the cfg file's folder unless absolute.
void tz_cfg_path(const cfg *cf, const char *value, char *out, size_t size);

#endif
