/* ops/common.h — small helpers several op families share. Internal to ops/. */
#ifndef NABLA_OPS_COMMON_H
#define NABLA_OPS_COMMON_H

#include <math.h>
#include <stdbool.h>

#include "graph/internal.h"

/* Shape inference of ops whose output has their first input's shape. */
static inline nb_status nb__infer_like_input(nb_graph *g, nb_node *n) {
    (void)g;
    n->shape = n->in[0]->shape;
    n->size = n->in[0]->size;
    return NB_OK;
}

/* x seen as rows along its last (feature) axis: the row length and the
 * number of rows; a scalar is one row of one. */
static inline void nb__rows_of(const nb_node *x, size_t *rows, size_t *len) {
    *len = x->shape.rank ? (size_t)x->shape.dim[x->shape.rank - 1] : 1;
    *rows = *len ? x->size / *len : 0;
}

#include <stdint.h>
#include <string.h>

/* ---- batch and layer normalization ----
 * Their nodes take x, then gamma and beta when given (flagged in attr.i[0]
 * and attr.i[1]), both [F] for F the last dim of x. */
static inline nb_node *nb__norm_gamma(const nb_node *n) { return n->attr.i[0] ? n->in[1] : NULL; }
static inline nb_node *nb__norm_beta(const nb_node *n) { return n->attr.i[1] ? n->in[1 + n->attr.i[0]] : NULL; }
static inline size_t nb__norm_features(const nb_node *n) {
    const nb_node *x = n->in[0];
    return (size_t)x->shape.dim[x->shape.rank - 1];
}

/* Checks that gamma or beta (what) is [F]; the message names the op. */
static inline nb_status nb__norm_check_affine(nb_graph *g, const char *op, const nb_node *x, const nb_node *p,
                                              const char *what) {
    int F = x->shape.dim[x->shape.rank - 1];
    if (p->shape.rank != 1 || p->shape.dim[0] != F) {
        char sp[NB_SHAPE_STR_LEN], sx[NB_SHAPE_STR_LEN];
        return nb__fail(g, "%s: %s has shape %s, expected [%d] (the last dim of x %s)", op, what,
                        nb__shape(p, sp), F, nb__shape(x, sx));
    }
    return NB_OK;
}

/* ---- vectorizable elementwise math ----
 * libm's expf, erfcf and log1pf are a call per element, which keeps a loop
 * from vectorizing; these are branch-free (selects only), with no libm call
 * and no double, so a kernel built with NB_KERNEL_CLONES runs them 16 lanes
 * wide. Their accuracy against libm in double is tested in
 * tests/test_fastmath.c, where each bound is stated. Clamps are written as
 * `bound < x ? bound : x` so that they compile to min/max instructions that
 * return x when it is NaN: NaN goes through the arithmetic and comes out. */

/* exp(x) = 2^n · exp(r), n = round(x/ln2), r = x - n·ln2 (Cody-Waite, with
 * ln2's high part short enough that n·hi is exact), |r| <= ln2/2. Adding
 * 1.5·2^23 + 127 rounds x/ln2 to an integer and leaves n + 127 in the low
 * bits of t, so shifting t's bits left by 23 gives 2^n as a float. x is
 * clamped to [-87.3, 88] so 2^n is a normal number (no denormals, no
 * infinities: exp(88) = 1.65e38). */
#define NB__EXP_SHIFT 12583039.0f /* 1.5·2^23 + 127 */

/* x clamped to [-87.3, 88] with NaN kept (only from below where the
 * caller knows x <= 0: every clamp costs the kernel compares and selects);
 * t holds n + 127 in its low bits, r is the reduced argument. */
static inline float nb__exp_reduce(float x, float *t_out, bool nonpositive) {
    float c = x;
    if (!nonpositive) c = 88.0f < c ? 88.0f : c;
    c = -87.3f > c ? -87.3f : c;
    const float t = c * 1.44269504f + NB__EXP_SHIFT;
    const float n = t - NB__EXP_SHIFT;
    *t_out = t;
    return (c - n * 0.693145752f) - n * 1.42860677e-6f;
}

/* 2^n from t as left by nb__exp_reduce. */
static inline float nb__exp_scale(float t) {
    uint32_t b;
    memcpy(&b, &t, 4);
    b <<= 23;
    float s;
    memcpy(&s, &b, 4);
    return s;
}

static inline float nb__exp_poly(float r) {
    float p = 8.297654800e-3f;
    p = p * r + 4.191538319e-2f;
    p = p * r + 1.666757464e-1f;
    p = p * r + 4.999889433e-1f;
    p = p * r + 9.999997020e-1f;
    return p * r + 1.000000119e+0f;
}

/* exp(x): exp(r) by its degree-5 minimax polynomial (relative error 7.5e-8
 * on |r| <= ln2/2, fitted with Lawson's algorithm). Within 3e-7 relative of
 * exp (2.5 float ulps) on [-87.3, 88]; exp(x < -87.3) is 1.2e-38, exp(x >
 * 88) is 1.65e38, NaN gives NaN. */
static inline float nb__exp(float x) {
    float t;
    const float r = nb__exp_reduce(x, &t, false);
    return nb__exp_poly(r) * nb__exp_scale(t);
}

/* The same for x <= 0 (or NaN), e.g. exp(-|x|), exp(x - max): no upper
 * clamp. */
static inline float nb__exp_neg(float x) {
    float t;
    const float r = nb__exp_reduce(x, &t, true);
    return nb__exp_poly(r) * nb__exp_scale(t);
}

/* exp(r) - 1 for |r| <= ln2/2 as r·P(r), P of degree 5 fitted for the
 * relative error of expm1 (1.1e-8): exact near 0, where exp(r) - 1 would
 * cancel. */
static inline float nb__expm1_reduced(float r) {
    float p = 1.388887293e-3f;
    p = p * r + 8.369068615e-3f;
    p = p * r + 4.166713730e-2f;
    p = p * r + 1.666650623e-1f;
    p = p * r + 4.999999702e-1f;
    p = p * r + 1.0f;
    return p * r;
}

/* exp(x) - 1 = 2^n·expm1(r) + (2^n - 1): for n = 0 (|x| <= ln2/2) that is
 * expm1(r) itself, so small x keeps its relative precision; elsewhere the
 * two terms do not cancel. Within 3e-7 relative of expm1 on [-87.3, 88];
 * -1 below -87.3. Used for the negative side of ELU, SELU and for tanh. */
static inline float nb__expm1_clamped(float x, bool nonpositive) {
    float t;
    const float r = nb__exp_reduce(x, &t, nonpositive);
    const float s = nb__exp_scale(t), e = nb__expm1_reduced(r);
    return s * e + (s - 1.0f);
}
static inline float nb__expm1(float x) { return nb__expm1_clamped(x, false); }

/* The same for x <= 0 (or NaN): the negative side of ELU and SELU, tanh. */
static inline float nb__expm1_neg(float x) { return nb__expm1_clamped(x, true); }

/* exp(a + b) for a <= 0 of large magnitude known exactly and a small
 * correction b: the reduction subtracts n·ln2 from a exactly before adding
 * b, so a's magnitude costs no precision, unlike rounding a + b first. a is
 * clamped below at -85.3; the result is valid where b is in [-2, 2] (the
 * callers' b is within [-1.4, 0.1] wherever they use the result). */
static inline float nb__exp_sum(float a, float b) {
    const float c = -85.3f > a ? -85.3f : a;
    const float t = (c + b) * 1.44269504f + NB__EXP_SHIFT;
    const float n = t - NB__EXP_SHIFT;
    const float r = ((c - n * 0.693145752f) + b) - n * 1.42860677e-6f;
    return nb__exp_poly(r) * nb__exp_scale(t);
}

/* tanh(x) = -t/(2 + t) with t = expm1(-2|x|), signed: no cancellation near
 * 0 (t keeps its relative precision there) and no overflow. */
static inline float nb__tanh(float x) {
    const float t = nb__expm1_neg(-2.0f * fabsf(x)), h = -t / (2.0f + t);
    return x < 0.0f ? -h : h;
}

/* The logistic function 1/(1 + exp(-x)), through exp of -|x| so nothing
 * overflows, branch-free. */
static inline float nb__sigmoid(float x) {
    const float e = nb__exp_neg(-fabsf(x)), s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s; /* e/(1+e): no cancellation in 1 - s */
}

/* log(1 + u) for u in [-0.5, 1] (softplus needs (0, 1]): 2·atanh(s) with
 * s = u/(2 + u), |s| <= 1/3, as s·R(s²), R of degree 4 fitted for relative
 * error (4e-9). s is computed from u without cancellation, so tiny u keeps
 * its relative precision (log1p(u) = u). */
static inline float nb__log1p_small(float u) {
    const float s = u / (2.0f + u), s2 = s * s;
    float p = 2.817817330e-1f;
    p = p * s2 + 2.796064317e-1f;
    p = p * s2 + 4.002490640e-1f;
    p = p * s2 + 6.666631699e-1f;
    p = p * s2 + 2.0f;
    return p * s;
}

/* x·x/2 as hi + lo with hi exact: x split into xh (its top 12 significant
 * bits, so xh·xh is exact) and xl = x - xh (exact). Keeps exp(-x²/2)
 * accurate for large |x|, where rounding x²/2 to float would cost up to
 * x²·3e-8 relative (1e-5 at |x| = 13). */
static inline void nb__half_square(float x, float *hi, float *lo) {
    uint32_t b;
    memcpy(&b, &x, 4);
    b &= 0xfffff000u;
    float xh;
    memcpy(&xh, &b, 4);
    const float xl = x - xh;
    *hi = 0.5f * xh * xh;
    *lo = 0.5f * xl * (x + xh);
}

/* erfc(|x|/√2) and, through one shared exponent, the standard normal CDF's
 * tail: with z = |x|/√2 and t = 1/(1 + z/2),
 *   erfc(z) = t·exp(-z² + P(t))
 * with P the degree-9 polynomial of Numerical Recipes' erfcc (Chebyshev
 * fit, relative error below 1.2e-7 for every z >= 0; W. H. Press et al.,
 * Numerical Recipes in C, 2nd ed., section 6.2). z² = x²/2 comes from
 * nb__half_square, so the relative error stays a few ulps in the far tail.
 * Returns Q(|x|) = erfc(z)/2 = P(N(0,1) > |x|): within 1e-6 relative
 * for |x| < 14 (tests/test_fastmath.c), 0 from 14 on. */
static inline float nb__normal_tail(float x) {
    const float ax = fabsf(x), z = ax * 0.70710678118654752f, t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float hi, lo;
    nb__half_square(ax, &hi, &lo);
    const float q = 0.5f * t * nb__exp_sum(-hi, p - lo);
    /* Q(14) = 8e-45 is a float denormal: 0 from there (and for infinities,
     * which the split would turn into NaN); NaN stays NaN */
    return ax >= 14.0f ? 0.0f : q;
}

/* Φ(x), the standard normal CDF: Q(|x|) on the left, 1 - Q(|x|) on the
 * right (Q <= 1/2 there, so no precision is lost). */
static inline float nb__normal_cdf(float x) {
    const float q = nb__normal_tail(x);
    return x < 0.0f ? q : 1.0f - q;
}

/* φ(x) = exp(-x²/2)/√(2π), accurate for large |x| as above. */
static inline float nb__normal_pdf(float x) {
    float hi, lo;
    nb__half_square(x, &hi, &lo);
    const float d = 0.39894228040143267794f * nb__exp_sum(-hi, -lo);
    return fabsf(x) >= 14.0f ? 0.0f : d; /* φ(14) = 2.5e-43, as above */
}

#endif
