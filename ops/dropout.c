/* ops/dropout.c — inverted dropout and alpha dropout.
 *
 * Element i's uniform number is word i % 4 of the Philox block i / 4 of the
 * node's stream (nb__random4), so a mask depends on the graph's seed, the
 * step, the node and the element only: never on the number of threads or on
 * how the loop is split. Kernels walk blocks of 4 elements, one Philox call
 * each. An element is kept when its number u >= rate (as Keras does), so it
 * survives with probability 1 - rate.
 *
 * The mask (1 kept, 0 dropped) is kept in aux for the backward pass. Whether
 * the last forward pass dropped anything is kept in the node's attributes:
 * in inference (unless the node is stochastic) and at rate 0 both ops are
 * the identity and pass gradients through unchanged. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

#define RATE(n) ((n)->attr.f[0])
#define ACTIVE(n) ((n)->attr.i[0]) /* the last forward pass drew a mask */

/* SELU's negative saturation value, -scale·alpha (Keras's alpha_p). */
#define ALPHA_P (-1.7580993408473766)

static size_t mask_aux(const nb_node *n) { return n->size; }

/* The mask of elements [4b, min(4b+4, size)). */
static inline void block_mask(const nb_graph *g, const nb_node *n, size_t b, float rate,
                              float keep[4]) {
    uint32_t r[4];
    nb__random4(g, n, b, r);
    for (int j = 0; j < 4; j++) keep[j] = nb_u32_to_unit(r[j]) >= rate ? 1.0f : 0.0f;
}

static void copy(float *restrict y, const float *restrict x, size_t size) {
    NB_PARALLEL_FOR(i, size, y[i] = x[i];);
}

static void add_into(float *restrict dx, const float *restrict dy, size_t size) {
    NB_PARALLEL_FOR(i, size, dx[i] += dy[i];);
}

static bool rate_ok(nb_graph *g, const char *op, float rate) {
    if (isfinite(rate) && rate >= 0.0f && rate < 1.0f) return true;
    nb__fail(g, "%s: rate %g outside [0,1)", op, (double)rate);
    return false;
}

/* Both ops are the same masked affine map: a kept element becomes
 * mul·x / div + add, a dropped one becomes dropped, and the gradient of a
 * kept element is mul·dy / div. Inverted dropout divides by 1 - rate (so
 * its survivors are x / (1 - rate) rounded once); alpha dropout multiplies
 * by a and adds b. */
typedef struct masked_map {
    double mul, div, add, dropped;
} masked_map;

// x: any shape -> y[i] = m[i] ? mul·x[i]/div + add : dropped, m[i] = 1 with probability 1 - rate
static nb_status masked_forward(nb_graph *g, nb_node *n, masked_map f) {
    const float *x = n->in[0]->value;
    float *y = n->value, *mask = n->aux;
    size_t size = n->size;
    float rate = RATE(n);
    ACTIVE(n) = rate > 0.0f && nb__random_active(g, n);
    if (!ACTIVE(n)) {
        copy(y, x, size);
        return NB_OK;
    }
    const float dropped = (float)f.dropped;
    size_t blocks = (size + 3) / 4;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, b, blocks, {
        float m[4];
        block_mask(g, n, b, rate, m);
        size_t end = 4 * b + 4 < size ? 4 * b + 4 : size;
        for (size_t i = 4 * b; i < end; i++) {
            mask[i] = m[i - 4 * b];
            y[i] = m[i - 4 * b] != 0.0f ? (float)(f.mul * (double)x[i] / f.div + f.add) : dropped;
        }
    });
    return NB_OK;
}

static void masked_backward(nb_node *n, masked_map f) {
    float *dx = n->in[0]->grad;
    if (!dx) return;
    const float *dy = n->grad, *mask = n->aux;
    size_t size = n->size;
    if (!ACTIVE(n)) {
        add_into(dx, dy, size);
        return;
    }
    NB_PARALLEL_FOR(i, size, if (mask[i] != 0.0f) dx[i] += (float)(f.mul * (double)dy[i] / f.div););
}

/* ---- inverted dropout ---- */

static masked_map dropout_map(const nb_node *n) {
    return (masked_map){.mul = 1.0, .div = 1.0 - (double)RATE(n), .add = 0.0, .dropped = 0.0};
}

static nb_status dropout_forward(nb_graph *g, nb_node *n) { return masked_forward(g, n, dropout_map(n)); }

static void dropout_backward(nb_graph *g, nb_node *n) {
    (void)g;
    masked_backward(n, dropout_map(n));
}

const nb_op nb_op_dropout = {.name = "dropout", .infer = nb__infer_like_input, .aux = mask_aux,
                             .forward = dropout_forward, .backward = dropout_backward,
                             .random = true};

nb_node *nb_dropout(nb_graph *g, nb_node *x, float rate) {
    if (!g || g->status != NB_OK) return NULL;
    if (!rate_ok(g, "dropout", rate)) return NULL;
    nb_attr attr = {.f = {rate}};
    return nb__op_node(g, &nb_op_dropout, 1, (nb_node *[]){x}, &attr);
}

/* ---- alpha dropout (Klambauer et al. 2017; Keras AlphaDropout) ---- */

/* The affine correction that keeps zero mean and unit variance:
 * a = ((1-rate)(1 + rate·alpha_p²))^-1/2, b = -a·alpha_p·rate; a dropped
 * element is a·alpha_p + b. */
static masked_map alpha_map(const nb_node *n) {
    double r = RATE(n);
    double a = 1.0 / sqrt((1.0 - r) * (1.0 + r * ALPHA_P * ALPHA_P)), b = -a * ALPHA_P * r;
    return (masked_map){.mul = a, .div = 1.0, .add = b, .dropped = a * ALPHA_P + b};
}

static nb_status alpha_dropout_forward(nb_graph *g, nb_node *n) { return masked_forward(g, n, alpha_map(n)); }

static void alpha_dropout_backward(nb_graph *g, nb_node *n) {
    (void)g;
    masked_backward(n, alpha_map(n));
}

const nb_op nb_op_alpha_dropout = {.name = "alpha_dropout", .infer = nb__infer_like_input,
                                   .aux = mask_aux, .forward = alpha_dropout_forward,
                                   .backward = alpha_dropout_backward, .random = true};

nb_node *nb_alpha_dropout(nb_graph *g, nb_node *x, float rate) {
    if (!g || g->status != NB_OK) return NULL;
    if (!rate_ok(g, "alpha_dropout", rate)) return NULL;
    nb_attr attr = {.f = {rate}};
    return nb__op_node(g, &nb_op_alpha_dropout, 1, (nb_node *[]){x}, &attr);
}
