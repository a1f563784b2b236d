/* graph/internal.h — what graph/ and ops/ share beyond the public headers. */
#ifndef NABLA_GRAPH_INTERNAL_H
#define NABLA_GRAPH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <omp.h>

#include "graph/node.h"
#include "graph/parallel.h"
#include "nabla/rng.h"

/* 64-byte aligned allocation (free with free); NULL on failure. */
void *nb__aligned_alloc(size_t bytes);

/* Sets the message nb_last_error returns and the kind nb_last_error_kind
 * returns, together. Every error site says its kind: a failed allocation is
 * NB_ERR_OUT_OF_MEMORY, a failed open/read/write/fsync/rename NB_ERR_IO,
 * malformed file content NB_ERR_CORRUPT, a caller's bad value
 * NB_ERR_INVALID_ARGUMENT. */
void nb__set_error(nb_error_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The old form: nb__set_error with NB_ERR_INVALID_ARGUMENT. It stays while
 * nn/ and train/ are converted to nb__set_error (their owner does that);
 * new code says its kind instead. */
void nb__set_last_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The kind of a failure reported through errno: ENOMEM is running out of
 * memory, anything else the system refusing I/O. */
nb_error_kind nb__errno_kind(int err);

/* Sets the last error to a message about graph g (printf-style, usually
 * the caller's name and nb_graph_error(g)) with g's kind, so that copying a
 * graph's error out keeps what kind it was. */
void nb__set_error_from_graph(const nb_graph *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The most elements a tensor or node may have. */
#define NB_MAX_ELEMENTS ((size_t)1 << 40)

/* The product of dims into *out; false if a dim is < 1 or the product
 * exceeds NB_MAX_ELEMENTS (checked before it could wrap). */
bool nb__dims_size(int rank, const int *dims, size_t *out);

/* Allocates t->grad (zeroed) if it has none; -1 if memory runs out. */
int nb__tensor_ensure_grad(nb_tensor *t);

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

/* Four random 32-bit words for block `block` of node n in the current pass:
 * a pure function of (graph seed, step, node id, block). */
void nb__random4(const nb_graph *g, const nb_node *n, uint64_t block, uint32_t out[4]);

/* Four random words per block for blocks first .. first+count-1 of node
 * n's stream in the current pass, into out[4·count]: the words
 * nb__random4 gives, many blocks at once. */
void nb__random_blocks(const nb_graph *g, const nb_node *n, uint64_t first, size_t count, uint32_t *out);
/* The index in the node's stream of its element 0: the graph's row offset
 * times the elements per row (n's dim 0 is the batch). */
static inline uint64_t nb__random_offset(const nb_graph *g, const nb_node *n) {
    return g->row_offset && n->shape.rank > 0 && n->shape.dim[0] > 0
               ? g->row_offset * (uint64_t)(n->size / (size_t)n->shape.dim[0])
               : 0;
}
void nb__philox_blocks(const uint32_t key[2], uint32_t c2, uint32_t c3, uint64_t first, size_t count,
                       uint32_t *out);

/* Forward pass with the random stream pinned at `step` (for gradcheck). */
nb_status nb__forward_at(nb_graph *g, nb_mode mode, uint64_t step);

#endif
