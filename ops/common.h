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

/* The logistic function; each branch takes exp of a non-positive number,
 * so neither overflows. */
static inline float nb__sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

#endif
