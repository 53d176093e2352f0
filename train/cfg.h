// cfg.h: darknet-style configuration files, but strict.
//
//   # a comment            ; also a comment
//   [train]
//   steps = 2000           # trailing comments too
//   lr = 1e-3
//
// Every key is declared in a schema (section, key, type, default, help). An unknown section or
// key, a missing '=', a bad number or a key before any section is an error "file:line: message"
// (with the closest known key suggested), and the program exits non-zero. Command-line
// overrides "section.key=value" are checked the same way, as "override N".
#ifndef TZ_CFG_H
#define TZ_CFG_H

#include <stdio.h>

typedef enum { CFG_INT, CFG_FLOAT, CFG_STR, CFG_BOOL } cfg_type;

typedef struct cfg_key {
    const char *section, *key;
    cfg_type type;
    const char *def;  // default value as text (NULL: required)
    const char *help; // one line
} cfg_key;

#define CFG_MAX_KEYS 160
#define CFG_VALUE_MAX 512

typedef struct cfg_value {
    const cfg_key *key;
    char text[CFG_VALUE_MAX];
    char where[300]; // "default", "file:line" or "command line"
} cfg_value;

typedef struct cfg {
    cfg_value v[CFG_MAX_KEYS];
    int n;
    char path[256];
} cfg;

// Starts a configuration with the defaults of one or more schemas (arrays ending in {0}).
void cfg_init(cfg *c, const cfg_key *const *schemas, int n_schemas);
// Reads a file into c. Fails (tz_fail) on any error, naming file:line.
void cfg_read_file(cfg *c, const char *path);
// Reads the file's text for a single key without checking the rest ("model.type" before the
// model's own keys are known). Returns 0 if absent; fails on an unreadable file.
int cfg_peek(const char *path, const char *section, const char *key, char *out, int out_size);
// Applies "section.key=value".
void cfg_override(cfg *c, const char *arg, int index);
// Sets a value as the program resolved it (e.g. a data path made absolute); `where` says why.
void cfg_set(cfg *c, const char *section, const char *key, const char *value, const char *where);
// Fails naming the key if a required value (default NULL) was never given.
void cfg_check_required(const cfg *c);

long cfg_int(const cfg *c, const char *section, const char *key);
double cfg_float(const cfg *c, const char *section, const char *key);
const char *cfg_str(const cfg *c, const char *section, const char *key);
int cfg_bool(const cfg *c, const char *section, const char *key);
// Whether the value came from the file or the command line (not the default).
int cfg_is_set(const cfg *c, const char *section, const char *key);

// The resolved configuration as cfg text (defaults included, each with its origin), so it can
// be printed at start and saved with a checkpoint.
void cfg_write(const cfg *c, FILE *f);
// The same as one JSON object {"section.key": value, ...}.
void cfg_write_json(const cfg *c, FILE *f);

#endif
