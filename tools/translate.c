// translate: sentences through a trained translation run.
//   translate RUN_DIR ["sentence"] [--file F] [--beam K] [--alpha A] [--n-best N]
//             [--max-len-a A] [--max-len-b B] [--checkpoint best|last] [--attention FILE]
// One translation a line (N lines with scores under --n-best N), for the sentence given, or
// each line of --file F or of standard input. Rebuilds the model from the checkpoint's own cfg
// and both vocabularies, as tools/sample.c does; the input gets the training preprocessing.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "pairs.h"
#include "setup.h"
#include "translate.h"
#include "vocab.h"

#define CHUNK 256 // input lines translated together (one at a time from a terminal)

static void usage(FILE *f) {
    fprintf(f, "usage: translate RUN_DIR [\"sentence\"] [--file F] [--beam K] [--alpha A] [--n-best N]\n"
               "                 [--max-len-a A] [--max-len-b B] [--checkpoint best|last] [--attention FILE]\n"
               "  without a sentence or --file, translates each line of standard input; one line out per line in\n"
               "  defaults: beam 5 (1: greedy), alpha 0.6 (length penalty ((5+|Y|)/6)^alpha), n-best 1,\n"
               "  at most 2 |source| + 10 target tokens, checkpoint best (last if the run has no best yet)\n"
               "  --n-best N: N lines per input, 'score<TAB>translation', best first\n"
               "  --attention FILE: with one sentence, writes its alignment matrix for tools/plot_attention.gp\n");
}

static void bad_option(const char *fmt, const char *opt, const char *v) {
    fprintf(stderr, "translate: ");
    fprintf(stderr, fmt, opt, v);
    fputc('\n', stderr);
    exit(2);
}
static double number(const char *opt, const char *v, double lo, double hi) {
    char *end;
    double x = strtod(v, &end);
    if (*end || end == v || !(x >= lo && x <= hi)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%%s wants a number in [%g, %g], got '%%s'", lo, hi);
        bad_option(msg, opt, v);
    }
    return x;
}
static int whole(const char *opt, const char *v, int lo, int hi) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < lo || x > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "%%s wants a whole number in [%d, %d], got '%%s'", lo, hi);
        bad_option(msg, opt, v);
    }
    return (int)x;
}

// One input: its source ids, and (word vocabularies) its words, for the attention file's labels.
typedef struct {
    int *ids;
    int n;
    char *text;
} input;

// Line `lineno` of the input, with the training run's preprocessing (pairs.h), as source ids.
static void encode(const tz_vocab *sv, const tz_prep *prep, const char *line, long lineno, int max_src, input *in) {
    size_t len = strlen(line), bad;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    in->text = tz_calloc(1, 3 * len + 1, "translate");
    if (tz_prep_sentence(prep, line, len, in->text, &bad) < 0)
        tz_fail("translate: input line %ld: invalid UTF-8 (or a NUL byte) at byte %zu", lineno, bad);
    in->ids = tz_pairs_encode(sv, in->text, &in->n); // unknown words become <unk>
    if (in->n > max_src)
        tz_fail("translate: input line %ld has %d tokens; this model takes at most %d", lineno, in->n, max_src);
}

// The alignment matrix of the best hypothesis, labelled with the source words (as typed, for a
// word vocabulary: an unknown one is <unk> to the model) and the target words.
static void write_attention(const char *path, const tz_vocab *sv, const tz_vocab *tv, const input *in, const tz_hyp *h,
                            const char *model) {
    const char **src = tz_calloc(1, sizeof(char *) * (in->n + 1), "translate"),
               **tgt = tz_calloc(1, sizeof(char *) * (h->len + 1), "translate");
    char *words = tz_calloc(1, strlen(in->text) + 1, "translate"), *w = words;
    strcpy(words, in->text);
    for (int j = 0; j < in->n; j++) {
        if (sv->kind == TOK_WORD) {
            w += strspn(w, " \t");
            src[j] = w;
            w += strcspn(w, " \t");
            if (*w) *w++ = 0;
        } else src[j] = sv->tok[in->ids[j]];
    }
    for (int i = 0; i < h->len; i++) tgt[i] = h->ids[i] >= 0 && h->ids[i] < tv->size ? tv->tok[h->ids[i]] : "<unk>";
    FILE *f = fopen(path, "w");
    if (!f) tz_fail("translate: cannot write %s", path);
    tz_attention_write(f, h, src, tgt, model);
    if (fclose(f)) tz_fail("translate: cannot write %s", path);
    free(src), free(tgt), free(words);
}

// The longest source: the data's limit (TZ_PAIRS_MAX_LEN), or the model's [model] max_len when
// it has one (positions). The [data] max_len filter of training is no limit: a recurrent model
// translates longer sentences too (if worse: Bahdanau et al. 2015, Figure 2).
static int max_source(const cfg *c) {
    int best = TZ_PAIRS_MAX_LEN;
    for (int i = 0; i < c->n; i++) {
        const cfg_key *k = c->v[i].key;
        if (!strcmp(k->section, "model") && k->type == CFG_INT &&
            (!strcmp(k->key, "max_len") || !strcmp(k->key, "max_src_len"))) {
            long v = cfg_int(c, k->section, k->key);
            if (v > 0 && v < best) best = (int)v;
        }
    }
    return best;
}

// n inputs' hypotheses: one line each, or n_best lines "score<TAB>translation".
static void print_hyps(const tz_decode_opts *o, const tz_vocab *tv, const tz_hyp *h, int n) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < o->n_best; k++) {
            const tz_hyp *x = &h[(size_t)i * o->n_best + k];
            if (o->n_best > 1) {
                if (x->len < 0) fputs("-inf\t", stdout);
                else printf("%.4f\t", x->score);
            }
            if (x->len > 0) {
                char *text = tz_target_text(tv, x->ids, x->len);
                fputs(text, stdout);
                free(text);
            }
            fputc('\n', stdout);
        }
    fflush(stdout);
}

static void flush_chunk(const tz_model_def *def, void *m, const tz_decode_opts *o, const tz_vocab *tv, input *in,
                        int n) {
    const int **src = tz_calloc(1, sizeof(int *) * n, "translate");
    int *len = tz_calloc(1, sizeof(int) * n, "translate");
    tz_hyp *h = tz_calloc(1, sizeof(tz_hyp) * (size_t)n * o->n_best, "translate");
    for (int i = 0; i < n; i++) src[i] = in[i].ids, len[i] = in[i].n;
    tz_translate(def, m, o, src, len, n, h);
    print_hyps(o, tv, h, n);
    for (int i = 0; i < n; i++) free(in[i].ids), free(in[i].text);
    tz_hyps_free(h, n * o->n_best);
    free(h), free(src), free(len);
}

int main(int argc, char **argv) {
    const char *run = NULL, *sentence = NULL, *file = NULL, *which = "best", *attn_path = NULL;
    tz_decode_opts o = tz_decode_defaults();
    int n_best_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        else if (v && !strcmp(a, "--file")) file = v, i++;
        else if (v && !strcmp(a, "--beam")) o.beam = whole(a, v, 1, 64), i++;
        else if (v && !strcmp(a, "--alpha")) o.alpha = number(a, v, 0, 10), i++;
        else if (v && !strcmp(a, "--n-best")) o.n_best = whole(a, v, 1, 64), n_best_set = 1, i++;
        else if (v && !strcmp(a, "--max-len-a")) o.max_len_a = number(a, v, 0, 100), i++;
        else if (v && !strcmp(a, "--max-len-b")) o.max_len_b = number(a, v, 1, 1000), i++;
        else if (v && !strcmp(a, "--checkpoint")) which = v, i++;
        else if (v && !strcmp(a, "--attention")) attn_path = v, i++;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "translate: %s '%s'\n", v || strncmp(a, "--", 2) ? "unknown option" : "missing value after",
                    a);
            return usage(stderr), 2;
        } else if (!run) run = a;
        else if (!sentence) sentence = a;
        else return fprintf(stderr, "translate: one sentence at most (quote it), or --file F\n"), 2;
    }
    if (!run) return usage(stderr), 2;
    if (strcmp(which, "best") && strcmp(which, "last"))
        return fprintf(stderr, "translate: --checkpoint best or last, got '%s'\n", which), 2;
    if (n_best_set && o.n_best > o.beam)
        return fprintf(stderr, "translate: --n-best %d is more than --beam %d keeps\n", o.n_best, o.beam), 2;
    if (sentence && file) return fprintf(stderr, "translate: a sentence or --file, not both\n"), 2;
    if (attn_path && !sentence)
        return fprintf(stderr, "translate: --attention FILE wants one sentence on the command line\n"), 2;

    if (access(run, F_OK)) tz_fail("%s: no such run directory", run);
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.safetensors", run, which);
    if (!strcmp(which, "best") && access(path, F_OK)) snprintf(path, sizeof path, "%s/last.safetensors", run);
    if (access(path, F_OK)) tz_fail("%s: no checkpoint (is %s a run directory of ./train?)", path, run);
    tz_ckpt_meta meta;
    tz_ckpt_read_meta(path, &meta);
    // The run's own configuration, from the checkpoint, through a temporary file.
    char cfg_path[] = "/tmp/tapezoo-translate-XXXXXX";
    int fd = mkstemp(cfg_path);
    if (fd < 0 || write(fd, meta.cfg_text, strlen(meta.cfg_text)) != (ssize_t)strlen(meta.cfg_text))
        tz_fail("translate: cannot write a temporary file");
    close(fd);
    static cfg c;
    const tz_model_def *def = tz_cfg_load(&c, cfg_path, NULL, 0);
    unlink(cfg_path);
    if (!def->pairs) tz_fail("%s: %s is a language model (type %s): use ./sample", path, run, def->name);
    if (!meta.src_vocab_text) tz_fail("%s: the checkpoint has no source vocabulary", path);
    tz_vocab sv, tv;
    if (!tz_vocab_load_text(&sv, meta.src_vocab_text))
        tz_fail("%s: the saved source vocabulary is malformed (%s)", path, tz_vocab_error());
    if (!tz_vocab_load_text(&tv, meta.vocab_text))
        tz_fail("%s: the saved target vocabulary is malformed (%s)", path, tz_vocab_error());
    tz_rng r;
    tz_rng_seed(&r, 1);
    tz_params P;
    tz_params_init(&P);
    void *m = def->mt_create(&c, sv.size, tv.size, &P, &r);
    tz_ckpt_load(path, &P, NULL);
    int max_src = max_source(&c);
    tz_prep prep = {cfg_bool(&c, "data", "lowercase"), cfg_bool(&c, "data", "split_punct")};

    if (sentence) {
        input in;
        encode(&sv, &prep, sentence, 1, max_src, &in);
        if (attn_path) {
            if (in.n == 0) tz_fail("translate: --attention: the sentence is empty");
            o.attention = 1;
            tz_hyp *h = tz_calloc(1, sizeof(tz_hyp) * o.n_best, "translate");
            const int *src[] = {in.ids};
            tz_translate(def, m, &o, src, &in.n, 1, h);
            if (!h[0].attn) tz_fail("translate: model %s has no attention to draw", def->name);
            write_attention(attn_path, &sv, &tv, &in, &h[0], def->name);
            print_hyps(&o, &tv, h, 1);
            tz_hyps_free(h, o.n_best);
            free(h), free(in.ids), free(in.text);
        } else flush_chunk(def, m, &o, &tv, &in, 1);
    } else {
        FILE *f = file ? fopen(file, "r") : stdin;
        if (!f) tz_fail("translate: cannot read %s", file);
        int chunk = !file && isatty(0) ? 1 : CHUNK, n = 0;
        input *in = tz_calloc(1, sizeof(input) * chunk, "translate");
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, f)) >= 0) {
            if (memchr(line, 0, (size_t)got))
                tz_fail("translate: %s line %ld: a NUL byte", file ? file : "input", lineno + 1);
            encode(&sv, &prep, line, ++lineno, max_src, &in[n++]);
            if (n == chunk) flush_chunk(def, m, &o, &tv, in, n), n = 0;
        }
        if (n) flush_chunk(def, m, &o, &tv, in, n);
        free(line);
        free(in);
        if (file) fclose(f);
    }
    // Said at the end, on success: an error stays the one line on stderr.
    fprintf(stderr, "translate: %s, %s step %ld, beam %d, alpha %g\n", def->name, path, meta.step, o.beam, o.alpha);
    def->free(m);
    tz_params_free(&P);
    tz_vocab_free(&sv);
    tz_vocab_free(&tv);
    tz_ckpt_meta_free(&meta);
    return 0;
}
