// fuzz/bpe.c: byte-pair encoding learned on arbitrary text (the first byte picks 0 to 15
// merges, and whether <unk> is added as for a validation split), then text -> ids -> text gives
// the same bytes, every id is in range, and a saved and loaded vocabulary (token texts unique)
// is the same and gives the same ids.
#include "fuzz.h"

static tz_vocab v;
static int *ids;

static void run(const char *text, size_t len, int merges, int add_unk) {
    long n, unk;
    tz_vocab_build(&v, TOK_BPE, text, len, 1, merges);
    if (add_unk) tz_vocab_add_unk(&v);
    ids = tz_vocab_encode(&v, text, len, &n, &unk);
    if (unk || n > (long)len) abort();
    for (long i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v.size) abort();
    fuzz_check_decode(&v, ids, n, text, len);
    fuzz_check_reload(&v, text, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    FUZZ_TRY run((const char *)data + 1, size - 1, data[0] % 16, data[0] & 16);
    fuzz_roundtrip_free();
    free(ids), ids = NULL;
    tz_vocab_free(&v);
    return 0;
}
