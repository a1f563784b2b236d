/* graph/internal.h — what graph/ and ops/ share beyond the public headers. */
#ifndef NABLA_GRAPH_INTERNAL_H
#define NABLA_GRAPH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "graph/node.h"
#include "nabla/rng.h"

/* 64-byte aligned allocation (free with free); NULL on failure. */
void *nb__aligned_alloc(size_t bytes);

/* Sets the message nb_last_error returns. */
void nb__set_last_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocates t->grad (zeroed) if it has none; -1 if memory runs out. */
int nb__tensor_ensure_grad(nb_tensor *t);

/* The thread count for parallel regions and BLIS calls, and one-time setup
 * (BLIS kernel choice); nb__runtime_init is idempotent and thread-safe. */
int nb__threads(void);
void nb__runtime_init(void);

/* Elementwise loops with fewer elements than this stay serial: below it a
 * parallel region costs more than it saves. */
#define NB_PAR_MIN 32768

/* Four random 32-bit words for block `block` of node n in the current pass:
 * a pure function of (graph seed, step, node id, block). */
void nb__random4(const nb_graph *g, const nb_node *n, uint64_t block, uint32_t out[4]);

/* Forward pass with the random stream pinned at `step` (for gradcheck). */
nb_status nb__forward_at(nb_graph *g, nb_mode mode, uint64_t step);

#endif
