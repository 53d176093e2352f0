// threadpool.h: a small persistent pool of worker threads for tz_sgemm.
//
// Workers are created on first need and never exit. After a task they spin briefly (so the next
// gemm of a forward/backward pass finds them awake), then sleep on a condition variable.
// One parallel region runs at a time: a call made while the pool is busy (from another thread,
// or from inside a task) runs all its tasks serially on the caller, so it can never deadlock.
#ifndef TZ_THREADPOOL_H
#define TZ_THREADPOOL_H

#include <stdatomic.h>

// A task: fn(arg, task, ntasks) for one task index in [0, ntasks).
typedef void (*tz_task_fn)(void *arg, int task, int ntasks);

// Run fn for every task in [0, ntasks) and return when all are done. The caller runs task 0;
// workers 1..ntasks-1 run the others (on the caller too if a worker could not be started).
void tz_pool_run(int ntasks, tz_task_fn fn, void *arg);

// Nonzero inside a task of tz_pool_run (on any thread): work split here would only run serially,
// so callers such as tz_sgemm do it in one piece instead.
int tz_pool_in_task(void);

// A lock the tasks of one region hold for a few loads and stores (sharing out what is left):
// it spins, as its holder is running.
static inline void tz_spin_lock(atomic_flag *f) {
    while (atomic_flag_test_and_set_explicit(f, memory_order_acquire)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}
static inline void tz_spin_unlock(atomic_flag *f) { atomic_flag_clear_explicit(f, memory_order_release); }

#endif
