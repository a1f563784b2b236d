/* tests/helpers.h — small builders shared by the test files. */
#ifndef NABLA_TESTS_HELPERS_H
#define NABLA_TESTS_HELPERS_H

#include <stdint.h>

#include "nabla/nabla.h"

/* A trainable tensor of the given shape filled with uniform values in
 * [lo, hi) from a fixed stream (seed), named name. Aborts the test (via
 * cr_assert) on failure. The caller frees it. */
nb_tensor *t_tensor(const char *name, int rank, const int *dims, float lo, float hi, uint64_t seed);

/* A tensor holding a copy of vals. */
nb_tensor *t_tensor_of(const char *name, int rank, const int *dims, const float *vals);

/* A scalar loss for gradient checks: sum(y * w) with w a fixed random
 * constant of y's (largest) shape, so every element of y's gradient differs.
 * w is returned for freeing. */
nb_node *t_weighted_sum(nb_graph *g, nb_node *y, nb_tensor **w, uint64_t seed);

/* Fails the test unless the graph is fine (shows its message). */
void t_ok(const nb_graph *g);

#endif
