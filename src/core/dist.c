// Data-parallel processes (see dist.h): MPI behind MP_MPI, or a single process.
//
// The sums are deterministic reduce-scatter + all-gather: a block of the array is cut in
// one piece per rank, rank s receives piece s of every rank (MPI_Alltoall), adds them in
// rank order and all ranks gather the summed pieces (MPI_Allgather). MPI_Allreduce would
// be shorter, but MPI leaves its order of additions to the library and the message sizes.
#include "core/dist.h"

#include <stdlib.h>
#include <string.h>

#ifdef MP_MPI
#include <mpi.h>

#include "core/error.h"  // defines: xmalloc

static int dist_rank_now = 0, dist_size_now = 1;
static bool dist_started = false;

// Whether a launcher started this process as one of a job: mpirun sets OMPI_COMM_WORLD_SIZE,
// PMIx launchers (srun --mpi=pmix, prterun) PMIX_RANK, PMI-1/2 launchers (MPICH's hydra,
// srun --mpi=pmi2) PMI_RANK. Without one, MPI_Init would make a singleton, for which Open
// MPI forks an orted daemon per process: seconds at start, a child process and its threads
// beside a run that is one process anyway. MP_MPI_INIT=1 or 0 overrides the guess.
static bool launched_as_job(void) {
    const char *forced = getenv("MP_MPI_INIT");
    if (forced && *forced) return strcmp(forced, "0") != 0;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int dist_init(int *argc, char ***argv, Error *err) {
    if (!launched_as_job()) return 0;  // one process of rank 0, as in a build without MPI
    int provided = 0;
    // Only the main thread calls MPI (between OpenMP regions).
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return error_set(err, "MPI_Init_thread failed");
    dist_started = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank_now);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_size_now);
    return 0;
}

void dist_finalize(void) {
    if (dist_started) MPI_Finalize();
    dist_started = false;
}

void dist_abort(int exit_code) {
    if (dist_started && dist_size_now > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
    dist_finalize();
    exit(exit_code);
}

bool dist_built_with_mpi(void) { return true; }
int dist_rank(void) { return dist_rank_now; }
int dist_size(void) { return dist_size_now; }

// Floats (or doubles) per rank and block: blocks of size * DIST_PIECE elements.
#define DIST_PIECE ((size_t)1 << 18)

#define DEFINE_SUM(name, type, mpi_type)                                                                   \
    static void name(type *data, size_t n) {                                                              \
        const int P = dist_size_now;                                                                      \
        if (P == 1 || n == 0) return;                                                                     \
        size_t piece = (n + (size_t)P - 1) / (size_t)P;                                                   \
        if (piece > DIST_PIECE) piece = DIST_PIECE;                                                       \
        const size_t block = piece * (size_t)P;                                                           \
        type *send = xmalloc(sizeof(type) * block), *recv = xmalloc(sizeof(type) * block);                \
        type *mine = xmalloc(sizeof(type) * piece);                                                       \
        for (size_t start = 0; start < n; start += block) {                                               \
            size_t count = n - start < block ? n - start : block;                                         \
            memcpy(send, data + start, sizeof(type) * count);                                             \
            memset(send + count, 0, sizeof(type) * (block - count));  /* the last block's padding */      \
            MPI_Alltoall(send, (int)piece, mpi_type, recv, (int)piece, mpi_type, MPI_COMM_WORLD);         \
            for (size_t i = 0; i < piece; i++) {                                                          \
                type sum = recv[i];                                                                       \
                for (int r = 1; r < P; r++) sum += recv[(size_t)r * piece + i];                           \
                mine[i] = sum;                                                                            \
            }                                                                                             \
            MPI_Allgather(mine, (int)piece, mpi_type, send, (int)piece, mpi_type, MPI_COMM_WORLD);        \
            memcpy(data + start, send, sizeof(type) * count);                                             \
        }                                                                                                 \
        free(send);                                                                                       \
        free(recv);                                                                                       \
        free(mine);                                                                                       \
    }

DEFINE_SUM(sum_floats, float, MPI_FLOAT)
DEFINE_SUM(sum_doubles, double, MPI_DOUBLE)
#undef DEFINE_SUM

void dist_allreduce_sum(float *data, size_t n) { sum_floats(data, n); }
void dist_allreduce_sum_double(double *data, size_t n) { sum_doubles(data, n); }

void dist_broadcast(void *data, size_t bytes) {
    if (dist_size_now == 1) return;
    // MPI counts are ints: broadcast in pieces of 1 GiB at most.
    const size_t max_piece = (size_t)1 << 30;
    for (size_t start = 0; start < bytes; start += max_piece) {
        size_t count = bytes - start < max_piece ? bytes - start : max_piece;
        MPI_Bcast((char *)data + start, (int)count, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

void dist_barrier(void) {
    if (dist_size_now > 1) MPI_Barrier(MPI_COMM_WORLD);
}

#else  // one process

int dist_init(int *argc, char ***argv, Error *err) {
    (void)argc, (void)argv, (void)err;
    return 0;
}
void dist_finalize(void) {}
void dist_abort(int exit_code) { exit(exit_code); }
bool dist_built_with_mpi(void) { return false; }
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
void dist_allreduce_sum(float *data, size_t n) { (void)data, (void)n; }
void dist_allreduce_sum_double(double *data, size_t n) { (void)data, (void)n; }
void dist_broadcast(void *data, size_t bytes) { (void)data, (void)bytes; }
void dist_barrier(void) {}

#endif

bool dist_is_root(void) { return dist_rank() == 0; }
