// cfg.c: the strict cfg reader (format in cfg.h).
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

static const char *type_name[] = {"an integer", "a number", "a string", "true or false"};

void cfg_init(cfg *c, const cfg_key *const *schemas, int n_schemas) {
    memset(c, 0, sizeof *c);
    for (int s = 0; s < n_schemas; s++)
        for (const cfg_key *k = schemas[s]; k->section; k++) {
            if (c->n == CFG_MAX_KEYS) tz_fail("cfg: more than %d keys in the schema", CFG_MAX_KEYS);
            cfg_value *v = &c->v[c->n++];
            v->key = k;
            snprintf(v->text, sizeof v->text, "%s", k->def ? k->def : "");
            snprintf(v->where, sizeof v->where, "%s", k->def ? "default" : "unset");
        }
}

static cfg_value *find(const cfg *c, const char *section, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].key->section, section) && !strcmp(c->v[i].key->key, key)) return (cfg_value *)&c->v[i];
    return NULL;
}

static int has_section(const cfg *c, const char *section) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].key->section, section)) return 1;
    return 0;
}

// Edit distance, for "did you mean".
static int distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b), row[64] = {0};
    if (la > 62 || lb > 62) return 99;
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int cur = row[j];
            int best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

// " (did you mean 'x'?)" for the closest key of the section (or section name), or "".
static const char *suggest(const cfg *c, const char *section, const char *word, char *buf, size_t size) {
    int best = 3;
    const char *hit = NULL, *hit_section = NULL;
    for (int i = 0; i < c->n; i++) {
        const cfg_key *k = c->v[i].key;
        const char *cand = section ? k->key : k->section;
        int d = distance(word, cand);
        if (section && strcmp(k->section, section)) d += 1; // prefer the same section
        if (d < best) best = d, hit = cand, hit_section = k->section;
    }
    if (!hit) return "";
    if (section && strcmp(hit_section, section)) snprintf(buf, size, " (did you mean '%s' in [%s]?)", hit, hit_section);
    else snprintf(buf, size, " (did you mean '%s'?)", hit);
    return buf;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

// Checks text against the key's type; returns an error message or NULL.
static const char *check_value(const cfg_key *k, const char *text) {
    char *end;
    if (!*text) return k->type == CFG_STR ? NULL : "has no value";
    errno = 0;
    switch (k->type) {
    case CFG_INT: {
        long v = strtol(text, &end, 10);
        (void)v;
        if (*end || errno) return "is not an integer";
        break;
    }
    case CFG_FLOAT: {
        double v = strtod(text, &end);
        if (*end || errno || !isfinite(v)) return "is not a number";
        break;
    }
    case CFG_BOOL:
        if (strcmp(text, "true") && strcmp(text, "false") && strcmp(text, "1") && strcmp(text, "0") &&
            strcmp(text, "yes") && strcmp(text, "no"))
            return "is not true or false";
        break;
    case CFG_STR: break;
    }
    return NULL;
}

static void set(cfg *c, const char *where, const char *section, const char *key, const char *text) {
    char hint[160];
    if (!has_section(c, section)) tz_fail("%s: unknown section [%s]%s", where, section, suggest(c, NULL, section, hint, sizeof hint));
    cfg_value *v = find(c, section, key);
    if (!v) tz_fail("%s: unknown key '%s' in [%s]%s", where, key, section, suggest(c, section, key, hint, sizeof hint));
    const char *err = check_value(v->key, text);
    if (err) tz_fail("%s: [%s] %s = '%s' %s (want %s)", where, section, key, text, err, type_name[v->key->type]);
    if (strlen(text) >= sizeof v->text) tz_fail("%s: [%s] %s: value longer than %d characters", where, section, key, CFG_VALUE_MAX - 1);
    snprintf(v->text, sizeof v->text, "%s", text);
    snprintf(v->where, sizeof v->where, "%s", where);
}

static FILE *open_cfg(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) tz_fail("%s: cannot open the cfg file (%s)", path, strerror(errno));
    return f;
}

// Calls fn(section, key, value, where) for every key line of the file; fails on syntax errors.
typedef void (*line_fn)(void *ctx, const char *where, const char *section, const char *key, const char *value);
static void parse(const char *path, line_fn fn, void *ctx) {
    FILE *f = open_cfg(path);
    char line[2048], section[64] = "", where[300];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) tz_fail("%s: line longer than %d characters", where, (int)sizeof line - 2);
        char *hash = strpbrk(line, "#;");
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || trim(close + 1)[0]) tz_fail("%s: a section header looks like [name]", where);
            *close = 0;
            snprintf(section, sizeof section, "%s", trim(s + 1));
            if (!*section) tz_fail("%s: empty section name", where);
            fn(ctx, where, section, NULL, NULL);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) tz_fail("%s: missing '=' in '%s' (want key = value)", where, s);
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        if (!*key) tz_fail("%s: missing key before '='", where);
        if (!*section) tz_fail("%s: key '%s' comes before any [section]", where, key);
        fn(ctx, where, section, key, value);
    }
    fclose(f);
}

typedef struct { cfg *c; char seen[CFG_MAX_KEYS][300]; } read_ctx;
static void read_line(void *vctx, const char *where, const char *section, const char *key, const char *value) {
    read_ctx *r = vctx;
    char hint[160];
    if (!key) {
        if (!has_section(r->c, section))
            tz_fail("%s: unknown section [%s]%s", where, section, suggest(r->c, NULL, section, hint, sizeof hint));
        return;
    }
    set(r->c, where, section, key, value);
    int i = (int)(find(r->c, section, key) - r->c->v);
    if (r->seen[i][0]) tz_fail("%s: [%s] %s is set twice (first at %s)", where, section, key, r->seen[i]);
    snprintf(r->seen[i], sizeof r->seen[i], "%s", where);
}

void cfg_read_file(cfg *c, const char *path) {
    read_ctx *r = calloc(1, sizeof *r);
    r->c = c;
    snprintf(c->path, sizeof c->path, "%s", path);
    parse(path, read_line, r);
    free(r);
}

typedef struct { const char *section, *key; char *out; int size, found; } peek_ctx;
static void peek_line(void *vctx, const char *where, const char *section, const char *key, const char *value) {
    (void)where;
    peek_ctx *p = vctx;
    if (key && !strcmp(section, p->section) && !strcmp(key, p->key)) {
        snprintf(p->out, p->size, "%s", value);
        p->found = 1;
    }
}

int cfg_peek(const char *path, const char *section, const char *key, char *out, int out_size) {
    peek_ctx p = {section, key, out, out_size, 0};
    parse(path, peek_line, &p);
    return p.found;
}

void cfg_override(cfg *c, const char *arg, int index) {
    char where[64], buf[CFG_VALUE_MAX + 128];
    snprintf(where, sizeof where, "command line override %d", index);
    snprintf(buf, sizeof buf, "%s", arg);
    char *eq = strchr(buf, '='), *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq) tz_fail("%s: '%s' is not section.key=value", where, arg);
    *eq = 0, *dot = 0;
    set(c, where, trim(buf), trim(dot + 1), trim(eq + 1));
    snprintf(find(c, trim(buf), trim(dot + 1))->where, sizeof c->v[0].where, "command line");
}

void cfg_set(cfg *c, const char *section, const char *key, const char *value, const char *where) {
    set(c, where, section, key, value);
}

void cfg_check_required(const cfg *c) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].where, "unset"))
            tz_fail("%s: [%s] %s is required (%s)", c->path[0] ? c->path : "cfg", c->v[i].key->section,
                    c->v[i].key->key, c->v[i].key->help);
}

static const cfg_value *get(const cfg *c, const char *section, const char *key, cfg_type type) {
    const cfg_value *v = find(c, section, key);
    if (!v) tz_fail("cfg: the program asked for [%s] %s, which no schema declares", section, key);
    if (v->key->type != type) tz_fail("cfg: [%s] %s is %s, not %s", section, key, type_name[v->key->type], type_name[type]);
    return v;
}

long cfg_int(const cfg *c, const char *section, const char *key) { return strtol(get(c, section, key, CFG_INT)->text, NULL, 10); }
double cfg_float(const cfg *c, const char *section, const char *key) { return strtod(get(c, section, key, CFG_FLOAT)->text, NULL); }
const char *cfg_str(const cfg *c, const char *section, const char *key) { return get(c, section, key, CFG_STR)->text; }
int cfg_bool(const cfg *c, const char *section, const char *key) {
    const char *t = get(c, section, key, CFG_BOOL)->text;
    return !strcmp(t, "true") || !strcmp(t, "1") || !strcmp(t, "yes");
}
int cfg_is_set(const cfg *c, const char *section, const char *key) {
    const cfg_value *v = find(c, section, key);
    return v && strcmp(v->where, "default") && strcmp(v->where, "unset");
}

void cfg_write(const cfg *c, FILE *f) {
    const char *section = "";
    for (int i = 0; i < c->n; i++) {
        const cfg_value *v = &c->v[i];
        if (strcmp(v->key->section, section)) fprintf(f, "%s[%s]\n", i ? "\n" : "", section = v->key->section);
        char line[CFG_VALUE_MAX + 64];
        snprintf(line, sizeof line, "%s = %s", v->key->key, v->text);
        fprintf(f, "%-40s # %s\n", line, v->where);
    }
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

void cfg_write_json(const cfg *c, FILE *f) {
    fputc('{', f);
    for (int i = 0; i < c->n; i++) {
        const cfg_value *v = &c->v[i];
        char name[160];
        snprintf(name, sizeof name, "%s.%s", v->key->section, v->key->key);
        fprintf(f, "%s", i ? ", " : "");
        json_string(f, name);
        fputs(": ", f);
        if (v->key->type == CFG_STR || !v->text[0]) json_string(f, v->text);
        else if (v->key->type == CFG_BOOL) fputs(cfg_bool(c, v->key->section, v->key->key) ? "true" : "false", f);
        else fputs(v->text, f);
    }
    fputc('}', f);
}
