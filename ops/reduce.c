/* ops/reduce.c — sum and mean, of everything or along one axis.
 * A whole-tensor sum is ops/blocksum.h's (fixed blocks, float lanes flushed
 * to double, blocks in parallel and added in block order); along an axis,
 * each output is a double sum in the axis's order, vectorized across the
 * outputs next to each other. Neither depends on the number of threads. */
#include "graph/internal.h"
#include "ops/blocksum.h"
#include "nabla/ops.h"

#define AXIS(n) ((n)->attr.i[0]) /* normalized axis */
#define MEAN(n) ((n)->attr.i[1])
#define ALL(n) ((n)->attr.i[3])  /* reduce everything */

/* Splits x's shape around the axis: outer · len · inner elements. */
static void split(const nb_node *x, int axis, size_t *outer, size_t *len, size_t *inner) {
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= (size_t)x->shape.dim[d];
    *len = (size_t)x->shape.dim[axis];
    for (int d = axis + 1; d < x->shape.rank; d++) *inner *= (size_t)x->shape.dim[d];
}

static nb_status reduce_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    if (ALL(n)) {
        nb__set_shape(n, 0, NULL);
        return NB_OK;
    }
    int axis = n->attr.i[2]; /* as given by the user */
    int rank = x->shape.rank, a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
        char s[NB_SHAPE_STR_LEN];
        return nb__fail(g, "%s: axis %d out of range for %s", n->op->name, axis, nb__shape(x, s));
    }
    AXIS(n) = a;
    int dims[NB_MAX_RANK], r = 0;
    for (int d = 0; d < rank; d++)
        if (d != a) dims[r++] = x->shape.dim[d];
    nb__set_shape(n, r, dims);
    return NB_OK;
}

// sums along the axis of x seen as [outer, len, inner], for the outer rows [lo, hi)
static void axis_rows(size_t lo, size_t hi, size_t len, size_t inner, bool mean, const float *xv, float *y) {
    double acc[NB_COL_CHUNK];
    for (size_t o = lo; o < hi; o++) {
        const float *xo = xv + o * len * inner;
        if (inner == 1) { /* a contiguous run: block sums, in order */
            double t = 0.0;
            for (size_t e0 = 0; e0 < len; e0 += NB_SUM_BLOCK)
                t += nb__block_sum_plain(xo + e0, len - e0 < NB_SUM_BLOCK ? len - e0 : NB_SUM_BLOCK);
            y[o] = (float)(mean ? t / (double)len : t);
            continue;
        }
        for (size_t j0 = 0; j0 < inner; j0 += NB_COL_CHUNK) {
            const size_t w = inner - j0 < NB_COL_CHUNK ? inner - j0 : NB_COL_CHUNK;
            nb__col_sums(len, inner, w, xo + j0, NULL, acc);
            for (size_t j = 0; j < w; j++) y[o * inner + j0 + j] = (float)(mean ? acc[j] / (double)len : acc[j]);
        }
    }
}

static nb_status reduce_forward(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    const float *xv = x->value;
    if (ALL(n)) {
        const double acc = nb__sum_all(NB_SUM_PLAIN, xv, x->size, g->scratch);
        n->value[0] = (float)(MEAN(n) ? acc / (double)x->size : acc);
        return NB_OK;
    }
    size_t outer, len, inner;
    split(x, AXIS(n), &outer, &len, &inner);
    float *y = n->value;
    const bool mean = MEAN(n);
    NB_PARALLEL_RANGE_IF(x->size >= NB_PAR_MIN, lo, hi, outer, axis_rows(lo, hi, len, inner, mean, xv, y));
    return NB_OK;
}

static size_t reduce_scratch(const nb_node *n) { return ALL(n) ? NB_SUM_SCRATCH(n->in[0]->size) : 0; }

static void reduce_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *x = n->in[0];
    float *dx = x->grad;
    const float *dy = n->grad;
    if (ALL(n)) {
        float d = MEAN(n) ? dy[0] / (float)x->size : dy[0];
        size_t size = x->size;
        NB_PARALLEL_FOR(i, size, dx[i] += d);
        return;
    }
    size_t outer, len, inner;
    split(x, AXIS(n), &outer, &len, &inner);
    float k = MEAN(n) ? 1.0f / (float)len : 1.0f;
    for (size_t o = 0; o < outer; o++)
        for (size_t l = 0; l < len; l++)
            for (size_t i = 0; i < inner; i++) dx[(o * len + l) * inner + i] += k * dy[o * inner + i];
}

const nb_op nb_op_sum = {.name = "sum", .infer = reduce_infer, .forward = reduce_forward, .backward = reduce_backward,
                        .scratch = reduce_scratch};
const nb_op nb_op_mean = {.name = "mean", .infer = reduce_infer, .forward = reduce_forward, .backward = reduce_backward,
                        .scratch = reduce_scratch};

static nb_node *reduce(nb_graph *g, const nb_op *op, nb_node *x, int axis, bool mean, bool all) {
    nb_attr attr = {.i = {axis, mean, axis, all}};
    return nb__op_node(g, op, 1, (nb_node *[]){x}, &attr);
}

nb_node *nb_sum(nb_graph *g, nb_node *x) { return reduce(g, &nb_op_sum, x, 0, false, true); }
nb_node *nb_mean(nb_graph *g, nb_node *x) { return reduce(g, &nb_op_mean, x, 0, true, true); }
nb_node *nb_sum_axis(nb_graph *g, nb_node *x, int axis) { return reduce(g, &nb_op_sum, x, axis, false, false); }
nb_node *nb_mean_axis(nb_graph *g, nb_node *x, int axis) { return reduce(g, &nb_op_mean, x, axis, true, false); }
