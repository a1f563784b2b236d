/* dist/dist.c — nabla/dist.h: fit's sums (nb_fit_dist) as MPI allreduces. */
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "graph/internal.h"
#include "nabla/dist.h"

enum { MAX_PENDING = 64 }; /* sums in flight; more wait for these first */

struct nb_dist {
    int rank, size;
    bool mpi, owns_mpi;
    MPI_Comm comm;
    nb_fit_dist fit;
    bool blocking;        /* nb_dist_set_buckets: sums after backward only */
    size_t bucket_bytes;
    MPI_Request pending[MAX_PENDING];
    int n_pending;
    double reduce_seconds; /* spent in the gradients' sums' calls: what backward did not hide */
    long reduce_calls;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

bool nb_dist_launched(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

int nb_dist_launched_rank(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        errno = 0;
        long r = v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && errno == 0 && r >= 0 && r <= INT_MAX) return (int)r;
    }
    return 0;
}

/* MPI's message for code, after what. */
static nb_status mpi_fail(const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    nb__set_error(NB_ERR_IO, "dist: %s: %s", what, text);
    return NB_ERROR;
}

static nb_status sum_doubles(void *user, double *v, int n) {
    nb_dist *d = user;
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm);
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail("allreduce", rc);
}

static nb_status sum_floats(void *user, float *v, size_t n) {
    nb_dist *d = user;
    const double t0 = now();
    for (size_t done = 0; done < n;) { /* MPI counts are ints */
        const int chunk = n - done > (size_t)INT_MAX ? INT_MAX : (int)(n - done);
        int rc = MPI_Allreduce(MPI_IN_PLACE, v + done, chunk, MPI_FLOAT, MPI_SUM, d->comm);
        if (rc != MPI_SUCCESS) return mpi_fail("allreduce of the gradients", rc);
        done += (size_t)chunk;
    }
    d->reduce_seconds += now() - t0;
    d->reduce_calls++;
    return NB_OK;
}

static nb_status wait_sums(void *user) {
    nb_dist *d = user;
    if (!d->n_pending) return NB_OK;
    const double t0 = now();
    int rc = MPI_Waitall(d->n_pending, d->pending, MPI_STATUSES_IGNORE);
    d->n_pending = 0;
    d->reduce_seconds += now() - t0;
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail("allreduce of the gradients", rc);
}

/* MPI_Iallreduce: the sum goes on while backward does, moved on by
 * progress's tests (Open MPI progresses nonblocking collectives inside
 * MPI calls). */
static nb_status start_sum(void *user, float *v, size_t n) {
    nb_dist *d = user;
    if (n > (size_t)INT_MAX) { /* beyond one call's count: after the ones in flight, at once */
        if (wait_sums(d) != NB_OK) return NB_ERROR;
        return sum_floats(d, v, n);
    }
    if (d->n_pending == MAX_PENDING && wait_sums(d) != NB_OK) return NB_ERROR;
    const double t0 = now();
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, d->comm, &d->pending[d->n_pending]);
    d->reduce_seconds += now() - t0;
    if (rc != MPI_SUCCESS) return mpi_fail("allreduce of the gradients", rc);
    d->n_pending++;
    d->reduce_calls++;
    return NB_OK;
}

static void progress(void *user) {
    nb_dist *d = user;
    if (!d->n_pending) return;
    const double t0 = now();
    int done = 0;
    MPI_Testall(d->n_pending, d->pending, &done, MPI_STATUSES_IGNORE);
    if (done) d->n_pending = 0;
    d->reduce_seconds += now() - t0;
}

nb_dist *nb_dist_init(int *argc, char ***argv) {
    nb_dist *d = calloc(1, sizeof *d);
    if (!d) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "dist: out of memory");
        return NULL;
    }
    d->size = 1;
    if (!nb_dist_launched()) return d;
    int inited = 0, provided = 0, rc;
    MPI_Initialized(&inited);
    if (!inited) {
        if ((rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS) {
            mpi_fail("MPI_Init_thread", rc);
            free(d);
            return NULL;
        }
        d->owns_mpi = true;
    }
    d->mpi = true;
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm)) != MPI_SUCCESS) {
        mpi_fail("MPI_Comm_dup", rc);
        nb_dist_free(d);
        return NULL;
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    return d;
}

int nb_dist_rank(const nb_dist *d) { return d ? d->rank : 0; }
int nb_dist_size(const nb_dist *d) { return d ? d->size : 1; }

const nb_fit_dist *nb_dist_fit(nb_dist *d, bool check_weights) {
    if (!d || !d->mpi || d->size < 2) return NULL;
    d->fit = (nb_fit_dist){.rank = d->rank, .size = d->size, .user = d, .sum = sum_doubles,
                           .sum_floats = sum_floats, .check_weights = check_weights,
                           .bucket_bytes = d->bucket_bytes};
    if (!d->blocking) d->fit.start_sum_floats = start_sum, d->fit.progress = progress, d->fit.wait_sums = wait_sums;
    return &d->fit;
}

void nb_dist_set_buckets(nb_dist *d, bool overlap, size_t bucket_bytes) {
    if (d) d->blocking = !overlap, d->bucket_bytes = bucket_bytes;
}

double nb_dist_allreduce_seconds(const nb_dist *d, long *calls) {
    if (calls) *calls = d ? d->reduce_calls : 0;
    return d ? d->reduce_seconds : 0;
}

nb_status nb_dist_barrier(nb_dist *d) {
    if (!d || !d->mpi) return NB_OK;
    int rc = MPI_Barrier(d->comm);
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail("barrier", rc);
}

void nb_dist_free(nb_dist *d) {
    if (!d) return;
    if (d->mpi && d->comm != MPI_COMM_NULL) MPI_Comm_free(&d->comm);
    if (d->owns_mpi) MPI_Finalize();
    free(d);
}
