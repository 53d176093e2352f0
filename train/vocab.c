// vocab.c: char and word tokenizers, the token table, and the vocabulary's file format.
// BPE's learning and encoding are in bpe.c.
#include "vocab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

static const char *kind_names[] = {"char", "word", "bpe"};
const char *tz_tok_name(tz_tok_kind kind) { return kind_names[kind]; }
int tz_tok_parse(const char *name, tz_tok_kind *kind) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, kind_names[i])) return *kind = (tz_tok_kind)i, 1;
    return 0;
}

static uint32_t hash(const char *s, size_t n) {
    uint32_t h = 2166136261u; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

// Slot of the token s[0..n) in the table: where it is, or the empty slot where it would go.
static int slot(const tz_vocab *v, const char *s, size_t n) {
    uint32_t i = hash(s, n) & (uint32_t)(v->table_cap - 1);
    while (v->table[i] >= 0) {
        const char *t = v->tok[v->table[i]];
        if (strlen(t) == n && !memcmp(t, s, n)) break;
        i = (i + 1) & (uint32_t)(v->table_cap - 1);
    }
    return (int)i;
}

static void rehash(tz_vocab *v) {
    free(v->table);
    v->table_cap = 64;
    while (v->table_cap < 2 * v->size + 2) v->table_cap *= 2;
    v->table = malloc(sizeof(int) * v->table_cap);
    if (!v->table) tz_fail("vocab: out of memory");
    for (int i = 0; i < v->table_cap; i++) v->table[i] = -1;
    for (int id = 0; id < v->size; id++) v->table[slot(v, v->tok[id], strlen(v->tok[id]))] = id;
}

// Appends a token (no duplicate check); the table is rebuilt by the caller.
static int push(tz_vocab *v, const char *s, size_t n) {
    if ((v->size & (v->size - 1)) == 0) { // capacity doubles at powers of two
        v->tok = realloc(v->tok, sizeof *v->tok * (v->size ? 2 * v->size : 1));
        if (!v->tok) tz_fail("vocab: out of memory");
    }
    char *t = malloc(n + 1);
    if (!t) tz_fail("vocab: out of memory");
    memcpy(t, s, n);
    t[n] = 0;
    v->tok[v->size] = t;
    return v->size++;
}

int tz_vocab_find(const tz_vocab *v, const char *tok) {
    if (!v->table) return -1;
    return v->table[slot(v, tok, strlen(tok))];
}

int tz_vocab_add_token(tz_vocab *v, const char *tok) {
    int id = push(v, tok, strlen(tok));
    if (2 * v->size + 2 > v->table_cap) rehash(v);
    else v->table[slot(v, tok, strlen(tok))] = id;
    return id;
}

int tz_vocab_add_unk(tz_vocab *v) {
    if (v->unk >= 0) return v->unk;
    v->unk = push(v, "<unk>", 5);
    rehash(v);
    return v->unk;
}

static void build_chars(tz_vocab *v, const char *text, size_t len) {
    long seen[256] = {0};
    for (size_t i = 0; i < len; i++) seen[(unsigned char)text[i]]++;
    for (int c = 0; c < 256; c++)
        if (seen[c]) {
            char ch = (char)c;
            push(v, &ch, 1);
        }
}

// Word tokens in text order: calls fn for each word and for each line end ("<eos>").
typedef void (*word_fn)(void *ctx, const char *w, size_t n);
static void each_word(const char *text, size_t len, word_fn fn, void *ctx) {
    size_t i = 0;
    while (i < len) {
        if (text[i] == '\n') {
            fn(ctx, "<eos>", 5);
            i++;
        } else if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r') {
            i++;
        } else {
            size_t j = i;
            while (j < len && text[j] != ' ' && text[j] != '\t' && text[j] != '\r' && text[j] != '\n') j++;
            fn(ctx, text + i, j - i);
            i = j;
        }
    }
}

typedef struct { tz_vocab *v; long *count; long cap; } count_ctx;
static void count_word(void *vctx, const char *w, size_t n) {
    count_ctx *c = vctx;
    int s = slot(c->v, w, n), id = c->v->table[s];
    if (id < 0) {
        id = push(c->v, w, n);
        if (id >= c->cap) {
            c->cap = 2 * c->cap + 1024;
            c->count = realloc(c->count, sizeof(long) * c->cap);
        }
        c->count[id] = 0;
        if (2 * c->v->size + 2 > c->v->table_cap) rehash(c->v);
        else c->v->table[s] = id;
    }
    c->count[id]++;
}

static const long *sort_counts;
static int by_count(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_counts[x] != sort_counts[y]) return sort_counts[x] > sort_counts[y] ? -1 : 1;
    return x - y; // ties: first seen first, so the order is deterministic
}

static void build_words(tz_vocab *v, const char *text, size_t len, int min_count) {
    tz_vocab all = {.unk = -1, .eos = -1};
    rehash(&all);
    count_ctx c = {&all, NULL, 0};
    each_word(text, len, count_word, &c);
    int *order = malloc(sizeof(int) * (all.size + 1));
    for (int i = 0; i < all.size; i++) order[i] = i;
    sort_counts = c.count;
    qsort(order, all.size, sizeof *order, by_count);
    int has_unk = tz_vocab_find(&all, "<unk>") >= 0, rare = 0;
    for (int i = 0; i < all.size; i++) {
        int id = order[i];
        if (c.count[id] >= min_count || !strcmp(all.tok[id], "<unk>")) push(v, all.tok[id], strlen(all.tok[id]));
        else rare = 1;
    }
    rehash(v);
    if (rare && !has_unk) tz_vocab_add_unk(v);
    v->unk = tz_vocab_find(v, "<unk>");
    v->eos = tz_vocab_find(v, "<eos>");
    free(order);
    free(c.count);
    tz_vocab_free(&all);
}

void tz_bpe_learn(tz_vocab *v, const char *text, size_t len, int merges); // bpe.c
int *tz_bpe_encode(const tz_vocab *v, const char *text, size_t len, long *n_out, long *n_unk);

void tz_vocab_build(tz_vocab *v, tz_tok_kind kind, const char *text, size_t len, int min_count, int bpe_merges) {
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->unk = v->eos = -1;
    if (kind == TOK_WORD) build_words(v, text, len, min_count < 1 ? 1 : min_count);
    else {
        build_chars(v, text, len);
        rehash(v);
        if (kind == TOK_BPE) tz_bpe_learn(v, text, len, bpe_merges);
    }
    if (v->size == 0) tz_fail("vocab: the training text has no tokens");
}

typedef struct { const tz_vocab *v; int *ids; long n, cap, unk; } enc_ctx;
static void encode_word(void *vctx, const char *w, size_t n) {
    enc_ctx *e = vctx;
    int id = e->v->table[slot(e->v, w, n)];
    if (id < 0) id = e->v->unk, e->unk++;
    if (e->n == e->cap) e->ids = realloc(e->ids, sizeof(int) * (e->cap = 2 * e->cap + 4096));
    e->ids[e->n++] = id;
}

int *tz_vocab_encode(const tz_vocab *v, const char *text, size_t len, long *n_out, long *n_unk) {
    if (v->kind == TOK_BPE) return tz_bpe_encode(v, text, len, n_out, n_unk);
    enc_ctx e = {v, NULL, 0, 0, 0};
    if (v->kind == TOK_WORD) each_word(text, len, encode_word, &e);
    else {
        e.ids = malloc(sizeof(int) * (len + 1));
        int byte_id[256];
        for (int c = 0; c < 256; c++) {
            char ch = (char)c;
            byte_id[c] = v->table[slot(v, &ch, 1)];
        }
        for (size_t i = 0; i < len; i++) {
            int id = byte_id[(unsigned char)text[i]];
            if (id < 0) id = v->unk, e.unk++;
            e.ids[e.n++] = id;
        }
    }
    if (!e.ids) e.ids = malloc(sizeof(int));
    *n_out = e.n;
    *n_unk = e.unk;
    return e.ids;
}

void tz_vocab_decode(const tz_vocab *v, const int *ids, long n, FILE *out) {
    for (long i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->size) continue;
        if (v->kind != TOK_WORD) fputs(v->tok[ids[i]], out);
        else if (ids[i] == v->eos) fputc('\n', out);
        else fprintf(out, "%s%s", v->tok[ids[i]], i + 1 < n && ids[i + 1] != v->eos ? " " : "");
    }
}

// File format: "tapezoo-vocab 1 <kind> <size> <n_merges> <base>", then one token per line with
// \\, \n, \r, \t escaped, then one "a b" line per merge.
static void put_escaped(const char *s, FILE *f) {
    for (; *s; s++) {
        if (*s == '\\') fputs("\\\\", f);
        else if (*s == '\n') fputs("\\n", f);
        else if (*s == '\r') fputs("\\r", f);
        else if (*s == '\t') fputs("\\t", f);
        else fputc(*s, f);
    }
    fputc('\n', f);
}

void tz_vocab_save(const tz_vocab *v, FILE *f) {
    fprintf(f, "tapezoo-vocab 1 %s %d %d %d\n", kind_names[v->kind], v->size, v->n_merges, v->base);
    for (int i = 0; i < v->size; i++) put_escaped(v->tok[i], f);
    for (int k = 0; k < v->n_merges; k++) fprintf(f, "%d %d\n", v->merges[2 * k], v->merges[2 * k + 1]);
}

int tz_vocab_load(tz_vocab *v, FILE *f) {
    char kind[16];
    int size, n_merges, base, version;
    memset(v, 0, sizeof *v);
    v->unk = v->eos = -1;
    if (fscanf(f, "tapezoo-vocab %d %15s %d %d %d", &version, kind, &size, &n_merges, &base) != 5 || version != 1 ||
        !tz_tok_parse(kind, &v->kind) || size <= 0 || n_merges < 0 || fgetc(f) != '\n')
        return 0;
    char line[4096];
    for (int i = 0; i < size; i++) {
        if (!fgets(line, sizeof line, f)) return 0;
        size_t n = strlen(line), o = 0;
        if (n == 0 || line[n - 1] != '\n') return 0;
        line[--n] = 0;
        for (size_t k = 0; k < n; k++) {
            if (line[k] != '\\') line[o++] = line[k];
            else if (++k < n) line[o++] = line[k] == 'n' ? '\n' : line[k] == 'r' ? '\r' : line[k] == 't' ? '\t' : line[k];
        }
        push(v, line, o);
    }
    v->n_merges = n_merges;
    v->base = base;
    v->merges = malloc(sizeof(int) * 2 * (n_merges + 1));
    for (int k = 0; k < n_merges; k++)
        if (fscanf(f, "%d %d", &v->merges[2 * k], &v->merges[2 * k + 1]) != 2) return 0;
    rehash(v);
    v->unk = tz_vocab_find(v, "<unk>");
    v->eos = v->kind == TOK_WORD ? tz_vocab_find(v, "<eos>") : -1;
    return 1;
}

void tz_vocab_free(tz_vocab *v) {
    for (int i = 0; i < v->size; i++) free(v->tok[i]);
    free(v->tok);
    free(v->table);
    free(v->merges);
    memset(v, 0, sizeof *v);
}
