// dist.c: data-parallel training over MPI (see dist.h). Without TZ_MPI (meson -Dmpi=disabled or
// no MPI found) the calls are those of the only rank.
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TZ_MPI
#include <mpi.h>

static int joined, rank, size = 1, local_size = 1;

// mpirun (OpenMPI's, or a PMI launcher's) leaves these in each rank's environment. A process
// started without one stays alone: no MPI_Init, so a plain ./train, the tests and the
// sanitizers never meet MPI's start-up.
static int under_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE") || getenv("PMI_RANK");
}

void dist_init(int *argc, char ***argv) {
    int done;
    MPI_Initialized(&done);
    if (done || !under_mpirun()) return;
    int provided; // FUNNELED: the gemm's threads never call MPI, only the main thread does
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "tapezoo: MPI_Init failed\n");
        exit(1);
    }
    joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
}

void dist_finalize(void) {
    int done;
    if (!joined || (MPI_Finalized(&done), done)) return;
    MPI_Finalize();
}

int dist_rank(void) { return rank; }
int dist_size(void) { return size; }
int dist_local_size(void) { return local_size; }

static MPI_Datatype real_type(void) { return sizeof(real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT; }

void dist_sum(double *x, int n) {
    if (size > 1) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void dist_sum_real(real *x, size_t n) {
    // MPI counts are int: a block beyond 2^31-1 values goes in pieces.
    for (size_t done = 0; size > 1 && done < n;) {
        int k = n - done > (size_t)1 << 30 ? 1 << 30 : (int)(n - done);
        MPI_Allreduce(MPI_IN_PLACE, x + done, k, real_type(), MPI_SUM, MPI_COMM_WORLD);
        done += (size_t)k;
    }
}

int dist_same(uint64_t v) {
    if (size == 1) return 1;
    unsigned long long lo = v, hi = v;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

void dist_gather_rows(const real *mine, real *full, long K, long B, long D) {
    long lo, n;
    dist_rows(B, &lo, &n);
    if (size == 1) {
        if (full != mine) memcpy(full, mine, sizeof(real) * K * B * D);
        return;
    }
    int *counts = malloc(sizeof(int) * size), *displs = malloc(sizeof(int) * size);
    if (!counts || !displs) tz_fail("dist: out of memory");
    for (int r = 0; r < size; r++) {
        long rlo, rn;
        dist_rows_of(r, B, &rlo, &rn);
        counts[r] = (int)(rn * D), displs[r] = (int)(rlo * D);
    }
    for (long k = 0; k < K; k++) // one block of B rows at a time: each rank's rows are contiguous in it
        MPI_Gatherv(mine + k * n * D, (int)(n * D), real_type(), full ? full + k * B * D : NULL, counts, displs,
                    real_type(), 0, MPI_COMM_WORLD);
    free(counts);
    free(displs);
}

void dist_barrier(void) {
    if (size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void dist_abort(int status) {
    fflush(stdout);
    fflush(stderr);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

#else // no MPI: one rank

void dist_init(int *argc, char ***argv) { (void)argc, (void)argv; }
void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
int dist_local_size(void) { return 1; }
void dist_sum(double *x, int n) { (void)x, (void)n; }
void dist_sum_real(real *x, size_t n) { (void)x, (void)n; }
int dist_same(uint64_t v) { return (void)v, 1; }
void dist_gather_rows(const real *mine, real *full, long K, long B, long D) {
    if (full != mine) memcpy(full, mine, sizeof(real) * K * B * D);
}
void dist_barrier(void) {}
void dist_abort(int status) { exit(status); }

#endif

void dist_rows_of(int r, long n, long *lo, long *count) {
    int p = dist_size();
    long base = n / p, extra = n % p;
    *lo = r * base + (r < extra ? r : extra);
    *count = base + (r < extra);
}

void dist_rows(long n, long *lo, long *count) { dist_rows_of(dist_rank(), n, lo, count); }

int dist_batch_rows(tz_batch *b) {
    long lo, n;
    dist_rows(b->B, &lo, &n);
    b->x += lo * b->T, b->y += lo * b->T;
    if (b->src) b->src += lo * b->S, b->src_len += lo;
    b->B = (int)n;
    return b->B;
}
