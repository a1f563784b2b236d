/* nn/layer_merge.c — the merges of a functional model: Concatenate (along
 * the last axis), Add, Subtract, Multiply, Average, as Keras's layers of
 * those names. They have no config and no tensors. */
#include <stdio.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nn/internal.h"

/* Concatenate: every dim but the last agrees; the last ones add up. */
static int concat_shape(const void *config, int n, const nb_shape *in, nb_shape *out, char *err, size_t len) {
    (void)config;
    *out = in[0];
    for (int k = 1; k < n; k++) {
        bool same = in[k].rank == in[0].rank;
        for (int i = 0; same && i + 1 < in[0].rank; i++) same = in[k].dim[i] == in[0].dim[i];
        if (!same) {
            char a[NB_SHAPE_STR_LEN], b[NB_SHAPE_STR_LEN];
            nb_shape_str(&in[0], a, sizeof a);
            nb_shape_str(&in[k], b, sizeof b);
            snprintf(err, len, "input %d has shape %s, input 0 %s: all but the last dim must agree", k, b, a);
            return 1;
        }
        long long last = (long long)out->dim[out->rank - 1] + in[k].dim[in[k].rank - 1];
        if (last > 0x7fffffff) {
            snprintf(err, len, "the inputs' last dims add up to more than an int counts");
            return 1;
        }
        out->dim[out->rank - 1] = (int)last;
    }
    return 0;
}

static nb_node *concat(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout) {
    (void)l, (void)mc_dropout;
    return nb_concat(g, n, x);
}

static nb_node *add(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout) {
    (void)l, (void)mc_dropout;
    nb_node *y = x[0];
    for (int k = 1; k < n; k++) y = nb_add(g, y, x[k]);
    return y;
}

static nb_node *subtract(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout) {
    (void)l, (void)n, (void)mc_dropout;
    return nb_sub(g, x[0], x[1]);
}

static nb_node *multiply(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout) {
    (void)l, (void)mc_dropout;
    nb_node *y = x[0];
    for (int k = 1; k < n; k++) y = nb_mul(g, y, x[k]);
    return y;
}

static nb_node *average(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout) {
    return nb_scale(g, add(l, g, n, x, mc_dropout), 1.0f / (float)n);
}

#define MERGE(var, cls_name, base, max, shape_fn, fn)                                                            \
    const nb_layer_class var = {.name = cls_name, .base_name = base, .max_inputs = max, .shape_n = shape_fn,  \
                                .apply_n = fn}

MERGE(nb__concatenate_class, "Concatenate", "concatenate", NB_LAYER_MAX_INPUTS, concat_shape, concat);
MERGE(nb__add_class, "Add", "add", NB_LAYER_MAX_INPUTS, NULL, add);
MERGE(nb__subtract_class, "Subtract", "subtract", 2, NULL, subtract);
MERGE(nb__multiply_class, "Multiply", "multiply", NB_LAYER_MAX_INPUTS, NULL, multiply);
MERGE(nb__average_class, "Average", "average", NB_LAYER_MAX_INPUTS, NULL, average);
