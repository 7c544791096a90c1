/* Counts the MPI calls of a process (LD_PRELOAD interposer for benchmarks/local_mpi.py).
 *
 * Every wrapped MPI function increments its counter while counting is on and forwards its
 * arguments unchanged to the MPI library's PMPI_ entry point (found in the global scope or,
 * when a Python extension loaded the library privately, in the already loaded
 * MPICALLS_LIBRARY, default libmpi.so.12: MPICH).  The wrappers take ten integer-register-
 * sized arguments and forward all ten: on x86-64 and aarch64 this passes any MPI call of at
 * most ten pointer or integer arguments through unchanged, whatever the ABI's handle types.
 * The classic and the large-count (_c, MPI 4) entry points are counted under their own names
 * (mpi4py and PETSc call the latter); collectives on a communicator of one process, which
 * synchronise nothing, are counted apart.  Python switches counting with mpicalls_enable()
 * and reads mpicalls_name(i), mpicalls_count(i) and mpicalls_on_self(i), i < mpicalls_n(),
 * through ctypes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef uintptr_t U;
typedef int (*mpi_fn)(U, U, U, U, U, U, U, U, U, U);

static const char *const NAMES[] = {
    "MPI_Allreduce",
    "MPI_Reduce",
    "MPI_Bcast",
    "MPI_Allgather",
    "MPI_Allgatherv",
    "MPI_Alltoall",
    "MPI_Alltoallv",
    "MPI_Barrier",
    "MPI_Gather",
    "MPI_Gatherv",
    "MPI_Scatterv",
    "MPI_Send",
    "MPI_Isend",
    "MPI_Recv",
    "MPI_Irecv",
    "MPI_Neighbor_alltoallv",
    "MPI_Ineighbor_alltoallv",
    "MPI_Iallreduce",
    "MPI_Ssend",
    "MPI_Scatter",
    "MPI_Allreduce_c",
    "MPI_Reduce_c",
    "MPI_Bcast_c",
    "MPI_Allgather_c",
    "MPI_Allgatherv_c",
    "MPI_Alltoall_c",
    "MPI_Alltoallv_c",
    "MPI_Gather_c",
    "MPI_Gatherv_c",
    "MPI_Scatterv_c",
    "MPI_Send_c",
    "MPI_Isend_c",
    "MPI_Recv_c",
    "MPI_Irecv_c",
    "MPI_Neighbor_alltoallv_c",
    "MPI_Ineighbor_alltoallv_c",
    "MPI_Iallreduce_c",
    "MPI_Ssend_c",
    "MPI_Scatter_c",
};
/* Position of the communicator among a collective's arguments (-1: point-to-point). */
static const int COMM_ARG[] = {5, 6, 4, 6, 7, 6, 8, 0, 7, 8, 8, -1, -1, -1, -1, 8, 8, 5, -1, 7, 5, 6, 4, 6, 7, 6, 8, 7, 8, 8, -1, -1, -1, -1, 8, 8, 5, -1, 7};
enum { MPICALLS_N = sizeof NAMES / sizeof NAMES[0] };
static long counts[MPICALLS_N], on_self[MPICALLS_N];
static int enabled;

int mpicalls_n(void) { return MPICALLS_N; }
const char *mpicalls_name(int i) { return NAMES[i]; }
long mpicalls_count(int i) { return counts[i]; }
long mpicalls_on_self(int i) { return on_self[i]; }
void mpicalls_enable(int on) { enabled = on; }

/* The MPI library's entry point PMPI_... of an MPI function name. */
static void *pmpi(const char *name) {
    char entry[64];
    snprintf(entry, sizeof entry, "P%s", name);
    void *found = dlsym(RTLD_DEFAULT, entry);
    if (!found) {
        const char *library = getenv("MPICALLS_LIBRARY");
        void *handle = dlopen(library ? library : "libmpi.so.12", RTLD_NOW | RTLD_NOLOAD);
        found = handle ? dlsym(handle, entry) : NULL;
    }
    if (!found) abort();
    return found;
}

/* Whether collective i runs on a communicator of one process (no synchronisation). */
static int alone(int i, const U *args) {
    static int (*size)(U, int *);
    if (COMM_ARG[i] < 0) return 0;
    if (!size) size = (int (*)(U, int *))pmpi("MPI_Comm_size");
    int n = 0;
    size(args[COMM_ARG[i]], &n);
    return n == 1;
}

static int forward(int i, U a, U b, U c, U d, U e, U f, U g, U h, U j, U k) {
    static mpi_fn next[MPICALLS_N];
    if (!next[i]) next[i] = (mpi_fn)pmpi(NAMES[i]);
    if (enabled) {
        const U args[] = {a, b, c, d, e, f, g, h, j, k};
        if (alone(i, args)) on_self[i]++;
        else counts[i]++;
    }
    return next[i](a, b, c, d, e, f, g, h, j, k);
}

#define WRAP(i, name)                                                              \
    int name(U a, U b, U c, U d, U e, U f, U g, U h, U j, U k) {                   \
        return forward(i, a, b, c, d, e, f, g, h, j, k);                           \
    }
WRAP(0, MPI_Allreduce)
WRAP(1, MPI_Reduce)
WRAP(2, MPI_Bcast)
WRAP(3, MPI_Allgather)
WRAP(4, MPI_Allgatherv)
WRAP(5, MPI_Alltoall)
WRAP(6, MPI_Alltoallv)
WRAP(7, MPI_Barrier)
WRAP(8, MPI_Gather)
WRAP(9, MPI_Gatherv)
WRAP(10, MPI_Scatterv)
WRAP(11, MPI_Send)
WRAP(12, MPI_Isend)
WRAP(13, MPI_Recv)
WRAP(14, MPI_Irecv)
WRAP(15, MPI_Neighbor_alltoallv)
WRAP(16, MPI_Ineighbor_alltoallv)
WRAP(17, MPI_Iallreduce)
WRAP(18, MPI_Ssend)
WRAP(19, MPI_Scatter)
WRAP(20, MPI_Allreduce_c)
WRAP(21, MPI_Reduce_c)
WRAP(22, MPI_Bcast_c)
WRAP(23, MPI_Allgather_c)
WRAP(24, MPI_Allgatherv_c)
WRAP(25, MPI_Alltoall_c)
WRAP(26, MPI_Alltoallv_c)
WRAP(27, MPI_Gather_c)
WRAP(28, MPI_Gatherv_c)
WRAP(29, MPI_Scatterv_c)
WRAP(30, MPI_Send_c)
WRAP(31, MPI_Isend_c)
WRAP(32, MPI_Recv_c)
WRAP(33, MPI_Irecv_c)
WRAP(34, MPI_Neighbor_alltoallv_c)
WRAP(35, MPI_Ineighbor_alltoallv_c)
WRAP(36, MPI_Iallreduce_c)
WRAP(37, MPI_Ssend_c)
WRAP(38, MPI_Scatter_c)
