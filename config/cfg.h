// cfg.h: darknet-style configuration files, but strict.
//
//   # a comment            ; also a comment
//   [train]
//   steps = 2000           # trailing comments too
//   lr = 1e-3
//   [sample]
//   prompt = "Q; A #1\n"   # a value in double quotes keeps # ; spaces, with escapes
//
// A value is the text after '=' up to a comment, spaces trimmed; or, when it starts with '"', a
// quoted string with the escapes \n \t \r \\ \" and \xHH (any byte but 0), then only spaces or a
// comment. cfg_write quotes exactly the values that need it, so every value of 1..511 bytes
// without NUL survives a write and a read.
//
// Every key is declared in a schema (section, key, type, default, help, for numbers the valid
// range, for a string its choices if it has a few). An unknown section or key, a missing '=', a
// bad or out-of-range number, a string not among its choices or a key before any section is an
// error "file:line: message" (with the closest known key suggested), and the program exits
// non-zero. Command-line overrides "section.key=value" are checked the
// same way, as "command line override N" (a quoted value there is unescaped the same way).
#ifndef TZ_CFG_H
#define TZ_CFG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { CFG_INT, CFG_FLOAT, CFG_STR, CFG_BOOL } cfg_type;

typedef struct cfg_key {
    const char *section, *key;
    cfg_type type;
    const char *def; // default value as text (NULL: required)
    const char *help; // one line
    // CFG_INT and CFG_FLOAT: the valid values, both ends included (ints within int's range:
    // cfg_int returns int). min < max is required of every number key; 0, 0 for the others.
    double min, max;
    // CFG_STR: the values it may take, separated by spaces ("auto always never"), checked like a
    // number's range (the default, the file, overrides, cfg_set); NULL: any text.
    const char *choices;
} cfg_key;

#define CFG_MAX_KEYS 160
#define CFG_VALUE_MAX 512
#define CFG_LINE_MAX 4096 // characters per line, the newline excluded
#define CFG_TEXT_MAX (1 << 20) // bytes per cfg file or text

typedef struct cfg_value {
    const cfg_key *key;
    char text[CFG_VALUE_MAX];
    char where[300]; // "default", "file:line" or "command line"
} cfg_value;

typedef struct cfg {
    cfg_value v[CFG_MAX_KEYS];
    int n;
    char path[256]; // the file (or the name given to cfg_read_string)
} cfg;

// Starts a configuration with the defaults of one or more schemas (arrays ending in {0}).
// Fails if a schema is malformed (a number key without a range, a default outside it).
// A key that is in two schemas takes the later schema's entry (its type, default, range and
// choices).
void cfg_init(cfg *c, const cfg_key *const *schemas, int n_schemas);
// Reads a file into c. Fails (tz_fail) on any error, naming file:line.
void cfg_read_file(cfg *c, const char *path);
// Reads cfg text (len bytes, NUL bytes are an error) into c; errors name "name:line", e.g.
// name = "runs/x/last.safetensors (saved cfg)". Allocates nothing.
void cfg_read_string(cfg *c, const char *text, size_t len, const char *name);
// Reads the file's text for a single key without checking the rest ("model.type" before the
// model's own keys are known). Returns 0 if absent; fails on an unreadable file or bad syntax.
int cfg_peek(const char *path, const char *section, const char *key, char *out, int out_size);
int cfg_peek_string(const char *text, size_t len, const char *name, const char *section, const char *key, char *out,
                    int out_size);
// Applies "section.key=value".
void cfg_override(cfg *c, const char *arg, int index);
// Sets a value as the program resolved it (e.g. a data path made absolute); `where` says why.
void cfg_set(cfg *c, const char *section, const char *key, const char *value, const char *where);
// Fails naming the key if a required value (default NULL) was never given.
void cfg_check_required(const cfg *c);

int cfg_int(const cfg *c, const char *section, const char *key);
double cfg_float(const cfg *c, const char *section, const char *key);
const char *cfg_str(const cfg *c, const char *section, const char *key);
int cfg_bool(const cfg *c, const char *section, const char *key);
// Whether the value came from the file or the command line (not the default).
int cfg_is_set(const cfg *c, const char *section, const char *key);

// The resolved configuration as cfg text (defaults included, each with its origin), so it can
// be printed at start and saved with a checkpoint; values that need it are quoted.
void cfg_write(const cfg *c, FILE *f);
// The same as one JSON object {"section.key": value, ...}.
void cfg_write_json(const cfg *c, FILE *f);

#endif
