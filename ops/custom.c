/* ops/custom.c — user-defined ops (nabla/custom.h) as one entry of the op table. */
#include <stdio.h>

#include "graph/internal.h"
#include "nabla/custom.h"

#define DEF(n) ((const nb_custom_op *)(n)->attr.p[0])
#define USER(n) ((n)->attr.p[1])

static nb_status custom_infer(nb_graph *g, nb_node *n) {
    nb_shape in[NB_CUSTOM_MAX_INPUTS], out = {0};
    char err[160] = "";
    for (int i = 0; i < n->n_in; i++) in[i] = n->in[i]->shape;
    if (DEF(n)->shape(n->n_in, in, &out, USER(n), err, sizeof err) != 0)
        return nb__fail(g, "%s: %s", DEF(n)->name, err[0] ? err : "shape callback failed");
    if (out.rank < 0 || out.rank > NB_MAX_RANK)
        return nb__fail(g, "%s: shape callback gave rank %d", DEF(n)->name, out.rank);
    for (int d = 0; d < out.rank; d++)
        if (out.dim[d] < 1)
            return nb__fail(g, "%s: shape callback gave dimension %d = %d", DEF(n)->name, d, out.dim[d]);
    nb__set_shape(n, out.rank, out.dim);
    return NB_OK;
}

static nb_status custom_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const float *in[NB_CUSTOM_MAX_INPUTS];
    nb_shape shapes[NB_CUSTOM_MAX_INPUTS];
    for (int i = 0; i < n->n_in; i++) in[i] = n->in[i]->value, shapes[i] = n->in[i]->shape;
    DEF(n)->forward(n->n_in, in, shapes, n->value, &n->shape, USER(n));
    return NB_OK;
}

static void custom_backward(nb_graph *g, nb_node *n) {
    (void)g;
    const float *in[NB_CUSTOM_MAX_INPUTS];
    float *din[NB_CUSTOM_MAX_INPUTS];
    nb_shape shapes[NB_CUSTOM_MAX_INPUTS];
    for (int i = 0; i < n->n_in; i++) {
        in[i] = n->in[i]->value;
        din[i] = n->in[i]->grad;
        shapes[i] = n->in[i]->shape;
    }
    DEF(n)->backward(n->n_in, in, shapes, n->value, n->grad, &n->shape, din, USER(n));
}

const nb_op nb_op_custom = {
    .name = "custom", .infer = custom_infer, .forward = custom_forward, .backward = custom_backward,
};

nb_node *nb_custom(nb_graph *g, const nb_custom_op *op, int n, nb_node *const *in, void *user) {
    if (!g || g->status != NB_OK) return NULL;
    if (!op || !op->shape || !op->forward || !op->backward) {
        nb__fail(g, "custom: op%s is NULL or lacks a shape, forward or backward callback",
                 op && op->name ? op->name : "");
        return NULL;
    }
    if (n < 1 || n > NB_CUSTOM_MAX_INPUTS) {
        nb__fail(g, "%s: %d inputs, a custom op takes 1 to %d", op->name ? op->name : "custom", n,
                 NB_CUSTOM_MAX_INPUTS);
        return NULL;
    }
    nb_attr attr = {.p = {(void *)op, user}};
    nb_node *node = nb__op_node(g, &nb_op_custom, n, in, &attr);
    if (node && op->name) snprintf(node->name, sizeof node->name, "%s#%d", op->name, node->id);
    return node;
}
