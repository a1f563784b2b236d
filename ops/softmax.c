/* ops/softmax.c — softmax and log-softmax along the feature (last) axis.
 *
 * The input is seen as rows of its last dimension. Each row is shifted by
 * its maximum before exponentiating, so logits of any size give finite
 * results; exponentials come from nb__exp (ops/common.h, vectorizable, no
 * libm call per element), or in forward on an AVX-512 CPU from
 * ops/simd512.h, and the normalizer is summed in float lanes that are added
 * in double. Rows are independent, so the row loop may run in
 * parallel without changing any result. Backward needs
 * only the output (y, or exp(y) for log-softmax), so nothing goes in aux. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "ops/simd512.h"
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

/* Row reductions run in NB_LANES independent lanes, element j going to
 * lane j % NB_LANES, and the lanes are added in double at the end: the
 * compiler keeps the lanes in one vector register (a single accumulator
 * would be a serial chain it may not reorder), and the order is fixed by
 * the code, not by the vector width or the thread count. */
#define NB_LANES 16

static inline float row_max(const float *restrict xr, size_t len) {
    float mx[NB_LANES];
    for (size_t k = 0; k < NB_LANES; k++) mx[k] = xr[0];
    size_t j = 0;
    for (; j + NB_LANES <= len; j += NB_LANES)
        for (size_t k = 0; k < NB_LANES; k++) mx[k] = xr[j + k] > mx[k] ? xr[j + k] : mx[k];
    for (; j < len; j++) mx[0] = xr[j] > mx[0] ? xr[j] : mx[0];
    float m = mx[0];
    for (size_t k = 1; k < NB_LANES; k++) m = mx[k] > m ? mx[k] : m;
    return m;
}

static inline double lanes_total(const float *acc) {
    double s = 0.0;
    for (size_t k = 0; k < NB_LANES; k++) s += acc[k];
    return s;
}

/* Rows lo..hi-1 of length len. y first holds the shifted exponentials
 * exp(x - max) (each <= 1, so the float lanes cannot overflow), then is
 * scaled by 1/sum, or becomes x - max - log(sum) for log-softmax. */
NB_KERNEL_CLONES
static void softmax_rows(size_t lo, size_t hi, size_t len, const float *restrict x, float *restrict y,
                         bool log_out) {
    for (size_t r = lo; r < hi; r++) {
        const float *restrict xr = x + r * len;
        float *restrict yr = y + r * len;
        const float m = row_max(xr, len);
        float acc[NB_LANES] = {0};
        size_t j = 0;
        for (; j + NB_LANES <= len; j += NB_LANES)
            for (size_t k = 0; k < NB_LANES; k++) {
                const float e = nb__exp_neg(xr[j + k] - m);
                yr[j + k] = e;
                acc[k] += e;
            }
        for (; j < len; j++) {
            const float e = nb__exp_neg(xr[j] - m);
            yr[j] = e;
            acc[0] += e;
        }
        const double s = lanes_total(acc);
        if (log_out) {
            const float lse = (float)log(s); /* >= 0: the maximum contributes 1 */
            for (j = 0; j < len; j++) yr[j] = (xr[j] - m) - lse;
        } else {
            const float inv = (float)(1.0 / s);
            for (j = 0; j < len; j++) yr[j] *= inv;
        }
    }
}

#ifdef NB_HAVE_V512
/* softmax_rows with AVX-512 (ops/simd512.h's exp: a third of the portable
 * exp's multiplies). The same lanes: element j goes to lane j % 16, the
 * tail's elements too, and the lanes are added in double in lane order,
 * so a row's result depends only on the row. */
NB_V512 static void softmax_rows512(size_t lo, size_t hi, size_t len, const float *restrict x, float *restrict y,
                                    bool log_out) {
    const size_t full = len & ~(size_t)15;
    const __mmask16 tail = (__mmask16)((1u << (len - full)) - 1u);
    for (size_t r = lo; r < hi; r++) {
        const float *restrict xr = x + r * len;
        float *restrict yr = y + r * len;
        /* the maximum: NaN elements are skipped as in row_max (max_ps
         * returns its second operand when the first is NaN) */
        __m512 mx = _mm512_set1_ps(xr[0]);
        for (size_t j = 0; j < full; j += 16) mx = _mm512_max_ps(_mm512_loadu_ps(xr + j), mx);
        if (tail) mx = _mm512_max_ps(_mm512_mask_loadu_ps(mx, tail, xr + full), mx);
        const float m = _mm512_reduce_max_ps(mx);
        const __m512 vm = _mm512_set1_ps(m), lo_clamp = _mm512_set1_ps(-87.3f);
        /* exp(x - m), x - m <= 0 (NaN kept), clamped below as nb__exp_neg */
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < full; j += 16) {
            const __m512 e = nb__v_exp_clamped(_mm512_max_ps(lo_clamp, _mm512_sub_ps(_mm512_loadu_ps(xr + j), vm)));
            _mm512_storeu_ps(yr + j, e);
            acc = _mm512_add_ps(acc, e);
        }
        if (tail) {
            const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + full), vm);
            const __m512 e = _mm512_maskz_mov_ps(tail, nb__v_exp_clamped(_mm512_max_ps(lo_clamp, d)));
            _mm512_mask_storeu_ps(yr + full, tail, e);
            acc = _mm512_add_ps(acc, e);
        }
        float lanes[NB_LANES];
        _mm512_storeu_ps(lanes, acc);
        const double s = lanes_total(lanes);
        if (log_out) {
            const float lse = (float)log(s); /* >= 0: the maximum contributes 1 */
            for (size_t j = 0; j < len; j++) yr[j] = (xr[j] - m) - lse;
        } else {
            const __m512 inv = _mm512_set1_ps((float)(1.0 / s));
            for (size_t j = 0; j < full; j += 16) _mm512_storeu_ps(yr + j, _mm512_mul_ps(_mm512_loadu_ps(yr + j), inv));
            if (tail) _mm512_mask_storeu_ps(yr + full, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, yr + full), inv));
        }
    }
}
#define SOFTMAX_ROWS512 softmax_rows512
#else
#define SOFTMAX_ROWS512 NULL
#endif

// x: [..., C] -> y: [..., C], y = exp(x - max) / sum(exp(x - max)) or its log
static nb_status softmax_forward(nb_graph *g, nb_node *n) {
    (void)g;
    size_t rows, len;
    nb__rows_of(n->in[0], &rows, &len);
    const float *x = n->in[0]->value;
    float *y = n->value;
    const bool log_out = LOG(n);
    void (*k)(size_t, size_t, size_t, const float *, float *, bool) = softmax_rows;
    void (*v)(size_t, size_t, size_t, const float *, float *, bool) = SOFTMAX_ROWS512;
    if (v && nb__v512()) k = v;
    NB_PARALLEL_RANGE_IF(n->size >= NB_PAR_MIN, lo, hi, rows, k(lo, hi, len, x, y, log_out));
    return NB_OK;
}

/* softmax:     dx = y·(dy - sum(dy·y))
 * log-softmax: dx = dy - exp(y)·sum(dy)
 * written with = when the node is dx's first writer (n->assign: the graph
 * did not zero dx), with += otherwise. */
NB_KERNEL_CLONES
static void softmax_backward_rows(size_t lo, size_t hi, size_t len, const float *restrict y,
                                  const float *restrict dy, float *restrict dx, bool log_out, bool assign) {
    for (size_t r = lo; r < hi; r++) {
        const float *restrict yr = y + r * len, *restrict dyr = dy + r * len;
        float *restrict dxr = dx + r * len;
        float acc[NB_LANES] = {0};
        size_t j = 0;
        if (log_out) {
            for (; j + NB_LANES <= len; j += NB_LANES)
                for (size_t k = 0; k < NB_LANES; k++) acc[k] += dyr[j + k];
            for (; j < len; j++) acc[0] += dyr[j];
            const float sf = (float)lanes_total(acc);
            /* y <= 0 up to rounding: a log-probability */
            if (assign)
                for (j = 0; j < len; j++) dxr[j] = dyr[j] - nb__exp_neg(yr[j]) * sf;
            else
                for (j = 0; j < len; j++) dxr[j] += dyr[j] - nb__exp_neg(yr[j]) * sf;
        } else {
            for (; j + NB_LANES <= len; j += NB_LANES)
                for (size_t k = 0; k < NB_LANES; k++) acc[k] += dyr[j + k] * yr[j + k];
            for (; j < len; j++) acc[0] += dyr[j] * yr[j];
            const float sf = (float)lanes_total(acc);
            if (assign)
                for (j = 0; j < len; j++) dxr[j] = yr[j] * (dyr[j] - sf);
            else
                for (j = 0; j < len; j++) dxr[j] += yr[j] * (dyr[j] - sf);
        }
    }
}

static void softmax_backward(nb_graph *g, nb_node *n) {
    (void)g;
    size_t rows, len;
    nb__rows_of(n->in[0], &rows, &len);
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    if (!dx) return;
    const bool log_out = LOG(n), assign = n->assign & 1u;
    NB_PARALLEL_RANGE_IF(n->size >= NB_PAR_MIN, lo, hi, rows,
                         softmax_backward_rows(lo, hi, len, y, dy, dx, log_out, assign));
}

const nb_op nb_op_softmax = {.name = "softmax", .infer = softmax_infer, .forward = softmax_forward,
                             .backward = softmax_backward, .assigns = true};
const nb_op nb_op_log_softmax = {.name = "log_softmax", .infer = softmax_infer,
                                 .forward = softmax_forward, .backward = softmax_backward, .assigns = true};

nb_node *nb_softmax(nb_graph *g, nb_node *x) {
    nb_attr attr = {.i = {0}};
    return nb__op_node(g, &nb_op_softmax, 1, (nb_node *[]){x}, &attr);
}

nb_node *nb_log_softmax(nb_graph *g, nb_node *x) {
    nb_attr attr = {.i = {1}};
    return nb__op_node(g, &nb_op_log_softmax, 1, (nb_node *[]){x}, &attr);
}
