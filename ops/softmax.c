/* ops/softmax.c — softmax and log-softmax along the feature (last) axis.
 *
 * The input is seen as rows of its last dimension. Each row is shifted by
 * its maximum before exponentiating, so logits of any size give finite
 * results; the normalizer is summed in double. Rows are independent, so the
 * row loop may run in parallel without changing any result. Backward needs
 * only the output (y, or exp(y) for log-softmax), so nothing goes in aux. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

#define LOG(n) ((n)->attr.i[0]) /* log-softmax */

static nb_status softmax_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    if (x->shape.rank < 1) {
        char s[NB_SHAPE_STR_LEN];
        return nb__fail(g, "%s: needs a feature axis, got a scalar %s", n->op->name, nb__shape(x, s));
    }
    n->shape = x->shape;
    n->size = x->size;
    return NB_OK;
}

// x: [..., C] -> y: [..., C], y = exp(x - max) / sum(exp(x - max)) or its log
static nb_status softmax_forward(nb_graph *g, nb_node *n) {
    (void)g;
    size_t rows, len;
    nb__rows_of(n->in[0], &rows, &len);
    const float *x = n->in[0]->value;
    float *y = n->value;
    bool log_out = LOG(n);
    size_t size = n->size;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, rows, {
        const float *xr = x + r * len;
        float *yr = y + r * len;
        float m = xr[0];
        for (size_t j = 1; j < len; j++) m = xr[j] > m ? xr[j] : m;
        double s = 0.0;
        if (log_out) {
            for (size_t j = 0; j < len; j++) s += exp((double)xr[j] - m);
            double lse = log(s); /* >= 0: the maximum contributes 1 */
            for (size_t j = 0; j < len; j++) yr[j] = (float)((double)xr[j] - m - lse);
        } else {
            /* y holds the shifted exponentials first, then is scaled */
            for (size_t j = 0; j < len; j++) {
                float e = expf(xr[j] - m);
                yr[j] = e;
                s += e;
            }
            float inv = (float)(1.0 / s);
            for (size_t j = 0; j < len; j++) yr[j] *= inv;
        }
    });
    return NB_OK;
}

/* softmax:     dx = y·(dy - sum(dy·y))
 * log-softmax: dx = dy - exp(y)·sum(dy) */
static void softmax_backward(nb_graph *g, nb_node *n) {
    (void)g;
    size_t rows, len;
    nb__rows_of(n->in[0], &rows, &len);
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    bool log_out = LOG(n);
    size_t size = n->size;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, rows, {
        const float *yr = y + r * len, *dyr = dy + r * len;
        float *dxr = dx + r * len;
        double s = 0.0;
        if (log_out) {
            for (size_t j = 0; j < len; j++) s += dyr[j];
            float sf = (float)s;
            for (size_t j = 0; j < len; j++) dxr[j] += dyr[j] - expf(yr[j]) * sf;
        } else {
            for (size_t j = 0; j < len; j++) s += (double)dyr[j] * yr[j];
            float sf = (float)s;
            for (size_t j = 0; j < len; j++) dxr[j] += yr[j] * (dyr[j] - sf);
        }
    });
}

const nb_op nb_op_softmax = {.name = "softmax", .infer = softmax_infer, .forward = softmax_forward,
                             .backward = softmax_backward};
const nb_op nb_op_log_softmax = {.name = "log_softmax", .infer = softmax_infer,
                                 .forward = softmax_forward, .backward = softmax_backward};

nb_node *nb_softmax(nb_graph *g, nb_node *x) {
    nb_attr attr = {.i = {0}};
    return nb__op_node(g, &nb_op_softmax, 1, (nb_node *[]){x}, &attr);
}

nb_node *nb_log_softmax(nb_graph *g, nb_node *x) {
    nb_attr attr = {.i = {1}};
    return nb__op_node(g, &nb_op_log_softmax, 1, (nb_node *[]){x}, &attr);
}
