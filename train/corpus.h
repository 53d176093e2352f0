// corpus.h: a text corpus as token ids: the vocabulary (learned on the training split) and the
// train / validation / test splits, from one file split by a fraction or from separate files.
//
// What a corpus may be (tests/bad/corpus.cases holds a case for each):
// - Any bytes. The char tokenizer (and BPE's base alphabet) has a token for each of the 256 byte
//   values, NUL included, so binary and non-UTF-8 text train like any other (a multi-byte UTF-8
//   character is several tokens); the word tokenizer splits on ' ', '\t', '\r' and '\n' only.
// - Any readable file: a regular file, a FIFO, a pipe or /dev/stdin (read as a stream to its end).
//   A file that cannot be opened, a directory, a read error part-way, or an empty file fails with
//   one line naming the [data] key and the path; a corpus is never silently cut short.
// - Validation or test text with characters (or words) the training split lacks: they become
//   <unk>, added to the vocabulary, with one line on stderr saying how many.
// - Text too short for one batch (fewer than block + 1 tokens, or batch x block + 1 for the
//   training streams of recurrent models) fails with one line naming the split, before training
//   starts (the batchers, and the validation check of task_lm.c).
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
