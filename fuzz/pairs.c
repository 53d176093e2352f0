// Fuzz harness of the pairs reader (train/pairs.c): arbitrary bytes as a source<TAB>target file,
// read from memory; what it accepts is then split, given vocabularies, encoded and batched.
#include "fuzz.h"
#include "pairs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // The first byte picks the options, so the fuzzer explores them too.
    tz_prep o = {1, 1};
    int max_len = 10;
    if (size > 0) {
        o.lowercase = data[0] & 1, o.split_punct = (data[0] >> 1) & 1, max_len = 1 + (data[0] >> 2);
        data++, size--;
    }
    tz_pair_text t = {0};
    tz_pairs p = {0};
    tz_pair_batcher b = {0};
    FUZZ_TRY {
        tz_pairs_parse(&t, "fuzz", (const char *)data, size, &o, 1, max_len);
        tz_pairs_opts po = {TOK_WORD, 1, 0, 0.8, 0.1, 1};
        p.kind = TZ_DATA_PAIRS;
        tz_pairs_build(&p, &t, &po, NULL, NULL);
        for (int s = 0; s < N_SPLITS; s++) {
            tz_pair_batcher_init_eval(&b, &p.set[s], 3);
            tz_batch x;
            while (tz_pair_batcher_next(&b, &x))
                for (int r = 0; r < x.B; r++)
                    if (x.src_len[r] < 1 || x.src_len[r] > x.S || x.x[r * x.T] != TZ_BOS) __builtin_trap();
            tz_pair_batcher_free(&b);
        }
    }
    tz_pair_batcher_free(&b);
    tz_pair_text_free(&t);
    tz_pairs_free(&p);
    return 0;
}
