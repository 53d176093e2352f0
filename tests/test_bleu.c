// Corpus BLEU against values computed independently: by hand from the formula, and by a
// re-typing of sacreBLEU 2.x's compute_bleu / segment statistics in Python (tokenize none,
// smooth exp, one reference), shown below so the numbers can be made again:
//
//   def ngrams(t): return Counter(tuple(t[i:i+n]) for n in range(1,5) for i in range(len(t)-n+1))
//   sums hyp/ref lengths, clipped matches min(hc[g], rc[g]) and totals per order over the corpus;
//   bp = exp(1 - r/c) if c < r (0 if c == 0); 0 if nothing matches; for each order until a total
//   is 0: a zero match count gives 100 / (2^k total), k counting such orders; BLEU = bp *
//   exp(mean log p) over the 4 orders, an order with total 0 having log p = -9999999999.
#include <criterion/criterion.h>
#include <math.h>

#include "bleu.h"

static double stats_bleu(long hyp_len, long ref_len, const long *correct, const long *total) {
    tz_bleu_stats s = {.hyp_len = hyp_len, .ref_len = ref_len};
    for (int n = 0; n < 4; n++) s.correct[n] = correct[n], s.total[n] = total[n];
    return tz_bleu_score(&s, NULL, NULL);
}

Test(bleu, precisions_of_the_issue) {
    // 9/10, 7/8, 5/6, 3/4, lengths 11 and 11: 100 * (0.9 * 0.875 * 0.8333 * 0.75)^(1/4)
    cr_assert_float_eq(stats_bleu(11, 11, (long[]){9, 7, 5, 3}, (long[]){10, 8, 6, 4}), 83.759224, 1e-6);
}

Test(bleu, brevity_penalty) {
    const long c[] = {9, 7, 5, 3}, t[] = {10, 8, 6, 4};
    double bp, p[4];
    tz_bleu_stats s = {.hyp_len = 9, .ref_len = 11};
    for (int n = 0; n < 4; n++) s.correct[n] = c[n], s.total[n] = t[n];
    // shorter than the reference: exp(1 - 11/9) = 0.800737
    cr_assert_float_eq(tz_bleu_score(&s, p, &bp), 67.069143, 1e-6);
    cr_assert_float_eq(bp, exp(1 - 11.0 / 9), 1e-12);
    cr_assert_float_eq(p[0], 90.0, 1e-9);
    // longer than the reference: no penalty
    cr_assert_float_eq(stats_bleu(13, 11, c, t), 83.759224, 1e-6);
    // no hypothesis words at all
    cr_assert_float_eq(stats_bleu(0, 11, (long[]){0, 0, 0, 0}, (long[]){0, 0, 0, 0}), 0.0, 1e-12);
}

Test(bleu, exp_smoothing) {
    // no 3- and 4-gram matches: 100/(2*4) and 100/(4*3)
    cr_assert_float_eq(stats_bleu(6, 6, (long[]){5, 2, 0, 0}, (long[]){6, 5, 4, 3}), 24.274589, 1e-6);
    double p[4];
    tz_bleu_stats s = {.hyp_len = 6, .ref_len = 6, .correct = {5, 2, 0, 0}, .total = {6, 5, 4, 3}};
    tz_bleu_score(&s, p, NULL);
    cr_assert_float_eq(p[2], 12.5, 1e-9);
    cr_assert_float_eq(p[3], 100.0 / 12, 1e-9);
}

Test(bleu, empty_and_perfect) {
    const char *empty[] = {"", ""}, *ref[] = {"the cat sat on the mat", "a dog barks loudly"};
    cr_assert_eq(tz_bleu_corpus_text(empty, ref, 2), 0.0);
    cr_assert_float_eq(tz_bleu_corpus_text(ref, ref, 2), 100.0, 1e-9);
    cr_assert_eq(tz_bleu_corpus_text(empty, ref, 0), 0.0); // no sentences
    // a perfect match too short to have a 4-gram: sacreBLEU gives 0 (no effective order)
    const char *two[] = {"a b"};
    cr_assert_eq(tz_bleu_corpus_text(two, two, 1), 0.0);
}

Test(bleu, against_python_sacrebleu_algorithm) {
    const char *h1[] = {"the cat sat on the mat", "a dog"}, *r1[] = {"the cat is on the mat", "a big dog ran"};
    cr_assert_float_eq(tz_bleu_corpus_text(h1, r1, 2), 28.616603, 1e-6);
    const char *h2[] = {"a b c d e", "x y"}, *r2[] = {"a b c x e", "x z"};
    cr_assert_float_eq(tz_bleu_corpus_text(h2, r2, 2), 39.281465, 1e-6);
    // clipping: "the" x7 matches only twice
    const char *h3[] = {"the the the the the the the"}, *r3[] = {"the cat is on the mat"};
    cr_assert_float_eq(tz_bleu_corpus_text(h3, r3, 1), 7.809850, 1e-6);
    const char *h4[] = {"il est un professeur .", "je suis fatigué .", "elle a mangé la pomme rouge ."};
    const char *r4[] = {"c' est un professeur .", "je suis très fatigué .", "elle a mangé une pomme rouge ."};
    cr_assert_float_eq(tz_bleu_corpus_text(h4, r4, 3), 40.520415, 1e-6);
    // Python's split() also splits on the no-break space
    const char *h5[] = {"bonjour\xc2\xa0! ça  va ?"}, *r5[] = {"bonjour ! ça va ?"};
    cr_assert_float_eq(tz_bleu_corpus_text(h5, r5, 1), 100.0, 1e-9);
}

Test(bleu, ids_and_text_agree) {
    // the same corpus as ids (1 the, 2 cat, 3 sat, 4 on, 5 mat, 6 is, 7 a, 8 dog, 9 big, 10 ran)
    const int a[] = {1, 2, 3, 4, 1, 5}, b[] = {7, 8}, ra[] = {1, 2, 6, 4, 1, 5}, rb[] = {7, 9, 8, 10};
    const int *hyp[] = {a, b}, *ref[] = {ra, rb};
    cr_assert_float_eq(tz_bleu_corpus(hyp, (int[]){6, 2}, ref, (int[]){6, 4}, 2), 28.616603, 1e-6);
}

Test(bleu, by_source_length) {
    // sources of 3, 6, 9 and 12 tokens: buckets 1-4, 5-7 and 8+ (the last takes the 12)
    const int good[] = {1, 2, 3, 4, 5}, bad[] = {9, 9, 9, 9, 9};
    const int *hyp[] = {good, bad, good, bad}, *ref[] = {good, good, good, good};
    const int n5[] = {5, 5, 5, 5}, src_n[] = {3, 6, 9, 12}, upper[] = TZ_BLEU_BUCKETS;
    double score[3];
    int count[3];
    tz_bleu_by_length(src_n, hyp, n5, ref, n5, 4, upper, 3, score, count);
    cr_assert_float_eq(score[0], 100.0, 1e-9);
    cr_assert_eq(score[1], 0.0);
    cr_assert_eq(count[0], 1);
    cr_assert_eq(count[1], 1);
    cr_assert_eq(count[2], 2);
    // bucket 3: one perfect and one hopeless sentence of 5: precisions 5/10, 4/8, 3/6, 2/4 -> 50
    cr_assert_float_eq(score[2], 50.0, 1e-9);
}
