// Tokenizers on odd input: every byte value (NUL too) in char, word and BPE vocabularies, the
// word tokenizer with a validation split that has words the training split lacks, and the
// vocabulary loader on damaged files (tests/bad/vocab/): each is rejected with its reason.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "helpers.h"
#include "setup.h"

// Saves v and loads it back into w (which must succeed).
static void reload(const tz_vocab *v, tz_vocab *w) {
    cr_assert(tz_vocab_copy(w, v), "a saved vocabulary loads: %s", tz_vocab_error());
}

// text -> ids -> text gives the same bytes, with no <unk>; a saved and loaded copy gives the
// same ids.
static void roundtrip_bytes(tz_tok_kind kind, const char *text, size_t len, int merges) {
    tz_vocab v, w;
    tz_vocab_build(&v, kind, text, len, 1, merges);
    long n, n2, unk;
    int *ids = tz_vocab_encode(&v, text, len, &n, &unk);
    cr_assert_eq(unk, 0, "%s: every byte of the training text has a token", tz_tok_name(kind));
    for (long i = 0; i < n; i++) cr_assert(ids[i] >= 0 && ids[i] < v.size);
    if (kind != TOK_WORD) {
        char *back;
        size_t size;
        FILE *f = open_memstream(&back, &size);
        tz_vocab_decode(&v, ids, n, f);
        fclose(f);
        cr_assert_eq(size, len, "%s: decoding gives back %zu bytes, not %zu", tz_tok_name(kind), size, len);
        cr_assert(!memcmp(back, text, len), "%s: decoding gives back the same bytes", tz_tok_name(kind));
        free(back);
    }
    reload(&v, &w);
    int *ids2 = tz_vocab_encode(&w, text, len, &n2, &unk);
    cr_assert_eq(n2, n);
    cr_assert_arr_eq(ids2, ids, sizeof(int) * n);
    free(ids), free(ids2);
    tz_vocab_free(&v), tz_vocab_free(&w);
}

Test(tokenize, vocabulary_text_that_is_not_one) {
    tz_vocab v;
    cr_assert(!tz_vocab_load_text(&v, ""));
    cr_assert_str_eq(tz_vocab_error(), "line 1: not a tapezoo-vocab header");
    cr_assert(!tz_vocab_load_text(&v, "tapezoo-vocab 1 char 2 0 0\na\n"));
    cr_assert(strstr(tz_vocab_error(), "line"), "%s", tz_vocab_error());
    tz_vocab_free(&v);
}

Test(tokenize, nul_bytes_in_char_and_bpe) {
    // Before: the NUL byte never matched its char token (it became <unk>, or -1), and in BPE it
    // was id -1 and indexed the pair-count table out of bounds.
    static const char text[] = "a\0b a\0b\nab\0\0 a\0b\n\0\0\0";
    roundtrip_bytes(TOK_CHAR, text, sizeof text - 1, 0);
    roundtrip_bytes(TOK_BPE, text, sizeof text - 1, 10);
    roundtrip_bytes(TOK_WORD, text, sizeof text - 1, 0);
    tz_vocab v;
    tz_vocab_build(&v, TOK_BPE, text, sizeof text - 1, 1, 10);
    cr_assert_geq(tz_vocab_find_bytes(&v, "a\0b", 3), 0, "the pair with a NUL merged");
    tz_vocab_free(&v);
}

Test(tokenize, every_byte_value) {
    char text[3 * 256 + 7];
    size_t n = 0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 256; c++) text[n++] = (char)(c * 7 + r); // a permutation of the bytes
    memcpy(text + n, "\xff\xfe\x00\x80\xff\xfe\x00", 7);
    n += 7;
    roundtrip_bytes(TOK_CHAR, text, n, 0);
    roundtrip_bytes(TOK_BPE, text, n, 30);
    roundtrip_bytes(TOK_WORD, text, n, 0);
    tz_vocab v;
    tz_vocab_build(&v, TOK_CHAR, text, n, 1, 0);
    cr_assert_eq(v.size, 256);
    tz_vocab_free(&v);
}

Test(tokenize, bpe_tokens_stay_unique) {
    // "aa"+"a" and "a"+"aa" spell the same bytes; a learned vocabulary never holds both, so it
    // loads back (the loader rejects duplicate tokens).
    const char *text = "aaa aaa aaa aaaa aaaa aaaaa aaaaa aaaaaa aaaaaaa aaaaaaa\naa aaa aa aaa\n";
    for (int merges = 1; merges < 12; merges++) {
        tz_vocab v, w;
        tz_vocab_build(&v, TOK_BPE, text, strlen(text), 1, merges);
        for (int i = 0; i < v.size; i++)
            for (int j = 0; j < i; j++) cr_assert_str_neq(v.tok[i], v.tok[j], "tokens %d and %d", j, i);
        reload(&v, &w);
        tz_vocab_free(&v), tz_vocab_free(&w);
    }
}

Test(tokenize, bpe_merges_the_text_unk) {
    // A text that spells "<unk>": BPE merges it into a token, which then is the <unk> (as the
    // loader sets it), so adding <unk> for a validation split makes no second "<unk>".
    const char *text = "<unk> <unk> <unk> <unk>\n<unk> <unk>\n";
    tz_vocab v, w;
    tz_vocab_build(&v, TOK_BPE, text, strlen(text), 1, 12);
    int id = tz_vocab_find(&v, "<unk>");
    cr_assert_geq(id, 0, "merged into one token");
    cr_assert_eq(v.unk, id);
    cr_assert_eq(tz_vocab_add_unk(&v), id);
    reload(&v, &w);
    cr_assert_eq(w.unk, id);
    cr_assert_eq(w.size, v.size);
    tz_vocab_free(&v), tz_vocab_free(&w);
}

// Writes text to a fresh temporary file; path must hold 64 bytes.
static void temp_file(char *path, const char *text, size_t len) {
    strcpy(path, "/tmp/tapezoo-tok-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

// Loads a corpus with the given [data] lines (after path = the data file).
static void load_corpus(tz_corpus *corpus, const char *text, size_t len, const char *data_keys) {
    char data[64], path[64], cfg_text[512];
    temp_file(data, text, len);
    int n = snprintf(cfg_text, sizeof cfg_text, "[model]\ntype = mlp\n[data]\npath = %s\n%s", data, data_keys);
    temp_file(path, cfg_text, (size_t)n);
    static cfg c;
    tz_cfg_load(&c, path, NULL, 0);
    tz_corpus_load(corpus, &c, NULL);
    unlink(data), unlink(path);
}

Test(tokenize, word_split_with_new_words) {
    // Before: the validation split's "dog" was not in the word vocabulary of the training split,
    // which had no <unk>: "tokens are not in the vocabulary" (tiny Shakespeare with a split).
    const char *text = "the cat sat\nthe cat ran\nthe dog sat\n";
    tz_corpus corpus;
    load_corpus(&corpus, text, strlen(text), "tokenizer = word\nsplit = 0.667\n");
    cr_assert_geq(corpus.vocab.unk, 0, "the word path adds <unk> like the char path");
    cr_assert_eq(tz_vocab_find(&corpus.vocab, "dog"), -1);
    cr_assert_eq(corpus.n[SPLIT_VAL], 4);
    cr_assert_eq(corpus.ids[SPLIT_VAL][1], corpus.vocab.unk);
    cr_assert_eq(corpus.ids[SPLIT_TRAIN][0], tz_vocab_find(&corpus.vocab, "the"), "training ids are as before");
    tz_corpus_free(&corpus);
}

Test(tokenize, binary_corpus) {
    char text[2048];
    for (size_t i = 0; i < sizeof text; i++) text[i] = (char)((i * 131 + i / 7) & 255);
    tz_corpus corpus;
    load_corpus(&corpus, text, sizeof text, "tokenizer = char\n");
    cr_assert_eq(corpus.vocab.size, 256);
    for (int s = 0; s < 2; s++)
        for (long i = 0; i < corpus.n[s]; i++) cr_assert(corpus.ids[s][i] >= 0 && corpus.ids[s][i] < 256);
    tz_corpus_free(&corpus);
}

Test(tokenize, directory_as_data_path) {
    // Before: ftell on a directory gave LONG_MAX, and n + 1 overflowed (UBSan).
    char dir[] = "/tmp/tapezoo-dir-XXXXXX", path[64], cfg_text[256];
    cr_assert(mkdtemp(dir));
    int n = snprintf(cfg_text, sizeof cfg_text, "[model]\ntype = mlp\n[data]\npath = %s\n", dir);
    temp_file(path, cfg_text, (size_t)n);
    static cfg c;
    tz_cfg_load(&c, path, NULL, 0);
    tz_corpus corpus;
    cr_assert(EXPECT_FAIL(tz_corpus_load(&corpus, &c, NULL)));
    cr_assert(strstr(tz_last_error(), "is a directory"), "%s", tz_last_error());
    cr_assert(strstr(tz_last_error(), dir), "names the path: %s", tz_last_error());
    unlink(path), rmdir(dir);
}

// Damaged vocabularies: each is rejected (0), with its reason, and leaves nothing allocated.
static const struct {
    const char *file, *why;
} bad_vocab[] = {
    {"huge_merges.vocab", "merges and base in [0, size]"},
    {"huge_base.vocab", "merges and base in [0, size]"},
    {"merge_out_of_range.vocab", "merge 0: want two token ids below 2"},
    {"merge_negative.vocab", "merge 0: want two token ids below 2"},
    {"merge_wrong_text.vocab", "do not make token 2"},
    {"trailing_garbage.vocab", "data after the last merge"},
    {"truncated_merges.vocab", "ends before merge 1 of 2"},
    {"truncated_tokens.vocab", "ends before token 3 of 5"},
    {"no_final_newline.vocab", "ends before token 2 of 3"},
    {"duplicate.vocab", "token 2 is also token 0"},
    {"negative_size.vocab", "1 <= size"},
    {"zero_size.vocab", "1 <= size"},
    {"size_overflow.vocab", "1 <= size"},
    {"char_two_bytes.vocab", "token 0 is not one byte"},
    {"empty_token.vocab", "token 0 is an empty token"},
    {"bad_escape.vocab", "bad escape"},
    {"trailing_backslash.vocab", "bad escape"},
    {"word_with_space.vocab", "a word with white space"},
    {"word_with_merges.vocab", "has no merges"},
    {"raw_nul.vocab", "raw NUL byte"},
    {"unknown_kind.vocab", "unknown tokenizer 'morse'"},
    {"version2.vocab", "want 'tapezoo-vocab 1"},
    {"double_space.vocab", "want 'tapezoo-vocab 1"},
    {"empty.vocab", "not a tapezoo-vocab header"},
    {"zip.vocab", "not a tapezoo-vocab header"},
    {"header_nul.vocab", "not a tapezoo-vocab header"},
    {"merge_nul.vocab", "merge 0: want two token ids below 2"},
};

Test(tokenize, damaged_vocabularies) {
    for (size_t i = 0; i < sizeof bad_vocab / sizeof *bad_vocab; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", TZ_BAD_VOCAB, bad_vocab[i].file);
        FILE *f = fopen(path, "rb");
        cr_assert(f, "%s", path);
        tz_vocab v;
        int ok = tz_vocab_load(&v, f);
        fclose(f);
        cr_expect_not(ok, "%s loads", bad_vocab[i].file);
        if (ok) tz_vocab_free(&v);
        else {
            cr_expect(strstr(tz_vocab_error(), bad_vocab[i].why), "%s: '%s' does not say '%s'", bad_vocab[i].file,
                      tz_vocab_error(), bad_vocab[i].why);
            cr_expect(!v.tok && !v.len && !v.table && !v.merges && v.size == 0, "%s: nothing left allocated",
                      bad_vocab[i].file);
        }
    }
}

Test(tokenize, odd_but_valid_vocabularies) {
    // A NUL byte token (escaped), a 5000-byte word, and <special> tokens load and encode in range.
    const char *nul = "tapezoo-vocab 1 char 3 0 0\n\\0\na\n<pad>\n";
    FILE *f = fmemopen((void *)nul, strlen(nul), "r");
    tz_vocab v;
    cr_assert(tz_vocab_load(&v, f), "%s", tz_vocab_error());
    fclose(f);
    long n, unk;
    int *ids = tz_vocab_encode(&v, "a\0a", 3, &n, &unk);
    cr_assert(n == 3 && unk == 0 && ids[0] == 1 && ids[1] == 0 && ids[2] == 1);
    free(ids);
    tz_vocab_free(&v);
    static char text[6000] = "tapezoo-vocab 1 word 2 0 0\n<eos>\n";
    size_t len = strlen(text);
    memset(text + len, 'x', 5000);
    text[len + 5000] = '\n';
    f = fmemopen(text, strlen(text), "r");
    cr_assert(tz_vocab_load(&v, f), "%s", tz_vocab_error());
    fclose(f);
    cr_assert_eq(v.len[1], 5000);
    cr_assert_eq(v.eos, 0);
    tz_vocab_free(&v);
}
