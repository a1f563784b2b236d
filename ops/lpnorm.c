/* ops/lpnorm.c — the L1 norm, the L2 norm and the sum of squares of a whole
 * tensor, as rank-0 results (weight penalties, gradient norms).
 *
 * The sums are ops/blocksum.h's: vectorized, in parallel over fixed blocks
 * added in a fixed order, so a norm does not depend on the number of
 * threads, and in double across blocks, so it does not lose the small
 * terms of a long sum. The backward passes are elementwise. */
#include <math.h>

#include "graph/internal.h"
#include "ops/blocksum.h"
#include "nabla/ops.h"

enum { NORM_L1, NORM_L2, NORM_SQ };

#define KIND(n) ((n)->attr.i[0])

static nb_status norm_infer(nb_graph *g, nb_node *n) {
    (void)g;
    nb__set_shape(n, 0, NULL);
    return NB_OK;
}

// x: any shape -> y: [] = sum |x|, sqrt(sum x^2) or sum x^2
static nb_status norm_forward(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    const double acc = nb__sum_all(KIND(n) == NORM_L1 ? NB_SUM_ABS : NB_SUM_SQUARES, x->value, x->size, g->scratch);
    n->value[0] = (float)(KIND(n) == NORM_L2 ? sqrt(acc) : acc);
    return NB_OK;
}

static size_t norm_scratch(const nb_node *n) { return NB_SUM_SCRATCH(n->in[0]->size); }

/* d|x|/dx is sign(x), taken as 0 at 0 (the subgradient that leaves zeros
 * alone); d||x||/dx = x/||x||, taken as 0 at x = 0 where it is undefined;
 * d(sum x^2)/dx = 2x. */
static void norm_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *x = n->in[0];
    const float *xv = x->value;
    float *dx = x->grad;
    if (!dx) return;
    size_t size = x->size;
    float dy = n->grad[0];
    switch (KIND(n)) {
    case NORM_L1:
        NB_PARALLEL_FOR(i, size, dx[i] += xv[i] > 0.0f ? dy : xv[i] < 0.0f ? -dy : 0.0f);
        break;
    case NORM_L2: {
        float norm = n->value[0];
        if (norm == 0.0f) break;
        /* in double: with a tiny norm, dy/norm overflows a float although
         * every x/norm is at most 1 */
        double k = (double)dy / (double)norm;
        NB_PARALLEL_FOR(i, size, dx[i] += (float)((double)xv[i] * k));
        break;
    }
    default: {
        float k = 2.0f * dy;
        NB_PARALLEL_FOR(i, size, dx[i] += k * xv[i]);
        break;
    }
    }
}

const nb_op nb_op_l1_norm = {.name = "l1_norm", .infer = norm_infer, .forward = norm_forward, .backward = norm_backward,
                             .scratch = norm_scratch};
const nb_op nb_op_l2_norm = {.name = "l2_norm", .infer = norm_infer, .forward = norm_forward, .backward = norm_backward,
                             .scratch = norm_scratch};
const nb_op nb_op_sum_squares = {.name = "sum_squares", .infer = norm_infer, .forward = norm_forward, .backward = norm_backward,
                             .scratch = norm_scratch};

static nb_node *norm(nb_graph *g, const nb_op *op, int kind, nb_node *x) {
    nb_attr attr = {.i = {kind}};
    return nb__op_node(g, op, 1, (nb_node *[]){x}, &attr);
}

nb_node *nb_l1_norm(nb_graph *g, nb_node *x) { return norm(g, &nb_op_l1_norm, NORM_L1, x); }
nb_node *nb_l2_norm(nb_graph *g, nb_node *x) { return norm(g, &nb_op_l2_norm, NORM_L2, x); }
nb_node *nb_sum_squares(nb_graph *g, nb_node *x) { return norm(g, &nb_op_sum_squares, NORM_SQ, x); }
