/* nabla/testing.h — Criterion assertions for tensors and gradients.
 * Include after <criterion/criterion.h>; header-only, for test suites.
 *
 *   nb_assert_near(y, expected, n, 1e-6, 1e-5);  // abs and rel tolerance
 *   nb_assert_gradcheck(g, loss, 1e-2);          // worst relative error
 */
#ifndef NABLA_TESTING_H
#define NABLA_TESTING_H

#include "gradcheck.h"

/* Fails the test naming the worst element, its index and both values. */
#define nb_assert_near(ACTUAL, EXPECTED, N, ABS_TOL, REL_TOL)                                \
    do {                                                                                     \
        nb_compare_result nb_cmp_;                                                           \
        int nb_ok_ = nb_compare((ACTUAL), (EXPECTED), (N), (ABS_TOL), (REL_TOL), &nb_cmp_);  \
        cr_assert(nb_ok_,                                                                    \
                  "%s vs %s: worst element %zu is %.9g, expected %.9g (|error| %.3g > "     \
                  "%g + %g*|expected|)",                                                     \
                  #ACTUAL, #EXPECTED, nb_cmp_.worst_index, nb_cmp_.actual,                  \
                  nb_cmp_.expected, nb_cmp_.abs_error, (double)(ABS_TOL), (double)(REL_TOL)); \
    } while (0)

/* Fails unless the graph is fine, naming its error. */
#define nb_assert_graph_ok(g) \
    cr_assert(nb_graph_status(g) == NB_OK, "graph error: %s", nb_graph_error(g))

/* Runs nb_gradcheck with default options and fails if the worst relative
 * error exceeds tol, naming where. */
#define nb_assert_gradcheck(G, LOSS, TOL)                                                   \
    do {                                                                                     \
        nb_gradcheck_result nb_gc_;                                                          \
        nb_status nb_st_ = nb_gradcheck((G), (LOSS), NULL, &nb_gc_);                        \
        cr_assert(nb_st_ == NB_OK, "gradcheck failed to run: %s", nb_graph_error(G));       \
        cr_assert(nb_gc_.checked > 0, "gradcheck checked nothing");                         \
        cr_assert(nb_gc_.max_rel_error <= (TOL),                                             \
                  "gradcheck: relative error %.3g > %g at %s (analytic %.9g, numeric %.9g)", \
                  nb_gc_.max_rel_error, (double)(TOL), nb_gc_.where, nb_gc_.analytic,        \
                  nb_gc_.numeric);                                                           \
    } while (0)

#endif
