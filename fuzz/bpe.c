// fuzz/bpe.c: byte-pair encoding learned on arbitrary text (the first byte picks 0 to 15
// merges, and whether <unk> is added as for a validation split), then text -> ids -> text gives
// the same bytes, every id is in range, and a saved and loaded vocabulary (token texts unique)
// gives the same ids.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vocab.h"

static tz_vocab v, w;
static int *ids, *ids2;
static FILE *f;
static char *buf;

static void run(const char *text, size_t len, int merges, int add_unk) {
    size_t size;
    long n, n2, unk;
    tz_vocab_build(&v, TOK_BPE, text, len, 1, merges);
    if (add_unk) tz_vocab_add_unk(&v);
    ids = tz_vocab_encode(&v, text, len, &n, &unk);
    if (unk || n > (long)len) abort();
    for (long i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v.size) abort();
    f = open_memstream(&buf, &size);
    tz_vocab_decode(&v, ids, n, f);
    fclose(f), f = NULL;
    if (size != len || memcmp(buf, text, len)) abort(); // the round trip lost or changed bytes
    free(buf), buf = NULL;
    f = open_memstream(&buf, &size);
    tz_vocab_save(&v, f);
    fclose(f);
    f = fmemopen(buf, size, "r");
    if (!tz_vocab_load(&w, f)) abort(); // a learned vocabulary (unique tokens) loads back
    fclose(f), f = NULL;
    ids2 = tz_vocab_encode(&w, text, len, &n2, &unk);
    if (n2 != n || memcmp(ids, ids2, sizeof(int) * n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    FUZZ_TRY run((const char *)data + 1, size - 1, data[0] % 16, data[0] & 16);
    if (f) fclose(f), f = NULL;
    free(buf), buf = NULL;
    free(ids), ids = NULL;
    free(ids2), ids2 = NULL;
    tz_vocab_free(&v);
    tz_vocab_free(&w);
    return 0;
}
