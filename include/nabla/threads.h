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
 * OMP_NUM_THREADS, else the number of processors, and is at most
 * NB_MAX_THREADS. nabla never changes the calling program's own OpenMP
 * settings: it passes its count to each of its parallel regions.
 *
 * Small batches: when no op of a graph outputs 131,072 elements or more
 * (the book's models up to batch 256), a forward or backward pass opens one
 * parallel region for the whole pass instead of one per large op. Thread 0
 * runs the ops in turn and the other threads join it only for the matrix
 * products, splitting them by columns or rows (a custom op therefore runs
 * on thread 0 inside that region: an OpenMP region it opens runs on one
 * thread). Results are bit-identical whatever the thread count. Between
 * ops the waiting threads spin (libgomp's default policy): on a machine
 * whose cores are busy with other work, fewer threads may well be faster.
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

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_THREADS 1024

/* Sets the thread count; n < 1 means 1, n > NB_MAX_THREADS means that.
 * Not to be called while a graph of this process is running. */
void nb_set_num_threads(int n);
int nb_get_num_threads(void);

/* BLIS's sub-configuration in use ("skx", "haswell", "generic", ...) and its
 * single-precision gemm micro-kernel ("refrnce" means the slow fallback). */
const char *nb_blis_arch(void);
const char *nb_blis_kernel(void);

#ifdef __cplusplus
}
#endif
#endif
