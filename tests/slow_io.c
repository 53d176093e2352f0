// slow_io.c: a test-only LD_PRELOAD library that makes a checkpoint write slow, so a test can
// signal or kill the trainer in the middle of it: rename() of a file to a name ending in
// ".safetensors" first creates the file $TZ_SLOW_MARK (the test waits for it) and sleeps
// $TZ_SLOW_RENAME seconds. Nothing else changes; without the variables it is a plain rename.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    const char *secs = getenv("TZ_SLOW_RENAME"), *mark = getenv("TZ_SLOW_MARK");
    size_t n = strlen(to);
    if (secs && n >= 12 && !strcmp(to + n - 12, ".safetensors")) {
        if (mark) close(open(mark, O_CREAT | O_WRONLY, 0644));
        sleep((unsigned)atoi(secs));
    }
    return real(from, to);
}
