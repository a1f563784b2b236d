/* nn/layer_dense.c — Dense: y = activation(x·kernel + bias).
 * x: [B, IN], kernel: [IN, UNITS], bias: [UNITS] -> y: [B, UNITS] */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "graph/internal.h"
#include "nabla/init.h"
#include "nabla/ops.h"
#include "nn/internal.h"

typedef struct dense_config {
    int units;
    char kernel_init[NB_FIELD_STRING_MAX]; /* "" = glorot_uniform, Keras's default */
    bool no_bias;                          /* for a Dense followed by batch normalization */
    float l1, l2;                          /* Keras's l1_l2 on the kernel */
    float max_norm;                        /* > 0: MaxNorm(max_norm, axis) after each update */
    int max_norm_axis;
    char activation[NB_FIELD_STRING_MAX];
    float alpha;                           /* the activation's parameter, 0 = its default */
} dense_config;

static const nb_field fields[] = {
    {"units", NB_FIELD_INT, offsetof(dense_config, units), 1, INT_MAX, false},
    {"kernel_init", NB_FIELD_INITIALIZER, offsetof(dense_config, kernel_init), 0, 0, false},
    {"no_bias", NB_FIELD_BOOL, offsetof(dense_config, no_bias), 0, 0, false},
    {"kernel_reg.l1", NB_FIELD_FLOAT, offsetof(dense_config, l1), 0, INFINITY, false},
    {"kernel_reg.l2", NB_FIELD_FLOAT, offsetof(dense_config, l2), 0, INFINITY, false},
    {"max_norm", NB_FIELD_FLOAT, offsetof(dense_config, max_norm), 0, INFINITY, false},
    {"max_norm_axis", NB_FIELD_INT, offsetof(dense_config, max_norm_axis), 0, 1, false},
    {"activation", NB_FIELD_ACTIVATION, offsetof(dense_config, activation), 0, 0, false},
    {"alpha", NB_FIELD_FLOAT, offsetof(dense_config, alpha), 0, 0, false},
};

static int shape(const void *config, int rank, const int *in, int *out_rank, int *out, char *err, size_t len) {
    (void)in;
    if (rank != 1) {
        snprintf(err, len, "input has %d feature dimensions, it needs 1 (add a Flatten first)", rank);
        return 1;
    }
    *out_rank = 1;
    out[0] = ((const dense_config *)config)->units;
    return 0;
}

static nb_status build(nb_layer *l, nb_rng *rng) {
    const dense_config *c = l->config;
    const int in = l->in_dims[0];
    nb_init init;
    nb_init_parse(c->kernel_init[0] ? c->kernel_init : "glorot_uniform", &init); /* checked with the fields */
    nb_tensor *k = nb_layer_add_tensor(l, "kernel", 2, (int[]){in, c->units}, true);
    if (!k || nb_init_fill(k, &init, in, c->units, rng) != NB_OK) return NB_ERROR;
    if (!c->no_bias && !nb_layer_add_tensor(l, "bias", 1, &c->units, true)) return NB_ERROR;
    return nb_layer_add_activation_tensors(l, c->activation);
}

static nb_node *apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    (void)mc_dropout;
    const dense_config *c = l->config;
    nb_tensor *bias = nb_layer_find_tensor(l, "bias");
    nb_node *y = nb_matmul(g, x, nb_param(g, nb_layer_find_tensor(l, "kernel")));
    if (bias) y = nb_add(g, y, nb_param(g, bias));
    return nb_layer_activate(l, g, y, c->activation, c->alpha);
}

static nb_node *penalty(nb_layer *l, nb_graph *g) {
    const dense_config *c = l->config;
    nb_node *p = NULL, *w = NULL;
    if (c->l1 > 0 || c->l2 > 0) w = nb_param(g, nb_layer_find_tensor(l, "kernel"));
    if (c->l1 > 0) p = nb_scale(g, nb_l1_norm(g, w), c->l1);
    if (c->l2 > 0) {
        nb_node *q = nb_scale(g, nb_sum_squares(g, w), c->l2);
        p = p ? nb_add(g, p, q) : q;
    }
    return p;
}

// kernel: [in, units]; axis 0: each column (a unit's incoming weights) to
// norm <= r; axis 1: each row (an input's outgoing weights)
static void constrain(nb_layer *l) {
    const dense_config *c = l->config;
    nb_tensor *k = nb_layer_find_tensor(l, "kernel");
    if (c->max_norm <= 0 || !k->trainable) return;
    const size_t rows = (size_t)k->shape.dim[0], cols = (size_t)k->shape.dim[1];
    const bool by_column = c->max_norm_axis == 0;
    /* vector v has n elements spaced by stride, starting at v·step */
    const size_t vectors = by_column ? cols : rows, n = by_column ? rows : cols;
    const size_t stride = by_column ? cols : 1, step = by_column ? 1 : cols;
    const double r = c->max_norm;
    for (size_t v = 0; v < vectors; v++) {
        float *x = k->data + v * step;
        double sq = 0;
        for (size_t i = 0; i < n; i++) sq += (double)x[i * stride] * x[i * stride];
        double norm = sqrt(sq);
        if (norm > r) {
            float f = (float)(r / norm);
            for (size_t i = 0; i < n; i++) x[i * stride] *= f;
        }
    }
}

const nb_layer_class nb__dense_class = {
    .name = "Dense", .base_name = "dense", .config_size = sizeof(dense_config),
    .fields = fields, .n_fields = sizeof fields / sizeof fields[0],
    .shape = shape, .build = build, .apply = apply, .penalty = penalty, .constrain = constrain,
};
