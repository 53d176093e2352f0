// bpe.c: byte-pair encoding (Sennrich, Haddow & Birch 2016): start from the characters of the
// training text and repeatedly merge the most frequent adjacent pair into a new token. Merges
// never join across a line break. Encoding replays the merges in the order they were learned.
#include <stdlib.h>
#include <string.h>

#include "tz.h"
#include "vocab.h"

#define BPE_MAX_VOCAB 4096 // pair counts are a dense (V x V) table

// Replaces every non-overlapping (a, b), left to right, by id; returns the new length.
static long merge_pair(int *ids, long n, int a, int b, int id) {
    long o = 0;
    for (long i = 0; i < n; i++) {
        if (i + 1 < n && ids[i] == a && ids[i + 1] == b) ids[o++] = id, i++;
        else ids[o++] = ids[i];
    }
    return o;
}

static int *char_ids(const tz_vocab *v, const char *text, size_t len, long *n_unk) {
    int *ids = malloc(sizeof(int) * (len + 1)), byte_id[256];
    if (!ids) tz_fail("bpe: out of memory for %zu characters", len);
    for (int c = 0; c < 256; c++) {
        char s[2] = {(char)c, 0};
        byte_id[c] = c ? tz_vocab_find(v, s) : -1;
    }
    *n_unk = 0;
    for (size_t i = 0; i < len; i++) {
        ids[i] = byte_id[(unsigned char)text[i]];
        if (ids[i] < 0) ids[i] = v->unk, ++*n_unk;
    }
    return ids;
}

void tz_bpe_learn(tz_vocab *v, const char *text, size_t len, int merges) {
    int V = v->size + merges;
    if (merges < 0 || V > BPE_MAX_VOCAB)
        tz_fail("bpe: %d merges on %d characters make %d tokens (at most %d)", merges, v->size, V, BPE_MAX_VOCAB);
    long n, unk;
    int *ids = char_ids(v, text, len, &unk);
    n = (long)len;
    int *count = malloc(sizeof(int) * V * V), newline = tz_vocab_find(v, "\n");
    v->base = v->size;
    v->merges = malloc(sizeof(int) * 2 * (merges + 1));
    for (int k = 0; k < merges; k++) {
        memset(count, 0, sizeof(int) * V * V);
        for (long i = 0; i + 1 < n; i++)
            if (ids[i] != newline && ids[i + 1] != newline) count[ids[i] * V + ids[i + 1]]++;
        int best = -1, best_count = 1; // a pair seen once is not worth a token
        for (int p = 0; p < V * V; p++)
            if (count[p] > best_count) best = p, best_count = count[p];
        if (best < 0) break; // nothing repeats any more
        int a = best / V, b = best % V;
        size_t la = strlen(v->tok[a]), lb = strlen(v->tok[b]);
        char *s = malloc(la + lb + 1);
        memcpy(s, v->tok[a], la);
        memcpy(s + la, v->tok[b], lb + 1);
        int id = tz_vocab_add_token(v, s);
        free(s);
        v->merges[2 * k] = a, v->merges[2 * k + 1] = b;
        v->n_merges = k + 1;
        n = merge_pair(ids, n, a, b, id);
    }
    free(count);
    free(ids);
}

int *tz_bpe_encode(const tz_vocab *v, const char *text, size_t len, long *n_out, long *n_unk) {
    int *ids = char_ids(v, text, len, n_unk);
    long n = (long)len;
    for (int k = 0; k < v->n_merges; k++) n = merge_pair(ids, n, v->merges[2 * k], v->merges[2 * k + 1], v->base + k);
    *n_out = n;
    return ids;
}
