// json.c: see json.h. Recursive descent over a bounded buffer.
#include "json.h"

#include <stdlib.h>
#include <string.h>

int json_write_quoted(FILE *f, const char *s, json_quote how) {
    int n = 2;
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') n += fprintf(f, "\\%c", c);
        else if (c == '\n') n += fprintf(f, "\\n");
        else if (c == '\t') n += fprintf(f, "\\t");
        else if (c == '\r') n += fprintf(f, "\\r");
        else if (c < 0x20 || c == 0x7f) n += fprintf(f, how == QUOTE_CFG ? "\\x%02x" : "\\u%04x", c);
        else fputc(c, f), n++;
    }
    fputc('"', f);
    return n;
}

void json_write_string(FILE *f, const char *s) { json_write_quoted(f, s, QUOTE_JSON); }

// The parser never reads outside text[0..len) (the header is not NUL-terminated), allocates
// only what each value needs (checked), and nests at most JSON_MAX_DEPTH levels (the recursion
// is bounded, so a header of many '[' cannot overflow the stack).
#define JSON_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, i;
    const char *err;
    char msg[96];
    int depth;
} parser;

static void fail(parser *p, const char *what) {
    if (!p->err) {
        snprintf(p->msg, sizeof p->msg, "%s at byte %zu", what, p->i);
        p->err = p->msg;
    }
}
static void ws(parser *p) {
    while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r' || p->s[p->i] == '\n'))
        p->i++;
}
static int eat(parser *p, char c) {
    ws(p);
    if (p->i < p->len && p->s[p->i] == c) return p->i++, 1;
    return 0;
}
// Whether the literal word (e.g. "true") comes next; consumes it if so.
static int word(parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->len - p->i < n || memcmp(p->s + p->i, w, n)) return 0;
    p->i += n;
    return 1;
}
static int hex4(const char *s, long *v) {
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

static char *parse_string(parser *p) {
    if (!eat(p, '"')) return fail(p, "expected a string"), NULL;
    // The raw span up to the closing quote bounds the unescaped length (no escape expands:
    // \uXXXX is 6 bytes and becomes at most 3).
    size_t end = p->i;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return p->i = p->len, fail(p, "unterminated string"), NULL;
    char *out = malloc(end - p->i + 1);
    if (!out) return fail(p, "out of memory"), NULL;
    size_t o = 0;
    while (p->i < end) {
        char c = p->s[p->i++];
        if (c == 0) return free(out), p->i--, fail(p, "NUL byte in a string"), NULL;
        if (c == '\\') {
            char e = p->s[p->i++];
            if (e == 'n') c = '\n';
            else if (e == 't') c = '\t';
            else if (e == 'r') c = '\r';
            else if (e == 'b') c = '\b';
            else if (e == 'f') c = '\f';
            else if (e == '"' || e == '\\' || e == '/') c = e;
            else if (e == 'u') { // \uXXXX of the Basic Multilingual Plane, as UTF-8
                long v;
                if (end - p->i < 4 || !hex4(p->s + p->i, &v)) return free(out), fail(p, "bad \\u escape"), NULL;
                if (v == 0) return free(out), fail(p, "\\u0000 in a string"), NULL;
                p->i += 4;
                if (v > 0x7f) {
                    if (v > 0x7ff) out[o++] = (char)(0xe0 | (v >> 12)), out[o++] = (char)(0x80 | ((v >> 6) & 0x3f));
                    else out[o++] = (char)(0xc0 | (v >> 6));
                    c = (char)(0x80 | (v & 0x3f));
                } else c = (char)v;
            } else return free(out), p->i--, fail(p, "bad escape"), NULL;
        }
        out[o++] = c;
    }
    p->i = end + 1;
    out[o] = 0;
    return out;
}

static int parse_value(parser *p, json *v);

// Grows v's arrays to hold cap entries; 0 (v untouched) when out of memory.
static int grow(json *v, int object, int cap) {
    json *items = realloc(v->items, sizeof *v->items * (size_t)cap);
    if (!items) return 0;
    v->items = items;
    if (object) {
        char **keys = realloc(v->keys, sizeof *v->keys * (size_t)cap);
        if (!keys) return 0;
        v->keys = keys;
    }
    return 1;
}

// On failure v holds only complete entries (count), so json_free(v) frees everything.
static int parse_container(parser *p, json *v, int object) {
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    int cap = 0;
    char close = object ? '}' : ']';
    if (eat(p, close)) return 1;
    do {
        if (v->count == cap) {
            if (cap > (1 << 28)) return fail(p, "too many entries"), 0;
            cap = cap ? 2 * cap : 8;
            if (!grow(v, object, cap)) return fail(p, "out of memory"), 0;
        }
        char *k = NULL;
        if (object) {
            if (!(k = parse_string(p))) return 0;
            if (!eat(p, ':')) return free(k), fail(p, "expected ':'"), 0;
        }
        if (!parse_value(p, &v->items[v->count])) return free(k), json_free(&v->items[v->count]), 0;
        if (object) v->keys[v->count] = k;
        v->count++;
    } while (eat(p, ','));
    if (!eat(p, close)) return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'"), 0;
    return 1;
}

static int parse_value(parser *p, json *v) {
    memset(v, 0, sizeof *v);
    if (p->depth >= JSON_MAX_DEPTH) return fail(p, "nested too deeply"), 0;
    p->depth++;
    ws(p);
    int ok = 1;
    if (p->i >= p->len) ok = 0, fail(p, "unexpected end");
    else if (p->s[p->i] == '{') p->i++, ok = parse_container(p, v, 1);
    else if (p->s[p->i] == '[') p->i++, ok = parse_container(p, v, 0);
    else if (p->s[p->i] == '"') {
        v->type = JSON_STRING;
        ok = (v->string = parse_string(p)) != NULL;
    } else if (word(p, "true")) v->type = JSON_BOOL, v->number = 1;
    else if (word(p, "false")) v->type = JSON_BOOL;
    else if (word(p, "null")) v->type = JSON_NULL;
    else {
        char buf[64];
        size_t n = 0;
        while (p->i + n < p->len && n < 63 && p->s[p->i + n] && strchr("+-0123456789.eE", p->s[p->i + n])) n++;
        memcpy(buf, p->s + p->i, n);
        buf[n] = 0;
        char *end;
        v->type = JSON_NUMBER;
        v->number = strtod(buf, &end);
        if (n == 0 || *end) ok = 0, fail(p, "bad value");
        else p->i += n;
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
