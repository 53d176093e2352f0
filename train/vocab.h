// vocab.h: tokenizers. char (one byte a token, vocabulary from the training text), word
// (whitespace-separated, <eos> at each line end, <unk> below a count cutoff) and byte-pair
// encoding (Sennrich et al. 2016: merges learned on the training split, over characters).
// Every byte value 0..255 is a character (a NUL byte too): tokens are byte strings with a length,
// and each is also NUL-terminated for printing.
#ifndef TZ_VOCAB_H
#define TZ_VOCAB_H

#include <stddef.h>
#include <stdio.h>

#define TZ_VOCAB_MAX (1 << 24) // tokens at most (a bigger vocabulary is a mistake or a binary file)

typedef enum { TOK_CHAR, TOK_WORD, TOK_BPE } tz_tok_kind;

typedef struct tz_vocab {
    tz_tok_kind kind;
    int size;
    char **tok; // the text of each id (NUL-terminated; may hold a NUL byte, see len)
    size_t *len; // the byte length of each id's text
    int unk, eos; // ids of <unk> and <eos>, or -1
    int *table; // open-addressing hash of the token texts -> id
    int table_cap;
    int n_merges; // bpe: merge k joins ids merges[2k], merges[2k+1] into id base + k
    int *merges, base;
} tz_vocab;

int tz_tok_parse(const char *name, tz_tok_kind *kind); // "char", "word", "bpe"; 0 if unknown
const char *tz_tok_name(tz_tok_kind kind);

// Learns a vocabulary from the training text. min_count: word tokens seen fewer times become
// <unk>; bpe_merges: how many merges BPE learns on top of the characters.
void tz_vocab_build(tz_vocab *v, tz_tok_kind kind, const char *text, size_t len, int min_count, int bpe_merges);
// Adds <unk> if absent (for text with characters the training split never had). Returns its id.
int tz_vocab_add_unk(tz_vocab *v);
// Token ids of text; *n_unk counts tokens that were not in the vocabulary (mapped to <unk>, or
// -1 in the output when there is none: the caller decides whether that is an error).
int *tz_vocab_encode(const tz_vocab *v, const char *text, size_t len, long *n_out, long *n_unk);
// Writes the text of ids (words joined by spaces, <eos> as a newline).
void tz_vocab_decode(const tz_vocab *v, const int *ids, long n, FILE *out);
// Appends a token (a new id) and returns it; the caller makes sure it is not there yet.
int tz_vocab_add_token(tz_vocab *v, const char *tok);
// Looks a token text up: its id, or -1.
int tz_vocab_find(const tz_vocab *v, const char *tok);
// The same for a text of n bytes that may hold NUL bytes.
int tz_vocab_add_bytes(tz_vocab *v, const char *s, size_t n);
int tz_vocab_find_bytes(const tz_vocab *v, const char *s, size_t n);

// A plain-text form, saved beside each checkpoint: loads back to the same ids.
void tz_vocab_save(const tz_vocab *v, FILE *f);
// The same text in memory (malloc'd, NUL-terminated), as checkpoints hold it.
char *tz_vocab_text(const tz_vocab *v);
// 1, or 0 on a malformed file (bad header, sizes, token texts or merges, a duplicate token, a
// truncated file, trailing data): then v holds nothing and tz_vocab_error() says why, e.g.
// "line 7: token 5 'ab' is also token 2". A vocabulary that loads encodes every text to ids in
// [0, size) (or -1 for a token outside a vocabulary without <unk>, as tz_vocab_encode says).
int tz_vocab_load(tz_vocab *v, FILE *f);
const char *tz_vocab_error(void);
// tz_vocab_load from the text tz_vocab_text made (a checkpoint's), with the same result.
int tz_vocab_load_text(tz_vocab *v, const char *text);
// dst becomes a vocabulary of its own with src's tokens and ids, as a checkpoint would restore
// it (through the saved text). 1, or 0 as tz_vocab_load.
int tz_vocab_copy(tz_vocab *dst, const tz_vocab *src);
void tz_vocab_free(tz_vocab *v);

#endif
