/* graph/rng_internal.h — the batched Philox's instruction-set paths, for tests.
 * (nb__philox_blocks, in graph/internal.h, picks the widest one itself.) */
#ifndef NABLA_GRAPH_RNG_INTERNAL_H
#define NABLA_GRAPH_RNG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { NB_PHILOX_PORTABLE, NB_PHILOX_AVX2, NB_PHILOX_AVX512 };

/* nb__philox_blocks through one path; false (and out untouched) if this
 * build or CPU lacks it. */
bool nb__philox_blocks_isa(int isa, const uint32_t key[2], uint32_t c2, uint32_t c3, uint64_t first,
                           size_t count, uint32_t *out);

#endif
