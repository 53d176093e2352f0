// json.c: see json.h. Recursive descent over a bounded buffer; depth is limited.
#include "json.h"

#include <stdlib.h>
#include <string.h>

void json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

typedef struct { const char *s; size_t len, i; const char *err; char msg[96]; int depth; } parser;

static void fail(parser *p, const char *what) {
    if (!p->err) {
        snprintf(p->msg, sizeof p->msg, "%s at byte %zu", what, p->i);
        p->err = p->msg;
    }
}
static void ws(parser *p) {
    while (p->i < p->len && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i]) p->i++;
}
static int eat(parser *p, char c) {
    ws(p);
    if (p->i < p->len && p->s[p->i] == c) return p->i++, 1;
    return 0;
}

static char *parse_string(parser *p) {
    if (!eat(p, '"')) return fail(p, "expected a string"), NULL;
    char *out = malloc(p->len - p->i + 1);
    size_t o = 0;
    while (p->i < p->len && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if (c == '\\') {
            if (p->i >= p->len) break;
            char e = p->s[p->i++];
            if (e == 'n') c = '\n';
            else if (e == 't') c = '\t';
            else if (e == 'r') c = '\r';
            else if (e == 'b') c = '\b';
            else if (e == 'f') c = '\f';
            else if (e == 'u') { // \u00XX only: what our writer emits for control characters
                if (p->i + 4 > p->len) break;
                char hex[5] = {0};
                memcpy(hex, p->s + p->i, 4);
                long v = strtol(hex, NULL, 16);
                p->i += 4;
                if (v > 0x7f) { // encode as UTF-8
                    if (v > 0x7ff) out[o++] = (char)(0xe0 | (v >> 12)), out[o++] = (char)(0x80 | ((v >> 6) & 0x3f));
                    else out[o++] = (char)(0xc0 | (v >> 6));
                    c = (char)(0x80 | (v & 0x3f));
                } else c = (char)v;
            } else c = e;
        }
        out[o++] = c;
    }
    if (!eat(p, '"')) return free(out), fail(p, "unterminated string"), NULL;
    out[o] = 0;
    return out;
}

static int parse_value(parser *p, json *v);

static int parse_container(parser *p, json *v, int object) {
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    int cap = 0;
    char close = object ? '}' : ']';
    if (eat(p, close)) return 1;
    do {
        if (v->count == cap) {
            cap = cap ? 2 * cap : 8;
            v->items = realloc(v->items, sizeof *v->items * cap);
            if (object) v->keys = realloc(v->keys, sizeof *v->keys * cap);
        }
        if (object) {
            char *k = parse_string(p);
            if (!k) return 0;
            v->keys[v->count] = k;
            if (!eat(p, ':')) return free(k), fail(p, "expected ':'"), 0;
        }
        memset(&v->items[v->count], 0, sizeof *v->items);
        if (!parse_value(p, &v->items[v->count])) {
            if (object) free(v->keys[v->count]);
            return 0;
        }
        v->count++;
    } while (eat(p, ','));
    if (!eat(p, close)) return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'"), 0;
    return 1;
}

static int parse_value(parser *p, json *v) {
    memset(v, 0, sizeof *v);
    if (++p->depth > 64) return fail(p, "nested too deeply"), 0;
    ws(p);
    int ok = 1;
    if (p->i >= p->len) ok = 0, fail(p, "unexpected end");
    else if (p->s[p->i] == '{') p->i++, ok = parse_container(p, v, 1);
    else if (p->s[p->i] == '[') p->i++, ok = parse_container(p, v, 0);
    else if (p->s[p->i] == '"') {
        v->type = JSON_STRING;
        ok = (v->string = parse_string(p)) != NULL;
    } else if (!strncmp(p->s + p->i, "true", 4) || !strncmp(p->s + p->i, "false", 5)) {
        v->type = JSON_BOOL;
        v->number = p->s[p->i] == 't';
        p->i += v->number ? 4 : 5;
    } else if (!strncmp(p->s + p->i, "null", 4)) {
        p->i += 4;
    } else {
        char buf[64];
        size_t n = 0;
        while (p->i + n < p->len && n < 63 && strchr("+-0123456789.eE", p->s[p->i + n]) && p->s[p->i + n]) n++;
        memcpy(buf, p->s + p->i, n);
        buf[n] = 0;
        char *end;
        v->type = JSON_NUMBER;
        v->number = strtod(buf, &end);
        if (n == 0 || *end) ok = 0, fail(p, "bad value");
        p->i += n;
    }
    p->depth--;
    return ok;
}

int json_parse(const char *text, size_t len, json *out, const char **err) {
    parser p = {.s = text, .len = len};
    int ok = parse_value(&p, out);
    ws(&p);
    if (ok && p.i < p.len) ok = 0, fail(&p, "trailing characters");
    if (!ok) {
        json_free(out);
        static _Thread_local char msg[96];
        snprintf(msg, sizeof msg, "%s", p.err ? p.err : "malformed");
        *err = msg;
    }
    return ok;
}

const json *json_get(const json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->count; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

void json_free(json *j) {
    for (int i = 0; i < j->count; i++) {
        json_free(&j->items[i]);
        if (j->type == JSON_OBJECT) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->string);
    memset(j, 0, sizeof *j);
}
