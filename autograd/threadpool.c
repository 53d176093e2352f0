// threadpool.c: the persistent worker pool behind tz_sgemm (see threadpool.h).
//
// Hand-off protocol, per worker (no shared job slot, so a worker that is slow to wake can never
// read a later job's fields):
//   caller: write the worker's task fields, then bump its `go` counter (seq_cst); if the worker
//           has announced it is going to sleep, signal its condvar under its mutex.
//   worker: spin on `go`; after SPIN_NS set `sleeping` (seq_cst) under its mutex and re-check `go`
//           before waiting. Either the caller sees `sleeping` and signals (the worker holds the
//           mutex until it is inside cond_wait, so the signal cannot be lost), or the worker's
//           re-check sees the new `go` (seq_cst total order of the two stores and two loads).
//   done:   each worker decrements `pending` (release) after its task; the caller spins until
//           it reads 0 (acquire), so everything the tasks wrote is visible when tz_pool_run returns.
#include "threadpool.h"
#include "tz.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#define POOL_MAX 64
// How long an idle worker spins before sleeping: long enough to bridge the gap between the
// gemms of one training step (a layer's elementwise ops can take a millisecond; each futex
// wake-up costs tens of microseconds on this VM: 200 us -> 2 ms gave the transformer +7%),
// short enough not to steal a core for long from whatever runs next.
#define SPIN_NS 2000000L

typedef struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint go; // bumped once per task handed to this worker
    atomic_int sleeping; // 1 while the worker is (about to be) in cond_wait
    tz_task_fn fn; // the task: written by the caller before `go` is bumped
    void *arg;
    int task, ntasks;
} worker;

static worker W[POOL_MAX]; // W[0] unused: task 0 runs on the caller
static int nworkers; // workers started (guarded by run_lock)
static atomic_int pending; // tasks of the current region not finished by workers
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static _Thread_local int in_task; // > 0 while this thread runs a task of tz_pool_run

int tz_pool_in_task(void) { return in_task; }

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p) {
    worker *w = p;
    unsigned seen = 0; // `go` starts at 0 and is only bumped after the thread exists
    for (;;) {
        // Spin first: checking the clock only every 256 pauses keeps the loop cheap.
        double start = tz_now();
        for (unsigned spins = 1; atomic_load(&w->go) == seen; spins++) {
            cpu_relax();
            if ((spins & 255) == 0 && tz_now() - start > SPIN_NS * 1e-9) {
                pthread_mutex_lock(&w->mu);
                atomic_store(&w->sleeping, 1);
                while (atomic_load(&w->go) == seen) pthread_cond_wait(&w->cv, &w->mu);
                atomic_store(&w->sleeping, 0);
                pthread_mutex_unlock(&w->mu);
                break;
            }
        }
        seen++; // the caller hands out one task at a time and waits for it
        in_task++;
        w->fn(w->arg, w->task, w->ntasks);
        in_task--;
        atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
    }
    return NULL;
}

// Start workers 1..n-1 that do not exist yet; returns how many workers exist (may be fewer).
static int ensure_workers(int n) {
    while (nworkers < n - 1 && nworkers < POOL_MAX - 1) {
        worker *w = &W[nworkers + 1];
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        atomic_init(&w->go, 0);
        atomic_init(&w->sleeping, 0);
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            pthread_mutex_destroy(&w->mu);
            break;
        }
        nworkers++;
    }
    return nworkers;
}

void tz_pool_run(int ntasks, tz_task_fn fn, void *arg) {
    in_task++;
    if (ntasks <= 1 || pthread_mutex_trylock(&run_lock) != 0) {
        // Single task, or the pool is busy (nested or concurrent call): run serially here.
        for (int t = 0; t < ntasks; t++) fn(arg, t, ntasks);
        in_task--;
        return;
    }
    int have = ensure_workers(ntasks);
    int used = ntasks - 1 < have ? ntasks - 1 : have; // tasks 1..used go to workers
    atomic_store_explicit(&pending, used, memory_order_relaxed);
    for (int t = 1; t <= used; t++) {
        worker *w = &W[t];
        w->fn = fn;
        w->arg = arg;
        w->task = t;
        w->ntasks = ntasks;
        atomic_fetch_add(&w->go, 1);
        if (atomic_load(&w->sleeping)) {
            pthread_mutex_lock(&w->mu);
            pthread_cond_signal(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
    }
    fn(arg, 0, ntasks);
    for (int t = used + 1; t < ntasks; t++) fn(arg, t, ntasks); // no worker for these
    // Tasks are balanced, so this wait is short, unless another process holds a worker's core:
    // then yield now and then, in case the scheduler wants to run the worker here.
    for (unsigned spins = 1; atomic_load_explicit(&pending, memory_order_acquire) != 0; spins++) {
        cpu_relax();
        if ((spins & 4095) == 0) sched_yield();
    }
    in_task--;
    pthread_mutex_unlock(&run_lock);
}
