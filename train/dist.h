// dist.h: data-parallel training over MPI (`mpirun -np N ./train CFG`), the trainer's only door
// to MPI: nothing else includes mpi.h. Built without MPI (meson -Dmpi=disabled, or no MPI
// found), or started without mpirun, every call here is that of a single rank: rank 0 of 1, the
// reductions leave their arguments as they are.
//
// The model: every rank builds the same model from the same seed, draws the same GLOBAL batch
// ([train] batch) and runs forward and backward on its own rows of it (dist_rows); the gradients
// are summed over the ranks, each rank's weighted by its share of the batch's targets, so that N
// ranks compute the gradient of one process (see tz_train). Rank 0 alone writes files and
// prints; a failure on any rank ends all of them (dist_abort), never a hang.
#ifndef TZ_DIST_H
#define TZ_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "tz.h"

// Joins the MPI job when the process was started by mpirun (MPI_Init), else stays alone (no
// MPI_Init: a plain ./train never touches MPI). Safe to call more than once.
void dist_init(int *argc, char ***argv);
// Leaves the MPI job (MPI_Finalize) if dist_init joined one.
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
// Ranks on this machine (for the thread count): 1 without MPI.
int dist_local_size(void);
// This rank's share of n rows: [*lo, *lo + *count). Shares differ by at most one row; the first
// n % size ranks have the larger ones.
void dist_rows(long n, long *lo, long *count);
// The share of rank r (for gathers).
void dist_rows_of(int r, long n, long *lo, long *count);

// Sums x[0..n) over all ranks, in place (every rank gets the sum).
void dist_sum(double *x, int n);
// The same on a block of reals (the gradients): one MPI_Allreduce in place.
void dist_sum_real(real *x, size_t n);
// 1 when every rank passed the same value, else 0 (a check that the weights stay identical).
int dist_same(uint64_t v);
// Gathers a state laid out (K, rows, D), where this rank holds rows dist_rows(B) of B, into
// full (K, B, D) on rank 0 (full may be NULL on the other ranks). width = D.
void dist_gather_rows(const real *mine, real *full, long K, long B, long D);
// Narrows a batch of b->B rows to this rank's rows (dist_rows): x, y, and a translation batch's
// src and src_len point into the same buffers; the widths (T, S) stay. Returns the rows kept
// (0 for a rank with no rows of a short batch).
int dist_batch_rows(tz_batch *b);
// Waits for every rank.
void dist_barrier(void);
// Ends the run with `status`: exit() for a single rank, MPI_Abort for all ranks when there are
// several (a rank that stops alone would leave the others waiting in a reduction).
__attribute__((noreturn)) void dist_abort(int status);

#endif
