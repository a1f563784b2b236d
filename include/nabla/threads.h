/* nabla/threads.h — one thread count for OpenMP and BLIS.
 *
 * nabla's elementwise and row-wise kernels run under OpenMP (serially below
 * a size threshold), and so do its matrix products. On CPUs with AVX-512
 * (x86-64 with AVX512F and AVX512VL) nabla multiplies with its own kernels,
 * which read the operands in place (ops/gemm_direct.c); elsewhere, and for
 * products above 512 in every dimension, it packs and blocks them itself
 * and calls only BLIS's micro-kernels. Setting NABLA_NO_DIRECT_GEMM before
 * the first product keeps every product on the BLIS path. BLIS's own
 * threading is never used, so nothing nests and the cores are never
 * oversubscribed. The count starts from NABLA_NUM_THREADS, else
 * OMP_NUM_THREADS, else the number of processors (see below), and is at
 * most NB_MAX_THREADS. nabla never changes the calling program's own OpenMP
 * settings: it passes its count to each of its parallel regions.
 *
 * Small batches: when no op of a graph outputs 131,072 elements or more
 * (the book's models up to batch 256), a forward or backward pass opens one
 * parallel region for the whole pass instead of one per large op. Thread 0
 * runs the ops in turn and the other threads join it only for the matrix
 * products, splitting them by columns or rows (a custom op therefore runs
 * on thread 0 inside that region: an OpenMP region it opens runs on one
 * thread). Results are bit-identical whatever the thread count.
 *
 * Busy machines: threads that meet at barriers stall when another process
 * takes their cores (the scheduler parks one thread, the others wait for a
 * whole time slice), and two threads beside one busy process could run 100
 * times slower than one. So each kind of pass of a graph (training
 * forward, inference forward, backward) measures its own wall time and runs
 * on the fastest of the configured count, half of it, ..., 1 thread, trying
 * a neighbouring count now and then (rarely when that keeps losing: at most
 * about 1% of the time goes to such tries). Regions outside passes (the
 * optimizer's update, fit's gather) take the count the last pass ran at.
 * Results do not change with the count, only the speed. nb_set_thread_
 * adaptation(false), or NABLA_ADAPT_THREADS=0 in the environment, keeps
 * every pass at the configured count.
 *
 * The default count is the number of CPUs the process may run on (its
 * affinity mask), capped by its cgroup's CPU quota (cgroup v2 cpu.max or
 * v1 cpu.cfs_quota_us), rounded up.
 *
 * On first use (the first nb_graph_new or thread call) nabla also picks
 * BLIS's kernels from the CPU's features when the user has not set
 * BLIS_ARCH_TYPE: BLIS 0.9.0 falls back to its slow reference kernels on
 * CPUs it does not know (AMD Zen 4 and 5 among them). It does so with
 * setenv, so make that first call before starting other threads that read
 * the environment, and before the program itself initializes BLIS.
 */
#ifndef NABLA_THREADS_H
#define NABLA_THREADS_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_THREADS 1024

/* Sets the thread count; n < 1 means 1, n > NB_MAX_THREADS means that.
 * Not to be called while a graph of this process is running. */
void nb_set_num_threads(int n);
int nb_get_num_threads(void);

/* Lets passes run on fewer threads than configured when that is faster
 * (on by default; see above), or keeps them at the configured count. Not
 * to be called while a graph of this process is running. A benchmark that
 * measures an op at a given thread count, or interleaves other work
 * between a graph's passes, should switch it off: the governor times from
 * one forward pass to the next, other work included. */
void nb_set_thread_adaptation(bool on);
bool nb_get_thread_adaptation(void);

/* The count regions outside passes take now: the configured one, or fewer
 * when the last pass the adaptation measured ran faster on fewer. */
int nb_get_active_threads(void);

/* BLIS's sub-configuration in use ("skx", "haswell", "generic", ...) and its
 * single-precision gemm micro-kernel ("refrnce" means the slow fallback). */
const char *nb_blis_arch(void);
const char *nb_blis_kernel(void);

#ifdef __cplusplus
}
#endif
#endif
