// vocab.c: char and word tokenizers, the token table, and the vocabulary's file format.
// BPE's learning and encoding are in bpe.c.
#include "vocab.h"

#include <errno.h>
#include <stdarg.h>
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

// Every allocation of the tokenizers goes through here: a failure is one clear line, never a
// NULL written through. On failure p stays owned by the caller's structure (freed with it).
static void *grow(void *p, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) tz_fail("vocab: out of memory (%zu x %zu bytes)", count, size);
    size_t bytes = count * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) tz_fail("vocab: out of memory for %zu bytes", bytes);
    return q;
}

static uint32_t hash(const char *s, size_t n) {
    uint32_t h = 2166136261u; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

// Slot of the token s[0..n) in the table: where it is, or the empty slot where it would go.
static int slot(const tz_vocab *v, const char *s, size_t n) {
    uint32_t mask = (uint32_t)v->table_cap - 1, i = hash(s, n) & mask;
    while (v->table[i] >= 0) {
        int id = v->table[i];
        if (v->len[id] == n && !memcmp(v->tok[id], s, n)) break;
        i = (i + 1) & mask;
    }
    return (int)i;
}

static void rehash(tz_vocab *v) {
    int cap = 64;
    while (cap < 2 * v->size + 2) cap *= 2; // size <= TZ_VOCAB_MAX: no overflow
    v->table = grow(v->table, (size_t)cap, sizeof(int));
    v->table_cap = cap;
    for (int i = 0; i < v->table_cap; i++) v->table[i] = -1;
    for (int id = 0; id < v->size; id++) v->table[slot(v, v->tok[id], v->len[id])] = id;
}

// Appends a token (no duplicate check); the table is rebuilt by the caller.
static int push(tz_vocab *v, const char *s, size_t n) {
    if (v->size >= TZ_VOCAB_MAX) tz_fail("vocab: more than %d tokens", TZ_VOCAB_MAX);
    if ((v->size & (v->size - 1)) == 0) { // capacity doubles at powers of two
        size_t cap = v->size ? 2 * (size_t)v->size : 1;
        v->tok = grow(v->tok, cap, sizeof *v->tok);
        v->len = grow(v->len, cap, sizeof *v->len);
    }
    if (n == SIZE_MAX) tz_fail("vocab: out of memory");
    char *t = grow(NULL, n + 1, 1);
    memcpy(t, s, n);
    t[n] = 0;
    v->tok[v->size] = t;
    v->len[v->size] = n;
    return v->size++;
}

int tz_vocab_find_bytes(const tz_vocab *v, const char *s, size_t n) {
    if (!v->table) return -1;
    return v->table[slot(v, s, n)];
}
int tz_vocab_find(const tz_vocab *v, const char *tok) { return tz_vocab_find_bytes(v, tok, strlen(tok)); }

int tz_vocab_add_bytes(tz_vocab *v, const char *s, size_t n) {
    int id = push(v, s, n);
    if (2 * v->size + 2 > v->table_cap) rehash(v);
    else v->table[slot(v, s, n)] = id;
    return id;
}
int tz_vocab_add_token(tz_vocab *v, const char *tok) { return tz_vocab_add_bytes(v, tok, strlen(tok)); }

int tz_vocab_add_unk(tz_vocab *v) {
    if (v->unk < 0) v->unk = tz_vocab_find(v, "<unk>"); // BPE may have merged the text "<unk>"
    if (v->unk >= 0) return v->unk;
    return v->unk = tz_vocab_add_bytes(v, "<unk>", 5);
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

typedef struct {
    tz_vocab *v;
    long *count;
    long cap;
} count_ctx;
static void count_word(void *vctx, const char *w, size_t n) {
    count_ctx *c = vctx;
    int s = slot(c->v, w, n), id = c->v->table[s];
    if (id < 0) {
        id = push(c->v, w, n);
        if (id >= c->cap) {
            c->count = grow(c->count, (size_t)(2 * c->cap + 1024), sizeof(long));
            c->cap = 2 * c->cap + 1024;
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
    int *order = grow(NULL, (size_t)all.size + 1, sizeof(int));
    for (int i = 0; i < all.size; i++) order[i] = i;
    sort_counts = c.count;
    qsort(order, all.size, sizeof *order, by_count);
    int has_unk = tz_vocab_find(&all, "<unk>") >= 0, rare = 0;
    for (int i = 0; i < all.size; i++) {
        int id = order[i];
        if (c.count[id] >= min_count || (all.len[id] == 5 && !memcmp(all.tok[id], "<unk>", 5)))
            push(v, all.tok[id], all.len[id]);
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
        v->unk = tz_vocab_find(v, "<unk>"); // as the loader sets it, should BPE merge the text "<unk>"
    }
    if (v->size == 0) tz_fail("vocab: the training text has no tokens");
}

typedef struct {
    const tz_vocab *v;
    int *ids;
    long n, cap, unk;
} enc_ctx;
static void encode_word(void *vctx, const char *w, size_t n) {
    enc_ctx *e = vctx;
    int id = tz_vocab_find_bytes(e->v, w, n);
    if (id < 0) id = e->v->unk, e->unk++;
    if (e->n == e->cap) {
        e->ids = grow(e->ids, (size_t)(2 * e->cap + 4096), sizeof(int));
        e->cap = 2 * e->cap + 4096;
    }
    e->ids[e->n++] = id;
}

int *tz_vocab_encode(const tz_vocab *v, const char *text, size_t len, long *n_out, long *n_unk) {
    if (v->kind == TOK_BPE) return tz_bpe_encode(v, text, len, n_out, n_unk);
    enc_ctx e = {v, NULL, 0, 0, 0};
    if (v->kind == TOK_WORD) each_word(text, len, encode_word, &e);
    else {
        e.ids = grow(NULL, len + 1, sizeof(int));
        int byte_id[256];
        for (int c = 0; c < 256; c++) {
            char ch = (char)c;
            byte_id[c] = tz_vocab_find_bytes(v, &ch, 1);
        }
        for (size_t i = 0; i < len; i++) {
            int id = byte_id[(unsigned char)text[i]];
            if (id < 0) id = v->unk, e.unk++;
            e.ids[e.n++] = id;
        }
    }
    if (!e.ids) e.ids = grow(NULL, 1, sizeof(int));
    *n_out = e.n;
    *n_unk = e.unk;
    return e.ids;
}

void tz_vocab_decode(const tz_vocab *v, const int *ids, long n, FILE *out) {
    for (long i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->size) continue;
        if (v->kind == TOK_WORD && ids[i] == v->eos) {
            fputc('\n', out);
            continue;
        }
        fwrite(v->tok[ids[i]], 1, v->len[ids[i]], out);
        if (v->kind == TOK_WORD && i + 1 < n && ids[i + 1] != v->eos) fputc(' ', out);
    }
}

// File format: "tapezoo-vocab 1 <kind> <size> <n_merges> <base>", then one token per line with
// \\, \n, \r, \t and the NUL byte (\0) escaped, then one "a b" line per merge.
static void put_escaped(const char *s, size_t n, FILE *f) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') fputs("\\\\", f);
        else if (s[i] == '\n') fputs("\\n", f);
        else if (s[i] == '\r') fputs("\\r", f);
        else if (s[i] == '\t') fputs("\\t", f);
        else if (s[i] == 0) fputs("\\0", f);
        else fputc(s[i], f);
    }
    fputc('\n', f);
}

void tz_vocab_save(const tz_vocab *v, FILE *f) {
    fprintf(f, "tapezoo-vocab 1 %s %d %d %d\n", kind_names[v->kind], v->size, v->n_merges, v->base);
    for (int i = 0; i < v->size; i++) put_escaped(v->tok[i], v->len[i], f);
    for (int k = 0; k < v->n_merges; k++) fprintf(f, "%d %d\n", v->merges[2 * k], v->merges[2 * k + 1]);
}

static _Thread_local char load_error[200];
const char *tz_vocab_error(void) { return load_error; }

// Rejects a malformed file: frees all that was read, says why, returns 0.
__attribute__((format(printf, 3, 4))) static int reject(tz_vocab *v, char *line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(load_error, sizeof load_error, fmt, ap);
    va_end(ap);
    free(line);
    tz_vocab_free(v);
    v->unk = v->eos = -1;
    return 0;
}

// Reads a decimal integer in [lo, hi] at *p (no sign but '-', no spaces) and moves past it.
static int parse_int(const char **p, long lo, long hi, int *out) {
    const char *s = *p;
    if (!(*s >= '0' && *s <= '9') && !(*s == '-' && s[1] >= '0' && s[1] <= '9')) return 0;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || x < lo || x > hi) return 0;
    *out = (int)x;
    *p = end;
    return 1;
}

// One line into *line (getline's buffer), its '\n' removed; -1 at the end of the file, -2 for a
// last line without '\n' (a truncated file).
static long read_line(FILE *f, char **line, size_t *cap) {
    ssize_t n = getline(line, cap, f);
    if (n < 0) return -1;
    if (n == 0 || (*line)[n - 1] != '\n') return -2;
    (*line)[--n] = 0;
    return (long)n;
}

// Special tokens are <name>: <unk>, <eos>, a translation vocabulary's <pad> and <bos>.
static int special(const char *s, size_t n) { return n >= 3 && s[0] == '<' && s[n - 1] == '>'; }

// Why token id (text s[0..n)) cannot be in a vocabulary of this kind, or NULL. Merge results of
// bpe are checked against their merge instead.
static const char *bad_token(const tz_vocab *v, const char *s, size_t n) {
    if (n == 0) return "an empty token";
    if (v->kind == TOK_WORD) {
        for (size_t i = 0; i < n; i++)
            if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') return "a word with white space";
        return NULL;
    }
    return n == 1 || special(s, n) ? NULL : "not one byte (nor a <special>)";
}

int tz_vocab_load(tz_vocab *v, FILE *f) {
    memset(v, 0, sizeof *v);
    v->unk = v->eos = -1;
    load_error[0] = 0;
    char *line = NULL, kind[16];
    size_t cap = 0;
    int version, size, n_merges, base;
    long n = read_line(f, &line, &cap);
    if (n < 0 || strncmp(line, "tapezoo-vocab ", 14) || strlen(line) != (size_t)n)
        return reject(v, line, "line 1: not a tapezoo-vocab header");
    const char *p = line + 14;
    size_t kl;
    if (!parse_int(&p, 1, 1, &version) || *p++ != ' ' || (kl = strcspn(p, " ")) >= sizeof kind)
        return reject(v, line, "line 1: want 'tapezoo-vocab 1 <kind> <size> <merges> <base>'");
    memcpy(kind, p, kl);
    kind[kl] = 0;
    p += kl;
    if (!tz_tok_parse(kind, &v->kind))
        return reject(v, line, "line 1: unknown tokenizer '%s' (char, word or bpe)", kind);
    if (*p++ != ' ' || !parse_int(&p, 1, TZ_VOCAB_MAX, &size) || *p++ != ' ' || !parse_int(&p, 0, size, &n_merges) ||
        *p++ != ' ' || !parse_int(&p, 0, size, &base) || *p)
        return reject(v, line,
                      "line 1: want '<size> <merges> <base>' with 1 <= size <= %d, merges and base in [0, size]",
                      TZ_VOCAB_MAX);
    if (v->kind != TOK_BPE && (n_merges || base)) return reject(v, line, "line 1: a %s vocabulary has no merges", kind);
    if ((long)base + n_merges > size)
        return reject(v, line, "line 1: base %d + %d merges is more than the %d tokens", base, n_merges, size);
    for (int i = 0; i < size; i++) {
        if ((n = read_line(f, &line, &cap)) < 0)
            return reject(v, line, "line %d: the file ends before token %d of %d", i + 2, i, size);
        size_t o = 0;
        for (long k = 0; k < n; k++) {
            char c = line[k];
            if (c == 0) return reject(v, line, "line %d: a raw NUL byte (write \\0)", i + 2);
            if (c == '\\') {
                c = ++k < n ? line[k] : 0;
                if (c == 'n') c = '\n';
                else if (c == 'r') c = '\r';
                else if (c == 't') c = '\t';
                else if (c == '0') c = 0;
                else if (c != '\\') return reject(v, line, "line %d: a bad escape (\\\\, \\n, \\r, \\t or \\0)", i + 2);
            }
            line[o++] = c;
        }
        const char *why = i >= base && i < base + n_merges ? (o ? NULL : "an empty token") : bad_token(v, line, o);
        if (why) return reject(v, line, "line %d: token %d is %s", i + 2, i, why);
        int dup = tz_vocab_find_bytes(v, line, o);
        if (dup >= 0) return reject(v, line, "line %d: token %d is also token %d", i + 2, i, dup);
        tz_vocab_add_bytes(v, line, o);
    }
    v->n_merges = n_merges;
    v->base = base;
    v->merges = grow(NULL, 2 * (size_t)n_merges + 2, sizeof(int));
    for (int k = 0; k < n_merges; k++) {
        int a, b, id = base + k, ln = size + 2 + k;
        if ((n = read_line(f, &line, &cap)) < 0)
            return reject(v, line, "line %d: the file ends before merge %d of %d", ln, k, n_merges);
        p = line;
        if (!parse_int(&p, 0, id - 1, &a) || *p++ != ' ' || !parse_int(&p, 0, id - 1, &b) || p != line + n)
            return reject(v, line, "line %d: merge %d: want two token ids below %d", ln, k, id);
        if (v->len[a] + v->len[b] != v->len[id] || memcmp(v->tok[a], v->tok[id], v->len[a]) ||
            memcmp(v->tok[b], v->tok[id] + v->len[a], v->len[b]))
            return reject(v, line, "line %d: merge %d joins tokens %d and %d, which do not make token %d", ln, k, a, b,
                          id);
        v->merges[2 * k] = a, v->merges[2 * k + 1] = b;
    }
    if (getc(f) != EOF) return reject(v, line, "line %ld: data after the last merge", (long)size + n_merges + 2);
    free(line);
    v->unk = tz_vocab_find(v, "<unk>");
    v->eos = v->kind == TOK_WORD ? tz_vocab_find(v, "<eos>") : -1;
    return 1;
}

void tz_vocab_free(tz_vocab *v) {
    for (int i = 0; i < v->size; i++) free(v->tok[i]);
    free(v->tok);
    free(v->len);
    free(v->table);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

char *tz_vocab_text(const tz_vocab *v) {
    char *buf;
    size_t size;
    FILE *m = open_memstream(&buf, &size);
    if (!m) tz_fail("vocabulary: out of memory for its text");
    tz_vocab_save(v, m);
    if (fclose(m)) tz_fail("vocabulary: out of memory for its text");
    return buf;
}

int tz_vocab_load_text(tz_vocab *v, const char *text) {
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f) {
        memset(v, 0, sizeof *v);
        v->unk = v->eos = -1;
        snprintf(load_error, sizeof load_error, "%s", *text ? "out of memory" : "line 1: not a tapezoo-vocab header");
        return 0;
    }
    int ok = tz_vocab_load(v, f);
    fclose(f);
    return ok;
}

int tz_vocab_copy(tz_vocab *dst, const tz_vocab *src) {
    char *text = tz_vocab_text(src);
    int ok = tz_vocab_load_text(dst, text);
    free(text);
    return ok;
}
