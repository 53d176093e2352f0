// fuzz/json.c: the safetensors header's JSON parser (config/json.c) on arbitrary bytes. The bytes
// are not NUL-terminated, as a header read from a file is not.
#include <string.h>

#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json j;
    const char *err;
    if (json_parse((const char *)data, size, &j, &err)) {
        // walk what a checkpoint reader walks
        const json *meta = json_get(&j, "__metadata__");
        (void)json_get(meta, "step");
        for (int i = 0; j.type == JSON_OBJECT && i < j.count; i++) (void)json_get(&j.items[i], "shape");
        json_free(&j);
    } else if (!err || !strstr(err, "at byte")) __builtin_trap(); // every error says where
    return 0;
}
