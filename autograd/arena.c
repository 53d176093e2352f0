// arena.c: step-scoped memory. Allocation is a pointer bump; reset rewinds. When a step needs
// more than the arena holds, a new block is chained on; at the next reset all blocks are
// merged into one of (at least) the peak size, so from then on a step runs in one block, with no malloc.
#include "tz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64

struct tz_arena_block {
    tz_arena_block *prev;
    size_t size, used;
    _Alignas(ALIGN) unsigned char mem[];
};

static tz_arena_block *block_new(size_t size, tz_arena_block *prev) {
    tz_arena_block *b = aligned_alloc(ALIGN, (sizeof *b + size + ALIGN - 1) / ALIGN * ALIGN);
    if (!b) tz_fail("arena: out of memory allocating %zu bytes", size);
    b->prev = prev;
    b->size = size;
    b->used = 0;
    return b;
}

void tz_arena_init(tz_arena *a, size_t initial_bytes) {
    if (initial_bytes < 4096) initial_bytes = 4096;
    a->head = block_new(initial_bytes, NULL);
    a->used = a->peak = 0;
}

void *tz_arena_alloc(tz_arena *a, size_t bytes) {
    size_t need = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    tz_arena_block *b = a->head;
    if (b->size - b->used < need) {
        size_t size = b->size * 2;
        if (size < need) size = need;
        b = a->head = block_new(size, b);
    }
    void *p = b->mem + b->used;
    b->used += need;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void *tz_arena_calloc(tz_arena *a, size_t bytes) { return memset(tz_arena_alloc(a, bytes), 0, bytes); }

int tz_arena_pop(tz_arena *a, const void *p, size_t bytes) {
    tz_arena_block *b = a->head;
    size_t need = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (b->used < need || (uintptr_t)p != (uintptr_t)(b->mem + b->used - need)) return 0;
    b->used -= need;
    a->used -= need;
    return 1;
}

void tz_arena_reset(tz_arena *a) {
    if (a->head->prev) { // the last step overflowed: replace the chain by one block of the peak
        // The newest block is the largest (sizes double); when it holds the peak it is kept, so
        // its pages, already touched, are not given back and faulted in again (a decoder's
        // batches grow one after another).
        int keep = a->head->size >= a->peak;
        tz_arena_block *b = keep ? a->head->prev : a->head;
        while (b) {
            tz_arena_block *prev = b->prev;
            free(b);
            b = prev;
        }
        if (keep) a->head->prev = NULL;
        else a->head = block_new(a->peak + a->peak / 4, NULL);
    }
    a->head->used = 0;
    a->used = 0;
}

size_t tz_arena_capacity(const tz_arena *a) {
    size_t total = 0;
    for (const tz_arena_block *b = a->head; b; b = b->prev) total += b->size;
    return total;
}

void tz_arena_free(tz_arena *a) {
    tz_arena_block *b = a->head;
    while (b) {
        tz_arena_block *prev = b->prev;
        free(b);
        b = prev;
    }
    a->head = NULL;
}
