/* nabla/dist.h — data-parallel training over MPI (libnabla-dist,
 * pkg-config nabla-dist; built when meson finds MPI: -Dmpi=auto|enabled|
 * disabled). The core library knows nothing of MPI: this module gives fit
 * the sums it needs (nabla/train.h's nb_fit_dist) as MPI allreduces.
 *
 *   int main(int argc, char **argv) {
 *       nb_dist *d = nb_dist_init(&argc, &argv);      // under mpirun, or alone
 *       nb_fit_opts o = nb_fit_defaults();
 *       o.dist = nb_dist_fit(d);                       // NULL alone: plain fit
 *       ... nb_fit(m, &train, &o, &h) on every process, the same model and data ...
 *       if (nb_dist_rank(d) == 0) nb_model_save(m, "model.safetensors");
 *       nb_dist_free(d);
 *   }
 *
 * Run with `mpirun -np N program` (CI: --oversubscribe --allow-run-as-root).
 * Each process takes its share of every global batch. The gradients are
 * summed in buckets of about 256 KiB in the order backward completes them,
 * each with MPI_Iallreduce as soon as backward has completed it, so the
 * sums overlap with the rest of backward (as PyTorch DDP's and Horovod's),
 * and every process takes the same optimizer step. A process that dies ends
 * the job through mpirun, which names its rank; a process whose fit fails
 * makes the others stop at the same step with a message naming it.
 */
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include <stdbool.h>

#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_dist nb_dist; /* opaque */

/* Whether this process was started by mpirun (Open MPI's or a PMI
 * launcher's environment), so that MPI should be initialized. */
bool nb_dist_launched(void);

/* The rank mpirun gave this process, read from its environment without
 * initializing MPI (Open MPI's OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK);
 * 0 when not launched by mpirun or when none of them is a number. For
 * programs with one process's work to do under mpirun: rank 0 does it,
 * the others end. */
int nb_dist_launched_rank(void);

/* Joins the processes mpirun started: initializes MPI (funneled threads)
 * unless the program did, and works on a duplicate of MPI_COMM_WORLD with
 * errors returned, not fatal. Without mpirun (nb_dist_launched false) MPI
 * is left alone and the result is one process, rank 0 of 1. The caller
 * frees it with nb_dist_free. NULL with nb_last_error() set when MPI fails
 * to start. argc, argv may be NULL. */
nb_dist *nb_dist_init(int *argc, char ***argv);

int nb_dist_rank(const nb_dist *d);
int nb_dist_size(const nb_dist *d);

/* fit's hooks over this group (nb_fit_opts.dist), owned by d; NULL for a
 * single process, where fit needs none. With check_weights, fit compares a
 * hash of the weights between the processes after every epoch. */
const nb_fit_dist *nb_dist_fit(nb_dist *d, bool check_weights);

/* Before nb_dist_fit: overlap false sums every bucket with a blocking
 * MPI_Allreduce once backward is done (to measure what overlapping
 * gains); bucket_bytes 0 is the default, 256 KiB. Overlap is on unless
 * this turns it off. */
void nb_dist_set_buckets(nb_dist *d, bool overlap, size_t bucket_bytes);

/* Seconds spent in the gradients' sums' MPI calls so far (with overlap,
 * the time backward did not hide: starting, testing and waiting), and the
 * count of sums. */
double nb_dist_allreduce_seconds(const nb_dist *d, long *calls);

/* Waits for every process. NB_ERROR with nb_last_error() when MPI fails. */
nb_status nb_dist_barrier(nb_dist *d);

/* Frees d, and finalizes MPI if nb_dist_init initialized it. NULL is allowed. */
void nb_dist_free(nb_dist *d);

#ifdef __cplusplus
}
#endif
#endif
