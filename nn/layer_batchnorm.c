/* nn/layer_batchnorm.c — BatchNormalization: per feature over the batch,
 * y = gamma·(x − mean)/sqrt(var + epsilon) + beta, with moving statistics
 * (momentum) for inference. Keras's defaults: momentum 0.99, epsilon 1e-3. */
#include <math.h>
#include <stddef.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nn/internal.h"

typedef struct bn_config {
    float momentum;           /* 0 = 0.99 */
    float epsilon;            /* 0 = 1e-3 */
    bool no_center, no_scale; /* leave out beta / gamma */
} bn_config;

static const nb_field fields[] = {
    {"momentum", NB_FIELD_FLOAT, offsetof(bn_config, momentum), 0, 1, false},
    {"epsilon", NB_FIELD_FLOAT, offsetof(bn_config, epsilon), 0, INFINITY, false},
    {"no_center", NB_FIELD_BOOL, offsetof(bn_config, no_center), 0, 0, false},
    {"no_scale", NB_FIELD_BOOL, offsetof(bn_config, no_scale), 0, 0, false},
};

static nb_status build(nb_layer *l, nb_rng *rng) {
    (void)rng;
    const bn_config *c = l->config;
    const int f = l->in_dims[l->in_rank - 1];
    nb_tensor *gamma = NULL, *var;
    if (!c->no_scale && !(gamma = nb_layer_add_tensor(l, "gamma", 1, &f, true))) return NB_ERROR;
    if (!c->no_center && !nb_layer_add_tensor(l, "beta", 1, &f, true)) return NB_ERROR;
    if (!nb_layer_add_tensor(l, "moving_mean", 1, &f, false) ||
        !(var = nb_layer_add_tensor(l, "moving_variance", 1, &f, false)))
        return NB_ERROR;
    for (int i = 0; i < f; i++) {
        if (gamma) gamma->data[i] = 1.0f;
        var->data[i] = 1.0f;
    }
    return NB_OK;
}

static nb_node *apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    (void)mc_dropout;
    const bn_config *c = l->config;
    nb_tensor *gamma = nb_layer_find_tensor(l, "gamma"), *beta = nb_layer_find_tensor(l, "beta");
    nb_node *y = nb_batchnorm(g, x, gamma ? nb_param(g, gamma) : NULL, beta ? nb_param(g, beta) : NULL,
                              nb_layer_find_tensor(l, "moving_mean"), nb_layer_find_tensor(l, "moving_variance"),
                              c->momentum != 0 ? c->momentum : 0.99f, c->epsilon != 0 ? c->epsilon : 1e-3f);
    /* Keras runs a frozen batch normalization in inference mode, so
     * fine-tuning above it does not move its statistics */
    if (y && !l->trainable) nb_node_force_inference(y, true);
    return y;
}

const nb_layer_class nb__batch_norm_class = {
    .name = "BatchNormalization", .base_name = "batch_normalization", .config_size = sizeof(bn_config),
    .fields = fields, .n_fields = sizeof fields / sizeof fields[0], .build = build, .apply = apply,
};
