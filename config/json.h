// json.h: the little JSON tapezoo needs: writing escaped strings, and a small parser for the
// safetensors header (objects, arrays, strings, numbers, true/false/null).
#ifndef TZ_JSON_H
#define TZ_JSON_H

#include <stdio.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json {
    json_type type;
    double number; // JSON_NUMBER, JSON_BOOL (0/1)
    char *string; // JSON_STRING (unescaped, owned)
    struct json *items; // JSON_ARRAY, JSON_OBJECT
    char **keys; // JSON_OBJECT
    int count;
} json;

// s in double quotes with backslash escapes, for the two readers of tapezoo's quoted strings:
// \" \\ \n \t \r, and the other control bytes (below 0x20, and 0x7f) as \u00XX for JSON or as \xHH
// for a cfg (whose reader knows no \u, config/cfg.h); all other bytes (UTF-8) as they are. Returns
// the number of bytes written. The one string quoter: JSON lines, checkpoints' headers, cfg files.
typedef enum { QUOTE_JSON, QUOTE_CFG } json_quote;
int json_write_quoted(FILE *f, const char *s, json_quote how);
void json_write_string(FILE *f, const char *s); // json_write_quoted(f, s, QUOTE_JSON)
// Parses text[0..len) (need not be NUL-terminated; nothing outside it is read). Strict about
// trailing characters, escapes (\u0000 and raw NUL bytes are refused: strings are C strings) and
// nesting (at most 64 levels). Returns 0 and sets *err (a static message with the byte offset)
// on error, with nothing left allocated; out of memory is such an error.
int json_parse(const char *text, size_t len, json *out, const char **err);
const json *json_get(const json *obj, const char *key); // NULL if absent or not an object
void json_free(json *j);

#endif
