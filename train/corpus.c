// corpus.c: reading, splitting and encoding a corpus.
#include "corpus.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tz.h"

const cfg_key tz_data_keys[] = {
    {"data", "path", CFG_STR, NULL, "training text (or the one file to split), relative to the cfg file", 0, 0, NULL},
    {"data", "valid", CFG_STR, "", "validation text (empty: the end of path, see split)", 0, 0, NULL},
    {"data", "test", CFG_STR, "", "test text (optional): evaluated once, at the end, with the final weights", 0, 0,
     NULL},
    {"data", "split", CFG_FLOAT, "0.9", "fraction of path used for training when valid is empty", 0, 1, NULL},
    {"data", "tokenizer", CFG_STR, "char", "char, word or bpe", 0, 0, "char word bpe"},
    {"data", "min_count", CFG_INT, "1", "word tokenizer: words seen fewer times become <unk>", 0, 1000000000, NULL},
    {"data", "bpe_merges", CFG_INT, "256", "bpe tokenizer: merges learned on the training text", 0, 1000000, NULL},
    {0},
};

void tz_cfg_path(const cfg *cf, const char *value, char *out, size_t size) {
    const char *slash = strrchr(cf->path, '/');
    if (value[0] == '/' || !slash) snprintf(out, size, "%s", value);
    else snprintf(out, size, "%.*s/%s", (int)(slash - cf->path), cf->path, value);
}

// The corpus a missing file most likely belongs to, for the fetch hint.
static const char *corpus_of(const char *path) {
    if (strstr(path, "shakespeare")) return "tinyshakespeare";
    if (strstr(path, "wiki")) return "wikitext-2";
    if (strstr(path, "ptb")) return "ptb";
    if (strstr(path, "eng-fra")) return "eng-fra";
    return NULL;
}

// The whole file, read as a stream (so a pipe, a FIFO or /dev/stdin works as well as a file).
// Anything short of the whole file is an error, never a silently shorter corpus.
static char *read_file(const char *path, const char *key, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        const char *name = corpus_of(path);
        if (errno == ENOENT && name)
            tz_fail("[data] %s: %s does not exist. HINT: fetch it with: data/fetch %s (from the project root)", key,
                    path, name);
        tz_fail("[data] %s: cannot open %s (%s)", key, path, strerror(errno));
    }
    struct stat st = {0};
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        tz_fail("[data] %s: %s is a directory (want a text file)", key, path);
    }
    // A regular file's size is a hint for the first read (+2: the read that finds the end).
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX / 2 ? (size_t)st.st_size + 2
                                                                                               : 1 << 16;
    size_t n = 0, got;
    char *text = malloc(cap);
    while (text) {
        if (n + 1 == cap) { // full but for the final NUL: double
            char *more = cap <= SIZE_MAX / 2 ? realloc(text, cap * 2) : NULL;
            if (!more) break;
            text = more, cap *= 2;
        }
        if ((got = fread(text + n, 1, cap - 1 - n, f)) == 0) break;
        n += got;
    }
    if (!text || n + 1 == cap) {
        free(text);
        fclose(f);
        tz_fail("[data] %s: out of memory reading %s (%zu bytes so far)", key, path, n);
    }
    if (ferror(f)) {
        int e = errno;
        free(text);
        fclose(f);
        tz_fail("[data] %s: cannot read %s after %zu bytes (%s)", key, path, n, strerror(e));
    }
    fclose(f);
    if (n == 0) {
        free(text);
        tz_fail("[data] %s: %s is empty", key, path);
    }
    text[n] = 0;
    *len = n;
    return text;
}

static void encode(tz_corpus *c, int split, const char *text, size_t len, const char *what) {
    long n, unk;
    c->ids[split] = tz_vocab_encode(&c->vocab, text, len, &n, &unk);
    if (unk && c->vocab.unk < 0)
        tz_fail("%s: %ld tokens are not in the vocabulary of the training text, which has no <unk>", what, unk);
    if (n == 0) tz_fail("%s: no tokens", what);
    c->n[split] = n;
}

void tz_corpus_load(tz_corpus *c, const cfg *cf, const tz_vocab *vocab) {
    memset(c, 0, sizeof *c);
    tz_tok_kind kind;
    const char *tok = cfg_str(cf, "data", "tokenizer");
    if (!tz_tok_parse(tok, &kind)) tz_fail("%s: [data] tokenizer = '%s' (want char, word or bpe)", cf->path, tok);
    const char *keys[N_SPLITS] = {"path", "valid", "test"};
    char *text[N_SPLITS] = {0};
    size_t len[N_SPLITS] = {0};
    for (int s = 0; s < N_SPLITS; s++) {
        const char *v = cfg_str(cf, "data", keys[s]);
        if (!*v) continue;
        tz_cfg_path(cf, v, c->path[s], sizeof c->path[s]);
        text[s] = read_file(c->path[s], keys[s], &len[s]);
    }
    if (!text[SPLIT_VAL]) { // one file: the first `split` of it trains, the rest validates
        double split = cfg_float(cf, "data", "split");
        if (!(split > 0 && split <= 1)) tz_fail("%s: [data] split = %g must be in (0, 1]", cf->path, split);
        size_t cut = (size_t)(len[SPLIT_TRAIN] * split);
        if (cut == 0) tz_fail("%s: [data] split = %g leaves no training text", cf->path, split);
        if (cut < len[SPLIT_TRAIN]) {
            text[SPLIT_VAL] = text[SPLIT_TRAIN] + cut;
            len[SPLIT_VAL] = len[SPLIT_TRAIN] - cut;
            snprintf(c->path[SPLIT_VAL], sizeof c->path[0], "%.400s (last %.0f%%)", c->path[SPLIT_TRAIN],
                     100 * (1 - split));
        }
        len[SPLIT_TRAIN] = cut;
    }
    if (vocab) {
        if (!tz_vocab_copy(&c->vocab, vocab)) tz_fail("corpus: cannot copy the vocabulary (%s)", tz_vocab_error());
    } else {
        tz_vocab_build(&c->vocab, kind, text[SPLIT_TRAIN], len[SPLIT_TRAIN], (int)cfg_int(cf, "data", "min_count"),
                       (int)cfg_int(cf, "data", "bpe_merges"));
        // Text outside the training split may hold characters (or words) it never had: they get
        // <unk>, whichever the tokenizer.
        for (int s = SPLIT_VAL; s < N_SPLITS; s++) {
            if (!text[s]) continue;
            long n, unk;
            free(tz_vocab_encode(&c->vocab, text[s], len[s], &n, &unk));
            if (unk) {
                fprintf(stderr, "train: %s has %ld %s the training text lacks; they become <unk>\n", c->path[s], unk,
                        kind == TOK_WORD ? "words" : "characters");
                tz_vocab_add_unk(&c->vocab);
            }
        }
    }
    for (int s = 0; s < N_SPLITS; s++)
        if (text[s]) encode(c, s, text[s], len[s], c->path[s]);
    free(text[SPLIT_TRAIN]);
    if (cfg_str(cf, "data", "valid")[0]) free(text[SPLIT_VAL]);
    free(text[SPLIT_TEST]);
}

void tz_corpus_free(tz_corpus *c) {
    for (int s = 0; s < N_SPLITS; s++) free(c->ids[s]);
    tz_vocab_free(&c->vocab);
}
