// fuzz/vocab.c: the vocabulary loader (tz_vocab_load) on arbitrary bytes. A vocabulary that
// loads must encode any text (the input itself, and a fixed one with a NUL) to ids in range,
// decode them, and save to a text that loads back to the same vocabulary.
#include "fuzz.h"

// Owned here, freed after FUZZ_TRY (a tz_fail jumps out of the middle).
static tz_vocab v;
static int *ids;
static FILE *in, *out;
static char *decoded;

static void encode_checked(const tz_vocab *voc, const char *text, size_t len) {
    long n, unk;
    ids = tz_vocab_encode(voc, text, len, &n, &unk);
    for (long i = 0; i < n; i++)
        if (ids[i] >= voc->size || ids[i] < -1 || (ids[i] == -1 && voc->unk >= 0)) abort(); // an id out of range
    size_t size;
    out = open_memstream(&decoded, &size);
    tz_vocab_decode(voc, ids, n, out);
    fclose(out), out = NULL;
    free(decoded), decoded = NULL;
    free(ids), ids = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_TRY {
        in = fmemopen((void *)data, size ? size : 1, "r");
        if (in && size && tz_vocab_load(&v, in)) {
            static const char text[] = "ROMEO:\nO, to\0be or not\tto be\r\n\xc3\xa9\xff";
            encode_checked(&v, text, sizeof text - 1);
            encode_checked(&v, (const char *)data, size);
            fuzz_check_reload(&v, text, sizeof text - 1);
        }
    }
    if (in) fclose(in), in = NULL;
    if (out) fclose(out), out = NULL;
    fuzz_roundtrip_free();
    free(ids), ids = NULL;
    free(decoded), decoded = NULL;
    tz_vocab_free(&v);
    return 0;
}
