// fuzz/corpus.c: char and word vocabularies built from arbitrary text, as the corpus reader does:
// learned on the first 90 %, the rest encoded with <unk> added for what the training part lacks.
// Every id is in range, the training text has no <unk>, char ids decode to the same bytes, and a
// saved and loaded vocabulary is the same and gives the same ids. The first byte picks the word
// min_count.
#include "fuzz.h"

static tz_vocab v;
static int *ids;

static void run(tz_tok_kind kind, const char *text, size_t len, int min_count) {
    size_t cut = len * 9 / 10;
    long n, unk;
    tz_vocab_build(&v, kind, text, cut, min_count, 0);
    ids = tz_vocab_encode(&v, text, cut, &n, &unk);
    if (unk && (kind == TOK_CHAR || min_count <= 1)) abort(); // the training text is all known
    free(ids), ids = NULL;
    ids = tz_vocab_encode(&v, text, len, &n, &unk);
    if (unk) { // as the corpus reader does for the validation split
        free(ids), ids = NULL;
        tz_vocab_add_unk(&v);
        ids = tz_vocab_encode(&v, text, len, &n, &unk);
    }
    for (long i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v.size) abort();
    if (kind == TOK_CHAR && n != (long)len) abort();
    if (kind == TOK_CHAR && v.unk < 0) fuzz_check_decode(&v, ids, n, text, len); // every byte was known
    fuzz_check_reload(&v, text, len);
}

static void clean(void) {
    fuzz_roundtrip_free();
    free(ids), ids = NULL;
    tz_vocab_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int min_count = 1 + data[0] % 3;
    const char *text = (const char *)data + 1;
    FUZZ_TRY run(TOK_CHAR, text, size - 1, 1);
    clean();
    FUZZ_TRY run(TOK_WORD, text, size - 1, min_count);
    clean();
    return 0;
}
