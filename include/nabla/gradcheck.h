/* nabla/gradcheck.h — checking analytic gradients against finite differences.
 *
 * For every trainable parameter the loss depends on, nb_gradcheck compares
 * the gradient of one backward pass with the central difference
 * (L(w+h) - L(w-h)) / 2h, element by element, with h = step·max(1, |w|),
 * and reports the worst relative error |a - n| / max(|a|, |n|, floor) and
 * where it occurred. Use it in your
 * own test suites for your own models and custom ops (see nabla/testing.h).
 *
 * Each difference is two training-mode forward passes with the random
 * stream held still, so dropout masks stay fixed while the check runs. The
 * forward passes do update batch-norm running statistics. Keep inputs away
 * from kinks (ReLU at 0) by more than the step.
 */
#ifndef NABLA_GRADCHECK_H
#define NABLA_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_gradcheck_opts {
    double step;            /* relative step; default 5e-3 (float32 values: smaller steps
                               drown in rounding) */
    double floor;           /* denominator floor of the relative error; default 1e-2 */
    size_t max_per_tensor;  /* check at most this many elements of each parameter,
                               spread evenly, or drawn by seed; 0 = all (the default) */
    uint64_t seed;          /* 0 (the default): the max_per_tensor elements are spread
                               evenly (i·n/max_per_tensor); otherwise they are drawn at
                               random without repeats, the same ones for the same seed */
    double tolerance;       /* for nb_gradcheck_passes (and nb_assert_gradcheck_opts):
                               the worst relative error allowed; 0 = 1e-2 */
} nb_gradcheck_opts;

typedef struct nb_gradcheck_result {
    double max_rel_error;   /* worst relative error */
    double analytic;        /* the two gradients at the worst element */
    double numeric;
    char where[256];        /* "param 'w' [3,4] index 7: w[1,3]": the node, its shape,
                               the flat index, then the tensor's name with the element's
                               index along each dimension; "" if nothing was checked */
    size_t checked;         /* elements compared */
    size_t index;           /* the worst element's flat (row-major) index */
    int rank;               /* and its index along each of the tensor's dimensions */
    int coord[NB_MAX_RANK];
} nb_gradcheck_result;

/* Runs the check on g (inputs already fed) for the scalar node loss and
 * fills *out. opts may be NULL for the defaults (its tolerance is not used
 * here). Parameters are restored exactly afterwards. Errors: those of
 * forward and backward, a loss with more than one element, no trainable
 * parameter reaching the loss. */
nb_status nb_gradcheck(nb_graph *g, nb_node *loss, const nb_gradcheck_opts *opts,
                       nb_gradcheck_result *out);

/* Runs nb_gradcheck and judges it against opts->tolerance (1e-2 when opts
 * is NULL or its tolerance 0). Returns true when the check ran and the worst
 * relative error is within the tolerance. Otherwise returns false and
 * writes why into msg (at most msg_size bytes, always terminated; msg may
 * be NULL when msg_size is 0): "gradcheck failed to run: " and the graph's
 * error, or "gradcheck: relative error 0.52 > 0.01 at param 'dense/kernel'
 * [100,300] index 317: dense/kernel[1,17] (analytic ..., numeric ...)".
 * out, when not NULL, gets nb_gradcheck's result. This is what the
 * assertions of nabla/testing.h use; call it to test a check's verdict
 * without failing a test. */
bool nb_gradcheck_passes(nb_graph *g, nb_node *loss, const nb_gradcheck_opts *opts,
                         nb_gradcheck_result *out, char *msg, size_t msg_size);

/* Compares n floats: the worst |actual - expected| - rel_tol·|expected| over
 * abs_tol; fills the worst index. Returns 1 if all are within
 * abs_tol + rel_tol·|expected| (NaN never is), else 0. */
typedef struct nb_compare_result {
    size_t worst_index;
    double actual, expected, abs_error;
} nb_compare_result;
int nb_compare(const float *actual, const float *expected, size_t n, double abs_tol,
               double rel_tol, nb_compare_result *out);

#ifdef __cplusplus
}
#endif
#endif
