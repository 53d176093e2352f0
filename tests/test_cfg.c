// The cfg reader: ranges of every schema's numbers, quoting that survives a write and a read for
// any value, reading from memory, sizes refused before allocating, and clear messages.
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "helpers.h"
#include "json.h"
#include "ffn.h"
#include "init.h"
#include "optim.h"
#include "recurrent.h"
#include "schedule.h"
#include "setup.h"
#include "vocab.h"

static const char *base = "[model]\ntype = rnn\n[data]\npath = x.txt\n";

// The error of loading text (+ one override), or NULL if it loads.
static const char *load_error(const char *text, const char *override) {
    static cfg c;
    char *over[1] = {(char *) override};
    int failed = EXPECT_FAIL(tz_cfg_load_text(&c, text, strlen(text), "t.cfg", over, override ? 1 : 0));
    return failed ? tz_last_error() : NULL;
}

static const char *with(const char *section_and_line) {
    static char text[8192];
    snprintf(text, sizeof text, "%s%s", base, section_and_line);
    return text;
}

Test(cfg, every_number_key_of_every_schema_has_a_range_that_fits_its_type) {
    int n;
    const tz_model_def *const *all = tz_models(&n);
    for (int m = 0; m < n; m++) {
        const cfg_key *schemas[TZ_SCHEMAS];
        int n_schemas = tz_schemas(all[m], schemas);
        for (int s = 0; s < n_schemas; s++)
            for (const cfg_key *k = schemas[s]; k->section; k++) {
                if (k->type != CFG_INT && k->type != CFG_FLOAT) continue;
                cr_assert(k->min < k->max, "[%s] %s of %s has no range", k->section, k->key, all[m]->name);
                if (k->type == CFG_INT)
                    cr_assert(k->min >= INT_MIN && k->max <= INT_MAX, "[%s] %s", k->section, k->key);
            }
        static cfg c; // and cfg_init accepts it (defaults inside their ranges)
        cfg_init(&c, schemas, n_schemas);
    }
}

Test(cfg, out_of_range_and_overflowing_numbers_fail_at_read_time) {
    cr_assert_str_eq(load_error(base, "model.hidden=4294967297"),
                     "command line override 1: [model] hidden = 4294967297: must be in [1, 65536]");
    cr_assert_str_eq(load_error(base, "train.batch=-4294967292"),
                     "command line override 1: [train] batch = -4294967292: must be in [1, 65536]");
    cr_assert_str_eq(load_error(base, "train.steps=99999999999999999999999"),
                     "command line override 1: [train] steps = 99999999999999999999999: must be in [0, 1000000000]");
    cr_assert_str_eq(load_error(with("[train]\nclip = -1\n"), NULL),
                     "t.cfg:6: [train] clip = -1: must be in [0, 1e+30]");
    cr_assert_str_eq(load_error(with("[optim]\nlr = 1e999\n"), NULL),
                     "t.cfg:6: [optim] lr = 1e999: must be in [0, 1e+300]");
    cr_assert_str_eq(load_error(with("[optim]\nlr = nan\n"), NULL),
                     "t.cfg:6: [optim] lr = 'nan' is not a number (want a number)");
    cr_assert_str_eq(load_error(with("[optim]\nlr = inf\n"), NULL),
                     "t.cfg:6: [optim] lr = inf: must be in [0, 1e+300]");
    const char *negative[] = {"train.clip_value=-1",      "train.eval_tokens=-1", "train.patience=-1",
                              "train.threads=-1",         "sample.tokens=-100",   "sample.temperature=-1",
                              "sample.top_k=-1",          "model.dropout=-0.5",   "model.dropout=1",
                              "train.eval_every=0",       "train.log_every=0",    "schedule.every=0",
                              "sample.tokens=2147483647", "model.layers=100000",  "model.layers=0"};
    for (size_t i = 0; i < sizeof negative / sizeof *negative; i++) {
        const char *e = load_error(base, negative[i]);
        cr_assert(e && strstr(e, ": must be in ["), "%s: %s", negative[i], e ? e : "accepted");
    }
    // 0 stays "off" where it is documented so, and the edges of a range are in it.
    cr_assert_null(load_error(base, "train.clip=0"));
    cr_assert_null(load_error(base, "sample.tokens=0"));
    cr_assert_null(load_error(base, "sample.top_k=2147483647"));
    cr_assert_null(load_error(base, "train.seed=2147483647"));
}

// A string key with choices takes one of them, checked where it is read (file:line, command line,
// a program's cfg_set), the choices listed; every schema's default is among its choices.
Test(cfg, strings_with_choices_fail_at_read_time) {
    cr_assert_null(load_error(with("[optim]\nname = adam\n"), NULL));
    cr_assert_null(load_error(base, "data.tokenizer=bpe"));
    cr_assert_str_eq(load_error(with("[optim]\nname = adamx\n"), NULL),
                     "t.cfg:6: [optim] name = 'adamx' (want sgd, adagrad, rmsprop, adam or adamw)");
    // overrides; no prefix, suffix or case match
    static const char *const refused[][2] = {
        {"train.final=first", "[train] final = 'first' (want last or best)"},
        {"train.on_nonfinite=", "[train] on_nonfinite = '' (want stop or skip)"},
        {"schedule.kind=cos", "[schedule] kind = 'cos' (want constant, step, cosine, linear or noam)"},
        {"schedule.kind=cosines", "[schedule] kind = 'cosines' (want constant, step, cosine, linear or noam)"},
        {"data.tokenizer=Word", "[data] tokenizer = 'Word' (want char, word or bpe)"}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "command line override 1: %s", refused[i][1]);
        const char *e = load_error(base, refused[i][0]);
        cr_assert(e && !strcmp(e, want), "%s: %s", refused[i][0], e ? e : "accepted");
    }
    static cfg c;
    tz_cfg_init(&c, tz_model_find("mlp"));
    cr_assert(EXPECT_FAIL(cfg_set(&c, "model", "shared_pairs", "sometimes", "test")));
    cr_assert_str_eq(tz_last_error(), "test: [model] shared_pairs = 'sometimes' (want auto, always or never)");
    cfg_set(&c, "model", "shared_pairs", "never", "test");
    cr_assert_str_eq(cfg_str(&c, "model", "shared_pairs"), "never");
    // a schema whose default is not a choice, or with choices on a number, is the program's bug
    static const cfg_key bad_default[] = {{"x", "k", CFG_STR, "c", "help", 0, 0, "a b"}, {0}};
    static const cfg_key bad_type[] = {{"x", "n", CFG_INT, "1", "help", 0, 9, "1 2"}, {0}};
    const cfg_key *s1[] = {bad_default}, *s2[] = {bad_type};
    cr_assert(EXPECT_FAIL(cfg_init(&c, s1, 1)));
    cr_assert_str_eq(tz_last_error(), "cfg schema: [x] k: the default is not a valid value");
    cr_assert(EXPECT_FAIL(cfg_init(&c, s2, 1)));
    cr_assert_str_eq(tz_last_error(), "cfg schema: [x] n: choices are for string keys");
}

// The keys whose values the code maps without a check of its own (cfg's choices are that check)
// carry choices in every model's schemas, also where a model's entry replaces its family's.
Test(cfg, keys_the_code_maps_have_choices) {
    static const char *const mapped[][2] = {{"model", "shared_pairs"}, {"model", "form"},   {"model", "readout"},
                                            {"model", "score"},        {"model", "ffn"},    {"model", "positions"},
                                            {"model", "cell"},         {"model", "init"},   {"data", "tokenizer"},
                                            {"data", "kind"},          {"train", "final"},  {"train", "on_nonfinite"},
                                            {"optim", "name"},         {"schedule", "kind"}};
    int n;
    const tz_model_def *const *all = tz_models(&n);
    for (int m = 0; m < n; m++) {
        static cfg c;
        const cfg_key *schemas[TZ_SCHEMAS];
        cfg_init(&c, schemas, tz_schemas(all[m], schemas));
        for (int i = 0; i < c.n; i++)
            for (size_t k = 0; k < sizeof mapped / sizeof mapped[0]; k++)
                if (!strcmp(c.v[i].key->section, mapped[k][0]) && !strcmp(c.v[i].key->key, mapped[k][1]))
                    cr_assert(c.v[i].key->choices, "%s: [%s] %s has no choices", all[m]->name, mapped[k][0],
                              mapped[k][1]);
    }
}

// The choices written in the schemas are the names the parsers know (nn/, train/vocab.c): each
// word parses back to itself, and where the parser's names can be listed, cfg accepts each.
static const char *choices_of(const char *model, const char *section, const char *key) {
    static cfg c;
    tz_cfg_init(&c, tz_model_find(model));
    for (int i = 0; i < c.n; i++)
        if (!strcmp(c.v[i].key->section, section) && !strcmp(c.v[i].key->key, key)) return c.v[i].key->choices;
    cr_assert_fail("%s has no [%s] %s", model, section, key);
    return NULL;
}
// Whether a model's cfg takes section.key = value.
static int accepts(const char *model, const char *section, const char *key, const char *value) {
    static cfg c;
    tz_cfg_init(&c, tz_model_find(model));
    return !EXPECT_FAIL(cfg_set(&c, section, key, value, "test"));
}
#define FOR_WORDS(W, CHOICES) \
    for (char list_[512], *W = strtok(strcpy(list_, (CHOICES)), " "); W; W = strtok(NULL, " "))

Test(cfg, choices_are_the_parsers_names) {
    const char *init = choices_of("lstm", "model", "init"), *optim = choices_of("rnn", "optim", "name");
    const char *sched = choices_of("rnn", "schedule", "kind"), *tok = choices_of("rnn", "data", "tokenizer");
    const char *ffn = choices_of("transformer", "model", "ffn"), *cell = choices_of("hybrid", "model", "cell");
    FOR_WORDS(w, init) {
        nn_init_kind k;
        cr_assert(nn_init_parse(w, &k) && !strcmp(nn_init_name(k), w), "init %s", w);
    }
    for (int k = 0; strcmp(nn_init_name((nn_init_kind)k), "unknown"); k++)
        cr_assert(accepts("lstm", "model", "init", nn_init_name((nn_init_kind)k)), "init %s is no choice",
                  nn_init_name((nn_init_kind)k));
    FOR_WORDS(w, optim) cr_assert_str_eq(nn_optim_name(nn_optim_parse(w)), w);
    for (int k = 0; strcmp(nn_optim_name((nn_optim_kind)k), "unknown"); k++)
        cr_assert(accepts("rnn", "optim", "name", nn_optim_name((nn_optim_kind)k)), "optim %s",
                  nn_optim_name((nn_optim_kind)k));
    FOR_WORDS(w, sched) cr_assert_str_eq(nn_schedule_name(nn_schedule_parse(w)), w);
    for (int k = 0; strcmp(nn_schedule_name((nn_schedule_kind)k), "unknown"); k++)
        cr_assert(accepts("rnn", "schedule", "kind", nn_schedule_name((nn_schedule_kind)k)), "schedule %s",
                  nn_schedule_name((nn_schedule_kind)k));
    FOR_WORDS(w, tok) {
        tz_tok_kind k;
        cr_assert(tz_tok_parse(w, &k) && !strcmp(tz_tok_name(k), w), "tokenizer %s", w);
    }
    FOR_WORDS(w, ffn) {
        nn_ffn_kind k;
        cr_assert(nn_ffn_parse(w, &k), "ffn %s", w);
    }
    FOR_WORDS(w, cell) {
        nn_cell_kind k;
        cr_assert(nn_cell_parse(w, &k) && !strcmp(nn_cell_name(k), w), "cell %s", w);
    }
}

Test(cfg, cfg_int_returns_the_value_read) {
    static cfg c;
    char *over[] = {"train.threads=1024", "train.seed=2147483647"};
    tz_cfg_load_text(&c, base, strlen(base), "t.cfg", over, 2);
    cr_assert_eq(cfg_int(&c, "train", "threads"), 1024);
    cr_assert_eq(cfg_int(&c, "train", "seed"), INT_MAX);
}

Test(cfg, sizes_that_cannot_fit_fail_before_allocating) {
    const char *e = load_error("[model]\ntype = lstm\nlayers = 1024\nhidden = 65536\n[data]\npath = x\n", NULL);
    cr_assert(e && strstr(e, "model needs ") && strstr(e, "more than this machine's memory"), "%s", e ? e : "accepted");
    e = load_error(base, "train.batch=1024 ");
    cr_assert_null(e, "%s", e);
    char text[256];
    snprintf(text, sizeof text, "%s[train]\nbatch = 65536\nblock = 65536\n", base);
    e = load_error(text, NULL);
    cr_assert(e && strstr(e, "activations of more than 2^31-1 elements"), "%s", e ? e : "accepted");
    e = load_error("[model]\ntype = transformer\n[data]\npath = x\n[train]\nblock = 16384\nbatch = 4\n", NULL);
    cr_assert(e && strstr(e, "attention weights of more than 2^31-1 elements"), "%s", e ? e : "accepted");
    // The parameter block itself refuses to grow past the machine's memory.
    cr_assert(EXPECT_FAIL(tz_params_check_size((size_t)1 << 50)));
    cr_assert(strstr(tz_last_error(), "model needs 1125899906842624 parameters ("));
    tz_params_check_size(1000);
}

// Writes c as cfg text and reads it back into d (same schemas).
static void write_and_read(const cfg *c, cfg *d, const tz_model_def *def) {
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    cfg_write(c, f);
    fclose(f);
    tz_cfg_init(d, def);
    cfg_read_string(d, text, len, "written");
    free(text);
}

Test(cfg, every_value_survives_a_write_and_a_read) {
    const tz_model_def *rnn = tz_model_find("rnn");
    static cfg c, d;
    tz_cfg_init(&c, rnn);
    char all[256];
    for (int i = 1; i < 256; i++) all[i - 1] = (char)i; // every byte but NUL
    all[255] = 0;
    const char *values[] = {
        all,  "Q; A #1", "\n", " leading and trailing ",      "\"quoted\"", "back\\slash", "\\n", "#", "",
        "\t", "a\"b",    "\"", "x # not a comment ; nor this"};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        cfg_set(&c, "sample", "prompt", values[i], "test");
        cfg_set(&c, "data", "path", values[i], "test");
        write_and_read(&c, &d, rnn);
        cr_assert_str_eq(cfg_str(&d, "sample", "prompt"), values[i], "value %zu", i);
        cr_assert_str_eq(cfg_str(&d, "data", "path"), values[i], "value %zu", i);
    }
    tz_rng r;
    tz_rng_seed(&r, 5);
    for (int trial = 0; trial < 300; trial++) { // random strings of bytes 1..255, up to the longest value
        char s[CFG_VALUE_MAX];
        int n = (int)tz_rng_below(&r, CFG_VALUE_MAX);
        for (int i = 0; i < n; i++) s[i] = (char)(1 + tz_rng_below(&r, 255));
        s[n] = 0;
        cfg_set(&c, "sample", "prompt", s, "test");
        write_and_read(&c, &d, rnn);
        cr_assert_str_eq(cfg_str(&d, "sample", "prompt"), s, "trial %d", trial);
    }
}

Test(cfg, the_default_prompt_is_written_quoted) {
    static cfg c;
    tz_cfg_init(&c, tz_model_find("rnn"));
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    cfg_write(&c, f);
    fclose(f);
    cr_assert(strstr(text, "\nprompt = \"\\n\" "), "%s", text);
    free(text);
}

Test(cfg, quoted_values_and_their_errors) {
    static cfg c;
    const char *text = "[model]\ntype = \"rnn\" # quoted\n[data]\npath = \"a\\x23b\\tc\" ; comment\n"
                       "[sample]\nprompt = \"Q; A #1\\n\"\n";
    tz_cfg_load_text(&c, text, strlen(text), "t.cfg", NULL, 0);
    cr_assert_str_eq(cfg_str(&c, "data", "path"), "a#b\tc");
    cr_assert_str_eq(cfg_str(&c, "sample", "prompt"), "Q; A #1\n");
    char *over[] = {"sample.prompt=\"  \\\"x\\\"  \"", "data.path=a;b#c"};
    tz_cfg_load_text(&c, text, strlen(text), "t.cfg", over, 2);
    cr_assert_str_eq(cfg_str(&c, "sample", "prompt"), "  \"x\"  ");
    cr_assert_str_eq(cfg_str(&c, "data", "path"), "a;b#c", "overrides take the text as it is");
    cr_assert_str_eq(load_error(with("[sample]\nprompt = \"abc\n"), NULL),
                     "t.cfg:6: [sample] prompt: the value has no closing quote");
    cr_assert_str_eq(load_error(with("[sample]\nprompt = \"a\" b\n"), NULL),
                     "t.cfg:6: [sample] prompt: the value has text after the closing quote");
    cr_assert(strstr(load_error(with("[sample]\nprompt = \"a\\q\"\n"), NULL),
                     "t.cfg:6: [sample] prompt: the value has an unknown escape"));
    cr_assert(strstr(load_error(with("[sample]\nprompt = \"\\x00\"\n"), NULL), "\\x00"));
    cr_assert(strstr(load_error(with("[sample]\nprompt = \"\\x4\"\n"), NULL), "two hex digits"));
}

Test(cfg, text_from_memory_names_its_source) {
    static cfg c;
    const char *text = "[model]\ntype = rnn\n[data]\npath = x\n[train]\nsteps = many\n";
    cr_assert(EXPECT_FAIL(tz_cfg_load_text(&c, text, strlen(text), "runs/x/last.safetensors (saved cfg)", NULL, 0)));
    cr_assert_str_eq(
        tz_last_error(),
        "runs/x/last.safetensors (saved cfg):6: [train] steps = 'many' is not an integer (want an integer)");
    cr_assert(EXPECT_FAIL(tz_cfg_load_text(&c, "[data]\npath = x\n", 15, "saved", NULL, 0)));
    cr_assert_str_eq(tz_last_error(), "saved: [model] type is required (mlp, rnn, lstm, gru, transformer, hybrid)");
    // len bounds the text: what follows is not read.
    const char *more = "[model]\ntype = gru\n[data]\npath = x\n[train]\nsteps = 5\nXX";
    const tz_model_def *def = tz_cfg_load_text(&c, more, (size_t)(strstr(more, "XX") - more), "saved", NULL, 0);
    cr_assert_str_eq(def->name, "gru");
    cr_assert_eq(cfg_int(&c, "train", "steps"), 5);
}

Test(cfg, clear_messages_for_what_is_not_a_cfg) {
    char text[64] = "[model]\ntype = rnn\x00\n";
    static cfg c;
    cr_assert(EXPECT_FAIL(tz_cfg_load_text(&c, text, 20, "t.cfg", NULL, 0)));
    cr_assert_str_eq(tz_last_error(), "t.cfg:2: a NUL byte at column 11 (a cfg is text)");
    cr_assert(EXPECT_FAIL(tz_cfg_load_text(&c, "", 0, "t.cfg", NULL, 0)));
    cr_assert_str_eq(tz_last_error(), "t.cfg: an empty cfg (no [section] and no key = value line)");
    char *long_line = malloc(6000);
    snprintf(long_line, 6000, "[model]\n\n# %05000d\n", 0);
    cr_assert(EXPECT_FAIL(tz_cfg_load_text(&c, long_line, strlen(long_line), "t.cfg", NULL, 0)));
    cr_assert_str_eq(tz_last_error(), "t.cfg:3: line of 5002 characters, longer than 4096");
    free(long_line);
    char dir[] = "/tmp/tapezoo-cfgdir-XXXXXX";
    cr_assert(mkdtemp(dir));
    cr_assert(EXPECT_FAIL(tz_cfg_load(&c, dir, NULL, 0)));
    char want[128];
    snprintf(want, sizeof want, "%s: is a directory, not a cfg file", dir);
    cr_assert_str_eq(tz_last_error(), want);
    rmdir(dir);
    char path[] = "/tmp/tapezoo-cfgempty-XXXXXX";
    close(mkstemp(path));
    cr_assert(EXPECT_FAIL(tz_cfg_load(&c, path, NULL, 0)));
    snprintf(want, sizeof want, "%s: the cfg file is empty", path);
    cr_assert_str_eq(tz_last_error(), want);
    unlink(path);
}

Test(cfg, json_is_valid_and_escapes_through_json_c) {
    static cfg c;
    char *over[] = {"sample.prompt=\"q\\\"\\n\\x01\"", "optim.lr=+.5", "train.steps=007"};
    tz_cfg_load_text(&c, base, strlen(base), "t.cfg", over, 3);
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    cfg_write_json(&c, f);
    fclose(f);
    json j;
    const char *err;
    cr_assert(json_parse(text, len, &j, &err), "%s: %s", err, text);
    cr_assert_str_eq(json_get(&j, "sample.prompt")->string, "q\"\n\x01");
    cr_assert_float_eq(json_get(&j, "optim.lr")->number, 0.5, 1e-15);
    cr_assert_float_eq(json_get(&j, "train.steps")->number, 7, 0);
    json_free(&j);
    free(text);
}

// A model's own [model] key over its family's: the recurrent LMs share their keys
// (recurrent_lm_keys), and LSTM and GRU stack two layers by default where the RNN has one.
Test(cfg, a_models_own_key_takes_the_place_of_its_familys) {
    static cfg c;
    const char *names[] = {"rnn", "lstm", "gru", "hybrid"};
    const int layers[] = {1, 2, 2, 1};
    for (int i = 0; i < 4; i++) {
        const tz_model_def *def = tz_model_find(names[i]);
        cr_assert(def->family_keys, "%s has the recurrent LMs' keys", names[i]);
        tz_cfg_init(&c, def);
        cr_assert_eq(cfg_int(&c, "model", "layers"), layers[i], "%s", names[i]);
        cr_assert_eq(cfg_int(&c, "model", "hidden"), 256, "%s", names[i]);
        int n = 0;
        for (int k = 0; k < c.n; k++) n += !strcmp(c.v[k].key->section, "model") && !strcmp(c.v[k].key->key, "layers");
        cr_assert_eq(n, 1, "%s: one [model] layers", names[i]);
    }
}
