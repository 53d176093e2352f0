// pairs.c: reading, preprocessing, splitting and encoding a paired corpus (see pairs.h). The
// batcher is in pair_batcher.c, the synthetic tasks in synth.c.
#include "pairs.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"
#include "tz.h"

const cfg_key tz_pair_keys[] = {
    {"data", "kind", CFG_STR, "text",
     "text (one token stream: language models), pairs (source<TAB>target lines), reverse or copy (synthetic digit "
     "strings)",
     0, 0, "text pairs reverse copy"},
    {"data", "lowercase", CFG_BOOL, "true", "pairs: lower-case both sides (ASCII, Latin-1 letters, Œ)", 0, 0, NULL},
    {"data", "split_punct", CFG_BOOL, "true", "pairs: a space on both sides of each of . ! ? , ; :", 0, 0, NULL},
    {"data", "min_len", CFG_INT, "1",
     "pairs: keep pairs whose both sides have min_len..max_len tokens; reverse/copy: string lengths", 1, 1000, NULL},
    {"data", "max_len", CFG_INT, "10", "pairs: see min_len; reverse/copy: the longest string", 1, 1000, NULL},
    {"data", "val_split", CFG_FLOAT, "0.05",
     "pairs: fraction of distinct sources for validation (split: training; the rest: test)", 0, 0.5, NULL},
    {"data", "seed", CFG_INT, "0", "pairs: seed of the split; reverse/copy: of the strings (0: [train] seed)", 0,
     INT_MAX, NULL},
    {"data", "bucket", CFG_INT, "50", "pairs: batches per pool sorted by length (1: no bucketing)", 1, 100000, NULL},
    {"data", "write_split", CFG_BOOL, "false",
     "pairs: the run dir also gets train.src/.ref and val.src/.ref (as test.src/.ref)", 0, 0, NULL},
    {"data", "train_size", CFG_INT, "0",
     "reverse/copy: a fixed training set of N strings (0: fresh strings every batch)", 0, 100000000, NULL},
    {"data", "eval_size", CFG_INT, "1000", "reverse/copy: strings in each of the validation and test sets (held out)",
     1, 10000000, NULL},
    {"data", "test_min_len", CFG_INT, "0", "reverse/copy: the test strings' shortest length (0: min_len)", 0, 1000,
     NULL},
    {"data", "test_max_len", CFG_INT, "0", "reverse/copy: the test strings' longest length (0: max_len)", 0, 1000,
     NULL},
    {"train", "test_beam", CFG_INT, "5",
     "translation: the beam of the test BLEU printed at the end beside greedy's (0 or 1: greedy only)", 0, 100, NULL},
    {0},
};

tz_data_kind tz_data_kind_of(const cfg *c) {
    static const char *names[] = {"text", "pairs", "reverse", "copy"};
    const char *k = cfg_str(c, "data", "kind");
    for (int i = 0; i < 4; i++)
        if (!strcmp(k, names[i])) return (tz_data_kind)i;
    tz_fail("%s: [data] kind = '%s' (want text, pairs, reverse or copy)", c->path, k);
}

void tz_pairs_cfg_resolve(cfg *c) {
    if (!cfg_is_set(c, "data", "tokenizer")) cfg_set(c, "data", "tokenizer", "word", "pairs default");
    if (!cfg_is_set(c, "data", "min_count")) cfg_set(c, "data", "min_count", "2", "pairs default");
    const char *tok = cfg_str(c, "data", "tokenizer");
    if (strcmp(tok, "word") && strcmp(tok, "bpe"))
        tz_fail("%s: [data] tokenizer = '%s': pairs want word or bpe", c->path, tok);
}

// ---------------------------------------------------------------------------------------------
// Sentences and sets of pairs.

void tz_sents_add(tz_sents *s, const char *sent, size_t len) {
    if (s->n + 1 >= s->cap) s->off = tz_realloc(s->off, sizeof(long) * (s->cap = 2 * s->cap + 256), "pairs");
    if (s->len + len + 1 > (size_t)s->text_cap) {
        while (s->len + len + 1 > (size_t)s->text_cap) s->text_cap = 2 * s->text_cap + 4096;
        s->text = tz_realloc(s->text, s->text_cap, "pairs");
    }
    s->off[s->n++] = s->len;
    memcpy(s->text + s->len, sent, len);
    s->text[s->len + len] = 0;
    s->len += len + 1;
}

void tz_sents_free(tz_sents *s) {
    free(s->text);
    free(s->off);
    memset(s, 0, sizeof *s);
}

static void push_ids(int **ids, long *cap, long at, const int *src, int n) {
    if (at + n > *cap) {
        while (at + n > *cap) *cap = 2 * *cap + 1024;
        *ids = tz_realloc(*ids, sizeof(int) * *cap, "pairs");
    }
    memcpy(*ids + at, src, sizeof(int) * n);
}

void tz_pairset_add(tz_pairset *s, const int *src, int ns, const int *tgt, int nt, const char *src_text,
                    const char *tgt_text) {
    if (s->n + 2 > s->off_cap) {
        s->off_cap = 2 * s->off_cap + 256;
        s->src_off = tz_realloc(s->src_off, sizeof(long) * s->off_cap, "pairs");
        s->tgt_off = tz_realloc(s->tgt_off, sizeof(long) * s->off_cap, "pairs");
        if (s->n == 0) s->src_off[0] = s->tgt_off[0] = 0;
    }
    long a = s->src_off[s->n], b = s->tgt_off[s->n];
    push_ids(&s->src, &s->src_cap, a, src, ns);
    push_ids(&s->tgt, &s->tgt_cap, b, tgt, nt);
    s->src_off[s->n + 1] = a + ns;
    s->tgt_off[s->n + 1] = b + nt;
    s->n++;
    if (ns > s->max_src) s->max_src = ns;
    if (nt > s->max_tgt) s->max_tgt = nt;
    tz_sents_add(&s->src_text, src_text, strlen(src_text));
    tz_sents_add(&s->tgt_text, tgt_text, strlen(tgt_text));
}

void tz_pairset_free(tz_pairset *s) {
    free(s->src_off);
    free(s->tgt_off);
    free(s->src);
    free(s->tgt);
    tz_sents_free(&s->src_text);
    tz_sents_free(&s->tgt_text);
    memset(s, 0, sizeof *s);
}

static void write_sents(const tz_sents *s, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) tz_fail("cannot write %s (%s)", path, strerror(errno));
    for (long i = 0; i < s->n; i++) fprintf(f, "%s\n", tz_sent(s, i));
    if (ferror(f) | fclose(f)) tz_fail("cannot write %s (disk full?)", path);
}

void tz_pairset_write(const tz_pairset *s, const char *src_path, const char *ref_path) {
    write_sents(&s->src_text, src_path);
    write_sents(&s->tgt_text, ref_path);
}

// ---------------------------------------------------------------------------------------------
// Preprocessing.

// The code point at s[i] (strict UTF-8: no overlong forms, surrogates or values past U+10FFFF):
// its length in bytes, or 0 if the bytes there are not UTF-8.
static int utf8_next(const unsigned char *s, size_t n, size_t i, uint32_t *cp) {
    unsigned c = s[i];
    if (c < 0x80) return *cp = c, 1;
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (!len || c > 0xF4 || i + len > n) return 0;
    uint32_t v = c & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i + k] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return *cp = v, len;
}

static int utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | (cp >> 6 & 0x3F)),
               out[2] = (char)(0x80 | (cp & 0x3F)), 3;
    out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Python's str.split() whitespace (what the PyTorch reference splits on).
static int is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ASCII, Latin-1 (À..Þ but not ×), Œ and Ÿ: the capitals of English and French.
static uint32_t lower(uint32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (c == 0x152) return 0x153;
    if (c == 0x178) return 0xFF;
    return c;
}

long tz_prep_sentence(const tz_prep *o, const char *s, size_t n, char *out, size_t *bad) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, w = 0;
    long tokens = 0;
    int in_token = 0;
    while (i < n) {
        uint32_t cp;
        int k = utf8_next(u, n, i, &cp);
        if (!k || cp == 0) {
            if (bad) *bad = i;
            out[w] = 0;
            return -1;
        }
        i += k;
        if (is_space(cp)) {
            in_token = 0;
        } else if (o->split_punct && cp < 0x80 && strchr(".!?,;:", (int)cp)) {
            if (w) out[w++] = ' ';
            out[w++] = (char)cp;
            tokens++, in_token = 0;
        } else {
            if (!in_token) {
                if (w) out[w++] = ' ';
                tokens++, in_token = 1;
            }
            w += utf8_put(o->lowercase ? lower(cp) : cp, out + w);
        }
    }
    out[w] = 0;
    return tokens;
}

int *tz_pairs_encode(const tz_vocab *v, const char *sent, int *n) {
    long count, unk;
    int *ids = tz_vocab_encode(v, sent, strlen(sent), &count, &unk);
    if (!ids) tz_fail("pairs: out of memory encoding a sentence");
    for (long i = 0; i < count; i++)
        if (ids[i] < TZ_UNK) ids[i] = TZ_UNK; // unknown, or a word spelled like <pad>, <bos>, <eos>
    *n = (int)count;
    return ids;
}

// ---------------------------------------------------------------------------------------------
// Reading a pairs file.

void tz_pair_text_free(tz_pair_text *t) {
    tz_sents_free(&t->src);
    tz_sents_free(&t->tgt);
    free(t->line);
    memset(t, 0, sizeof *t);
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\r' && s[i] != '\v' && s[i] != '\f') return 0;
    return 1;
}

// tz_pairs_parse; `owned` (may be NULL) is freed too before a failure (the file's bytes).
static void parse(tz_pair_text *out, const char *name, const char *data, size_t len, const tz_prep *o, int min_len,
                  int max_len, char *owned) {
    tz_pair_text t = {0};
    size_t longest = len < TZ_PAIRS_MAX_LINE ? len : TZ_PAIRS_MAX_LINE;
    char *a = malloc(3 * longest + 1), *b = malloc(3 * longest + 1), msg[700];
    if (!a || !b) free(a), free(b), free(owned), tz_fail("pairs: out of memory reading %.500s", name);
    long line_cap = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p), *eol = nl ? nl : end;
        size_t n = eol - p;
        long line = ++t.st.lines;
        const char *line_start = p;
        p = nl ? nl + 1 : end;
        if (n > TZ_PAIRS_MAX_LINE) {
            if (!t.st.too_long_line++) t.st.first_long = line;
            continue;
        }
        const char *tab = memchr(line_start, '\t', n);
        if (!tab) {
            if (blank(line_start, n)) {
                t.st.blank++;
                continue;
            }
            snprintf(msg, sizeof msg, "%.500s:%ld: no tab in the line (want source<TAB>target)", name, line);
            tz_pair_text_free(&t), free(a), free(b), free(owned);
            tz_fail("%s", msg);
        }
        const char *tgt = tab + 1, *tab2 = memchr(tgt, '\t', eol - tgt), *tgt_end = tab2 ? tab2 : eol;
        size_t bad_src = 0, bad_tgt = 0;
        long ns = tz_prep_sentence(o, line_start, tab - line_start, a, &bad_src);
        long nt = ns < 0 ? 0 : tz_prep_sentence(o, tgt, tgt_end - tgt, b, &bad_tgt);
        if (ns < 0 || nt < 0) {
            size_t at = ns < 0 ? bad_src : (size_t)(tgt - line_start) + bad_tgt;
            snprintf(msg, sizeof msg, "%.500s:%ld: %s at byte %zu of the line (want UTF-8 text)", name, line,
                     line_start[at] ? "invalid UTF-8" : "a NUL byte", at + 1);
            tz_pair_text_free(&t), free(a), free(b), free(owned);
            tz_fail("%s", msg);
        }
        if (ns == 0 || nt == 0) {
            if (!t.st.empty_side++) t.st.first_empty = line;
            continue;
        }
        if (ns < min_len || ns > max_len || nt < min_len || nt > max_len) {
            t.st.out_of_range++;
            continue;
        }
        tz_sents_add(&t.src, a, strlen(a));
        tz_sents_add(&t.tgt, b, strlen(b));
        if (t.st.kept == line_cap) t.line = tz_realloc(t.line, sizeof(long) * (line_cap = 2 * line_cap + 256), "pairs");
        t.line[t.st.kept++] = line;
    }
    free(a), free(b);
    if (!t.st.kept) {
        snprintf(msg, sizeof msg,
                 "%.500s: no pair with %d..%d tokens on both sides (%ld lines: %ld blank, %ld with an empty side, %ld "
                 "longer than %d bytes, %ld outside the length range)",
                 name, min_len, max_len, t.st.lines, t.st.blank, t.st.empty_side, t.st.too_long_line, TZ_PAIRS_MAX_LINE,
                 t.st.out_of_range);
        tz_pair_text_free(&t), free(owned);
        tz_fail("%s", msg);
    }
    *out = t;
}

void tz_pairs_parse(tz_pair_text *out, const char *name, const char *data, size_t len, const tz_prep *o, int min_len,
                    int max_len) {
    parse(out, name, data, len, o, min_len, max_len, NULL);
}

// ---------------------------------------------------------------------------------------------
// Vocabularies.

static const char *specials[4] = {"<pad>", "<bos>", "<eos>", "<unk>"};

static void add_specials(tz_vocab *v, tz_tok_kind kind) {
    memset(v, 0, sizeof *v);
    v->kind = kind;
    for (int i = 0; i < 4; i++) tz_vocab_add_token(v, specials[i]);
    v->unk = TZ_UNK;
    v->eos = kind == TOK_WORD ? TZ_EOS : -1; // as tz_vocab_load sets it
}

static const long *sort_counts;
static int by_count(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    if (sort_counts[a] != sort_counts[b]) return sort_counts[a] > sort_counts[b] ? -1 : 1;
    return a - b; // ties: first seen first
}

// Word vocabulary of one side's training sentences: the specials, then the words seen at least
// min_count times, most frequent first.
static void build_words(tz_vocab *v, const tz_sents *s, int min_count) {
    tz_vocab all = {.unk = -1, .eos = -1};
    long *count = NULL, cap = 0;
    char *word = tz_realloc(NULL, s->len + 1, "pairs"); // room for the longest token
    for (long i = 0; i < s->n; i++) {
        const char *w = tz_sent(s, i);
        while (*w) {
            const char *e = strchr(w, ' ');
            size_t n = e ? (size_t)(e - w) : strlen(w);
            memcpy(word, w, n);
            word[n] = 0;
            int id = tz_vocab_find(&all, word);
            if (id < 0) {
                id = tz_vocab_add_token(&all, word);
                if (id >= cap) count = tz_realloc(count, sizeof(long) * (cap = 2 * cap + 1024), "pairs");
                count[id] = 0;
            }
            count[id]++;
            w += n + (e != NULL);
        }
    }
    int *order = tz_realloc(NULL, sizeof(int) * (all.size + 1), "pairs");
    for (int i = 0; i < all.size; i++) order[i] = i;
    sort_counts = count;
    qsort(order, all.size, sizeof *order, by_count);
    add_specials(v, TOK_WORD);
    for (int i = 0; i < all.size; i++) {
        const char *w = all.tok[order[i]];
        if (count[order[i]] >= min_count && tz_vocab_find(v, w) < 0) tz_vocab_add_token(v, w);
    }
    free(word);
    free(order);
    free(count);
    tz_vocab_free(&all);
}

void tz_bpe_learn(tz_vocab *v, const char *text, size_t len, int merges); // bpe.c

// BPE vocabulary of one side: the specials, the bytes of the training sentences, the merges.
static void build_bpe(tz_vocab *v, const tz_sents *s, int merges) {
    char *text = tz_realloc(NULL, s->len + 1, "pairs");
    for (long i = 0; i < s->len; i++) text[i] = s->text[i] ? s->text[i] : '\n'; // one sentence a line
    text[s->len] = 0;
    add_specials(v, TOK_BPE);
    int seen[256] = {0};
    for (long i = 0; i < s->len; i++) seen[(unsigned char)text[i]] = 1;
    for (int c = 1; c < 256; c++)
        if (seen[c]) {
            char ch[2] = {(char)c, 0};
            tz_vocab_add_token(v, ch);
        }
    tz_bpe_learn(v, text, s->len, merges);
    free(text);
}

static void copy_vocab(tz_vocab *dst, const tz_vocab *src, const char *side) {
    if (!tz_vocab_copy(dst, src)) tz_fail("pairs: cannot copy the %s vocabulary: %s", side, tz_vocab_error());
    for (int i = 0; i < 4; i++)
        if (dst->size <= i || strcmp(dst->tok[i], specials[i]))
            tz_fail(
                "pairs: the saved %s vocabulary does not start with <pad> <bos> <eos> <unk> (not a translation run's?)",
                side);
    dst->unk = TZ_UNK;
}

// ---------------------------------------------------------------------------------------------
// Splits and encoding.

// Learns (or copies) the vocabularies on t[SPLIT_TRAIN] and encodes every split into p->set.
static void encode_splits(tz_pairs *p, tz_pair_text t[N_SPLITS], const tz_pairs_opts *o, const tz_vocab *sv,
                          const tz_vocab *tv) {
    if (sv) copy_vocab(&p->src_vocab, sv, "source");
    else if (o->tok == TOK_BPE) build_bpe(&p->src_vocab, &t[SPLIT_TRAIN].src, o->bpe_merges);
    else build_words(&p->src_vocab, &t[SPLIT_TRAIN].src, o->min_count);
    if (tv) copy_vocab(&p->tgt_vocab, tv, "target");
    else if (o->tok == TOK_BPE) build_bpe(&p->tgt_vocab, &t[SPLIT_TRAIN].tgt, o->bpe_merges);
    else build_words(&p->tgt_vocab, &t[SPLIT_TRAIN].tgt, o->min_count);
    for (int s = 0; s < N_SPLITS; s++) {
        for (long i = 0; i < t[s].src.n; i++) {
            int ns, nt;
            const char *a = tz_sent(&t[s].src, i), *b = tz_sent(&t[s].tgt, i);
            int *x = tz_pairs_encode(&p->src_vocab, a, &ns), *y = tz_pairs_encode(&p->tgt_vocab, b, &nt);
            tz_pairset_add(&p->set[s], x, ns, y, nt, a, b);
            free(x);
            free(y);
        }
    }
}

static void check_fractions(double split, double val_split) {
    if (!(split > 0 && split <= 1)) tz_fail("pairs: [data] split = %g must be in (0, 1]", split);
    if (!(val_split >= 0 && split + val_split <= 1 + 1e-9))
        tz_fail("pairs: [data] val_split = %g must be >= 0 with split + val_split <= 1 (split = %g)", val_split, split);
}

void tz_pairs_build(tz_pairs *p, tz_pair_text *t, const tz_pairs_opts *o, const tz_vocab *sv, const tz_vocab *tv) {
    check_fractions(o->split, o->val_split);
    // Group the pairs by source sentence (a string set: ids in order of first appearance).
    tz_vocab groups = {.unk = -1, .eos = -1};
    long n = t->src.n;
    int *group = tz_realloc(NULL, sizeof(int) * (n + 1), "pairs");
    for (long i = 0; i < n; i++) {
        const char *s = tz_sent(&t->src, i);
        int g = tz_vocab_find(&groups, s);
        group[i] = g >= 0 ? g : tz_vocab_add_token(&groups, s);
    }
    long G = groups.size;
    tz_vocab_free(&groups);
    // A seeded permutation of the groups; its first n_train go to training, then validation, test.
    double test_frac = 1 - o->split - o->val_split;
    long n_val = o->val_split > 0 ? lround(G * o->val_split) : 0, n_test = test_frac > 1e-9 ? lround(G * test_frac) : 0;
    if (o->val_split > 0 && n_val < 1) n_val = 1;
    if (test_frac > 1e-9 && n_test < 1) n_test = 1;
    long n_train = G - n_val - n_test;
    if (n_train < 1) {
        free(group);
        tz_fail("pairs: %ld distinct sources are too few to split %g / %g / %g", G, o->split, o->val_split, test_frac);
    }
    int *perm = tz_realloc(NULL, sizeof(int) * G, "pairs"), *split_of = tz_realloc(NULL, sizeof(int) * G, "pairs");
    for (long g = 0; g < G; g++) perm[g] = (int)g;
    tz_rng r;
    tz_rng_seed(&r, o->seed);
    for (long g = G - 1; g > 0; g--) {
        long k = tz_rng_below(&r, (uint32_t)(g + 1));
        int tmp = perm[g];
        perm[g] = perm[k], perm[k] = tmp;
    }
    for (long j = 0; j < G; j++)
        split_of[perm[j]] = j < n_train ? SPLIT_TRAIN : j < n_train + n_val ? SPLIT_VAL : SPLIT_TEST;
    p->groups[SPLIT_TRAIN] = n_train, p->groups[SPLIT_VAL] = n_val, p->groups[SPLIT_TEST] = n_test;
    tz_pair_text parts[N_SPLITS] = {0};
    for (long i = 0; i < n; i++) {
        tz_pair_text *d = &parts[split_of[group[i]]];
        const char *a = tz_sent(&t->src, i), *b = tz_sent(&t->tgt, i);
        tz_sents_add(&d->src, a, strlen(a));
        tz_sents_add(&d->tgt, b, strlen(b));
    }
    free(perm);
    free(split_of);
    free(group);
    tz_pair_text_free(t);
    encode_splits(p, parts, o, sv, tv);
    for (int s = 0; s < N_SPLITS; s++) tz_pair_text_free(&parts[s]);
}

// ---------------------------------------------------------------------------------------------
// From the cfg.

// The file's bytes (NUL-terminated), or a failure naming the key, with the fetch hint for eng-fra.
static char *read_file(const char *path, const char *key, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT && strstr(path, "eng-fra"))
            tz_fail("[data] %s: %s does not exist. HINT: fetch it with: data/fetch eng-fra (from the project root)",
                    key, path);
        tz_fail("[data] %s: cannot open %s (%s)", key, path, strerror(errno));
    }
    char *text = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n + 65536 > cap) {
            char *t = realloc(text, cap = 2 * cap + 65536);
            if (!t) free(text), fclose(f), tz_fail("[data] %s: out of memory reading %s", key, path);
            text = t;
        }
        got = fread(text + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    int err = ferror(f);
    fclose(f);
    if (err) free(text), tz_fail("[data] %s: cannot read %s", key, path);
    text[n] = 0;
    *len = n;
    return text;
}

static tz_pair_text read_pairs(tz_pairs *p, int split, const cfg *c, const char *key, const tz_prep *o, int min_len,
                               int max_len) {
    tz_cfg_path(c, cfg_str(c, "data", key), p->path[split], sizeof p->path[split]);
    size_t len;
    char *text = read_file(p->path[split], key, &len);
    tz_pair_text t;
    parse(&t, p->path[split], text, len, o, min_len, max_len, text);
    free(text);
    p->st[split] = t.st;
    return t;
}

void tz_pairs_load(tz_pairs *p, const cfg *c, const tz_vocab *sv, const tz_vocab *tv, FILE *log) {
    memset(p, 0, sizeof *p);
    p->kind = tz_data_kind_of(c);
    if (p->kind == TZ_DATA_TEXT) tz_fail("%s: [data] kind = text is a token stream, not pairs", c->path);
    if (p->kind != TZ_DATA_PAIRS) {
        tz_synth_load(p, c);
        if (log) tz_pairs_print_stats(p, log);
        return;
    }
    tz_pairs_opts o = {0};
    const char *tok = cfg_is_set(c, "data", "tokenizer") ? cfg_str(c, "data", "tokenizer") : "word";
    if (!tz_tok_parse(tok, &o.tok) || o.tok == TOK_CHAR)
        tz_fail("%s: [data] tokenizer = '%s': pairs want word or bpe", c->path, tok);
    o.min_count = cfg_is_set(c, "data", "min_count") ? (int)cfg_int(c, "data", "min_count") : 2;
    o.bpe_merges = (int)cfg_int(c, "data", "bpe_merges");
    o.split = cfg_float(c, "data", "split");
    o.val_split = cfg_float(c, "data", "val_split");
    long seed = cfg_int(c, "data", "seed");
    o.seed = (uint64_t)(seed ? seed : cfg_int(c, "train", "seed"));
    tz_prep prep = {cfg_bool(c, "data", "lowercase"), cfg_bool(c, "data", "split_punct")};
    long min_len = cfg_int(c, "data", "min_len"), max_len = cfg_int(c, "data", "max_len");
    if (min_len < 1 || max_len < min_len || max_len > TZ_PAIRS_MAX_LEN)
        tz_fail("%s: [data] min_len = %ld, max_len = %ld: want 1 <= min_len <= max_len <= %d", c->path, min_len,
                max_len, TZ_PAIRS_MAX_LEN);
    int split_one = !cfg_str(c, "data", "valid")[0];
    if (split_one) check_fractions(o.split, o.val_split); // before reading: nothing to free then
    if (split_one && cfg_str(c, "data", "test")[0])
        tz_fail("%s: [data] test is set but valid is not (give both, or neither to split path)", c->path);
    tz_pair_text t = read_pairs(p, SPLIT_TRAIN, c, "path", &prep, (int)min_len, (int)max_len);
    if (split_one) {
        tz_pairs_build(p, &t, &o, sv, tv);
    } else { // separate files: no split
        tz_pair_text parts[N_SPLITS] = {t};
        parts[SPLIT_VAL] = read_pairs(p, SPLIT_VAL, c, "valid", &prep, (int)min_len, (int)max_len);
        if (cfg_str(c, "data", "test")[0])
            parts[SPLIT_TEST] = read_pairs(p, SPLIT_TEST, c, "test", &prep, (int)min_len, (int)max_len);
        encode_splits(p, parts, &o, sv, tv);
        for (int s = 0; s < N_SPLITS; s++) tz_pair_text_free(&parts[s]);
    }
    if (log) tz_pairs_print_stats(p, log);
}

void tz_pairs_print_stats(const tz_pairs *p, FILE *f) {
    static const char *names[N_SPLITS] = {"train", "val", "test"};
    if (p->kind == TZ_DATA_PAIRS) {
        for (int s = 0; s < N_SPLITS; s++) {
            const tz_pairs_stats *st = &p->st[s];
            if (!st->lines) continue;
            fprintf(
                f,
                "# pairs %s: %ld lines, %ld pairs kept; skipped %ld outside the length range, %ld with an empty side",
                p->path[s], st->lines, st->kept, st->out_of_range, st->empty_side);
            if (st->first_empty) fprintf(f, " (first at line %ld)", st->first_empty);
            fprintf(f, ", %ld longer than %d bytes", st->too_long_line, TZ_PAIRS_MAX_LINE);
            if (st->first_long) fprintf(f, " (first at line %ld)", st->first_long);
            fprintf(f, "\n");
        }
    } else {
        fprintf(f, "# %s of digit strings, lengths %d..%d%s\n", p->kind == TZ_DATA_REVERSE ? "reverse" : "copy",
                p->synth.min_len, p->synth.max_len, p->set[SPLIT_TRAIN].n ? "" : ", fresh strings every batch");
    }
    fprintf(f, "# pairs:");
    for (int s = 0; s < N_SPLITS; s++) {
        fprintf(f, "%s %s %ld", s ? "," : "", names[s], p->set[s].n);
        if (p->groups[s]) fprintf(f, " (%ld sources)", p->groups[s]);
    }
    fprintf(f, "; vocabularies: source %d, target %d (%s)\n", p->src_vocab.size, p->tgt_vocab.size,
            tz_tok_name(p->src_vocab.kind));
}

void tz_pairs_write_test(const tz_pairs *p, const char *dir) {
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s/test.src", dir);
    snprintf(b, sizeof b, "%s/test.ref", dir);
    tz_pairset_write(&p->set[SPLIT_TEST], a, b);
}

void tz_pairs_free(tz_pairs *p) {
    for (int s = 0; s < N_SPLITS; s++) tz_pairset_free(&p->set[s]);
    tz_vocab_free(&p->src_vocab);
    tz_vocab_free(&p->tgt_vocab);
    tz_vocab_free(&p->held_out);
}
