// bpe.c: byte-pair encoding (Sennrich, Haddow & Birch 2016): start from the characters (bytes)
// of the training text and repeatedly merge the most frequent adjacent pair into a new token.
// Merges never join across a line break, and never make a text that already is a token (two
// pairs can spell the same bytes: "aa"+"a" and "a"+"aa"), so token texts stay unique. Encoding
// replays the merges in the order they were learned.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"
#include "vocab.h"

#define BPE_MAX_VOCAB 4096 // pair counts are a dense (V x V) table

static void *bpe_alloc(size_t count, size_t size) {
    void *p = count <= SIZE_MAX / size ? malloc(count * size + 1) : NULL;
    if (!p) tz_fail("bpe: out of memory for %zu x %zu bytes", count, size);
    return p;
}

// Replaces every non-overlapping (a, b), left to right, by id; returns the new length.
static long merge_pair(int *ids, long n, int a, int b, int id) {
    long o = 0;
    for (long i = 0; i < n; i++) {
        if (i + 1 < n && ids[i] == a && ids[i + 1] == b) ids[o++] = id, i++;
        else ids[o++] = ids[i];
    }
    return o;
}

// The id of each byte (every value 0..255, NUL too), or <unk> (-1 when there is none).
static int *char_ids(const tz_vocab *v, const char *text, size_t len, long *n_unk) {
    int *ids = bpe_alloc(len + 1, sizeof(int)), byte_id[256];
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        byte_id[c] = tz_vocab_find_bytes(v, &ch, 1);
    }
    *n_unk = 0;
    for (size_t i = 0; i < len; i++) {
        ids[i] = byte_id[(unsigned char)text[i]];
        if (ids[i] < 0) ids[i] = v->unk, ++*n_unk;
    }
    return ids;
}

// Whether ids[i], ids[i + 1] is a pair that may merge (no line break, no <unk> of -1).
static int mergeable(const int *ids, long i, int newline) {
    return ids[i] >= 0 && ids[i + 1] >= 0 && ids[i] != newline && ids[i + 1] != newline;
}

// The most frequent pair seen at least twice whose joined text is not a token yet: its index in
// count (a * V + b), or -1. Ties go to the smallest index (what a scan of the whole table in order
// would pick); only the pairs of the text are visited, so a merge costs O(n), not O(V^2). Pairs
// that would duplicate a token are zeroed on the way.
static int best_pair(const tz_vocab *v, const int *ids, long n, int newline, int *count, int V, char *joined) {
    for (;;) {
        int best = -1, best_count = 1; // a pair seen once is not worth a token
        for (long i = 0; i + 1 < n; i++) {
            if (!mergeable(ids, i, newline)) continue;
            int p = ids[i] * V + ids[i + 1];
            if (count[p] > best_count || (count[p] == best_count && p < best)) best = p, best_count = count[p];
        }
        if (best < 0) return -1;
        int a = best / V, b = best % V;
        memcpy(joined, v->tok[a], v->len[a]);
        memcpy(joined + v->len[a], v->tok[b], v->len[b]);
        if (tz_vocab_find_bytes(v, joined, v->len[a] + v->len[b]) < 0) return best;
        count[best] = 0;
    }
}

void tz_bpe_learn(tz_vocab *v, const char *text, size_t len, int merges) {
    if (merges < 0 || merges > BPE_MAX_VOCAB - v->size)
        tz_fail("bpe: %d merges on %d characters make %ld tokens (want 0 to %d)", merges, v->size,
                (long)v->size + merges, BPE_MAX_VOCAB);
    int V = v->size + merges;
    long n = (long)len, unk;
    int *ids = char_ids(v, text, len, &unk);
    int *count = calloc((size_t)V * V, sizeof(int)), newline = tz_vocab_find_bytes(v, "\n", 1);
    // A token is at most len bytes long (it spells part of the text).
    char *joined = malloc(len + 1);
    v->base = v->size;
    v->merges = malloc(sizeof(int) * 2 * ((size_t)merges + 1));
    if (!count || !joined || !v->merges) {
        free(ids), free(count), free(joined);
        tz_fail("bpe: out of memory for %d merges over %zu characters", merges, len);
    }
    for (int k = 0; k < merges; k++) {
        for (long i = 0; i + 1 < n; i++)
            if (mergeable(ids, i, newline)) count[ids[i] * V + ids[i + 1]]++;
        int best = best_pair(v, ids, n, newline, count, V, joined);
        for (long i = 0; i + 1 < n; i++) // back to all zeros for the next merge
            if (mergeable(ids, i, newline)) count[ids[i] * V + ids[i + 1]] = 0;
        if (best < 0) break; // nothing repeats any more
        int a = best / V, b = best % V;
        int id = tz_vocab_add_bytes(v, joined, v->len[a] + v->len[b]);
        v->merges[2 * k] = a, v->merges[2 * k + 1] = b;
        v->n_merges = k + 1;
        n = merge_pair(ids, n, a, b, id);
    }
    free(joined);
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
