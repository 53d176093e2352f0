// bleu: corpus BLEU of a translation file against its references, overall and by source length.
//   bleu REF [HYP] [--src SRC --buckets 5,10,15,30] [--json]
// HYP (default: standard input) and REF hold one sentence a line, already tokenised (tokens
// separated by whitespace), line i of one against line i of the other; with --src SRC (the
// sources, one a line, as tokenised for the model) the sentences are also scored in buckets of
// source length in tokens: "--buckets 5,10,15,30" gives 1-5, 6-10, 11-15 and 16-30, and
// sources longer than the last bound get a bucket of their own ("31+"), listed only when it
// holds any. The score is train/bleu.c's corpus BLEU-4, the trainer's, as sacreBLEU computes it
// with --tokenize none (so `sacrebleu -tok none REF < HYP` agrees). Output: one line overall,
// then one per bucket; --json: one JSON object instead, e.g.
//   {"bleu":23.59,"sentences":5960,"precisions":[..4..],"bp":0.98,"hyp_len":..,"ref_len":..,
//    "by_len":{"1-5":{"bleu":..,"sentences":..},..}}
// The files must have as many lines each; a bad option is a usage error (exit 2), a bad file
// one line on stderr (exit 1).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bleu.h"
#include "tz.h"

#define MAX_BUCKETS 64

static void usage(FILE *f) {
    fprintf(f, "usage: bleu REF [HYP] [--src SRC --buckets B1,B2,..] [--json]\n"
               "  corpus BLEU-4 (sacreBLEU, --tokenize none) of HYP (default: standard input) against REF,\n"
               "  one sentence a line; with --src, also by source length in tokens: buckets 1-B1, B1+1-B2, ..\n"
               "  (and B_last+1 and longer when there are any); --json: one JSON object\n");
}

// The lines of a file, without their line ends: *n lines, each malloc'd, in a malloc'd array.
static char **read_lines(const char *path, FILE *f, long *n) {
    char **lines = NULL, *line = NULL;
    size_t cap = 0, have = 0;
    ssize_t got;
    *n = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        if (memchr(line, 0, (size_t)got)) tz_fail("%s line %ld: a NUL byte (want text)", path, *n + 1);
        while (got && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if ((size_t)*n == have) have = have ? 2 * have : 1024, lines = tz_realloc(lines, sizeof(char *) * have, "bleu");
        lines[(*n)++] = line;
        line = NULL, cap = 0;
    }
    free(line);
    if (ferror(f)) tz_fail("%s: read error", path);
    return lines;
}

static char **read_file(const char *path, long *n) {
    FILE *f = fopen(path, "r");
    if (!f) tz_fail("%s: cannot read", path);
    char **lines = read_lines(path, f, n);
    fclose(f);
    return lines;
}

static void free_lines(char **lines, long n) {
    for (long i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

// "5,10,15,30": strictly increasing whole numbers >= 1; returns how many (exits 2 if malformed).
static int parse_buckets(const char *s, int *upper) {
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1000000 || (n && v <= upper[n - 1]) || n == MAX_BUCKETS ||
            (*end != ',' && *end != 0)) {
            fprintf(stderr,
                    "bleu: --buckets wants increasing whole numbers >= 1 separated by commas (at most %d), got "
                    "'%s'\n",
                    MAX_BUCKETS, s);
            exit(2);
        }
        upper[n++] = (int)v;
        if (!*end) return n;
        p = end + 1;
    }
}

static void print_score(const char *label, const tz_bleu_stats *st, long sentences, int json, int first) {
    double prec[TZ_BLEU_N], bp, b = tz_bleu_score(st, prec, &bp);
    if (json) {
        printf("%s\"%s\":{\"bleu\":%.6f,\"sentences\":%ld}", first ? "" : ",", label, b, sentences);
        return;
    }
    printf("%-8s BLEU %6.2f = %.1f/%.1f/%.1f/%.1f (BP %.3f, hyp_len %ld, ref_len %ld), %ld sentences\n", label, b,
           prec[0], prec[1], prec[2], prec[3], bp, st->hyp_len, st->ref_len, sentences);
}

int main(int argc, char **argv) {
    const char *ref_path = NULL, *hyp_path = NULL, *src_path = NULL, *buckets = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        else if (v && !strcmp(a, "--src")) src_path = v, i++;
        else if (v && !strcmp(a, "--buckets")) buckets = v, i++;
        else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] == '-' && a[1]) {
            int wants_value = !strcmp(a, "--src") || !strcmp(a, "--buckets");
            fprintf(stderr, "bleu: %s '%s'\n", wants_value ? "missing value after" : "unknown option", a);
            return usage(stderr), 2;
        } else if (!ref_path) ref_path = a;
        else if (!hyp_path) hyp_path = a;
        else return fprintf(stderr, "bleu: one reference file and one hypothesis file at most\n"), 2;
    }
    if (!ref_path) return usage(stderr), 2;
    if (!src_path != !buckets) return fprintf(stderr, "bleu: --src and --buckets go together\n"), 2;
    int upper[MAX_BUCKETS], nb = buckets ? parse_buckets(buckets, upper) : 0;

    long n_ref, n_hyp, n_src = 0;
    char **ref = read_file(ref_path, &n_ref);
    char **hyp = hyp_path ? read_file(hyp_path, &n_hyp) : read_lines("standard input", stdin, &n_hyp);
    char **src = src_path ? read_file(src_path, &n_src) : NULL;
    if (n_hyp != n_ref)
        tz_fail("%s: %ld lines, but %s has %ld: want one translation per reference", hyp_path ? hyp_path : "input",
                n_hyp, ref_path, n_ref);
    if (src && n_src != n_ref)
        tz_fail("%s: %ld lines, but %s has %ld: want one source per reference", src_path, n_src, ref_path, n_ref);

    // Bucket k < nb takes sources of upper[k-1]+1 .. upper[k] tokens (upper[-1] = 0); bucket nb
    // the longer ones. A source of 0 tokens (an empty line) goes with the shortest.
    tz_bleu_stats all = {0}, by[MAX_BUCKETS + 1];
    long count[MAX_BUCKETS + 1] = {0};
    memset(by, 0, sizeof by);
    for (long i = 0; i < n_ref; i++) {
        tz_bleu_add_text(&all, hyp[i], ref[i]);
        if (!src) continue;
        int len = tz_bleu_words(src[i]), k = 0;
        while (k < nb && len > upper[k]) k++;
        tz_bleu_add_text(&by[k], hyp[i], ref[i]);
        count[k]++;
    }

    if (json) {
        double prec[TZ_BLEU_N], bp, b = tz_bleu_score(&all, prec, &bp);
        printf("{\"bleu\":%.6f,\"sentences\":%ld,\"precisions\":[%.6f,%.6f,%.6f,%.6f],\"bp\":%.6f,\"hyp_len\":%ld,"
               "\"ref_len\":%ld",
               b, n_ref, prec[0], prec[1], prec[2], prec[3], bp, all.hyp_len, all.ref_len);
    } else print_score("all", &all, n_ref, 0, 1);
    if (src) {
        if (json) printf(",\"by_len\":{");
        for (int k = 0; k <= nb; k++) {
            char label[48];
            if (k == nb) {
                if (!count[k]) break;
                snprintf(label, sizeof label, "%d+", upper[nb - 1] + 1);
            } else snprintf(label, sizeof label, "%d-%d", k ? upper[k - 1] + 1 : 1, upper[k]);
            print_score(label, &by[k], count[k], json, k == 0);
        }
        if (json) putchar('}');
    }
    if (json) printf("}\n");
    free_lines(ref, n_ref), free_lines(hyp, n_hyp);
    if (src) free_lines(src, n_src);
    if (fflush(stdout) || ferror(stdout)) tz_fail("bleu: cannot write the output");
    return 0;
}
