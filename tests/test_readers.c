// The readers of shared files on bad input: the safetensors checkpoint reader (every byte offset
// of a truncated checkpoint, crafted headers), the JSON header parser, the sampler's options; and
// that sampling step by step computes the same logits as forward for every model of the zoo.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "helpers.h"
#include "json.h"
#include "sampler.h"
#include "setup.h"

// ---------------------------------------------------------------------------------------------
// A small checkpoint (two tensors, Adam's state, a carried state) in memory.

typedef struct {
    unsigned char *p;
    size_t n;
} bytes;

static tz_params ckpt_params(int rows) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *w = tz_param(&P, "layer.weight", 2, (const int[]){rows, 4});
    tz_param(&P, "layer.bias", 1, (const int[]){rows});
    for (int i = 0; i < w->n; i++) w->data[i] = 0.25f * i;
    return P;
}

static bytes read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    bytes b = {malloc(1 << 20), 0};
    b.n = fread(b.p, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static bytes small_ckpt(void) {
    tz_params P = ckpt_params(3);
    nn_optim_config oc = nn_optim_defaults(NN_OPTIM_ADAM);
    nn_optim o;
    nn_optim_init(&o, &P, &oc);
    real carried[5] = {1, 2, 3, 4, 5};
    tz_ckpt_meta m = {.step = 42,
                      .best_val = 1.5,
                      .best_step = 40,
                      .rng = {1, 2, 3, 4},
                      .carried = carried,
                      .carried_n = 5,
                      .cfg_text = "[model]\ntype = mlp\n",
                      .vocab_text = "tapezoo-vocab"};
    strcpy(m.model, "mlp");
    char path[] = "/tmp/tapezoo-readers-XXXXXX";
    close(mkstemp(path));
    tz_ckpt_save(path, &P, &o, &m);
    bytes b = read_all(path);
    unlink(path);
    nn_optim_free(&o);
    tz_params_free(&P);
    return b;
}

// The checkpoint b with its header's first `from` replaced by `to` (the header length follows).
static bytes edit(bytes b, const char *from, const char *to) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b.p[i];
    char *hdr = strndup((const char *)b.p + 8, n);
    char *at = strstr(hdr, from);
    cr_assert(at, "'%s' is not in the header", from);
    size_t fl = strlen(from), tl = strlen(to), nn = n - fl + tl, data = b.n - 8 - n;
    bytes e = {malloc(8 + nn + data), 8 + nn + data};
    for (int i = 0; i < 8; i++) e.p[i] = (unsigned char)((uint64_t)nn >> (8 * i));
    size_t pre = (size_t)(at - hdr);
    memcpy(e.p + 8, hdr, pre);
    memcpy(e.p + 8 + pre, to, tl);
    memcpy(e.p + 8 + pre + tl, at + fl, n - pre - fl);
    memcpy(e.p + 8 + nn, b.p + 8 + n, data);
    free(hdr);
    return e;
}

// Loads b as the 3-row model (with Adam); returns the error message, NULL if it loaded.
static const char *load_error(bytes b) {
    static char msg[512];
    tz_params P = ckpt_params(3);
    nn_optim_config oc = nn_optim_defaults(NN_OPTIM_ADAM);
    nn_optim o;
    nn_optim_init(&o, &P, &oc);
    tz_ckpt_meta m = {0};
    real carried[5];
    int failed = EXPECT_FAIL(tz_ckpt_read_meta_mem(b.p, b.n, "x.safetensors", &m));
    if (!failed) {
        tz_ckpt_meta_free(&m);
        failed = EXPECT_FAIL(tz_ckpt_load_mem(b.p, b.n, "x.safetensors", &P, &o));
    }
    if (!failed) failed = EXPECT_FAIL(tz_ckpt_load_carried_mem(b.p, b.n, "x.safetensors", carried, 5));
    nn_optim_free(&o);
    tz_params_free(&P);
    if (!failed) return NULL;
    snprintf(msg, sizeof msg, "%s", tz_last_error());
    cr_assert(!strchr(msg, '\n'), "one line: %s", msg);
    cr_assert(strstr(msg, "checkpoint x.safetensors: "), "names the file: %s", msg);
    return msg;
}

#define EXPECT_LOAD_ERROR(b, substring) \
    do { \
        const char *msg_ = load_error(b); \
        cr_assert(msg_, "loaded, expected '%s'", substring); \
        cr_assert(strstr(msg_, substring), "'%s' lacks '%s'", msg_, substring); \
    } while (0)

Test(checkpoint, valid_one_loads) {
    bytes b = small_ckpt();
    cr_assert_null(load_error(b));
    tz_ckpt_meta m;
    tz_ckpt_read_meta_mem(b.p, b.n, "x", &m);
    cr_assert_eq(m.step, 42);
    cr_assert_eq(m.best_step, 40);
    cr_assert_eq(m.rng[3], 4);
    tz_ckpt_meta_free(&m);
    real carried[5];
    cr_assert_eq(tz_ckpt_load_carried_mem(b.p, b.n, "x", carried, 5), 1);
    cr_assert_eq(carried[4], 5);
    cr_assert_eq(tz_ckpt_load_carried_mem(b.p, b.n, "x", carried, 4), -1);
    free(b.p);
}

// Every prefix of a valid checkpoint is refused with one line (never a crash), from memory and,
// at a few offsets, from a file.
Test(checkpoint, truncated_at_every_byte) {
    bytes b = small_ckpt();
    for (size_t k = 0; k < b.n; k++) {
        const char *msg = load_error((bytes){b.p, k});
        cr_assert(msg, "a checkpoint cut at byte %zu of %zu loaded", k, b.n);
    }
    size_t cuts[] = {0, 4, 8, 9, 100, b.n / 2, b.n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        char path[] = "/tmp/tapezoo-readers-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_eq(write(fd, b.p, cuts[k]), (ssize_t)cuts[k]);
        close(fd);
        tz_ckpt_meta m = {0};
        tz_params P = ckpt_params(3);
        int failed = EXPECT_FAIL(tz_ckpt_read_meta(path, &m)) && EXPECT_FAIL(tz_ckpt_load(path, &P, NULL));
        cr_assert(failed, "cut at %zu loaded", cuts[k]);
        cr_assert(strstr(tz_last_error(), path), "%s", tz_last_error());
        tz_params_free(&P);
        unlink(path);
    }
    free(b.p);
}

Test(checkpoint, many_dimensions_before_anything_else) {
    bytes b = small_ckpt();
    char shape[600] = "\"shape\":[";
    for (int i = 0; i < 100; i++) strcat(shape, "1,");
    strcat(shape, "3,4]");
    bytes e = edit(b, "\"shape\":[3,4]", shape);
    EXPECT_LOAD_ERROR(e, "tensor 'layer.weight' has 102 dimensions, at most 4 are supported");
    free(e.p), free(b.p);
}

Test(checkpoint, crafted_headers) {
    bytes b = small_ckpt();
    static const struct {
        const char *from, *to, *error;
    } cases[] = {
        {"\"step\":\"42\"", "\"step\":\"abc\"", "step = 'abc' is not a whole number"},
        {"\"step\":\"42\"", "\"step\":\"42x\"", "step = '42x'"},
        {"\"step\":\"42\"", "\"step\":\"-5\"", "step = '-5'"},
        {"\"step\":\"42\"", "\"step\":\"99999999999999999999\"", "step = '99999999999999999999'"},
        {"\"best_step\":\"40\"", "\"best_step\":\"43\"", "best_step = '43' is not a whole number in [-1, 42]"},
        {"\"best_val\":\"1.5\"", "\"best_val\":\"nan\"", "best_val = 'nan'"},
        {"\"optim_step\":\"", "\"optim_step\":\"x", "optim_step = 'x"},
        {"\"rng\":\"0000000000000001", "\"rng\":\"zz00000000000001", "rng = 'zz"},
        {"\"rng\":\"0000000000000001", "\"rng\":\"0000000000000001 ", "not an RNG state"},
        {"\"step\":\"42\",", "", "no 'step' in __metadata__"},
        {"\"format\":\"tapezoo-1\"", "\"format\":\"tapezoo-9\"", "unknown format 'tapezoo-9'"},
        {"\"format\":\"tapezoo-1\"", "\"format\":7", "__metadata__ 'format' is not a string"},
        {"\"dtype\":\"F32\"", "\"dtype\":\"F16\"",
         "tensor 'layer.weight' has data_offsets [0,48] (48 bytes), its shape and dtype F16 need 24"},
        {"\"dtype\":\"F32\",\"shape\":[3]", "\"dtype\":\"I32\",\"shape\":[3]",
         "tensor 'layer.bias' is I32, this build reads F32"},
        {"\"dtype\":\"F32\"", "\"dtype\":\"X99\"", "unknown dtype 'X99'"},
        {"\"shape\":[3,4]", "\"shape\":[-3,4]", "shape entry 0 is not a whole number"},
        {"\"shape\":[3,4]", "\"shape\":[3.5,4]", "shape entry 0 is not a whole number"},
        {"\"shape\":[3,4]", "\"shape\":[2147483647,2147483647,2147483647]", "more than 2^40 elements"},
        {"\"shape\":[3,4]", "\"shape\":[4,3]", "tensor 'layer.weight' has shape [4,3], the model wants [3,4]"},
        {"\"data_offsets\":[0,48]", "\"data_offsets\":[48,0]", "reversed data_offsets [48,0]"},
        {"\"data_offsets\":[0,48]", "\"data_offsets\":[0,4800000]", "beyond the"},
        {"\"data_offsets\":[0,48]", "\"data_offsets\":[4,52]", "overlap"},
        {"\"data_offsets\":[0,48]", "\"data_offsets\":[-8,40]", "bad data_offsets"},
        {"\"data_offsets\":[0,48]", "\"data_offsets\":[0,48,96]", "bad data_offsets"},
        {"\"data_offsets\":[0,48]", "\"data_offsets\":[0,1e300]", "bad data_offsets"},
        {"\"layer.weight\"", "\"layer.weigh\"", "no tensor 'layer.weight'"},
        {"{\"layer.weight\"", "[{\"layer.weight\"", "bad header JSON"},
        {"\"__metadata__\":{",
         "\"__metadata__\":{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],",
         "nested too deeply"},
        {"\"__metadata__\":{", "\"__metadata__\":{\"x\":\"\\u0000\",", "\\u0000 in a string"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        bytes e = edit(b, cases[k].from, cases[k].to);
        EXPECT_LOAD_ERROR(e, cases[k].error);
        free(e.p);
    }
    // trailing bytes after the JSON, inside the header
    bytes e = edit(b, "}}", "}} x");
    EXPECT_LOAD_ERROR(e, "trailing characters");
    free(e.p);
    // a header length beyond the file, and beyond any sane header
    memcpy(b.p, (const unsigned char[]){0, 0, 0, 0, 0, 0, 0, 0x80}, 8);
    EXPECT_LOAD_ERROR(b, "header length 9223372036854775808 is over the limit");
    memcpy(b.p, (const unsigned char[]){0, 0, 0, 1, 0, 0, 0, 0}, 8);
    EXPECT_LOAD_ERROR(b, "header length 16777216 does not fit the file");
    free(b.p);
}

Test(checkpoint, another_model_names_tensor_and_both_shapes) {
    bytes b = small_ckpt();
    tz_params P = ckpt_params(5);
    cr_assert(EXPECT_FAIL(tz_ckpt_load_mem(b.p, b.n, "x.safetensors", &P, NULL)));
    cr_assert(strstr(tz_last_error(), "tensor 'layer.weight' has shape [3,4], the model wants [5,4]"), "%s",
              tz_last_error());
    tz_params_free(&P);
    free(b.p);
}

Test(checkpoint, not_a_regular_file) {
    tz_ckpt_meta m;
    cr_assert(EXPECT_FAIL(tz_ckpt_read_meta("/tmp", &m)));
    cr_assert(strstr(tz_last_error(), "checkpoint /tmp: not a regular file"), "%s", tz_last_error());
}

// ---------------------------------------------------------------------------------------------
// The JSON parser on its own. Inputs are copied to exactly-sized heap buffers, so reading past
// the end (the header is not NUL-terminated) is an AddressSanitizer error.

static const char *json_error(const char *text) {
    size_t n = strlen(text);
    char *buf = malloc(n ? n : 1);
    memcpy(buf, text, n);
    json j;
    const char *err = NULL;
    int ok = json_parse(buf, n, &j, &err);
    if (ok) json_free(&j);
    free(buf);
    return ok ? NULL : err;
}

Test(json, bad_input) {
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"", "unexpected end at byte 0"},
        {"tru", "bad value"},
        {"[true", "expected ',' or ']'"},
        {"nul", "bad value"},
        {"{\"a\":1} x", "trailing characters at byte 8"},
        {"{\"a\" 1}", "expected ':'"},
        {"\"abc", "unterminated string"},
        {"\"a\\", "unterminated string"},
        {"\"\\u12\"", "bad \\u escape"},
        {"\"\\uzzzz\"", "bad \\u escape"},
        {"\"\\q\"", "bad escape"},
        {"{1:2}", "expected a string"},
        {"[1,]", "bad value"},
        {"[--1]", "bad value"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *err = json_error(cases[k].text);
        cr_assert(err && strstr(err, cases[k].error), "'%s': got '%s', want '%s'", cases[k].text,
                  err ? err : "(parsed)", cases[k].error);
    }
    cr_assert_null(json_error("{\"a\":[1,2.5e3,-3],\"b\":{\"c\":null,\"d\":true,\"e\":false}}"));
}

Test(json, deep_nesting_is_refused_not_a_stack_overflow) {
    size_t n = 1 << 20;
    char *deep = malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = 0;
    const char *err = json_error(deep);
    cr_assert(err && strstr(err, "nested too deeply"), "%s", err ? err : "(parsed)");
    free(deep);
    char ok[2 * 60 + 1] = "";
    for (int i = 0; i < 60; i++) strcat(ok, "[");
    for (int i = 0; i < 60; i++) strcat(ok, "]");
    cr_assert_null(json_error(ok));
}

Test(json, strings_roundtrip) {
    const char *s = "a\"b\\c\nd\te\x01 \xc3\xa9";
    char *text;
    size_t n;
    FILE *f = open_memstream(&text, &n);
    json_write_string(f, s);
    fclose(f);
    json j;
    const char *err;
    cr_assert(json_parse(text, n, &j, &err));
    cr_assert_str_eq(j.string, s);
    json_free(&j);
    free(text);
    // Every byte but NUL, and each control byte alone: valid JSON that reads back as itself.
    char all[256];
    for (int i = 1; i < 256; i++) all[i - 1] = (char)i;
    all[255] = 0;
    for (int k = 0; k <= 0x20; k++) {
        char one[2] = {(char)(k == 0x20 ? 0x7f : k), 0};
        const char *in = k ? one : all;
        f = open_memstream(&text, &n);
        int wrote = json_write_quoted(f, in, QUOTE_JSON);
        fclose(f);
        cr_assert_eq((size_t)wrote, n, "the count returned is what was written");
        cr_assert(json_parse(text, n, &j, &err), "byte %d: %s", k, err);
        cr_assert_str_eq(j.string, in, "byte %d", k);
        json_free(&j);
        free(text);
    }
    cr_assert(json_parse("\"\\u00e9\\u20ac\"", 14, &j, &err));
    cr_assert_str_eq(j.string, "\xc3\xa9\xe2\x82\xac");
    json_free(&j);
}

// ---------------------------------------------------------------------------------------------
// The sampler.

Test(sampler, options_out_of_range_fail_with_one_line) {
    tz_sample_opts o = {.tokens = -100, .temperature = 0.8, .block = 16};
    cr_assert(EXPECT_FAIL(tz_sample_check(&o)));
    cr_assert(strstr(tz_last_error(), "tokens = -100 is out of range (0 to 10000000)"), "%s", tz_last_error());
    o.tokens = 2147483647;
    cr_assert(EXPECT_FAIL(tz_sample_check(&o)));
    o.tokens = 10, o.temperature = -1;
    cr_assert(EXPECT_FAIL(tz_sample_check(&o)));
    cr_assert(strstr(tz_last_error(), "temperature = -1"), "%s", tz_last_error());
    o.temperature = NAN;
    cr_assert(EXPECT_FAIL(tz_sample_check(&o)));
    o.temperature = 1, o.top_k = -2;
    cr_assert(EXPECT_FAIL(tz_sample_check(&o)));
    o.top_k = 0;
    tz_sample_check(&o);
}

// Builds a small model of the given type (V tokens, block 12).
static const tz_model_def *small_model(const char *type, cfg *c, int V, tz_params *P, void **m) {
    char text[512];
    snprintf(text, sizeof text, "[model]\ntype = %s\n[data]\npath = x.txt\n[train]\nblock = 12\n", type);
    char path[] = "/tmp/tapezoo-readers-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    static const char *const sizes[] = {"model.embed=8",    "model.hidden=16", "model.context=3", "model.heads=2",
                                        "model.d_model=16", "model.d_ff=32",   "model.layers=2"};
    const tz_model_def *def = tz_model_find(type);
    char *over[8];
    int n = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        for (const cfg_key *key = def->keys; key->section; key++)
            if (!strncmp(sizes[k] + 6, key->key, strlen(key->key)) && sizes[k][6 + strlen(key->key)] == '=')
                over[n++] = (char *)sizes[k];
    def = tz_cfg_load(c, path, over, n);
    unlink(path);
    tz_rng r;
    tz_rng_seed(&r, 7);
    tz_params_init(P);
    *m = def->create(c, V, cfg_int(c, "train", "block"), P, &r);
    for (size_t i = 0; i < P->n; i++) P->data[i] += 0.05f * (real)tz_rng_normal(&r); // biases and norms away from 0/1
    return def;
}

// What the sampler computes for each next token equals forward on the whole sequence, position
// by position, for every language model of the zoo (the hybrid once attended over one state).
Test(sampler, step_by_step_logits_equal_forward) {
    int count;
    const tz_model_def *const *models = tz_models(&count);
    for (int k = 0; k < count; k++) {
        const tz_model_def *def = models[k];
        if (def->pairs) continue;
        static cfg c;
        tz_params P;
        void *m;
        const int V = 11, L = 12, block = 12;
        small_model(def->name, &c, V, &P, &m);
        int ids[12];
        tz_rng r;
        tz_rng_seed(&r, 3);
        for (int i = 0; i < L; i++) ids[i] = (int)tz_rng_below(&r, V);
        tz_graph g;
        tz_graph_init(&g, 1 << 20);
        g.training = 0;
        tz_no_grad_begin(&g);
        if (def->stream) def->reset(m, 1);
        int ys[12] = {0};
        tz_batch b = {.B = 1, .T = L, .x = ids, .y = ys};
        tz_tensor *full = def->forward(&g, m, &b);
        int rows = tz_rows(full), first = L - rows; // the first position forward predicts
        real *want = malloc(sizeof(real) * full->n);
        memcpy(want, full->data, sizeof(real) * full->n);
        int fed = 0;
        for (int n = 1; n <= L; n++) {
            tz_graph_reset(&g);
            int Vs;
            const real *got = tz_sample_next(&g, def, m, ids, n, &fed, block, &Vs);
            cr_assert_eq(Vs, V);
            if (n - 1 < first) continue;
            for (int j = 0; j < V; j++) {
                real w = want[(n - 1 - first) * V + j];
                cr_assert(fabsf(got[j] - w) <= 1e-4f * (1 + fabsf(w)),
                          "%s: position %d, logit %d: sampling %g, forward %g", def->name, n - 1, j, got[j], w);
            }
        }
        free(want);
        tz_graph_free(&g);
        def->free(m);
        tz_params_free(&P);
    }
}
