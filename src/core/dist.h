// The processes of a data-parallel run: MPI when the build has it (cmake -DMP_MPI=ON),
// otherwise one process of rank 0. Nothing but dist.c knows about MPI; the training loop
// calls these (docs/DESIGN.md#data-parallel-training).
//
// Every reduction sums in rank order, ((x_0 + x_1) + x_2) + ..., whoever does the adding,
// so a run with the same number of processes gives the same bits every time.
#ifndef MP_CORE_DIST_H
#define MP_CORE_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

// Starts MPI when a launcher (mpirun, srun) started the process; otherwise, and in a build
// without MPI, nothing: one process of rank 0. Call once, before any other dist_ function.
int dist_init(int *argc, char ***argv, Error *err);
// Ends MPI; after an error of any one process, dist_abort instead (the others may wait
// in a collective call that never comes).
void dist_finalize(void);
void dist_abort(int exit_code);

bool dist_built_with_mpi(void);
int dist_rank(void);   // 0 .. dist_size() - 1
int dist_size(void);   // 1 without MPI or without mpirun
bool dist_is_root(void);

// data[i] = Σ over ranks of data[i] (in rank order), on every rank.
void dist_allreduce_sum(float *data, size_t n);
void dist_allreduce_sum_double(double *data, size_t n);
// Rank 0's bytes to every rank.
void dist_broadcast(void *data, size_t bytes);
void dist_barrier(void);

#endif
