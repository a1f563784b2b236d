/* graph/parallel.h — nabla's threading policy, in one place: how many
 * threads a region gets, from what size work is split, and the loops that
 * split it. graph/, ops/, optim/ and train/ all take their thresholds from
 * here; each number says why it is what it is.
 *
 * The count a region gets is nb__threads(): the count the pace governor
 * chose at the last forward pass of the graph being run (graph/pace.h:
 * fewer threads when other busy processes share the cores), which that
 * pass, its backward pass and what runs between (the optimizer's update,
 * fit's gather) all take. */
#ifndef NABLA_GRAPH_PARALLEL_H
#define NABLA_GRAPH_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>

#include <omp.h>

/* ---- thresholds ---- */

/* Elementwise loops with fewer elements than this stay serial: below it a
 * parallel region costs more than it saves (a region costs a few µs; 32K
 * floats of a simple kernel take about as long). */
#define NB_PAR_MIN 32768

/* Op outputs from which a graph runs op by op instead of in one team per
 * pass (graph/run.c): the ops that do not share then run serially in the
 * team, and at batch 256 of model a (76,800 activations) the team is still
 * 4% faster per step than one region per large op (bench-train --quick, 2
 * threads); at batch 1024 it would not be. */
#define NB_TEAM_MAX_ELEMENTS (4 * (size_t)NB_PAR_MIN)

/* Multiply-adds from which a product is split among the team's threads
 * (ops/matmul.c): below it the two barriers around it cost more than half
 * the product saves. A backward pass that gives each of two threads one
 * whole product needs no barrier inside, so it splits from half of it. */
#define NB_TEAM_SPLIT_MIN (1u << 15)

/* Multiply-adds from which a product run alone (outside the team) opens a
 * parallel region of its own (ops/gemm.c): a region and its barriers cost
 * more than they save below it. */
#define NB_GEMM_PAR_MIN (1u << 18)

/* Floats from which fit's gather of a shuffled batch runs on all threads
 * (train/fit.c): the rows are scattered over the whole training set, so
 * the copy waits on memory and two threads halve it, but only once it
 * outweighs the region (batch 168 and up of 784 features). */
#define NB_GATHER_PAR_MIN (4 * (size_t)NB_PAR_MIN)

/* Elements of an optimizer work item (optim/optimizer.c): a thread's share
 * is a long contiguous run, yet a large tensor splits over many threads. */
#define NB_UPDATE_BLOCK 8192

/* ---- the count ---- */

/* The thread count for the region about to open (see above), at least 1. */
int nb__threads(void);

/* One-time setup (the configured count, BLIS's kernel choice); idempotent
 * and thread-safe. */
void nb__runtime_init(void);

/* The configured count: nb_set_num_threads, NABLA_NUM_THREADS,
 * OMP_NUM_THREADS, else the CPUs this process may use (its affinity mask,
 * capped by its cgroup's CPU quota). */
int nb__threads_configured(void);

/* The count the last step of any graph ran at (the configured count
 * before the first). */
int nb__threads_settled(void);

/* Whether the pace governor may run passes on fewer threads than
 * configured (nb_set_thread_adaptation, NABLA_ADAPT_THREADS). */
bool nb__threads_adaptive(void);

/* Sets the count of the pass the calling thread is about to run (0 ends
 * the pass), and, when `settle` holds, the count regions outside passes
 * take from then on (a forward pass settles it; a backward pass takes the
 * count its forward pass chose). */
void nb__threads_for_pass(int n, bool settle);

/* CPUs a cgroup CPU quota allows, from the text of cgroup v2's cpu.max
 * ("max 100000" or "150000 100000") or v1's quota and period in
 * microseconds: the quota divided by the period, rounded up; 0 when there
 * is no quota or the text is not one. */
int nb__cpu_quota_cpus(const char *cpu_max);

/* ---- the loops ---- */

/* Runs the statements after (i, n) for every size_t i in [0, n): split
 * statically over nabla's threads when cond holds and there is more than
 * one thread, else as a plain loop that never enters OpenMP (libgomp
 * allocates a team on the heap for every one-thread parallel region, even
 * one disabled by an if clause), and as a plain loop too inside a parallel
 * region already open (the graph's team at small batch, see graph/run.c).
 * Each i must write its own outputs only.
 *   NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, rows, kernel_row(r));       */
#define NB_PARALLEL_FOR_IF(cond, i, n, ...)                                                 \
    do {                                                                                    \
        const size_t nb_n_ = (n);                                                           \
        const int nb_nt_ = nb__threads();                                                   \
        if (!(cond) || nb_nt_ < 2 || omp_in_parallel()) {                                   \
            for (size_t i = 0; i < nb_n_; i++) { __VA_ARGS__; }                             \
        } else {                                                                            \
            _Pragma("omp parallel for schedule(static) num_threads(nb_nt_)")                \
            for (size_t i = 0; i < nb_n_; i++) { __VA_ARGS__; }                             \
        }                                                                                   \
    } while (0)

/* The same over n elements, parallel from NB_PAR_MIN of them:
 *   NB_PARALLEL_FOR(i, n, y[i] = s * x[i]);                                */
#define NB_PARALLEL_FOR(i, n, ...) NB_PARALLEL_FOR_IF((n) >= NB_PAR_MIN, i, n, __VA_ARGS__)

/* Runs the statements after (lo, hi, n) once per thread with that thread's
 * contiguous share [lo, hi) of [0, n), or once with [0, n) when n is below
 * NB_PAR_MIN or there is one thread (never entering OpenMP then). For
 * kernels written as functions over a range with restrict pointers, which
 * the compiler vectorizes reliably (a loop body inside an OpenMP region
 * loses the restrict qualifiers).
 *   NB_PARALLEL_RANGE(lo, hi, n, relu_range(lo, hi, x, y));                */
#define NB_PARALLEL_RANGE(lo, hi, n, ...) NB_PARALLEL_RANGE_IF((n) >= NB_PAR_MIN, lo, hi, n, __VA_ARGS__)

/* The same, split when cond holds (for ranges of chunks, rows, blocks). */
#define NB_PARALLEL_RANGE_IF(cond, lo, hi, n, ...)                                        \
    do {                                                                                  \
        const size_t nb_n_ = (n);                                                         \
        const int nb_req_ = nb__threads();                                                \
        if (!(cond) || nb_req_ < 2 || omp_in_parallel()) {                                \
            const size_t lo = 0, hi = nb_n_;                                              \
            __VA_ARGS__;                                                                  \
        } else {                                                                          \
            _Pragma("omp parallel num_threads(nb_req_)")                                  \
            {                                                                             \
                const size_t nb_t_ = (size_t)omp_get_thread_num(),                        \
                             nb_nt_ = (size_t)omp_get_num_threads();                      \
                const size_t lo = nb_n_ * nb_t_ / nb_nt_, hi = nb_n_ * (nb_t_ + 1) / nb_nt_; \
                __VA_ARGS__;                                                              \
            }                                                                             \
        }                                                                                 \
    } while (0)

#endif
