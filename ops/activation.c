/* ops/activation.c — elementwise activations: sigmoid, tanh, the ReLU family
 * (relu, leaky_relu, prelu, rrelu), elu, selu, gelu (exact and with the tanh
 * approximation), swish, softplus.
 * (softmax and log_softmax live in ops/softmax.c.)
 *
 * Every op keeps x's shape. Most are one formula for y and one for dy/dx,
 * written once below as a pair of expressions; backward passes read the
 * forward output y where that costs no precision (elu, selu on their linear
 * side). sigmoid's and tanh's derivatives come from x: y(1-y) and 1-y² from
 * the float32 y lose up to 1e-4 relative where the function saturates
 * (|x| > 4), as 1 - y cancels. Where x is NaN the output is NaN, so a graph checking
 * for non-finite values sees it (relu included). At a kink the derivative
 * is the left one's (relu 0, leaky/prelu/rrelu their slope), as in PyTorch
 * for relu. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "ops/simd512.h"
#include "nabla/ops.h"

/* Klambauer et al., "Self-Normalizing Neural Networks" (2017), as in Keras. */
#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f

#ifdef NB_HAVE_V512
/* NAME##_forward512 over [lo, hi) from VFWD, an __m512 expression of x
 * (and va, the parameter a in every lane); the tail by masked loads and
 * stores, so no scalar code path differs from the vector one. */
#define V512_FORWARD(NAME, VFWD)                                                              \
    NB_V512 static inline __m512 NAME##_v512(__m512 x, __m512 va) {                           \
        (void)va;                                                                             \
        return (VFWD);                                                                        \
    }                                                                                         \
    NB_V512 static void NAME##_forward512(size_t lo, size_t hi, const float *restrict xv,     \
                                          float *restrict yv, float a) {                      \
        const __m512 va = _mm512_set1_ps(a);                                                  \
        size_t i = lo;                                                                        \
        for (; i + 64 <= hi; i += 64) {                                                       \
            const __m512 y0 = NAME##_v512(_mm512_loadu_ps(xv + i), va);                       \
            const __m512 y1 = NAME##_v512(_mm512_loadu_ps(xv + i + 16), va);                  \
            const __m512 y2 = NAME##_v512(_mm512_loadu_ps(xv + i + 32), va);                  \
            const __m512 y3 = NAME##_v512(_mm512_loadu_ps(xv + i + 48), va);                  \
            _mm512_storeu_ps(yv + i, y0);                                                     \
            _mm512_storeu_ps(yv + i + 16, y1);                                                \
            _mm512_storeu_ps(yv + i + 32, y2);                                                \
            _mm512_storeu_ps(yv + i + 48, y3);                                                \
        }                                                                                     \
        for (; i + 16 <= hi; i += 16) _mm512_storeu_ps(yv + i, NAME##_v512(_mm512_loadu_ps(xv + i), va)); \
        if (i < hi) {                                                                         \
            const __mmask16 m = (__mmask16)((1u << (hi - i)) - 1u);                           \
            _mm512_mask_storeu_ps(yv + i, m, NAME##_v512(_mm512_maskz_loadu_ps(m, xv + i), va)); \
        }                                                                                     \
    }
/* NAME##_backward512 from VDERIV, an __m512 expression of x only (these
 * ops' derivatives do not read y): dx = or += dy·VDERIV, four vectors per
 * iteration as in forward. */
#define V512_BWD_LOOP(NAME, STORE)                                                            \
    for (; i + 64 <= hi; i += 64) {                                                           \
        const __m512 d0 = NAME##_d512(_mm512_loadu_ps(xv + i));                               \
        const __m512 d1 = NAME##_d512(_mm512_loadu_ps(xv + i + 16));                          \
        const __m512 d2 = NAME##_d512(_mm512_loadu_ps(xv + i + 32));                          \
        const __m512 d3 = NAME##_d512(_mm512_loadu_ps(xv + i + 48));                          \
        const __mmask16 m = 0xffff;                                                           \
        size_t j = i;                                                                         \
        __m512 d = d0;                                                                        \
        STORE;                                                                                \
        j += 16, d = d1;                                                                      \
        STORE;                                                                                \
        j += 16, d = d2;                                                                      \
        STORE;                                                                                \
        j += 16, d = d3;                                                                      \
        STORE;                                                                                \
    }                                                                                         \
    for (; i < hi; i += 16) {                                                                 \
        const __mmask16 m = hi - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hi - i)) - 1u); \
        const size_t j = i;                                                                   \
        const __m512 d = NAME##_d512(_mm512_maskz_loadu_ps(m, xv + i));                       \
        STORE;                                                                                \
    }
#define V512_BACKWARD(NAME, VDERIV)                                                           \
    NB_V512 static inline __m512 NAME##_d512(__m512 x) { return (VDERIV); }                   \
    NB_V512 static void NAME##_backward512(size_t lo, size_t hi, const float *restrict xv,    \
                                           const float *restrict yv, const float *restrict dy, \
                                           float *restrict dx, float a, bool assign) {        \
        (void)yv, (void)a;                                                                    \
        size_t i = lo;                                                                        \
        if (assign) {                                                                         \
            V512_BWD_LOOP(NAME, _mm512_mask_storeu_ps(dx + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + j), d))) \
        } else {                                                                              \
            V512_BWD_LOOP(NAME, _mm512_mask_storeu_ps(dx + j, m,                              \
                                                      _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, dy + j), d, \
                                                                      _mm512_maskz_loadu_ps(m, dx + j)))) \
        }                                                                                     \
    }
#define V512(f) f
bool nb__v512_disabled = false;
#else
#define V512_FORWARD(NAME, VFWD)
#define V512_BACKWARD(NAME, VDERIV)
#define V512(f) NULL
#endif

/* Defines NAME's forward, backward and op-table entry from two expressions:
 * FWD gives y from x, DERIV gives dy/dx from x and y; both may use a, the
 * op's scalar parameter (attr.f[0]). Backward overwrites dx when the node
 * is its first writer (n->assign, see nb_op.assigns: the graph then skips
 * zeroing it) and adds to it otherwise; the branch is outside the loops.
 * FWD512 and BWD512 are AVX-512 kernels (V512(name)) or NULL, run instead
 * of the portable loops where the CPU has AVX-512. */
#define UNARY_OP(NAME, FWD, DERIV, FWD512, BWD512)                                                        \
    NB_KERNEL_CLONES                                                                        \
    static void NAME##_forward_range(size_t lo, size_t hi, const float *restrict xv,        \
                                     float *restrict yv, float a) {                         \
        (void)a;                                                                            \
        for (size_t i = lo; i < hi; i++) {                                                  \
            const float x = xv[i];                                                          \
            yv[i] = (FWD);                                                                  \
        }                                                                                   \
    }                                                                                       \
    NB_KERNEL_CLONES                                                                        \
    static void NAME##_backward_range(size_t lo, size_t hi, const float *restrict xv,       \
                                      const float *restrict yv, const float *restrict dy,   \
                                      float *restrict dx, float a, bool assign) {           \
        (void)a;                                                                            \
        if (assign) {                                                                       \
            for (size_t i = lo; i < hi; i++) {                                              \
                const float x = xv[i], y = yv[i];                                           \
                (void)x, (void)y;                                                           \
                dx[i] = dy[i] * (DERIV);                                                    \
            }                                                                               \
        } else {                                                                            \
            for (size_t i = lo; i < hi; i++) {                                              \
                const float x = xv[i], y = yv[i];                                           \
                (void)x, (void)y;                                                           \
                dx[i] += dy[i] * (DERIV);                                                   \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    static nb_status NAME##_forward(nb_graph *g, nb_node *n) {                              \
        (void)g;                                                                            \
        const float *xv = n->in[0]->value, a = n->attr.f[0];                                \
        float *yv = n->value;                                                               \
        void (*k)(size_t, size_t, const float *, float *, float) = NAME##_forward_range;   \
        void (*v)(size_t, size_t, const float *, float *, float) = (FWD512);               \
        if (v && nb__v512()) k = v;                                                         \
        NB_PARALLEL_RANGE(lo, hi, n->size, k(lo, hi, xv, yv, a));                           \
        return NB_OK;                                                                       \
    }                                                                                       \
    static void NAME##_backward(nb_graph *g, nb_node *n) {                                  \
        (void)g;                                                                            \
        const float *xv = n->in[0]->value, *yv = n->value, *dy = n->grad, a = n->attr.f[0]; \
        float *dx = n->in[0]->grad;                                                         \
        const bool assign = n->assign & 1u;                                                 \
        if (!dx) return;                                                                    \
        void (*k)(size_t, size_t, const float *, const float *, const float *, float *,     \
                  float, bool) = NAME##_backward_range;                                     \
        void (*v)(size_t, size_t, const float *, const float *, const float *, float *,     \
                  float, bool) = (BWD512);                                                  \
        if (v && nb__v512()) k = v;                                                         \
        NB_PARALLEL_RANGE(lo, hi, n->size, k(lo, hi, xv, yv, dy, dx, a, assign));           \
    }                                                                                       \
    const nb_op nb_op_##NAME = {.name = #NAME, .infer = nb__infer_like_input,               \
                                .forward = NAME##_forward, .backward = NAME##_backward,     \
                                .assigns = true}

/* log(1+exp(x)) = max(x,0) + log1p(exp(-|x|)): exp never overflows, and
 * exp(-|x|) is in (0, 1], log1p's vectorizable range. */
static inline float softplus_f(float x) {
    return (x > 0.0f ? x : 0.0f) + nb__log1p_small(nb__exp_neg(-fabsf(x)));
}

/* sigmoid'(x) = s(x)·s(-x) = e/(1+e)² with e = exp(-|x|) (the same for x
 * and -x): both factors without cancellation, within a few float ulps
 * wherever e is a normal float (|x| <= 87.3, beyond which e stays at
 * exp(-87.3) and the derivative at 1.2e-38 instead of a denormal). */
static inline float sigmoid_deriv(float x) {
    const float e = nb__exp_neg(-fabsf(x)), r = 1.0f / (1.0f + e);
    return e * r * r;
}

/* tanh'(x) = 1 - tanh²(x) = 4e/(1+e)² with e = exp(-2|x|): no cancellation
 * in saturation, where 1 - y² would lose everything; 2|x| is exact. */
static inline float tanh_deriv(float x) {
    const float e = nb__exp_neg(-2.0f * fabsf(x)), r = 1.0f / (1.0f + e);
    return 4.0f * e * r * r;
}

/* GELU with the tanh approximation (Hendrycks & Gimpel; PyTorch's and
 * Keras's approximate="tanh"/True):
 *   y = x/2·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
 * written as y = x·s(z) with z = 2u = x·(C1 + C3·x²) and s the logistic
 * function, since 1 + tanh(u) = 2·s(2u): in the left tail s(z) keeps its
 * relative precision where 1 + tanh(u) would cancel. Then
 *   y' = s(z) + x·s(z)·s(-z)·(C1 + 3·C3·x²)
 * with s(z)·s(-z) = e/(1+e)², e = exp(-|z|), as for sigmoid. The cubic
 * uses x clamped to [-20, 20] (NaN kept), where z is beyond ±600 and s
 * is 0 or 1 in float: no overflow of x³, and y = x·s stays finite for x =
 * -inf (max(x, -20)·s, a value below 1e-36). z is computed in float, so
 * where |z| is large y carries z's rounding (a few 1e-7 relative) times
 * |z|: the function's own sensitivity to x, about |x·z'| (tests state the
 * bound). */
#define GELU_TANH_C1 1.5957691216057307f  /* 2·√(2/π) */
#define GELU_TANH_C3 0.07135481627159349f /* 2·√(2/π)·0.044715 */
static inline float gelu_tanh_clamp(float x) {
    const float c = 20.0f < x ? 20.0f : x;
    return -20.0f > c ? -20.0f : c;
}
static inline float gelu_tanh_f(float x) {
    const float c = gelu_tanh_clamp(x), z = c * (GELU_TANH_C1 + GELU_TANH_C3 * (c * c));
    return (-20.0f > x ? -20.0f : x) * nb__sigmoid(z);
}
static inline float gelu_tanh_deriv(float x) {
    const float c = gelu_tanh_clamp(x), c2 = c * c, z = c * (GELU_TANH_C1 + GELU_TANH_C3 * c2);
    const float e = nb__exp_neg(-fabsf(z)), r = 1.0f / (1.0f + e);
    const float s = z >= 0.0f ? r : e * r;
    return s + c * (GELU_TANH_C1 + 3.0f * GELU_TANH_C3 * c2) * (e * r * r);
}

/* swish' = s + x·s·(1-s) with s = sigmoid(x); y/x would divide by zero. */
static inline float swish_deriv(float x) {
    float s = nb__sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

V512_FORWARD(sigmoid, nb__v_sigmoid(x))
V512_FORWARD(tanh, nb__v_tanh(x))
#ifdef NB_HAVE_V512
/* e/(1+e)² with e = exp(-c), c = min(|x|, cmax)·k (as sigmoid_deriv and
 * tanh_deriv), scaled: one divide. NaN stays NaN (min returns it). */
NB_V512 static inline __m512 sat_deriv512(__m512 x, float cmax, float k, float scale) {
    const __m512 c = _mm512_mul_ps(_mm512_min_ps(_mm512_set1_ps(cmax), _mm512_abs_ps(x)), _mm512_set1_ps(k));
    const __m512 e = nb__v_exp_neg_clamped(c), q = _mm512_add_ps(_mm512_set1_ps(1.0f), e);
    return _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(scale), e), _mm512_mul_ps(q, q));
}
#endif
V512_BACKWARD(sigmoid, sat_deriv512(x, 87.3f, 1.0f, 1.0f))
V512_BACKWARD(tanh, sat_deriv512(x, 43.6f, 2.0f, 4.0f))
/* the negative side from expm1 of max(x, -87.3): where x > 0 it computes
 * a value the blend drops (no trap: the project masks FP exceptions) */
V512_FORWARD(elu, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ),
                                       _mm512_mul_ps(va, nb__v_expm1_clamped(_mm512_max_ps(_mm512_set1_ps(-87.3f), x))),
                                       x))
V512_FORWARD(selu, _mm512_mask_blend_ps(
                       _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ),
                       _mm512_mul_ps(_mm512_set1_ps(SELU_SCALE * SELU_ALPHA),
                                     nb__v_expm1_clamped(_mm512_max_ps(_mm512_set1_ps(-87.3f), x))),
                       _mm512_mul_ps(_mm512_set1_ps(SELU_SCALE), x)))
V512_FORWARD(gelu, _mm512_mul_ps(x, nb__v_normal_cdf(x)))
V512_BACKWARD(gelu, _mm512_fmadd_ps(x, nb__v_normal_pdf(x), nb__v_normal_cdf(x)))
#ifdef NB_HAVE_V512
/* gelu_tanh's s(z) from c = x clamped, with g = s(z)·s(-z), as the
 * portable gelu_tanh_deriv. */
NB_V512 static inline __m512 gelu_tanh_s512(__m512 c, __m512 c2, __m512 *g) {
    const __m512 z = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_set1_ps(GELU_TANH_C3), c2, _mm512_set1_ps(GELU_TANH_C1)));
    const __m512 e = nb__v_exp_neg_clamped(_mm512_min_ps(_mm512_set1_ps(87.3f), _mm512_abs_ps(z)));
    const __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    const __m512 er = _mm512_mul_ps(e, r);
    *g = _mm512_mul_ps(er, r);
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ), er);
}
NB_V512 static inline __m512 gelu_tanh_fwd512(__m512 x) {
    const __m512 c = nb__v_clamp(x, -20.0f, 20.0f);
    __m512 g;
    const __m512 s = gelu_tanh_s512(c, _mm512_mul_ps(c, c), &g);
    return _mm512_mul_ps(_mm512_max_ps(_mm512_set1_ps(-20.0f), x), s);
}
NB_V512 static inline __m512 gelu_tanh_deriv512(__m512 x) {
    const __m512 c = nb__v_clamp(x, -20.0f, 20.0f), c2 = _mm512_mul_ps(c, c);
    __m512 g;
    const __m512 s = gelu_tanh_s512(c, c2, &g);
    const __m512 dz = _mm512_fmadd_ps(_mm512_set1_ps(3.0f * GELU_TANH_C3), c2, _mm512_set1_ps(GELU_TANH_C1));
    return _mm512_fmadd_ps(_mm512_mul_ps(c, dz), g, s);
}
#endif
V512_FORWARD(gelu_tanh, gelu_tanh_fwd512(x))
V512_BACKWARD(gelu_tanh, gelu_tanh_deriv512(x))
V512_FORWARD(swish, _mm512_mul_ps(x, nb__v_sigmoid(x)))
#ifdef NB_HAVE_V512
/* swish' = s + s·x·(1 - s) = s + s·(x - x·s) */
NB_V512 static inline __m512 swish_deriv512(__m512 x) {
    const __m512 s = nb__v_sigmoid(x);
    return _mm512_fmadd_ps(s, _mm512_fnmadd_ps(x, s, x), s);
}
#endif
V512_BACKWARD(swish, swish_deriv512(x))
V512_FORWARD(softplus, nb__v_softplus(x))
V512_BACKWARD(softplus, nb__v_sigmoid(x))

UNARY_OP(sigmoid, nb__sigmoid(x), sigmoid_deriv(x), V512(sigmoid_forward512), V512(sigmoid_backward512));
UNARY_OP(tanh, nb__tanh(x), tanh_deriv(x), V512(tanh_forward512), V512(tanh_backward512));
/* x < 0 ? 0 : x rather than fmaxf, which would turn NaN into 0 */
UNARY_OP(relu, x < 0.0f ? 0.0f : x, x > 0.0f ? 1.0f : 0.0f, NULL, NULL);
UNARY_OP(leaky_relu, x > 0.0f ? x : a * x, x > 0.0f ? 1.0f : a, NULL, NULL);
/* expm1 of min(x, 0) (NaN kept): the positive side, whose result is not
 * used, stays in expm1_neg's domain.
 * For x <= 0: d/dx a·(e^x - 1) = a·e^x = y + a */
UNARY_OP(elu, x > 0.0f ? x : a * nb__expm1_neg(0.0f < x ? 0.0f : x), x > 0.0f ? 1.0f : y + a,
         V512(elu_forward512), NULL);
UNARY_OP(selu,
         x > 0.0f ? SELU_SCALE * x : SELU_SCALE * SELU_ALPHA * nb__expm1_neg(0.0f < x ? 0.0f : x),
         x > 0.0f ? SELU_SCALE : y + SELU_SCALE * SELU_ALPHA, V512(selu_forward512), NULL);
/* Keras's exact GELU (approximate=False), x·Φ(x) = 0.5·x·(1 + erf(x/√2)),
 * with Φ through erfc of |x| (nb__normal_cdf), which keeps its precision
 * in the left tail where 1 + erf would cancel. d/dx x·Φ(x) = Φ(x) + x·φ(x) */
UNARY_OP(gelu, x * nb__normal_cdf(x), nb__normal_cdf(x) + x * nb__normal_pdf(x), V512(gelu_forward512),
         V512(gelu_backward512));
UNARY_OP(gelu_tanh, gelu_tanh_f(x), gelu_tanh_deriv(x), V512(gelu_tanh_forward512), V512(gelu_tanh_backward512));
UNARY_OP(swish, x * nb__sigmoid(x), swish_deriv(x), V512(swish_forward512), V512(swish_backward512));
UNARY_OP(softplus, softplus_f(x), nb__sigmoid(x), V512(softplus_forward512), V512(softplus_backward512));

/* ---- prelu: a learned slope per feature ---- */

/* x: [..., F], alpha: [F] -> y: [..., F] */
static nb_status prelu_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0], *alpha = n->in[1];
    if (x->shape.rank < 1 || alpha->shape.rank != 1 ||
        alpha->shape.dim[0] != x->shape.dim[x->shape.rank - 1]) {
        char sx[NB_SHAPE_STR_LEN], sa[NB_SHAPE_STR_LEN];
        return nb__fail(g, "prelu: alpha must be a vector as long as x's feature (last) axis: x %s, alpha %s",
                        nb__shape(x, sx), nb__shape(alpha, sa));
    }
    return nb__infer_like_input(g, n);
}

/* Backward's scratch: one double accumulator per feature for alpha's
 * gradient (the arena is 64-byte aligned, so doubles fit). */
static size_t prelu_aux(const nb_node *n) { return 2 * n->in[1]->size; }

static nb_status prelu_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const float *xv = n->in[0]->value, *alpha = n->in[1]->value;
    float *y = n->value;
    size_t F = n->in[1]->size;
    NB_PARALLEL_FOR(i, n->size, const float x = xv[i]; y[i] = x > 0.0f ? x : alpha[i % F] * x);
    return NB_OK;
}

/* dL/dalpha[f] sums dy·x over every row where x <= 0: serially, row by row
 * in double, so it does not depend on the number of threads. */
static void prelu_backward(nb_graph *g, nb_node *n) {
    (void)g;
    const float *xv = n->in[0]->value, *alpha = n->in[1]->value, *dy = n->grad;
    float *dx = n->in[0]->grad, *dalpha = n->in[1]->grad;
    size_t F = n->in[1]->size, rows = n->size / F;
    const bool set_dx = n->assign & 1u, set_dalpha = n->assign >> 1 & 1u;
    if (dx && set_dx) NB_PARALLEL_FOR(i, n->size, dx[i] = xv[i] > 0.0f ? dy[i] : alpha[i % F] * dy[i]);
    else if (dx) NB_PARALLEL_FOR(i, n->size, dx[i] += xv[i] > 0.0f ? dy[i] : alpha[i % F] * dy[i]);
    if (dalpha) {
        double *acc = (double *)(void *)n->aux;
        for (size_t f = 0; f < F; f++) acc[f] = 0.0;
        for (size_t r = 0; r < rows; r++) {
            const float *x = xv + r * F, *d = dy + r * F;
            for (size_t f = 0; f < F; f++)
                if (!(x[f] > 0.0f)) acc[f] += (double)d[f] * (double)x[f];
        }
        for (size_t f = 0; f < F; f++) dalpha[f] = (set_dalpha ? 0.0f : dalpha[f]) + (float)acc[f];
    }
}

const nb_op nb_op_prelu = {.name = "prelu", .infer = prelu_infer, .aux = prelu_aux,
                           .forward = prelu_forward, .backward = prelu_backward, .assigns = true};

/* ---- rrelu: a random slope per element in training ---- */

#define LOWER(n) ((n)->attr.f[0])
#define UPPER(n) ((n)->attr.f[1])

/* The inference slope (lower+upper)/2, written so it cannot overflow. */
static float rrelu_mean(const nb_node *n) { return LOWER(n) + 0.5f * (UPPER(n) - LOWER(n)); }

/* aux: every element's slope, drawn in forward, read in backward. */
static size_t rrelu_aux(const nb_node *n) { return n->size; }

// x: any shape -> y: the same shape; aux: the slope drawn for each element
static nb_status rrelu_forward(nb_graph *g, nb_node *n) {
    const float *xv = n->in[0]->value;
    float *y = n->value, *slope = n->aux;
    size_t size = n->size;
    if (!nb__random_active(g, n)) {
        const float s = rrelu_mean(n);
        NB_PARALLEL_FOR(i, size, const float x = xv[i]; y[i] = x > 0.0f ? x : s * x);
        return NB_OK;
    }
    /* One Philox call gives the slopes of four consecutive elements; every
     * element's slope depends only on (seed, step, node, index). */
    const float lo = LOWER(n), width = UPPER(n) - LOWER(n);
    const uint64_t off = nb__random_offset(g, n); /* a share of a global batch: its rows' place */
    const size_t b0 = (size_t)(off / 4), blocks = (size_t)((off + size + 3) / 4) - b0;
    NB_PARALLEL_FOR(i, blocks, {
        uint32_t r[4];
        nb__random4(g, n, b0 + i, r);
        for (size_t k = 0; k < 4; k++) {
            const uint64_t ge = 4 * (b0 + i) + k; /* the element's place in the stream */
            if (ge < off || ge >= off + size) continue;
            const size_t e = (size_t)(ge - off);
            const float s = lo + width * nb_u32_to_unit(r[k]), x = xv[e];
            slope[e] = s;
            y[e] = x > 0.0f ? x : s * x;
        }
    });
    return NB_OK;
}

/* Follows the mode of the forward pass it comes after: drawn slopes in
 * training (or when stochastic), the mean slope otherwise. */
static void rrelu_backward(nb_graph *g, nb_node *n) {
    const float *xv = n->in[0]->value, *dy = n->grad, *slope = n->aux;
    float *dx = n->in[0]->grad;
    if (!dx) return;
    /* the first writer of dx overwrites it (n->assign), others add */
    const bool set = n->assign & 1u;
    if (nb__random_active(g, n)) {
        if (set) NB_PARALLEL_FOR(i, n->size, dx[i] = xv[i] > 0.0f ? dy[i] : slope[i] * dy[i]);
        else NB_PARALLEL_FOR(i, n->size, dx[i] += xv[i] > 0.0f ? dy[i] : slope[i] * dy[i]);
    } else {
        const float s = rrelu_mean(n);
        if (set) NB_PARALLEL_FOR(i, n->size, dx[i] = xv[i] > 0.0f ? dy[i] : s * dy[i]);
        else NB_PARALLEL_FOR(i, n->size, dx[i] += xv[i] > 0.0f ? dy[i] : s * dy[i]);
    }
}

const nb_op nb_op_rrelu = {.name = "rrelu", .infer = nb__infer_like_input, .aux = rrelu_aux,
                           .forward = rrelu_forward, .backward = rrelu_backward, .random = true,
                           .assigns = true};

/* ---- constructors ---- */

static nb_node *unary(nb_graph *g, const nb_op *op, nb_node *x, float a, float b) {
    nb_attr attr = {.f = {a, b}};
    return nb__op_node(g, op, 1, (nb_node *[]){x}, &attr);
}

/* Checks a scalar parameter before the node is made; false puts g in error. */
static bool finite_arg(nb_graph *g, const char *op, const char *what, float v) {
    if (isfinite(v)) return true;
    nb__fail(g, "%s: %s is %g, it must be finite", op, what, (double)v);
    return false;
}

nb_node *nb_sigmoid(nb_graph *g, nb_node *x) { return unary(g, &nb_op_sigmoid, x, 0, 0); }
nb_node *nb_tanh(nb_graph *g, nb_node *x) { return unary(g, &nb_op_tanh, x, 0, 0); }
nb_node *nb_relu(nb_graph *g, nb_node *x) { return unary(g, &nb_op_relu, x, 0, 0); }
nb_node *nb_selu(nb_graph *g, nb_node *x) { return unary(g, &nb_op_selu, x, 0, 0); }
nb_node *nb_gelu(nb_graph *g, nb_node *x) { return unary(g, &nb_op_gelu, x, 0, 0); }
nb_node *nb_gelu_tanh(nb_graph *g, nb_node *x) { return unary(g, &nb_op_gelu_tanh, x, 0, 0); }
nb_node *nb_swish(nb_graph *g, nb_node *x) { return unary(g, &nb_op_swish, x, 0, 0); }
nb_node *nb_softplus(nb_graph *g, nb_node *x) { return unary(g, &nb_op_softplus, x, 0, 0); }

nb_node *nb_leaky_relu(nb_graph *g, nb_node *x, float alpha) {
    if (!g || g->status != NB_OK) return NULL;
    if (!finite_arg(g, "leaky_relu", "alpha", alpha)) return NULL;
    return unary(g, &nb_op_leaky_relu, x, alpha, 0);
}

/* Any finite alpha, as Keras's ELU allows. */
nb_node *nb_elu(nb_graph *g, nb_node *x, float alpha) {
    if (!g || g->status != NB_OK) return NULL;
    if (!finite_arg(g, "elu", "alpha", alpha)) return NULL;
    return unary(g, &nb_op_elu, x, alpha, 0);
}

nb_node *nb_rrelu(nb_graph *g, nb_node *x, float lower, float upper) {
    if (!g || g->status != NB_OK) return NULL;
    if (!finite_arg(g, "rrelu", "lower", lower) || !finite_arg(g, "rrelu", "upper", upper))
        return NULL;
    if (!(lower >= 0.0f && lower <= upper)) {
        nb__fail(g, "rrelu: bounds must satisfy 0 <= lower <= upper, got lower %g, upper %g",
                 (double)lower, (double)upper);
        return NULL;
    }
    return unary(g, &nb_op_rrelu, x, lower, upper);
}

nb_node *nb_prelu(nb_graph *g, nb_node *x, nb_node *alpha) {
    return nb__op_node(g, &nb_op_prelu, 2, (nb_node *[]){x, alpha}, NULL);
}
