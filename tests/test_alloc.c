// After its first steps, a training step allocates nothing: autograd/README.md says so, and this
// test holds it to it. The test binary interposes malloc, calloc, realloc, aligned_alloc and
// posix_memalign (libc's own calls, fopen's or strdup's, come here too) and counts the calls
// while the trainer (tz_run_main, as ./train runs it) does steps 3 to 10 of an LSTM and a
// Transformer language model, each step logged (train.log_every = 1). The window is marked by
// the model's forward, wrapped through tz_run_opts.def: it opens at the 3rd training forward and
// closes at the 11th, so it holds 8 whole steps (batch, forward, backward, clip, optimiser, log).
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "model.h"

// ---------------------------------------------------------------------------------------------
// The counting allocator: each function forwards to the next definition (libc's, or the
// sanitizer's), found with dlsym. dlsym may itself allocate before the real functions are known:
// that comes from a static buffer, never freed.
static atomic_int counting;
static atomic_long calls;
static void *(*real_malloc)(size_t), *(*real_calloc)(size_t, size_t), *(*real_realloc)(void *, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void (*real_free)(void *);
static _Alignas(16) char boot[8192];
static size_t boot_used;
static int resolving;

static void *boot_alloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (boot_used + n > sizeof boot) abort();
    void *p = boot + boot_used;
    boot_used += n;
    return p;
}
static int from_boot(const void *p) { return (const char *)p >= boot && (const char *)p < boot + sizeof boot; }

static void resolve(void) {
    if (real_free || resolving) return;
    resolving = 1;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    resolving = 0;
}
static void count(void) {
    if (atomic_load(&counting)) atomic_fetch_add(&calls, 1);
}

void *malloc(size_t n) {
    resolve();
    if (!real_malloc) return boot_alloc(n);
    count();
    return real_malloc(n);
}
void *calloc(size_t k, size_t n) {
    resolve();
    if (!real_calloc) return boot_alloc(k * n); // static: already zero
    count();
    return real_calloc(k, n);
}
void *realloc(void *p, size_t n) {
    resolve();
    if (from_boot(p)) abort(); // dlsym's few bytes are never resized
    count();
    return real_realloc(p, n);
}
void *aligned_alloc(size_t align, size_t n) {
    resolve();
    count();
    return real_aligned_alloc(align, n);
}
int posix_memalign(void **p, size_t align, size_t n) {
    resolve();
    count();
    return real_posix_memalign(p, align, n);
}
void free(void *p) {
    if (!p || from_boot(p)) return;
    resolve();
    real_free(p);
}

// ---------------------------------------------------------------------------------------------
// The model under test, its forward wrapped to open and close the window.
enum { FIRST = 3, LAST = 10, STEPS = 12 };
static const tz_model_def *real_def;
static tz_model_def counted_def;
static int forwards; // training forwards so far
static long per_step[LAST + 1]; // allocations in step k (from its forward to the next one's)

static tz_tensor *counted_forward(tz_graph *g, void *m, tz_batch *b) {
    if (g->training) { // validation (at the last step only) and sampling run without
        forwards++;
        long n = atomic_exchange(&calls, 0);
        if (forwards > 1 && forwards <= LAST + 1) per_step[forwards - 1] = n;
        atomic_store(&counting, forwards <= LAST);
    }
    return real_def->forward(g, m, b);
}

static void write_file(char *path, const char *text) {
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "%s", path);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

// Trains `type` (with the cfg lines `model`) for STEPS steps and asserts that steps FIRST..LAST
// allocated nothing.
static void no_allocation_in_steps(const char *type, const char *model) {
    char data[64] = "/tmp/tapezoo-alloc-data-XXXXXX", cfg_path[64] = "/tmp/tapezoo-alloc-cfg-XXXXXX";
    char dir[64] = "/tmp/tapezoo-alloc-run-XXXXXX", text[8192], out_dir[96];
    size_t n = 0;
    const char *words[] = {"the cat ", "sat on ", "a mat. ", "my dog ", "ran to ", "the king.\n"};
    for (int i = 0; n < sizeof text - 64; i++) n += (size_t)sprintf(text + n, "%s", words[(i * 7 + i / 5) % 6]);
    write_file(data, text);
    cr_assert(mkdtemp(dir));
    snprintf(text, sizeof text,
             "[model]\ntype = %s\n%s\n[data]\npath = %s\n[train]\nsteps = %d\nbatch = 4\nblock = 16\nlog_every = 1\n"
             "eval_every = %d\neval_tokens = 200\n[sample]\ntokens = 0\nprompt = the\n",
             type, model, data, STEPS, STEPS);
    write_file(cfg_path, text);
    snprintf(out_dir, sizeof out_dir, "train.out_dir=%s/run", dir);
    real_def = tz_model_find(type);
    cr_assert(real_def, "%s", type);
    counted_def = *real_def;
    counted_def.forward = counted_forward;
    forwards = 0;
    memset(per_step, 0, sizeof per_step);
    FILE *quiet = fopen("/dev/null", "w");
    tz_run_opts o = {&counted_def, quiet, 2};
    char *argv[] = {"train", cfg_path, out_dir};
    int status = tz_run_main(3, argv, &o);
    atomic_store(&counting, 0);
    fclose(quiet);
    cr_assert_eq(status, 0);
    cr_assert_eq(forwards, STEPS, "%s: %d training forwards", type, forwards);
    cr_log_info("%s: allocations in steps 1 and 2: %ld, %ld", type, per_step[1], per_step[2]);
    for (int k = FIRST; k <= LAST; k++)
        cr_expect_eq(per_step[k], 0, "%s: step %d allocated %ld times", type, k, per_step[k]);
    const char *files[] = {"log.csv", "config.cfg", "last.safetensors", "best.safetensors"};
    char path[160];
    for (int i = 0; i < 4; i++) snprintf(path, sizeof path, "%s/run/%s", dir, files[i]), unlink(path);
    snprintf(path, sizeof path, "%s/run", dir);
    rmdir(path);
    rmdir(dir);
    unlink(data), unlink(cfg_path);
}

// The count sees what libc allocates for the program (strdup, a memory stream), not only its own calls.
Test(alloc, the_counter_sees_libc_inside) {
    // valgrind replaces libc's own allocator: calls from inside libc bypass this interposer
    // there (the project's own calls, which the other tests count, still reach it).
    if (getenv("TZ_UNDER_VALGRIND")) cr_skip_test("libc's inner allocations go to valgrind's allocator");
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
    free(strdup("x"));
    char *buf;
    size_t n;
    FILE *f = open_memstream(&buf, &n);
    fputs("x", f);
    fclose(f);
    free(buf);
    atomic_store(&counting, 0);
    cr_assert_geq(atomic_load(&calls), 2, "%ld", atomic_load(&calls));
}

Test(alloc, lstm_steps_allocate_nothing_after_the_warm_up) {
    no_allocation_in_steps("lstm", "layers = 2\nembed = 16\nhidden = 32");
}

Test(alloc, transformer_steps_allocate_nothing_after_the_warm_up) {
    no_allocation_in_steps("transformer", "layers = 2\nd_model = 32\nd_ff = 64\nheads = 2");
}
