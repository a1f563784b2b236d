/* ops/shape.c — reshape and flatten (views), concat and slice along the
 * feature axis.
 *
 * reshape and flatten are one op, "reshape", marked as a view: the graph
 * points its value and gradient at its input's (graph/run.c), so it has no
 * forward or backward and costs nothing. Its target dims live in attr.i,
 * with 0 marking the unused tail (a real dim is >= 1 or -1), so the rank is
 * the number of leading non-zero entries. A -1 is resolved by infer at every
 * batch change, which is how a reshape with -1 first follows the batch.
 *
 * concat and slice copy: the pieces of a row are not contiguous in the
 * output (concat) or the input (slice). Their loops run over elements, each
 * writing its own output or gradient element, so they may run in parallel. */
#include <limits.h>
#include <stdio.h>

#include "graph/internal.h"
#include "nabla/ops.h"

/* ---- reshape / flatten ---- */

static int reshape_rank(const nb_node *n) {
    int r = 0;
    while (r < NB_MAX_RANK && n->attr.i[r] != 0) r++;
    return r;
}

/* "[-1,3,2]" for requested dims (which may hold -1), like nb_shape_str. */
static char *dims_str(int rank, const int *dims, char buf[NB_SHAPE_STR_LEN]) {
    int off = snprintf(buf, NB_SHAPE_STR_LEN, "[");
    for (int d = 0; d < rank && off < NB_SHAPE_STR_LEN; d++)
        off += snprintf(buf + off, (size_t)(NB_SHAPE_STR_LEN - off), d ? ",%d" : "%d", dims[d]);
    if (off < NB_SHAPE_STR_LEN) snprintf(buf + off, (size_t)(NB_SHAPE_STR_LEN - off), "]");
    return buf;
}

static nb_status reshape_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    int rank = reshape_rank(n), dims[NB_MAX_RANK], infer_at = -1;
    size_t known = 1;
    for (int d = 0; d < rank; d++) {
        dims[d] = n->attr.i[d];
        if (dims[d] == -1)
            infer_at = d;
        else if (known <= x->size) /* beyond x->size it can only fail; stop before it wraps */
            known *= (size_t)dims[d];
    }
    if (known > x->size) known = 0;
    if (infer_at >= 0) {
        if (x->size % known == 0 && x->size / known <= (size_t)INT_MAX)
            dims[infer_at] = (int)(x->size / known);
        else
            known = 0; /* no whole dim fits: report below */
    }
    if (known == 0 || (infer_at < 0 && known != x->size)) {
        char sx[NB_SHAPE_STR_LEN], sd[NB_SHAPE_STR_LEN];
        /* capacity is set once construction succeeded: this is a batch change */
        bool batch_change = n->capacity > 0 && infer_at < 0;
        return nb__fail(g, "reshape: cannot view %s (%zu elements) as %s%s", nb__shape(x, sx),
                        x->size, dims_str(rank, n->attr.i, sd),
                        batch_change ? " (give the batch dim as -1 to follow the batch)" : "");
    }
    nb__set_shape(n, rank, dims);
    return NB_OK;
}

const nb_op nb_op_reshape = {.name = "reshape", .infer = reshape_infer, .view = true};

nb_node *nb_reshape(nb_graph *g, nb_node *x, int rank, const int *dims) {
    if (!g || g->status != NB_OK) return NULL;
    if (rank < 0 || rank > NB_MAX_RANK) {
        nb__fail(g, "reshape: rank %d outside [0,%d]", rank, NB_MAX_RANK);
        return NULL;
    }
    if (rank > 0 && !dims) {
        nb__fail(g, "reshape: dims is NULL for rank %d", rank);
        return NULL;
    }
    nb_attr attr = {0};
    int unknown = 0;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < -1 || dims[d] == 0) {
            char sd[NB_SHAPE_STR_LEN];
            nb__fail(g, "reshape: dimension %d of %s is %d, must be >= 1 or -1", d,
                     dims_str(rank, dims, sd), dims[d]);
            return NULL;
        }
        unknown += dims[d] == -1;
        attr.i[d] = dims[d];
    }
    if (unknown > 1) {
        char sd[NB_SHAPE_STR_LEN];
        nb__fail(g, "reshape: more than one dimension is -1 in %s", dims_str(rank, dims, sd));
        return NULL;
    }
    return nb__op_node(g, &nb_op_reshape, 1, (nb_node *[]){x}, &attr);
}

/* [B, d1, ..., dk] -> [-1, d1*...*dk]; a rank-1 [B] becomes [B,1] as in
 * Keras's Flatten, so the result is always a batch of feature rows. */
nb_node *nb_flatten(nb_graph *g, nb_node *x) {
    if (!g || g->status != NB_OK) return NULL;
    if (!x) {
        nb__fail(g, "flatten: input is NULL");
        return NULL;
    }
    if (x->graph != g) {
        nb__fail(g, "flatten: input '%s' belongs to another graph", x->name);
        return NULL;
    }
    if (x->shape.rank < 1) {
        char sx[NB_SHAPE_STR_LEN];
        nb__fail(g, "flatten: input '%s' %s has no batch axis", x->name, nb__shape(x, sx));
        return NULL;
    }
    size_t rest = 1;
    for (int d = 1; d < x->shape.rank; d++) rest *= (size_t)x->shape.dim[d];
    if (rest > (size_t)INT_MAX) {
        char sx[NB_SHAPE_STR_LEN];
        nb__fail(g, "flatten: %s has %zu features per row, more than an int holds", nb__shape(x, sx), rest);
        return NULL;
    }
    return nb_reshape(g, x, 2, (int[]){-1, (int)rest});
}

/* ---- concat ---- */

static nb_status concat_infer(nb_graph *g, nb_node *n) {
    const nb_node *x0 = n->in[0];
    char s0[NB_SHAPE_STR_LEN], sk[NB_SHAPE_STR_LEN];
    int rank = x0->shape.rank;
    long long width = 0;
    for (int k = 0; k < n->n_in; k++) {
        const nb_node *xk = n->in[k];
        if (xk->shape.rank < 1)
            return nb__fail(g, "concat: input %d ('%s') %s has no feature axis", k, xk->name,
                            nb__shape(xk, sk));
        bool fits = xk->shape.rank == rank;
        for (int d = 0; fits && d + 1 < rank; d++) fits = xk->shape.dim[d] == x0->shape.dim[d];
        if (!fits)
            return nb__fail(g, "concat: input %d ('%s') %s does not match input 0 %s but in the last axis",
                            k, xk->name, nb__shape(xk, sk), nb__shape(x0, s0));
        width += xk->shape.dim[rank - 1];
    }
    if (width > INT_MAX)
        return nb__fail(g, "concat: %lld features in all, more than an int holds", width);
    int dims[NB_MAX_RANK];
    for (int d = 0; d < rank; d++) dims[d] = x0->shape.dim[d];
    dims[rank - 1] = (int)width;
    nb__set_shape(n, rank, dims);
    return NB_OK;
}

/* Each input is copied (and its gradient taken back) as its own elementwise
 * loop: element i of x_k is row i / F_k, column i % F_k, and sits at column
 * off_k + i % F_k of y. */
// x_k: [..., F_k] for k < n -> y: [..., sum F_k], x_k at columns [off_k, off_k + F_k)
static nb_status concat_forward(nb_graph *g, nb_node *n) {
    (void)g;
    size_t width = (size_t)n->shape.dim[n->shape.rank - 1], off = 0;
    float *y = n->value;
    for (int k = 0; k < n->n_in; k++) {
        const nb_node *xk = n->in[k];
        const float *x = xk->value;
        size_t wk = (size_t)xk->shape.dim[xk->shape.rank - 1];
        NB_PARALLEL_FOR(i, xk->size, y[(i / wk) * width + off + i % wk] = x[i]);
        off += wk;
    }
    return NB_OK;
}

/* The same node may appear twice among the inputs: the inputs are taken in
 * turn, so its two contributions never race. */
static void concat_backward(nb_graph *g, nb_node *n) {
    (void)g;
    size_t width = (size_t)n->shape.dim[n->shape.rank - 1], off = 0;
    const float *dy = n->grad;
    for (int k = 0; k < n->n_in; k++) {
        nb_node *xk = n->in[k];
        float *dx = xk->grad;
        size_t wk = (size_t)xk->shape.dim[xk->shape.rank - 1];
        if (dx) NB_PARALLEL_FOR(i, xk->size, dx[i] += dy[(i / wk) * width + off + i % wk]);
        off += wk;
    }
}

const nb_op nb_op_concat = {.name = "concat", .infer = concat_infer, .forward = concat_forward, .backward = concat_backward};

nb_node *nb_concat(nb_graph *g, int n, nb_node *const *xs) {
    /* nb__op_node rejects n < 1, a NULL array and NULL or foreign inputs,
     * and copies the array, so the caller's may be temporary. */
    return nb__op_node(g, &nb_op_concat, n, xs, NULL);
}

/* ---- slice ---- */

#define START(n) ((n)->attr.i[0])
#define LEN(n) ((n)->attr.i[1])

static nb_status slice_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    char sx[NB_SHAPE_STR_LEN];
    if (x->shape.rank < 1)
        return nb__fail(g, "slice: input '%s' %s has no feature axis", x->name, nb__shape(x, sx));
    int rank = x->shape.rank, f = x->shape.dim[rank - 1];
    long long start = START(n), len = LEN(n);
    if (start < 0 || len < 1 || start + len > f)
        return nb__fail(g, "slice: features [%lld,%lld) out of range for %s (start >= 0, len >= 1, "
                        "start+len <= %d)", start, start + len, nb__shape(x, sx), f);
    int dims[NB_MAX_RANK];
    for (int d = 0; d < rank; d++) dims[d] = x->shape.dim[d];
    dims[rank - 1] = (int)len;
    nb__set_shape(n, rank, dims);
    return NB_OK;
}

// x: [..., F] -> y: [..., len] = x[..., start:start+len]; y[i] is row i / len
static nb_status slice_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const nb_node *x = n->in[0];
    size_t f = (size_t)x->shape.dim[x->shape.rank - 1];
    size_t start = (size_t)START(n), len = (size_t)LEN(n);
    const float *xv = x->value;
    float *y = n->value;
    NB_PARALLEL_FOR(i, n->size, y[i] = xv[(i / len) * f + start + i % len]);
    return NB_OK;
}

/* Columns outside the slice get nothing: their gradient stays as zeroed
 * or as other consumers left it. */
static void slice_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *x = n->in[0];
    size_t f = (size_t)x->shape.dim[x->shape.rank - 1];
    size_t start = (size_t)START(n), len = (size_t)LEN(n);
    const float *dy = n->grad;
    float *dx = x->grad;
    if (!dx) return;
    NB_PARALLEL_FOR(i, n->size, dx[(i / len) * f + start + i % len] += dy[i]);
}

const nb_op nb_op_slice = {.name = "slice", .infer = slice_infer, .forward = slice_forward, .backward = slice_backward};

nb_node *nb_slice(nb_graph *g, nb_node *x, int start, int len) {
    nb_attr attr = {.i = {start, len}};
    return nb__op_node(g, &nb_op_slice, 1, (nb_node *[]){x}, &attr);
}
