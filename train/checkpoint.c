// checkpoint.c: safetensors writer and reader (format: 8-byte little-endian header length, the
// JSON header, then the raw little-endian tensors back to back, offsets relative to the data).
#include "checkpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

static void write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (n && fwrite(p, 1, n, f) != n) tz_fail("checkpoint %s: write failed (%s)", path, strerror(errno));
}

void tz_ckpt_save(const char *path, const tz_params *P, const nn_optim *o, const tz_ckpt_meta *m) {
    check_little_endian();
    // The header, built in memory: its length comes first in the file.
    char *hdr;
    size_t hlen;
    FILE *h = open_memstream(&hdr, &hlen);
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
        fprintf(h, "\"train.carried\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},", DTYPE, m->carried_n,
                off, off + sizeof(real) * m->carried_n);
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
    fclose(h);
    while (hlen % 8) hdr = realloc(hdr, hlen + 1), hdr[hlen++] = ' '; // the data starts 8-aligned

    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) tz_fail("checkpoint %s: cannot create (%s)", tmp, strerror(errno));
    uint64_t n = hlen;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    write_all(f, le, 8, tmp);
    write_all(f, hdr, hlen, tmp);
    for (int i = 0; i < P->count; i++) write_all(f, P->t[i]->data, sizeof(real) * P->t[i]->n, tmp);
    for (int s = 0; o && s < o->n_state; s++) write_all(f, o->state[s], sizeof(real) * o->n, tmp);
    if (m->carried && m->carried_n) write_all(f, m->carried, sizeof(real) * m->carried_n, tmp);
    if (fflush(f) || fsync(fileno(f)) || fclose(f)) tz_fail("checkpoint %s: write failed (%s)", tmp, strerror(errno));
    if (rename(tmp, path)) tz_fail("checkpoint: cannot rename %s to %s (%s)", tmp, path, strerror(errno));
    free(hdr);
}

// Reads the header of a safetensors file: the parsed JSON and where the data starts.
static FILE *open_header(const char *path, json *hdr, long *data_start) {
    check_little_endian();
    FILE *f = fopen(path, "rb");
    if (!f) tz_fail("checkpoint %s: cannot open (%s)", path, strerror(errno));
    unsigned char le[8];
    uint64_t n = 0;
    if (fread(le, 1, 8, f) != 8) tz_fail("checkpoint %s: too short to be a safetensors file", path);
    for (int i = 7; i >= 0; i--) n = n << 8 | le[i];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (n > (uint64_t)size - 8 || n > (100u << 20)) tz_fail("checkpoint %s: header length %llu does not fit the file", path, (unsigned long long)n);
    fseek(f, 8, SEEK_SET);
    char *text = malloc(n + 1);
    if (!text || fread(text, 1, n, f) != n) tz_fail("checkpoint %s: cannot read the header", path);
    const char *err;
    if (!json_parse(text, n, hdr, &err) || hdr->type != JSON_OBJECT) tz_fail("checkpoint %s: bad header (%s)", path, hdr->type ? "not an object" : err);
    free(text);
    *data_start = 8 + (long)n;
    return f;
}

static const char *meta_str(const json *hdr, const char *key, const char *path) {
    const json *v = json_get(json_get(hdr, "__metadata__"), key);
    if (!v || v->type != JSON_STRING) tz_fail("checkpoint %s: no '%s' in __metadata__ (not a tapezoo checkpoint?)", path, key);
    return v->string;
}

void tz_ckpt_read_meta(const char *path, tz_ckpt_meta *m) {
    json hdr;
    long start;
    fclose(open_header(path, &hdr, &start));
    memset(m, 0, sizeof *m);
    if (strcmp(meta_str(&hdr, "format", path), "tapezoo-1")) tz_fail("checkpoint %s: unknown format '%s'", path, meta_str(&hdr, "format", path));
    snprintf(m->model, sizeof m->model, "%s", meta_str(&hdr, "model", path));
    m->step = atol(meta_str(&hdr, "step", path));
    m->best_val = atof(meta_str(&hdr, "best_val", path));
    m->best_step = atol(meta_str(&hdr, "best_step", path));
    unsigned long long r[4];
    if (sscanf(meta_str(&hdr, "rng", path), "%llx %llx %llx %llx", &r[0], &r[1], &r[2], &r[3]) != 4)
        tz_fail("checkpoint %s: bad rng state", path);
    for (int i = 0; i < 4; i++) m->rng[i] = r[i];
    const json *d = json_get(json_get(&hdr, "__metadata__"), "dropout_rng");
    if (d && d->type == JSON_STRING) {
        if (sscanf(d->string, "%llx %llx %llx %llx", &r[0], &r[1], &r[2], &r[3]) != 4)
            tz_fail("checkpoint %s: bad dropout_rng state", path);
        for (int i = 0; i < 4; i++) m->drop_rng[i] = r[i];
        m->has_drop_rng = 1;
    }
    m->cfg_text = strdup(meta_str(&hdr, "cfg", path));
    m->vocab_text = strdup(meta_str(&hdr, "vocab", path));
    const json *sv = json_get(json_get(&hdr, "__metadata__"), "src_vocab");
    if (sv && sv->type == JSON_STRING) m->src_vocab_text = strdup(sv->string);
    json_free(&hdr);
}

// Reads tensor `name` (n elements, shape want) into dst.
static void read_tensor(FILE *f, const json *hdr, long start, long size, const char *path, const char *name,
                        const tz_tensor *want, size_t n, real *dst) {
    const json *e = json_get(hdr, name);
    if (!e) tz_fail("checkpoint %s: no tensor '%s' (a checkpoint of a different model or cfg?)", path, name);
    const json *dt = json_get(e, "dtype"), *sh = json_get(e, "shape"), *of = json_get(e, "data_offsets");
    if (!dt || dt->type != JSON_STRING || !sh || sh->type != JSON_ARRAY || !of || of->type != JSON_ARRAY || of->count != 2)
        tz_fail("checkpoint %s: tensor '%s' has a malformed entry", path, name);
    if (strcmp(dt->string, DTYPE)) tz_fail("checkpoint %s: tensor '%s' is %s, this build reads %s", path, name, dt->string, DTYPE);
    char have[128] = "", need[128] = "";
    int len = 0, ok = 1;
    for (int d = 0; d < sh->count; d++) len += snprintf(have + len, sizeof have - len, d ? ",%g" : "%g", sh->items[d].number);
    if (want) {
        len = 0;
        for (int d = 0; d < want->ndim; d++) len += snprintf(need + len, sizeof need - len, d ? ",%d" : "%d", want->shape[d]);
        ok = sh->count == want->ndim;
        for (int d = 0; ok && d < sh->count; d++) ok = sh->items[d].number == want->shape[d];
    } else {
        snprintf(need, sizeof need, "%zu", n);
        ok = sh->count == 1 && sh->items[0].number == (double)n;
    }
    if (!ok) tz_fail("checkpoint %s: tensor '%s' has shape [%s], the model wants [%s] (a different cfg?)", path, name, have, need);
    double b = of->items[0].number, e2 = of->items[1].number;
    if (e2 - b != (double)(sizeof(real) * n) || b < 0 || start + e2 > size)
        tz_fail("checkpoint %s: tensor '%s' has bad data offsets [%g,%g]", path, name, b, e2);
    fseek(f, start + (long)b, SEEK_SET);
    if (fread(dst, sizeof(real), n, f) != n) tz_fail("checkpoint %s: tensor '%s' is truncated", path, name);
}

void tz_ckpt_load(const char *path, tz_params *P, nn_optim *o) {
    json hdr;
    long start;
    FILE *f = open_header(path, &hdr, &start);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (o) {
        const char *kind = meta_str(&hdr, "optim", path);
        if (strcmp(kind, nn_optim_name(o->c.kind)))
            tz_fail("checkpoint %s: saved with optimiser '%s', the cfg asks for '%s'", path, kind, nn_optim_name(o->c.kind));
        o->step = atol(meta_str(&hdr, "optim_step", path));
    }
    for (int i = 0; i < P->count; i++)
        read_tensor(f, &hdr, start, size, path, P->names[i], P->t[i], (size_t)P->t[i]->n, P->t[i]->data);
    for (int s = 0; o && s < o->n_state; s++) {
        char name[80];
        snprintf(name, sizeof name, "optim.%s", o->state_name[s]);
        read_tensor(f, &hdr, start, size, path, name, NULL, o->n, o->state[s]);
    }
    fclose(f);
    json_free(&hdr);
}

int tz_ckpt_load_carried(const char *path, real *dst, size_t n) {
    json hdr;
    long start;
    FILE *f = open_header(path, &hdr, &start);
    const json *e = json_get(&hdr, "train.carried"), *sh = e ? json_get(e, "shape") : NULL;
    int have = e != NULL;
    if (have && sh && sh->type == JSON_ARRAY && sh->count == 1 && sh->items[0].number != (double)n) have = -1;
    if (have > 0) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        read_tensor(f, &hdr, start, size, path, "train.carried", NULL, n, dst);
    }
    fclose(f);
    json_free(&hdr);
    return have;
}

void tz_ckpt_meta_free(tz_ckpt_meta *m) {
    free(m->cfg_text);
    free(m->vocab_text);
    free(m->src_vocab_text);
    m->cfg_text = m->vocab_text = m->src_vocab_text = NULL;
}
