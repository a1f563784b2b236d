/* ops/common.h — small helpers several op families share. Internal to ops/. */
#ifndef NABLA_OPS_COMMON_H
#define NABLA_OPS_COMMON_H

#include <math.h>

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

/* exp(x) in float, branch-free so that elementwise loops vectorize (libm's
 * expf is a call per element): x = n·ln2 + r with |r| <= ln2/2 (Cody-Waite,
 * two-part ln2), exp(r) by its Taylor polynomial to r^7 (truncation below
 * 2e-8 relative), times 2^n built in the exponent bits. Within 2 ulp of
 * expf; inputs are clamped to [-87.3, 88] (no infinities, no denormals:
 * exp(-87.3) is about 1.2e-38). */
static inline float nb__exp(float x) {
    /* written so that a NaN clamps too (comparisons with NaN are false),
     * and comes back out at the end */
    float c = x > -87.3f ? x : -87.3f;
    c = c < 88.0f ? c : 88.0f; /* 2^n stays finite: n <= 127 */
    const float n = (c * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
    const float r = (c - n * 0.693145752f) - n * 1.42860677e-6f;
    float p = 1.98412698e-4f;            /* 1/7! */
    p = p * r + 1.38888889e-3f;          /* 1/6! */
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return x == x ? p * scale : x;
}

/* exp(x) - 1 for x <= 0 (the negative side of ELU and SELU): near 0, where
 * exp(x) - 1 would cancel, its Taylor polynomial to x^8 (|x| < 0.35:
 * truncation below 1e-9 relative); else nb__exp(x) - 1. */
static inline float nb__expm1_neg(float x) {
    float q = 2.48015873e-5f;            /* 1/8! */
    q = q * x + 1.98412698e-4f;
    q = q * x + 1.38888889e-3f;
    q = q * x + 8.33333333e-3f;
    q = q * x + 4.16666667e-2f;
    q = q * x + 1.66666667e-1f;
    q = q * x + 0.5f;
    q = q * x * x + x;
    const float e = nb__exp(x) - 1.0f;
    return x > -0.35f ? q : e;
}

/* tanh(x) = -t/(2 + t) with t = expm1(-2|x|), signed: no cancellation near
 * 0 (t comes from the expm1 polynomial there) and no overflow. */
static inline float nb__tanh(float x) {
    const float t = nb__expm1_neg(-2.0f * fabsf(x)), h = -t / (2.0f + t);
    return x < 0.0f ? -h : h;
}

/* The logistic function 1/(1 + exp(-x)), through exp of -|x| so nothing
 * overflows, branch-free. */
static inline float nb__sigmoid(float x) {
    const float e = nb__exp(-fabsf(x)), s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s; /* e/(1+e): no cancellation in 1 - s */
}

#endif
