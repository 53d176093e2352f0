// checkpoint.c: safetensors writer and reader (format: 8-byte little-endian header length, the
// JSON header, then the raw little-endian tensors back to back, offsets relative to the data).
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

#ifdef TZ_DOUBLE
#define DTYPE "F64"
#else
#define DTYPE "F32"
#endif

static void check_little_endian(void) {
    uint16_t one = 1;
    if (*(unsigned char *)&one != 1) tz_fail("checkpoint: safetensors is little-endian; this machine is not");
}

// 1 if all n bytes were written (ok accumulates: after the first failure nothing is tried).
static int write_all(FILE *f, const void *p, size_t n, int ok) { return ok && (!n || fwrite(p, 1, n, f) == n); }

void tz_ckpt_save(const char *path, const tz_params *P, const nn_optim *o, const tz_ckpt_meta *m) {
    check_little_endian();
    // The header, built in memory: its length comes first in the file.
    char *hdr;
    size_t hlen;
    FILE *h = open_memstream(&hdr, &hlen);
    if (!h) tz_fail("checkpoint %s: out of memory for the header", path);
    size_t off = 0;
    fputc('{', h);
    for (int i = 0; i < P->count; i++) {
        const tz_tensor *t = P->t[i];
        json_write_string(h, P->names[i]);
        fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", DTYPE);
        for (int d = 0; d < t->ndim; d++) fprintf(h, d ? ",%d" : "%d", t->shape[d]);
        fprintf(h, "],\"data_offsets\":[%zu,%zu]},", off, off + sizeof(real) * t->n);
        off += sizeof(real) * t->n;
    }
    for (int s = 0; o && s < o->n_state; s++) {
        fprintf(h, "\"optim.%s\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},", o->state_name[s],
                DTYPE, o->n, off, off + sizeof(real) * o->n);
        off += sizeof(real) * o->n;
    }
    if (m->carried && m->carried_n) {
        fprintf(h, "\"train.carried\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},", DTYPE,
                m->carried_n, off, off + sizeof(real) * m->carried_n);
        off += sizeof(real) * m->carried_n;
    }
    fprintf(h, "\"__metadata__\":{\"format\":\"tapezoo-1\",\"model\":");
    json_write_string(h, m->model);
    fprintf(h, ",\"step\":\"%ld\",\"best_val\":\"%.17g\",\"best_step\":\"%ld\",", m->step, m->best_val, m->best_step);
    fprintf(h, "\"rng\":\"%016llx %016llx %016llx %016llx\",", (unsigned long long)m->rng[0],
            (unsigned long long)m->rng[1], (unsigned long long)m->rng[2], (unsigned long long)m->rng[3]);
    fprintf(h, "\"dropout_rng\":\"%016llx %016llx %016llx %016llx\",", (unsigned long long)m->drop_rng[0],
            (unsigned long long)m->drop_rng[1], (unsigned long long)m->drop_rng[2], (unsigned long long)m->drop_rng[3]);
    fprintf(h, "\"optim_step\":\"%ld\",\"optim\":\"%s\",\"cfg\":", o ? o->step : 0L, o ? nn_optim_name(o->c.kind) : "");
    json_write_string(h, m->cfg_text ? m->cfg_text : "");
    fputs(",\"vocab\":", h);
    json_write_string(h, m->vocab_text ? m->vocab_text : "");
    if (m->src_vocab_text) {
        fputs(",\"src_vocab\":", h);
        json_write_string(h, m->src_vocab_text);
    }
    fputs("}}", h);
    for (long len = ftell(h); len % 8; len++) fputc(' ', h); // the data starts 8-aligned
    if (ferror(h) | fclose(h) || !hdr) free(hdr), tz_fail("checkpoint %s: out of memory for the header", path);

    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        free(hdr), tz_fail("checkpoint %.100s...: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) free(hdr), tz_fail("checkpoint %s: cannot create (%s)", tmp, strerror(errno));
    uint64_t n = hlen;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    int ok = write_all(f, le, 8, 1);
    ok = write_all(f, hdr, hlen, ok);
    for (int i = 0; i < P->count; i++) ok = write_all(f, P->t[i]->data, sizeof(real) * P->t[i]->n, ok);
    for (int s = 0; o && s < o->n_state; s++) ok = write_all(f, o->state[s], sizeof(real) * o->n, ok);
    if (m->carried && m->carried_n) ok = write_all(f, m->carried, sizeof(real) * m->carried_n, ok);
    ok = ok && !fflush(f) && !fsync(fileno(f));
    int err = errno;
    if (fclose(f) && ok) ok = 0, err = errno;
    free(hdr);
    if (!ok) { // the previous checkpoint at path is untouched; no half-written file is left
        unlink(tmp);
        tz_fail("checkpoint %s: write failed (%s); the previous checkpoint is kept", tmp, strerror(err));
    }
    if (rename(tmp, path))
        err = errno, unlink(tmp), tz_fail("checkpoint: cannot rename %s to %s (%s)", tmp, path, strerror(err));
}

// ---------------------------------------------------------------------------------------------
// Reading. The bytes come from an open file (checked seeks and reads naming the file and the
// byte offset) or from memory (the fuzz harness); either way every failure goes through rfail,
// which releases what the reader holds before tz_fail, so no error path leaks.

#define MAX_HEADER (100u << 20) // bytes of JSON header we accept
#define MAX_ELEMENTS ((uint64_t)1 << 40) // per tensor: bounds the shape product (no overflow)
#define MAX_STEP 1000000000000000L // 10^15: a step count beyond any run

typedef struct reader {
    const char *name; // the path, for messages
    const unsigned char *mem; // the whole file in memory, or NULL: f
    FILE *f;
    uint64_t size, start; // the file's bytes; where the data starts (8 + header length)
    char *text; // the header (owned)
    json hdr; // parsed (owned)
    tz_ckpt_meta *meta; // strings being filled (freed on failure)
    struct entry *es; // read_header's list of entries (owned)
} reader;

static void release(reader *r) {
    if (r->f) fclose(r->f);
    r->f = NULL;
    free(r->text);
    r->text = NULL;
    json_free(&r->hdr);
    free(r->es);
    r->es = NULL;
    if (r->meta) tz_ckpt_meta_free(r->meta);
}

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
static void
rfail(reader *r, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char name[300];
    snprintf(name, sizeof name, "%s", r->name);
    release(r);
    tz_fail("checkpoint %s: %s", name, msg);
}

// n bytes at byte offset off of the file into dst; what: for the message.
static void read_at(reader *r, uint64_t off, void *dst, size_t n, const char *what) {
    if (off > r->size || n > r->size - off)
        rfail(r, "truncated: %s needs bytes %llu..%llu, the file has %llu", what, (unsigned long long)off,
              (unsigned long long)(off + n), (unsigned long long)r->size);
    if (r->mem) {
        if (n) memcpy(dst, r->mem + off, n);
        return;
    }
    if (fseeko(r->f, (off_t)off, SEEK_SET))
        rfail(r, "cannot seek to byte %llu (%s)", (unsigned long long)off, strerror(errno));
    size_t got = fread(dst, 1, n, r->f);
    if (got != n)
        rfail(r, "%s at byte %llu reading %s", ferror(r->f) ? strerror(errno) : "unexpected end of file",
              (unsigned long long)(off + got), what);
}

// Opened without blocking (a FIFO would wait for a writer) and refused unless a regular file.
static void open_file(reader *r, const char *path) {
    *r = (reader){.name = path};
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) rfail(r, "cannot open (%s)", strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int err = errno;
        close(fd);
        rfail(r, "cannot stat (%s)", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) close(fd), rfail(r, "not a regular file");
    if (!(r->f = fdopen(fd, "rb"))) close(fd), rfail(r, "out of memory");
    if (fseeko(r->f, 0, SEEK_END)) rfail(r, "cannot seek to the end (%s)", strerror(errno));
    off_t size = ftello(r->f);
    if (size < 0) rfail(r, "cannot tell the size (%s)", strerror(errno));
    r->size = (uint64_t)size;
}

static void open_mem(reader *r, const void *buf, size_t len, const char *name) {
    *r = (reader){.name = name, .mem = buf, .size = len};
}

static const char *dtype_names[] = {"F64", "F32", "F16", "BF16", "I64",  "I32",     "I16",    "I8",
                                    "U64", "U32", "U16", "U8",   "BOOL", "F8_E4M3", "F8_E5M2"};
static const int dtype_sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1, 1, 1};

typedef struct entry {
    const char *name, *dtype;
    int ndim;
    int shape[TZ_MAX_DIMS];
    uint64_t numel, begin, end; // data_offsets, relative to the data
} entry;

static int whole(double x, double lo, double hi) { return x == x && x >= lo && x <= hi && x == (double)(int64_t)x; }

// Checks one header entry against the safetensors rules and the engine's limits.
static void check_entry(reader *r, const char *name, const json *e, entry *t) {
    const json *dt = json_get(e, "dtype"), *sh = json_get(e, "shape"), *of = json_get(e, "data_offsets");
    if (!dt || dt->type != JSON_STRING || !sh || sh->type != JSON_ARRAY || !of || of->type != JSON_ARRAY)
        rfail(r, "tensor '%.100s' has a malformed entry (want dtype, shape and data_offsets)", name);
    // The number of dimensions first: everything below (and the messages) assume it is small.
    if (sh->count > TZ_MAX_DIMS)
        rfail(r, "tensor '%.100s' has %d dimensions, at most %d are supported", name, sh->count, TZ_MAX_DIMS);
    *t = (entry){.name = name, .dtype = dt->string, .ndim = sh->count, .numel = 1};
    int dsize = 0;
    for (size_t k = 0; k < sizeof dtype_names / sizeof *dtype_names; k++)
        if (!strcmp(dt->string, dtype_names[k])) dsize = dtype_sizes[k];
    if (!dsize) rfail(r, "tensor '%.100s' has an unknown dtype '%.20s'", name, dt->string);
    for (int d = 0; d < sh->count; d++) {
        const json *x = &sh->items[d];
        if (x->type != JSON_NUMBER || !whole(x->number, 0, 2147483647))
            rfail(r, "tensor '%.100s': shape entry %d is not a whole number in [0, 2147483647]", name, d);
        t->shape[d] = (int)x->number;
        t->numel *= (uint64_t)t->shape[d];
        if (t->numel > MAX_ELEMENTS) rfail(r, "tensor '%.100s' has more than 2^40 elements", name);
    }
    if (of->count != 2 || of->items[0].type != JSON_NUMBER || of->items[1].type != JSON_NUMBER ||
        !whole(of->items[0].number, 0, 9e15) || !whole(of->items[1].number, 0, 9e15))
        rfail(r, "tensor '%.100s' has bad data_offsets (want two whole numbers >= 0)", name);
    t->begin = (uint64_t)of->items[0].number, t->end = (uint64_t)of->items[1].number;
    uint64_t data = r->size - r->start;
    if (t->end < t->begin)
        rfail(r, "tensor '%.100s' has reversed data_offsets [%llu,%llu]", name, (unsigned long long)t->begin,
              (unsigned long long)t->end);
    if (t->end > data)
        rfail(r, "tensor '%.100s' has data_offsets [%llu,%llu] beyond the %llu bytes of data (truncated file?)", name,
              (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data);
    if (t->end - t->begin != t->numel * (uint64_t)dsize)
        rfail(r, "tensor '%.100s' has data_offsets [%llu,%llu] (%llu bytes), its shape and dtype %s need %llu", name,
              (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)(t->end - t->begin),
              t->dtype, (unsigned long long)(t->numel * (uint64_t)dsize));
}

static int by_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

// Reads and checks the header: its length, the JSON, every tensor entry (no overlaps), and
// that __metadata__ maps strings to strings.
static void read_header(reader *r) {
    check_little_endian();
    if (r->size < 8)
        rfail(r, "too short to be a safetensors file (%llu bytes, the header length alone takes 8)",
              (unsigned long long)r->size);
    unsigned char le[8];
    read_at(r, 0, le, 8, "the header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | le[i];
    if (n > MAX_HEADER)
        rfail(r, "header length %llu is over the limit of %u bytes (not a checkpoint?)", (unsigned long long)n,
              MAX_HEADER);
    if (n > r->size - 8)
        rfail(r, "header length %llu does not fit the file (%llu bytes; truncated?)", (unsigned long long)n,
              (unsigned long long)r->size);
    if (!(r->text = malloc(n + 1))) rfail(r, "out of memory for a header of %llu bytes", (unsigned long long)n);
    read_at(r, 8, r->text, n, "the header");
    r->text[n] = 0;
    r->start = 8 + n;
    const char *err;
    if (!json_parse(r->text, n, &r->hdr, &err)) rfail(r, "bad header JSON (%s)", err);
    if (r->hdr.type != JSON_OBJECT) rfail(r, "bad header (not a JSON object)");
    entry *es = r->es = malloc(sizeof *es * (size_t)(r->hdr.count ? r->hdr.count : 1));
    if (!es) rfail(r, "out of memory");
    int ne = 0;
    for (int i = 0; i < r->hdr.count; i++) {
        const char *key = r->hdr.keys[i];
        const json *v = &r->hdr.items[i];
        if (!strcmp(key, "__metadata__")) {
            if (v->type != JSON_OBJECT) rfail(r, "__metadata__ is not an object");
            for (int k = 0; k < v->count; k++)
                if (v->items[k].type != JSON_STRING) rfail(r, "__metadata__ '%.100s' is not a string", v->keys[k]);
            continue;
        }
        if (v->type != JSON_OBJECT) rfail(r, "tensor '%.100s' has a malformed entry (not an object)", key);
        for (int j = 0; j < i; j++)
            if (!strcmp(r->hdr.keys[j], key)) rfail(r, "tensor '%.100s' appears twice in the header", key);
        entry t;
        check_entry(r, key, v, &t);
        if (t.end > t.begin) es[ne++] = t;
    }
    qsort(es, (size_t)ne, sizeof *es, by_begin);
    for (int i = 1; i < ne; i++)
        if (es[i].begin < es[i - 1].end) {
            char a[120], b[120];
            snprintf(a, sizeof a, "%s", es[i - 1].name), snprintf(b, sizeof b, "%s", es[i].name);
            rfail(r, "tensors '%.100s' and '%.100s' overlap in the data", a, b);
        }
    free(es);
    r->es = NULL;
}

static const char *meta_str(reader *r, const char *key) {
    const json *v = json_get(json_get(&r->hdr, "__metadata__"), key);
    if (!v || v->type != JSON_STRING) rfail(r, "no '%s' in __metadata__ (not a tapezoo checkpoint?)", key);
    return v->string;
}

// A whole number in [lo, hi], strictly (no sign tricks, spaces or trailing text).
static long meta_long(reader *r, const char *key, long lo, long hi) {
    const char *s = meta_str(r, key);
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) || *end || errno || x < lo || x > hi)
        rfail(r, "__metadata__ %s = '%.40s' is not a whole number in [%ld, %ld]", key, s, lo, hi);
    return x;
}

// "%016llx %016llx %016llx %016llx", as written. The batch RNG cannot be all zero (xoshiro would
// emit zeros forever); the dropout RNG is stored as the graph had it (zero when never seeded).
static void meta_rng(reader *r, const char *key, const char *s, uint64_t out[4], int zero_ok) {
    int ok = strlen(s) == 67, any = 0;
    for (int i = 0; ok && i < 4; i++) {
        uint64_t x = 0;
        for (int k = 0; ok && k < 16; k++) {
            char c = s[17 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            ok = d >= 0;
            x = x << 4 | (uint64_t)(d & 15);
        }
        if (i < 3 && s[17 * i + 16] != ' ') ok = 0;
        out[i] = x;
        any |= x != 0;
    }
    if (!ok || !(any || zero_ok))
        rfail(r, "__metadata__ %s = '%.70s' is not an RNG state (4 groups of 16 hex digits, not all zero)", key, s);
}

static char *dup_meta(reader *r, const char *s) {
    char *d = strdup(s);
    if (!d) rfail(r, "out of memory");
    return d;
}

static void read_meta(reader *r, tz_ckpt_meta *m) {
    memset(m, 0, sizeof *m);
    read_header(r);
    const char *format = meta_str(r, "format");
    if (strcmp(format, "tapezoo-1")) rfail(r, "unknown format '%.40s' (this build reads tapezoo-1)", format);
    const char *model = meta_str(r, "model");
    if (!model[0] || strlen(model) >= sizeof m->model)
        rfail(r, "__metadata__ model = '%.70s' is not a model name", model);
    snprintf(m->model, sizeof m->model, "%s", model);
    m->step = meta_long(r, "step", 0, MAX_STEP);
    m->best_step = meta_long(r, "best_step", -1, m->step);
    const char *bv = meta_str(r, "best_val");
    char *end;
    m->best_val = strtod(bv, &end);
    if (!bv[0] || *end || m->best_val != m->best_val) rfail(r, "__metadata__ best_val = '%.40s' is not a number", bv);
    meta_rng(r, "rng", meta_str(r, "rng"), m->rng, 0);
    if (json_get(json_get(&r->hdr, "__metadata__"), "dropout_rng")) {
        meta_rng(r, "dropout_rng", meta_str(r, "dropout_rng"), m->drop_rng, 1);
        m->has_drop_rng = 1;
    }
    const char *cfg = meta_str(r, "cfg"), *vocab = meta_str(r, "vocab");
    if (!cfg[0]) rfail(r, "__metadata__ cfg is empty");
    if (!vocab[0]) rfail(r, "__metadata__ vocab is empty");
    r->meta = m; // from here on a failure frees the strings
    m->cfg_text = dup_meta(r, cfg);
    m->vocab_text = dup_meta(r, vocab);
    const json *sv = json_get(json_get(&r->hdr, "__metadata__"), "src_vocab");
    if (sv) m->src_vocab_text = dup_meta(r, sv->string);
    r->meta = NULL;
}

static void fmt_shape(char *buf, size_t size, int ndim, const int *shape) {
    size_t len = 0;
    buf[0] = 0;
    for (int d = 0; d < ndim && len < size; d++)
        len += (size_t)snprintf(buf + len, size - len, d ? ",%d" : "%d", shape[d]);
}

// Reads tensor `name` into dst: shape want (or, want NULL, n values in one dimension).
static void read_tensor(reader *r, const char *name, const tz_tensor *want, size_t n, real *dst) {
    const json *e = json_get(&r->hdr, name);
    if (!e) rfail(r, "no tensor '%s' (a checkpoint of a different model or cfg?)", name);
    entry t;
    check_entry(r, name, e, &t);
    if (strcmp(t.dtype, DTYPE))
        rfail(r, "tensor '%s' is %.20s, this build reads %s%s", name, t.dtype, DTYPE,
              !strcmp(t.dtype, "F32") || !strcmp(t.dtype, "F64") ? " (a checkpoint of the other precision's build?)"
                                                                 : "");
    char have[128], need[128];
    fmt_shape(have, sizeof have, t.ndim, t.shape);
    int ok;
    if (want) {
        fmt_shape(need, sizeof need, want->ndim, want->shape);
        ok = t.ndim == want->ndim;
        for (int d = 0; ok && d < t.ndim; d++) ok = t.shape[d] == want->shape[d];
    } else {
        snprintf(need, sizeof need, "%zu", n);
        ok = t.ndim == 1 && t.numel == n;
    }
    if (!ok)
        rfail(r, "tensor '%s' has shape [%s], the model wants [%s] (a checkpoint of another model or cfg?)", name, have,
              need);
    read_at(r, r->start + t.begin, dst, sizeof(real) * n, name);
}

static void load(reader *r, tz_params *P, nn_optim *o) {
    read_header(r);
    if (o) {
        const char *kind = meta_str(r, "optim");
        if (strcmp(kind, nn_optim_name(o->c.kind)))
            rfail(r, "saved with optimiser '%.40s', the cfg asks for '%s'", kind, nn_optim_name(o->c.kind));
        o->step = meta_long(r, "optim_step", 0, MAX_STEP);
    }
    for (int i = 0; i < P->count; i++) read_tensor(r, P->names[i], P->t[i], (size_t)P->t[i]->n, P->t[i]->data);
    for (int s = 0; o && s < o->n_state; s++) {
        char name[80];
        snprintf(name, sizeof name, "optim.%s", o->state_name[s]);
        read_tensor(r, name, NULL, o->n, o->state[s]);
    }
}

static int load_carried(reader *r, real *dst, size_t n) {
    read_header(r);
    const json *e = json_get(&r->hdr, "train.carried");
    if (!e) return 0;
    entry t;
    check_entry(r, "train.carried", e, &t);
    if (t.ndim != 1 || t.numel != n) return -1;
    read_tensor(r, "train.carried", NULL, n, dst);
    return 1;
}

void tz_ckpt_read_meta(const char *path, tz_ckpt_meta *m) {
    reader r;
    open_file(&r, path);
    read_meta(&r, m);
    release(&r);
}

void tz_ckpt_load(const char *path, tz_params *P, nn_optim *o) {
    reader r;
    open_file(&r, path);
    load(&r, P, o);
    release(&r);
}

int tz_ckpt_load_carried(const char *path, real *dst, size_t n) {
    reader r;
    open_file(&r, path);
    int have = load_carried(&r, dst, n);
    release(&r);
    return have;
}

void tz_ckpt_read_meta_mem(const void *buf, size_t len, const char *name, tz_ckpt_meta *m) {
    reader r;
    open_mem(&r, buf, len, name);
    read_meta(&r, m);
    release(&r);
}

void tz_ckpt_load_mem(const void *buf, size_t len, const char *name, tz_params *P, nn_optim *o) {
    reader r;
    open_mem(&r, buf, len, name);
    load(&r, P, o);
    release(&r);
}

int tz_ckpt_load_carried_mem(const void *buf, size_t len, const char *name, real *dst, size_t n) {
    reader r;
    open_mem(&r, buf, len, name);
    int have = load_carried(&r, dst, n);
    release(&r);
    return have;
}

void tz_ckpt_meta_free(tz_ckpt_meta *m) {
    free(m->cfg_text);
    free(m->vocab_text);
    free(m->src_vocab_text);
    m->cfg_text = m->vocab_text = m->src_vocab_text = NULL;
}
