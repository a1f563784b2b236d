/* graph/internal.h — what graph/ and ops/ share beyond the public headers. */
#ifndef NABLA_GRAPH_INTERNAL_H
#define NABLA_GRAPH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <omp.h>

#include "graph/node.h"
#include "nabla/rng.h"

/* 64-byte aligned allocation (free with free); NULL on failure. */
void *nb__aligned_alloc(size_t bytes);

/* Sets the message nb_last_error returns. */
void nb__set_last_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The most elements a tensor or node may have. */
#define NB_MAX_ELEMENTS ((size_t)1 << 40)

/* The product of dims into *out; false if a dim is < 1 or the product
 * exceeds NB_MAX_ELEMENTS (checked before it could wrap). */
bool nb__dims_size(int rank, const int *dims, size_t *out);

/* Allocates t->grad (zeroed) if it has none; -1 if memory runs out. */
int nb__tensor_ensure_grad(nb_tensor *t);

/* The thread count for parallel regions and BLIS calls, and one-time setup
 * (BLIS kernel choice); nb__runtime_init is idempotent and thread-safe. */
int nb__threads(void);
void nb__runtime_init(void);

/* Elementwise loops with fewer elements than this stay serial: below it a
 * parallel region costs more than it saves. */
#define NB_PAR_MIN 32768

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
        if (!(cond) || nb__threads() < 2 || omp_in_parallel()) {                            \
            for (size_t i = 0; i < nb_n_; i++) { __VA_ARGS__; }                             \
        } else {                                                                            \
            _Pragma("omp parallel for schedule(static) num_threads(nb__threads())")         \
            for (size_t i = 0; i < nb_n_; i++) { __VA_ARGS__; }                             \
        }                                                                                   \
    } while (0)

/* Runs the statements after (lo, hi, n) once per thread with that thread's
 * contiguous share [lo, hi) of [0, n), or once with [0, n) when n is below
 * NB_PAR_MIN or there is one thread (never entering OpenMP then). For kernels written as functions over
 * a range with restrict pointers, which the compiler vectorizes reliably
 * (a loop body inside an OpenMP region loses the restrict qualifiers).
 *   NB_PARALLEL_RANGE(lo, hi, n, relu_range(lo, hi, x, y));                */
#define NB_PARALLEL_RANGE(lo, hi, n, ...) NB_PARALLEL_RANGE_IF((n) >= NB_PAR_MIN, lo, hi, n, __VA_ARGS__)

/* The same, split when cond holds (for ranges of chunks, rows, blocks). */
#define NB_PARALLEL_RANGE_IF(cond, lo, hi, n, ...)                                        \
    do {                                                                                  \
        const size_t nb_n_ = (n);                                                         \
        if (!(cond) || nb__threads() < 2 || omp_in_parallel()) {                          \
            const size_t lo = 0, hi = nb_n_;                                              \
            __VA_ARGS__;                                                                  \
        } else {                                                                          \
            _Pragma("omp parallel num_threads(nb__threads())")                            \
            {                                                                             \
                const size_t nb_t_ = (size_t)omp_get_thread_num(),                        \
                             nb_nt_ = (size_t)omp_get_num_threads();                      \
                const size_t lo = nb_n_ * nb_t_ / nb_nt_, hi = nb_n_ * (nb_t_ + 1) / nb_nt_; \
                __VA_ARGS__;                                                              \
            }                                                                             \
        }                                                                                 \
    } while (0)

/* Builds a kernel for AVX-512, AVX2 and the baseline, and picks one when
 * the library loads: the library itself is compiled for any x86-64 (SSE2),
 * which leaves three quarters of a wide vector unit idle. Kernels built
 * with it may round differently on different CPUs (FMA), never between
 * runs or thread counts on one. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define NB_KERNEL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NB_KERNEL_CLONES
#endif

/* The same over n elements, parallel from NB_PAR_MIN of them:
 *   NB_PARALLEL_FOR(i, n, y[i] = s * x[i]);                                */
#define NB_PARALLEL_FOR(i, n, ...) NB_PARALLEL_FOR_IF((n) >= NB_PAR_MIN, i, n, __VA_ARGS__)

/* Four random 32-bit words for block `block` of node n in the current pass:
 * a pure function of (graph seed, step, node id, block). */
void nb__random4(const nb_graph *g, const nb_node *n, uint64_t block, uint32_t out[4]);

/* Four random words per block for blocks first .. first+count-1 of node
 * n's stream in the current pass, into out[4·count]: the words
 * nb__random4 gives, many blocks at once. */
void nb__random_blocks(const nb_graph *g, const nb_node *n, uint64_t first, size_t count, uint32_t *out);
void nb__philox_blocks(const uint32_t key[2], uint32_t c2, uint32_t c3, uint64_t first, size_t count,
                       uint32_t *out);

/* Forward pass with the random stream pinned at `step` (for gradcheck). */
nb_status nb__forward_at(nb_graph *g, nb_mode mode, uint64_t step);

#endif
