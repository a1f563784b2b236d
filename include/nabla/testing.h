/* nabla/testing.h — Criterion assertions for tensors and gradients.
 * Include after <criterion/criterion.h>; header-only, for test suites.
 *
 *   nb_assert_near(y, expected, n, 1e-6, 1e-5);  // abs and rel tolerance
 *   nb_assert_gradcheck(g, loss, 1e-2);          // worst relative error
 *   nb_assert_gradcheck_opts(g, loss, &(nb_gradcheck_opts){.tolerance = 1e-3,
 *                                                          .max_per_tensor = 50, .seed = 7});
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
 * error exceeds tol, naming where (the parameter and the element's index
 * along each dimension). */
#define nb_assert_gradcheck(G, LOSS, TOL)                                                   \
    do {                                                                                     \
        /* a tolerance of 0 in the options means the default: keep "exact" */               \
        nb_gradcheck_opts nb_gco_ = {.tolerance = (TOL) > 0 ? (double)(TOL) : 1e-300};       \
        char nb_gcm_[512];                                                                   \
        cr_assert(nb_gradcheck_passes((G), (LOSS), &nb_gco_, NULL, nb_gcm_, sizeof nb_gcm_), \
                  "%s", nb_gcm_);                                                            \
    } while (0)

/* The same with options (a const nb_gradcheck_opts *, or NULL): the
 * tolerance, step, floor, how many elements per tensor and which (seed).
 * Variadic so that a compound literal's commas need no parentheses. */
#define nb_assert_gradcheck_opts(G, LOSS, ...)                                               \
    do {                                                                                     \
        char nb_gcm_[512];                                                                   \
        cr_assert(nb_gradcheck_passes((G), (LOSS), (__VA_ARGS__), NULL, nb_gcm_, sizeof nb_gcm_), \
                  "%s", nb_gcm_);                                                            \
    } while (0)

#endif
