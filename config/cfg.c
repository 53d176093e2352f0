// cfg.c: the strict cfg reader (format in cfg.h).
//
// The parser works on text in memory and reports errors by return (into a message buffer), so a
// caller frees what it read before it fails: the reader is leak-free on every error path.
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "tz.h"

static const char *type_name[] = {"an integer", "a number", "a string", "true or false"};

typedef char msg_buf[1024]; // an error message (tz_fail keeps its first 511 characters)

static void fail_schema(const cfg_key *k, const char *what) {
    tz_fail("cfg schema: [%s] %s: %s", k->section, k->key, what);
}

static int is_number(const cfg_key *k) { return k->type == CFG_INT || k->type == CFG_FLOAT; }
static const char *check_value(const cfg_key *k, const char *text, char *range, size_t size);
static struct cfg_value *find(const cfg *c, const char *section, const char *key);

void cfg_init(cfg *c, const cfg_key *const *schemas, int n_schemas) {
    memset(c, 0, sizeof *c);
    for (int s = 0; s < n_schemas; s++)
        for (const cfg_key *k = schemas[s]; k->section; k++) {
            if (c->n == CFG_MAX_KEYS) tz_fail("cfg: more than %d keys in the schema", CFG_MAX_KEYS);
            // A number without a range, or an int range cfg_int cannot return, is the program's bug.
            if (is_number(k) && !(k->min < k->max)) fail_schema(k, "a number key needs a range min < max");
            if (k->type == CFG_INT && (k->min < INT_MIN || k->max > INT_MAX)) fail_schema(k, "an int range beyond int");
            if (k->choices && k->type != CFG_STR) fail_schema(k, "choices are for string keys");
            char range[256];
            if (k->def && check_value(k, k->def, range, sizeof range))
                fail_schema(k, "the default is not a valid value");
            // The same key again (a model's own [model] key over its family's): the later one wins.
            cfg_value *v = find(c, k->section, k->key);
            if (!v) v = &c->v[c->n++];
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

// "[min, max]" of a number key.
static const char *range_str(const cfg_key *k, char *buf, size_t size) {
    if (k->type == CFG_INT) snprintf(buf, size, "[%.0f, %.0f]", k->min, k->max);
    else snprintf(buf, size, "[%g, %g]", k->min, k->max);
    return buf;
}

// Whether text is one of the space-separated words of choices.
static int is_choice(const char *choices, const char *text) {
    size_t n = strlen(text);
    for (const char *w = choices; *w;) {
        size_t len = strcspn(w, " ");
        if (len && len == n && !strncmp(w, text, n)) return 1;
        w += len + (w[len] == ' ');
    }
    return 0;
}

// "a, b or c" of the key's choices.
static const char *choices_str(const cfg_key *k, char *buf, size_t size) {
    size_t o = 0;
    buf[0] = 0;
    for (const char *w = k->choices; *w && o < size;) {
        size_t len = strcspn(w, " ");
        const char *next = w + len + (w[len] == ' ');
        if (len) {
            const char *sep = o == 0 ? "" : *next ? ", " : " or ";
            int wrote = snprintf(buf + o, size - o, "%s%.*s", sep, (int)len, w);
            o += wrote > 0 ? (size_t)wrote : 0;
        }
        w = next;
    }
    return buf;
}

// Checks text against the key's type, range and choices; returns an error message or NULL. A
// value out of range (or too large for its type) returns "must be in" and the range in `range`;
// a string not among its choices returns "is not a choice" and them in `range`.
static const char *check_value(const cfg_key *k, const char *text, char *range, size_t size) {
    char *end;
    if (k->type == CFG_STR && k->choices && !is_choice(k->choices, text))
        return choices_str(k, range, size), "is not a choice";
    if (!*text) return k->type == CFG_STR ? NULL : "has no value";
    errno = 0;
    switch (k->type) {
        case CFG_INT: {
            long v = strtol(text, &end, 10);
            if (end == text || *end) return "is not an integer";
            if (errno == ERANGE || v < k->min || v > k->max) return range_str(k, range, size), "must be in";
            break;
        }
        case CFG_FLOAT: {
            double v = strtod(text, &end);
            if (end == text || *end || isnan(v)) return "is not a number";
            // 1e999 overflows to inf (ERANGE); 1e-999 underflows towards 0, which the range judges.
            if (isinf(v) || v < k->min || v > k->max) return range_str(k, range, size), "must be in";
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

// Sets section.key = text; returns 0, or -1 with the message in err.
static int set(cfg *c, const char *where, const char *section, const char *key, const char *text, msg_buf err) {
    char hint[160], range[256];
    if (!has_section(c, section))
        return snprintf(err, sizeof(msg_buf), "%s: unknown section [%s]%s", where, section,
                        suggest(c, NULL, section, hint, sizeof hint)),
               -1;
    cfg_value *v = find(c, section, key);
    if (!v)
        return snprintf(err, sizeof(msg_buf), "%s: unknown key '%s' in [%s]%s", where, key, section,
                        suggest(c, section, key, hint, sizeof hint)),
               -1;
    if (strlen(text) >= sizeof v->text)
        return snprintf(err, sizeof(msg_buf), "%s: [%s] %s: value longer than %d characters", where, section, key,
                        CFG_VALUE_MAX - 1),
               -1;
    const char *bad = check_value(v->key, text, range, sizeof range);
    if (bad && !strcmp(bad, "must be in"))
        return snprintf(err, sizeof(msg_buf), "%s: [%s] %s = %s: must be in %s", where, section, key, text, range), -1;
    if (bad && !strcmp(bad, "is not a choice"))
        return snprintf(err, sizeof(msg_buf), "%s: [%s] %s = '%s' (want %s)", where, section, key, text, range), -1;
    if (bad)
        return snprintf(err, sizeof(msg_buf), "%s: [%s] %s = '%s' %s (want %s)", where, section, key, text, bad,
                        type_name[v->key->type]),
               -1;
    snprintf(v->text, sizeof v->text, "%s", text);
    snprintf(v->where, sizeof v->where, "%s", where);
    return 0;
}

// Unescapes the quoted value at s (s[0] == '"') into out (CFG_VALUE_MAX bytes); *end is set past
// the closing quote. Returns NULL or what is wrong.
static const char *unquote(const char *s, char *out, const char **end) {
    size_t n = 0;
    for (s++;; s++) {
        int ch = (unsigned char)*s;
        if (!ch) return "has no closing quote";
        if (ch == '"') break;
        if (ch == '\\') {
            s++;
            switch (*s) {
                case 'n': ch = '\n'; break;
                case 't': ch = '\t'; break;
                case 'r': ch = '\r'; break;
                case '\\': ch = '\\'; break;
                case '"': ch = '"'; break;
                case 'x': {
                    char hex[3] = {0};
                    if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                        return "has \\x without two hex digits";
                    hex[0] = s[1], hex[1] = s[2];
                    ch = (int)strtol(hex, NULL, 16);
                    if (!ch) return "has \\x00 (a value cannot hold a NUL byte)";
                    s += 2;
                    break;
                }
                default: return "has an unknown escape (want \\n \\t \\r \\\\ \\\" or \\xHH)";
            }
        }
        if (n == CFG_VALUE_MAX - 1) return "is longer than 511 characters";
        out[n++] = (char)ch;
    }
    out[n] = 0;
    *end = s + 1;
    return NULL;
}

// The value after '=' (v): quoted or plain, comments and spaces removed, into out. Returns NULL
// or what is wrong.
static const char *value_of(char *v, char *out) {
    while (isspace((unsigned char)*v)) v++;
    if (*v == '"') {
        const char *end, *bad = unquote(v, out, &end);
        if (bad) return bad;
        while (isspace((unsigned char)*end)) end++;
        if (*end && *end != '#' && *end != ';') return "has text after the closing quote";
        return NULL;
    }
    char *hash = strpbrk(v, "#;");
    if (hash) *hash = 0;
    v = trim(v);
    if (strlen(v) >= CFG_VALUE_MAX) return "is longer than 511 characters";
    strcpy(out, v);
    return NULL;
}

// Calls fn(section, key, value, where) for every key line of the text (key NULL for a section
// header); stops at the first error, returning -1 with the message in err.
typedef int (*line_fn)(void *ctx, const char *where, int lineno, const char *section, const char *key,
                       const char *value, msg_buf err);
static int parse(const char *text, size_t len, const char *name, line_fn fn, void *ctx, msg_buf err) {
    char line[CFG_LINE_MAX + 1], value[CFG_VALUE_MAX], section[64] = "", where[300];
    int lineno = 0, content = 0;
    if (len > CFG_TEXT_MAX)
        return snprintf(err, sizeof(msg_buf), "%s: %zu bytes, more than a cfg's %d: not a cfg file", name, len,
                        CFG_TEXT_MAX),
               -1;
    for (size_t pos = 0; pos < len;) {
        const char *start = text + pos, *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl != NULL);
        lineno++;
        snprintf(where, sizeof where, "%s:%d", name, lineno);
        const char *nul = memchr(start, 0, n);
        if (nul)
            return snprintf(err, sizeof(msg_buf), "%s: a NUL byte at column %d (a cfg is text)", where,
                            (int)(nul - start) + 1),
                   -1;
        if (n > CFG_LINE_MAX)
            return snprintf(err, sizeof(msg_buf), "%s: line of %zu characters, longer than %d", where, n, CFG_LINE_MAX),
                   -1;
        memcpy(line, start, n);
        line[n] = 0;
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#' || *s == ';') continue;
        content = 1;
        if (*s == '[') {
            char *hash = strpbrk(s, "#;");
            if (hash) *hash = 0;
            char *close = strchr(s, ']');
            if (!close || trim(close + 1)[0])
                return snprintf(err, sizeof(msg_buf), "%s: a section header looks like [name]", where), -1;
            *close = 0;
            char *sec = trim(s + 1);
            if (!*sec) return snprintf(err, sizeof(msg_buf), "%s: empty section name", where), -1;
            if (strlen(sec) >= sizeof section)
                return snprintf(err, sizeof(msg_buf), "%s: section name longer than %d characters", where,
                                (int)sizeof section - 1),
                       -1;
            strcpy(section, sec);
            if (fn(ctx, where, lineno, section, NULL, NULL, err)) return -1;
            continue;
        }
        char *eq = strpbrk(s, "=#;");
        if (!eq || *eq != '=') {
            if (eq) *eq = 0;
            return snprintf(err, sizeof(msg_buf), "%s: missing '=' in '%.200s' (want key = value)", where, trim(s)), -1;
        }
        *eq = 0;
        char *key = trim(s);
        if (!*key) return snprintf(err, sizeof(msg_buf), "%s: missing key before '='", where), -1;
        if (!*section)
            return snprintf(err, sizeof(msg_buf), "%s: key '%.200s' comes before any [section]", where, key), -1;
        const char *bad = value_of(eq + 1, value);
        if (bad) return snprintf(err, sizeof(msg_buf), "%s: [%s] %.100s: the value %s", where, section, key, bad), -1;
        if (fn(ctx, where, lineno, section, key, value, err)) return -1;
    }
    if (!content)
        return snprintf(err, sizeof(msg_buf), "%s: an empty cfg (no [section] and no key = value line)", name), -1;
    return 0;
}

// The whole file in memory (NUL-terminated, *len bytes), or NULL with the message in err.
static char *read_text(const char *path, size_t *len, msg_buf err) {
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(err, sizeof(msg_buf), "%s: cannot open the cfg file (%s)", path, strerror(errno)), NULL;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return snprintf(err, sizeof(msg_buf), "%s: is a directory, not a cfg file", path), NULL;
    }
    char *text = malloc(CFG_TEXT_MAX + 1);
    if (!text) {
        fclose(f);
        return snprintf(err, sizeof(msg_buf), "%s: out of memory reading the cfg file", path), NULL;
    }
    size_t n = fread(text, 1, CFG_TEXT_MAX + 1, f);
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) snprintf(err, sizeof(msg_buf), "%s: cannot read the cfg file (%s)", path, strerror(e));
    else if (n > CFG_TEXT_MAX)
        snprintf(err, sizeof(msg_buf), "%s: more than %d bytes: not a cfg file", path, CFG_TEXT_MAX);
    else if (n == 0) snprintf(err, sizeof(msg_buf), "%s: the cfg file is empty", path);
    if (bad || n > CFG_TEXT_MAX || n == 0) return free(text), NULL;
    text[n] = 0;
    *len = n;
    return text;
}

typedef struct {
    cfg *c;
    const char *name;
    int seen[CFG_MAX_KEYS];
} read_ctx;
static int read_line(void *vctx, const char *where, int lineno, const char *section, const char *key, const char *value,
                     msg_buf err) {
    read_ctx *r = vctx;
    char hint[160];
    if (!key) {
        if (!has_section(r->c, section))
            return snprintf(err, sizeof(msg_buf), "%s: unknown section [%s]%s", where, section,
                            suggest(r->c, NULL, section, hint, sizeof hint)),
                   -1;
        return 0;
    }
    cfg_value *v = find(r->c, section, key);
    int i = v ? (int)(v - r->c->v) : -1;
    if (i >= 0 && r->seen[i])
        return snprintf(err, sizeof(msg_buf), "%s: [%s] %s is set twice (first at %s:%d)", where, section, key, r->name,
                        r->seen[i]),
               -1;
    if (set(r->c, where, section, key, value, err)) return -1;
    r->seen[i] = lineno;
    return 0;
}

void cfg_read_string(cfg *c, const char *text, size_t len, const char *name) {
    read_ctx r = {c, name, {0}};
    msg_buf err;
    snprintf(c->path, sizeof c->path, "%s", name);
    if (parse(text, len, name, read_line, &r, err)) tz_fail("%s", err);
}

void cfg_read_file(cfg *c, const char *path) {
    size_t len;
    msg_buf err;
    char *text = read_text(path, &len, err);
    if (!text) tz_fail("%s", err);
    read_ctx r = {c, path, {0}};
    snprintf(c->path, sizeof c->path, "%s", path);
    int bad = parse(text, len, path, read_line, &r, err);
    free(text);
    if (bad) tz_fail("%s", err);
}

typedef struct {
    const char *section, *key;
    char *out;
    int size, found;
} peek_ctx;
static int peek_line(void *vctx, const char *where, int lineno, const char *section, const char *key, const char *value,
                     msg_buf err) {
    (void)where, (void)lineno, (void)err;
    peek_ctx *p = vctx;
    if (key && !strcmp(section, p->section) && !strcmp(key, p->key)) {
        snprintf(p->out, p->size, "%s", value);
        p->found = 1;
    }
    return 0;
}

int cfg_peek_string(const char *text, size_t len, const char *name, const char *section, const char *key, char *out,
                    int out_size) {
    peek_ctx p = {section, key, out, out_size, 0};
    msg_buf err;
    if (parse(text, len, name, peek_line, &p, err)) tz_fail("%s", err);
    return p.found;
}

int cfg_peek(const char *path, const char *section, const char *key, char *out, int out_size) {
    size_t len;
    msg_buf err;
    char *text = read_text(path, &len, err);
    if (!text) tz_fail("%s", err);
    peek_ctx p = {section, key, out, out_size, 0};
    int bad = parse(text, len, path, peek_line, &p, err);
    free(text);
    if (bad) tz_fail("%s", err);
    return p.found;
}

void cfg_override(cfg *c, const char *arg, int index) {
    char where[64], buf[CFG_VALUE_MAX + 128], value[CFG_VALUE_MAX];
    msg_buf err;
    snprintf(where, sizeof where, "command line override %d", index);
    if (strlen(arg) >= sizeof buf) tz_fail("%s: longer than %d characters", where, (int)sizeof buf - 1);
    strcpy(buf, arg);
    char *eq = strchr(buf, '='), *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq) tz_fail("%s: '%s' is not section.key=value", where, arg);
    *eq = 0, *dot = 0;
    char *section = trim(buf), *key = trim(dot + 1), *v = trim(eq + 1);
    if (*v == '"') { // quoted: unescaped as in a file
        const char *end, *bad = unquote(v, value, &end);
        if (!bad && *end) bad = "has text after the closing quote";
        if (bad) tz_fail("%s: [%s] %s: the value %s", where, section, key, bad);
    } else {
        if (strlen(v) >= sizeof value)
            tz_fail("%s: [%s] %s: value longer than %d characters", where, section, key, CFG_VALUE_MAX - 1);
        strcpy(value, v);
    }
    if (set(c, where, section, key, value, err)) tz_fail("%s", err);
    snprintf(find(c, section, key)->where, sizeof c->v[0].where, "command line");
}

void cfg_set(cfg *c, const char *section, const char *key, const char *value, const char *where) {
    msg_buf err;
    if (set(c, where, section, key, value, err)) tz_fail("%s", err);
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
    if (v->key->type != type)
        tz_fail("cfg: [%s] %s is %s, not %s", section, key, type_name[v->key->type], type_name[type]);
    return v;
}

// In range by construction: every value passed check_value against an int range.
int cfg_int(const cfg *c, const char *section, const char *key) {
    return (int)strtol(get(c, section, key, CFG_INT)->text, NULL, 10);
}
double cfg_float(const cfg *c, const char *section, const char *key) {
    return strtod(get(c, section, key, CFG_FLOAT)->text, NULL);
}
const char *cfg_str(const cfg *c, const char *section, const char *key) { return get(c, section, key, CFG_STR)->text; }
int cfg_bool(const cfg *c, const char *section, const char *key) {
    const char *t = get(c, section, key, CFG_BOOL)->text;
    return !strcmp(t, "true") || !strcmp(t, "1") || !strcmp(t, "yes");
}
int cfg_is_set(const cfg *c, const char *section, const char *key) {
    const cfg_value *v = find(c, section, key);
    return v && strcmp(v->where, "default") && strcmp(v->where, "unset");
}

// Whether a value must be quoted to read back as itself.
static int needs_quotes(const char *s) {
    size_t n = strlen(s);
    if (!n) return 0;
    if (s[0] == '"' || isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1])) return 1;
    for (; *s; s++)
        if (*s == '#' || *s == ';' || (unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

void cfg_write(const cfg *c, FILE *f) {
    const char *section = "";
    for (int i = 0; i < c->n; i++) {
        const cfg_value *v = &c->v[i];
        if (strcmp(v->key->section, section)) fprintf(f, "%s[%s]\n", i ? "\n" : "", section = v->key->section);
        int len = fprintf(f, "%s = ", v->key->key);
        len += needs_quotes(v->text) ? json_write_quoted(f, v->text, QUOTE_CFG) : fprintf(f, "%s", v->text);
        fprintf(f, "%*s # ", len < 40 ? 40 - len : 0, ""); // the origins in one column
        // The origin is a comment: a control byte in it (a path with a newline) must not end it.
        for (const char *w = v->where; *w; w++) fputc((unsigned char)*w < 0x20 ? '?' : *w, f);
        fputc('\n', f);
    }
}

// A number as JSON: ints as they are, floats in the fewest digits that read back the same
// (the cfg's own text may be "+5", "007" or ".5", which JSON does not allow).
static void json_number(FILE *f, const cfg_value *v) {
    if (v->key->type == CFG_INT) {
        fprintf(f, "%ld", strtol(v->text, NULL, 10));
        return;
    }
    double x = strtod(v->text, NULL);
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) break;
    }
    fputs(buf, f);
}

void cfg_write_json(const cfg *c, FILE *f) {
    fputc('{', f);
    for (int i = 0; i < c->n; i++) {
        const cfg_value *v = &c->v[i];
        char name[160];
        snprintf(name, sizeof name, "%s.%s", v->key->section, v->key->key);
        fprintf(f, "%s", i ? ", " : "");
        json_write_string(f, name);
        fputs(": ", f);
        if (v->key->type == CFG_STR || !v->text[0]) json_write_string(f, v->text);
        else if (v->key->type == CFG_BOOL) fputs(cfg_bool(c, v->key->section, v->key->key) ? "true" : "false", f);
        else json_number(f, v);
    }
    fputc('}', f);
}
