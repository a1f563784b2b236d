/* nabla/custom.h — user-defined ops that work in a graph like built-in ones.
 *
 * Fill an nb_custom_op with a name and three callbacks over plain float
 * arrays, then add it to a graph with nb_custom. nabla plans its memory,
 * follows the batch, skips its backward when no input needs a gradient, and
 * nb_gradcheck checks it like any other op.
 *
 *   // y = x^3, elementwise
 *   static int cube_shape(int n, const nb_shape *in, nb_shape *out, void *u,
 *                         char *err, size_t len) { *out = in[0]; return 0; }
 *   static void cube_fwd(int n, const float *const *in, const nb_shape *s,
 *                        float *y, const nb_shape *ys, void *u) {
 *       for (size_t i = 0; i < nb_shape_size(ys); i++) y[i] = in[0][i]*in[0][i]*in[0][i];
 *   }
 *   static void cube_bwd(int n, const float *const *in, const nb_shape *s,
 *                        const float *y, const float *dy, const nb_shape *ys,
 *                        float *const *din, void *u) {
 *       for (size_t i = 0; i < nb_shape_size(ys); i++) din[0][i] += 3*in[0][i]*in[0][i]*dy[i];
 *   }
 *   static const nb_custom_op cube = { "cube", cube_shape, cube_fwd, cube_bwd };
 *   nb_node *y = nb_custom(g, &cube, 1, &x, NULL);
 */
#ifndef NABLA_CUSTOM_H
#define NABLA_CUSTOM_H

#include <stddef.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_graph nb_graph;
typedef struct nb_node nb_node;

#define NB_CUSTOM_MAX_INPUTS 8

typedef struct nb_custom_op {
    const char *name;
    /* Sets *out from the n input shapes. Returns 0, or nonzero after writing
     * a message (at most len bytes) into err; nabla prefixes the op's name.
     * Called at construction and whenever the batch changes. */
    int (*shape)(int n, const nb_shape *in, nb_shape *out, void *user, char *err, size_t len);
    /* Writes the output y (shape *ys) from the inputs in[0..n-1]. */
    void (*forward)(int n, const float *const *in, const nb_shape *in_shapes,
                    float *y, const nb_shape *ys, void *user);
    /* Adds dL/d in[i] to din[i] for each i whose din[i] is not NULL, given
     * dy = dL/dy. Must add, not overwrite: an input may feed several ops. */
    void (*backward)(int n, const float *const *in, const nb_shape *in_shapes,
                     const float *y, const float *dy, const nb_shape *ys,
                     float *const *din, void *user);
} nb_custom_op;

/* Adds a node computing op over the n inputs (1 to NB_CUSTOM_MAX_INPUTS).
 * forward and backward are called on one thread, which at small batches is
 * thread 0 of nabla's parallel region for the pass (nabla/threads.h): a
 * parallel region they open themselves then runs on one thread.
 * op and user are borrowed: they must outlive the graph. Errors: NULL op or
 * callback, bad input count, the shape callback's own error. */
nb_node *nb_custom(nb_graph *g, const nb_custom_op *op, int n, nb_node *const *in, void *user);

/* ---- Elementwise functions: the fast path ----
 * y = f(x) elementwise, given as f and f' over arrays. nabla runs them in
 * contiguous blocks on its threads (in the pass's team at small batches),
 * as its own activations, so a custom activation costs about what it
 * would built in:
 *
 *   // Mish: x·tanh(softplus(x)) = x·(e² + 2e)/(e² + 2e + 2), e = exp(x)
 *   static void mish_f(size_t n, const float *x, float *y, void *u) {
 *       nb_vexp(n, x, y);
 *       for (size_t i = 0; i < n; i++) { float e = y[i], p = e * (e + 2);
 *           y[i] = x[i] > 20 ? x[i] : x[i] * p / (p + 2); }
 *   }
 *
 * f writes y[0..n) from x[0..n). df ADDS f'(x[i])·dy[i] to dx[i] for i in
 * [0, n) (an input may feed several ops), given x, y = f(x) and dy. Blocks
 * start at multiples of 16 floats. Both may be called on several threads
 * at once, on disjoint blocks: they must keep no state but what user
 * points to and only read it. */
typedef struct nb_elementwise_op {
    const char *name;
    void (*f)(size_t n, const float *x, float *y, void *user);
    void (*df)(size_t n, const float *x, const float *y, const float *dy, float *dx, void *user);
} nb_elementwise_op;

/* Adds a node y = op(x) of x's shape. op and user are borrowed: they must
 * outlive the graph. Errors: NULL op, f or df. */
nb_node *nb_elementwise(nb_graph *g, const nb_elementwise_op *op, nb_node *x, void *user);

/* y[i] = exp(x[i]) for i in [0, n), by nabla's vectorizable exp (relative
 * error below 2.5e-7 on [-87, 88]; exp(x > 88.7) is infinity, exp(x < -87.3)
 * underflows toward 0), for f and df above. y may be x (in place), not
 * overlap it otherwise. */
void nb_vexp(size_t n, const float *x, float *y);

#ifdef __cplusplus
}
#endif
#endif
